"""`scoredyn physics`: the commands write what they say (trajectory.npz, compare.json with DESIGN's
contract), and bad input is one line and exit status 2."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest


def cli(*args):
    return subprocess.run([sys.executable, "-m", "scoredyn", "physics", *map(str, args)],
                          capture_output=True, text=True)  # fmt: skip


def test_simulate_with_the_true_force_writes_a_trajectory(tmp_path):
    proc = cli("simulate", "--system", "double-well", "--out", tmp_path, "--steps", 100, "--walkers", 16,
               "--save-every", 10)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "trajectory.npz") as f:
        x, times = f["x"], f["times"]
        settings = json.loads(str(f["settings"]))
    assert x.shape == (11, 16, 2) and np.isfinite(x).all() and times.shape == (11,)
    assert settings["force"] == "true" and settings["walkers"] == 16


def test_compare_json_contract_and_learned_force_simulation(tmp_path):
    """A 100-step model is poor: the test checks the contract and the wiring, not the accuracy (the
    accuracy is benchmarks/physics_twoforone.py's and test_twoforone.py's)."""
    out = tmp_path / "cmp"
    proc = cli("compare", "--system", "double-well", "--out", out, "--steps", 100, "--quick", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["system"] == "double-well"
    for route in ("iid", "md"):
        r = doc["routes"][route]
        assert math.isfinite(r["fe_error_kT"]) and r["fe_error_kT"] >= 0 and 0 <= r["js"] <= 1
    assert doc["routes"]["md"]["sigma"] in [row["sigma"] for row in doc["sigma_table"]]
    assert json.loads((out / "compare.json").read_text())["routes"] == doc["routes"]
    assert (out / "free_energy.png").stat().st_size > 0
    proc = cli("simulate", "--system", "double-well", "--out", tmp_path / "md", "--force", out / "model",
               "--sigma", 0.1, "--steps", 20, "--walkers", 8)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "md" / "trajectory.npz") as f:
        assert f["x"].shape[1:] == (8, 2)


@pytest.mark.parametrize(
    "args, message",
    [
        (["simulate", "--system", "argon", "--out", "X"], "unknown system"),
        (["simulate", "--system", "dw4", "--out", "X", "--force", "no/such/run"], "--force"),
        (["simulate", "--system", "dw4", "--out", "X", "--steps", "0"], "--steps"),
        (["compare", "--system", "double-well", "--out", "X", "--steps", "-3"], "--steps"),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, message):
    proc = cli(*[str(tmp_path / "o") if a == "X" else a for a in args])
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
