"""``python -m scoredyn`` (and ``torchrun -m scoredyn train ...``) runs the command line."""

from .cli import main

main()
