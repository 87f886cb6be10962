"""EDM's stochastic Heun sampler (Karras et al. 2022, Algorithm 2), on any process."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.tensors import atleast_2d_points
from ._steps import SampleResult, StepInfo, Tracker, check_grid, heun_step, noise

__all__ = ["edm_heun"]


def edm_heun(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    S_churn: float = 0.0,
    S_tmin: float = 0.0,
    S_tmax: float = math.inf,
    S_noise: float = 1.0,
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """Stochastic Heun: churn (add noise up to a higher level), then a Heun step of the PF-ODE.

    Karras et al. (2022), Algorithm 2, generalised from ``alpha = 1, sigma = t`` to any process
    by measuring noise in ``hat sigma = sigma / alpha``. With ``N`` steps and
    ``gamma_i = min(S_churn / N, sqrt 2 - 1)`` where ``S_tmin <= hat sigma(t_i) <= S_tmax``
    (else 0):

    .. math::
        \\hat\\sigma(\\hat t_i) = (1 + \\gamma_i)\\,\\hat\\sigma(t_i), \\quad
        \\hat x_i \\sim p(x_{\\hat t_i} \\mid x_{t_i} = x_i) \\text{ (noise scaled by } S_{noise}),
        \\quad x_{i+1} = \\text{Heun}(\\hat x_i;\\ \\hat t_i \\to t_{i+1}).

    The churn uses the exact forward kernel (``Process.transition``), which for EDM is
    ``x + sqrt(hat t^2 - t^2) S_noise eps`` (Alg. 2 line 5). It cannot raise the level past
    ``t_max`` (``hat t`` is clamped there). The Heun step is Euler into ``sigma = 0`` (Alg. 2
    line 8). With ``S_churn = 0`` this is ``ode(method="heun")`` exactly.

    Args:
        field: the score field (``field.velocity``).
        x: start particles at ``grid[0]``, ``(N, D)``.
        grid: descending times ``(N + 1,)``.
        S_churn: total churn (``>= 0``); ``S_tmin``, ``S_tmax``: the range of ``hat sigma``
            where churn applies; ``S_noise``: noise inflation (``>= 0``).
        generator: the source of the churn noise (unused when ``S_churn = 0``).
        callback: called with ``StepInfo`` after each step.
        return_path: record the particles at every grid time.

    Returns:
        ``SampleResult``; ``nfe = 2N`` less one per final step into ``sigma = 0``.
    """
    grid = check_grid(grid)
    atleast_2d_points(x)
    for name, value in (("S_churn", S_churn), ("S_noise", S_noise), ("S_tmin", S_tmin)):
        if not (math.isfinite(value) and value >= 0.0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if not S_tmax >= S_tmin:
        raise ValueError(f"S_tmax must be >= S_tmin, got {S_tmax!r} < {S_tmin!r}")
    tracker = Tracker(field, x, callback, return_path, grid)
    process = field.process
    n = len(grid) - 1
    for i in range(n):
        t_i = grid[i]
        # churn: raise hat sigma by (1 + gamma_i) inside [S_tmin, S_tmax] (Alg. 2 lines 4-6)
        sigma_hat_i = process.sigma_hat(t_i) if S_churn > 0.0 else math.nan  # no churn: not needed
        gamma = min(S_churn / n, math.sqrt(2.0) - 1.0) if S_tmin <= sigma_hat_i <= S_tmax else 0.0
        if gamma > 0.0:
            t_hat = torch.clamp(process.sigma_hat_to_t((1.0 + gamma) * sigma_hat_i), min=t_i)
            x_hat = process.transition(t_hat, t_i).forward(x, S_noise * noise(x, generator))
        else:
            t_hat, x_hat = t_i, x
        # Heun step of the PF-ODE from hat t_i to t_{i+1} (Alg. 2 lines 7-10)
        x = heun_step(tracker.field, x_hat, t_hat, grid[i + 1])
        tracker.step(i, grid[i + 1], x)
    return tracker.result(x)
