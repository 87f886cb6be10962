"""The interactive explorer: a self-contained HTML page (plotly) of a 2-D target or trained model.

``build_explorer(target_or_model, "explore.html")`` computes noised densities, score arrows, the
forward noising and precomputed sampler runs (``frames.py``), packs them (``encode.py``) into one page
(``page.py``); ``serve("explore.html")`` shows it on 127.0.0.1 (``serve.py``).
"""

from .page import build_explorer
from .serve import serve

__all__ = ["build_explorer", "serve"]
