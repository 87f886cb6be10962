"""The DDPM variational bound as a training objective; its terms are ``scoredyn.likelihood``'s."""

from __future__ import annotations

from ...core.fields import coefficients
from ...core.processes import Process
from ...likelihood import vlb_kernel, vlb_prior_term, vlb_step_term
from ._shared import num_steps
from .base import Objective

__all__ = ["VLBObjective"]


class VLBObjective(Objective):
    """The DDPM variational bound (Ho et al. 2020, eq. 5; Sohl-Dickstein et al. 2015), in nats.

    .. math::
        L_{vlb} = L_T + \\sum_{t=2}^T L_{t-1} + L_0 \\approx L_T + T\\, L_{t-1}, \\quad t \\sim U\\{1..T\\},
        \\\\
        L_{t-1} = KL\\big(q(x_{t-1} | x_t, x_0) \\,\\|\\, N(\\mu_\\theta, \\varsigma_t^2 I)\\big)
        = \\frac{c_t^2}{2 \\varsigma_t^2} \\| x_0 - \\hat x_0 \\|^2
        + \\frac D2 \\big( r_t - 1 - \\log r_t \\big), \\quad r_t = \\tilde\\beta_t / \\varsigma_t^2,
        \\qquad L_0 = -\\log N(x_0; \\hat x_0(x_1, 1), \\beta_1 I),

    with ``L_T = KL(q(x_T | x_0) || N(0, I))``, and ``mu_theta = a_t x_t + c_t x0hat`` the posterior
    mean (Ho et al., eq. 7) with the model's ``x0hat`` for ``x_0``, ``c_t = sqrt(abar_{t-1}) beta_t /
    (1 - abar_t)``. The reverse variance ``varsigma_t^2`` is ``beta_t`` by default (Ho et al.'s
    ``sigma_t^2 = beta_t``; ``variance="beta_tilde"`` for ``beta_tilde_t``, which zeroes the variance
    term). ``beta_t`` is chosen because it is the continuous-time limit (the reverse SDE's ``g^2 dt``)
    and much the tighter bound for data that are smooth at the scale of the first steps: with the
    exact field of ``mog6`` (T = 1000) the bound exceeds the NLL by 0.03 nats with ``beta`` and by
    0.95 nats with ``beta_tilde``. The decoder uses ``beta_1`` either way (``beta_tilde_1 = 0``).
    The score weight at integer ``t >= 2`` is ``lambda(t) = c_t^2 sigma_t^4 / (2 varsigma_t^2 alpha_t^2)``.
    Needs ``DDPMSchedule``; its time sampler is ``DiscreteTime``.

    Args:
        process: a ``DDPMSchedule``.
        variance: ``"beta"`` or ``"beta_tilde"`` (``scoredyn.likelihood.VLB_VARIANCES``).
        options: as for ``Objective``.
    """

    name, paper, default_parameterization = "vlb", "Ho et al. 2020, eq. 5; Sohl-Dickstein et al. 2015", "eps"
    needs = "discrete"

    def __init__(self, process: Process, *, variance: str = "beta", **options) -> None:
        super().__init__(process, **options)
        self.variance = variance
        self._kernel = vlb_kernel(process, variance)

    def lam_over_sigma2(self, t):
        raise ValueError("objective 'vlb' has no continuous time weight (it cannot use time='importance')")

    def loss(self, field, x0, y, draws):
        t, eps = draws["t"], draws["eps"]
        alpha, sigma, _, _ = coefficients(self.process, t, x0)
        pred = field.predict(alpha * x0 + sigma * eps, t, y)
        l_prev = vlb_step_term(self._kernel, t.round().long(), x0, pred.x0)
        return draws["w"].to(x0) * (vlb_prior_term(self.process, x0) + num_steps(self.process) * l_prev)
