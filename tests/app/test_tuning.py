"""Tuned grids as files: ``optimize_grid`` writes what ``sample`` and ``scoredyn sample --grid`` read, and a
grid for another run, or a broken one, ends with one line and exit 2."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from scoredyn import optimize_grid
from scoredyn.app.sampling import sample
from scoredyn.app.tuning import TUNABLE, GridFile, load_grid_file, steps_for_nfe
from scoredyn.core.processes import VP
from scoredyn.core.targets import mog6
from scoredyn.samplers import start_distribution, unipc
from scoredyn.samplers.grid_tuning import GridAxis


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "scoredyn", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    found = optimize_grid(mog6(), "unipc", 4, n=400, seed=0, evaluations=60, candidates=32)
    path = found.save(tmp_path_factory.mktemp("grids") / "grid.json")
    return found, path


def test_steps_for_nfe():
    assert steps_for_nfe("unipc", 5) == 5 and steps_for_nfe("ddim", 10) == 10
    assert steps_for_nfe("edm-heun", 5) == 3 and steps_for_nfe("edm-heun", 10) == 5  # 2 S - 1 <= nfe
    with pytest.raises(ValueError, match="can be tuned for"):
        steps_for_nfe("annealed-langevin", 5)
    assert set(TUNABLE) == {"ddim", "dpm-solver-2m", "unipc", "multistep", "edm-heun", "ode-heun"}


def test_grid_file_round_trip_and_contents(tuned):
    found, path = tuned
    doc = json.loads(path.read_text())
    assert doc["format"] == "scoredyn-grid" and doc["version"] == 1
    assert (doc["process"], doc["sampler"], doc["nfe"], doc["steps"]) == ("vp", "unipc", 4, 4)
    assert doc["method"] == "gits+continuous" and doc["tuning"]["n"] == 400 and doc["tuning"]["seconds"] > 0
    assert set(doc["errors"]) >= {"initial", "gits", "continuous"}
    assert load_grid_file(path) == found
    assert len(found.times) == 5 and all(a > b for a, b in zip(found.times, found.times[1:], strict=False))
    assert np.allclose(found.sigma_hat, VP().sigma_hat(found.grid).numpy())


def test_sample_with_a_tuned_grid_draws_at_the_start_time(tuned):
    """``sample(grid=GridFile)`` draws the particles from the exact p at the file's start time (t_max) and
    runs the sampler on the file's times: the same as doing both by hand."""
    found, _ = tuned
    result, settings = sample(mog6(), "unipc", steps=4, n=300, seed=3, grid=found)
    process = VP()
    law = start_distribution("exact", process, torch.tensor(found.start_time, dtype=torch.float64), target=mog6())
    x = law.sample(300, generator=torch.Generator().manual_seed(3))
    from scoredyn import AnalyticField

    assert torch.equal(result.x, unipc(AnalyticField(mog6(), process), x, found.grid).x)
    assert settings["grid"].startswith("tuned") and result.nfe == 4
    with pytest.raises(ValueError, match="tuned for unipc, not ddim"):
        sample(mog6(), "ddim", steps=4, n=10, grid=found)
    with pytest.raises(ValueError, match="vp process, not edm"):
        sample(mog6(), "unipc", steps=4, n=10, grid=found, process="edm")
    with pytest.raises(ValueError, match="4 steps of unipc, not 5"):
        sample(mog6(), "unipc", steps=5, n=10, grid=found)


