"""``scoredyn bench``: the suite writes each part's records (DESIGN.md's format) and prints them.

The real parts take a minute each, so the suite runs here on a stand-in part (this module's ``run``),
and the real parts' ``run`` functions are tested in their own test files at small sizes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from scoredyn.app.bench import suite
from scoredyn.app.bench.record import merged, record, write
from scoredyn.app.cli import app

KEYS = {"name", "device", "value", "unit", "baseline", "baseline_value", "ratio", "settings", "versions", "date"}
CALLS: list[dict] = []


def run(*, quick: bool, device: str, results=None) -> list[dict]:
    CALLS.append({"quick": quick, "device": device})
    return [record("stand-in", 2.0e9, "particle-steps/s", "eager", 1.0e8, {"N": 10}, ratio=20.0, device=device)]


@pytest.fixture
def stand_in(monkeypatch):
    CALLS.clear()
    part = suite.Part("stand-in", __name__, "stand_in.json", "a stand-in part")
    monkeypatch.setattr(suite, "PARTS", (part,))
    return part


def test_bench_quick_writes_records_and_prints_json(tmp_path, stand_in):
    res = CliRunner().invoke(app, ["bench", "--quick", "--json", "--results", str(tmp_path)])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout.strip().splitlines()[-1])
    written = json.loads((tmp_path / "quick_stand_in.json").read_text())  # quick runs never overwrite full ones
    assert printed == written and len(written) == 1
    assert set(written[0]) == KEYS and written[0]["ratio"] == 20.0 and written[0]["device"].startswith("cpu")
    assert CALLS == [{"quick": True, "device": "cpu"}]


def test_bench_table(tmp_path, stand_in):
    res = CliRunner().invoke(app, ["bench", "--quick", "--results", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "stand-in" in res.stdout and "2e+09" in res.stdout and "particle-steps/s" in res.stdout


def test_bench_suite_rejects_unknown_part(tmp_path, stand_in):
    with pytest.raises(ValueError, match="unknown benchmark part"):
        suite.run_suite(quick=True, parts=["nope"], results=tmp_path)
    assert CALLS == []


def test_bench_bad_input_is_one_line(tmp_path):
    import subprocess
    import sys

    for args in (["bench"], ["bench", "--quick", "--part", "nope"], ["bench", "--quick", "--device", "tpu"]):
        p = subprocess.run([sys.executable, "-m", "scoredyn", *args, "--results", str(tmp_path)],
                           capture_output=True, text=True)  # fmt: skip
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith("scoredyn: error:"), p.stderr
    assert not any(tmp_path.iterdir())


def test_every_real_part_has_a_run():
    import importlib

    for part in suite.PARTS:
        mod = importlib.import_module(part.module)
        assert callable(mod.run), part.name


def test_merged_keeps_the_records_a_rerun_does_not_redo(tmp_path):
    old = [record("a", 1.0, "s", None, None, {}), record("b", 2.0, "s", None, None, {})]
    assert merged("r.json", old, tmp_path) == old  # no file yet: the records alone
    write("r.json", old, tmp_path)
    new = [record("b", 3.0, "s", None, None, {}), record("c", 4.0, "s", None, None, {})]
    assert [(r["name"], r["value"]) for r in merged("r.json", new, tmp_path)] == [("a", 1.0), ("b", 3.0), ("c", 4.0)]
