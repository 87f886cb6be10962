"""`scoredyn demo` wall time on this machine (the target: under 30 s on 2 CPU cores).

    python benchmarks/demo_time.py [--quick]   -> benchmarks/results/demo_time.json

A thin wrapper around ``scoredyn.app.bench.demo.run`` (also ``scoredyn bench --part demo``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scoredyn.app.bench.suite import run_suite  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run instead of the median of three")
    args = parser.parse_args()
    records = run_suite(quick=args.quick, device="cpu", parts=["demo"])  # quick: quick_demo_time.json
    for r in records:
        s = r["settings"]
        print(f"scoredyn demo: {r['value']:.1f} s (median of {s['repeats']}; target {s['target_s']:g} s)")
        for one in s["runs"]:
            print("  " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in one.items()))


if __name__ == "__main__":
    main()
