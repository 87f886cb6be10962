"""Score fields: a denoiser is a score (Tweedie), and every parameterization converts here, once.

A ``Field`` answers, at ``(x, t)`` for one process ``x_t = alpha x_0 + sigma eps``:

.. math::
    s = \\nabla_x \\log p_t(x), \\quad \\hat\\epsilon = -\\sigma s, \\quad
    \\hat x_0 = \\frac{x + \\sigma^2 s}{\\alpha} \\;\\text{(Tweedie)}, \\quad
    v = f x - \\tfrac12 g^2 s = \\dot\\alpha \\hat x_0 - \\tfrac12 \\tfrac{d\\sigma^2}{dt} s .

The velocity is evaluated in its last form: it is the same quantity, but stays finite where
``alpha -> 0`` (the Linear process at ``t = 1``) and where ``sigma = 0`` (VP and OU at
``t = 0``, where ``sigma'`` diverges), whenever the denoiser does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._tensor import as_time
from .processes import Process
from .targets.mixture import GaussianMixture, component_terms, precision_times

__all__ = [
    "Field",
    "AnalyticField",
    "CountingField",
    "score_from_denoise",
    "denoise_from_score",
    "score_from_eps",
]


def _coef(c: Tensor, x: Tensor) -> Tensor:
    """A coefficient (0-dim, or one per sample) shaped to broadcast against ``x`` of shape (N, D)."""
    c = c.to(dtype=x.dtype, device=x.device)
    return c[:, None] if c.ndim == 1 else c


def score_from_denoise(x: Tensor, x0: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Tweedie's formula solved for the score: ``s = (alpha x0hat - x) / sigma^2``."""
    return (_coef(alpha, x) * x0 - x) / _coef(sigma, x) ** 2


