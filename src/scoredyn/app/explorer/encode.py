"""The page's binary payload: arrays quantized to int16, packed into one gzip blob.

Each array is 3-D, ``(n0, n1, n2)``, and is stored as int16 codes ``v`` with an affine map per index
of axis 1: ``value = shift[a] + step[a] * v``. Particle runs ``(F, 2, N)`` are coded relative to the
plot box (``shift`` = box centre, ``step`` = half-width / ``QUANT``, so the box is ``+-QUANT``
codes and anything within ``32767 / QUANT = 32`` half-widths of the centre is kept) and stored as
differences between consecutive frames (small for smooth motion). The int16 codes are written as
two byte planes, all low bytes then all high bytes, which gzip compresses better than interleaved
bytes. The page's JavaScript reverses this (``unpack`` below is its Python twin, used by the tests).
"""

from __future__ import annotations

import base64
import gzip

import numpy as np

__all__ = ["QUANT", "Packer", "quantize", "unpack", "decode"]

QUANT = 1024  # codes per half-width of the plot box: resolution = half-width / 1024 (a third of a pixel)


def quantize(values: np.ndarray, shift: np.ndarray, step: np.ndarray) -> np.ndarray:
    """int16 codes of a 3-D array with the affine map per index of axis 1 (clipped to int16)."""
    shift, step = np.broadcast_to(shift, values.shape[1:2]), np.broadcast_to(step, values.shape[1:2])
    codes = np.round((values - shift[None, :, None]) / step[None, :, None])
    return np.clip(codes, -32767, 32767).astype(np.int16)


def decode(codes: np.ndarray, shift, step) -> np.ndarray:
    """Values of int16 codes (the inverse of ``quantize`` up to half a step)."""
    shift = np.broadcast_to(np.asarray(shift, dtype=np.float64), codes.shape[1:2])
    step = np.broadcast_to(np.asarray(step, dtype=np.float64), codes.shape[1:2])
    return shift[None, :, None] + step[None, :, None] * codes.astype(np.float64)


class Packer:
    """Collects named arrays into one blob; ``index`` describes each for the page."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.index: dict[str, dict] = {}
        self.size = 0

    def add(self, name: str, values: np.ndarray, shift, step, *, delta: bool = False) -> None:
        """Quantize the 3-D ``values`` and append them; ``delta``: store differences along axis 0."""
        if values.ndim != 3:
            raise ValueError(f"{name}: arrays are packed 3-D, got shape {values.shape}")
        codes = quantize(values, np.asarray(shift, dtype=np.float64), np.asarray(step, dtype=np.float64))
        stored = codes.copy()
        if delta:  # int16 arithmetic wraps mod 2^16: the page's cumulative sum in an Int16Array undoes it
            stored[1:] = (codes[1:].astype(np.int32) - codes[:-1].astype(np.int32)).astype(np.int16)
        raw = stored.reshape(-1).view(np.uint16)
        planes = (raw & 0xFF).astype(np.uint8).tobytes() + (raw >> 8).astype(np.uint8).tobytes()
        n1 = values.shape[1]
        self.index[name] = {
            "start": self.size,
            "shape": list(values.shape),
            "delta": delta,
            "shift": np.broadcast_to(np.asarray(shift, dtype=np.float64), (n1,)).tolist(),
            "step": np.broadcast_to(np.asarray(step, dtype=np.float64), (n1,)).tolist(),
        }
        self.parts.append(planes)
        self.size += len(planes)

    def blob(self) -> bytes:
        """All arrays, gzip-compressed (``mtime=0``: the same data gives the same bytes)."""
        return gzip.compress(b"".join(self.parts), compresslevel=9, mtime=0)

    def base64(self) -> str:
        return base64.b64encode(self.blob()).decode("ascii")


def unpack(blob_b64: str, index: dict[str, dict]) -> dict[str, np.ndarray]:
    """Decode every array of a packed blob (the page's decoder, in numpy)."""
    data = np.frombuffer(gzip.decompress(base64.b64decode(blob_b64)), dtype=np.uint8)
    out = {}
    for name, spec in index.items():
        count = int(np.prod(spec["shape"]))
        lo = data[spec["start"] : spec["start"] + count].astype(np.uint16)
        hi = data[spec["start"] + count : spec["start"] + 2 * count].astype(np.uint16)
        codes = (lo | (hi << 8)).view(np.int16).reshape(spec["shape"])
        if spec["delta"]:
            codes = np.cumsum(codes.astype(np.int64), axis=0).astype(np.int16)  # wraps like the page's Int16Array
        out[name] = decode(codes, spec["shift"], spec["step"])
    return out
