"""The base of every forward (noising) process ``x_t = alpha(t) x_0 + sigma(t) eps`` (DESIGN.md,
"the one convention"), and the two-time transition between its times.

A subclass supplies only coefficients: ``alpha``, ``sigma`` and their time derivatives ``d_alpha``,
``d_sigma`` in closed form. The SDE coefficients follow once, here:

.. math::
    f(t) = \\frac{d \\log \\alpha}{dt}, \\qquad g^2(t) = \\frac{d\\sigma^2}{dt} - 2 f(t) \\sigma^2(t),

so that the forward SDE is ``dx = f x dt + g dw`` (Song et al. 2021, eq. 5; Kingma et al. 2021,
app. A). ``log_snr`` is ``lambda(t) = log(alpha / sigma)``. All coefficients are float64.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ..tensors import as_time

__all__ = ["Process", "Transition"]


class Transition(NamedTuple):
    """The Gaussian transition between two times ``s <= t`` of ``x_t = alpha x_0 + sigma eps``.

    Kingma et al. (2021, VDM, eqs. 2-3 and app. A): forward,

    .. math::
        x_t = \\alpha_{t|s} x_s + \\sigma_{t|s} \\epsilon, \\qquad
        \\alpha_{t|s} = \\frac{\\alpha_t}{\\alpha_s}, \\qquad
        \\sigma_{t|s}^2 = \\sigma_t^2 - \\alpha_{t|s}^2 \\sigma_s^2 ;

    backward, the posterior ``q(x_s | x_t, x_0) = N(c_x x_t + c_{x_0} x_0, tilde sigma^2 I)`` with

    .. math::
        c_x = \\frac{\\alpha_{t|s} \\sigma_s^2}{\\sigma_t^2}, \\qquad
        c_{x_0} = \\frac{\\alpha_s \\sigma_{t|s}^2}{\\sigma_t^2}, \\qquad
        \\tilde\\sigma^2 = \\frac{\\sigma_{t|s}^2 \\sigma_s^2}{\\sigma_t^2} .

    On consecutive integer times of the discrete schedule ``sigma_{t|s}^2`` is DDPM's ``beta_t`` and
    ``tilde sigma^2`` its ``tilde beta_t`` (Ho et al. 2020, eqs. 6-7). Every field is a float64 tensor
    shaped like the times it was made from.
    """

    alpha_t: Tensor
    sigma_t: Tensor
    alpha_s: Tensor
    sigma_s: Tensor
    alpha_ts: Tensor  # alpha_{t|s}
    var_ts: Tensor  # sigma_{t|s}^2

    @property
    def posterior_x(self) -> Tensor:
        """``c_x``, the posterior mean's coefficient of ``x_t``."""
        return self.alpha_ts * self.sigma_s**2 / self.sigma_t**2

    @property
    def posterior_x0(self) -> Tensor:
        """``c_{x_0}``, the posterior mean's coefficient of ``x_0``."""
        return self.alpha_s * self.var_ts / self.sigma_t**2

    @property
    def posterior_var(self) -> Tensor:
        """``tilde sigma^2``, the posterior variance."""
        return self.var_ts * self.sigma_s**2 / self.sigma_t**2

    def forward(self, x_s: Tensor, noise: Tensor) -> Tensor:
        """A draw of ``x_t`` given ``x_s``: ``alpha_{t|s} x_s + sigma_{t|s} noise`` (in ``x_s``'s dtype)."""
        return (self.alpha_ts * x_s + torch.sqrt(self.var_ts) * noise).to(x_s.dtype)


