"""The discrete DDPM schedule as a process on ``[0, T]`` (Ho et al. 2020)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..tensors import PerDevice, as_time
from .base import Process

__all__ = ["DDPMSchedule"]


class DDPMSchedule(Process):
    """The discrete DDPM schedule (Ho et al. 2020) as a process on ``t`` in ``[0, T]``.

    Index ``t = n`` is the paper's ``x_n``: ``alpha(n)^2 = abar_n = prod_{i<=n} (1 - beta_i)``,
    ``abar_0 = 1``. Between integers ``log abar`` is interpolated linearly, so ``f`` and ``g^2``
    are piecewise constant (``g^2 = -log(1 - beta_n)``, about ``beta_n``). diffusers' timestep
    index ``k`` is ``t = k + 1``.

    Betas: ``linear`` (``1e-4 .. 0.02``, Ho et al.), ``cosine`` (Nichol & Dhariwal 2021,
    ``beta <= 0.999``), ``scaled_linear`` (linear in ``sqrt(beta)``, as latent diffusion models
    use), or any ``betas`` given (diffusers' ``trained_betas``).
    """

    def __init__(
        self,
        num_steps: int = 1000,
        schedule: str = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        *,
        betas: Tensor | None = None,
    ) -> None:
        if betas is not None:
            betas, schedule = _checked_betas(betas), "custom"
        else:
            betas = _betas(num_steps, schedule, beta_start, beta_end)
        num_steps = betas.numel()
        self.num_steps, self.schedule, self.betas = num_steps, schedule, betas
        self.name = f"ddpm-{schedule}"
        self.t_min, self.t_max = 0.0, float(num_steps)
        # log abar at integer times 0..T; log abar_0 = 0
        self._log_1mb = torch.log1p(-betas)
        self._log_abar = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(self._log_1mb, 0)])
        # the two tables on each device its times come from (read at every step)
        self._tables = PerDevice(self._log_abar, self._log_1mb)

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
        log_abar, log_1mb = self._tables.on(t.device)
        return log_abar[n - 1] + (t - (n - 1)) * log_1mb[n - 1]

    def alpha(self, t):
        return torch.exp(0.5 * self._log_alpha2(as_time(t)))

    def sigma(self, t):
        return torch.sqrt(-torch.expm1(self._log_alpha2(as_time(t))))

    def f(self, t):
        t, n = self._segment(as_time(t))
        return 0.5 * self._tables.on(t.device)[1][n - 1]

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
        log_abar, log_1mb = self._tables.on(target.device)
        n = torch.searchsorted(-log_abar, -target).clamp(1, self.num_steps)  # -log abar is increasing
        frac = (target - log_abar[n - 1]) / log_1mb[n - 1]
        return (n - 1).to(torch.float64) + frac

    def betas_tilde(self) -> Tensor:
        """Posterior variances ``beta_tilde_n = (1 - abar_{n-1}) / (1 - abar_n) beta_n``, n = 1..T."""
        abar = torch.exp(self._log_abar)
        return (1 - abar[:-1]) / (1 - abar[1:]) * self.betas


def _betas(num_steps: int, schedule: str, beta_start: float, beta_end: float) -> Tensor:
    """The named schedule's betas, ``beta_1 .. beta_T``."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if schedule == "linear":
        return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
    if schedule == "scaled_linear":  # linear in sqrt(beta) (Rombach et al. 2022's latent diffusion)
        return torch.linspace(beta_start**0.5, beta_end**0.5, num_steps, dtype=torch.float64) ** 2
    if schedule == "cosine":  # abar(n) = cos^2((n/T + s) / (1 + s) pi/2), s = 0.008; beta capped at 0.999
        s = 0.008
        n = torch.arange(num_steps + 1, dtype=torch.float64)
        abar = torch.cos((n / num_steps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    raise ValueError(f"schedule must be 'linear', 'cosine' or 'scaled_linear', got {schedule!r}")


def _checked_betas(betas) -> Tensor:
    betas = torch.as_tensor(betas, dtype=torch.float64).reshape(-1)
    if betas.numel() < 1 or not bool(((betas > 0) & (betas < 1)).all()):
        raise ValueError("betas must be a non-empty sequence of values in (0, 1)")
    return betas
