"""Metrics of a sample set against the exact law of a Gaussian mixture, each with its computed floor
and a standard error, at any ``N``.

- ``mode_tv_exact``: total variation between the mode-assignment frequencies and the probabilities
  ``p_k`` that exact samples fall to each component under the same rule (``mode_probabilities``);
  its floor at ``N`` is exact (de Moivre's mean absolute deviation of the binomial).
- ``energy_exact`` / ``mmd_exact``: energy distance and squared MMD to the law itself, with no
  reference: the law's self-term and the cross term (``E_Y |x - Y|``, the kernel mean embedding)
  are closed forms (``closed_forms``), so only the sample's own pairs are estimated.
- ``ksd_floor``: the exact expectation of the KSD V-statistic on exact samples.

Every estimate is an ``estimates.Estimate``; pair sums above ``PAIR_BUDGET`` use the block estimator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import binom
from torch import Tensor

from ..core.targets import GaussianMixture
from ._blocks import sq_dist
from .closed_forms import expected_distance, kernel_embedding, mean_pair_distance, mean_pair_kernel
from .estimates import PAIR_BUDGET, Estimate, blocked, grouped_pair_sums, groups_of, jackknife, without_group
from .stein import stein_kernel

MODE_POINTS_PER_COMPONENT = 2**18  # exact draws per component for the mode probabilities (se ~ 1e-5 or less)
BOOTSTRAP_REPLICATES = 2000  # count replicates for the mode-TV standard errors and two-sample floor
_ASSIGN_CHUNK = 2**16  # points per assignment pass (bounds the (N, K, D) whitening)
_PROBABILITIES: dict[tuple, ModeProbabilities] = {}
_FISHER: dict[tuple, tuple[float, float]] = {}


@dataclass(frozen=True)
class ModeProbabilities:
    """``p_k = P(X is assigned to k)`` for ``X ~ p`` and its standard error, both ``(K,)`` float64."""

    p: Tensor
    se: Tensor


def _key(mixture: GaussianMixture, *extra) -> tuple:
    parts = (mixture.weights, mixture.means, mixture.covs)
    return (*extra, *((tuple(t.shape), t.detach().cpu().numpy().tobytes()) for t in parts))


def mode_counts(x: Tensor, mixture: GaussianMixture) -> Tensor:
    """Number of points assigned to each component (largest posterior responsibility), ``(K,)`` float64 on
    the CPU (``K`` numbers, read like a metric's value), assigned on ``x``'s device in chunks of
    ``_ASSIGN_CHUNK`` points so that memory stays bounded at any ``N``."""
    # log pi_k N(x; mu_k, L_k L_k^T) = c_k - |L_k^{-1} x - L_k^{-1} mu_k|^2 / 2: the inverse factors
    # turn the K triangular solves into one matrix product (the same rule as ``mode_weights``)
    mix = mixture.to(x.device)
    inv = torch.linalg.inv(mix.chol.to(torch.float64))  # (K, D, D)
    shift = (inv @ mix.means.to(torch.float64)[..., None])[..., 0]  # (K, D)
    half_logdet = torch.log(torch.diagonal(mix.chol.to(torch.float64), dim1=-2, dim2=-1)).sum(-1)
    const = torch.log(mix.weights.to(torch.float64)) - half_logdet
    stacked = inv.reshape(-1, mix.dim).T  # (D, K*D)
    counts = torch.zeros(mix.n_components, dtype=torch.float64, device=x.device)
    for chunk in torch.split(x.to(torch.float64), _ASSIGN_CHUNK):
        z = (chunk @ stacked).reshape(-1, mix.n_components, mix.dim) - shift  # (n, K, D)
        labels = (const - 0.5 * (z * z).sum(-1)).argmax(dim=1)
        counts += torch.bincount(labels, minlength=mix.n_components).to(torch.float64)
    return counts.cpu()


def mode_probabilities(
    mixture: GaussianMixture, points_per_component: int = MODE_POINTS_PER_COMPONENT, seed: int = 0
) -> ModeProbabilities:
    """The probabilities that exact samples are assigned to each component, by stratified Monte Carlo.

    .. math:: p_k = \\sum_j \\pi_j\\, C_{jk}, \\qquad
              C_{jk} = P\\big(\\arg\\max_l \\pi_l \\mathcal{N}(X; \\mu_l, \\Sigma_l) = k
              \\,\\big|\\, X \\sim \\mathcal{N}_j\\big)

    Each row ``C_j`` is estimated from ``M = points_per_component`` draws of component ``j`` alone, so
    only the misassignment rates carry noise: ``se_k^2 = sum_j pi_j^2 C_jk (1 - C_jk) / M``. Cached per
    mixture.

    Args:
        mixture: the law.
        points_per_component: ``M``.
        seed: seeds the draws (the result is deterministic).
    """
    key = _key(mixture, points_per_component, seed)
    if key in _PROBABILITIES:
        return _PROBABILITIES[key]
    g = torch.Generator().manual_seed(seed)
    k, d = mixture.n_components, mixture.dim
    confusion = torch.zeros(k, k, dtype=torch.float64)
    for j in range(k):
        left = points_per_component
        while left > 0:
            n = min(left, _ASSIGN_CHUNK)
            x = mixture.means[j] + torch.randn(n, d, generator=g, dtype=torch.float64) @ mixture.chol[j].T
            confusion[j] += mode_counts(x, mixture)
            left -= n
    confusion /= points_per_component
    w = mixture.weights.to(torch.float64)
    p = w @ confusion
    se = torch.sqrt((w[:, None] ** 2 * confusion * (1 - confusion)).sum(0) / points_per_component)
    _PROBABILITIES[key] = ModeProbabilities(p, se)
    return _PROBABILITIES[key]


def binomial_mean_abs_deviation(n: int, p: Tensor) -> Tensor:
    """``E|X - np|`` for ``X ~ Binomial(n, p)``, exactly (de Moivre; Diaconis & Zabell 1991, eq. 1.1).

    .. math:: E|X - np| = 2 m \\binom{n}{m} p^m (1 - p)^{n - m + 1}
              = 2 m (1 - p)\\, P(X = m), \\qquad m = \\lfloor np \\rfloor + 1

    with the binomial probability from SciPy (``binom.pmf``, accurate to rounding at ``n = 10^7``,
    where a difference of ``lgamma`` values would lose eight digits).

    Args:
        n: number of trials, ``>= 1``.
        p: ``(K,)`` success probabilities in ``[0, 1]``.
    """
    p64 = p.detach().cpu().to(torch.float64).numpy()
    m = np.floor(n * p64) + 1
    mad = np.where(m <= n, 2 * m * (1 - p64) * binom.pmf(np.minimum(m, n), n, p64), 0.0)
    return torch.from_numpy(np.where((p64 > 0) & (p64 < 1), mad, 0.0))


def mode_tv_floor(probabilities: ModeProbabilities, n: int) -> tuple[float, float]:
    """The expected ``mode_tv_exact`` of ``n`` exact samples, and its uncertainty from ``p``'s error.

    .. math:: E\\,\\mathrm{TV} = \\frac{1}{2n} \\sum_k E|X_k - n p_k|, \\qquad X_k \\sim \\mathrm{Binomial}(n, p_k)

    exact by ``binomial_mean_abs_deviation`` (each count is binomial whatever the others do). The
    stated ``p`` carries an error ``se_k``, which raises the observed floor: in the normal limit
    by ``sqrt(1 + se_k^2 n / (p_k (1 - p_k)))`` per component, applied here; the second value is
    the size of that correction (0 for exact ``p``).

    Args:
        probabilities: ``mode_probabilities`` of the law.
        n: the sample size.
    """
    p, se = probabilities.p, probabilities.se
    mad = binomial_mean_abs_deviation(n, p) / n
    var = (p * (1 - p) / n).clamp_min(1e-300)
    corrected = mad * torch.sqrt(1 + se**2 / var)
    return 0.5 * float(corrected.sum()), 0.5 * float((corrected - mad).sum())


def multinomial_counts(n: int, p: Tensor, replicates: int, generator: torch.Generator) -> Tensor:
    """``replicates`` draws of ``Multinomial(n, p)`` as conditional binomials, ``(replicates, K)`` float64.

    .. math:: X_k \\mid X_{<k} \\sim \\mathrm{Binomial}\\big(n - \\textstyle\\sum_{l<k} X_l,\\;
              p_k / \\sum_{l \\ge k} p_l\\big)
    """
    p = p.to(torch.float64).clamp_min(0)
    out = torch.zeros(replicates, p.shape[0], dtype=torch.float64)
    left = torch.full((replicates,), float(n), dtype=torch.float64)
    tail = float(p.sum())
    for k in range(p.shape[0] - 1):
        q = min(max(float(p[k]) / tail, 0.0), 1.0) if tail > 0 else 0.0
        out[:, k] = torch.binomial(left, torch.full_like(left, q), generator=generator)
        left = left - out[:, k]
        tail -= float(p[k])
    out[:, -1] = left
    return out


def mode_tv_exact(x: Tensor, mixture: GaussianMixture, *, seed: int = 0) -> Estimate:
    """Total variation between the mode-assignment frequencies of ``x`` and the exact law's.

    .. math:: \\mathrm{TV} = \\tfrac12 \\sum_k |\\hat w_k - p_k|

    with ``hat w_k`` the fraction of ``x`` assigned to component ``k`` and ``p_k`` the probability
    that an exact sample is (``mode_probabilities``): assignment errors of the rule cancel, so exact
    samples score the floor ``mode_tv_floor`` and nothing more. The standard error is the spread of
    the statistic over ``BOOTSTRAP_REPLICATES`` parametric bootstrap draws of the counts,
    ``Multinomial(N, hat w)``.

    Args:
        x: ``(N, D)`` float64 samples.
        mixture: the law.
        seed: seeds the bootstrap.
    """
    n = x.shape[0]
    probabilities = mode_probabilities(mixture)
    w = mode_counts(x, mixture) / n
    value = 0.5 * float((w - probabilities.p).abs().sum())
    boot = multinomial_counts(n, w, BOOTSTRAP_REPLICATES, torch.Generator().manual_seed(seed)) / n
    spread = 0.5 * (boot - probabilities.p).abs().sum(1)
    return Estimate(value, float(spread.std()), 1.0 / n)


def mode_tv_two_sample(x: Tensor, y: Tensor, mixture: GaussianMixture, *, seed: int = 0) -> Estimate:
    """``mode_tv`` (two mode histograms) with its parametric-bootstrap standard error (both count vectors
    redrawn as ``Multinomial``)."""
    n, m = x.shape[0], y.shape[0]
    wx, wy = mode_counts(x, mixture) / n, mode_counts(y, mixture) / m
    g = torch.Generator().manual_seed(seed)
    bx = multinomial_counts(n, wx, BOOTSTRAP_REPLICATES, g) / n
    by = multinomial_counts(m, wy, BOOTSTRAP_REPLICATES, g) / m
    spread = 0.5 * (bx - by).abs().sum(1)
    return Estimate(0.5 * float((wx - wy).abs().sum()), float(spread.std()), 1.0 / n, 1.0 / m)


def mode_tv_two_sample_floor(mixture: GaussianMixture, n: int, m: int, seed: int = 0) -> tuple[float, float]:
    """Mean and spread of ``mode_tv`` between independent exact sets of sizes ``n`` and ``m``: their
    counts are ``Multinomial(n, p)`` and ``Multinomial(m, p)`` with ``p = mode_probabilities``, drawn
    ``BOOTSTRAP_REPLICATES`` times (no samples needed, so any ``N`` costs the same)."""
    p = mode_probabilities(mixture).p
    g = torch.Generator().manual_seed(seed)
    wx = multinomial_counts(n, p, BOOTSTRAP_REPLICATES, g) / n
    wy = multinomial_counts(m, p, BOOTSTRAP_REPLICATES, g) / m
    values = 0.5 * (wx - wy).abs().sum(1)
    return float(values.mean()), float(values.std())


def _distance_block(a: Tensor, b: Tensor) -> Tensor:
    return sq_dist(a, b).sqrt_()


def _rbf_block(h: float):
    def k(a: Tensor, b: Tensor) -> Tensor:
        return sq_dist(a, b).mul_(-0.5 / h**2).exp_()

    return k


def _two_sample_v(kernel, x: Tensor, y: Tensor, cross_sign: float, groups: int) -> tuple[float, float | None]:
    """``cross_sign * 2 S_xy / (nm) + S_xx / n^2 + S_yy / m^2`` (the energy distance with ``cross_sign``
    +1 and self-terms negated by the caller's kernel sign; MMD with -1) and its jackknife se, over
    paired groups ``(x_g, y_g)``."""
    g = min(len(groups_of(x.shape[0], groups)), len(groups_of(y.shape[0], groups)))
    gx, gy = groups_of(x.shape[0], g), groups_of(y.shape[0], g)
    s_xy = grouped_pair_sums(gx, gy, lambda i, j: kernel(x[i], y[j]))
    s_xx = grouped_pair_sums(gx, gx, lambda i, j: kernel(x[i], x[j]), same=True)
    s_yy = grouped_pair_sums(gy, gy, lambda i, j: kernel(y[i], y[j]), same=True)
    nx = torch.tensor([s.stop - s.start for s in gx], dtype=torch.float64)
    ny = torch.tensor([s.stop - s.start for s in gy], dtype=torch.float64)

    def statistic(drop: int | None) -> float:
        n = float(nx.sum()) - (0.0 if drop is None else float(nx[drop]))
        m = float(ny.sum()) - (0.0 if drop is None else float(ny[drop]))
        cross = without_group(s_xy, drop) / (n * m)
        return cross_sign * 2 * cross + without_group(s_xx, drop) / n**2 + without_group(s_yy, drop) / m**2

    return jackknife(statistic, g)


def energy_two_sample(x: Tensor, y: Tensor, budget: int = PAIR_BUDGET) -> Estimate:
    """The energy distance V-statistic (``distances.energy_distance``) with its jackknife standard
    error; above ``budget`` pairs, the block estimator."""

    def per_block(a: Tensor, b: Tensor, _: Tensor | None, groups: int) -> tuple[float, float | None]:
        return _two_sample_v(lambda u, w: -_distance_block(u, w), a, b, -1.0, groups)

    return blocked(x, y, per_block, budget)


def mmd_two_sample(x: Tensor, y: Tensor, bandwidth: float, budget: int = PAIR_BUDGET) -> Estimate:
    """The squared-MMD V-statistic (``distances.mmd``) with its jackknife standard error; above
    ``budget`` pairs, the block estimator."""
    return blocked(x, y, lambda a, b, _, groups: _two_sample_v(_rbf_block(bandwidth), a, b, -1.0, groups), budget)


def _one_sample_v(
    self_kernel, x: Tensor, per_point: Tensor | None, y: Tensor | None, cross_kernel, constant: float, groups: int
) -> tuple[float, float | None]:
    """``S_xx / n^2 - 2 [sum_i per_point_i / n  or  S_xy / (n m)] + constant`` and its jackknife se."""
    gx = groups_of(x.shape[0], groups)
    g = len(gx) if y is None else min(len(gx), len(groups_of(y.shape[0], groups)))
    gx = groups_of(x.shape[0], g)
    s_xx = grouped_pair_sums(gx, gx, lambda i, j: self_kernel(x[i], x[j]), same=True)
    nx = torch.tensor([s.stop - s.start for s in gx], dtype=torch.float64)
    if y is not None:
        gy = groups_of(y.shape[0], g)
        s_xy = grouped_pair_sums(gx, gy, lambda i, j: cross_kernel(x[i], y[j]))
        ny = torch.tensor([s.stop - s.start for s in gy], dtype=torch.float64)
    else:
        point_sums = torch.stack([per_point[s].sum() for s in gx])

    def statistic(drop: int | None) -> float:
        n = float(nx.sum()) - (0.0 if drop is None else float(nx[drop]))
        if y is not None:
            m = float(ny.sum()) - (0.0 if drop is None else float(ny[drop]))
            cross = without_group(s_xy, drop) / (n * m)
        else:
            cross = (float(point_sums.sum()) - (0.0 if drop is None else float(point_sums[drop]))) / n
        return without_group(s_xx, drop) / n**2 - 2 * cross + constant

    return jackknife(statistic, g)


def energy_exact(x: Tensor, mixture: GaussianMixture, budget: int = PAIR_BUDGET) -> Estimate:
    """Energy distance from ``x`` to the exact law: no reference.

    .. math:: \\mathcal{E}(\\hat x, p) = \\frac{2}{n} \\sum_i g(x_i)
              - \\frac{1}{n^2} \\sum_{i,i'} |x_i - x_{i'}| - E|Y - Y'|, \\qquad g(x) = E_{Y \\sim p}|x - Y|

    with ``g`` (``expected_distance``) and ``E|Y - Y'|`` (``mean_pair_distance``) from the closed
    forms: the kernel ``h(x, x') = -|x - x'| + g(x) + g(x') - E|Y - Y'|`` is centred under ``p``, so
    for exact ``x`` the expectation is ``E|Y - Y'| / n`` (the diagonal) and the fluctuations are
    second order. (A finite reference in place of ``g`` would add first-order noise
    ``2 sd(g(Y)) / sqrt(m)``, far above that floor.) Jackknife standard error; above ``budget``
    pairs, the block estimator (floor at the block size).

    Args:
        x: ``(N, D)`` samples.
        mixture: the law.
        budget: pair evaluations per term.
    """
    e_yy = mean_pair_distance(mixture)
    neg = lambda u, w: -_distance_block(u, w)  # noqa: E731  (the self-term enters with a minus)

    def per_block(a: Tensor, _: Tensor | None, neg_g: Tensor | None, groups: int) -> tuple[float, float | None]:
        # S_xx / n^2 - 2 mean(-g) - E|Y - Y'| with S_xx the sum of -|x - x'|
        return _one_sample_v(neg, a, neg_g, None, None, -e_yy, groups)

    return blocked(x, None, per_block, budget, per_point=-expected_distance(x, mixture))


def mmd_exact(x: Tensor, mixture: GaussianMixture, bandwidth: float, budget: int = PAIR_BUDGET) -> Estimate:
    """Squared MMD from ``x`` to the exact law, with the RBF kernel of bandwidth ``h``: no reference.

    .. math:: \\mathrm{MMD}^2(\\hat x, p) = \\frac{1}{n^2} \\sum_{i,j} k(x_i, x_j)
              - \\frac{2}{n} \\sum_i \\mu_p(x_i) + E k(Y, Y')

    with the kernel mean embedding ``mu_p`` and ``E k(Y, Y')`` closed form (``closed_forms``). For
    exact ``x`` its expectation is ``(1 - E k(Y, Y')) / n``. Jackknife standard error; above
    ``budget`` pairs, the block estimator.

    Args:
        x: ``(N, D)`` samples.
        mixture: the law.
        bandwidth: ``h``.
        budget: pair evaluations per term.
    """
    e_kk = mean_pair_kernel(mixture, bandwidth)
    rbf = _rbf_block(bandwidth)

    def per_block(a: Tensor, _: Tensor | None, mu: Tensor | None, groups: int) -> tuple[float, float | None]:
        return _one_sample_v(rbf, a, mu, None, None, e_kk, groups)

    return blocked(x, None, per_block, budget, per_point=kernel_embedding(x, mixture, bandwidth))


def fisher_information(mixture: GaussianMixture, points: int = 2**20, seed: int = 0) -> tuple[float, float]:
    """``E |grad log p(X)|^2`` under the law, by Monte Carlo over ``points`` exact draws, with its
    standard error (cached)."""
    key = _key(mixture, points, seed)
    if key not in _FISHER:
        g = torch.Generator().manual_seed(seed)
        values = torch.cat(
            [
                (mixture.score(mixture.sample(min(_ASSIGN_CHUNK, points - i), g)) ** 2).sum(1)
                for i in range(0, points, _ASSIGN_CHUNK)
            ]
        )
        _FISHER[key] = (float(values.mean()), float(values.std()) / math.sqrt(points))
    return _FISHER[key]


def ksd_floor(mixture: GaussianMixture, *, c: float = 1.0, beta: float = -0.5) -> tuple[float, float]:
    """``E k_0(X, X)`` of the IMQ Langevin Stein kernel under the law and its standard error: the KSD
    V-statistic of ``n`` exact samples has expectation ``E k_0(X, X) / n`` (its off-diagonal terms
    have mean zero).

    .. math:: k_0(x, x) = c^{2\\beta} |s(x)|^2 - 2 \\beta D\\, c^{2\\beta - 2}

    Args:
        mixture: the law.
        c, beta: the IMQ parameters of ``kernel_stein_discrepancy``.
    """
    fisher, se = fisher_information(mixture)
    return c ** (2 * beta) * fisher - 2 * beta * mixture.dim * c ** (2 * beta - 2), c ** (2 * beta) * se


def ksd_estimate(x: Tensor, mixture: GaussianMixture, budget: int = PAIR_BUDGET) -> Estimate:
    """``kernel_stein_discrepancy`` (IMQ, its defaults) of ``x`` from the law's score, with its
    jackknife standard error; above ``budget`` pairs, the block estimator."""

    def per_block(a: Tensor, _: Tensor | None, __: Tensor | None, groups: int) -> tuple[float, float | None]:
        k0 = stein_kernel(a, mixture.score)
        gx = groups_of(a.shape[0], groups)
        sums = grouped_pair_sums(gx, gx, k0, same=True)
        sizes = torch.tensor([s.stop - s.start for s in gx], dtype=torch.float64)

        def statistic(drop: int | None) -> float:
            n = float(sizes.sum()) - (0.0 if drop is None else float(sizes[drop]))
            return without_group(sums, drop) / n**2

        return jackknife(statistic, len(gx))

    return blocked(x, None, per_block, budget)