class Process:
    """Base class: ``alpha``, ``sigma``, their derivatives, and what follows from them.

    ``t_min`` is the cleanest time of the process (``sigma(t_min) = 0`` for every process here but
    VE, whose ladder stops at ``sigma_min``) and ``t_max`` the noisiest.
    """

    name: str = "process"
    t_min: float = 0.0
    t_max: float = 1.0

    # --- what a subclass supplies -------------------------------------------------------------
    def alpha(self, t: float | Tensor) -> Tensor:
        raise NotImplementedError

    def sigma(self, t: float | Tensor) -> Tensor:
        raise NotImplementedError

    def d_alpha(self, t: float | Tensor) -> Tensor:
        raise NotImplementedError

    def d_sigma(self, t: float | Tensor) -> Tensor:
        raise NotImplementedError

    # --- what follows, written once ------------------------------------------------------------
    def f(self, t: float | Tensor) -> Tensor:
        """Drift coefficient ``f(t) = d log alpha / dt``."""
        return self.d_alpha(t) / self.alpha(t)

    def d_sigma2(self, t: float | Tensor) -> Tensor:
        """``d sigma^2 / dt = 2 sigma sigma'``; subclasses whose ``sigma'`` diverges where
        ``sigma = 0`` (``sigma ~ sqrt(t)``: VP, OU) give its finite closed form."""
        return 2.0 * self.sigma(t) * self.d_sigma(t)

    def g2(self, t: float | Tensor) -> Tensor:
        """Squared diffusion ``g(t)^2 = d sigma^2/dt - 2 f(t) sigma(t)^2``."""
        return self.d_sigma2(t) - 2.0 * self.f(t) * self.sigma(t) ** 2

    def log_snr(self, t: float | Tensor) -> Tensor:
        """Half log signal-to-noise ratio ``lambda(t) = log alpha(t) - log sigma(t)``."""
        return torch.log(self.alpha(t)) - torch.log(self.sigma(t))

    def sigma_hat(self, t: float | Tensor) -> Tensor:
        """Noise-to-signal ratio ``sigma / alpha`` (the EDM ``sigma`` of the scaled process)."""
        return self.sigma(t) / self.alpha(t)

    def sigma_to_t(self, sigma: float | Tensor) -> Tensor:
        """Inverse of ``sigma(t)`` (closed form where a subclass has one, else bisection)."""
        return self._bisect(self.sigma, as_time(sigma), increasing=True)

    def log_snr_to_t(self, lam: float | Tensor) -> Tensor:
        """Inverse of ``lambda(t)``, by bisection (``lambda`` is strictly decreasing)."""
        return self._bisect(self.log_snr, as_time(lam), increasing=False)

    def sigma_hat_to_t(self, sigma_hat: float | Tensor) -> Tensor:
        """Inverse of ``sigma_hat(t) = sigma / alpha``: the times where the noise-to-signal ratio is
        ``sigma_hat``, through ``lambda = -log sigma_hat`` (``log_snr_to_t``)."""
        return self.log_snr_to_t(-torch.log(as_time(sigma_hat)))

    def _bisect(self, fn, target: Tensor, increasing: bool, iters: int = 200) -> Tensor:
        lo = torch.full_like(target, self.t_min)
        hi = torch.full_like(target, self.t_max)
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            above = fn(mid) > target if increasing else fn(mid) < target
            new_hi, new_lo = torch.where(above, mid, hi), torch.where(above, lo, mid)
            if torch.equal(new_hi, hi) and torch.equal(new_lo, lo):
                break  # float64 has stopped moving the bounds: more halvings change nothing
            hi, lo = new_hi, new_lo
        return 0.5 * (lo + hi)

    def marginal_sample(self, x0: Tensor, t: float | Tensor, eps: Tensor) -> Tensor:
        """Forward sample ``x_t = alpha(t) x_0 + sigma(t) eps``."""
        return (self.alpha(t) * x0 + self.sigma(t) * eps).to(x0.dtype)

    def transition(self, t: float | Tensor, s: float | Tensor) -> Transition:
        """The two-time Gaussian transition ``x_t | x_s`` for ``s <= t`` (``Transition``), at one pair of
        times or elementwise at tensors of them (every step of a grid at once)."""
        t, s = as_time(t), as_time(s)
        a_t, s_t, a_s, s_s = self.alpha(t), self.sigma(t), self.alpha(s), self.sigma(s)
        a_ts = a_t / a_s
        var_ts = torch.clamp(s_t**2 - a_ts**2 * s_s**2, min=0.0)  # rounding can leave it a hair below 0
        return Transition(a_t, s_t, a_s, s_s, a_ts, var_ts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(t_min={self.t_min}, t_max={self.t_max})"
