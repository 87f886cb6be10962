"""The exact score field of a Gaussian mixture under any process."""

from __future__ import annotations

import torch
from torch import Tensor

from ..processes import Process
from ..targets import GaussianMixture
from ..tensors import LOG_2PI, PerDevice, as_time, positive_int
from .base import Field, map_row_chunks, rows_per_chunk

__all__ = ["AnalyticField"]

_BYTES = 8  # bytes per element of the intermediates' estimate: float64, the widest working precision

# Every row is computed by elementwise operations and by reductions over its own K components
# (softmax, weighted sums), never by a matrix product or a triangular solve across rows: BLAS kernels
# tile the rows, so a row's rounding would depend on how many rows share the call and where it sits.
# The vectors of a batch are kept as D columns of shape (N, K), one per coordinate, and every matrix
# per component as ``(D, D, K)``, so that each term of a product is one contiguous elementwise operation.


def _solve_lower(chol: Tensor, b: list[Tensor]) -> list[Tensor]:
    """``L_k^{-1} b_k`` by forward substitution, ``y_i = (b_i - sum_{j<i} L_ij y_j) / L_ii``, with
    ``chol[i, j]`` of shape (K,) (one time) or (N, K) (one time per row) and ``b`` D columns (N, K)."""
    y: list[Tensor] = []
    for i, b_i in enumerate(b):
        acc = b_i
        for j in range(i):
            acc = acc - chol[i, j] * y[j]
        y.append(acc / chol[i, i])
    return y


def _solve_upper_t(chol: Tensor, b: list[Tensor]) -> list[Tensor]:
    """``L_k^{-T} b_k`` by back substitution, ``y_i = (b_i - sum_{j>i} L_ji y_j) / L_ii``."""
    d = len(b)
    y: list[Tensor] = [b[0]] * d  # placeholders, each replaced below
    for i in reversed(range(d)):
        acc = b[i]
        for j in range(i + 1, d):
            acc = acc - chol[j, i] * y[j]
        y[i] = acc / chol[i, i]
    return y


def _times(m: Tensor, v: list[Tensor]) -> list[Tensor]:
    """``M_k v_k`` for a matrix per component ``m`` (D, D, K) and D columns ``v`` (N, K)."""
    out = []
    for m_i in m:
        acc = m_i[0] * v[0]
        for m_ij, v_j in zip(m_i[1:], v[1:], strict=True):
            acc = acc + m_ij * v_j
        out.append(acc)
    return out


def _weighted(w: Tensor, v: list[Tensor] | Tensor) -> Tensor:
    """``sum_k w_k v_k`` (N, D) from weights (N, K) and D columns (N, K) (or a (D, K) constant)."""
    return torch.stack([(w * v_i).sum(-1) for v_i in v], dim=1)