def denoise_from_score(x: Tensor, s: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Tweedie's formula (Robbins 1956; Efron 2011): ``x0hat = (x + sigma^2 s) / alpha``."""
    return (x + _coef(sigma, x) ** 2 * s) / _coef(alpha, x)


def score_from_eps(eps: Tensor, sigma: Tensor) -> Tensor:
    """Noise prediction to score: ``s = -eps / sigma`` (Vincent 2011; Song et al. 2021, eq. 8)."""
    return -eps / _coef(sigma, eps)


class Field:
    """A score field of one process. Subclasses implement ``score``; they may override
    ``denoise`` where they have a form that is better conditioned than Tweedie's."""

    process: Process

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        raise NotImplementedError

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Posterior mean ``E[x_0 | x_t = x]``."""
        t = as_time(t)
        return denoise_from_score(x, self.score(x, t), self.process.alpha(t), self.process.sigma(t))

    def eps(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Predicted noise ``E[eps | x_t = x] = -sigma s``."""
        return -_coef(self.process.sigma(as_time(t)), x) * self.score(x, t)

    def velocity(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Probability-flow ODE velocity (Song et al. 2021, eq. 13): ``dx/dt = f x - g^2 s / 2``,
        evaluated as ``alpha' x0hat - (d sigma^2/dt) s / 2``: the same quantity, finite where
        ``alpha = 0`` (``f`` diverges) and where ``sigma = 0`` (``sigma'`` may diverge)."""
        t = as_time(t)
        p = self.process
        s, x0 = self._score_and_denoise(x, t)
        return _coef(p.d_alpha(t), x) * x0 - _coef(0.5 * p.d_sigma2(t), x) * s

    def _score_and_denoise(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Both at once; a subclass with a shared computation overrides this to do it once."""
        s = self.score(x, t)
        if type(self).denoise is Field.denoise:
            return s, denoise_from_score(x, s, self.process.alpha(t), self.process.sigma(t))
        return s, self.denoise(x, t)


class AnalyticField(Field):
    """The exact field of a Gaussian mixture under any process.

    With ``m_k = alpha mu_k``, ``S_k = alpha^2 Sigma_k + sigma^2 I`` and responsibilities
    ``w_k(x)`` of the noised mixture (log-sum-exp):

    .. math::
        s(x, t) = -\\sum_k w_k S_k^{-1}(x - m_k), \\qquad
        \\hat x_0 = \\sum_k w_k \\left[\\mu_k + \\alpha \\Sigma_k S_k^{-1}(x - m_k)\\right].

    The posterior-mean form of ``x0hat`` is used directly: it is exact also where ``alpha = 0``.
    Computation is in ``dtype`` (float64 by default); results come back in ``x``'s dtype.
    Memory is ``O(N K D)``.

    Args:
        target: the mixture at ``t = t_min`` (data).
        process: the forward process.
        dtype: working precision.
    """

    def __init__(self, target: GaussianMixture, process: Process, dtype: torch.dtype = torch.float64):
        self.target, self.process, self.dtype = target, process, dtype
        self._cache: tuple[float, Tensor, Tensor, float] | None = None

    def _factor(self, t: Tensor) -> tuple[Tensor, Tensor, float]:
        """Cholesky factors of ``S_k`` at ``t`` and the scaled means (cached for the last ``t``)."""
        if t.ndim != 0:
            raise ValueError("AnalyticField takes one time for the whole batch (a 0-dim t)")
        key = float(t)
        if self._cache is None or self._cache[0] != key:
            a, s = float(self.process.alpha(t)), float(self.process.sigma(t))
            tg = self.target
            eye = torch.eye(tg.dim, dtype=torch.float64)
            chol = torch.linalg.cholesky(a**2 * tg.covs + s**2 * eye)
            self._cache = (key, chol.to(self.dtype), (a * tg.means).to(self.dtype), a)
        return self._cache[1], self._cache[2], self._cache[3]

    def _posterior(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor, float]:
        """Responsibilities ``w`` (N, K) and ``S_k^{-1}(x - m_k)`` (K, D, N) of the noised mixture."""
        chol, m, a = self._factor(as_time(t))
        log_w = torch.log(self.target.weights.to(self.dtype))
        log_joint, z = component_terms(x.to(self.dtype), log_w, m, chol)
        return torch.softmax(log_joint, dim=1), precision_times(chol, z), a

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        w, prec_diff, _ = self._posterior(x, as_time(t))
        return self._score_from(w, prec_diff).to(x.dtype)

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        w, prec_diff, a = self._posterior(x, as_time(t))
        return self._denoise_from(w, prec_diff, a).to(x.dtype)

    def _score_and_denoise(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        w, prec_diff, a = self._posterior(x, t)  # one posterior for both (the PF-ODE velocity)
        return self._score_from(w, prec_diff).to(x.dtype), self._denoise_from(w, prec_diff, a).to(x.dtype)

    @staticmethod
    def _score_from(w: Tensor, prec_diff: Tensor) -> Tensor:
        return -torch.einsum("nk,kdn->nd", w, prec_diff)

    def _denoise_from(self, w: Tensor, prec_diff: Tensor, a: float) -> Tensor:
        covs = self.target.covs.to(self.dtype)
        mean_part = w @ self.target.means.to(self.dtype)
        cov_part = torch.einsum("nk,kdn->nd", w, covs @ prec_diff)  # (K,D,D)@(K,D,N) first: fast
        return mean_part + a * cov_part

    def log_prob(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Exact ``log p_t(x)`` of the noised mixture."""
        return self.target.noised(self.process, t).log_prob(x)


class CountingField(Field):
    """Wraps a field and counts its evaluations (NFE): one per call of any of its methods on a batch."""

    def __init__(self, field: Field) -> None:
        self.inner, self.process, self.nfe = field, field.process, 0

    def score(self, x, t):
        self.nfe += 1
        return self.inner.score(x, t)

    def denoise(self, x, t):
        self.nfe += 1
        return self.inner.denoise(x, t)

    def eps(self, x, t):
        self.nfe += 1
        return self.inner.eps(x, t)

    def velocity(self, x, t):
        self.nfe += 1
        return self.inner.velocity(x, t)
