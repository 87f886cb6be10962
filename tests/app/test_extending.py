"""Extending scoredyn from outside the package: a sampler, a process, an objective and a metric, each
written here (one function or class) and made known by one line in its table, then used by name
exactly as the built-in ones are (``sample``, the command line, a training config, ``evaluate``).

Each table entry is added with ``monkeypatch.setitem`` so it is gone again after the test."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from scoredyn import EDM, AnalyticField, CountingField, Process, SampleResult, StepInfo, evaluate, mog6, sample
from scoredyn.app.cli import app
from scoredyn.app.registry import SAMPLERS, Recipe
from scoredyn.core.registry import PROCESSES
from scoredyn.learning import OBJECTIVES, TrainConfig, Trainer, apply_overrides, make_objective
from scoredyn.learning.losses import Objective
from scoredyn.metrics import METRICS, Metric, MetricContext

# --- a sampler: the explicit midpoint rule on the probability-flow ODE ---------------------------------


def midpoint(field, x, grid, *, generator=None, callback=None, return_path=False) -> SampleResult:
    """The explicit midpoint rule (Runge 1895) on ``dx/dt = v(x, t)``:
    ``x' = x + h v(x + h/2 v(x, t), t + h/2)``; second order, two evaluations a step."""
    counted = CountingField(field)
    for i in range(len(grid) - 1):
        t, h = grid[i], grid[i + 1] - grid[i]
        x_half = x + 0.5 * h * counted.velocity(x, t)
        x = x + h * counted.velocity(x_half, t + 0.5 * h)
        if callback is not None:
            callback(StepInfo(i, float(grid[i + 1]), x))
    return SampleResult(x, counted.nfe)


