"""Does each sampler of the study stay at the floor as N grows? Every row of the demo's study on the
exact mog6 field at N = 1e3, 1e4, 1e5, scored against the exact law (mode TV to the exact mode
probabilities, energy and MMD to the law, KSD), each as a multiple of its floor with a 95% interval.
A sampler is at the floor on a metric only if the ratio stays <= 1.5 at every N. SVGD is O(N^2) per
step, so its rows run at 1e3 only.

    python benchmarks/floor_scaling.py [--sizes 1000,10000,100000] [--seed 0]
    -> benchmarks/results/floor_scaling.json and a Markdown table on stdout
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record, write  # noqa: E402

from scoredyn.app.scaling import SCALING_METRICS, at_floor, scaling  # noqa: E402
from scoredyn.app.study import MAIN_RUNS  # noqa: E402
from scoredyn.core.targets import mog6  # noqa: E402

SHORT = {"mode_tv_exact": "mode TV", "energy_exact": "energy", "mmd_exact": "MMD", "ksd": "KSD"}


def cell(entry: dict) -> str:
    lo, hi = entry["ratio_ci"]
    return f"{entry['ratio']:.2f} [{lo:.1f}, {hi:.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    torch.set_num_threads(1)  # many small operations: oversubscribed threads slow them badly
    target, results = mog6(), []
    for run in MAIN_RUNS:
        run_sizes = sizes[:1] if run.sampler == "svgd" else sizes
        t0 = time.perf_counter()
        rows = scaling(target, run.sampler, run_sizes, steps=run.steps, seed=args.seed, **run.knobs)
        verdict = {m: at_floor(rows, m) for m in SCALING_METRICS}
        results.append(
            {
                "label": run.label,
                "sampler": run.sampler,
                "steps": run.steps,
                "knobs": run.knobs,
                "rows": rows,
                "at_floor": verdict,
            }
        )
        print(
            f"{run.label}: {time.perf_counter() - t0:.0f}s  "
            + "  ".join(
                f"N={r['n']}: " + ", ".join(f"{SHORT[m]} {r[m]['ratio']:.2f}" for m in SCALING_METRICS) for r in rows
            ),
            flush=True,
        )
    print("\n| run | N | " + " | ".join(SHORT[m] for m in SCALING_METRICS) + " |")
    print("|---|---:|" + "---:|" * len(SCALING_METRICS))
    for res in results:
        for r in res["rows"]:
            print(f"| {res['label']} | {r['n']:,} | " + " | ".join(cell(r[m]) for m in SCALING_METRICS) + " |")
    records = [record("floor_scaling", None, "rows", None, None, {"sizes": sizes, "seed": args.seed, "runs": results})]
    print("wrote", write("floor_scaling.json", records))


if __name__ == "__main__":
    main()
