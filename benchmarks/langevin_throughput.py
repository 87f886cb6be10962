"""Annealed Langevin throughput (particle-steps/s) in the exact mixture field: the fused paths
(Triton on CUDA; torch.compile and the chunked torch formulation on the CPU) against the eager
reference sampler, over N, D and K, in one run.

    python benchmarks/langevin_throughput.py --quick               # CPU sizes, well under a minute
    python benchmarks/langevin_throughput.py --device cuda         # the GPU sizes (N up to 1e7)

Writes benchmarks/results/langevin_throughput.json (quick_langevin_throughput.json with --quick).
"""

from __future__ import annotations

import argparse

import torch

from scoredyn.app.bench.suite import run_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CPU-sized run")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--results", default=None, help="folder for the JSON (default benchmarks/results)")
    args = parser.parse_args()
    records = run_suite(quick=args.quick, device=args.device, parts=["langevin"], results=args.results)
    for r in records:
        s = r["settings"]
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] else "-"
        print(f"{r['name']:18s} N={s['n']:>9,d} D={s['dim']:>2d} K={s['components']:>3d} "
              f"{r['value']:.3e} {r['unit']}  vs eager {ratio}")  # fmt: skip


if __name__ == "__main__":
    main()
