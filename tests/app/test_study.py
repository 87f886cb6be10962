"""The study's rows run in worker processes give the rows and samples of a run in this process."""

from __future__ import annotations

import numpy as np
import torch

from scoredyn.app.study import MAIN_RUNS, StudyRun, run_cost, run_study, study_pool
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
    svgd = [c for label, c in costs.items() if "SVGD" in label]
    assert len(svgd) == 2 and min(svgd) > max(c for label, c in costs.items() if "SVGD" not in label)
    # annealed Langevin: 10 levels x 100 steps x 2000 particles; DDIM: 50 steps x 2000
    assert costs["(B) annealed Langevin"] == 10 * 100 * 2000 and costs["DDIM"] == 50 * 2000
