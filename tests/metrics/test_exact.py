"""Metrics against the exact law of a mixture, against independent answers: de Moivre's binomial
deviation against direct summation of SciPy's pmf, the mode-TV floor against enumeration of all
multinomial outcomes, mode probabilities against a threshold rule's normal probabilities, the
estimates against the plain V-statistics of ``distances`` and ``stein`` (and their jackknife
against brute-force recomputation), the exact-law energy and MMD against their pair means written
out, the floors against replicates of exact samples, and ``evaluate``'s blocks, floors and ratio
intervals.

Statistical checks state their false-failure probability (each at most 1e-4, most far below)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch import Tensor

from scoredyn.core.targets import GaussianMixture, mog6
from scoredyn.metrics import (
    energy_distance,
    evaluate,
    kernel_stein_discrepancy,
    median_heuristic,
    mmd,
    mode_tv,
    mode_weights,
)
from scoredyn.metrics.closed_forms import expected_distance, kernel_embedding, mean_pair_distance, mean_pair_kernel
from scoredyn.metrics.estimates import groups_of
from scoredyn.metrics.exact import (
    ModeProbabilities,
    binomial_mean_abs_deviation,
    energy_exact,
    energy_two_sample,
    fisher_information,
    ksd_estimate,
    ksd_floor,
    mmd_exact,
    mmd_two_sample,
    mode_counts,
    mode_probabilities,
    mode_tv_exact,
    mode_tv_floor,
    mode_tv_two_sample,
    mode_tv_two_sample_floor,
    multinomial_counts,
)
from scoredyn.metrics.stein import stein_kernel

F64 = torch.float64
Z = scipy.stats.norm.ppf(0.975)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _gaussian(dim: int) -> GaussianMixture:
    return GaussianMixture([1.0], torch.zeros(1, dim, dtype=F64), torch.eye(dim, dtype=F64)[None])


def _separated() -> GaussianMixture:
    """Three components about 40 standard deviations apart: every point is assigned to its own component."""
    covs = [[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 1.2]], [[1.0, 0.0], [0.0, 1.0]]]
    return GaussianMixture([0.5, 0.3, 0.2], [[0.0, 0.0], [40.0, 0.0], [0.0, 40.0]], covs)


def _pair_distances(a: Tensor, b: Tensor) -> Tensor:
    """``|a_i - b_j|`` from the differences (exact zeros on a diagonal, unlike the expanded form)."""
    return (a[:, None, :] - b[None, :, :]).norm(dim=-1)


def _energy_atol(*sets: Tensor) -> float:
    """Rounding allowance for an energy distance computed from expanded squared distances
    ``|a|^2 + |b|^2 - 2 a.b``: a zero (diagonal) distance comes out as ``sqrt`` of a rounding error,
    up to ``sqrt(8 eps) max|x| ~ 4e-8 max|x|`` (1.7e-7 seen on mog6), and enters a self-term with
    weight ``1/n``; both self-terms, both implementations: ``1e-7 max|x| / min n`` bounds it, at least
    6 orders of magnitude below the values compared (and below anything a formula error changes)."""
    return 1e-7 * max(float(s.abs().max()) for s in sets) / min(s.shape[0] for s in sets)


def _jackknife_se(values: list[float]) -> float:
    """Delete-a-group jackknife standard error from the left-out values (Efron & Stein 1981)."""
    v = np.asarray(values)
    return math.sqrt((len(v) - 1) / len(v) * ((v - v.mean()) ** 2).sum())


def _without(x: Tensor, g: int) -> Tensor:
    """``x`` with the g-th of its ``groups_of`` groups removed (the jackknife's groups: contiguous and
    near-equal, pinned in test_estimates)."""
    keep = [s for k, s in enumerate(groups_of(x.shape[0])) if k != g]
    return torch.cat([x[s] for s in keep])


# --- de Moivre's binomial mean absolute deviation and the mode-TV floor ---------------------------


@pytest.mark.parametrize(
    "n,p",
    [
        (1, [0.3, 0.5, 0.9]),
        (7, [0.5, 0.1, 0.77]),
        (10, [0.3, 0.25, 0.6]),  # n p = 3 and 6: integers
        (50, [0.02, 0.5, 0.999]),
        (200, [0.125, 0.3333, 0.55]),  # n p = 25: an integer
        (1000, [0.55, 0.123, 0.0005]),
        (100_000, [0.06, 0.55, 0.123457]),
    ],
)
def test_binomial_mean_abs_deviation_matches_direct_summation(n, p):
    # E|X - np| = sum_k P(X = k) |k - np| over all k: 1e-10, plus the rounding of the log-space
    # closed form, whose exponent lgamma(n+1) - lgamma(m+1) - lgamma(n-m+1) + ... cancels terms of
    # size lgamma(n+1) (1.05e6 at n = 1e5: ~1e-16 each, 1.8e-10 relative seen there)
    got = binomial_mean_abs_deviation(n, torch.tensor(p, dtype=F64))
    k = np.arange(n + 1)
    exact = [float((scipy.stats.binom.pmf(k, n, q) * np.abs(k - n * q)).sum()) for q in p]
    rtol = 1e-10 + 1e-15 * math.lgamma(n + 1)
    torch.testing.assert_close(got, torch.tensor(exact, dtype=F64), rtol=rtol, atol=0.0)


def test_binomial_mean_abs_deviation_is_zero_for_certain_outcomes():
    got = binomial_mean_abs_deviation(12, torch.tensor([0.0, 1.0, 0.5], dtype=F64))
    assert got[0] == 0.0 and got[1] == 0.0 and got[2] > 0
    assert float(binomial_mean_abs_deviation(1, torch.tensor([0.5], dtype=F64))) == pytest.approx(0.5, rel=1e-14)


def _multinomial_outcomes(n: int, k: int):
    """Every count vector of ``n`` trials in ``k`` cells."""
    for cut in itertools.combinations(range(n + k - 1), k - 1):
        edges = (-1, *cut, n + k - 1)
        yield np.array([edges[i + 1] - edges[i] - 1 for i in range(k)])


def _multinomial_pmf(counts: np.ndarray, p: np.ndarray) -> float:
    n = int(counts.sum())
    log = math.lgamma(n + 1) - sum(math.lgamma(c + 1) for c in counts)
    return math.exp(log + sum(c * math.log(q) for c, q in zip(counts, p, strict=True) if c > 0))


@pytest.mark.parametrize("n", [1, 2, 5, 13])
def test_mode_tv_floor_is_the_exact_expectation_by_enumeration(n):
    # E TV = sum over all count vectors of P(counts) * 1/2 sum_k |counts_k / n - p_k|
    p = np.array([0.5, 0.3, 0.15, 0.05])
    exact = sum(_multinomial_pmf(c, p) * 0.5 * np.abs(c / n - p).sum() for c in _multinomial_outcomes(n, len(p)))
    floor, correction = mode_tv_floor(ModeProbabilities(torch.from_numpy(p), torch.zeros(4, dtype=F64)), n)
    assert floor == pytest.approx(exact, rel=1e-12) and correction == 0.0


def test_mode_tv_floor_correction_for_the_error_of_p():
    # each term is scaled by sqrt(1 + se_k^2 n / (p_k (1 - p_k))) (normal limit of |X/n - p - e|
    # with e ~ N(0, se^2)); the second value is the total raise
    p, se, n = np.array([0.5, 0.3, 0.2]), np.array([0.01, 0.02, 0.0]), 40
    k = np.arange(n + 1)
    mad = np.array([(scipy.stats.binom.pmf(k, n, q) * np.abs(k - n * q)).sum() / n for q in p])
    factor = np.sqrt(1 + se**2 * n / (p * (1 - p)))
    floor, correction = mode_tv_floor(ModeProbabilities(torch.from_numpy(p), torch.from_numpy(se)), n)
    assert floor == pytest.approx(0.5 * (mad * factor).sum(), rel=1e-12)
    assert correction == pytest.approx(0.5 * (mad * (factor - 1)).sum(), rel=1e-10)


def test_multinomial_counts_have_multinomial_moments():
    # rows sum to n exactly; means n p_k and covariances n (diag p - p p^T) within 6 standard errors
    # of 200,000 rows (se of each mean from the exact variance, of each covariance entry from the
    # spread of the centred products): 20 checks of ~2e-9 each
    n, reps = 50, 200_000
    p = torch.tensor([0.45, 0.0, 0.25, 0.2, 0.1], dtype=F64)
    counts = multinomial_counts(n, p, reps, _gen(0))
    assert counts.shape == (reps, 5) and torch.equal(counts.sum(1), torch.full((reps,), float(n), dtype=F64))
    assert torch.equal(counts, counts.round()) and (counts[:, 1] == 0).all()
    mean_se = torch.sqrt(n * p * (1 - p) / reps)
    assert ((counts.mean(0) - n * p).abs() <= 6 * mean_se).all()
    d = counts - n * p
    products = d[:, :, None] * d[:, None, :]
    cov = n * (torch.diag(p) - torch.outer(p, p))
    se = products.std(0) / math.sqrt(reps)
    assert ((products.mean(0) - cov).abs() <= 6 * se + 1e-12).all()


# --- mode assignment and mode probabilities --------------------------------------------------------


def test_mode_counts_equal_the_argmax_of_component_log_prob():
    # more points than one assignment chunk (2^16): exact samples, a grid across every boundary
    # between components (where the log-determinants and weights decide), and points far from
    # every mode
    target = mog6()
    grid = torch.cartesian_prod(torch.linspace(-15, 15, 241, dtype=F64), torch.linspace(-12, 12, 193, dtype=F64))
    far = torch.tensor([[1e3, 1e3], [-5e2, 2e2], [0.0, -1e4], [3e4, -3e4], [-40.0, 0.0], [0.0, 60.0]], dtype=F64)
    x = torch.cat([target.sample(2**15, _gen(1)), grid, far, target.means])
    labels = target.component_log_prob(x).argmax(1)
    assert torch.equal(mode_counts(x, target), torch.bincount(labels, minlength=6).to(F64))
    assert torch.equal(
        mode_counts(grid, target), torch.bincount(labels[2**15 : 2**15 + len(grid)], minlength=6).to(F64)
    )
    assert torch.equal(mode_counts(far, target), torch.bincount(labels[-12:-6], minlength=6).to(F64))


def test_mode_probabilities_of_separated_components_are_the_weights():
    got = mode_probabilities(_separated())
    torch.testing.assert_close(got.p, torch.tensor([0.5, 0.3, 0.2], dtype=F64), rtol=0.0, atol=1e-6)
    assert (got.se <= 1e-6).all()


def test_mode_probabilities_of_two_overlapping_gaussians_follow_the_threshold_rule():
    # equal variances: pi_1 N(x; m_1, s^2) < pi_2 N(x; m_2, s^2) iff x > t with
    # t = (m_1 + m_2)/2 + s^2 log(pi_1/pi_2) / (m_2 - m_1), so C_j2 = Phi((m_j - t)/s) and
    # p_2 = pi_1 C_12 + pi_2 C_22; within 6 of the stated standard errors (~2e-9), which must match
    # se^2 = sum_j pi_j^2 C_j2 (1 - C_j2) / M with the exact C (5%: the estimated C differs by ~0.3%)
    w, m, s = (0.35, 0.65), (0.0, 1.5), 1.2
    target = GaussianMixture(list(w), [[m[0]], [m[1]]], [[[s * s]], [[s * s]]])
    t = (m[0] + m[1]) / 2 + s * s * math.log(w[0] / w[1]) / (m[1] - m[0])
    c2 = [scipy.stats.norm.cdf((mj - t) / s) for mj in m]
    p2 = w[0] * c2[0] + w[1] * c2[1]
    points = 2**17
    got = mode_probabilities(target, points_per_component=points, seed=3)
    se = math.sqrt(sum(wj**2 * c * (1 - c) for wj, c in zip(w, c2, strict=True)) / points)
    assert float(got.se[1]) == pytest.approx(se, rel=0.05) and float(got.se[0]) == pytest.approx(se, rel=0.05)
    assert abs(float(got.p[1]) - p2) < 6 * se and abs(float(got.p[0]) - (1 - p2)) < 6 * se
    assert float(got.p.sum()) == pytest.approx(1.0, rel=1e-12)


# --- mode TV estimates ---------------------------------------------------------------------------


def _numpy_bootstrap_se(n: int, w: np.ndarray, centre: np.ndarray, reps: int, seed: int) -> float:
    """The spread of 1/2 sum_k |counts/n - centre| over ``Multinomial(n, w)`` draws (NumPy's sampler)."""
    boot = np.random.default_rng(seed).multinomial(n, w, size=reps) / n
    return float((0.5 * np.abs(boot - centre).sum(1)).std(ddof=1))


def test_mode_tv_exact_value_and_bootstrap_standard_error():
    # value: 1/2 sum_k |w_k(x) - p_k|; se: the spread over Multinomial(N, w(x)) counts, against
    # 20,000 NumPy draws. The module's spread has 2000 draws: relative error ~2% (1/sqrt(2 R) with a
    # kurtosis near 3), so 10% is 5 of its standard errors (~6e-7).
    target = mog6()
    x = target.sample(2000, _gen(4))
    p = mode_probabilities(target).p
    est = mode_tv_exact(x, target, seed=5)
    w = mode_weights(x, target)
    assert est.value == pytest.approx(0.5 * float((w - p).abs().sum()), rel=1e-14)
    assert (est.inv_n, est.inv_m, est.blocks) == (1 / 2000, 0.0, 1)
    ref = _numpy_bootstrap_se(2000, w.numpy(), p.numpy(), 20_000, 0)
    assert est.se == pytest.approx(ref, rel=0.1)


def test_mode_tv_two_sample_value_standard_error_and_floor():
    target = mog6()
    x, y = target.sample(1500, _gen(6)), target.sample(900, _gen(7))
    est = mode_tv_two_sample(x, y, target, seed=8)
    assert est.value == pytest.approx(mode_tv(x, y, target), rel=1e-14)
    assert (est.inv_n, est.inv_m) == (1 / 1500, 1 / 900)
    # se: both histograms redrawn; against 20,000 NumPy draws of the difference (10%, as above)
    wx, wy = mode_weights(x, target).numpy(), mode_weights(y, target).numpy()
    rng = np.random.default_rng(1)
    diff = rng.multinomial(1500, wx, size=20_000) / 1500 - rng.multinomial(900, wy, size=20_000) / 900
    assert est.se == pytest.approx(float((0.5 * np.abs(diff).sum(1)).std(ddof=1)), rel=0.1)


def test_mode_tv_two_sample_floor_is_the_expectation_between_exact_histograms():
    # separated components: p = weights exactly; E TV between Multinomial(n, p)/n and
    # Multinomial(m, p)/m by enumerating both count vectors; the module's mean over 2000 draws lies
    # within 6 of its standard errors (TV is bounded: ~2e-9)
    p, n, m = np.array([0.5, 0.3, 0.2]), 6, 4
    exact = sum(
        _multinomial_pmf(a, p) * _multinomial_pmf(b, p) * 0.5 * np.abs(a / n - b / m).sum()
        for a in _multinomial_outcomes(n, 3)
        for b in _multinomial_outcomes(m, 3)
    )
    mean, spread = mode_tv_two_sample_floor(_separated(), n, m, seed=2)
    assert abs(mean - exact) < 6 * spread / math.sqrt(2000)


# --- V-statistics with jackknife standard errors ---------------------------------------------------


def test_two_sample_estimates_equal_the_plain_v_statistics_and_their_jackknife():
    # one block: the values of distances.energy_distance / distances.mmd; se: the delete-a-group
    # jackknife over 20 paired groups (x_g, y_g), recomputed from scratch (se: differences of values
    # near 0.1, so the energy's expanded-distance rounding allows 1e-6 relative; MMD 1e-9)
    target, h = mog6(), 2.0
    x, y = target.sample(150, _gen(9)), target.sample(130, _gen(10))
    groups = 20
    energy, gauss = energy_two_sample(x, y), mmd_two_sample(x, y, h)
    assert energy.value == pytest.approx(energy_distance(x, y), rel=0, abs=_energy_atol(x, y))
    assert gauss.value == pytest.approx(mmd(x, y, h), rel=1e-12)
    for est in (energy, gauss):
        assert (est.inv_n, est.inv_m, est.blocks) == (1 / 150, 1 / 130, 1)
    left_e = [energy_distance(_without(x, g), _without(y, g)) for g in range(groups)]
    left_m = [mmd(_without(x, g), _without(y, g), h) for g in range(groups)]
    assert energy.se == pytest.approx(_jackknife_se(left_e), rel=1e-6)
    assert gauss.se == pytest.approx(_jackknife_se(left_m), rel=1e-9)


def test_two_sample_estimates_above_the_budget_average_paired_blocks():
    # max(N, M) = 530 and a budget of 1e5 pairs: 2 blocks (MIN_BLOCK = 256), x and y split alike
    target, h = mog6(), 2.0
    x, y = target.sample(520, _gen(11)), target.sample(530, _gen(12))
    xs, ys = np.array_split(np.arange(520), 2), np.array_split(np.arange(530), 2)
    energy, gauss = energy_two_sample(x, y, budget=10**5), mmd_two_sample(x, y, h, budget=10**5)
    e_blocks = [energy_distance(x[i], y[j]) for i, j in zip(xs, ys, strict=True)]
    m_blocks = [mmd(x[i], y[j], h) for i, j in zip(xs, ys, strict=True)]
    assert energy.value == pytest.approx(np.mean(e_blocks), rel=0, abs=_energy_atol(x[:260], y[:265]))
    assert gauss.value == pytest.approx(np.mean(m_blocks), rel=1e-12)
    for est in (energy, gauss):
        assert (est.blocks, est.inv_n, est.inv_m) == (2, pytest.approx(1 / 260), pytest.approx(1 / 265))


def test_ksd_estimate_equals_the_plain_v_statistic_and_its_jackknife():
    target = mog6()
    x = target.sample(120, _gen(13))
    est = ksd_estimate(x, target)
    assert est.value == pytest.approx(kernel_stein_discrepancy(x, target.score), rel=1e-12)
    left = [kernel_stein_discrepancy(_without(x, g), target.score) for g in range(20)]
    assert est.se == pytest.approx(_jackknife_se(left), rel=1e-9)
    assert (est.inv_n, est.inv_m, est.blocks) == (1 / 120, 0.0, 1)


# --- energy and MMD against the exact law ------------------------------------------------------------


def _energy_exact_brute(x: Tensor, target: GaussianMixture) -> float:
    """``2/n sum_i g(x_i) - 1/n^2 sum_{i,i'} |x_i - x_i'| - E|Y - Y'|``."""
    return float(2 * expected_distance(x, target).mean() - _pair_distances(x, x).mean() - mean_pair_distance(target))


def _mmd_exact_brute(x: Tensor, target: GaussianMixture, h: float) -> float:
    """``1/n^2 sum_{i,j} k(x_i, x_j) - 2/n sum_i mu_p(x_i) + E k(Y, Y')``."""
    k = torch.exp(-(_pair_distances(x, x) ** 2) / (2 * h**2))
    return float(k.mean() - 2 * kernel_embedding(x, target, h).mean() + mean_pair_kernel(target, h))


@pytest.mark.parametrize("which", ["mog6", "gaussian3"])
def test_energy_and_mmd_exact_equal_their_pair_means_and_jackknife(which):
    target = mog6() if which == "mog6" else GaussianMixture([1.0], [[1.0, -2.0, 0.5]], np.diag([2.0, 0.5, 1.0])[None])
    h = 1.7
    x = target.sample(140, _gen(14))
    energy, gauss = energy_exact(x, target), mmd_exact(x, target, h)
    # the energy carries the expanded-distance rounding (``_energy_atol``); the MMD cancels terms
    # ~0.3 down to ~1e-3: 1e-10 relative
    assert energy.value == pytest.approx(_energy_exact_brute(x, target), rel=0, abs=_energy_atol(x))
    assert gauss.value == pytest.approx(_mmd_exact_brute(x, target, h), rel=1e-10)
    for est in (energy, gauss):
        assert (est.inv_n, est.inv_m, est.blocks) == (1 / 140, 0.0, 1)
    left_e = [_energy_exact_brute(_without(x, g), target) for g in range(20)]
    left_m = [_mmd_exact_brute(_without(x, g), target, h) for g in range(20)]
    assert energy.se == pytest.approx(_jackknife_se(left_e), rel=1e-6)
    assert gauss.se == pytest.approx(_jackknife_se(left_m), rel=1e-8)


def test_energy_and_mmd_exact_of_exact_samples_average_to_their_floors():
    # E energy_exact = E|Y - Y'| / n and E mmd_exact = (1 - E k) / n for exact samples (only the
    # diagonal of the pair mean survives). One value's sd, measured over 1500 replicates at n = 200,
    # is 0.66 (energy) and 0.60 (MMD) of the floor; with the bound 0.8 floor the mean of 40 replicates
    # must lie within 5 bounds / sqrt(40), at least 6 true standard errors. The values are skewed
    # (weighted chi-square, skewness 2): resampling the 1500 measured values puts a miss at ~1e-6.
    target, n, h, reps = mog6(), 200, 3.0, 40
    e_floor, m_floor = mean_pair_distance(target) / n, (1 - mean_pair_kernel(target, h)) / n
    e_vals, m_vals = [], []
    for r in range(reps):
        x = target.sample(n, _gen(1000 + r))
        e_vals.append(energy_exact(x, target).value)
        m_vals.append(mmd_exact(x, target, h).value)
    for vals, floor in ((e_vals, e_floor), (m_vals, m_floor)):
        assert abs(np.mean(vals) - floor) < 5 * 0.8 * floor / math.sqrt(reps), (np.mean(vals) / floor,)


# --- the Stein kernel's diagonal and the KSD floor ------------------------------------------------------


@pytest.mark.parametrize("c,beta", [(1.0, -0.5), (1.7, -0.3), (0.6, -0.8)])
def test_stein_kernel_diagonal_and_ksd_floor(c, beta):
    # IMQ k = (c^2 + r^2)^beta at r = 0: k = c^{2 beta}, grad k = 0, tr grad_x grad_y k =
    # -2 beta D c^{2 beta - 2}, so k_0(x, x) = c^{2 beta} |s(x)|^2 - 2 beta D c^{2 beta - 2}
    target = GaussianMixture(
        [0.4, 0.6], [[0.0, 1.0, -1.0], [2.0, 0.0, 1.0]], np.stack([np.eye(3), np.diag([0.5, 2.0, 1.0])])
    )
    x = target.sample(30, _gen(15))
    s = target.score(x)
    k0 = stein_kernel(x, s, c=c, beta=beta)(slice(0, 30), slice(0, 30))
    diag = c ** (2 * beta) * (s * s).sum(1) - 2 * beta * 3 * c ** (2 * beta - 2)
    torch.testing.assert_close(k0.diagonal(), diag, rtol=1e-12, atol=0.0)
    # RBF: k_0(x, x) = |s(x)|^2 + D / h^2
    rbf = stein_kernel(x, s, kernel="rbf", bandwidth=0.9)(slice(0, 30), slice(0, 30))
    torch.testing.assert_close(rbf.diagonal(), (s * s).sum(1) + 3 / 0.81, rtol=1e-12, atol=0.0)
    # E k_0(X, X) under N(0, I_2): E|s|^2 = E|X|^2 = 2, so c^{2 beta} 2 - 4 beta c^{2 beta - 2}
    # (2D = 4 for the defaults), within 6 Monte-Carlo standard errors of the Fisher information
    # (~2e-9); the stated se matches sqrt(var |X|^2 / M) = sqrt(2 D / 2^20) (chi-square: 5%)
    mean, se = ksd_floor(_gaussian(2), c=c, beta=beta)
    exact = c ** (2 * beta) * 2 - 2 * beta * 2 * c ** (2 * beta - 2)
    assert abs(mean - exact) < 6 * se
    assert se == pytest.approx(c ** (2 * beta) * math.sqrt(4 / 2**20), rel=0.05)


def test_fisher_information_of_a_gaussian_is_the_trace_of_its_precision():
    # E |Sigma^{-1} (X - mu)|^2 = tr Sigma^{-1}, within 6 standard errors (~2e-9)
    cov = np.array([[2.0, 0.9], [0.9, 0.6]])
    mean, se = fisher_information(GaussianMixture([1.0], [[3.0, -1.0]], cov[None]), points=2**16, seed=1)
    assert abs(mean - np.trace(np.linalg.inv(cov))) < 6 * se


# --- the ratio interval of mode_tv_exact: coverage and power ------------------------------------------


def test_mode_tv_exact_interval_covers_its_expectation():
    # exact samples at N = 500: mode_tv_floor is the value's expectation, so each 95% interval of the
    # ratio should contain 1; at least 85 of 100 do unless the true coverage is below 0.95 (binomial
    # tail P(<= 84 of 100 | 0.95) = 3.7e-5). The bootstrap se is conservative: 0.99 seen.
    target, n = mog6(), 500
    floor, _ = mode_tv_floor(mode_probabilities(target), n)
    covered = 0
    for r in range(100):
        est = mode_tv_exact(target.sample(n, _gen(2000 + r)), target, seed=r)
        covered += (est.value - Z * est.se) / floor <= 1 <= (est.value + Z * est.se) / floor
    assert covered >= 85, covered


def test_mode_tv_exact_flags_a_one_percent_weight_error_at_100k_points():
    # weights 0.55 -> 0.54 and 0.06 -> 0.07: E TV ~ 0.0115 against a floor of 0.0024 (ratio ~4.7,
    # sd 0.40 over 150 replicates). ratio > 3 misses with probability ~1e-5, a lower end > 1.5 with
    # ~1e-9 (normal tails at 4.3 and 6 sd). The floor is de Moivre's at the mode probabilities
    # (their se raises it by ~2e-6: 1e-5 relative).
    target, n = mog6(), 100_000
    w = target.weights.clone()
    w[0], w[5] = w[0] - 0.01, w[5] + 0.01
    biased = GaussianMixture(w, target.means, target.covs)
    report = evaluate(biased.sample(n, _gen(21)), target, seed=4, metrics=("mode_tv_exact",))["mode_tv_exact"]
    p = mode_probabilities(target).p.numpy()
    k = np.arange(n + 1)
    floor = 0.5 * sum(float((scipy.stats.binom.pmf(k, n, q) * np.abs(k - n * q)).sum()) for q in p) / n
    assert report["floor"] == pytest.approx(floor, rel=1e-5)
    assert report["ratio"] > 3 and report["ratio_ci"][0] > 1.5, report
    # exact samples at the same N: each 95% interval contains 1 with probability >= 0.95 (0.98
    # seen); at least 4 of 8 do unless coverage fails (P(<= 3 of 8 | 0.95) = 1.5e-5)
    probabilities = mode_probabilities(target)
    inside = 0
    for r in range(8):
        est = mode_tv_exact(target.sample(n, _gen(30 + r)), target, seed=r)
        floor, _ = mode_tv_floor(probabilities, n)
        inside += (est.value - Z * est.se) / floor <= 1 <= (est.value + Z * est.se) / floor
    assert inside >= 4, inside


# --- evaluate: blocks, floors and intervals ---------------------------------------------------------------


def test_evaluate_reports_blocked_estimates_with_floors_at_the_block_size():
    # N = 1030 samples, M = 1100 reference points and a budget of 2^18 pairs: ceil(1100^2 / 2^18) = 5
    # blocks exceed 1100 // MIN_BLOCK = 4, so 4 blocks of 258, 258, 257, 257 samples and 275
    # reference points; the floors of N(0, I_2) at those sizes: E|X - X'| = 2 Gamma(3/2) / Gamma(1)
    # = sqrt(pi), E k = (1 + 2/h^2)^{-1}, E k_0(X, X) = 2D = 4 (ksd: within 6 Monte-Carlo standard
    # errors, ~2e-9)
    target, n, m = _gaussian(2), 1030, 1100
    x, y = target.sample(n, _gen(40)), target.sample(m, _gen(41))
    names = ("energy", "mmd", "ksd", "energy_exact", "mmd_exact")
    report = evaluate(x, target, reference=y, seed=0, metrics=names, pair_budget=2**18)
    inv_n, inv_m = (2 / 258 + 2 / 257) / 4, 1 / 275
    h = median_heuristic(y)
    one_minus_k = 1 - 1 / (1 + 2 / h**2)
    floors = {
        "energy": math.sqrt(math.pi) * (inv_n + inv_m),
        "mmd": one_minus_k * (inv_n + inv_m),
        "energy_exact": math.sqrt(math.pi) * inv_n,
        "mmd_exact": one_minus_k * inv_n,
    }
    for name in names:
        entry = report[name]
        assert set(entry) == {"value", "floor", "floor_std", "ratio", "ratio_ci", "se", "blocks"}
        assert entry["blocks"] == 4
        if name in floors:
            assert entry["floor"] == pytest.approx(floors[name], rel=1e-10) and entry["floor_std"] == 0.0
        else:
            assert entry["floor_std"] > 0 and abs(entry["floor"] - 4 * inv_n) < 6 * entry["floor_std"]
        v, f, se = entry["value"], entry["floor"], entry["se"]
        assert entry["ratio"] == pytest.approx(v / f, rel=1e-14)
        assert entry["ratio_ci"] == pytest.approx([max(0.0, (v - Z * se) / f), (v + Z * se) / f], rel=1e-14)
    # values: the mean over the paired blocks of the plain statistics
    blocks = list(zip(np.array_split(np.arange(n), 4), np.array_split(np.arange(m), 4), strict=True))
    atol = _energy_atol(x[:257], y[:275])
    values = {
        "energy": (np.mean([energy_distance(x[i], y[j]) for i, j in blocks]), dict(rel=0, abs=atol)),
        "mmd": (np.mean([mmd(x[i], y[j], h) for i, j in blocks]), dict(rel=1e-12)),
        "ksd": (np.mean([kernel_stein_discrepancy(x[i], target.score) for i, _ in blocks]), dict(rel=1e-12)),
        # g(x) is a quadrature (3e-8 relative; its nodes follow the points of each chunk): 2 g enters
        "energy_exact": (
            np.mean([_energy_exact_brute(x[i], target) for i, _ in blocks]),
            dict(rel=0, abs=atol + 2e-7 * math.sqrt(math.pi)),
        ),
        "mmd_exact": (np.mean([_mmd_exact_brute(x[i], target, h) for i, _ in blocks]), dict(rel=1e-10)),
    }
    for name, (value, tol) in values.items():
        assert report[name]["value"] == pytest.approx(value, **tol), name
