"""DPM-Solver++(2M) (Lu et al. 2022b): a multistep exponential integrator of the probability-flow ODE
in data prediction.

Both step in the half log-SNR ``lambda = log(alpha / sigma)``. With ``h = lambda_to - lambda_from``
the ODE's exact solution, for a data prediction ``x0hat`` held constant over the step, is the
first-order step (DDIM; Lu et al. 2022b, eq. 9)

.. math::
    x_{to} = \\frac{\\sigma_{to}}{\\sigma_{from}} x_{from} + \\alpha_{to} (1 - e^{-h})\\, D,

(``_steps.data_prediction_step``); the multistep method feeds it a combination of two data predictions.
At ``sigma = 0`` the log-SNR is ``+inf``: the step into it is taken explicitly and lands on
``alpha x0hat``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import Field
from ._steps import SampleResult, StepInfo, Tracker, check_grid, data_prediction_step, log_snr_levels

__all__ = ["dpm_solver_2m"]


def dpm_solver_2m(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """DPM-Solver++(2M): second-order multistep solver of the probability-flow ODE.

    Lu et al. (2022b), Algorithm 2. With ``h_i = lambda_{i+1} - lambda_i`` and
    ``r_i = h_{i-1} / h_i``:

    .. math::
        D_i = \\Big(1 + \\frac{1}{2 r_i}\\Big) \\hat x_0(x_i, t_i)
            - \\frac{1}{2 r_i} \\hat x_0(x_{i-1}, t_{i-1}),
        \\qquad
        x_{i+1} = \\frac{\\sigma_{i+1}}{\\sigma_i} x_i + \\alpha_{i+1} (1 - e^{-h_i}) D_i .

    The first step is first order (``D_0 = x0hat``); the step into ``sigma = 0`` (``h = inf``)
    is first order too and lands on ``alpha x0hat`` (as diffusers' ``final_sigmas_type="zero"``).
    Deterministic: ``generator`` is accepted for the common head and unused.

    Args:
        field: the score field; ``field.denoise`` gives ``x0hat``.
        x: start particles at ``grid[0]``, ``(N, D)``.
        grid: descending times ``(S + 1,)``.
        callback: called with ``StepInfo`` after each step.
        return_path: record the particles at every grid time.

    Returns:
        ``SampleResult`` with ``nfe = S``.
    """
    grid = check_grid(grid)
    tracker = Tracker(field, x, callback, return_path, grid)
    levels = log_snr_levels(field.process, grid)
    x0_prev, h_prev = None, 0.0
    for i in range(len(grid) - 1):
        cur, nxt = levels[i], levels[i + 1]
        # data prediction at the current point (one evaluation per step)
        x0 = tracker.field.denoise(x, grid[i])
        if nxt.sigma == 0.0:
            # final step into sigma = 0: lambda = inf, the step lands on alpha x0hat
            x = nxt.alpha * x0
        else:
            h = nxt.lam - cur.lam
            if x0_prev is None:
                # first step: first order (DDIM)
                D = x0
            else:
                # second-order multistep combination (Algorithm 2, line 5)
                r = h_prev / h
                D = (1.0 + 0.5 / r) * x0 - (0.5 / r) * x0_prev
            x = data_prediction_step(x, D, cur, nxt)
            x0_prev, h_prev = x0, h
        tracker.step(i, grid[i + 1], x)
    return tracker.result(x)
