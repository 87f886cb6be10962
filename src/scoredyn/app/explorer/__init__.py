"""The interactive explorer: a self-contained HTML page (plotly) of a 2-D target or trained model.

``build_explorer(target_or_model, "explore.html")`` computes the forward noising and every sampler's
precomputed run with each frame's distance to the exact law (and a learned score's arrows) in
``frames.py``, packs them (``encode.py``) into one page (``page.py``, ``template.py``) that evaluates the
exact noised density at each frame's noise level; ``serve("explore.html")`` shows it on 127.0.0.1
(``serve.py``).
"""

from .page import build_explorer
from .serve import check_port, serve

__all__ = ["build_explorer", "check_port", "serve"]
