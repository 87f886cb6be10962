"""Predictor–corrector sampling (Song et al. 2021, Algorithms 2-5), on any process."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.tensors import atleast_2d_points
from ._steps import SampleResult, StepInfo, Tracker, check_grid, em_step, langevin_kick, noise

__all__ = ["predictor_corrector"]


def _mean_norm(v: Tensor) -> Tensor:
    """Per-sample Euclidean norm averaged over the batch (the ``||.||`` of Algorithms 4-5)."""
    return torch.linalg.vector_norm(v.to(torch.float64), dim=-1).mean()


def predictor_corrector(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    snr: float = 0.16,
    corrector_steps: int = 1,
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """Reverse-diffusion predictor, then ``corrector_steps`` Langevin corrector steps.

    Song et al. (2021), Algorithms 2/3 (PC sampling) with the Langevin corrector of
    Algorithms 4/5. The predictor is the Euler–Maruyama step of the reverse SDE (``reverse_sde``
    with ``lam = 1``, the same code); at the new time ``t_{i+1}`` each corrector step draws
    ``z ~ N(0, I)`` and moves

    .. math::
        \\epsilon = 2\\alpha \\left(\\frac{r\\,\\|z\\|}{\\|s\\|}\\right)^2, \\qquad
        x \\leftarrow x + \\epsilon\\, s(x, t_{i+1}) + \\sqrt{2\\epsilon}\\, z,

    with ``r = snr`` and ``||.||`` the per-sample norm averaged over the batch. ``alpha = 1`` for
    every process: Algorithm 4 (VE) has 1; Algorithm 5's ``alpha_i = 1 - beta_i`` is a per-step
    factor of the discrete VP chain, close to 1 and with no counterpart on a general grid.

    As in ``reverse_sde`` the last predictor step has no noise. No corrector runs where
    ``sigma = 0``: the score there is the data score and the corrector would be plain Langevin
    on the data, not a correction of the reverse process.

    Args:
        field: the score field (``velocity`` for the predictor, ``score`` for the corrector).
        x: start particles at ``grid[0]``, ``(N, D)``.
        grid: descending times ``(S + 1,)``.
        snr: the signal-to-noise ratio ``r > 0`` of the step rule.
        corrector_steps: Langevin steps ``M >= 0`` per time.
        generator: the source of all noise.
        callback: called with ``StepInfo`` after each predictor + corrector round.
        return_path: record the particles at every grid time.

    Returns:
        ``SampleResult``; ``nfe = S + M`` (number of grid times after the first with ``sigma > 0``).
    """
    grid = check_grid(grid)
    atleast_2d_points(x)
    if not (math.isfinite(snr) and snr > 0.0):
        raise ValueError(f"snr must be a finite number > 0, got {snr!r}")
    if not isinstance(corrector_steps, int) or corrector_steps < 0:
        raise ValueError(f"corrector_steps must be an integer >= 0, got {corrector_steps!r}")
    tracker = Tracker(field, x, callback, return_path, grid)
    n = len(grid) - 1
    for i in range(n):
        t_next = grid[i + 1]
        # predictor: reverse-diffusion (EM) step from t_i to t_{i+1}, noise-free at the end
        xi = noise(x, generator) if i < n - 1 else None
        x = em_step(tracker.field, x, grid[i], t_next, 1.0, xi)
        # corrector: Langevin at t_{i+1} with the snr step size (Alg. 4), none where sigma = 0
        if float(tracker.field.coefficients_at(t_next).sigma) > 0.0:
            for _ in range(corrector_steps):
                z = noise(x, generator)
                s = tracker.field.score(x, t_next)
                eps = 2.0 * (snr * _mean_norm(z) / _mean_norm(s)) ** 2
                x = langevin_kick(x, s, eps, z)
        tracker.step(i, t_next, x)
    return tracker.result(x)
