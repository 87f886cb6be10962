"""Particle samplers against the exact law at large N: the texts' annealed Langevin beside its two
corrections, annealed MALA (a Metropolis test at every step) and SMC (importance weights and
resampling over an adaptive ladder), on mog6 (2-D) and mog10 (10-D, 8 components, full covariances).

Each run is scored with the one-sample metrics against the law (``mode_tv_exact``: the TV of the mode
frequencies to the probabilities exact samples are assigned with; ``energy_exact``: the energy distance
to the mixture itself), as multiples of what exact samples of the same N score. Every sampler spends at
most 1000 evaluations of the score (and density) per particle. SMC also reports ``log Z`` (0 for the
normalized mixture) with its standard error.

    python benchmarks/particle_exact.py [--seeds 3] [--n 20000 100000] [--targets mog6 mog10] [--merge] [--quick]
    -> benchmarks/results/particle_exact.json and a Markdown table on stdout
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import merged, record, write  # noqa: E402

from scoredyn.app.sampling import sample  # noqa: E402
from scoredyn.core.targets import mog6, mog10  # noqa: E402
from scoredyn.metrics import evaluate  # noqa: E402

# (label, sampler name, steps, knobs): 1000 evaluations per particle or fewer each
RUNS = (
    ("annealed Langevin (texts' recipe, 10 x 100)", "annealed-langevin", 100, {}),
    ("annealed MALA (10 x 99, + 1 a level)", "annealed-mala", 99, {}),
    ("SMC (probability flow between adaptive levels, 8 MALA moves a level)", "smc", 8, {}),
)
METRICS = ("mode_tv_exact", "energy_exact")


def one(target, name: str, steps: int, knobs: dict, n: int, seed: int) -> dict:
    t0 = time.perf_counter()
    result, _ = sample(target, name, steps=steps, n=n, seed=seed, **knobs)
    wall = time.perf_counter() - t0
    scores = evaluate(result.x, target, metrics=METRICS, seed=seed + 1000)
    row = {
        "seed": seed,
        "nfe": result.nfe,
        "wall_s": wall,
        "mode_weights": scores["mode_weights"],
        **{m: {k: scores[m][k] for k in ("value", "floor", "ratio")} for m in METRICS},
    }
    if result.info and "log_z" in result.info:
        row |= {k: result.info[k] for k in ("log_z", "log_z_se", "levels", "search_nfe")}
        row["resamplings"] = sum(result.info["resampled"])
        row["min_ess"] = min(result.info["ess"])
    if result.info and "acceptance" in result.info:
        row["acceptance"] = statistics.fmean(result.info["acceptance"])
    return row


def summary(rows: list[dict]) -> dict:
    def mean(values):
        return statistics.fmean(values)

    def se(values):
        return statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else float("nan")

    out = {
        "seeds": len(rows),
        "nfe_max": max(r["nfe"] for r in rows),
        "wall_s": mean([r["wall_s"] for r in rows]),
    }
    for m in METRICS:
        ratios = [r[m]["ratio"] for r in rows]
        out[m] = {"ratio_mean": mean(ratios), "ratio_mean_first3": mean(ratios[:3]), "ratio_se": se(ratios)}
    if "log_z" in rows[0]:
        out["log_z_mean"] = mean([r["log_z"] for r in rows])
        out["log_z_within_1se"] = sum(abs(r["log_z"]) <= r["log_z_se"] for r in rows)
        out["log_z_within_2se"] = sum(abs(r["log_z"]) <= 2 * r["log_z_se"] for r in rows)
        out["log_z_se_mean"] = mean([r["log_z_se"] for r in rows])
        out["log_z_spread"] = statistics.stdev([r["log_z"] for r in rows]) if len(rows) > 1 else float("nan")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--targets", nargs="+", default=["mog6", "mog10"])
    ap.add_argument("--quick", action="store_true", help="N = 2000, one seed (a check that it runs)")
    ap.add_argument("--merge", action="store_true", help="keep the records of other targets and sizes in the file")
    ap.add_argument("--samplers", nargs="+", default=[name for _, name, _, _ in RUNS])
    ap.add_argument("--out", default=None, help="the results file name (default particle_exact.json)")
    args = ap.parse_args()
    sizes, seeds = ([2000], 1) if args.quick else (args.n, args.seeds)
    targets = {"mog6": mog6, "mog10": mog10}
    records, lines = [], ["| target | N | sampler | mode TV / floor | energy / floor | log Z (1 se) | NFE | s/run |",
                          "|---|---:|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for tname in args.targets:
        target = targets[tname]()
        for n in sizes:
            for label, name, steps, knobs in (run for run in RUNS if run[1] in args.samplers):
                if name == "annealed-langevin" and target.dim > 2:
                    knobs = {"backend": "torch"}  # the fused kicks: in 10-D faster than the field's loop
                rows = []
                for seed in range(seeds):
                    rows.append(one(target, name, steps, knobs, n, seed))
                    r = rows[-1]
                    print(f"{tname} N={n} {name} seed {seed}: mode TV x{r['mode_tv_exact']['ratio']:.2f}, "
                          f"energy x{r['energy_exact']['ratio']:.2f}, nfe {r['nfe']}, {r['wall_s']:.1f}s", flush=True)
                s = summary(rows)
                log_z = f"{s['log_z_mean']:+.4f} ({s['log_z_se_mean']:.4f})" if "log_z_mean" in s else ""
                lines.append(
                    f"| {tname} | {n:,} | {label} | {s['mode_tv_exact']['ratio_mean']:.2f} | "
                    f"{s['energy_exact']['ratio_mean']:.2f} | {log_z} | {s['nfe_max']} | {s['wall_s']:.0f} |"
                )
                settings = {"target": tname, "n": n, "sampler": name, "steps": steps, "knobs": knobs,
                            "summary": s, "runs": rows}  # fmt: skip
                records.append(record(f"{tname}/{n}/{name}/mode_tv_exact_ratio", s["mode_tv_exact"]["ratio_mean"],
                                      "x floor", None, None, settings))  # fmt: skip
    print("\n".join(lines))
    name = args.out or ("quick_particle_exact.json" if args.quick else "particle_exact.json")
    write(name, merged(name, records) if args.merge else records)


if __name__ == "__main__":
    main()
