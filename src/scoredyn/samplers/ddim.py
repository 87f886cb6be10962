"""DDIM (Song, Meng & Ermon 2021): the non-Markovian reverse step with a free noise scale ``eta``,
on any process and any descending grid of times."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.processes import Process
from ._steps import SampleResult, StepInfo, Tracker, check_grid, noise

__all__ = ["ddim"]


class _Step(NamedTuple):
    """One step's coefficients as Python floats: the levels at ``t`` and ``s`` and the posterior
    variance ``sigma_{t|s}^2 sigma_s^2 / sigma_t^2`` (``Transition.posterior_var``)."""

    alpha_t: float
    sigma_t: float
    alpha_s: float
    sigma_s: float
    var: float


def _steps(process: Process, grid: Tensor) -> list[_Step]:
    """The coefficients of every step ``grid[i] -> grid[i+1]``, from one vectorised transition."""
    q = process.transition(grid[:-1], grid[1:])
    columns = (q.alpha_t, q.sigma_t, q.alpha_s, q.sigma_s, q.posterior_var)
    return [_Step(*row) for row in zip(*(c.tolist() for c in columns), strict=True)]


def ddim(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """DDIM sampling: re-noise the denoised estimate along the predicted noise direction.

    Song, Meng & Ermon (2021), eq. 12 with ``sigma_t(eta)`` of eq. 16, in the two-time notation
    of Kingma et al. (2021) (``alpha_{t|s} = alpha_t / alpha_s``, ``sigma_{t|s}^2 = sigma_t^2 -
    alpha_{t|s}^2 sigma_s^2``):

    .. math::
        \\hat\\epsilon = \\frac{x_t - \\alpha_t \\hat x_0}{\\sigma_t}, \\qquad
        c = \\eta\\, \\frac{\\sigma_{t|s}\\sigma_s}{\\sigma_t}, \\qquad
        x_s = \\alpha_s \\hat x_0 + \\sqrt{\\sigma_s^2 - c^2}\\, \\hat\\epsilon + c\\, \\xi .

    ``eta = 0`` is deterministic (the first-order exponential integrator of the probability-flow
    ODE); ``eta = 1`` is ancestral sampling with the posterior variance (``ddpm``,
    ``"beta_tilde"``), on any grid. The step into ``sigma_s = 0`` lands on ``alpha_s x0hat``.

    Args:
        field: the score field; ``field.denoise`` gives ``x0hat``.
        x: start particles at ``grid[0]``, ``(N, D)``.
        grid: descending times ``(S + 1,)``.
        eta: noise scale in ``[0, 1]``.
        generator: the source of ``xi`` (unused when ``eta = 0``).
        callback: called with ``StepInfo`` after each step.
        return_path: record the particles at every grid time.

    Returns:
        ``SampleResult`` with ``nfe = S``.
    """
    grid = check_grid(grid)
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta!r}")
    tracker = Tracker(field, x, callback, return_path, grid)
    steps = _steps(field.process, grid)
    for i, q in enumerate(steps):
        t, s = grid[i], grid[i + 1]
        # predicted x_0 (eq. 12, "predicted x_0")
        x0 = tracker.field.denoise(x, t)
        if q.sigma_s == 0.0:
            # final step into sigma = 0: nothing left to re-noise
            x = q.alpha_s * x0
        else:
            # the noise x_t implies, and sigma_s^2 split between it and fresh noise (eq. 16)
            eps = (x - q.alpha_t * x0) / q.sigma_t
            c = eta * q.var**0.5
            x = q.alpha_s * x0 + max(q.sigma_s**2 - c**2, 0.0) ** 0.5 * eps
            if eta > 0.0:
                x = x + c * noise(x, generator)
        tracker.step(i, s, x)
    return tracker.result(x)
