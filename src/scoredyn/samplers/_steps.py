"""Pieces shared by the samplers, written once: the result type, the callback payload, NFE
counting, path recording, and the forward transition used by churn and ancestral steps."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.fields import CountingField, Field
from ..core.processes import Process
from ..core.tensors import as_time, randn_like

__all__ = ["SampleResult", "StepInfo", "Tracker", "check_grid", "forward_transition", "langevin_kick", "noise"]


@dataclass
class SampleResult:
    """What every sampler returns.

    Attributes:
        x: final particles, ``(N, D)``.
        nfe: field evaluations per particle path.
        path: particles after each grid point, ``(len(path), N, D)``, only when asked for.
    """

    x: Tensor
    nfe: int
    path: Tensor | None = None


@dataclass
class StepInfo:
    """Callback payload after step ``i``: the particles ``x`` now at time ``t``."""

    i: int
    t: float
    x: Tensor


class Tracker:
    """Counts NFE, records the path when asked, and calls the callback: the bookkeeping every
    sampler shares, kept out of the algorithm's body. Given the ``grid``, the field it hands out
    has the process's coefficients at every grid time precomputed (``Field.at_times``)."""

    def __init__(
        self,
        field: Field,
        x: Tensor,
        callback: Callable[[StepInfo], None] | None,
        record: bool,
        grid: Tensor | None = None,
    ):
        self.field = CountingField(field.at_times(grid) if grid is not None else field)
        self.callback = callback
        self._path = [x.clone()] if record else None

    def step(self, i: int, t: float | Tensor, x: Tensor) -> None:
        if self._path is not None:
            self._path.append(x.clone())
        if self.callback is not None:
            self.callback(StepInfo(i, float(t), x))

    def result(self, x: Tensor) -> SampleResult:
        path = torch.stack(self._path) if self._path is not None else None
        return SampleResult(x, self.field.nfe, path)


def check_grid(grid: Tensor, name: str = "grid") -> Tensor:
    """Validate a grid: 1-D, at least one point, finite, strictly descending. Returns float64."""
    grid = torch.as_tensor(grid, dtype=torch.float64)
    if grid.ndim != 1 or grid.numel() < 1:
        raise ValueError(f"{name} must be a 1-D tensor of times, got shape {tuple(grid.shape)}")
    if not torch.isfinite(grid).all():
        raise ValueError(f"{name} contains NaN or inf")
    if grid.numel() > 1 and not (grid[1:] < grid[:-1]).all():
        raise ValueError(f"{name} must be strictly descending")
    return grid


def forward_transition(
    process: Process, x: Tensor, t_from: float | Tensor, t_to: float | Tensor, noise: Tensor
) -> Tensor:
    """Sample ``p(x_{t_to} | x_{t_from})`` for ``t_to >= t_from`` (re-noising; EDM churn, eq. 7):

    .. math::
        x' = \\frac{\\alpha_{to}}{\\alpha_{from}} x + \\sqrt{\\sigma_{to}^2 -
        \\left(\\frac{\\alpha_{to}}{\\alpha_{from}}\\right)^2 \\sigma_{from}^2}\\; \\xi .
    """
    a_from, a_to = process.alpha(as_time(t_from)), process.alpha(as_time(t_to))
    s_from, s_to = process.sigma(as_time(t_from)), process.sigma(as_time(t_to))
    ratio = a_to / a_from
    std = torch.sqrt(torch.clamp(s_to**2 - ratio**2 * s_from**2, min=0.0))
    return (ratio * x + std * noise).to(x.dtype)


def langevin_kick(x: Tensor, drift: Tensor, eta: float, xi: Tensor | None) -> Tensor:
    """One unadjusted Langevin step ``x + eta drift + sqrt(2 eta) xi`` (``xi = None``: no noise).

    The one kick behind plain and annealed Langevin, SVGD with noise, and the PC corrector.
    """
    eta = float(eta)
    x = x + eta * drift
    return x + math.sqrt(2.0 * eta) * xi if xi is not None else x


def noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Gaussian noise like ``x`` from the one generator of the run."""
    return randn_like(x, generator)
