"""``scaling`` and ``scoredyn scaling``: a sampler at growing N scored against the exact law; the
at-the-floor rule; ``scoredyn evaluate``'s new options; bad input ends with one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from scoredyn.app.scaling import AT_FLOOR_RATIO, SCALING_METRICS, at_floor, check_sizes, scaling
from scoredyn.core.targets import mog6


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "scoredyn", *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("bad", [(), (0, 10), (1, 10), (100, 100), (1000, 100), (10, 20.5)])
def test_check_sizes_refuses_what_is_not_a_strictly_increasing_list_of_counts(bad):
    with pytest.raises(ValueError):
        check_sizes(bad)
    assert check_sizes([10, 100, 1000]) == (10, 100, 1000)


def test_at_floor_needs_every_ratio_at_most_the_limit():
    def row(r):
        return {"m": {"ratio": r}}

    assert AT_FLOOR_RATIO == 1.5
    assert at_floor([row(0.9), row(1.5)], "m")
    assert not at_floor([row(0.9), row(1.51)], "m")
    assert not at_floor([row(None)], "m") and not at_floor([], "m")
    assert at_floor([row(1.9)], "m", limit=2.0)


def test_scaling_rows_are_evaluate_entries_at_each_size():
    rows = scaling(mog6(), "ode-heun", [100, 300], steps=5, seed=2)
    assert [r["n"] for r in rows] == [100, 300]
    for row in rows:
        assert row["nfe"] > 0 and row["wall_s"] >= 0
        for m in SCALING_METRICS:
            entry = row[m]
            assert entry["floor"] > 0 and entry["ratio"] == pytest.approx(entry["value"] / entry["floor"])
            lo, hi = entry["ratio_ci"]
            assert 0 <= lo <= max(entry["ratio"], 0) <= hi


def test_scaling_cli_prints_ratios_and_writes_json(tmp_path):
    out = tmp_path / "s.json"
    proc = run_cli(
        "scaling", "--sampler", "ode-heun", "--steps", 5, "--sizes", "100,200", "--metrics", "mode_tv_exact",
        "--out", out, "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc == json.loads(out.read_text())
    assert [r["n"] for r in doc["rows"]] == [100, 200] and set(doc["at_floor"]) == {"mode_tv_exact"}


@pytest.mark.parametrize(
    "args",
    [
        ("--sizes", "100,50"),
        ("--sizes", "0,100"),
        ("--sizes", "-5"),
        ("--sizes", "abc"),
        ("--sizes", "100,100"),
        ("--steps", "0"),
        ("--metrics", "fid"),
        ("--sampler", "nope"),
        ("--out", "x.txt"),
    ],
)
def test_scaling_cli_bad_input_is_one_line_and_exit_2(tmp_path, args):
    opts = {"--sampler": "ode-heun", "--steps": "5", "--sizes": "100,200", "--out": str(tmp_path / "s.json")}
    opts[args[0]] = args[1] if args[0] != "--out" else str(tmp_path / args[1])
    proc = run_cli("scaling", *[a for kv in opts.items() for a in kv])
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("scoredyn: error:")
    assert not list(tmp_path.iterdir())


def test_evaluate_cli_interval_metrics_and_bad_options(tmp_path):
    x = mog6().sample(300).numpy()
    path = tmp_path / "x.npy"
    np.save(path, x)
    metrics = "mode_tv_exact,energy_exact"
    proc = run_cli("evaluate", "--samples", path, "--target", "mog6", "--metrics", metrics, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {"mode_tv_exact", "energy_exact"} <= report.keys() and "energy" not in report
    assert len(report["mode_tv_exact"]["ratio_ci"]) == 2
    table = run_cli("evaluate", "--samples", path, "--target", "mog6", "--metrics", "energy_exact")
    assert table.returncode == 0 and "95% interval" in table.stdout
    bad = tmp_path / "bad.npy"
    x[3, 1] = np.nan
    np.save(bad, x)
    for args in (
        ("--samples", bad),
        ("--samples", path, "--metrics", "fid"),
        ("--samples", path, "--metrics", ","),
        ("--samples", path, "--pair-budget", 0),
    ):
        proc = run_cli("evaluate", "--target", "mog6", *args)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)


def test_demo_large_adds_a_and_b_at_large_n(tmp_path, monkeypatch):
    # in process, with the large N lowered so the test is quick: the section holds (A), (B) and (B)'s two
    # corrections only (SVGD is O(N^2) per step), at that N, scored with the mode TV to the law; its samples
    # are not kept
    from typer.testing import CliRunner

    from scoredyn.app.cli import _common, core

    monkeypatch.setattr(core, "LARGE_N", 500)
    monkeypatch.setattr(core, "LARGE_SECTION", "large N = 500")
    out = tmp_path / "demo"
    result = CliRunner().invoke(_common.app, ["demo", "--out", str(out), "--n", "60", "--workers", "1", "--large"])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "table.json").read_text())
    large = doc["tables"]["large N = 500"]
    assert [r["label"][:3] for r in large] == ["(A)", "(B)", "(B)", "(B)"] and all(r["n"] == 500 for r in large)
    assert all(r["mode_tv_exact"]["floor"] > 0 for r in large)
    with np.load(out / "samples.npz") as z:
        assert not any(name.startswith("large") for name in z.files)
