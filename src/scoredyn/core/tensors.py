"""Small tensor helpers shared by the whole package.

Shape conventions used everywhere: particles are ``(N, D)``; a time ``t`` is a Python float or a
0-dim tensor (one time for the whole batch); grids are 1-D float64 tensors, descending in time.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["as_time", "randn_like", "randn_from", "atleast_2d_points", "positive_int", "positive_float", "LOG_2PI"]

LOG_2PI = math.log(2.0 * math.pi)


def as_time(t: float | Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """Return ``t`` as a float64 tensor (coefficients are always computed in float64)."""
    if isinstance(t, Tensor):
        return t.to(dtype=dtype)
    return torch.tensor(float(t), dtype=dtype)


def randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like ``x``, drawn from ``generator`` (the one source of randomness)."""
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def randn_from(generator: torch.Generator | None, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """Standard normal draws of ``shape`` in ``like``'s dtype, made on the generator's device (the CPU
    without one) and moved to ``like``'s: one generator gives the same draws wherever the data are."""
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(shape, generator=generator, dtype=like.dtype, device=device).to(like.device)


def atleast_2d_points(x: Tensor, dim: int | None = None, name: str = "x") -> Tensor:
    """Check that ``x`` is an ``(N, D)`` tensor of finite points (``D = dim`` when given); raise
    ``ValueError`` naming it otherwise. Returns ``x``."""
    if not isinstance(x, Tensor) or x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        want = f"(N, {dim})" if dim is not None else "(N, D)"
        raise ValueError(f"{name} must be an {want} tensor of points, got shape {tuple(getattr(x, 'shape', ()))}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def positive_int(value: int, name: str) -> int:
    """``value`` if it is an integer ``>= 1`` (not a bool); else ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def positive_float(value: float, name: str) -> float:
    """``value`` as a float if it is finite and ``> 0``; else ``ValueError`` naming it."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v
