"""Langevin dynamics in a score field: plain (unadjusted), annealed over noise levels, and the
noiseless score drift.

All three move particles with one kick,

.. math::
    x \\leftarrow x + \\eta\\, s(x, t) + \\sqrt{2\\eta}\\,\\xi, \\quad \\xi \\sim \\mathcal N(0, I),

run a level at a time by ``langevin_steps`` (the noise term dropped for the score drift), which runs
the exact mixture's fused kernel instead of the field's ``score`` where the backend allows (CUDA by
default). The grids here hold one time per *level* and need only be non-increasing: plain Langevin at
a fixed noise level is a grid of one repeated time. A path, when asked for, is recorded after each
level (the end of each run of equal times), never after each inner step: ``O(levels N D)`` memory.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.tensors import atleast_2d_points, positive_float, positive_int
from ._steps import SampleResult, StepInfo, Tracker, check_level_grid, langevin_step_sizes, langevin_steps

__all__ = ["langevin", "annealed_langevin", "score_drift"]


def langevin(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    eta: float,
    backend: str = "auto",
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
        backend: ``auto``, ``eager``, ``torch``, ``compile`` or ``triton`` (``samplers._steps.langevin_backend``).
        generator: the one source of noise.
        callback: called with ``StepInfo`` after each level.
        return_path: keep the particles after each level.
    """
    x = atleast_2d_points(x)
    grid = check_level_grid(grid)
    eta = positive_float(eta, "eta")
    tracker = Tracker(field, x, callback, return_path)
    times, counts = torch.unique_consecutive(grid, return_counts=True)
    last = torch.cumsum(counts, 0) - 1  # the index of each level's last step
    for t, steps, k in zip(times, counts.tolist(), last.tolist(), strict=True):
        # steps of x_{k+1} = x_k + eta s(x_k, t) + sqrt(2 eta) xi_k at the level's time t
        x = langevin_steps(tracker, x, t, eta, steps, generator=generator, backend=backend)
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
    noise: bool = True,
    backend: str = "auto",
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
    (``eta = 0.5 sigma^2`` by default); rule ``ncsn`` is the paper's schedule
    ``eta_i = epsilon sigma_i^2 / sigma_L^2`` with ``sigma_L`` the last level. The paper writes the
    step as ``x + (alpha_i / 2) s + sqrt(alpha_i) z``, so its ``alpha_i`` is ``2 eta_i`` here and its
    ``epsilon`` is ``2 eta_factor``. A level with ``sigma = 0`` has step size 0 and is skipped (no evaluations).
    The path is recorded after each level. NFE is ``levels * steps_per_level``.

    Args:
        field: the score field.
        x: ``(N, D)`` start at ``grid[0]``.
        grid: ``(L,)`` non-increasing times, one per level (e.g. ``geometric_sigma_grid``).
        steps_per_level: Langevin steps ``T`` at each level.
        eta_factor: ``epsilon`` above.
        step_rule: ``sigma2`` or ``ncsn``.
        noise: ``False`` drops ``xi``: the score drift (``score_drift``).
        backend: ``auto``, ``eager``, ``torch``, ``compile`` or ``triton`` (``samplers._steps.langevin_backend``).
        generator: the one source of noise.
        callback: called with ``StepInfo`` after each level.
        return_path: keep the particles after each level.
    """
    x = atleast_2d_points(x)
    grid = check_level_grid(grid)
    T = positive_int(steps_per_level, "steps_per_level")
    etas = langevin_step_sizes(field.process, grid, positive_float(eta_factor, "eta_factor"), step_rule)
    tracker = Tracker(field, x, callback, return_path)
    for i, (t, eta_i) in enumerate(zip(grid, etas, strict=True)):
        # T steps of x <- x + eta_i s(x, t_i) [+ sqrt(2 eta_i) xi] (sigma_i = 0: eta_i = 0, skipped)
        if eta_i > 0:
            x = langevin_steps(tracker, x, t, eta_i, T, noise=noise, generator=generator, backend=backend)
        tracker.step(i, t, x)
    return tracker.result(x)


def score_drift(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    steps_per_level: int = 100,
    eta_factor: float = 0.5,
    step_rule: str = "sigma2",
    backend: str = "auto",
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """Annealed score ascent without noise: the loop of ``annealed_langevin`` with ``noise=False``.

    ``x <- x + eta_i s(x, t_i)``, with ``eta_i`` as in ``annealed_langevin``, is gradient ascent on
    ``log p_t``: particles fall into the basin they start in and settle at its mode, so it shows what
    the noise term is for, and is not a sampler. The arguments are ``annealed_langevin``'s
    (``generator`` is accepted for the common head and unused). NFE is ``levels * steps_per_level``.
    """
    return annealed_langevin(field, x, grid, steps_per_level=steps_per_level, eta_factor=eta_factor,
                             step_rule=step_rule, noise=False, backend=backend, generator=generator,
                             callback=callback, return_path=return_path)  # fmt: skip
