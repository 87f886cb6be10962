"""Langevin dynamics in a score field: plain (unadjusted), annealed over noise levels, and the
noiseless score drift.

All three move particles with one kick,

.. math::
    x \\leftarrow x + \\eta\\, s(x, t) + \\sqrt{2\\eta}\\,\\xi, \\quad \\xi \\sim \\mathcal N(0, I),

written once in ``_kick`` (the noise term dropped for the score drift). The grids here hold one
time per *level* and need only be non-increasing: plain Langevin at a fixed noise level is a
grid of one repeated time. A path, when asked for, is recorded after each level (the end of
each run of equal times), never after each inner step, so its memory is ``O(levels N D)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.tensors import atleast_2d_points
from ._steps import SampleResult, StepInfo, Tracker, langevin_kick, noise

__all__ = ["langevin", "annealed_langevin", "score_drift"]

STEP_RULES = ("sigma2", "ncsn")


def _kick(
    x: Tensor, drift: Tensor, eta: float, generator: torch.Generator | None, noisy: bool = True
) -> Tensor:
    """One unadjusted Langevin step ``x + eta drift + sqrt(2 eta) xi`` (``xi = 0`` if not noisy)."""
    return langevin_kick(x, drift, eta, noise(x, generator) if noisy else None)


def _check_level_grid(grid: Tensor, name: str = "grid") -> Tensor:
    """Validate a level grid: 1-D, at least one time, finite, non-increasing. Returns float64."""
    grid = torch.as_tensor(grid, dtype=torch.float64)
    if grid.ndim != 1 or grid.numel() < 1:
        raise ValueError(
            f"{name} must be a non-empty 1-D tensor of times, got shape {tuple(grid.shape)}"
        )
    if not torch.isfinite(grid).all():
        raise ValueError(f"{name} contains NaN or inf")
    if (grid[1:] > grid[:-1]).any():
        raise ValueError(f"{name} must be non-increasing")
    return grid


def _check_positive(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def _check_steps(steps: int, name: str = "steps_per_level") -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{name} must be a positive integer, got {steps!r}")
    return steps


def _step_sizes(field: Field, grid: Tensor, eta_factor: float, step_rule: str) -> list[float]:
    """``eta_i = eta_factor sigma(t_i)^2`` (``sigma2``) or, with ``ncsn``, divided by the last
    level's ``sigma^2`` (Song & Ermon 2019, Alg. 1: ``alpha_i = epsilon sigma_i^2 / sigma_L^2``)."""
    if step_rule not in STEP_RULES:
        raise ValueError(f"step_rule must be one of {', '.join(STEP_RULES)}, got {step_rule!r}")
    sigma2 = field.process.sigma(grid) ** 2  # float64
    if step_rule == "ncsn":
        if float(sigma2[-1]) == 0.0:
            raise ValueError("step_rule 'ncsn' needs the last level's sigma > 0")
        sigma2 = sigma2 / sigma2[-1]
    return (eta_factor * sigma2).tolist()


