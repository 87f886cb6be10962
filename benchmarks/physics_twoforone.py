"""Two for one (Arts et al. 2023): one denoiser per system, scored as an i.i.d. sampler and as
a force field for Langevin MD, on the 2-D double well, Müller–Brown and DW-4.

    OMP_NUM_THREADS=1 python benchmarks/physics_twoforone.py [--steps N] [--out runs/twoforone] [--quick]

Trains (or reuses) a model per system under OUT/SYSTEM/model, writes OUT/SYSTEM/compare.json and the
figures, records one line per system and route in benchmarks/results/physics_twoforone.json
(value: free-energy error in kT; baseline: the Monte-Carlo floor of fresh exact/reference samples of
the same size for the i.i.d. route, the same MD with the true force for the MD route; the records of
systems not run are kept), and prints the tables. The aim is a free-energy error below 0.3 kT for
both routes on all three systems.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _record  # noqa: E402

from scoredyn.app.experiments.twoforone import TRAIN_STEPS, compare_run  # noqa: E402

SYSTEMS = ("double-well", "muller-brown", "dw4")
AIM = 0.3


def _f(v, fmt=".3f") -> str:
    return "  n/a" if v is None else format(v, fmt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: TRAIN_STEPS per system)")
    ap.add_argument("--out", default="runs/twoforone")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    args = ap.parse_args()

    records, results = [], {}
    for system in args.systems:
        t0 = time.perf_counter()
        r = compare_run(system, Path(args.out) / system, args.steps, args.seed, quick=args.quick)
        seconds = time.perf_counter() - t0
        results[system] = r
        steps = args.steps or TRAIN_STEPS[system]
        settings = {"train_steps": steps, "seed": args.seed, "quick": args.quick, "system_seconds": seconds,
                    "out": str(Path(args.out) / system)}  # fmt: skip
        floors = {"iid": r["reference"], "md": r["reference"]["md_true_force"]}
        baselines = {"iid": f"exact/reference samples, n = {r['reference']['n']}", "md": "same MD, true force"}
        for route in ("iid", "md"):
            entry = r["routes"][route]
            fe, floor = entry["fe_error_kT"], floors[route]["fe_error_kT"]
            records.append(_record.record(
                f"twoforone/{system}/{route}", fe, "kT (mean |dF| over populated bins)", baselines[route], floor,
                {**settings, **entry, "js_floor": floors[route]["js"], "sigma_table": r["sigma_table"]
                 if route == "md" else None},
                ratio=None if fe is None or floor is None else fe / floor,
            ))  # fmt: skip
    # merge: a run of some systems keeps the other systems' records
    path = _record.write("physics_twoforone.json", _record.merged("physics_twoforone.json", records))

    print(f"\nFree-energy error (kT, populated range) and JS divergence; aim: FE error < {AIM} kT")
    print(f"{'system':13s} {'route':5s} {'FE err':>7s} {'floor':>7s} {'JS':>7s} {'JS floor':>8s}  notes")
    for system, r in results.items():
        for route in ("iid", "md"):
            e = r["routes"][route]
            fl = r["reference"] if route == "iid" else r["reference"]["md_true_force"]
            note = (
                f"{e['sampler']} {e['steps']} steps"
                if route == "iid"
                else (f"sigma={e['sigma']:g}, tau_int={_f(e['tau_int'], '.1f')}, blown up {e['blown_up']:.1%}")
            )
            ok = "ok " if e["fe_error_kT"] is not None and e["fe_error_kT"] < AIM else "MISS"
            print(f"{system:13s} {route:5s} {_f(e['fe_error_kT']):>7s} {_f(fl['fe_error_kT']):>7s} "
                  f"{_f(e['js'], '.4f'):>7s} {_f(fl['js'], '.4f'):>8s}  {ok} {note}")  # fmt: skip
    print("\nMD over sigma (learned force):")
    print(f"{'system':13s} {'sigma':>6s} {'FE err':>7s} {'JS':>7s} {'tau_int':>8s} {'blown up':>9s}")
    for system, r in results.items():
        for row in r["sigma_table"]:
            print(f"{system:13s} {row['sigma']:6.2f} {_f(row['fe_error_kT']):>7s} {_f(row['js'], '.4f'):>7s} "
                  f"{_f(row['tau_int'], '.1f'):>8s} {row['blown_up']:9.1%}")  # fmt: skip
        t = r["reference"]["md_true_force"]
        print(f"{system:13s} {'true':>6s} {_f(t['fe_error_kT']):>7s} {_f(t['js'], '.4f'):>7s} "
              f"{_f(t['tau_int'], '.1f'):>8s} {t['blown_up']:9.1%}")  # fmt: skip
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
