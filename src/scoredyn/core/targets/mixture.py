"""Gaussian mixtures: the exact target behind every exact answer in scoredyn.

``p(x) = sum_k pi_k N(x; mu_k, Sigma_k)`` with full covariances. Noising by any process keeps it a
mixture (Bishop 2006, eq. 2.115): ``p_t(x) = sum_k pi_k N(x; alpha mu_k, alpha^2 Sigma_k + sigma^2 I)``.
Everything is computed through Cholesky factors and log-sum-exp; no explicit inverse is formed.
"""

from __future__ import annotations

import copy
import math
import os

import torch
from torch import Tensor

from ...util.files import atomic_write_json, read_json
from ..tensors import LOG_2PI, as_time, generator_device

__all__ = ["GaussianMixture", "random_mixture", "rotated_cov", "component_terms", "precision_times"]


class GaussianMixture:
    """A mixture of full-covariance Gaussians, stored in float64 on one device (the means' device; the
    CPU for lists).

    Everything evaluated at points ``x`` (densities, responsibilities, the score) runs on ``x``'s device,
    with the mixture's tensors moved there once (``to``); draws are made on the generator's device.

    Args:
        weights: ``(K,)`` positive, summing to 1.
        means: ``(K, D)``.
        covs: ``(K, D, D)`` symmetric positive definite.
        name: a label carried into JSON and reports.
    """

    def __init__(self, weights, means, covs, name: str = "mixture") -> None:
        m = torch.as_tensor(means, dtype=torch.float64)
        w = torch.as_tensor(weights, dtype=torch.float64, device=m.device)
        c = torch.as_tensor(covs, dtype=torch.float64, device=m.device)
        _validate(w, m, c)
        self.weights, self.means, self.covs, self.name = w, m, c, name
        self.chol = torch.linalg.cholesky(c)
        self._copies: dict[torch.device, GaussianMixture] = {m.device: self}

    # --- where its tensors live ------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.means.device

    def to(self, device: torch.device | str) -> GaussianMixture:
        """This mixture with its tensors on ``device`` (the factors moved, not recomputed): made once per
        device and kept, so a field or a metric that asks at every step moves nothing after the first."""
        device = torch.device(device)
        moved = self._copies.get(device)
        if moved is None:
            moved = copy.copy(self)  # shares the table of copies
            for name in ("weights", "means", "covs", "chol"):
                setattr(moved, name, getattr(self, name).to(device))
            self._copies[device] = moved
        return moved

    # --- basic facts ---------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def mean(self) -> Tensor:
        """Mixture mean ``sum_k pi_k mu_k``."""
        return self.weights @ self.means

    def covariance(self) -> Tensor:
        """Mixture covariance ``sum_k pi_k (Sigma_k + mu_k mu_k^T) - m m^T``."""
        m = self.mean()
        second = torch.einsum("k,kij->ij", self.weights, self.covs + self.means[:, :, None] * self.means[:, None, :])
        return second - torch.outer(m, m)

    # --- sampling and densities ------------------------------------------------------------------
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        return_labels: bool = False,
        *,
        device: torch.device | str | None = None,
    ):
        """Draw ``n`` exact samples ``x = mu_k + L_k z`` with ``k ~ Cat(pi)``, ``z ~ N(0, I)``, made on the
        generator's device (the CPU without one: one seed gives the same draws wherever they go), then
        moved to ``device`` when given."""
        m = self.to(generator_device(generator))
        k = torch.multinomial(m.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64, device=m.device)
        x = m.means[k] + torch.einsum("nij,nj->ni", m.chol[k], z)
        if device is not None:
            x, k = x.to(device), k.to(device)
        return (x, k) if return_labels else x

    def component_log_prob(self, x: Tensor) -> Tensor:
        """``log pi_k + log N(x; mu_k, Sigma_k)`` for every sample and component, shape ``(N, K)``."""
        return self._whiten(x)[0]

    def _whiten(self, x: Tensor) -> tuple[Tensor, Tensor]:
        m = self.to(x.device)
        return component_terms(x.to(torch.float64), torch.log(m.weights), m.means, m.chol)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact ``log p(x)``, shape ``(N,)``."""
        return torch.logsumexp(self.component_log_prob(x), dim=1)

    def responsibilities(self, x: Tensor) -> Tensor:
        """Posterior component probabilities ``w_k(x) = pi_k N_k(x) / p(x)``, shape ``(N, K)``."""
        return torch.softmax(self.component_log_prob(x), dim=1)

    def score(self, x: Tensor) -> Tensor:
        """Exact ``grad log p(x) = -sum_k w_k(x) Sigma_k^{-1} (x - mu_k)``, shape ``(N, D)``."""
        log_joint, z = self._whiten(x)
        w = torch.softmax(log_joint, dim=1)  # (N, K)
        return -torch.einsum("nk,kdn->nd", w, precision_times(self.to(x.device).chol, z))

    def score_jacobian(self, x: Tensor) -> Tensor:
        """The Hessian of ``log p`` (the Jacobian of the score), shape ``(N, D, D)``, float64:

        .. math::
            \\nabla^2 \\log p(x) = \\sum_k w_k(x) \\left(s_k s_k^T - \\Sigma_k^{-1}\\right) - s s^T,
            \\qquad s_k = -\\Sigma_k^{-1}(x - \\mu_k), \\quad s = \\sum_k w_k s_k,

        the responsibility-weighted component Hessians plus the covariance of the component scores
        under the responsibilities (differentiate ``s = sum_k w_k s_k`` with ``grad w_k = w_k (s_k - s)``)."""
        m = self.to(x.device)
        log_joint, z = m._whiten(x)
        w = torch.softmax(log_joint, dim=1)  # (N, K)
        component_scores = -precision_times(m.chol, z)  # (K, D, N)
        s = torch.einsum("nk,kdn->nd", w, component_scores)
        precisions = torch.cholesky_inverse(m.chol)
        second_moment = torch.einsum("nk,kdn,ken->nde", w, component_scores, component_scores)
        return second_moment - torch.einsum("nk,kde->nde", w, precisions) - s[:, :, None] * s[:, None, :]

    def precision_terms(self) -> tuple[Tensor, Tensor, Tensor]:
        """The mixture in the form a fused score reads: means ``m_k`` (K, D), precisions
        ``P_k = Sigma_k^{-1}`` (K, D, D, from the Cholesky factors, symmetrised) and log-weights
        ``c_k = log pi_k + 1/2 log det P_k`` (K,), float64, so that ``grad log p(x) = -sum_k w_k P_k d_k``
        with ``w = softmax_k(c_k - 1/2 d_k^T P_k d_k)``, ``d_k = x - m_k`` (the ``2 pi`` cancels)."""
        prec = torch.cholesky_inverse(self.chol)
        prec = 0.5 * (prec + prec.transpose(1, 2))
        const = torch.log(self.weights) - torch.log(torch.diagonal(self.chol, dim1=1, dim2=2)).sum(1)
        return self.means, prec, const

    # --- the noised marginal -----------------------------------------------------------------------
    def noised(self, process, t: float | Tensor) -> GaussianMixture:
        """The exact marginal ``p_t`` under ``process`` at time ``t`` (itself a mixture)."""
        a, s = float(process.alpha(as_time(t))), float(process.sigma(as_time(t)))
        eye = torch.eye(self.dim, dtype=torch.float64, device=self.device)
        return GaussianMixture(self.weights, a * self.means, a**2 * self.covs + s**2 * eye, self.name)

    # --- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "weights": self.weights.tolist(),
            "means": self.means.tolist(),
            "covs": self.covs.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> GaussianMixture:
        if not isinstance(d, dict):
            raise ValueError("mixture JSON must be an object with weights, means, covs")
        missing = [k for k in ("weights", "means", "covs") if k not in d]
        if missing:
            raise ValueError(f"mixture JSON is missing {', '.join(missing)}")
        try:
            w = torch.tensor(d["weights"], dtype=torch.float64)
            m = torch.tensor(d["means"], dtype=torch.float64)
            c = torch.tensor(d["covs"], dtype=torch.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"mixture JSON has ragged or non-numeric arrays ({e})") from None
        return cls(w, m, c, name=str(d.get("name", "mixture")))

    @classmethod
    def load(cls, path: str | os.PathLike) -> GaussianMixture:
        """Read and validate a mixture JSON file (DESIGN.md: name, weights, means, covs)."""
        return cls.from_dict(read_json(path, "mixture file"))

    def save(self, path: str | os.PathLike) -> None:
        """Write the mixture as JSON, atomically (``util.files.atomic_write_json``)."""
        atomic_write_json(path, self.to_dict(), indent=1)

    def __repr__(self) -> str:
        return f"GaussianMixture(name={self.name!r}, K={self.n_components}, D={self.dim})"


def component_terms(x: Tensor, log_weights: Tensor, means: Tensor, chol: Tensor) -> tuple[Tensor, Tensor]:
    """Per-component joint log densities ``log pi_k + log N(x; m_k, L_k L_k^T)``, shape ``(N, K)``,
    and whitened residuals ``z = L_k^{-1}(x - m_k)``, shape ``(K, D, N)``: the one Cholesky-based
    evaluation behind the mixture's density and score and the exact field of any noised mixture."""
    diff = (x[None, :, :] - means[:, None, :]).transpose(1, 2)  # (K, D, N)
    z = torch.linalg.solve_triangular(chol, diff, upper=False)
    half_logdet = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # (K,)
    log_n = -0.5 * (z**2).sum(1).T - half_logdet - 0.5 * means.shape[1] * LOG_2PI  # (N, K)
    return log_weights + log_n, z


