"""The page's binary payload: arrays quantized to integer codes, delta-coded frame to frame, packed into
one gzip blob.

Each array is 3-D, ``(n0, n1, n2)`` (a particle run: ``(F, 2, N)``), with an affine map per index of
axis 1: ``value = shift[a] + step[a] * code``. Particle runs are coded relative to the plot box
(``shift`` = box centre, ``step`` = half-width / ``QUANT``). Codes are stored as differences along
axis 0, each frame's difference in units of that frame's multiplier ``mult[f]``:

    code[f] = code[f - 1] + mult[f] * stored[f]        (code[-1] = 0)

rounded against the *decoded* previous frame (error feedback), so every frame lies within
``mult[f] / 2`` codes of its exact code and errors never add up over frames. ``mult = COARSE`` is
below what the eye sees on the plot (intermediate frames); ``mult = 1`` keeps full resolution (a run's
last frame, the samples). Stored integers are zigzag-mapped (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) and
written one byte each; a value >= 255 writes 255 there and ``value - 255`` as 3 little-endian bytes in an
escape stream after the array's bytes. Most differences fit in one byte, which gzip then compresses.
The page's JavaScript reverses this (``unpack`` below is its Python twin, used by the tests).
"""

from __future__ import annotations

import base64
import gzip

import numpy as np

__all__ = ["COARSE", "QUANT", "Packer", "decode", "quantize", "unpack"]

QUANT = 1024  # codes per half-width of the plot box: full resolution = half-width / 1024 (a quarter pixel)
COARSE = 8  # intermediate frames: error <= half-width / 256, a pixel of a 520-pixel plot box
CODE_MAX = 2**22  # codes are clipped to +-CODE_MAX (4096 half-widths): differences fit the 3-byte escapes
ESCAPE = 255


def quantize(values: np.ndarray, shift: np.ndarray, step: np.ndarray) -> np.ndarray:
    """int64 codes of a 3-D array with the affine map per index of axis 1 (clipped to +-``CODE_MAX``)."""
    shift, step = np.broadcast_to(shift, values.shape[1:2]), np.broadcast_to(step, values.shape[1:2])
    codes = np.round((values - shift[None, :, None]) / step[None, :, None])
    return np.clip(codes, -CODE_MAX, CODE_MAX).astype(np.int64)


def decode(codes: np.ndarray, shift, step) -> np.ndarray:
    """Values of integer codes (the inverse of ``quantize`` up to half a step)."""
    shift = np.broadcast_to(np.asarray(shift, dtype=np.float64), codes.shape[1:2])
    step = np.broadcast_to(np.asarray(step, dtype=np.float64), codes.shape[1:2])
    return shift[None, :, None] + step[None, :, None] * codes.astype(np.float64)


def _differences(codes: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """``stored[f]``: frame f's difference from the decoded frame f - 1, in units of ``mult[f]``."""
    stored, decoded = np.empty_like(codes), np.zeros_like(codes[0])
    for f, m in enumerate(mult.tolist()):
        stored[f] = np.round((codes[f] - decoded) / m)
        decoded = decoded + m * stored[f]  # error feedback: the next frame is coded against what the page sees
    return stored


def _zigzag_bytes(stored: np.ndarray) -> tuple[bytes, int]:
    """One byte per value (``ESCAPE`` for large ones) followed by the escape stream; the escape count."""
    v = stored.reshape(-1)
    z = np.where(v >= 0, 2 * v, -2 * v - 1)
    big = z[z >= ESCAPE] - ESCAPE
    escapes = np.stack([big & 0xFF, (big >> 8) & 0xFF, (big >> 16) & 0xFF], 1).astype(np.uint8)
    return np.minimum(z, ESCAPE).astype(np.uint8).tobytes() + escapes.tobytes(), len(big)


class Packer:
    """Collects named arrays into one blob; ``index`` describes each for the page."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.index: dict[str, dict] = {}
        self.size = 0

    def add(self, name: str, values: np.ndarray, shift, step, *, mult=None) -> None:
        """Quantize the 3-D ``values`` and append their differences along axis 0.

        Args:
            name: the array's key in ``index``.
            values: ``(n0, n1, n2)`` floats.
            shift, step: the affine map per index of axis 1 (scalars broadcast).
            mult: ``(n0,)`` positive integers, each frame's resolution in codes (default all 1).
        """
        if values.ndim != 3:
            raise ValueError(f"{name}: arrays are packed 3-D, got shape {values.shape}")
        mult = np.ones(values.shape[0], dtype=np.int64) if mult is None else np.asarray(mult, dtype=np.int64)
        if mult.shape != values.shape[:1] or (mult < 1).any():
            raise ValueError(f"{name}: mult must hold {values.shape[0]} positive integers, got {mult.tolist()}")
        codes = quantize(values, np.asarray(shift, dtype=np.float64), np.asarray(step, dtype=np.float64))
        raw, escapes = _zigzag_bytes(_differences(codes, mult))
        n1 = values.shape[1]
        self.index[name] = {
            "start": self.size,
            "shape": list(values.shape),
            "mult": mult.tolist(),
            "escapes": escapes,
            "shift": np.broadcast_to(np.asarray(shift, dtype=np.float64), (n1,)).tolist(),
            "step": np.broadcast_to(np.asarray(step, dtype=np.float64), (n1,)).tolist(),
        }
        self.parts.append(raw)
        self.size += len(raw)

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
        count, start = int(np.prod(spec["shape"])), spec["start"]
        z = data[start : start + count].astype(np.int64)
        esc = data[start + count : start + count + 3 * spec["escapes"]].astype(np.int64).reshape(-1, 3)
        z[z == ESCAPE] = ESCAPE + esc[:, 0] + (esc[:, 1] << 8) + (esc[:, 2] << 16)
        stored = np.where(z % 2 == 0, z // 2, -(z + 1) // 2).reshape(spec["shape"])
        codes = np.cumsum(stored * np.asarray(spec["mult"], dtype=np.int64)[:, None, None], axis=0)
        out[name] = decode(codes, spec["shift"], spec["step"])
    return out
