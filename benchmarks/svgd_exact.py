"""Annealed SVGD against the exact law, in 2-D (mog6) and 10-D (mog10): the old recipe, the new one, and
the levers one at a time.

Every row runs ``sample(target, "svgd", steps=100, levels=10, n=2000, seed=s)`` (1000 SVGD steps on the
registry's ladder: EDM, geometric sigmas 10 -> 0.05, start N(0, 10^2 I)) with the row's knobs, for
seeds 0, 1, 2, and scores the particles with ``evaluate(..., metrics=("mode_tv_exact", "energy_exact"))``:
each cell is the mean over the seeds of value / floor (1 = as good as exact samples of the same N).
The goal: mode TV <= 1.5 and energy <= 2.0 on both targets.

    python benchmarks/svgd_exact.py [--quick] [--rows A,G] [--workers 2]
    -> benchmarks/results/svgd_exact.json and a Markdown table on stdout

One run (N = 2000, 1000 steps, one thread) takes 15-20 s on mog6 and 25-40 s on mog10 on this
project's 2-core machine; ``--quick`` (rows A and G, 12 runs) about 4 minutes with two workers, the
full table (11 rows, 66 runs) about 20 minutes.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record, write  # noqa: E402

from scoredyn.app.sampling import sample  # noqa: E402
from scoredyn.core.targets import mog6, mog10  # noqa: E402
from scoredyn.metrics import evaluate  # noqa: E402

TARGETS = {"mog6": mog6, "mog10": mog10}
SEEDS = (0, 1, 2)
METRICS = ("mode_tv_exact", "energy_exact")
GOAL = {"mode_tv_exact": 1.5, "energy_exact": 2.0}

OLD = {"bandwidth_factor": 2.0, "repulsion": 1.0}  # the registry's "svgd"
MEDIAN_MASS = {"bandwidth": "median", "bandwidth_factor": 0.7, "normalization": "mass", "eta_factor": 1.0}
NEW = {**MEDIAN_MASS, "min_neighbours": 10.0, "repulsion": 1.0}

# key -> (label, knobs, levels, steps per level, start); the levels x steps product is 1000 everywhere.
# The knobs update the registry recipe's (sample's **knobs), so each row names every knob it changes.
ROWS: dict[str, tuple[str, dict, int, int, str | None]] = {
    "A": ("old recipe: h = 2 sigma, 1/N, eta = 0.5 sigma^2", OLD, 10, 100, None),
    "B": ("old + median bandwidth (x1)", {**OLD, "bandwidth": "median", "bandwidth_factor": 1.0}, 10, 100, None),
    "C": ("old + kernel-mass step", {**OLD, "normalization": "mass"}, 10, 100, None),
    "D": ("median (x1) + kernel-mass step", {**MEDIAN_MASS, "bandwidth_factor": 1.0, "eta_factor": 0.5}, 10, 100, None),
    "E": ("median (x0.7) + kernel-mass step", {**MEDIAN_MASS, "eta_factor": 0.5}, 10, 100, None),
    "F": ("median (x0.7) + kernel-mass step + eta_factor 1", MEDIAN_MASS, 10, 100, None),
    "G": ("new recipe: F + min_neighbours 10", NEW, 10, 100, None),
    "H": ("new + Langevin noise", {**NEW, "langevin_noise": True}, 10, 100, None),
    "I": ("new from the exact p_{sigma_max}", NEW, 10, 100, "exact"),
    "J": ("F on 20 levels x 50 steps", MEDIAN_MASS, 20, 50, None),
    "K": ("new on 20 levels x 50 steps", NEW, 20, 50, None),
    "L": ("F on 100 levels x 10 steps", MEDIAN_MASS, 100, 10, None),
    "M": ("new on 100 levels x 10 steps", NEW, 100, 10, None),
}
QUICK = ("A", "G")


def run_one(row: str, target_name: str, seed: int) -> dict:
    """One run of a row on a target: its ratios to the floors and its wall time."""
    torch.set_num_threads(1)  # one thread per worker: many small tensor operations
    _, knobs, levels, steps, start = ROWS[row]
    target = TARGETS[target_name]()
    t0 = time.perf_counter()
    result, settings = sample(target, "svgd", steps=steps, n=2000, seed=seed, levels=levels, start=start, **knobs)
    wall = time.perf_counter() - t0
    scores = evaluate(result.x, target, metrics=METRICS, seed=seed)
    return {
        "row": row,
        "target": target_name,
        "seed": seed,
        "wall_s": wall,
        "settings": settings,
        **{m: {k: scores[m][k] for k in ("value", "floor", "ratio")} for m in METRICS},
    }


def table(rows: list[str], cells: dict) -> str:
    head = "| row | variant | " + " | ".join(f"{t} mode TV | {t} energy" for t in TARGETS) + " |"
    lines = [head, "|---|---|" + "---:|" * (2 * len(TARGETS))]
    for key in rows:
        values = [f"{cells[key, t, m]:.2f}" for t in TARGETS for m in METRICS]
        lines.append(f"| {key} | {ROWS[key][0]} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help=f"rows {', '.join(QUICK)} only")
    ap.add_argument("--rows", default=None, help="comma-separated row keys (default: all)")
    ap.add_argument("--workers", type=int, default=2, help="processes, one thread each")
    args = ap.parse_args()
    rows = list(QUICK) if args.quick else (args.rows.split(",") if args.rows else list(ROWS))
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}: use {', '.join(ROWS)}")
    tasks = [(r, t, s) for r in rows for t in TARGETS for s in SEEDS]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        runs = list(pool.map(run_one, *zip(*tasks, strict=True)))
    total = time.perf_counter() - t0
    cells = {}
    for r in rows:
        for t in TARGETS:
            mine = [run for run in runs if run["row"] == r and run["target"] == t]
            for m in METRICS:
                cells[r, t, m] = sum(run[m]["ratio"] for run in mine) / len(mine)
    print(table(rows, cells))
    print(f"\n{len(runs)} runs, {total:.0f} s with {args.workers} workers")
    if "G" in rows:
        met = all(cells["G", t, m] <= GOAL[m] for t in TARGETS for m in METRICS)
        print(f"goal (mode TV <= {GOAL['mode_tv_exact']}, energy <= {GOAL['energy_exact']}) met by G: {met}")

    records = []
    for r in rows:
        label, knobs, levels, steps, start = ROWS[r]
        for t in TARGETS:
            for m in METRICS:
                base = cells.get(("A", t, m))
                settings = {"row": r, "label": label, "target": t, "metric": m, "knobs": knobs, "levels": levels,
                            "steps_per_level": steps, "start": start or "ladder", "n": 2000, "seeds": list(SEEDS),
                            "runs": [run for run in runs if run["row"] == r and run["target"] == t]}  # fmt: skip
                records.append(record(f"svgd_exact/{t}/{r}/{m}", cells[r, t, m], "x floor (mean of 3 seeds)",
                                      "old recipe (row A)" if base is not None else None, base, settings))  # fmt: skip
    print("wrote", write("svgd_exact.json", records))


if __name__ == "__main__":
    main()
