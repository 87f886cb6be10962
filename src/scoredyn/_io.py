"""Atomic file writes: a temporary name in the same folder, then ``os.replace``; never a
half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_write_text", "atomic_write_json", "atomic_savez", "load_samples", "versions"]


def file_mode() -> int:
    """The mode a plain ``open`` would give a new file (``0o666`` less the umask): ``mkstemp``'s
    temp files are ``0o600``, which would make every output private to its writer."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())  # the bytes are on disk before the name points at them
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    _atomic(Path(path), lambda fh: fh.write(text.encode()))


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def atomic_savez(path: str | os.PathLike, **arrays) -> None:
    """``np.savez`` to exactly ``path`` (no ``.npz`` appended), atomically."""
    _atomic(Path(path), lambda fh: np.savez(fh, **arrays))


def load_samples(path: str | os.PathLike) -> np.ndarray:
    """The ``samples`` array of an ``.npz`` written by ``scoredyn sample``, or a ``.npy`` array.

    Raises ValueError (one clear line) for a missing file, a file that is neither, an array that is
    not ``(M, D)``, or NaN/inf. Never unpickles.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ValueError(f"{path} is not a .npz or .npy file ({e})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            if "samples" not in loaded.files:
                raise ValueError(f"{path} has no 'samples' array (it has: {', '.join(loaded.files) or 'nothing'})")
            arr = loaded["samples"]
    else:
        arr = loaded
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"samples in {path} must have shape (M, D), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"samples in {path} are not numbers (dtype {arr.dtype})")
    if not np.isfinite(arr).all():
        raise ValueError(f"samples in {path} contain NaN or inf")
    return arr.astype(np.float64)


def versions() -> dict:
    """Versions of what produced an output (written beside samples, tables and checkpoints)."""
    import platform

    import scipy
    import torch

    from . import __version__

    return {
        "scoredyn": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }
