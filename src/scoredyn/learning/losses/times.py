"""Training times ``t ~ pi(t)`` and their weights: uniform with a cut-off, importance sampling, EDM's
log-normal, or the integers ``1..T`` of ``DDPMSchedule``; and the choice among them by name."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ...core.processes import Process
from ._shared import normal64, num_steps, randint_from, uniform64

__all__ = [
    "TIME_SAMPLERS",
    "EDM_SIGMA_DATA",
    "TimeSampler",
    "UniformTime",
    "ImportanceTime",
    "LogNormalTime",
    "DiscreteTime",
    "time_sampler",
]

TIME_SAMPLERS: tuple[str, ...] = ("default", "uniform", "importance", "lognormal")
EDM_SIGMA_DATA = 0.5  # the data scale for which Karras et al. 2022 chose P_mean = -1.2, P_std = 1.2


class TimeSampler:
    """Draws ``n`` training times and per-sample weights, both ``(n,)`` float64."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


def _continuous_range(process: Process, t_min: float, who: str) -> tuple[float, float]:
    if num_steps(process) is not None:
        raise ValueError(f"{who} draws continuous times, but {process.name} is discrete: use DiscreteTime")
    if not process.t_min <= t_min < process.t_max:
        raise ValueError(f"t_min must be in [{process.t_min}, {process.t_max}), got {t_min}")
    return float(t_min), float(process.t_max)


class UniformTime(TimeSampler):
    """``t ~ U[t_min, t_max]``; weight 1. The cut-off ``t_min > 0`` keeps the regression targets'
    ``1 / sigma`` finite, as Song et al. 2021 train on ``t ~ U[epsilon, 1]``.

    Args:
        process: the process (its ``t_max``).
        t_min: the cut-off, in ``[process.t_min, process.t_max)``.
    """

    def __init__(self, process: Process, t_min: float = 1e-3) -> None:
        self.t_min, self.t_max = _continuous_range(process, t_min, "UniformTime")

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        t = self.t_min + (self.t_max - self.t_min) * uniform64(n, generator)
        return t, torch.ones_like(t)


class ImportanceTime(TimeSampler):
    """``t ~ q(t) ∝ density(t)`` on ``[t_min, t_max]``, weighted so the uniform-time objective is unbiased.

    .. math::
        \\frac{1}{t_{max} - t_{min}} \\int l(t)\\, dt = \\mathbb E_{t \\sim q}\\big[w(t)\\, l(t)\\big],
        \\qquad w(t) = \\frac{1}{(t_{max} - t_{min})\\, q(t)}.

    ``q`` is tabulated on ``grid_size`` points (trapezoid masses) and drawn by inverting the
    piecewise-linear CDF; the density so drawn is constant on each cell, and ``w`` uses that density,
    so the estimator is exactly unbiased (the tabulation only shapes its variance).

    Args:
        process: the process (its ``t_max``).
        density: ``t (M,) float64 -> (M,)``, finite, ``>= 0``, zero at isolated points at most;
            need not be normalized.
        t_min: the cut-off.
        grid_size: tabulation points.
    """

    def __init__(
        self, process: Process, density: Callable[[Tensor], Tensor], t_min: float = 1e-3, grid_size: int = 4096
    ) -> None:
        self.t_min, self.t_max = _continuous_range(process, t_min, "ImportanceTime")
        t = torch.linspace(self.t_min, self.t_max, grid_size, dtype=torch.float64)
        q = torch.as_tensor(density(t), dtype=torch.float64)
        dt = torch.diff(t)
        mass = 0.5 * (q[1:] + q[:-1]) * dt  # trapezoid rule, one cell at a time
        if not (torch.isfinite(q).all() and (q >= 0).all() and (mass > 0).all()):
            span = f"[{self.t_min}, {self.t_max}]"
            raise ValueError(f"density must be finite, >= 0, and not vanish on an interval of {span}")
        cdf = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(mass, 0)])
        self._grid, self._cdf = t, cdf / cdf[-1]
        self._q = mass / cdf[-1] / dt  # the density actually drawn, per cell

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        u = uniform64(n, generator)
        i = (torch.searchsorted(self._cdf, u, right=True) - 1).clamp(0, len(self._q) - 1)  # cell of u
        frac = (u - self._cdf[i]) / (self._cdf[i + 1] - self._cdf[i])
        t = self._grid[i] + frac * (self._grid[i + 1] - self._grid[i])
        return t, 1.0 / ((self.t_max - self.t_min) * self._q[i])


class LogNormalTime(TimeSampler):
    """EDM's noise distribution (Karras et al. 2022, sec. 5, Table 1): ``ln sigma_hat ~ N(P_mean, P_std^2)``.

    ``sigma_hat = sigma / alpha`` is EDM's ``sigma`` of the scaled process; the time is the one with
    ``lambda(t) = log(alpha / sigma) = -ln sigma_hat``, clamped to ``[t_min, t_max]``; weight 1.

    Args:
        process: a continuous process.
        p_mean: ``P_mean``.
        p_std: ``P_std`` (> 0).
    """

    def __init__(self, process: Process, p_mean: float = -1.2, p_std: float = 1.2) -> None:
        _continuous_range(process, process.t_min, "LogNormalTime")
        if not p_std > 0:
            raise ValueError(f"p_std must be positive, got {p_std}")
        self.process, self.P_mean, self.P_std = process, float(p_mean), float(p_std)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        ln_sigma_hat = self.P_mean + self.P_std * normal64(n, generator)
        t = self.process.log_snr_to_t(-ln_sigma_hat).clamp(self.process.t_min, self.process.t_max)
        return t, torch.ones_like(t)


class DiscreteTime(TimeSampler):
    """``t`` uniform on the integers ``1..T`` of ``DDPMSchedule`` (Ho et al. 2020, Algorithm 1); weight 1."""

    def __init__(self, process: Process) -> None:
        steps = num_steps(process)
        if steps is None:
            raise ValueError(f"DiscreteTime needs the discrete DDPMSchedule process, got {process!r}")
        self.T = int(steps)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        t = randint_from(generator, 1, self.T + 1, (n,)).cpu().to(torch.float64)
        return t, torch.ones_like(t)


def time_sampler(
    time: str,
    process: Process,
    density: Callable[[Tensor], Tensor],
    *,
    t_min: float = 1e-3,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    sigma_data: float = EDM_SIGMA_DATA,
) -> TimeSampler:
    """The time sampler named ``time`` (one of ``TIME_SAMPLERS`` less ``"default"``) on ``process``;
    ``DiscreteTime`` on a discrete schedule whatever the name.

    EDM's ``P_mean`` is stated for images with ``sigma_data = 0.5``; the noise levels that matter scale
    with the data, so ``"lognormal"`` draws ``ln sigma_hat ~ N(P_mean + ln(sigma_data / 0.5), P_std^2)``.

    Args:
        time: ``"uniform"``, ``"importance"`` or ``"lognormal"``.
        process: the forward process.
        density: ``q(t)`` of ``"importance"`` (``t (M,) float64 -> (M,)``).
        t_min: the cut-off of ``"uniform"`` and ``"importance"``.
        p_mean, p_std: EDM's ``P_mean``, ``P_std``, for data of scale 0.5.
        sigma_data: the data's scale.
    """
    if num_steps(process) is not None:
        return DiscreteTime(process)
    if time == "lognormal":
        return LogNormalTime(process, p_mean + math.log(sigma_data / EDM_SIGMA_DATA), p_std)
    if time == "importance":
        return ImportanceTime(process, density, t_min)
    return UniformTime(process, t_min)
