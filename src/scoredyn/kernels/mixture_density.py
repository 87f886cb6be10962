"""The score and the log-density of a Gaussian mixture in one pass: what a Metropolis test or an
importance weight reads at every move.

With the mixture in the reduced form of ``mixture_langevin`` (means ``m_k``, precisions ``P_k`` and
``c_k = log pi_k + 1/2 log det P_k``) and ``d_k = x - m_k``, the component terms
``l_k = c_k - 1/2 d_k^T P_k d_k`` give both

.. math::
    s(x) = -\\sum_k \\operatorname{softmax}_k(l)\\, P_k d_k, \\qquad
    \\log p(x) = \\operatorname{logsumexp}_k(l) - \\tfrac D2 \\log 2\\pi ,

so the density costs nothing beyond the score: the log-sum-exp the softmax needs anyway. Backends:
``torch`` (chunks of particles, ``(chunk, K, D)`` intermediates and one batched matrix product per chunk)
and ``compile`` (the same, through ``torch.compile``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["DENSITY_BACKENDS", "mixture_score_log_prob"]

DENSITY_BACKENDS = ("torch", "compile")

#: Memory for one chunk's ``(chunk, K, D)`` intermediates.
CHUNK_BYTES = 64 * 2**20

_LOG_2PI = math.log(2.0 * math.pi)


def _score_log_prob(x: Tensor, means: Tensor, prec: Tensor, const: Tensor) -> tuple[Tensor, Tensor]:
    """The module doc's two formulas on one chunk ``x`` (n, D), in ``x``'s dtype."""
    diff = x[:, None, :] - means  # d_k, (n, K, D)
    pd = torch.einsum("nkd,kde->nke", diff, prec)  # P_k d_k (P symmetric)
    log_joint = const - 0.5 * (diff * pd).sum(-1)  # l_k, (n, K)
    log_p = torch.logsumexp(log_joint, dim=1)
    w = torch.exp(log_joint - log_p[:, None])
    return -(w[..., None] * pd).sum(1), log_p - 0.5 * x.shape[1] * _LOG_2PI


_COMPILED: dict[str, object] = {}


def _compiled():
    if "score_log_prob" not in _COMPILED:
        _COMPILED["score_log_prob"] = torch.compile(_score_log_prob, dynamic=None)
    return _COMPILED["score_log_prob"]


def mixture_score_log_prob(
    x: Tensor, terms: tuple[Tensor, Tensor, Tensor], *, backend: str = "torch"
) -> tuple[Tensor, Tensor]:
    """The score (N, D) and the normalized ``log p(x)`` (N,) of one mixture at ``x`` (N, D).

    Args:
        x: the points, float32 or float64 (the computation runs in this dtype).
        terms: ``(means (K, D), precisions (K, D, D), log-weights (K,))`` (``GaussianMixture.precision_terms``).
        backend: ``torch`` or ``compile``.
    """
    if backend not in DENSITY_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(DENSITY_BACKENDS)}, got {backend!r}")
    means, prec, const = (v.to(dtype=x.dtype, device=x.device) for v in terms)
    fn = _compiled() if backend == "compile" else _score_log_prob
    k, d = prec.shape[0], prec.shape[1]
    chunk = max(1024, CHUNK_BYTES // (k * (3 * d + 2) * x.element_size()))
    if x.shape[0] <= chunk:
        return fn(x, means, prec, const)
    parts = [fn(x[i : i + chunk], means, prec, const) for i in range(0, x.shape[0], chunk)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
