"""The exact score field of a Gaussian mixture under any process."""

from __future__ import annotations

import torch
from torch import Tensor

from ..processes import Process
from ..targets import GaussianMixture, component_terms, precision_times
from ..tensors import LOG_2PI, as_time
from .base import Field

__all__ = ["AnalyticField"]


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
        key = float(t)
        if self._cache is None or self._cache[0] != key:
            c = self.coefficients_at(t)
            a, s = float(c.alpha), float(c.sigma)
            tg = self.target
            eye = torch.eye(tg.dim, dtype=torch.float64)
            chol = torch.linalg.cholesky(a**2 * tg.covs + s**2 * eye)
            self._cache = (key, chol.to(self.dtype), (a * tg.means).to(self.dtype), a)
        return self._cache[1], self._cache[2], self._cache[3]

    def _posterior(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor, float | Tensor]:
        """Responsibilities ``w`` (N, K) and ``S_k^{-1}(x - m_k)`` (K, D, N) of the noised mixture."""
        t = as_time(t)
        if t.ndim == 1:
            return self._posterior_per_sample(x, t)
        chol, m, a = self._factor(t)
        log_w = torch.log(self.target.weights.to(self.dtype))
        log_joint, z = component_terms(x.to(self.dtype), log_w, m, chol)
        return torch.softmax(log_joint, dim=1), precision_times(chol, z), a

    def _posterior_per_sample(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The same with one time per sample (training objectives): ``N x K`` Cholesky factors."""
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},), got {tuple(t.shape)}")
        tg = self.target
        a, s = self.process.alpha(t)[:, None, None, None], self.process.sigma(t)[:, None, None, None]
        eye = torch.eye(tg.dim, dtype=torch.float64)
        chol = torch.linalg.cholesky(a**2 * tg.covs[None] + s**2 * eye).to(self.dtype)  # (N, K, D, D)
        diff = x.to(self.dtype)[:, None, :, None] - (a * tg.means[None, :, :, None]).to(self.dtype)
        z = torch.linalg.solve_triangular(chol, diff, upper=False)  # (N, K, D, 1)
        half_logdet = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # (N, K)
        log_n = -0.5 * (z[..., 0] ** 2).sum(-1) - half_logdet - 0.5 * tg.dim * LOG_2PI
        w = torch.softmax(torch.log(tg.weights.to(self.dtype)) + log_n, dim=1)
        prec_diff = torch.linalg.solve_triangular(chol.transpose(-1, -2), z, upper=True)[..., 0]
        return w, prec_diff.permute(1, 2, 0), a[:, 0, 0].to(self.dtype)

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        w, prec_diff, _ = self._posterior(x, as_time(t))
        return self._score_from(w, prec_diff).to(x.dtype)

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        w, prec_diff, a = self._posterior(x, as_time(t))
        return self._denoise_from(w, prec_diff, a).to(x.dtype)

    def score_and_denoise(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        w, prec_diff, a = self._posterior(x, t)  # one posterior for both (the PF-ODE velocity)
        return self._score_from(w, prec_diff).to(x.dtype), self._denoise_from(w, prec_diff, a).to(x.dtype)

    @staticmethod
    def _score_from(w: Tensor, prec_diff: Tensor) -> Tensor:
        return -torch.einsum("nk,kdn->nd", w, prec_diff)

    def _denoise_from(self, w: Tensor, prec_diff: Tensor, a: float | Tensor) -> Tensor:
        covs = self.target.covs.to(self.dtype)
        mean_part = w @ self.target.means.to(self.dtype)
        cov_part = torch.einsum("nk,kdn->nd", w, covs @ prec_diff)  # (K,D,D)@(K,D,N) first: fast
        return mean_part + a * cov_part

    def log_prob(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Exact ``log p_t(x)`` of the noised mixture."""
        return self.target.noised(self.process, t).log_prob(x)

    def exact_mixture(self, t: float | Tensor) -> GaussianMixture:
        """The exact noised mixture ``p_t`` (this field is its score)."""
        return self.target.noised(self.process, t)
