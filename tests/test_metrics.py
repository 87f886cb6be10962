"""Metrics against exact answers: closed forms for Gaussians, brute-force references on small sets,
and the expected value of each estimator (V-statistics carry a known O(1/N) bias, included below).

Statistical checks average R independent replicates and allow 4 standard errors estimated from
those replicates (a false alarm has probability ~1e-4 per check under normality)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
import torch
from scipy import integrate

import scoredyn.metrics as metrics
from scoredyn.core.targets import mog6
from scoredyn.metrics import (
    METRICS,
    energy_distance,
    evaluate,
    kernel_stein_discrepancy,
    mc_floor,
    median_heuristic,
    mmd,
    mode_tv,
    mode_weights,
    sliced_wasserstein,
    wasserstein2,
)

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mean_se(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v)))


def _mean_abs_normal(m: float, s: float) -> float:
    """E|Z| for Z ~ N(m, s^2): s sqrt(2/pi) exp(-m^2 / (2 s^2)) + m (1 - 2 Phi(-m/s))."""
    return s * math.sqrt(2 / math.pi) * math.exp(-(m**2) / (2 * s**2)) + m * (
        1 - 2 * scipy.stats.norm.cdf(-m / s)
    )


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These checks are many small tensor ops; on a shared CPU, OpenMP threads spend more time
    waiting for each other than computing (measured: 100x slower per op under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small_blocks(monkeypatch):
    """Force many tiny pairwise blocks (and the symmetric split) so chunking is exercised."""
    monkeypatch.setattr(metrics, "_BLOCK", 37)


# --- brute-force references on small sets (exact up to round-off) ---------------------------------


def test_energy_and_mmd_match_full_matrices(small_blocks):
    g = _gen(0)
    x = torch.randn(23, 3, generator=g, dtype=F64)
    y = torch.randn(31, 3, generator=g, dtype=F64) + 0.5

    def dist(a, b):
        return (a[:, None, :] - b[None, :, :]).norm(dim=-1)

    energy = 2 * dist(x, y).mean() - dist(x, x).mean() - dist(y, y).mean()
    assert energy_distance(x, y) == pytest.approx(float(energy), rel=1e-10)
    h = 1.3
    k = lambda a, b: torch.exp(-(dist(a, b) ** 2) / (2 * h**2))  # noqa: E731
    mmd2 = k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()
    assert mmd(x, y, bandwidth=h) == pytest.approx(float(mmd2), rel=1e-10)
    # default bandwidth: the median pairwise distance of the pooled sample
    pooled = torch.cat([x, y])
    assert median_heuristic(pooled) == pytest.approx(float(torch.pdist(pooled).median()))
    assert mmd(x, y) == pytest.approx(mmd(x, y, bandwidth=median_heuristic(pooled)), rel=1e-12)
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)


def _stein_kernel_autograd(a, b, sa, sb, k):
    """k_0(a, b) = s_a.s_b k + s_a.grad_b k + s_b.grad_a k + tr grad_a grad_b k, by autodiff."""
    gx = torch.func.grad(k, argnums=0)(a, b)
    gy = torch.func.grad(k, argnums=1)(a, b)
    mixed = torch.func.jacrev(torch.func.grad(k, argnums=1), argnums=0)(a, b)
    return sa @ sb * k(a, b) + sa @ gy + sb @ gx + torch.diagonal(mixed).sum()


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_ksd_matches_autograd_stein_kernel(kernel, small_blocks):
    g = _gen(1)
    x = torch.randn(9, 3, generator=g, dtype=F64)
    s = torch.randn(9, 3, generator=g, dtype=F64)  # any vector field: the identity is algebraic
    c, beta, h = 1.5, -0.3, 0.8
    if kernel == "imq":
        k = lambda a, b: (c**2 + ((a - b) ** 2).sum()) ** beta  # noqa: E731
        got = kernel_stein_discrepancy(x, s, kernel="imq", c=c, beta=beta)
    else:
        k = lambda a, b: torch.exp(-((a - b) ** 2).sum() / (2 * h**2))  # noqa: E731
        got = kernel_stein_discrepancy(x, s, kernel="rbf", bandwidth=h)
    k0 = [_stein_kernel_autograd(x[i], x[j], s[i], s[j], k) for i in range(9) for j in range(9)]
    assert got == pytest.approx(float(torch.stack(k0).mean()), rel=1e-10)


def test_sliced_w1_in_one_dimension_is_exact_w1():
    # in 1-D the directions are +-1, so SW1 = W1, exact for unequal sizes too (scipy's W1)
    g = _gen(2)
    u = torch.randn(37, 1, generator=g, dtype=F64)
    v = 2 * torch.randn(53, 1, generator=g, dtype=F64) + 1
    exact = scipy.stats.wasserstein_distance(u[:, 0].numpy(), v[:, 0].numpy())
    assert sliced_wasserstein(u, v, n_projections=3) == pytest.approx(exact, rel=1e-12)
    assert sliced_wasserstein(u, u + 0.7, n_projections=3) == pytest.approx(0.7, rel=1e-12)


def test_sliced_w1_unequal_sizes_agree_with_duplicated_set(small_blocks):
    # y and (y, y) are the same empirical measure: the CDF path (50 vs 100) must equal the
    # sorted path (100 vs 100)
    g = _gen(3)
    x = torch.randn(100, 4, generator=g, dtype=F64)
    y = torch.randn(50, 4, generator=g, dtype=F64) * 1.5
    assert sliced_wasserstein(x, y, n_projections=64) == pytest.approx(
        sliced_wasserstein(x, torch.cat([y, y]), n_projections=64), rel=1e-12
    )


def test_sliced_w1_of_a_shift_matches_closed_form():
    # y = x + delta: on each direction the projections are shifted by delta.theta, so
    # SW1 = mean_p |delta.theta_p|, with expectation |delta| E|theta_1| over uniform directions,
    # E|theta_1| = Gamma(D/2) / (sqrt(pi) Gamma((D+1)/2))
    dim, n_proj = 5, 20_000
    delta = torch.tensor([3.0, -1.0, 0.0, 2.0, 0.5], dtype=F64)
    x = torch.randn(40, dim, generator=_gen(4), dtype=F64)
    e_abs = math.exp(math.lgamma(dim / 2) - math.lgamma((dim + 1) / 2)) / math.sqrt(math.pi)
    sd_abs = math.sqrt(1 / dim - e_abs**2)  # E theta_1^2 = 1/D
    got = sliced_wasserstein(x, x + delta, n_projections=n_proj, seed=5)
    assert got == pytest.approx(
        float(delta.norm()) * e_abs, abs=4 * float(delta.norm()) * sd_abs / math.sqrt(n_proj)
    )
    assert sliced_wasserstein(x, x + delta, n_projections=64, seed=5) == sliced_wasserstein(
        x, x + delta, n_projections=64, seed=5
    )


def test_w2_translation_and_brute_force_assignment():
    g = _gen(6)
    x = torch.randn(60, 3, generator=g, dtype=F64)
    delta = torch.tensor([0.3, -2.0, 1.0], dtype=F64)
    # sum_i |x_i - x_s(i) - delta|^2 = sum_i |x_i - x_s(i)|^2 + N |delta|^2: identity is optimal
    assert wasserstein2(x, x + delta) == pytest.approx(float(delta.norm()), rel=1e-9)
    # uniform weights, equal sizes: an optimal plan is a permutation (Birkhoff)
    y = torch.randn(60, 3, generator=g, dtype=F64) * 2
    cost = ((x[:, None] - y[None]) ** 2).sum(-1).numpy()
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    brute = math.sqrt(cost[rows, cols].mean())
    assert wasserstein2(x, y) == pytest.approx(brute, rel=1e-9)
    # unequal sizes: y[:30] and (y[:30], y[:30]) are the same measure
    assert wasserstein2(x, y[:30]) == pytest.approx(
        wasserstein2(x, torch.cat([y[:30], y[:30]])), rel=1e-9
    )


def test_w2_refuses_large_sets():
    x = torch.zeros(metrics.W2_MAX_POINTS + 1, 1, dtype=F64)
    with pytest.raises(ValueError, match="W2_MAX_POINTS"):
        wasserstein2(x, x[:10])


# --- estimators against closed forms for Gaussians ----------------------------------------------


@pytest.mark.parametrize("mu", [0.0, 0.5])
def test_energy_distance_1d_gaussians_closed_form(mu):
    # X ~ N(0,1), Y ~ N(mu,1): X - Y ~ N(-mu, 2) and X - X' ~ N(0, 2). The V-statistic has mean
    # 2 E|X-Y| - (1 - 1/n) E|X-X'| - (1 - 1/m) E|Y-Y'| (the diagonals are zero); for mu = 0 that is
    # the bias 2 E|X-X'| / n alone. Same-law V-statistics are skewed (weighted chi-squares), hence
    # 24 replicates rather than a handful for the standard error.
    n, reps = 800, 24
    e_xy, e_xx = _mean_abs_normal(mu, math.sqrt(2)), _mean_abs_normal(0.0, math.sqrt(2))
    expected = 2 * e_xy - 2 * (1 - 1 / n) * e_xx
    g = _gen(7)
    vals = [
        energy_distance(
            torch.randn(n, 1, generator=g, dtype=F64),
            torch.randn(n, 1, generator=g, dtype=F64) + mu,
        )
        for _ in range(reps)
    ]
    mean, se = _mean_se(vals)
    assert abs(mean - expected) < 4 * se


@pytest.mark.parametrize("mu", [0.0, 0.7])
def test_mmd_gaussians_closed_form(mu):
    # X ~ N(0, I_2), Y ~ N(mu e_1, I_2), RBF bandwidth h: E k(X, X') = (h^2/(h^2+2))^{D/2} =: a,
    # E k(X, Y) = a exp(-mu^2 / (2 (h^2 + 2))). V-statistic mean: MMD^2 + (1/n + 1/m)(1 - a).
    n, reps, dim, h = 600, 20, 2, 1.0
    a = (h**2 / (h**2 + 2)) ** (dim / 2)
    expected = 2 * a * (1 - math.exp(-(mu**2) / (2 * (h**2 + 2)))) + 2 / n * (1 - a)
    shift = torch.tensor([mu, 0.0], dtype=F64)
    g = _gen(8)
    vals = [
        mmd(
            torch.randn(n, dim, generator=g, dtype=F64),
            torch.randn(n, dim, generator=g, dtype=F64) + shift,
            h,
        )
        for _ in range(reps)
    ]
    mean, se = _mean_se(vals)
    assert abs(mean - expected) < 4 * se


def test_median_heuristic_is_deterministic_and_near_population_median():
    # |X - X'| for X ~ N(0, I_2) is sqrt(2) x Rayleigh: median 2 sqrt(ln 2) = 1.665. The 1000-point
    # subsample gives ~1% spread (measured over seeds: 1.63 .. 1.68); 4% is a loose bound.
    x = torch.randn(50_000, 2, generator=_gen(9), dtype=F64)
    assert median_heuristic(x) == median_heuristic(x)
    assert median_heuristic(x) == pytest.approx(2 * math.sqrt(math.log(2)), rel=0.04)


def test_ksd_standard_normal_exact_mean():
    # exact samples: off-diagonal k_0 terms have mean 0; the diagonal with IMQ (c = 1, beta = -1/2)
    # is |s(x)|^2 + D, so E KSD_V^2 = (E|x|^2 + D) / N = 2D / N.
    n, dim, reps = 800, 3, 12
    g = _gen(10)
    vals = []
    for _ in range(reps):
        x = torch.randn(n, dim, generator=g, dtype=F64)
        vals.append(kernel_stein_discrepancy(x, lambda z: -z))
    mean, se = _mean_se(vals)
    assert abs(mean - 2 * dim / n) < 4 * se


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_ksd_shifted_gaussian_closed_form(kernel):
    # samples q = N(mu, 1) judged against p = N(0, 1): s_p - s_q = -mu is constant, so the
    # population KSD^2 = mu^2 E_{q x q} k(x, x') with x - x' ~ N(0, 2) (Liu, Lee & Jordan 2016).
    # V-statistic mean: (1 - 1/N) KSD^2 + E k_0(x, x) / N with E k_0(x, x) = E x^2 k(0) - tr term.
    mu, n, reps, h = 1.0, 1000, 8, 1.0
    if kernel == "imq":
        e_k = integrate.quad(
            lambda r: (1 + r**2) ** -0.5 * scipy.stats.norm.pdf(r, scale=math.sqrt(2)), -40, 40
        )[0]
        diag = (1 + mu**2) + 1  # c = 1, beta = -1/2: |s|^2 + D
    else:
        e_k = math.sqrt(h**2 / (h**2 + 2))
        diag = (1 + mu**2) + 1 / h**2
    expected = (1 - 1 / n) * mu**2 * e_k + diag / n
    g = _gen(11)
    vals = []
    for _ in range(reps):
        x = torch.randn(n, 1, generator=g, dtype=F64) + mu
        vals.append(kernel_stein_discrepancy(x, -x, kernel=kernel, bandwidth=h))
    mean, se = _mean_se(vals)
    assert abs(mean - expected) < 4 * se


def test_ksd_mixture_exact_near_floor_and_shift_far_above():
    target = mog6()
    n = 1000
    floor = mc_floor(
        lambda x: kernel_stein_discrepancy(x, target.score),
        target.sample,
        n,
        repeats=6,
        generator=_gen(12),
        two_sample=False,
    )
    exact = target.sample(n, _gen(13))
    value = kernel_stein_discrepancy(exact, target.score)
    assert abs(value - floor.mean) < 4 * floor.std * math.sqrt(1 + 1 / 6)
    shifted = exact + torch.tensor([0.5, 0.0], dtype=F64)
    assert kernel_stein_discrepancy(shifted, target.score) > 20 * floor.mean


# --- mode weights and Monte-Carlo floors ----------------------------------------------------------


def test_mode_tv_floor_matches_normal_approximation():
    # exact vs exact: w_k(x) - w_k(y) ~ N(0, 2 p_k (1 - p_k) / n), so
    # E TV ~ sum_k sqrt(p_k (1 - p_k) / (pi n)), p_k the assignment probabilities (estimated on a
    # large exact sample).
    target, n = mog6(), 2000
    p = mode_weights(target.sample(200_000, _gen(14)), target).numpy()
    approx = float(np.sqrt(p * (1 - p) / (math.pi * n)).sum())
    floor = mc_floor(
        lambda a, b: mode_tv(a, b, target), target.sample, n, repeats=30, generator=_gen(15)
    )
    assert len(floor.values) == 30 and floor.std > 0
    assert (
        abs(floor.mean - approx) < 4 * floor.std / math.sqrt(30) + 0.02 * approx
    )  # + normal-approx error


def test_mode_tv_of_collapsed_samples():
    # every sample in the dominant component: TV(e_0, w) = 1 - w_0 against the exact histogram w
    target = mog6()
    collapsed = (
        target.means[0] + torch.randn(4000, 2, generator=_gen(16), dtype=F64) @ target.chol[0].T
    )
    exact = target.sample(4000, _gen(17))
    w_collapsed = mode_weights(collapsed, target)
    assert w_collapsed[0] > 0.995  # mog6's modes are far apart: almost no mis-assignment
    w_exact = mode_weights(exact, target)
    tv = mode_tv(collapsed, exact, target)
    assert tv == pytest.approx(1 - float(w_exact[0]), abs=float(1 - w_collapsed[0]) + 1e-12)
    assert tv == pytest.approx(1 - 0.55, abs=4 * math.sqrt(0.55 * 0.45 / 4000) + 0.01)


# --- evaluate -----------------------------------------------------------------------------------


def test_evaluate_report_is_clean_json_and_deterministic():
    target = mog6()
    x = target.sample(400, _gen(18))
    report = evaluate(x, target, seed=3)
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    assert report["n"] == 400 and report["dim"] == 2
    for name in METRICS:
        entry = report[name]
        assert set(entry) == {"value", "floor", "floor_std", "ratio"}
        assert entry["floor"] > 0 and entry["ratio"] == pytest.approx(
            entry["value"] / entry["floor"]
        )
    assert sum(report["mode_weights"]) == pytest.approx(1.0)
    assert report["target_weights"] == pytest.approx(target.weights.tolist())
    assert evaluate(x, target, seed=3, metrics=("energy",))["energy"] == report["energy"]


def test_evaluate_skips_w2_above_limit_and_rejects_bad_input(monkeypatch):
    target = mog6()
    x = target.sample(50, _gen(19))
    monkeypatch.setattr(metrics, "W2_MAX_POINTS", 40)
    assert "w2" not in evaluate(x, target, metrics=("w2", "energy"))
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate(x, target, metrics=("fid",))
    with pytest.raises(ValueError, match="samples"):
        evaluate(torch.zeros(10, 3), target)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(torch.full((10, 2), float("nan")), target)


def test_evaluate_ratio_of_exact_samples_is_one_and_of_bad_samples_large():
    # exact samples: value and floor draws are i.i.d., so mean(value) / mean(floor) -> 1; the
    # tolerance is 4 standard errors of that ratio from the replicates (delta method).
    target, n, reps = mog6(), 300, 12
    names = ("mode_tv", "energy", "sliced_w1", "mmd", "ksd", "w2")
    reports = [
        evaluate(target.sample(n, _gen(100 + r)), target, seed=r, metrics=names)
        for r in range(reps)
    ]
    # energy and MMD values are skewed (weighted chi-square sums) and their floors are exact
    # expectations, so the normal tolerance needs more replicates of the value: 48 in all
    cheap = ("energy", "mmd")
    extra = [
        evaluate(target.sample(n, _gen(200 + r)), target, seed=50 + r, metrics=cheap)
        for r in range(36)
    ]
    for name in names:
        pool = reports + extra if name in cheap else reports
        v = np.array([rep[name]["value"] for rep in pool])
        f = np.array([rep[name]["floor"] for rep in pool])
        ratio = v.mean() / f.mean()
        se = ratio * math.sqrt(
            v.var(ddof=1) / v.mean() ** 2 / len(v) + f.var(ddof=1) / f.mean() ** 2 / len(f)
        )
        assert abs(ratio - 1) < 4 * se, (name, ratio, se)
    # all samples collapsed onto the dominant mode, shifted by 1: far above every floor (W2 has
    # the highest floor relative to its value at n = 300, ratio ~3.7, still ~30 floor spreads off)
    bad = target.means[0] + 0.3 * torch.randn(n, 2, generator=_gen(20), dtype=F64) + 1.0
    report = evaluate(bad, target, seed=0, metrics=names)
    for name in names:
        entry = report[name]
        assert entry["ratio"] > 3 and entry["value"] - entry["floor"] > 10 * entry["floor_std"]
