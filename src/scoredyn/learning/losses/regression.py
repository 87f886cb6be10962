"""Regression objectives: the prediction at ``x_t = alpha_t x_0 + sigma_t eps`` against what made
``x_t`` (the noise, the data, the velocity), each a weighted denoising score matching loss."""

from __future__ import annotations

import torch

from ._shared import sq_norm
from .base import Objective

__all__ = ["EpsObjective", "DSMObjective", "X0Objective", "VObjective", "EDMObjective", "CFMObjective"]


class EpsObjective(Objective):
    """DDPM's simple loss (Ho et al. 2020, eq. 14): noise prediction.

    .. math::
        \\| \\hat\\epsilon_\\theta(x_t, t) - \\epsilon \\|^2, \\qquad \\lambda(t) = \\sigma_t^2 .
    """

    name, paper, default_parameterization = "eps", "Ho et al. 2020, eq. 14 (L_simple)", "eps"

    def lam_over_sigma2(self, t):
        return torch.ones_like(t)

    def error(self, pred, x0, eps):
        return sq_norm(pred.eps - eps)


class DSMObjective(Objective):
    """Denoising score matching (Vincent 2011; Song & Ermon 2019, sec. 4.2, ``lambda(sigma) = sigma^2``).

    .. math::
        \\sigma_t^2 \\Big\\| s_\\theta(x_t, t) + \\frac{\\epsilon}{\\sigma_t} \\Big\\|^2
        = \\| \\sigma_t s_\\theta + \\epsilon \\|^2, \\qquad \\lambda(t) = \\sigma_t^2 .
    """

    name, paper, default_parameterization = "dsm", "Vincent 2011; Song & Ermon 2019, sec. 4.2", "score"

    def lam_over_sigma2(self, t):
        return torch.ones_like(t)

    def error(self, pred, x0, eps):
        return sq_norm(pred.sigma * pred.score + eps)


class X0Objective(Objective):
    """Data prediction (Karras et al. 2022, eq. 2): with ``x0hat = (x + sigma^2 s) / alpha`` (Tweedie),

    .. math::
        \\| \\hat x_0 - x_0 \\|^2, \\qquad \\lambda(t) = \\sigma_t^4 / \\alpha_t^2 .
    """

    name, paper, default_parameterization = "x0", "Karras et al. 2022, eq. 2", "x0"

    def lam_over_sigma2(self, t):
        return self.process.sigma_hat(t) ** 2

    def error(self, pred, x0, eps):
        return sq_norm(pred.x0 - x0)


class VObjective(Objective):
    """Velocity prediction (Salimans & Ho 2022, sec. 4): ``v = alpha eps - sigma x0``.

    .. math::
        \\| \\hat v_\\theta - v \\|^2, \\qquad
        \\lambda(t) = \\sigma_t^2 \\Big( \\frac{\\alpha_t^2 + \\sigma_t^2}{\\alpha_t} \\Big)^2 .
    """

    name, paper, default_parameterization = "v", "Salimans & Ho 2022, sec. 4", "v"

    def lam_over_sigma2(self, t):
        a, s = self.process.alpha(t), self.process.sigma(t)
        return ((a**2 + s**2) / a) ** 2

    def error(self, pred, x0, eps):
        return sq_norm(pred.v - (pred.alpha * eps - pred.sigma * x0))


class EDMObjective(Objective):
    """EDM's loss (Karras et al. 2022, eq. 8 and Table 1) in ``sigma_hat = sigma / alpha``.

    .. math::
        \\lambda_{EDM}(\\hat\\sigma) \\| D_\\theta - x_0 \\|^2, \\quad
        \\lambda_{EDM} = \\frac{\\hat\\sigma^2 + \\sigma_{data}^2}{(\\hat\\sigma \\sigma_{data})^2}, \\qquad
        \\lambda(t) = \\lambda_{EDM}\\, \\frac{\\sigma_t^4}{\\alpha_t^2}
        = \\sigma_t^2\\, \\frac{\\hat\\sigma^2 + \\sigma_{data}^2}{\\sigma_{data}^2} ;

    time ``lognormal`` by default (``ln sigma_hat ~ N(P_mean, P_std^2)``).
    """

    name, paper, default_parameterization = "edm", "Karras et al. 2022, eq. 8, Table 1", "edm"
    default_time = "lognormal"

    def lam_over_sigma2(self, t):
        return (self.process.sigma_hat(t) ** 2 + self.sigma_data**2) / self.sigma_data**2

    def error(self, pred, x0, eps):
        sigma_hat, sd = pred.sigma / pred.alpha, self.sigma_data
        lam_edm = (sigma_hat**2 + sd**2) / (sigma_hat * sd) ** 2
        return lam_edm[:, 0] * sq_norm(pred.x0 - x0)


class CFMObjective(Objective):
    """Conditional flow matching / rectified flow (Lipman et al. 2023, eq. 9; Liu et al. 2023, eq. 1).

    .. math::
        \\| \\hat u_\\theta(x_t, t) - (\\dot\\alpha_t x_0 + \\dot\\sigma_t \\epsilon) \\|^2, \\qquad
        \\lambda(t) = \\sigma_t^2 \\Big( \\frac{\\dot\\alpha_t \\sigma_t}{\\alpha_t} - \\dot\\sigma_t \\Big)^2
        \\;(= t^2 / (1-t)^2 \\text{ on Linear}) ;

    it needs a continuous process (the velocity of a discrete schedule jumps at every step).
    """

    name, paper, default_parameterization = "cfm", "Lipman et al. 2023, eq. 9; Liu et al. 2023", "flow"
    needs = "continuous"

    def lam_over_sigma2(self, t):
        p = self.process
        return (p.d_alpha(t) * p.sigma_hat(t) - p.d_sigma(t)) ** 2

    def error(self, pred, x0, eps):
        return sq_norm(pred.flow - (pred.d_alpha * x0 + pred.d_sigma * eps))
