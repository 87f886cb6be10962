"""The reverse-time SDE family with a free noise scale ``lam``, by Euler–Maruyama.

``lam = 0`` is the probability-flow ODE (Song et al. 2021, eq. 13); ``lam = 1`` is the reverse
SDE of Anderson (1982) / Song et al. (2021, eq. 6). The step is ``_steps.em_step``, shared with ``pc.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.tensors import atleast_2d_points
from ._steps import SampleResult, StepInfo, Tracker, check_grid, em_step, noise

__all__ = ["reverse_sde"]


def reverse_sde(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    lam: float = 1.0,
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """Euler–Maruyama on the reverse-time SDE family with noise scale ``lam``.

    Song et al. (2021), eq. 6 (``lam = 1``; Anderson 1982) and eq. 13 (``lam = 0``); the family
    with a free noise scale (Karras et al. 2022, eq. 6, writes it for ``alpha = 1`` with
    ``beta(t) sigma^2 = lam^2 g^2 / 2``), integrated from ``t_0`` down to
    ``t_S`` with ``h_i = t_{i+1} - t_i < 0`` and ``xi_i ~ N(0, I)``:

    .. math::
        x_{i+1} = x_i + h_i \\Big[f x_i - \\tfrac{1 + \\lambda^2}{2} g^2 s(x_i, t_i)\\Big]
                  + \\lambda\\, g(t_i) \\sqrt{|h_i|}\\, \\xi_i .

    The final step is taken without noise: nothing after it would remove that noise, which would
    stay in the output as a blur of std ``lam g sqrt(|h|)`` (Song et al.'s code likewise returns
    the noise-free mean of the last step). Only left end points are evaluated, so a grid that
    ends where ``sigma = 0`` needs no special case.

    Args:
        field: the score field (``field.velocity``).
        x: start particles at ``grid[0]``, ``(N, D)``.
        grid: descending times ``(S + 1,)``.
        lam: noise scale ``>= 0``.
        generator: the source of ``xi`` (unused when ``lam = 0``).
        callback: called with ``StepInfo`` after each step.
        return_path: record the particles at every grid time.

    Returns:
        ``SampleResult`` with ``nfe = S``.
    """
    grid = check_grid(grid)
    atleast_2d_points(x)
    if not (math.isfinite(lam) and lam >= 0.0):
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    tracker = Tracker(field, x, callback, return_path, grid)
    n = len(grid) - 1
    for i in range(n):
        # fresh noise for every step but the last
        xi = noise(x, generator) if lam > 0.0 and i < n - 1 else None
        # Euler–Maruyama step from t_i to t_{i+1}
        x = em_step(tracker.field, x, grid[i], grid[i + 1], lam, xi)
        tracker.step(i, grid[i + 1], x)
    return tracker.result(x)