def test_a_sampler_added_by_one_line_runs_by_name(monkeypatch, tmp_path):
    monkeypatch.setitem(SAMPLERS, "ode-midpoint", Recipe(midpoint, "edm", "karras", paper="Runge 1895"))
    # the teacher: the adaptive solver at a tight tolerance from the same start (same seed, grid, process)
    teacher, _ = sample(mog6(), "ode-adaptive", steps=8, n=500, seed=3, rtol=1e-9, atol=1e-9)
    errors = {}
    for steps in (128, 256):
        result, settings = sample(mog6(), "ode-midpoint", steps=steps, n=500, seed=3)
        assert result.nfe == 2 * steps and settings["sampler"] == "ode-midpoint" and settings["grid"] == "karras"
        errors[steps] = float((result.x - teacher.x).norm(dim=1).mean())
    # second order: doubling the steps divides the mean error by about 4 (measured 4.0; at fewer steps
    # particles near the basins' boundaries are not yet in the asymptotic regime); a first-order rule
    # (or a wrong midpoint time) gives about 2
    assert errors[128] / errors[256] > 3.0, errors
    # the command line knows it too
    out = tmp_path / "s.npz"
    res = CliRunner().invoke(app, ["sample", "--target", "mog6", "--sampler", "ode-midpoint", "--steps", "4", "--n",
                                   "50", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    with np.load(out) as f:
        assert f["samples"].shape == (50, 2) and int(f["nfe"]) == 8
        assert json.loads(str(f["settings"]))["sampler"] == "ode-midpoint"


# --- a process: sigma = t^2, alpha = 1 ----------------------------------------------------------------


class Quadratic(Process):
    """``alpha = 1``, ``sigma = t^2`` on ``[0, sqrt(80)]``: EDM's noise levels on another clock."""

    def __init__(self) -> None:
        self.name, self.t_min, self.t_max = "quadratic", 0.0, math.sqrt(80.0)

    def alpha(self, t):
        return torch.ones_like(torch.as_tensor(t, dtype=torch.float64))

    def sigma(self, t):
        return torch.as_tensor(t, dtype=torch.float64) ** 2

    def d_alpha(self, t):
        return torch.zeros_like(torch.as_tensor(t, dtype=torch.float64))

    def d_sigma(self, t):
        return 2.0 * torch.as_tensor(t, dtype=torch.float64)


def test_a_process_added_by_one_line_runs_every_sampler_on_its_clock(monkeypatch):
    monkeypatch.setitem(PROCESSES, "quadratic", Quadratic)
    # the probability-flow ODE does not depend on the clock: the exact solutions from one start agree
    on_edm, _ = sample(mog6(), "ode-adaptive", steps=4, n=300, seed=1, rtol=1e-9, atol=1e-9)
    on_new, settings = sample(mog6(), "ode-adaptive", steps=4, n=300, seed=1, process="quadratic", rtol=1e-9,
                              atol=1e-9)  # fmt: skip
    assert settings["process"] == "quadratic"
    torch.testing.assert_close(on_new.x, on_edm.x, rtol=0, atol=1e-5)  # both solve to 1e-9; sigma_max 80 on both
    # the base class derives the rest: the transition, the inversions, a Karras grid of the same noise levels
    p = Quadratic()
    t = torch.tensor([0.5, 2.0, 7.0], dtype=torch.float64)
    torch.testing.assert_close(p.sigma_to_t(p.sigma(t)), t, rtol=1e-12, atol=0)
    assert float(p.transition(2.0, 1.0).var_ts) == pytest.approx(16.0 - 1.0)
    result, _ = sample(mog6(), "edm-heun", steps=12, n=200, seed=0, process="quadratic")
    assert torch.isfinite(result.x).all() and result.nfe == 23


# --- an objective: half DDPM's noise loss --------------------------------------------------------------


class HalfEpsObjective(Objective):
    """Half the noise-prediction loss: ``1/2 ||eps_hat - eps||^2``, ``lambda(t) = sigma_t^2 / 2``."""

    name, paper, default_parameterization = "eps-half", "Ho et al. 2020, eq. 14, halved", "eps"

    def lam_over_sigma2(self, t):
        return torch.full_like(t, 0.5)

    def error(self, pred, x0, eps):
        return 0.5 * ((pred.eps - eps) ** 2).sum(1)


def test_an_objective_added_by_one_line_trains_by_name(monkeypatch, tmp_path):
    monkeypatch.setitem(OBJECTIVES, "eps-half", HalfEpsObjective)
    process = EDM()
    half, full = make_objective("eps-half", process), make_objective("eps", process)
    g = torch.Generator().manual_seed(0)
    x0 = mog6().sample(256, g)
    draws = half.draw(x0, g)
    field = AnalyticField(mog6(), process)
    torch.testing.assert_close(half.loss(field, x0, None, draws), 0.5 * full.loss(field, x0, None, draws))
    cfg = apply_overrides(TrainConfig(), ["data.name=mog6", "objective.name=eps-half", "objective.process=edm",
                                          "model.hidden=16", "model.depth=1", "optim.steps=5", "optim.batch_size=32",
                                          f"run.out={tmp_path}", "run.progress=false"])  # fmt: skip
    result = Trainer(cfg).fit()
    assert result.step == 5 and math.isfinite(result.loss)
    assert json.loads((tmp_path / "run.json").read_text())["parameterization"] == "eps"


# --- a metric: the distance between the two sets' means -------------------------------------------------


def mean_gap(x: torch.Tensor, y: torch.Tensor, ctx: MetricContext) -> float:
    """``|mean(x) - mean(y)|``: blind to everything but the first moment."""
    return float((x.mean(0) - y.mean(0)).norm())


def test_a_metric_added_by_one_line_is_reported_beside_its_floor(monkeypatch):
    monkeypatch.setitem(METRICS, "mean_gap", Metric(mean_gap))
    x = mog6().sample(2000, torch.Generator().manual_seed(1))
    report = evaluate(x, mog6(), metrics=("mean_gap", "energy"), seed=2)
    gap = report["mean_gap"]
    assert {"value", "floor", "floor_std", "ratio", "ratio_ci"} <= set(gap) and gap["floor"] > 0
    assert gap["ratio"] == pytest.approx(gap["value"] / gap["floor"])
    shifted = evaluate(x + 0.5, mog6(), metrics=("mean_gap",), seed=2)["mean_gap"]
    # a shift of 0.5 in both coordinates moves the mean by 0.71, far above the floor (~0.1 at N = 2000)
    assert shifted["value"] > 0.6 and shifted["ratio"] > 3