class AnalyticField(Field):
    """The exact field of a Gaussian mixture under any process, with its normalized density.

    With ``m_k = alpha mu_k``, ``S_k = alpha^2 Sigma_k + sigma^2 I`` and responsibilities
    ``w_k(x)`` of the noised mixture (log-sum-exp):

    .. math::
        s(x, t) = -\\sum_k w_k S_k^{-1}(x - m_k), \\qquad
        \\hat x_0 = \\sum_k w_k \\left[\\mu_k + \\alpha \\Sigma_k S_k^{-1}(x - m_k)\\right].

    The posterior-mean form of ``x0hat`` is used directly: it is exact also where ``alpha = 0``.
    ``S_k^{-1}(x - m_k)`` is two triangular substitutions with the Cholesky factor of ``S_k``.
    Computation is in ``dtype`` (float64 by default); results come back in ``x``'s dtype.

    Memory: the intermediates are ``O(K D)`` per row (``O(K D^2)`` with one time per row, which needs
    a Cholesky factor per row and component). Rows are evaluated in chunks of ``chunk_rows(t)`` so
    that one chunk's intermediates take about ``chunk_bytes`` at most (``base.FIELD_CHUNK_BYTES``,
    64 MiB, unless overridden): an evaluation needs its ``N x D`` inputs and outputs and this much,
    for any ``N``. Every row is computed by the same elementwise operations and reductions over its
    own components whatever the chunk, so the result is bit for bit the same for any budget, with or
    without autograd (a differentiated evaluation keeps every chunk's graph, so there it saves no memory).

    Args:
        target: the mixture at ``t = t_min`` (data).
        process: the forward process.
        dtype: working precision.
        chunk_bytes: the budget of one chunk's intermediates, in bytes (``None``: ``field_chunk_bytes()``,
            read at each evaluation).
    """

    has_density = True
    normalized = True

    def __init__(
        self,
        target: GaussianMixture,
        process: Process,
        dtype: torch.dtype = torch.float64,
        *,
        chunk_bytes: int | None = None,
    ):
        if chunk_bytes is not None:
            positive_int(chunk_bytes, "chunk_bytes")
        self.target, self.process, self.dtype, self.chunk_bytes = target, process, dtype, chunk_bytes
        # the last time's factors on each device the field was evaluated on
        self._cache: dict[torch.device, tuple[float, Tensor, Tensor, Tensor, float]] = {}
        # the means (D, K) and covariances (D, D, K) in dtype, components last; moved to a device once
        means, covs = target.means.T.to(dtype).contiguous(), target.covs.permute(1, 2, 0).to(dtype).contiguous()
        self._constants = PerDevice(means, covs)

    def bytes_per_row(self, per_sample: bool = False) -> int:
        """An upper estimate of one row's intermediates, in bytes: the residuals, their two
        substitutions and ``Sigma_k S_k^{-1}(x - m_k)`` (``4 D`` columns of ``K``) and a few
        ``K``-vectors (log-densities, weights, products); with one time per row also its ``K``
        Cholesky factors (``K D^2``, four times over: the matrix, its factor, the factor in ``dtype``
        with components last, and the scaled means)."""
        k, d = self.target.weights.numel(), self.target.dim
        per_row_factors = 4 * d * d + d if per_sample else 0
        return _BYTES * k * (4 * d + 8 + per_row_factors)

    def chunk_rows(self, t: float | Tensor) -> int:
        """Rows per chunk at time ``t`` (a scalar, or one per row): ``budget // bytes_per_row``, >= 1."""
        return rows_per_chunk(self.bytes_per_row(as_time(t).ndim == 1), self.chunk_bytes)

    def _factor(self, t: Tensor, device: torch.device) -> tuple[Tensor, Tensor, Tensor, float]:
        """At one time ``t`` (cached for the last one on each device), components last: the Cholesky
        factors ``L_k`` of ``S_k`` (D, D, K), the scaled means ``m_k`` (D, K), the constant part of the
        joint log density ``log pi_k - log|L_k| - D/2 log 2 pi`` (K,), and ``alpha``; computed in float64
        where the target lives (the same factors whatever the particles' device), kept in ``dtype`` on
        ``device``."""
        key = float(t)
        cached = self._cache.get(device)
        if cached is None or cached[0] != key:
            c = self.coefficients_at(t)
            a, s = float(c.alpha), float(c.sigma)
            tg = self.target
            eye = torch.eye(tg.dim, dtype=torch.float64, device=tg.device)
            chol = torch.linalg.cholesky(a**2 * tg.covs + s**2 * eye)  # (K, D, D)
            half_logdet = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
            const = torch.log(tg.weights) - half_logdet - 0.5 * tg.dim * LOG_2PI
            chol, m = chol.permute(1, 2, 0), (a * tg.means).T
            cached = (key, *(v.to(device=device, dtype=self.dtype).contiguous() for v in (chol, m, const)), a)
            self._cache[device] = cached
        return cached[1], cached[2], cached[3], cached[4]

    def _factor_per_sample(self, t: Tensor, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The same at one time per row, ``t`` (N,): ``L_k`` (D, D, N, K), ``m_k`` (D, N, K), the
        constant (N, K) and ``alpha`` (N, 1), computed on ``device`` (the ``N x K`` factors are as many as
        the particles). They are computed one matrix at a time (batched LAPACK calls), so a row's do not
        depend on the others either."""
        tg, t = self.target.to(device), t.to(device)
        a, s = self.process.alpha(t)[:, None, None, None], self.process.sigma(t)[:, None, None, None]
        eye = torch.eye(tg.dim, dtype=torch.float64, device=device)
        chol = torch.linalg.cholesky(a**2 * tg.covs[None] + s**2 * eye)  # (N, K, D, D)
        half_logdet = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        const = torch.log(tg.weights) - half_logdet - 0.5 * tg.dim * LOG_2PI
        chol, m = chol.permute(2, 3, 0, 1), (a[..., 0] * tg.means).permute(2, 0, 1)
        chol, m, const = (v.to(self.dtype).contiguous() for v in (chol, m, const))
        return chol, m, const, a[:, 0, 0].to(self.dtype)

    def posterior(self, x: Tensor, t: Tensor, with_log_prob: bool = False) -> tuple:
        """At ``x`` (N, D) and ``t`` (0-dim, or (N,)), in one pass over all rows: the responsibilities
        ``w`` (N, K), ``S_k^{-1}(x - m_k)`` as D columns (N, K), and ``alpha`` (a float, or (N, 1)), in
        ``dtype``; with ``with_log_prob`` also ``log p_t(x)`` (N,), the log-sum-exp of the same
        component terms. ``score`` and ``denoise`` call it on chunks of ``chunk_rows(t)`` rows."""
        chol, m, const, a = self._factor(t, x.device) if t.ndim == 0 else self._factor_per_sample(t, x.device)
        x = x.to(self.dtype)
        diff = [x[:, i, None] - m_i for i, m_i in enumerate(m)]  # x - m_k, D columns (N, K)
        z = _solve_lower(chol, diff)  # L_k^{-1}(x - m_k)
        sq = z[0] ** 2
        for z_i in z[1:]:
            sq = sq + z_i**2
        log_joint = const - 0.5 * sq  # log pi_k + log N(x; m_k, S_k)
        w = torch.softmax(log_joint, dim=1)
        if with_log_prob:
            return w, _solve_upper_t(chol, z), a, torch.logsumexp(log_joint, dim=1)
        return w, _solve_upper_t(chol, z), a

    def _chunked(self, x: Tensor, t: float | Tensor, fn) -> tuple[Tensor, ...]:
        """``fn(x, t)`` on chunks of ``chunk_rows(t)`` rows, assembled in ``x``'s dtype."""
        t = as_time(t)
        if t.ndim == 1 and t.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},), got {tuple(t.shape)}")
        return map_row_chunks(fn, x, t, self.chunk_rows(t), x.dtype)

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        def chunk(x: Tensor, t: Tensor) -> tuple[Tensor]:
            w, prec_diff, _ = self.posterior(x, t)
            return (self._score_from(w, prec_diff),)

        return self._chunked(x, t, chunk)[0]

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        def chunk(x: Tensor, t: Tensor) -> tuple[Tensor]:
            return (self._denoise_from(*self.posterior(x, t)),)

        return self._chunked(x, t, chunk)[0]

    def score_and_denoise(self, x: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor]:
        def chunk(x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
            w, prec_diff, a = self.posterior(x, t)  # one posterior for both (the PF-ODE velocity)
            return self._score_from(w, prec_diff), self._denoise_from(w, prec_diff, a)

        s, x0 = self._chunked(x, t, chunk)
        return s, x0

    @staticmethod
    def _score_from(w: Tensor, prec_diff: list[Tensor]) -> Tensor:
        return -_weighted(w, prec_diff)

    def _denoise_from(self, w: Tensor, prec_diff: list[Tensor], a: float | Tensor) -> Tensor:
        means, covs = self._constants.on(w.device)
        return _weighted(w, means) + a * _weighted(w, _times(covs, prec_diff))

    def log_prob(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Exact ``log p_t(x)`` of the noised mixture, (N,)."""
        return self.score_and_log_prob(x, t)[1]

    def score_and_log_prob(self, x: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor]:
        """The score and ``log p_t(x) = logsumexp_k (log pi_k + log N(x; m_k, S_k))`` from one posterior
        pass: the component terms that give the responsibilities give the density."""

        def chunk(x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
            w, prec_diff, _, log_p = self.posterior(x, t, with_log_prob=True)
            return self._score_from(w, prec_diff), log_p[:, None]

        s, log_p = self._chunked(x, t, chunk)
        return s, log_p[:, 0]

    def score_jacobian(self, x: Tensor, t: float | Tensor) -> Tensor:
        """The Hessian of ``log p_t`` in closed form (``GaussianMixture.score_jacobian``), in ``x``'s dtype."""
        return self.exact_mixture(t).score_jacobian(x).to(x.dtype)

    def exact_mixture(self, t: float | Tensor) -> GaussianMixture:
        """The exact noised mixture ``p_t`` (this field is its score)."""
        return self.target.noised(self.process, t)
