"""Monte-Carlo floors and the exact null expectations of energy distance and MMD, against closed forms.

Statistical checks allow 4 standard errors (a false alarm has probability ~1e-4 per check under
normality)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scoredyn.core.targets import GaussianMixture, mog6
from scoredyn.metrics import energy_distance, expected_null_floor, mc_floor, mode_tv, mode_weights

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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


def test_mc_floor_draws_pairs_in_order_and_reports_mean_and_sample_std():
    # a sampler that counts its calls: the r-th repeat compares draws 2r and 2r + 1 (x first, then y),
    # so metric(x, y) = y - x = 1 every time; the one-sample floor sees draws 0, 1, 2, ...
    def counting_sampler():
        calls = []

        def sample(n, generator):
            calls.append(n)
            return torch.full((n, 1), float(len(calls) - 1), dtype=F64)

        return sample, calls

    sample, calls = counting_sampler()
    floor = mc_floor(lambda x, y: float(y[0, 0] - x[0, 0]), sample, 4, m=7, repeats=3)
    assert calls == [4, 7, 4, 7, 4, 7]
    assert floor.values == (1.0, 1.0, 1.0) and floor.mean == 1.0 and floor.std == 0.0
    sample, calls = counting_sampler()
    floor = mc_floor(lambda x: float(x[0, 0]), sample, 5, repeats=4, two_sample=False)
    assert calls == [5, 5, 5, 5]
    assert floor.values == (0.0, 1.0, 2.0, 3.0)
    assert floor.mean == 1.5 and floor.std == pytest.approx(math.sqrt(5 / 3), rel=1e-15)  # ddof = 1
    assert mc_floor(lambda x: 2.0, sample, 5, repeats=1, two_sample=False).std == 0.0
    for bad in ({"n": 0}, {"n": 3, "m": 0}, {"n": 3, "repeats": 0}):
        with pytest.raises(ValueError, match="must be >= 1"):
            mc_floor(lambda x, y: 0.0, sample, **bad)


def test_expected_null_floor_of_a_standard_normal_matches_closed_form():
    # X, X' ~ N(0, 1): X - X' ~ N(0, 2), so E|X - X'| = 2 / sqrt(pi) with variance 2 - 4 / pi, and
    # E k(X, X') = (h^2 / (h^2 + 2))^{1/2} for the RBF kernel of bandwidth h (a Gaussian integral)
    target = GaussianMixture([1.0], [[0.0]], [[[1.0]]])
    n, m, pairs, h = 300, 200, 200_000, 0.8
    scale = 1 / n + 1 / m
    energy = expected_null_floor("energy", target, n, m, pairs=pairs, generator=_gen(30))
    exact, sd = 2 / math.sqrt(math.pi) * scale, math.sqrt(2 - 4 / math.pi) * scale
    assert abs(energy.mean - exact) < 4 * sd / math.sqrt(pairs)
    assert energy.std == pytest.approx(sd / math.sqrt(pairs), rel=0.02)
    assert energy.values == (energy.mean,)
    mmd_floor = expected_null_floor("mmd", target, n, m, bandwidth=h, pairs=pairs, generator=_gen(31))
    e_k = math.sqrt(h**2 / (h**2 + 2))
    assert abs(mmd_floor.mean - (1 - e_k) * scale) < 4 * mmd_floor.std
    with pytest.raises(ValueError, match="bandwidth"):
        expected_null_floor("mmd", target, n, m, pairs=10)
    with pytest.raises(ValueError, match="no closed-form floor"):
        expected_null_floor("sliced_w1", target, n, m, pairs=10)


def test_energy_mc_floor_agrees_with_its_exact_expectation():
    # the Monte-Carlo floor of the energy distance averages V-statistics whose mean is the exact
    # expectation; same-law V-statistics are skewed, hence 24 repeats for the standard error
    target, n, m, reps = mog6(), 200, 150, 24
    mc = mc_floor(energy_distance, target.sample, n, m=m, repeats=reps, generator=_gen(32))
    exact = expected_null_floor("energy", target, n, m, generator=_gen(33))
    assert abs(mc.mean - exact.mean) < 4 * math.sqrt(mc.std**2 / reps + exact.std**2)
    assert len(mc.values) == reps and mc.mean == pytest.approx(float(np.mean(mc.values)), rel=1e-14)
