"""``python -m scoredyn`` (and ``torchrun -m scoredyn train ...``) runs the command line."""

from .app.cli import main

main()
