"""Estimates with standard errors against independent answers: the delete-a-group jackknife of a
sample mean (exactly ``s_G^2 / G``), group pair sums against a dense matrix summed by groups, the
block count against its defining inequalities, the block estimator against blocks split with NumPy
and averaged by hand, and the 95% ratio interval against its formula with SciPy's normal quantile.

Everything here is deterministic (float64 sums in a different order: 1e-12 relative)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from scoredyn.metrics import Floor
from scoredyn.metrics.estimates import (
    GROUPS,
    MIN_BLOCK,
    PAIR_BUDGET,
    Z_95,
    Estimate,
    block_count,
    blocked,
    grouped_pair_sums,
    groups_of,
    jackknife,
    without_group,
)
from scoredyn.metrics.evaluation import ratio_interval

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("groups", [2, 5, 12])
def test_jackknife_of_a_sample_mean_is_the_variance_of_group_means_over_g(groups):
    # theta_(-g) = (G xbar - xbar_g) / (G - 1), so theta_(-g) - mean = -(xbar_g - xbar) / (G - 1) and
    # (G - 1)/G sum_g (theta_(-g) - mean)^2 = sum_g (xbar_g - xbar)^2 / (G (G - 1)) = s_G^2 / G
    data = torch.randn(groups, 7, generator=_gen(groups), dtype=F64).exp()  # G equal groups of 7

    def statistic(drop):
        keep = [g for g in range(groups) if g != drop]
        return float(data[keep].mean())

    value, se = jackknife(statistic, groups)
    group_means = data.mean(1).numpy()
    assert value == pytest.approx(float(data.mean()), rel=1e-14)
    assert se**2 == pytest.approx(np.var(group_means, ddof=1) / groups, rel=1e-12)


def test_jackknife_without_two_groups_has_no_standard_error():
    value, se = jackknife(lambda drop: 3.5 if drop is None else 1.0, 1)
    assert value == 3.5 and se is None


def test_without_group_is_the_sum_of_the_matrix_with_row_and_column_removed():
    for sums in (torch.randn(6, 6, generator=_gen(1), dtype=F64), torch.randn(1, 1, generator=_gen(2), dtype=F64)):
        assert without_group(sums, None) == pytest.approx(float(sums.sum()), rel=1e-14)
        for drop in range(sums.shape[0]):
            keep = [g for g in range(sums.shape[0]) if g != drop]
            brute = float(sums[keep][:, keep].sum()) if keep else 0.0
            assert without_group(sums, drop) == pytest.approx(brute, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("n", [1, 7, 20, 53, 1000])
def test_groups_of_are_contiguous_near_equal_and_cover_the_set(n):
    for groups in (1, 3, 20, 64):
        slices = groups_of(n, groups)
        assert len(slices) == min(groups, n)
        sizes = [s.stop - s.start for s in slices]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
        assert [i for s in slices for i in range(s.start, s.stop)] == list(range(n))
    assert len(groups_of(n)) == min(GROUPS, n) and GROUPS == 20  # the documented 20 groups per set


@pytest.mark.parametrize("same", [False, True])
def test_grouped_pair_sums_match_a_dense_matrix_summed_by_groups(monkeypatch, same):
    # a small row budget forces each group pair to be summed in many row slices
    monkeypatch.setattr("scoredyn.metrics.estimates.BLOCK", 11)
    x = torch.randn(53, 3, generator=_gen(3), dtype=F64)
    y = x if same else torch.randn(41, 3, generator=_gen(4), dtype=F64)
    dense = torch.exp(-torch.cdist(x, y)) * (1 + x @ y.T)  # symmetric when y is x
    rows = groups_of(53, 7)
    cols = rows if same else groups_of(41, 5)
    calls = []

    def block(i, j):
        calls.append((i, j))
        return dense[i, j]

    sums = grouped_pair_sums(rows, cols, block, same=same)
    expected = torch.tensor([[float(dense[r, c].sum()) for c in cols] for r in rows], dtype=F64)
    torch.testing.assert_close(sums, expected, rtol=1e-12, atol=1e-12)
    if same:  # only the group pairs h >= g are evaluated (the others mirror them)

        def group_of(i: slice) -> int:
            return next(g for g, s in enumerate(rows) if s.start <= i.start < s.stop)

        assert all(group_of(j) >= group_of(i) for i, j in calls)


def test_block_count_is_the_fewest_blocks_within_budget_with_at_least_min_block_points():
    assert MIN_BLOCK == 256
    # n^2 <= budget: the full statistic
    assert block_count(100, 10_000) == 1 and block_count(2**14) == 1  # PAIR_BUDGET = 2^28 = (2^14)^2
    assert PAIR_BUDGET == 2**28 and block_count(2**14 + 1) == 2
    # blocks are never below MIN_BLOCK points: at n = 300 (< 2 MIN_BLOCK) there is one block however
    # small the budget, and with a budget of 1 there are n // MIN_BLOCK blocks
    assert block_count(300, 4000) == 1 and block_count(511, 1) == 1 and block_count(512, 1) == 2
    assert block_count(10**6, 1) == 10**6 // 256
    for n in (600, 1030, 5000, 20_000, 123_457):
        largest = max(k for k in range(1, n + 1) if n // k >= MIN_BLOCK)  # most blocks of >= MIN_BLOCK points
        for budget in (1, 1000, 10**5, 10**6, 10**8):
            # the fewest blocks B with n^2 / B <= budget, if that many blocks keep MIN_BLOCK points
            fewest = next((k for k in range(1, largest + 1) if n * n <= budget * k), largest)
            assert block_count(n, budget) == (1 if n * n <= budget else fewest), (n, budget)


def _record_blocks(values, ses):
    """A ``per_block`` that records its blocks and returns preset values and standard errors."""
    seen = []

    def per_block(xb, yb, pb, groups):
        assert groups == GROUPS  # fewer blocks than GROUPS: each block's jackknife gives its se
        seen.append((xb, yb))
        return values[len(seen) - 1], ses[len(seen) - 1]

    return per_block, seen


def test_blocked_averages_the_blocks_and_their_sizes(monkeypatch):
    monkeypatch.setattr("scoredyn.metrics.estimates.MIN_BLOCK", 2)
    x = torch.randn(23, 2, generator=_gen(5), dtype=F64)
    y = torch.randn(17, 2, generator=_gen(6), dtype=F64)
    budget = 60  # n = 23: ceil(529 / 60) = 9 blocks of 3 or 2 points (23 // 2 = 11 allows them)
    b = 9
    values = [0.3 * k - 1.0 for k in range(b)]
    ses = [0.1 + 0.05 * k for k in range(b)]
    per_block, seen = _record_blocks(values, ses)
    est = blocked(x, y, per_block, budget)
    # the blocks: contiguous, near-equal (NumPy's array_split), x and y paired in order
    x_blocks, y_blocks = np.array_split(x.numpy(), b), np.array_split(y.numpy(), b)
    assert len(seen) == b
    for (xb, yb), xe, ye in zip(seen, x_blocks, y_blocks, strict=True):
        assert np.array_equal(xb.numpy(), xe) and np.array_equal(yb.numpy(), ye)
    assert est.blocks == b
    assert est.value == pytest.approx(sum(values) / b, rel=1e-14)
    assert est.se == pytest.approx(math.sqrt(sum(s * s for s in ses)) / b, rel=1e-14)
    # floors refer to the mean of 1/n_b (5 blocks of 3 and 4 of 2 points; not b / n = 9/23)
    assert est.inv_n == pytest.approx((5 / 3 + 4 / 2) / 9, rel=1e-14)
    assert est.inv_m == pytest.approx((8 / 2 + 1 / 1) / 9, rel=1e-14)  # 17 = 8 blocks of 2 and 1 of 1


def test_blocked_without_reference_or_standard_error_and_as_one_block(monkeypatch):
    monkeypatch.setattr("scoredyn.metrics.estimates.MIN_BLOCK", 2)
    x = torch.randn(10, 1, generator=_gen(7), dtype=F64)
    per_block, seen = _record_blocks([1.0, 2.0, 4.0], [0.5, None, 0.5])
    est = blocked(x, None, per_block, budget=40)  # ceil(100 / 40) = 3 blocks of 4, 3, 3
    assert all(yb is None for _, yb in seen)
    assert (est.value, est.se, est.inv_m, est.blocks) == (pytest.approx(7.0 / 3, rel=1e-14), None, 0.0, 3)
    assert est.inv_n == pytest.approx((1 / 4 + 1 / 3 + 1 / 3) / 3, rel=1e-14)
    per_block, seen = _record_blocks([0.25], [0.125])
    est = blocked(x, x[:4], per_block, budget=100)  # n^2 = budget: the full statistic
    assert len(seen) == 1 and torch.equal(seen[0][0], x) and torch.equal(seen[0][1], x[:4])
    assert est == Estimate(0.25, 0.125, 1 / 10, 1 / 4, 1)


def test_blocked_with_many_blocks_takes_the_se_from_their_spread_and_splits_per_point_values(monkeypatch):
    # B >= GROUPS blocks are themselves independent replicates: se = sd(theta_b) / sqrt(B), and each
    # block is asked for no jackknife (groups = 1); per-point values travel with their block
    monkeypatch.setattr("scoredyn.metrics.estimates.MIN_BLOCK", 2)
    x = torch.randn(100, 2, generator=_gen(8), dtype=F64)
    per_point = torch.arange(100, dtype=F64)
    seen = []

    def per_block(xb, yb, pb, groups):
        assert groups == 1 and yb is None
        seen.append((xb, pb))
        return float(pb.sum()), None

    est = blocked(x, None, per_block, budget=100, per_point=per_point)  # ceil(10^4 / 100) = 100 > 50: 50 blocks
    assert est.blocks == 50 and len(seen) == 50
    for (xb, pb), xe, pe in zip(seen, torch.tensor_split(x, 50), torch.tensor_split(per_point, 50), strict=True):
        assert torch.equal(xb, xe) and torch.equal(pb, pe)
    sums = np.array([float(p.sum()) for _, p in seen])
    assert est.value == pytest.approx(sums.mean(), rel=1e-14)
    assert est.se == pytest.approx(sums.std(ddof=1) / math.sqrt(50), rel=1e-12)


def test_estimate_defaults_and_normal_quantile():
    assert Estimate(1.0, None, 0.5) == Estimate(1.0, None, 0.5, 0.0, 1)
    assert Z_95 == pytest.approx(scipy.stats.norm.ppf(0.975), rel=1e-15)


def test_ratio_interval_is_value_over_floor_plus_or_minus_1_96_se_clipped_at_zero():
    z = scipy.stats.norm.ppf(0.975)
    floor = Floor(0.02, 0.001, (0.02,))
    lo, hi = ratio_interval(Estimate(0.05, 0.004, 0.01), floor)
    assert lo == pytest.approx((0.05 - z * 0.004) / 0.02, rel=1e-14)
    assert hi == pytest.approx((0.05 + z * 0.004) / 0.02, rel=1e-14)
    # value below 1.96 se: the lower end is clipped at 0, the upper end is not
    lo, hi = ratio_interval(Estimate(0.01, 0.03, 0.01), floor)
    assert lo == 0.0 and hi == pytest.approx((0.01 + z * 0.03) / 0.02, rel=1e-14)
    assert ratio_interval(Estimate(0.05, None, 0.01), floor) is None
    assert ratio_interval(Estimate(0.05, 0.004, 0.01), Floor(0.0, 0.0, (0.0,))) is None
