"""The study: its rows run in worker processes give the rows and samples of a run in this process; no
two rows are the same run; the accuracy sweep spends its budgets; the rule of the floor and the numbers
the tables print."""

from __future__ import annotations

import numpy as np
import torch

from scoredyn.app.registry import resolve_sampler, steps_for_nfe
from scoredyn.app.study import (
    MAIN_RUNS,
    SWEEP_METRICS,
    SWEEP_SAMPLERS,
    StudyRun,
    accuracy_sweep,
    ratio_text,
    row_within_floor,
    run_cost,
    run_setup,
    run_study,
    score_run,
    section_title,
    significant,
    study_pool,
    sweep_points,
    within_floor,
)
from scoredyn.core.targets import mog6

RUNS = [
    StudyRun("(B) annealed Langevin", "annealed-langevin", 5),
    StudyRun("(C) SVGD", "svgd", 5, {"bandwidth_factor": 2.0, "repulsion": 1.0}, 60),
    StudyRun("UniPC (bh2)", "unipc", 10),
]


def test_rows_from_worker_processes_are_those_of_one_process():
    target = mog6()
    rows, samples = run_study(target, RUNS, 120, seed=3)
    seen_rows, seen_samples = [], {}
    with study_pool(2) as pool:
        rows_p, samples_p = run_study(
            target, RUNS, 120, seed=3, on_row=seen_rows.append, pool=pool,
            on_samples=lambda label, x: seen_samples.setdefault(label, x),
        )  # fmt: skip
    assert [r["label"] for r in rows_p] == [r.label for r in RUNS]  # the order of the runs, not of finishing
    assert sorted(r["label"] for r in seen_rows) == sorted(r.label for r in RUNS)
    assert [r["n"] for r in rows_p] == [120, 60, 120]
    for r, rp in zip(rows, rows_p, strict=True):
        # the same seeded run on 2-D particles (too few for intra-op threads to reorder sums):
        # the same numbers but for the wall time
        for key in ("mode_tv", "energy", "sliced_w1"):
            np.testing.assert_allclose(rp[key]["value"], r[key]["value"], rtol=1e-12)
            assert rp[key]["floor"] == r[key]["floor"]
        assert rp["nfe"] == r["nfe"] and rp["dominant_fraction"] == r["dominant_fraction"]
    for label, x in samples.items():
        assert isinstance(samples_p[label], torch.Tensor) and samples_p[label].dtype == x.dtype
        torch.testing.assert_close(samples_p[label], x, rtol=1e-12, atol=1e-12)
        assert seen_samples[label] is samples_p[label]


def test_run_cost_puts_the_svgd_rows_first():
    costs = {r.label: run_cost(r, 2000) for r in MAIN_RUNS}
    # svgd and svgd-median: O(N^2) a step; the fitted multistep row: its tuning and its fit (measured on
    # one thread: 6.1 s, beside the SVGD rows' 5.1 and 7.1 s and the tuned UniPC row's 3.6 s)
    kinds = {r.label: r.sampler.startswith("svgd") or r.sampler == "multistep" for r in MAIN_RUNS}
    first = [c for label, c in costs.items() if kinds[label]]
    assert len(first) == 4 and min(first) > max(c for label, c in costs.items() if not kinds[label])
    fitted = costs["multistep, 5 evaluations, fitted grid and coefficients"]
    assert fitted == 5 * 2000 + 300 * (5 + 20) * 1000 + 400 * 5 * 3 * 1000
    # annealed Langevin: 10 levels x 100 steps x 2000 particles; DDIM: 50 steps x 2000
    assert costs["(B) annealed Langevin"] == 10 * 100 * 2000 and costs["DDIM"] == 50 * 2000
    # a tuned grid's row counts its tuning (300 candidate grids, each run and scored on 1000 particles),
    # so that it does not start last and leave one worker alone at the end
    tuned = costs["UniPC (bh2), 5 evaluations, tuned grid"]
    assert tuned == 5 * 2000 + 300 * (5 + 20) * 1000 and tuned > costs["(B) annealed Langevin"]


