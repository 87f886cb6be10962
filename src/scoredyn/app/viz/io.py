"""Writing figures atomically (``util.files.atomic_write``), so a reader never sees a half-written image."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib import rc_context
from matplotlib.figure import Figure

from ...util.files import atomic_path, atomic_write

__all__ = ["save_figure", "atomic_path", "FIGURE_FORMATS"]

FIGURE_FORMATS = ("png", "svg", "pdf")


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` as PNG, SVG or PDF (chosen by the suffix), atomically.

    Args:
        fig: the figure (any function of ``scoredyn.app.viz``).
        path: the output file; its folder is created if missing.
        dpi: resolution of raster output.

    Returns:
        the path written.

    Raises:
        ValueError: for a suffix other than ``.png``, ``.svg`` or ``.pdf``.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"path must end in .png, .svg or .pdf, got {str(path)!r}")
    with rc_context({"svg.hashsalt": "scoredyn"}):  # fixed SVG ids: the same figure, the same bytes
        atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi, metadata=_metadata(fmt)))
    return path


def _metadata(fmt: str) -> dict:
    # SVG and PDF embed a creation date by default: drop it so the same figure gives the same bytes
    return {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})
