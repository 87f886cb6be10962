"""Small tensor helpers shared by the whole package.

Shape conventions used everywhere: particles are ``(N, D)``; a time ``t`` is a Python float or a
0-dim tensor (one time for the whole batch); grids are 1-D float64 tensors, descending in time.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "as_time",
    "generator_device",
    "randn_like",
    "randn_from",
    "rand_from",
    "PerDevice",
    "atleast_2d_points",
    "positive_int",
    "positive_float",
    "LOG_2PI",
]

LOG_2PI = math.log(2.0 * math.pi)


def as_time(t: float | Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """Return ``t`` as a float64 tensor (coefficients are always computed in float64)."""
    if isinstance(t, Tensor):
        return t.to(dtype=dtype)
    return torch.tensor(float(t), dtype=dtype)


def generator_device(generator: torch.Generator | None) -> torch.device:
    """The device a generator draws on (the CPU without one): draws are made there, then moved."""
    return generator.device if generator is not None else torch.device("cpu")


def randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like ``x``, drawn from ``generator`` (the one source of randomness)
    on its device and moved to ``x``'s (``randn_from``)."""
    return randn_from(generator, tuple(x.shape), x)


def randn_from(generator: torch.Generator | None, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """Standard normal draws of ``shape`` in ``like``'s dtype, made on the generator's device (the CPU
    without one) and moved to ``like``'s: one generator gives the same draws wherever the data are."""
    draws = torch.randn(shape, generator=generator, dtype=like.dtype, device=generator_device(generator))
    return draws.to(like.device)


def rand_from(generator: torch.Generator | None, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """Draws of ``U[0, 1)`` of ``shape`` in ``like``'s dtype, made on the generator's device and moved to
    ``like``'s (as ``randn_from``)."""
    draws = torch.rand(shape, generator=generator, dtype=like.dtype, device=generator_device(generator))
    return draws.to(like.device)


class PerDevice:
    """Constant tensors, each moved to a device once (on its first use there) and kept: what a field or a
    process reads at every step reaches the particles' device once, not at every step.

    Two are equal when their tensors are (a cache is not part of what a process or a field is).
    """

    def __init__(self, *tensors: Tensor) -> None:
        self.tensors = tensors
        self._moved: dict[torch.device, tuple[Tensor, ...]] = {}

    def on(self, device: torch.device | str) -> tuple[Tensor, ...]:
        """The tensors on ``device``."""
        device = torch.device(device)
        moved = self._moved.get(device)
        if moved is None:
            moved = self._moved[device] = tuple(t.to(device) for t in self.tensors)
        return moved

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PerDevice) or len(other.tensors) != len(self.tensors):
            return False
        return all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(self.tensors, other.tensors, strict=True))

    __hash__ = None  # mutable (its cache), and equal by value


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
