"""A field of one process read on another, at the time with the same signal-to-noise ratio."""

from __future__ import annotations

import torch
from torch import Tensor

from ..processes import Process
from ..tensors import as_time
from .base import Field
from .coefficients import broadcast_coefficient

__all__ = ["OnProcess", "on_process"]


class OnProcess(Field):
    """A field of one process read on another, at the time with the same signal-to-noise ratio.

    ``x_t / alpha_t = x0 + (sigma_t / alpha_t) eps`` under every process, so a point ``x`` at time
    ``t`` of the new process is the point ``(alpha'_u / alpha_t) x`` at the time ``u`` of the field's
    own process where ``sigma / alpha`` is the same (Kingma et al. 2021, VDM, sec. 3.3: the
    continuous-time model is invariant to the schedule except at its end points). The denoiser and the
    noise prediction carry over unchanged; the score is rescaled, ``s_new(x) = c s_old(c x)``.
    """

    def __init__(self, field: Field, process: Process) -> None:
        self.inner, self.process = field, process
        self._last: tuple[float, Tensor, Tensor] | None = None
        self._maps: dict[float, tuple[Tensor, Tensor]] = {}

    def at_times(self, times: Tensor) -> OnProcess:
        """The times of the field's own process mapped in one vectorised pass (one bisection for the
        whole grid, not one per step), and the inner field prepared at them."""
        times = as_time(times).reshape(-1)
        u, c = self._map(times)
        new = super().at_times(times)
        new._maps = dict(zip(times.tolist(), zip(u.unbind(), c.unbind(), strict=True), strict=True))
        new.inner = self.inner.at_times(u)
        return new

    def _map(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """The field's own time ``u`` and the scale ``c = alpha_old(u) / alpha_new(t)`` (cached)."""
        t = as_time(t)
        if t.ndim != 0:
            u = self.inner.process.log_snr_to_t(self.process.log_snr(t))
            return u, self.inner.process.alpha(u) / self.process.alpha(t)
        mapped = self._maps.get(float(t))
        if mapped is not None:
            return mapped
        if self._last is None or self._last[0] != float(t):
            u = self.inner.process.log_snr_to_t(self.process.log_snr(t))
            self._last = (float(t), u, self.inner.process.alpha(u) / self.process.alpha(t))
        return self._last[1], self._last[2]

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        u, c = self._map(t)
        return self.inner.denoise(broadcast_coefficient(c, x) * x, u)

    def eps(self, x: Tensor, t: float | Tensor) -> Tensor:
        u, c = self._map(t)
        return self.inner.eps(broadcast_coefficient(c, x) * x, u)

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        u, c = self._map(t)
        c = broadcast_coefficient(c, x)
        return c * self.inner.score(c * x, u)

    def score_and_denoise(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        u, c = self._map(t)
        c = broadcast_coefficient(c, x)
        s, x0 = self.inner.score_and_denoise(c * x, u)
        return c * s, x0

    @property
    def has_density(self) -> bool:
        return self.inner.has_density

    @property
    def normalized(self) -> bool:
        return self.inner.normalized

    def log_prob(self, x: Tensor, t: float | Tensor) -> Tensor:
        """``log p_new(x) = log p_old(c x) + D log c``: the density of ``x = y / c``, ``y ~ p_old``."""
        return self.score_and_log_prob(x, t)[1]

    def score_and_log_prob(self, x: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor]:
        u, c = self._map(t)
        cb = broadcast_coefficient(c, x)
        s, log_p = self.inner.score_and_log_prob(cb * x, u)
        return cb * s, log_p + x.shape[1] * torch.log(torch.as_tensor(c)).to(log_p)


def on_process(field: Field, process: Process) -> Field:
    """``field`` itself where ``process`` is its own (the same class with the same parameters), else the
    field read on ``process`` at equal signal-to-noise ratio (``OnProcess``)."""
    own = field.process
    if type(own) is type(process) and vars(own).keys() == vars(process).keys():
        if all(_same(vars(own)[k], vars(process)[k]) for k in vars(process)):
            return field
    return OnProcess(field, process)


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        both = isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
        return both and a.shape == b.shape and bool((a == b).all())
    return a == b
