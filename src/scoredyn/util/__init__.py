"""The utilities every layer may use: atomic file writes and safe loading, versions, progress bars."""

from .files import (
    atomic_path,
    atomic_savez,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    file_mode,
    load_samples,
)
from .progress import ProgressBar
from .versions import __version__, versions

__all__ = [
    "__version__",
    "versions",
    "file_mode",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_savez",
    "atomic_path",
    "load_samples",
    "ProgressBar",
]
