"""Ancestral sampling (DDPM) on any process and any descending grid of times.

The reverse step draws from the Gaussian posterior ``q(x_s | x_t, x_0)`` (``Process.transition``)
with ``x_0`` replaced by the field's denoiser ``x0hat``. For ``s < t`` the two-time coefficients are
(Kingma et al. 2021, VDM, eqs. 2-3 and app. A):

.. math::
    \\alpha_{t|s} = \\frac{\\alpha_t}{\\alpha_s}, \\qquad
    \\sigma_{t|s}^2 = \\sigma_t^2 - \\alpha_{t|s}^2 \\sigma_s^2, \\qquad
    \\mu = \\frac{\\alpha_{t|s}\\sigma_s^2}{\\sigma_t^2} x_t
         + \\frac{\\alpha_s \\sigma_{t|s}^2}{\\sigma_t^2} \\hat x_0, \\qquad
    \\tilde\\sigma^2 = \\frac{\\sigma_{t|s}^2 \\sigma_s^2}{\\sigma_t^2}.

On consecutive integer times of the discrete schedule ``sigma_{t|s}^2`` is DDPM's ``beta_t`` and
``tilde sigma^2`` its ``tilde beta_t`` (Ho et al. 2020, eqs. 6-7).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import Field
from ._steps import SampleResult, StepInfo, Tracker, check_grid, noise

__all__ = ["ddpm"]

_VARIANCES = ("beta_tilde", "beta")


def ddpm(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    variance: str = "beta_tilde",
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """Ancestral sampling: one draw from the denoised posterior per grid interval.

    Ho et al. (2020), Algorithm 2, on an arbitrary descending grid ``t_0 > ... > t_S``:

    .. math::
        x_s = \\frac{\\alpha_{t|s}\\sigma_s^2}{\\sigma_t^2} x_t
            + \\frac{\\alpha_s \\sigma_{t|s}^2}{\\sigma_t^2} \\hat x_0(x_t, t) + \\varsigma\\, \\xi,
        \\qquad \\xi \\sim \\mathcal N(0, I),

    with ``varsigma^2 = sigma_{t|s}^2 sigma_s^2 / sigma_t^2`` (``"beta_tilde"``, the posterior
    variance) or ``varsigma^2 = sigma_{t|s}^2`` (``"beta"``, Ho et al.'s ``sigma_t^2 = beta_t``;
    on a strided VP grid this is ``1 - abar_t / abar_s``, as diffusers' ``fixed_large``). The step
    into ``sigma_s = 0`` adds no noise and lands on ``alpha_s x0hat``.

    Args:
        field: the score field; ``field.denoise`` gives ``x0hat``.
        x: start particles at ``grid[0]``, ``(N, D)``.
        grid: descending times ``(S + 1,)``, e.g. ``ddpm_grid`` (ending at ``t = 0``).
        variance: ``"beta_tilde"`` or ``"beta"``.
        generator: the source of the noise ``xi``.
        callback: called with ``StepInfo`` after each step.
        return_path: record the particles at every grid time.

    Returns:
        ``SampleResult`` with ``nfe = S``.
    """
    grid = check_grid(grid)
    if variance not in _VARIANCES:
        raise ValueError(f"variance must be one of {_VARIANCES}, got {variance!r}")
    tracker = Tracker(field, x, callback, return_path)
    process = field.process
    for i in range(len(grid) - 1):
        t, s = grid[i], grid[i + 1]
        q = process.transition(t, s)
        # posterior mean with the denoised estimate in place of x_0 (Ho et al., eq. 7)
        x0 = tracker.field.denoise(x, t)
        mean = float(q.posterior_x) * x + float(q.posterior_x0) * x0
        if float(q.sigma_s) == 0.0:
            # final step into sigma = 0: the mean is alpha_s x0hat, no noise
            x = mean
        else:
            # ancestral noise with the chosen variance (Algorithm 2, line 4)
            var = float(q.posterior_var if variance == "beta_tilde" else q.var_ts)
            x = mean + var**0.5 * noise(x, generator)
        tracker.step(i, s, x)
    return tracker.result(x)