def test_cli_tune_then_sample(tmp_path):
    grid = tmp_path / "g.json"
    proc = run_cli("tune-grid", "--target", "mog6", "--sampler", "dpm-solver-2m", "--nfe", 3, "--n", 200,
                   "--evaluations", 30, "--candidates", 24, "--out", grid)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stderr and "mean distance to the teacher" in proc.stderr
    out = tmp_path / "s.npz"
    proc = run_cli("sample", "--target", "mog6", "--sampler", "dpm-solver-2m", "--grid", grid, "--n", 50,
                   "--out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as f:
        settings = json.loads(str(f["settings"]))
        assert int(f["nfe"]) == 3 and f["samples"].shape == (50, 2)
    assert settings["grid"].startswith("tuned") and settings["steps"] == 3


@pytest.fixture(scope="module")
def tuned_multistep(tmp_path_factory):
    found = optimize_grid(mog6(), "multistep", 4, n=400, seed=0, evaluations=60, candidates=32)
    path = found.save(tmp_path_factory.mktemp("grids") / "multistep.json")
    return found, path


def test_multistep_grid_carries_its_coefficients(tuned_multistep):
    """The multistep grid ends at sigma = 0 with its fitted coefficients; ``sample`` runs them, and they
    are what the file says (the run equals ``multistep`` with the file's coefficients by hand)."""
    found, path = tuned_multistep
    doc = json.loads(path.read_text())
    assert doc["sampler"] == "multistep" and doc["times"][-1] == 0.0 and len(doc["times"]) == 5
    assert [len(row) for row in doc["coefficients"]] == [0, 1, 2, 3]
    assert doc["errors"]["coefficients"] < doc["errors"]["continuous"]  # the fit lowers the teacher distance
    assert load_grid_file(path) == found
    result, _ = sample(mog6(), "multistep", steps=4, n=300, seed=3, grid=found)
    from scoredyn import AnalyticField
    from scoredyn.samplers import multistep

    law = start_distribution("exact", VP(), torch.tensor(found.start_time, dtype=torch.float64), target=mog6())
    x = law.sample(300, generator=torch.Generator().manual_seed(3))
    field = AnalyticField(mog6(), VP())
    assert torch.equal(result.x, multistep(field, x, found.grid, coefficients=found.coefficients).x)
    assert not torch.equal(result.x, multistep(field, x, found.grid).x)
    # the unipc grid carries none
    assert json.loads(optimize_grid(mog6(), "unipc", 3, n=100, evaluations=10, candidates=16,
                                    method="gits").save(path.parent / "u.json").read_text())["coefficients"] is None


def test_multistep_at_five_evaluations_within_3x_of_the_floor():
    """The few-step goal on mog6: fitted on 2000 starts of seed 0 (the defaults), judged on 20,000 of
    seed 1 against the law. Measured: mode TV 1.32x and energy 1.68x their floors (benchmarks/grid_tuning.py
    has all four targets); UniPC on its own tuned grid is 1.50x / 4.42x. Deterministic (seeded)."""
    from scoredyn.metrics import evaluate

    found = optimize_grid(mog6(), "multistep", 5)
    result, _ = sample(mog6(), "multistep", steps=5, n=20_000, seed=1, grid=found)
    scores = evaluate(result.x, mog6(), metrics=("mode_tv_exact", "energy_exact"), seed=5)
    assert scores["mode_tv_exact"]["ratio"] < 3.0 and scores["energy_exact"]["ratio"] < 3.0, scores


def _write(path, doc):
    path.write_text(json.dumps(doc))
    return path


def _broken(tuned, **change):
    doc = json.loads(tuned[1].read_text())
    doc.update(change)
    return doc


@pytest.mark.parametrize(
    "case",
    ["other sampler", "other process", "non-monotone", "nan", "wrong length", "nfe mismatch", "not json",
     "no format", "missing times", "steps disagree", "outside range", "missing file", "coefficients on unipc",
     "multistep without coefficients", "coefficients short", "coefficients nan", "coefficients not lists"],
)  # fmt: skip
def test_bad_grid_files_one_line_exit_2(tmp_path, tuned, tuned_multistep, case):
    found, good = tuned
    times = list(found.times)
    path = tmp_path / "bad.json"
    extra: list = []
    sampler = "unipc"
    if case == "other sampler":
        path, sampler = good, "ddim"
    elif case == "other process":
        path, extra = good, ["--process", "edm"]
    elif case == "non-monotone":
        _write(path, _broken(tuned, times=[times[0], times[2], times[1], *times[3:]]))
    elif case == "nan":
        _write(path, _broken(tuned, times=[times[0], float("nan"), *times[2:]]))
    elif case == "wrong length":
        _write(path, _broken(tuned, times=times[:-1]))
    elif case == "nfe mismatch":
        _write(path, _broken(tuned, nfe=7))
    elif case == "not json":
        path.write_text("{not json")
    elif case == "no format":
        _write(path, {k: v for k, v in json.loads(good.read_text()).items() if k != "format"})
    elif case == "missing times":
        _write(path, {k: v for k, v in json.loads(good.read_text()).items() if k != "times"})
    elif case == "steps disagree":
        path, extra = good, ["--steps", "6"]
    elif case == "outside range":
        _write(path, _broken(tuned, times=[2.0, *times[1:]]))
    elif case == "missing file":
        path = tmp_path / "nothing.json"
    elif case == "coefficients on unipc":
        _write(path, _broken(tuned, coefficients=[[], [0.1], [0.1, 0.2], [0.1, 0.2, 0.3]]))
    elif case.startswith("multistep") or case.startswith("coefficients"):
        sampler, ms = "multistep", json.loads(tuned_multistep[1].read_text())
        ms["coefficients"] = {"multistep without coefficients": None, "coefficients short": [[], [0.1], [0.2]],
                              "coefficients nan": [[], [0.1], [0.2, float("nan")], [0.1, 0.2, 0.3]],
                              "coefficients not lists": [[], 0.1, [0.2, 0.3], [0.1, 0.2, 0.3]]}[case]  # fmt: skip
        _write(path, ms)
    out = tmp_path / "s.npz"
    proc = run_cli("sample", "--target", "mog6", "--sampler", sampler, "--grid", path, "--n", 10, "--out", out, *extra)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists()


def test_tune_grid_bad_input_one_line_exit_2(tmp_path):
    for args, why in (
        (["--sampler", "annealed-langevin", "--nfe", "5"], "can be tuned for"),
        (["--sampler", "unipc", "--nfe", "0"], "--nfe"),
        (["--sampler", "unipc", "--nfe", "5", "--method", "grid-search"], "--method"),
        (["--sampler", "unipc", "--nfe", "5", "--n", "1"], "--n"),
    ):
        proc = run_cli("tune-grid", "--target", "mog6", *args, "--out", tmp_path / "g.json")
        assert proc.returncode == 2 and why in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "g.json").exists()


