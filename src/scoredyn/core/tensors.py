"""Small tensor helpers shared by the whole package.

Shape conventions used everywhere: particles are ``(N, D)``; a time ``t`` is a Python float or a
0-dim tensor (one time for the whole batch); grids are 1-D float64 tensors, descending in time.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["as_time", "randn_like", "atleast_2d_points", "LOG_2PI"]

LOG_2PI = math.log(2.0 * math.pi)


def as_time(t: float | Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """Return ``t`` as a float64 tensor (coefficients are always computed in float64)."""
    if isinstance(t, Tensor):
        return t.to(dtype=dtype)
    return torch.tensor(float(t), dtype=dtype)


def randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like ``x``, drawn from ``generator`` (the one source of randomness)."""
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def atleast_2d_points(x: Tensor, dim: int | None = None, name: str = "x") -> Tensor:
    """Check that ``x`` is an ``(N, D)`` tensor of finite points (``D = dim`` when given); raise
    ``ValueError`` naming it otherwise. Returns ``x``."""
    if not isinstance(x, Tensor) or x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        want = f"(N, {dim})" if dim is not None else "(N, D)"
        raise ValueError(f"{name} must be an {want} tensor of points, got shape {tuple(getattr(x, 'shape', ()))}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x