def langevin(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    eta: float,
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """Unadjusted Langevin algorithm: one step at each time of ``grid`` with a fixed step size.

    Parisi (1981); Roberts & Tweedie (1996, eq. 1.3, "ULA"):

    .. math::
        x_{k+1} = x_k + \\eta\\, s(x_k, t_k) + \\sqrt{2\\eta}\\,\\xi_k .

    At a fixed ``t`` this targets ``p_t`` up to an ``O(eta)`` bias, but mixes between modes only
    as fast as noise of size ``sqrt(2 eta)`` crosses the barriers between them. The path is
    recorded after each level (each run of equal times). NFE is ``len(grid)``.

    Args:
        field: the score field.
        x: ``(N, D)`` start.
        grid: ``(K,)`` non-increasing times, one per step (e.g. one repeated time).
        eta: step size ``> 0``.
        generator: the one source of noise.
        callback: called with ``StepInfo`` after each level.
        return_path: keep the particles after each level.
    """
    x = atleast_2d_points(x)
    grid = _check_level_grid(grid)
    eta = _check_positive(eta, "eta")
    tracker = Tracker(field, x, callback, return_path)
    for k, t in enumerate(grid):
        # x_{k+1} = x_k + eta s(x_k, t_k) + sqrt(2 eta) xi_k
        x = _kick(x, tracker.field.score(x, t), eta, generator)
        if k == len(grid) - 1 or grid[k + 1] != t:  # the end of a level
            tracker.step(k, t, x)
    return tracker.result(x)


def annealed_langevin(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    steps_per_level: int = 100,
    eta_factor: float = 0.5,
    step_rule: str = "sigma2",
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """Annealed Langevin dynamics over noise levels (Song & Ermon 2019, NCSN, Algorithm 1).

    At each level ``t_i`` of ``grid`` (noisiest first), ``steps_per_level`` Langevin steps with
    step size ``eta_i``:

    .. math::
        \\eta_i = \\epsilon\\,\\sigma(t_i)^2, \\qquad
        x \\leftarrow x + \\eta_i\\, s(x, t_i) + \\sqrt{2\\eta_i}\\,\\xi .

    ``sigma(t)`` is the process's noise scale in ``x_t`` coordinates (``= sigma_hat`` for VE/EDM,
    where ``alpha = 1``); for a process with ``alpha < 1`` it is the one that tracks the width of
    ``p_t``, which ``sigma / alpha`` overstates. Rule ``sigma2`` uses ``epsilon = eta_factor``
    (the particle-dynamics text: ``eta = 0.5 sigma^2``); rule ``ncsn`` is the paper's
    ``alpha_i = epsilon sigma_i^2 / sigma_L^2`` with ``epsilon = eta_factor`` and ``sigma_L`` the
    last level. A level with ``sigma = 0`` has step size 0 and is skipped (no evaluations).
    The path is recorded after each level. NFE is ``levels * steps_per_level``.

    Args:
        field: the score field.
        x: ``(N, D)`` start at ``grid[0]``.
        grid: ``(L,)`` non-increasing times, one per level (e.g. ``geometric_sigma_grid``).
        steps_per_level: Langevin steps ``T`` at each level.
        eta_factor: ``epsilon`` above.
        step_rule: ``sigma2`` or ``ncsn``.
        generator: the one source of noise.
        callback: called with ``StepInfo`` after each level.
        return_path: keep the particles after each level.
    """
    return _annealed(field, x, grid, steps_per_level, eta_factor, step_rule, generator, callback, return_path)


def score_drift(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    steps_per_level: int = 100,
    eta_factor: float = 0.5,
    step_rule: str = "sigma2",
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """Annealed score ascent without noise: the loop of ``annealed_langevin`` with ``xi = 0``.

    Variant (A) of the particle-dynamics study, ``x <- x + eta_i s(x, t_i)``, with ``eta_i`` as in
    ``annealed_langevin``. It is gradient ascent on ``log p_t``: particles fall into the basin they
    start in and settle at its mode, so it shows what the noise term is for, and is not a sampler.
    The path is recorded after each level. NFE is ``levels * steps_per_level``.

    Args:
        field: the score field.
        x: ``(N, D)`` start at ``grid[0]``.
        grid: ``(L,)`` non-increasing times, one per level.
        steps_per_level: steps at each level.
        eta_factor: step size factor, as in ``annealed_langevin``.
        step_rule: ``sigma2`` or ``ncsn``.
        generator: accepted for the common head; unused (no noise).
        callback: called with ``StepInfo`` after each level.
        return_path: keep the particles after each level.
    """
    return _annealed(field, x, grid, steps_per_level, eta_factor, step_rule, None, callback, return_path, noisy=False)


def _annealed(field, x, grid, steps_per_level, eta_factor, step_rule, generator, callback, return_path, noisy=True):
    """The annealing loop shared by ``annealed_langevin`` and ``score_drift`` (``noisy=False``)."""
    x = atleast_2d_points(x)
    grid = _check_level_grid(grid)
    T = _check_steps(steps_per_level)
    etas = _step_sizes(field, grid, _check_positive(eta_factor, "eta_factor"), step_rule)
    tracker = Tracker(field, x, callback, return_path)
    for i, (t, eta_i) in enumerate(zip(grid, etas, strict=True)):
        # T steps of x <- x + eta_i s(x, t_i) [+ sqrt(2 eta_i) xi] (sigma_i = 0: eta_i = 0, skip)
        for _ in range(T if eta_i > 0 else 0):
            x = _kick(x, tracker.field.score(x, t), eta_i, generator, noisy=noisy)
        tracker.step(i, t, x)
    return tracker.result(x)
