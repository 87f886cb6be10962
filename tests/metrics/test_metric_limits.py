"""The metrics' size limits and repeat counts at their exact boundaries: exact W2's ``W2_MAX_POINTS``
(in ``wasserstein2`` and in ``evaluate``, which skips the metric above it, judged by the larger of
the two sets), a table entry's ``max_points`` and ``min_repeats``, and ``mc_floor`` with two repeats.

Values are compared with closed forms: when one set is ``N`` copies of one point ``p``, every coupling
moves all the mass from ``p``, so ``W2^2 = (1/M) sum_j |y_j - p|^2`` whatever ``N`` is (Villani 2009,
Def. 6.1, with a one-point first marginal).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scoredyn.core.targets import mog6
from scoredyn.metrics import METRICS, W2_MAX_POINTS, Metric, MetricContext, evaluate, mc_floor, wasserstein2

F64 = torch.float64
LIMIT = 3000  # the documented limit of exact W2 (docs/metrics.md, README: "exact W2 through POT (N <= 3000)")
# POT's network simplex in float64: the optimal cost of these small problems to a few ulp of the sums
W2_TOL = dict(rel=1e-12)

Y10 = torch.tensor(
    [[0.3, -1.2], [2.0, 0.5], [-0.7, 0.9], [1.1, 1.1], [-2.2, -0.4],
     [0.0, 3.0], [1.5, -2.5], [-1.0, -1.0], [0.6, 0.2], [2.4, 1.8]],
    dtype=F64,
)  # fmt: skip
P = torch.tensor([0.25, -0.5], dtype=F64)


def copies(n: int) -> torch.Tensor:
    return P.expand(n, 2).clone()


def one_point_w2(y: torch.Tensor) -> float:
    """W2 between copies of ``P`` and the uniform measure on ``y`` (module docstring)."""
    return math.sqrt(float(((y - P) ** 2).sum(1).mean()))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_w2_max_points_is_3000():
    assert W2_MAX_POINTS == LIMIT
    assert METRICS["w2"].max_points == LIMIT


def test_wasserstein2_runs_at_the_limit_and_refuses_one_above_it_in_either_set():
    for x, y in ((copies(LIMIT), Y10), (Y10, copies(LIMIT))):
        assert wasserstein2(x, y) == pytest.approx(one_point_w2(Y10), **W2_TOL)
    for x, y in ((copies(LIMIT + 1), Y10), (Y10, copies(LIMIT + 1))):
        with pytest.raises(ValueError, match="W2_MAX_POINTS"):
            wasserstein2(x, y)


def test_evaluate_scores_w2_up_to_the_limit_of_the_larger_set():
    """``evaluate`` skips ``w2`` when the larger of the two sets holds more than 3000 points: at 3000
    samples against a 10-point reference it is scored (its value the closed form above), at 3001 it is
    not, and the same with the roles of samples and reference swapped."""
    target = mog6()
    report = evaluate(copies(LIMIT), target, reference=Y10, metrics=("w2",), seed=1)
    assert report["n"] == LIMIT
    assert report["w2"]["value"] == pytest.approx(one_point_w2(Y10), **W2_TOL)
    assert report["w2"]["floor"] > 0  # a Monte-Carlo floor at sizes (3000, 10)
    assert "w2" not in evaluate(copies(LIMIT + 1), target, reference=Y10, metrics=("w2",), seed=1)
    # the reference the larger set: 10 samples of copies of P against 3000 / 3001 reference points
    ten = copies(10)
    y = target.sample(LIMIT + 1, gen(5))
    report = evaluate(ten, target, reference=y[:LIMIT], metrics=("w2",), seed=1)
    assert report["w2"]["value"] == pytest.approx(one_point_w2(y[:LIMIT]), **W2_TOL)
    assert "w2" not in evaluate(ten, target, reference=y, metrics=("w2",), seed=1)


def test_a_table_entrys_max_points_is_compared_with_the_larger_set(monkeypatch):
    """``Metric(fn, max_points=k)`` is scored when both sets hold at most ``k`` points and skipped as
    soon as either holds ``k + 1``."""
    k = 12
    monkeypatch.setitem(METRICS, "gap", Metric(lambda a, b, ctx: float((a.mean(0) - b.mean(0)).norm()), max_points=k))
    target = mog6()
    x = target.sample(k + 1, gen(6))
    y = target.sample(k + 1, gen(7))
    present = lambda a, b: "gap" in evaluate(a, target, reference=b, metrics=("gap",), repeats=2)  # noqa: E731
    assert present(x[:k], y[:k]) and present(x[:k], y[:3]) and present(x[:3], y[:k])
    assert not present(x, y[:3]) and not present(x[:3], y) and not present(x, y)
    # the value, where scored, is the function's on the two sets given
    report = evaluate(x[:k], target, reference=y[:5], metrics=("gap",), repeats=2)
    assert report["gap"]["value"] == pytest.approx(float((x[:k].mean(0) - y[:5].mean(0)).norm()), rel=1e-14)


def counting_metric(two_sample: bool, min_repeats: int | None):
    """A fresh table entry (so ``evaluate``'s floor cache never holds it) that records the sizes of
    the sets it is called with."""
    calls: list[tuple[int, ...]] = []

    def fn(*args):
        sets, ctx = args[:-1], args[-1]
        assert isinstance(ctx, MetricContext)
        calls.append(tuple(s.shape[0] for s in sets))
        return 1.0 + float(sets[0][0, 0].abs())  # positive, so the floor is positive

    return Metric(fn, two_sample=two_sample, min_repeats=min_repeats), calls


@pytest.mark.parametrize("two_sample", [True, False])
@pytest.mark.parametrize("repeats, min_repeats", [(2, 6), (7, 4), (5, 5), (3, None), (1, 2)])
def test_the_floor_draws_max_of_repeats_and_min_repeats(monkeypatch, two_sample, repeats, min_repeats):
    """One call for the value, then ``max(repeats, min_repeats)`` Monte-Carlo floor draws (``repeats``
    without ``min_repeats``), each on sets of the scored sizes: ``n`` samples and ``m`` reference points
    (``n`` alone for a one-sample metric)."""
    metric, calls = counting_metric(two_sample, min_repeats)
    monkeypatch.setitem(METRICS, "counted", metric)
    target = mog6()
    n, m = 9, 14
    x, y = target.sample(n, gen(8)), target.sample(m, gen(9))
    report = evaluate(x, target, reference=y, metrics=("counted",), repeats=repeats, seed=2)
    draws = max(repeats, min_repeats) if min_repeats is not None else repeats
    sizes = (n, m) if two_sample else (n,)
    assert calls == [sizes] * (1 + draws)
    assert report["counted"]["floor_std"] > 0  # two or more draws of a value that varies between sets


def test_mc_floor_with_two_repeats_reports_the_sample_std():
    """Two values ``a, b``: mean ``(a + b) / 2`` and sample standard deviation (ddof = 1)
    ``|a - b| / sqrt(2)``; one repeat has std 0 by definition."""
    draws = iter([torch.full((3, 1), 0.5, dtype=F64), torch.full((4, 1), 2.0, dtype=F64),
                  torch.full((3, 1), -1.0, dtype=F64), torch.full((4, 1), 3.5, dtype=F64)])  # fmt: skip
    floor = mc_floor(lambda x, y: float(y[0, 0] - x[0, 0]), lambda n, g: next(draws), 3, m=4, repeats=2)
    assert floor.values == (1.5, 4.5)
    assert floor.mean == 3.0
    assert floor.std == pytest.approx(3.0 / math.sqrt(2.0), rel=1e-15)
    assert floor.std == pytest.approx(float(np.std([1.5, 4.5], ddof=1)), rel=1e-15)
    one = mc_floor(lambda x: float(x[0, 0]), lambda n, g: torch.full((n, 1), 7.0, dtype=F64), 2, repeats=1,
                   two_sample=False)  # fmt: skip
    assert one == (7.0, 0.0, (7.0,))
