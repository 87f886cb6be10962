"""Networks as score fields: what a network predicts, and the one conversion to ``x0hat`` and ``eps``.

A network ``F(c_in x, c_noise, y)`` may predict one of (with ``x = alpha x0 + sigma eps``):

=========  ==========================================================  =====================================
name       the network's output                                        paper
=========  ==========================================================  =====================================
``eps``    ``eps``                                                     Ho et al. 2020 (DDPM)
``x0``     ``x0``                                                      Ramesh et al. 2022; Karras et al. 2022
``v``      ``v = alpha eps - sigma x0``                                Salimans & Ho 2022, sec. 4
``score``  ``sigma s`` (so ``s = F / sigma``; ``eps = -F``)            Song & Ermon 2020, technique 3
``edm``    ``F`` in ``D = c_skip xhat + c_out F(c_in xhat, c_noise)``  Karras et al. 2022, eq. 7, Table 1
``flow``   ``u = alpha' x0 + sigma' eps`` (conditional velocity)       Lipman et al. 2023; Liu et al. 2023
=========  ==========================================================  =====================================

Every parameterization sees the same inputs: ``x`` scaled to unit variance,
``c_in = 1 / sqrt(alpha^2 sigma_data^2 + sigma^2)``, and the noise level ``c_noise = log(sigma / alpha) / 4``
(EDM's choice, read on ``sigma_hat = sigma / alpha`` so that it means the same under every process).
The output is turned into a ``Prediction`` holding ``x0hat`` and ``eps_hat``; every other quantity
(score, ``v``, the flow velocity) follows from those two and ``x`` alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._tensor import as_time
from .fields import Field, Prediction, _coef, coefficients, per_sample_time
from .processes import Process

__all__ = ["PARAMETERIZATIONS", "NetworkField", "OnProcess"]

PARAMETERIZATIONS: tuple[str, ...] = ("eps", "x0", "v", "score", "edm", "flow")

_SIGMA_HAT_FLOOR = 1e-6  # c_noise at sigma = 0 (t_min of VP/EDM) would be -inf


class NetworkField(Field):
    """A network as the score field of one process (the parameterizations in the module docstring).

    Args:
        net: ``net(x_in, c_noise, y) -> F`` with ``x_in`` (N, D), ``c_noise`` (N,), ``y`` (N,) or None.
        process: the process the network was trained under.
        parameterization: one of ``PARAMETERIZATIONS``.
        sigma_data: the data's standard deviation (input scaling; EDM's ``sigma_data``).
        labels: class labels used when the field is evaluated without ``y`` (``None``: the null
            class of a conditional network, or no label for an unconditional one).
    """

    def __init__(
        self,
        net: nn.Module,
        process: Process,
        parameterization: str = "eps",
        *,
        sigma_data: float = 1.0,
        labels: Tensor | None = None,
    ) -> None:
        if parameterization not in PARAMETERIZATIONS:
            choices = ", ".join(PARAMETERIZATIONS)
            raise ValueError(f"parameterization must be one of {choices}, got {parameterization!r}")
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be positive, got {sigma_data}")
        self.net, self.process, self.parameterization = net, process, parameterization
        self.sigma_data, self.labels = float(sigma_data), labels

    def predict(self, x: Tensor, t: float | Tensor, y: Tensor | None = None) -> Prediction:
        """The network's prediction at ``x`` (N, D) and times ``t`` (scalar or (N,)), as ``x0hat`` and ``eps``."""
        t = per_sample_time(t, x.shape[0])
        a, s, da, ds = coefficients(self.process, t, x)
        sd = self.sigma_data
        c_in = 1.0 / torch.sqrt(a**2 * sd**2 + s**2)
        sigma_hat = (s / a).clamp(min=_SIGMA_HAT_FLOOR)
        c_noise = 0.25 * torch.log(sigma_hat)[:, 0]
        if y is None and self.labels is not None:
            y = self.labels.expand(x.shape[0]) if self.labels.ndim == 0 else self.labels
        param = next(self.net.parameters(), None)
        net_dtype = param.dtype if param is not None else x.dtype
        out = self.net((c_in * x).to(net_dtype), c_noise.to(net_dtype), y).to(x.dtype)
        x0, eps = self._convert(out, x, a, s, da, ds, sigma_hat)
        return Prediction(x, a, s, da, ds, x0, eps)

    def _convert(self, out, x, a, s, da, ds, sigma_hat) -> tuple[Tensor, Tensor]:
        """The network output to ``(x0hat, eps_hat)``; each form solves ``x = alpha x0 + sigma eps``."""
        p = self.parameterization
        if p == "eps":
            return (x - s * out) / a, out
        if p == "score":  # out = sigma s = -eps
            return (x + s * out) / a, -out
        if p == "x0":
            return out, (x - a * out) / s
        if p == "v":  # [alpha sigma; -sigma alpha] [x0; eps] = [x; v]
            norm = a**2 + s**2
            return (a * x - s * out) / norm, (s * x + a * out) / norm
        if p == "edm":  # Karras et al. 2022, eq. 7 in xhat = x / alpha, sigma_hat = sigma / alpha
            sd2, sh2 = self.sigma_data**2, sigma_hat**2
            c_skip = sd2 / (sh2 + sd2)
            c_out = sigma_hat * self.sigma_data / torch.sqrt(sh2 + sd2)
            x0 = c_skip * (x / a) + c_out * out
            return x0, (x - a * x0) / s
        # flow: [alpha sigma; alpha' sigma'] [x0; eps] = [x; u], determinant alpha^2 d(sigma/alpha)/dt > 0
        det = a * ds - da * s
        return (ds * x - s * out) / det, (a * out - da * x) / det

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        return self.predict(x, t).score

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        return self.predict(x, t).x0

    def eps(self, x: Tensor, t: float | Tensor) -> Tensor:
        return self.predict(x, t).eps

    def _score_and_denoise(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        p = self.predict(x, t)
        return p.score, p.x0


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

    def _map(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """The field's own time ``u`` and the scale ``c = alpha_old(u) / alpha_new(t)`` (cached)."""
        t = as_time(t)
        if t.ndim != 0:
            u = self.inner.process.log_snr_to_t(self.process.log_snr(t))
            return u, self.inner.process.alpha(u) / self.process.alpha(t)
        if self._last is None or self._last[0] != float(t):
            u = self.inner.process.log_snr_to_t(self.process.log_snr(t))
            self._last = (float(t), u, self.inner.process.alpha(u) / self.process.alpha(t))
        return self._last[1], self._last[2]

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        u, c = self._map(t)
        return self.inner.denoise(_coef(c, x) * x, u)

    def eps(self, x: Tensor, t: float | Tensor) -> Tensor:
        u, c = self._map(t)
        return self.inner.eps(_coef(c, x) * x, u)

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        u, c = self._map(t)
        c = _coef(c, x)
        return c * self.inner.score(c * x, u)

    def _score_and_denoise(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        u, c = self._map(t)
        c = _coef(c, x)
        s, x0 = self.inner._score_and_denoise(c * x, u)
        return c * s, x0
