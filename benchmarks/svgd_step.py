"""SVGD pairwise sums: the fused path (Triton on CUDA, chunked torch on the CPU) against the dense
N x N x D formulation, in one run (``scoredyn.app.bench.svgd.run``).

    python benchmarks/svgd_step.py                  # quick CPU sizes -> benchmarks/results/svgd_step.json
    python benchmarks/svgd_step.py --device cuda    # the full GPU sizes (N = 1e4 .. 1e6)
"""

from __future__ import annotations

import argparse

import torch

from scoredyn.app.bench.suite import run_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="CPU sizes (the default on the CPU)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # the CPU runs the quick sizes; they go to quick_svgd_step.json
    run_suite(quick=args.quick or args.device == "cpu", device=args.device, parts=["svgd"])


if __name__ == "__main__":
    main()
