"""Forward (noising) processes ``x_t = alpha(t) x_0 + sigma(t) eps`` (DESIGN.md, "the one convention").

Each process supplies only coefficients. A subclass gives ``alpha``, ``sigma`` and their time
derivatives ``d_alpha``, ``d_sigma`` in closed form; the SDE coefficients follow once, here:

.. math::
    f(t) = \\frac{d \\log \\alpha}{dt}, \\qquad g^2(t) = \\frac{d\\sigma^2}{dt} - 2 f(t) \\sigma^2(t),

so that the forward SDE is ``dx = f x dt + g dw`` (Song et al. 2021, eq. 5; Kingma et al. 2021,
app. A). ``log_snr`` is ``lambda(t) = log(alpha / sigma)``. All coefficients are float64.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .tensors import as_time

__all__ = [
    "Process",
    "VP",
    "SubVP",
    "VE",
    "EDM",
    "OU",
    "Linear",
    "DDPMSchedule",
]


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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(t_min={self.t_min}, t_max={self.t_max})"


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


class DDPMSchedule(Process):
    """The discrete DDPM schedule (Ho et al. 2020) as a process on ``t`` in ``[0, T]``.

    Index ``t = n`` is the paper's ``x_n``: ``alpha(n)^2 = abar_n = prod_{i<=n} (1 - beta_i)``,
    ``abar_0 = 1``. Between integers ``log abar`` is interpolated linearly, so ``f`` and ``g^2``
    are piecewise constant (``g^2 = -log(1 - beta_n)``, about ``beta_n``). diffusers' timestep
    index ``k`` is ``t = k + 1``.

    Betas: ``linear`` (``1e-4 .. 0.02``, Ho et al.) or ``cosine`` (Nichol & Dhariwal 2021,
    ``beta <= 0.999``).
    """

    def __init__(
        self,
        num_steps: int = 1000,
        schedule: str = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
    ) -> None:
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if schedule == "linear":
            betas = torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
        elif schedule == "cosine":
            s = 0.008
            n = torch.arange(num_steps + 1, dtype=torch.float64)
            abar = torch.cos((n / num_steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
        else:
            raise ValueError(f"schedule must be 'linear' or 'cosine', got {schedule!r}")
        self.num_steps, self.schedule, self.betas = num_steps, schedule, betas
        self.name = f"ddpm-{schedule}"
        self.t_min, self.t_max = 0.0, float(num_steps)
        # log abar at integer times 0..T; log abar_0 = 0
        self._log_1mb = torch.log1p(-betas)
        self._log_abar = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(self._log_1mb, 0)])

    @property
    def alphas_cumprod(self) -> Tensor:
        """``abar_n`` for ``n = 1..T`` (diffusers' ``alphas_cumprod``)."""
        return torch.exp(self._log_abar[1:])

    def _segment(self, t: Tensor) -> tuple[Tensor, Tensor]:
        t = t.clamp(0.0, float(self.num_steps))
        n = torch.clamp(torch.ceil(t), min=1).long()  # t in (n-1, n]
        return t, n

    def _log_alpha2(self, t: Tensor) -> Tensor:
        t, n = self._segment(t)
        return self._log_abar[n - 1] + (t - (n - 1)) * self._log_1mb[n - 1]

    def alpha(self, t):
        return torch.exp(0.5 * self._log_alpha2(as_time(t)))

    def sigma(self, t):
        return torch.sqrt(-torch.expm1(self._log_alpha2(as_time(t))))

    def f(self, t):
        _, n = self._segment(as_time(t))
        return 0.5 * self._log_1mb[n - 1]

    def d_sigma2(self, t):
        return -2.0 * self.f(t) * self.alpha(t) ** 2

    def g2(self, t):
        return -2.0 * self.f(t)

    def d_alpha(self, t):
        return self.f(t) * self.alpha(t)

    def d_sigma(self, t):
        t = as_time(t)
        return -self.f(t) * self.alpha(t) ** 2 / self.sigma(t)

    def sigma_to_t(self, sigma):
        # invert the piecewise-linear log abar (decreasing in t)
        target = torch.log1p(-(as_time(sigma) ** 2))
        neg = -self._log_abar  # increasing
        n = torch.searchsorted(neg, -target).clamp(1, self.num_steps)
        frac = (target - self._log_abar[n - 1]) / self._log_1mb[n - 1]
        return (n - 1).to(torch.float64) + frac

    def betas_tilde(self) -> Tensor:
        """Posterior variances ``beta_tilde_n = (1 - abar_{n-1}) / (1 - abar_n) beta_n``, n = 1..T."""
        abar = torch.exp(self._log_abar)
        return (1 - abar[:-1]) / (1 - abar[1:]) * self.betas