def precision_times(chol: Tensor, z: Tensor) -> Tensor:
    """``S_k^{-1}(x - m_k) = L_k^{-T} z``, shape ``(K, D, N)``, from the whitened residuals."""
    return torch.linalg.solve_triangular(chol.transpose(1, 2), z, upper=True)


def _validate(w: Tensor, m: Tensor, c: Tensor) -> None:
    """Check shapes, finiteness, weights on the simplex and SPD covariances (ValueError otherwise)."""
    if w.ndim != 1 or w.numel() == 0:
        raise ValueError(f"weights must be a non-empty 1-D list, got shape {tuple(w.shape)}")
    k = w.numel()
    if m.ndim != 2 or m.shape[0] != k or m.shape[1] == 0:
        raise ValueError(f"means must have shape ({k}, D), got {tuple(m.shape)}")
    d = m.shape[1]
    if c.shape != (k, d, d):
        raise ValueError(f"covs must have shape ({k}, {d}, {d}), got {tuple(c.shape)}")
    for name, v in (("weights", w), ("means", m), ("covs", c)):
        if not torch.isfinite(v).all():
            raise ValueError(f"{name} contain NaN or inf")
    if (w <= 0).any():
        raise ValueError(f"weights must be positive, got min {float(w.min()):.3g}")
    if abs(float(w.sum()) - 1.0) > 1e-6:
        raise ValueError(f"weights must sum to 1, got {float(w.sum()):.9g}")
    asym = (c - c.transpose(1, 2)).abs().amax(dim=(1, 2))
    scale = c.abs().amax(dim=(1, 2)).clamp(min=1e-300)
    bad = torch.nonzero(asym > 1e-9 * scale).flatten()
    if bad.numel():
        raise ValueError(f"covs[{int(bad[0])}] is not symmetric")
    _, info = torch.linalg.cholesky_ex(c)
    bad = torch.nonzero(info).flatten()
    if bad.numel():
        raise ValueError(f"covs[{int(bad[0])}] is not positive definite")


