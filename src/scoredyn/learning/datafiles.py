"""A user's points from a file: ``.csv`` (with a header or without), ``.npy`` of shape ``(N, D)``, or
``.npz`` with ``x`` and optional integer labels ``y``. Never unpickled: NumPy files are read with
``allow_pickle=False``, so a pickle (or an object array) is refused, not run.

Every problem is one ``ValueError`` line naming the file and what is wrong with it: not finite, ragged
rows, a cell that is not a number, fewer than 2 columns, labels that are not integers.
"""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path

import numpy as np

from ..util.messages import one_line

__all__ = ["DATA_SUFFIXES", "is_data_file", "read_points"]

DATA_SUFFIXES: tuple[str, ...] = (".csv", ".npy", ".npz")


def is_data_file(name: str | os.PathLike) -> bool:
    """Whether ``name`` names a points file (by its suffix)."""
    return Path(str(name)).suffix.lower() in DATA_SUFFIXES


def read_points(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """The points ``(N, D)`` float64 and the labels ``(N,)`` int64 (or ``None``) of a data file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such data file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        x, y = _read_csv(path), None
    elif suffix == ".npy":
        x, y = _load_npy(path), None
    elif suffix == ".npz":
        x, y = _load_npz(path)
    else:
        raise ValueError(f"{path}: a data file must end in {', '.join(DATA_SUFFIXES)}")
    return _checked_points(x, path), (None if y is None else _checked_labels(y, x.shape[0], path))


def _read_csv(path: Path) -> np.ndarray:
    """Rows of numbers; a first row with any non-number is a header. Ragged rows and non-numeric
    cells are refused with their row and column."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.reader(fh) if row and any(cell.strip() for cell in row)]
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path} is not a readable CSV file ({e})") from None
    if rows and not all(_is_number(cell) for cell in rows[0]):
        rows = rows[1:]  # a header
    if not rows:
        raise ValueError(f"{path} holds no rows of numbers")
    width = len(rows[0])
    values = np.empty((len(rows), width), dtype=np.float64)
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"{path}: row {i + 1} has {len(row)} cells, the first has {width} (ragged rows)")
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise ValueError(
                    f"{path}: row {i + 1}, column {j + 1} is not a number: {cell.strip()[:40]!r}"
                ) from None
    return values


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # a pickle, an object array, a truncated or foreign file
        raise ValueError(f"{path} is not a NumPy array file (pickles are never loaded): {one_line(e, 160)}") from None


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive.files:
                raise ValueError(f"{path} has no array 'x' (it holds {', '.join(archive.files) or 'nothing'})")
            return archive["x"], archive["y"] if "y" in archive.files else None
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"{path} is not a NumPy .npz archive (pickles are never loaded): {one_line(e, 160)}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path} is not a NumPy .npz archive: {one_line(e, 160)}") from None


def _checked_points(x: np.ndarray, path: Path) -> np.ndarray:
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{path}: the points must be real numbers, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{path}: the points must be a 2-D array (N, D), got shape {x.shape}")
    if x.shape[1] < 2:
        raise ValueError(f"{path}: the points need at least 2 columns (coordinates), got {x.shape[1]}")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}: {int(bad.sum())} values are NaN or infinite (the first at row {i + 1}, column {j + 1})"
        )
    return x


def _checked_labels(y: np.ndarray, n: int, path: Path) -> np.ndarray:
    if y.dtype.kind not in "iu":
        raise ValueError(f"{path}: labels 'y' must be integers, got dtype {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"{path}: labels 'y' must have shape ({n},), one per point, got {y.shape}")
    if n and y.min() < 0:
        raise ValueError(f"{path}: labels 'y' must be >= 0, got {int(y.min())}")
    return y.astype(np.int64)
