"""The package version, and the versions of what produced an output (written beside samples,
tables, checkpoints and benchmark records)."""

from __future__ import annotations

import platform

__all__ = ["__version__", "versions"]

__version__ = "0.1.0"


def versions() -> dict:
    """Versions of scoredyn, torch, NumPy, SciPy and Python, and of Triton where it is installed
    (read from its metadata: importing it costs a second)."""
    from importlib import metadata

    import numpy as np
    import scipy
    import torch

    out = {
        "scoredyn": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }
    try:
        out["triton"] = metadata.version("triton")
    except metadata.PackageNotFoundError:
        pass
    return out