def test_optimize_grid_arguments():
    with pytest.raises(ValueError, match="method"):
        optimize_grid(mog6(), "unipc", 4, method="bisection")
    with pytest.raises(ValueError, match="objective"):
        optimize_grid(mog6(), "unipc", 4, objective="kl")
    with pytest.raises(ValueError, match="can be tuned for"):
        optimize_grid(mog6(), "svgd", 4)


def test_heun_grid_ends_at_zero_and_counts_evaluations():
    """An EDM Heun grid of 5 evaluations holds 3 steps ending at sigma = 0 (its last step Euler)."""
    found = optimize_grid(mog6(), "edm-heun", 5, n=200, evaluations=30, candidates=24)
    assert found.steps == 3 and len(found.times) == 4 and found.sigma_hat[-1] == 0.0
    result, _ = sample(mog6(), "edm-heun", steps=3, n=50, grid=found)
    assert result.nfe == 5
    assert isinstance(found, GridFile) and GridAxis(VP()).to_zero


def test_a_grid_brings_its_process():
    """A DDIM grid tuned on the VP process (DDIM's recipe runs on the discrete DDPM schedule) runs on VP
    when no process is asked for, and ends at sigma = 0 there."""
    found = optimize_grid(mog6(), "ddim", 3, process="vp", n=200, evaluations=20, candidates=16)
    result, settings = sample(mog6(), "ddim", steps=3, n=20, grid=found)
    assert settings["process"] == "vp" and result.nfe == 3