def _algorithm(run: StudyRun) -> tuple:
    """What a row runs: (algorithm, process, grid, steps, knobs), with EDM's Heun sampler without churn
    read as the PF-ODE's Heun method, which it is (Karras et al. 2022, Alg. 2 with S_churn = 0;
    samplers/edm.py)."""
    recipe = resolve_sampler(run.sampler)
    knobs = dict(run.knobs)
    process, grid = knobs.pop("process", recipe.process), knobs.pop("grid", recipe.grid)
    kwargs = {**recipe.kwargs, **knobs}
    name = recipe.fn.__name__
    if name == "edm_heun" and not kwargs.get("S_churn", 0.0):
        name, kwargs = "ode", {"method": "heun", **{k: v for k, v in kwargs.items() if not k.startswith("S_")}}
    return name, process, grid, run.steps, tuple(sorted(kwargs.items()))


def test_no_two_rows_of_the_study_are_the_same_run():
    runs = [_algorithm(r) for r in MAIN_RUNS]
    assert len(set(runs)) == len(runs), [r for r in runs if runs.count(r) > 1]
    assert len({r.label for r in MAIN_RUNS}) == len({r.short for r in MAIN_RUNS}) == len(MAIN_RUNS)


def test_the_pf_ode_heun_row_is_song_et_al_on_vp_and_the_table_says_so():
    target = mog6()
    heun = next(r for r in MAIN_RUNS if r.sampler == "ode-heun")
    edm = next(r for r in MAIN_RUNS if r.sampler == "edm-heun")
    row_h, x_h = score_run(target, heun, 60, seed=0, metrics=("energy",))
    row_e, x_e = score_run(target, edm, 60, seed=0, metrics=("energy",))
    assert run_setup(row_h) == ("vp", "uniform", "20") and run_setup(row_e) == ("edm", "karras", "20")
    assert row_h["nfe"] == row_e["nfe"] == 39  # Heun: two evaluations a step, one on the last
    assert not torch.allclose(x_h, x_e)  # not the same run under two names


def test_the_accuracy_sweep_spends_each_budget_and_keeps_its_points():
    target = mog6()
    runs = accuracy_sweep(budgets=(5, 10), n=40)
    assert [r.short for r in runs[::2]] == [name for name, _, _ in SWEEP_SAMPLERS]
    rows, _ = run_study(target, runs, 1000, seed=1, metrics=SWEEP_METRICS)
    points = sweep_points(rows, (5, 10))
    assert len(points) == 2 * len(SWEEP_SAMPLERS)
    for p in points:
        assert p["n"] == 40 and p["nfe_budget"] in (5, 10)
        assert p["nfe_budget"] - 1 <= p["nfe"] <= p["nfe_budget"]  # Heun and PC: 2 S - 1
        assert set(SWEEP_METRICS) <= p.keys() and all(p[m]["ratio"] > 0 for m in SWEEP_METRICS)
    heun = [p for p in points if p["sampler"] == "ode-heun"]
    assert {(p["process"], p["grid"]) for p in heun} == {("vp", "uniform")}  # as in the main table
    assert steps_for_nfe("pc", 200) == 100 and steps_for_nfe("ddim", 200) == 200


def test_within_the_floor_is_an_interval_that_reaches_one():
    assert within_floor({"ratio_ci": [0.2, 1.9]}) is True and within_floor({"ratio_ci": [1.01, 3.0]}) is False
    assert within_floor({"ratio_ci": None}) is None
    inside, outside = {"ratio_ci": [0.5, 1.5]}, {"ratio_ci": [1.2, 2.0]}
    row = {"mode_tv_exact": inside, "mode_tv": inside, "energy": inside, "sliced_w1": {"ratio_ci": None}}
    assert row_within_floor(row)  # sliced W1 has no interval: not tested
    assert not row_within_floor({**row, "energy": outside}) and not row_within_floor({"sliced_w1": inside})


def test_numbers_read_alike_in_a_column():
    assert [significant(v) for v in (0.02, 0.0195, 3.6222, 462.91, 1250.7, 0.0, 2e-5)] == [
        "0.0200", "0.0195", "3.62", "463", "1,251", "0", "2.00e-05",
    ]  # fmt: skip
    assert ratio_text(0.9065) == "0.91" and ratio_text(None) == ""
    assert section_title("main", 2000) == "All samplers, N = 2,000"
    assert section_title("large N = 100,000", 2000) == "(A), (B) and (B)'s corrections at N = 100,000"
