"""``evaluate`` at large N: wall time and peak memory of every metric on 10^6 exact samples of the
2-D ``mog6`` and the 10-D ``mog10``, against the dense V-statistics' cost extrapolated from a
timed N = 4096 run (N^2 pairs).

    python benchmarks/evaluate_large.py [--n 1000000]
    -> benchmarks/results/evaluate_large.json

Each configuration runs in a fresh subprocess so that its peak resident memory (VmHWM) is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record, write  # noqa: E402

CHILD = r"""
import json, sys, time, torch
from scoredyn.core.targets import mog6, mog10
from scoredyn.metrics import METRICS, evaluate
from scoredyn.metrics.distances import energy_distance
torch.set_num_threads(int(sys.argv[3]))
target = {"mog6": mog6, "mog10": mog10}[sys.argv[1]]()
n = int(sys.argv[2])
x = target.sample(n, torch.Generator().manual_seed(1))
t0 = time.perf_counter()
report = evaluate(x, target, seed=0)
wall = time.perf_counter() - t0
small = x[:4096]
t1 = time.perf_counter()
energy_distance(small, target.sample(4096, torch.Generator().manual_seed(2)))
dense_small = time.perf_counter() - t1
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
ratios = {k: v["ratio"] for k, v in report.items() if isinstance(v, dict) and "ratio" in v}
blocks = {k: v["blocks"] for k, v in report.items() if isinstance(v, dict) and "blocks" in v}
print(json.dumps({"wall_s": wall, "peak_mib": int(hwm) / 1024, "ratios": ratios, "blocks": blocks,
                  "dense_energy_4096_s": dense_small}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    records = []
    for name in ("mog6", "mog10"):
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, name, str(args.n), str(args.threads)],
            capture_output=True,
            text=True,
            check=True,
        )
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        # the dense energy distance is three N^2 pair sums: extrapolate its N = 4096 time by (N / 4096)^2
        dense = res["dense_energy_4096_s"] * (args.n / 4096) ** 2
        print(
            f"{name}: evaluate on {args.n:,} samples in {res['wall_s']:.1f}s, peak {res['peak_mib']:.0f} MiB; "
            f"dense energy alone would take ~{dense:,.0f}s; blocks {res['blocks']}",
            flush=True,
        )
        records.append(
            record(
                f"evaluate {name} N={args.n}",
                res["wall_s"],
                "s",
                "dense energy distance (extrapolated)",
                dense,
                {"n": args.n, "threads": args.threads, **res},
            )
        )
    print("wrote", write("evaluate_large.json", records))


if __name__ == "__main__":
    main()
