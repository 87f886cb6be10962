"""A process's coefficients where a field needs them: one time (computed on first use), a whole grid
at once (``CoefficientTable``, what a sampler prepares before its loop), or one time per sample."""

from __future__ import annotations

from functools import cached_property

from torch import Tensor

from ..processes import Process
from ..tensors import as_time

__all__ = ["Coefficients", "CoefficientTable", "broadcast_coefficient", "coefficients", "per_sample_time"]


def broadcast_coefficient(c: Tensor, x: Tensor) -> Tensor:
    """A coefficient (0-dim, or one per sample) shaped to broadcast against ``x`` of shape (N, D)."""
    c = c.to(dtype=x.dtype, device=x.device)
    return c[:, None] if c.ndim == 1 else c


def per_sample_time(t: float | Tensor, n: int) -> Tensor:
    """Times as a float64 tensor of shape ``(n,)`` (a scalar ``t`` is broadcast)."""
    t = as_time(t)
    if t.ndim == 0:
        return t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"t must be a scalar or have shape ({n},), got {tuple(t.shape)}")
    return t


def coefficients(process: Process, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``alpha, sigma, alpha', sigma'`` at per-sample times ``t`` (N,), as (N, 1) in ``like``'s dtype."""
    values = (process.alpha(t), process.sigma(t), process.d_alpha(t), process.d_sigma(t))
    a, s, da, ds = (broadcast_coefficient(v, like) for v in values)
    return a, s, da, ds


class Coefficients:
    """A process's coefficients at one time ``t`` (float64 tensors shaped like ``t``), each computed
    from the process on first use; a row of a ``CoefficientTable`` arrives with all of them.

    ``memo`` holds what a field derives from them (e.g. a network's input scaling), per row.
    """

    def __init__(self, process: Process, t: Tensor, **known: Tensor) -> None:
        self.process, self.t, self.memo = process, t, {}
        self.__dict__.update(known)

    @cached_property
    def alpha(self) -> Tensor:
        return self.process.alpha(self.t)

    @cached_property
    def sigma(self) -> Tensor:
        return self.process.sigma(self.t)

    @cached_property
    def d_alpha(self) -> Tensor:
        return self.process.d_alpha(self.t)

    @cached_property
    def d_sigma(self) -> Tensor:
        return self.process.d_sigma(self.t)

    @cached_property
    def d_sigma2(self) -> Tensor:
        return self.process.d_sigma2(self.t)

    @cached_property
    def f(self) -> Tensor:
        return self.process.f(self.t)

    @cached_property
    def g2(self) -> Tensor:
        return self.process.g2(self.t)


_COEFFICIENTS = ("alpha", "sigma", "d_alpha", "d_sigma", "d_sigma2", "f", "g2")


class CoefficientTable:
    """Every coefficient of a process at the times of a grid, computed in one vectorised pass and
    looked up by the exact float64 time; a time not in it is computed on first use and kept
    (up to ``4 len(times) + 64`` rows, so an adaptive solver's stray times cannot grow it without end).

    The values are those of the per-time calls (the same elementwise float64 operations), so a
    sampler that reads them takes the same steps as one that asks the process at every step.
    """

    def __init__(self, process: Process, times: Tensor) -> None:
        times = as_time(times).reshape(-1)
        self.process, self._limit = process, 4 * times.numel() + 64
        columns = [getattr(process, name)(times).unbind() for name in _COEFFICIENTS]
        self._rows = {
            t: Coefficients(process, time, **dict(zip(_COEFFICIENTS, row, strict=True)))
            for t, time, *row in zip(times.tolist(), times.unbind(), *columns, strict=True)
        }

    def __call__(self, t: Tensor) -> Coefficients:
        """The row of the 0-dim time ``t``."""
        key = float(t)
        row = self._rows.get(key)
        if row is None:
            row = Coefficients(self.process, t)
            if len(self._rows) < self._limit:
                self._rows[key] = row
        return row
