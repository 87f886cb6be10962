"""The continuous-time processes: VP (linear and cosine), sub-VP, VE, EDM, Ornstein–Uhlenbeck and the
linear path of flow matching, each as ``alpha``, ``sigma`` and their derivatives in closed form."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..tensors import as_time
from .base import Process

__all__ = ["VP", "SubVP", "VE", "EDM", "OU", "Linear"]


class VP(Process):
    """Variance-preserving process (DDPM / score_sde VP-SDE), linear or cosine schedule.

    Linear (Song et al. 2021, eq. 11): ``beta(t) = beta_min + t (beta_max - beta_min)``,
    ``alpha = exp(-1/2 int_0^t beta)``, ``sigma = sqrt(1 - alpha^2)``.
    Cosine (Nichol & Dhariwal 2021, eq. 17): ``alpha^2 = cos^2((t+s)/(1+s) pi/2) / cos^2(s/(1+s) pi/2)``;
    ``t_max`` stops short of 1, where ``alpha = 0`` and ``f`` diverges.
    """

    def __init__(
        self,
        schedule: str = "linear",
        beta_min: float = 0.1,
        beta_max: float = 20.0,
        s: float = 0.008,
        t_max: float | None = None,
    ) -> None:
        if schedule not in ("linear", "cosine"):
            raise ValueError(f"schedule must be 'linear' or 'cosine', got {schedule!r}")
        self.schedule, self.beta_min, self.beta_max, self.s = schedule, beta_min, beta_max, s
        self.name = f"vp-{schedule}"
        self.t_max = t_max if t_max is not None else (1.0 if schedule == "linear" else 0.9946)

    def _log_alpha(self, t: Tensor) -> Tensor:
        if self.schedule == "linear":
            return -0.5 * (self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2)
        c = math.pi / 2 / (1 + self.s)
        # clamp: at t = 0 rounding can leave log alpha a hair above 0
        return torch.clamp(torch.log(torch.cos((t + self.s) * c)) - math.log(math.cos(self.s * c)), max=0.0)

    def _d_log_alpha(self, t: Tensor) -> Tensor:
        if self.schedule == "linear":
            return -0.5 * (self.beta_min + (self.beta_max - self.beta_min) * t)
        c = math.pi / 2 / (1 + self.s)
        return -c * torch.tan((t + self.s) * c)

    def alpha(self, t):
        return torch.exp(self._log_alpha(as_time(t)))

    def sigma(self, t):
        # sqrt(1 - exp(2 log alpha)) computed with expm1 so small t keeps full precision
        return torch.sqrt(torch.clamp(-torch.expm1(2.0 * self._log_alpha(as_time(t))), min=0.0))

    def d_alpha(self, t):
        t = as_time(t)
        return self._d_log_alpha(t) * self.alpha(t)

    def d_sigma(self, t):
        t = as_time(t)
        return -self._d_log_alpha(t) * self.alpha(t) ** 2 / self.sigma(t)

    def d_sigma2(self, t):
        t = as_time(t)
        return -2.0 * self._d_log_alpha(t) * self.alpha(t) ** 2

    def f(self, t):
        return self._d_log_alpha(as_time(t))

    def g2(self, t):
        return -2.0 * self._d_log_alpha(as_time(t))  # beta(t) for the linear schedule

    def sigma_to_t(self, sigma):
        sigma = as_time(sigma)
        log_alpha = 0.5 * torch.log1p(-(sigma**2))
        if self.schedule == "linear":
            # solve beta_min t + (beta_max - beta_min) t^2 / 2 = -2 log alpha
            a, b, c = 0.5 * (self.beta_max - self.beta_min), self.beta_min, 2.0 * log_alpha
            return 2.0 * (-c) / (b + torch.sqrt(b**2 - 4.0 * a * c))
        cfac = math.pi / 2 / (1 + self.s)
        cos_arg = torch.exp(log_alpha) * math.cos(self.s * cfac)
        return torch.arccos(cos_arg) / cfac - self.s


class SubVP(VP):
    """Sub-VP process (Song et al. 2021, eq. 29): ``alpha`` as VP-linear, ``sigma = 1 - alpha^2``."""

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, t_max: float = 1.0) -> None:
        super().__init__("linear", beta_min, beta_max, t_max=t_max)
        self.name = "subvp"

    def sigma(self, t):
        return -torch.expm1(2.0 * self._log_alpha(as_time(t)))

    def d_sigma(self, t):
        t = as_time(t)
        return -2.0 * self._d_log_alpha(t) * self.alpha(t) ** 2

    def d_sigma2(self, t):
        return 2.0 * self.sigma(t) * self.d_sigma(t)

    def g2(self, t):
        return Process.g2(self, t)

    def sigma_to_t(self, sigma):
        # 1 - alpha^2 = sigma  =>  -2 log alpha = -log(1 - sigma)
        sigma = as_time(sigma)
        a, b, c = 0.5 * (self.beta_max - self.beta_min), self.beta_min, torch.log1p(-sigma)
        return 2.0 * (-c) / (b + torch.sqrt(b**2 - 4.0 * a * c))


class VE(Process):
    """Variance-exploding process (NCSN; Song et al. 2021, eq. 9): ``alpha = 1``,
    ``sigma = sigma_min (sigma_max / sigma_min)^t``; ``t`` in ``[0, 1]``."""

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0) -> None:
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self.name, self.t_min, self.t_max = "ve", 0.0, 1.0
        self._log_ratio = math.log(sigma_max / sigma_min)

    def alpha(self, t):
        return torch.ones_like(as_time(t))

    def sigma(self, t):
        return self.sigma_min * torch.exp(as_time(t) * self._log_ratio)

    def d_alpha(self, t):
        return torch.zeros_like(as_time(t))

    def d_sigma(self, t):
        return self.sigma(t) * self._log_ratio

    def sigma_to_t(self, sigma):
        return torch.log(as_time(sigma) / self.sigma_min) / self._log_ratio


class EDM(Process):
    """The EDM process (Karras et al. 2022, sec. 3): ``alpha = 1``, ``sigma = t``, ``t`` in ``[0, 80]``."""

    def __init__(self, sigma_max: float = 80.0) -> None:
        self.name, self.t_min, self.t_max = "edm", 0.0, float(sigma_max)

    def alpha(self, t):
        return torch.ones_like(as_time(t))

    def sigma(self, t):
        return as_time(t).clone()

    def d_alpha(self, t):
        return torch.zeros_like(as_time(t))

    def d_sigma(self, t):
        return torch.ones_like(as_time(t))

    def sigma_to_t(self, sigma):
        return as_time(sigma).clone()

    def log_snr_to_t(self, lam):
        # lambda = -log t (closed form; the base class bisects)
        return torch.exp(-as_time(lam)).clamp(self.t_min, self.t_max)


class OU(Process):
    """Ornstein–Uhlenbeck process ``dx = -x/2 dt + dw``: ``alpha = e^{-t/2}``, ``sigma = sqrt(1 - e^{-t})``."""

    def __init__(self, t_max: float = 12.0) -> None:
        self.name, self.t_min, self.t_max = "ou", 0.0, float(t_max)

    def alpha(self, t):
        return torch.exp(-0.5 * as_time(t))

    def sigma(self, t):
        return torch.sqrt(-torch.expm1(-as_time(t)))

    def d_alpha(self, t):
        return -0.5 * self.alpha(t)

    def d_sigma(self, t):
        t = as_time(t)
        return 0.5 * torch.exp(-t) / self.sigma(t)

    def d_sigma2(self, t):
        return torch.exp(-as_time(t))

    def f(self, t):
        return torch.full_like(as_time(t), -0.5)

    def g2(self, t):
        return torch.ones_like(as_time(t))

    def sigma_to_t(self, sigma):
        return -torch.log1p(-(as_time(sigma) ** 2))


class Linear(Process):
    """Linear interpolation path of flow matching / rectified flow (Lipman et al. 2023;
    Liu et al. 2023): ``alpha = 1 - t``, ``sigma = t``. ``f`` and ``g^2`` diverge at ``t = 1``
    (``alpha = 0``), so ``t_max`` defaults to ``1 - 1e-3``; the velocity stays finite there."""

    def __init__(self, t_max: float = 1.0 - 1e-3) -> None:
        self.name, self.t_min, self.t_max = "linear", 0.0, float(t_max)

    def alpha(self, t):
        return 1.0 - as_time(t)

    def sigma(self, t):
        return as_time(t).clone()

    def d_alpha(self, t):
        return -torch.ones_like(as_time(t))

    def d_sigma(self, t):
        return torch.ones_like(as_time(t))

    def sigma_to_t(self, sigma):
        return as_time(sigma).clone()

    def log_snr_to_t(self, lam):
        # lambda = log((1 - t) / t), so t = sigmoid(-lambda)
        return torch.sigmoid(-as_time(lam)).clamp(self.t_min, self.t_max)