def random_mixture(
    dim: int,
    n_components: int,
    seed: int = 0,
    mean_scale: float = 5.0,
    cov_scale: float = 1.0,
    name: str | None = None,
) -> GaussianMixture:
    """A reproducible random mixture: uniform means in ``[-mean_scale, mean_scale]^D``, Dirichlet(2)
    weights, and full covariances ``cov_scale (A A^T / D + 0.05 I)`` with Gaussian ``A``
    (random orientation and anisotropy)."""
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n_components, dim, generator=g, dtype=torch.float64) * 2 - 1) * mean_scale
    # Dirichlet(2, ..., 2): normalised Gamma(2) draws, each a sum of two Exp(1) draws
    e = -torch.log(torch.rand(n_components, 2, generator=g, dtype=torch.float64)).sum(1)
    weights = e / e.sum()
    a = torch.randn(n_components, dim, dim, generator=g, dtype=torch.float64)
    covs = cov_scale * (a @ a.transpose(1, 2) / dim + 0.05 * torch.eye(dim, dtype=torch.float64))
    covs = 0.5 * (covs + covs.transpose(1, 2))
    return GaussianMixture(weights, means, covs, name or f"random-{dim}d-{n_components}k-seed{seed}")


def rotated_cov(std_major: float, std_minor: float, angle_deg: float) -> list[list[float]]:
    """The 2-D covariance ``R diag(a^2, b^2) R^T`` with standard deviations ``a`` along the axis at
    ``angle_deg`` degrees and ``b`` across it (symmetrised against rounding)."""
    th = math.radians(angle_deg)
    r = torch.tensor([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]], dtype=torch.float64)
    cov = r @ torch.diag(torch.tensor([std_major**2, std_minor**2], dtype=torch.float64)) @ r.T
    return (0.5 * (cov + cov.T)).tolist()
