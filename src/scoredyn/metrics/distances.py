"""Distances between two sample sets: energy distance, MMD (with the median heuristic), sliced W1 and
exact W2.

Each is an estimate from finitely many samples (a V-statistic or an empirical transport cost), so two
independent exact sets score above zero; ``floors`` gives that level.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ._blocks import pair_mean, points, row_blocks, sq_dist

W2_MAX_POINTS = 3000  # exact optimal transport is O(N^3): above this, use sliced_wasserstein


def energy_distance(x: Tensor, y: Tensor) -> float:
    """Energy distance (Székely & Rizzo 2013), V-statistic.

    .. math::
        \\mathcal{E}(X, Y) = 2\\,\\mathbb{E}|X - Y| - \\mathbb{E}|X - X'| - \\mathbb{E}|Y - Y'|

    with every expectation replaced by the mean over all pairs (diagonals included), so it is
    ``>= 0`` and zero iff the two empirical measures agree. Between two independent exact sets of
    sizes ``n, m`` its mean is ``(1/n + 1/m) E|X - X'|``.

    Args:
        x: ``(N, D)`` samples.
        y: ``(M, D)`` samples.
    """
    x = points(x, "x")
    y = points(y, "y", x.shape[1])
    n, m = x.shape[0], y.shape[0]
    e_xy = pair_mean(n, m, lambda i, j: torch.cdist(x[i], y[j]))
    e_xx = pair_mean(n, n, lambda i, j: torch.cdist(x[i], x[j]), same=True)
    e_yy = pair_mean(m, m, lambda i, j: torch.cdist(y[i], y[j]), same=True)
    return 2 * e_xy - e_xx - e_yy


def median_heuristic(x: Tensor, max_points: int = 1000) -> float:
    """Median pairwise distance, the kernel bandwidth of the median heuristic (Gretton et al. 2012, Sec. 8).

    .. math:: h = \\operatorname{median}_{i<j} |x_i - x_j|

    over a fixed random subset of at most ``max_points`` points (permutation seeded 0: deterministic).

    Args:
        x: ``(N, D)`` samples, ``N >= 2``.
        max_points: size of the subset the median is taken over.
    """
    x = points(x, "x")
    if x.shape[0] > max_points:
        keep = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))[:max_points]
        x = x[keep.to(x.device)]
    if x.shape[0] < 2:
        raise ValueError("x needs at least 2 points for the median heuristic")
    return float(torch.pdist(x).median())


def mmd(x: Tensor, y: Tensor, bandwidth: float | None = None) -> float:
    """Squared maximum mean discrepancy with the Gaussian RBF kernel (Gretton et al. 2012), as
    their biased estimate ``MMD_b^2``, i.e. the V-statistic (not the unbiased ``MMD_u^2``).

    .. math::
        \\mathrm{MMD}_b^2 = \\frac{1}{n^2}\\sum_{i,j} k(x_i, x_j)
            + \\frac{1}{m^2}\\sum_{i,j} k(y_i, y_j) - \\frac{2}{nm}\\sum_{i,j} k(x_i, y_j),
        \\qquad k(x, y) = \\exp\\!\\big(-|x - y|^2 / (2h^2)\\big)

    It is ``>= 0`` (a squared RKHS norm); between two independent exact sets its mean is
    ``(1/n + 1/m)(1 - E k(X, X'))``.

    Args:
        x: ``(N, D)`` samples.
        y: ``(M, D)`` samples.
        bandwidth: ``h``; default: ``median_heuristic`` of the pooled sample.
    """
    x = points(x, "x")
    y = points(y, "y", x.shape[1])
    h = median_heuristic(torch.cat([x, y])) if bandwidth is None else float(bandwidth)
    if not h > 0 or not math.isfinite(h):
        raise ValueError(f"bandwidth must be positive and finite, got {h} (all points equal?)")

    def k(a: Tensor, b: Tensor) -> Tensor:
        return sq_dist(a, b).mul_(-0.5 / h**2).exp_()

    n, m = x.shape[0], y.shape[0]
    k_xx = pair_mean(n, n, lambda i, j: k(x[i], x[j]), same=True)
    k_yy = pair_mean(m, m, lambda i, j: k(y[i], y[j]), same=True)
    k_xy = pair_mean(n, m, lambda i, j: k(x[i], y[j]))
    return k_xx + k_yy - 2.0 * k_xy


def _sort_columns(a: Tensor) -> Tensor:
    """Each column of ``a`` sorted. On the CPU through NumPy's (SIMD) sort, several times faster
    than ``torch.sort`` here; sorting is exact, so the values are the same."""
    if a.device.type != "cpu":
        return a.sort(0).values
    return torch.from_numpy(np.sort(a.detach().numpy(), axis=0))


def _w1_1d(u: Tensor, v: Tensor) -> Tensor:
    """Exact 1-D W1 between the empirical measures in each column of ``u (n, P)`` and ``v (m, P)``:
    ``int |F_u - F_v| dt``; for ``n = m`` this is the mean gap between sorted values."""
    u, v = _sort_columns(u), _sort_columns(v)
    if u.shape[0] == v.shape[0]:
        return (u - v).abs().mean(0)
    # the CDFs are step functions: integrate |F_u - F_v| between consecutive pooled points
    z = _sort_columns(torch.cat([u, v])).T.contiguous()  # (P, n + m)
    f_u = torch.searchsorted(u.T.contiguous(), z, right=True).to(z.dtype) / u.shape[0]
    f_v = torch.searchsorted(v.T.contiguous(), z, right=True).to(z.dtype) / v.shape[0]
    return ((f_u - f_v).abs()[:, :-1] * z.diff(dim=1)).sum(1)


def sliced_wasserstein(x: Tensor, y: Tensor, n_projections: int = 256, seed: int = 0) -> float:
    """Sliced 1-Wasserstein distance (Bonneel, Rabin, Peyré & Pfister 2015, ``SW_p`` with p = 1),
    Monte Carlo over ``n_projections`` directions drawn uniformly on the sphere from ``seed``.

    .. math:: SW_1(\\mu, \\nu) = \\int_{S^{D-1}} W_1(\\theta_\\#\\mu, \\theta_\\#\\nu)\\, d\\theta
              \\approx \\frac{1}{P}\\sum_{p=1}^{P} W_1(\\theta_p^\\top x, \\theta_p^\\top y)

    Each 1-D ``W_1`` is exact: for equal sizes the mean of ``|u_(i) - v_(i)|`` over sorted
    projections; for unequal sizes ``int |F_u - F_v| dt`` over the pooled sorted projections.

    Args:
        x: ``(N, D)`` samples.
        y: ``(M, D)`` samples.
        n_projections: number of directions ``P``.
        seed: seeds the directions (the same seed gives the same directions).
    """
    x = points(x, "x")
    y = points(y, "y", x.shape[1])
    if n_projections < 1:
        raise ValueError(f"n_projections must be >= 1, got {n_projections}")
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(n_projections, x.shape[1], generator=g, dtype=torch.float64)
    theta = (theta / theta.norm(dim=1, keepdim=True)).to(x.device)  # (P, D) uniform on the sphere
    total = 0.0
    for block in row_blocks(n_projections, x.shape[0] + y.shape[0]):
        total += float(_w1_1d(x @ theta[block].T, y @ theta[block].T).sum())
    return total / n_projections


def wasserstein2(x: Tensor, y: Tensor) -> float:
    """Exact 2-Wasserstein distance between two empirical measures (uniform weights), solved as a
    linear program by POT's network simplex (``ot.emd2``; Flamary et al. 2021).

    .. math:: W_2(\\hat\\mu, \\hat\\nu) = \\Big(\\min_{\\gamma \\in \\Pi(1/n, 1/m)}
              \\sum_{i,j} \\gamma_{ij} |x_i - y_j|^2\\Big)^{1/2}

    Cost is ``O(N^3)``: sets above ``W2_MAX_POINTS`` points raise ``ValueError``.

    Args:
        x: ``(N, D)`` samples.
        y: ``(M, D)`` samples.
    """
    x = points(x, "x")
    y = points(y, "y", x.shape[1])
    n, m = x.shape[0], y.shape[0]
    if max(n, m) > W2_MAX_POINTS:
        raise ValueError(
            f"wasserstein2 is exact and O(N^3): got {n} and {m} points, above "
            f"W2_MAX_POINTS = {W2_MAX_POINTS}; use sliced_wasserstein for larger sets"
        )
    import ot  # POT: imported here because it is slow to import and only this function needs it

    a = torch.full((n,), 1.0 / n, dtype=torch.float64).numpy()
    b = torch.full((m,), 1.0 / m, dtype=torch.float64).numpy()
    cost_matrix = sq_dist(x, y).cpu().numpy()
    cost, log = ot.emd2(a, b, cost_matrix, numItermax=100 * (n + m) ** 2, log=True)
    if log["warning"] is not None:
        raise RuntimeError(f"ot.emd2 did not converge: {log['warning']}")
    return math.sqrt(max(float(cost), 0.0))
