"""``benchmarks/gpu_check.py --dry``: the GPU check's own code on the CPU (kernels through Triton's
interpreter) at tinier sizes than its ``--dry`` default, in a child process (the interpreter must be on
before triton is first imported); and its bench runner stopping a part at the budget and skipping one
that has no time left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"

_CHILD = """
import importlib.util, json, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("gpu_check", sys.argv[1])
gc = sys.modules["gpu_check"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gc)
gc.DRY = gc.Sizes(24, ((2, 6), (10, 6)), 2, 1, 80, (2, 10), 256, 1)
status = gc.main(["--dry", "--out", sys.argv[2], "--parts"])  # no bench here: its runner is checked below
out = Path(sys.argv[2])
stopped = gc.bench(["langevin"], True, "cpu", out, gc.Clock(3.0), 0.0)
skipped = gc.bench(["svgd"], True, "cpu", out, gc.Clock(0.0), 1.0)
print(json.dumps({"status": status, "stopped": stopped, "skipped": skipped}))
"""


def test_dry_run_writes_every_record(tmp_path):
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == 0, done.stdout[-3000:]
    records = json.loads((tmp_path / "gpu_check.json").read_text())
    by_name = {r["name"]: r for r in records}
    for r in records:  # DESIGN.md's record format
        assert set(r) == {"name", "device", "value", "unit", "baseline", "baseline_value", "ratio", "settings",
                          "versions", "date"}  # fmt: skip
        assert "triton" in r["versions"] and r["device"].startswith("cpu")
    for precision in ("ieee", "tf32x3", "tf32"):
        for d, k in ((2, 6), (10, 6)):
            rec = by_name[f"gpu_check/langevin/d{d}_k{k}/{precision}"]
            # the interpreter computes every precision in float32: float32 errors, within 10x the torch path's
            assert 0 < rec["value"] < 1e-5 and rec["settings"]["within_10x"] is True
        for d in (2, 10):
            for what in ("sums", "direction"):
                rec = by_name[f"gpu_check/svgd_{what}/d{d}/{precision}"]
                assert 0 < rec["value"] < 1e-5 and rec["settings"]["within_10x"] is True
    law = by_name["gpu_check/law/annealed-langevin/mode_tv_exact"]["settings"]
    assert law["fused"]["kernel"] == "triton" and law["plain"]["kernel"] is None and "agree" in law
    summary = by_name["gpu_check/summary"]["settings"]
    assert summary["interpreter"] is True and summary["failed"] == [] and summary["bench"] == []
    # the bench runner: a part past the budget is stopped (its process group), one with no time left skipped
    (stopped,), (skipped,) = report["stopped"], report["skipped"]
    assert stopped["part"] == "langevin" and stopped["status"] == "stopped (budget spent)" and stopped["seconds"] < 20
    assert skipped == {"part": "svgd", "status": "skipped", "seconds": 0.0}
