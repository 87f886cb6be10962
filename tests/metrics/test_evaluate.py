"""``evaluate``: the report's form, its determinism, the metric table, and ratios near 1 for exact
samples and far above 1 for bad ones."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from scoredyn.core.targets import mog6
from scoredyn.metrics import METRICS, Metric, MetricContext, evaluate

F64 = torch.float64
ENTRY_KEYS = {"value", "floor", "floor_std", "ratio", "ratio_ci", "se", "blocks"}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_evaluate_report_is_clean_json_and_deterministic():
    target = mog6()
    x = target.sample(400, _gen(18))
    report = evaluate(x, target, seed=3)
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    assert report["n"] == 400 and report["dim"] == 2
    for name in METRICS:
        entry = report[name]
        assert set(entry) == ENTRY_KEYS
        assert entry["floor"] > 0 and entry["ratio"] == pytest.approx(
            entry["value"] / entry["floor"]
        )
    assert sum(report["mode_weights"]) == pytest.approx(1.0)
    assert report["target_weights"] == pytest.approx(target.weights.tolist())
    assert evaluate(x, target, seed=3, metrics=("energy",))["energy"] == report["energy"]


def test_evaluate_skips_w2_above_limit_and_rejects_bad_input(monkeypatch):
    target = mog6()
    x = target.sample(50, _gen(19))
    monkeypatch.setitem(METRICS, "w2", dataclasses.replace(METRICS["w2"], max_points=40))
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


def test_metric_table_keeps_its_names_and_order():
    assert tuple(METRICS) == (
        "mode_tv",
        "energy",
        "sliced_w1",
        "mmd",
        "ksd",
        "w2",
        "mode_tv_exact",
        "energy_exact",
        "mmd_exact",
    )
    assert "mmd" in METRICS and "fid" not in METRICS
    assert all(isinstance(metric, Metric) for metric in METRICS.values())


def test_a_metric_added_to_the_table_is_reported_beside_its_floor(monkeypatch):
    # one function and one table entry, from outside the package: evaluate scores it against the
    # reference it draws and finds its Monte-Carlo floor, recomputed here from the documented draws
    target, n, seed = mog6(), 300, 4
    x = target.sample(n, _gen(21)) + 1.5

    def mean_gap(a: torch.Tensor, b: torch.Tensor, ctx: MetricContext) -> float:
        assert ctx.target is target and ctx.seed == seed and ctx.bandwidth > 0
        return float((a.mean(0) - b.mean(0)).norm())

    def mean_error(a: torch.Tensor, ctx: MetricContext) -> float:
        return float((a.mean(0) - ctx.target.mean()).norm())

    monkeypatch.setitem(METRICS, "mean_gap", Metric(mean_gap))
    monkeypatch.setitem(METRICS, "mean_error", Metric(mean_error, two_sample=False, min_repeats=5))
    report = evaluate(x, target, seed=seed, metrics=("energy", "mean_gap", "mean_error"))

    # the reference comes first from the generator seeded `seed`, then the floors' seed
    g = _gen(seed)
    y = target.sample(n, g)
    floor_seed = int(torch.randint(2**62, (1,), generator=g))
    gap = lambda a, b: float(torch.linalg.vector_norm(a.mean(0) - b.mean(0)))  # noqa: E731
    err = lambda a: float(torch.linalg.vector_norm(a.mean(0) - target.weights @ target.means))  # noqa: E731
    floor_gen = _gen(floor_seed)
    gap_floor = [gap(target.sample(n, floor_gen), target.sample(n, floor_gen)) for _ in range(3)]  # repeats = 3
    floor_gen = _gen(floor_seed)
    err_floor = [err(target.sample(n, floor_gen)) for _ in range(5)]  # min_repeats = 5
    for name, value, floor in (("mean_gap", gap(x, y), gap_floor), ("mean_error", err(x), err_floor)):
        entry = report[name]
        assert set(entry) == ENTRY_KEYS
        assert entry["value"] == pytest.approx(value, rel=1e-12)
        assert entry["floor"] == pytest.approx(float(np.mean(floor)), rel=1e-12)
        assert entry["floor_std"] == pytest.approx(float(np.std(floor, ddof=1)), rel=1e-10)
        assert entry["ratio"] == pytest.approx(value / float(np.mean(floor)), rel=1e-12)
        assert entry["ratio"] > 3  # the samples are shifted by 1.5 in each coordinate
    assert report["energy"] == evaluate(x, target, seed=seed, metrics=("energy",))["energy"]

    monkeypatch.undo()
    assert "mean_gap" not in METRICS and tuple(METRICS)[-1] == "mmd_exact"
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate(x, target, metrics=("mean_gap",))
