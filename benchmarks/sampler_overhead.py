"""Thin wrapper: ``scoredyn.app.bench.samplers.run`` writes benchmarks/results/sampler_overhead.json
(quick_sampler_overhead.json with --quick).

    python benchmarks/sampler_overhead.py [--quick] [--device cuda]
"""

from __future__ import annotations

import argparse

from scoredyn.app.bench.suite import run_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CPU-sized run")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    records = run_suite(quick=args.quick, device=args.device, parts=["samplers"])  # --quick: quick_*.json
    for r in records:
        print(f"{r['name']:36s} {r['value']:.4g} {r['unit']}  ({r['baseline']}: {r['baseline_value']:.4g})")


if __name__ == "__main__":
    main()
