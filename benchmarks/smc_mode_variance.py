"""How much more than a fresh sample SMC's mode counts vary, over many seeds: the statistic behind the
mode-TV ratio, without its noise.

One run's mode-TV ratio spreads by about ±0.4, so a mean of three seeds cannot tell 1.3 from 1.5. The
variance inflation of the mode counts, ``sum_k (n_k - N p_k)^2 / (N p_k) / (K - 1)``, is 1 for exact
samples in expectation (Pearson's statistic over its degrees of freedom; ``p`` the exact mode
probabilities of ``metrics.exact``), and TV grows as its square root; its mean over S seeds has a
standard error of about ``inflation * sqrt(2 / ((K - 1) S))``. Each setting runs ``scoredyn``'s ``smc``
recipe with its knobs changed (``--kernel``, ``--target-ess``, ``--moves``), so it measures what the kernel
between levels, the levels and the moves a level do to the mode weights' error, and whether it grows with N
(a bias would).

    python benchmarks/smc_mode_variance.py [--target mog6] [--n 20000] [--seeds 20] [--kernel flow]
        [--target-ess 0.999] [--moves 8] [--first-seed 0] [--merge] [--dry]
    -> benchmarks/results/smc_mode_variance.json and one line on stdout
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import merged, record, write  # noqa: E402

from scoredyn.app.registry import SAMPLERS  # noqa: E402
from scoredyn.app.sampling import sample  # noqa: E402
from scoredyn.core.targets import mog6, mog10  # noqa: E402
from scoredyn.metrics.exact import mode_counts, mode_probabilities, mode_tv_floor  # noqa: E402
from scoredyn.samplers.smc import KERNELS  # noqa: E402

NAME = "smc_mode_variance.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", choices=("mog6", "mog10"), default="mog6")
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--target-ess", type=float, default=None, help="default: the recipe's")
    ap.add_argument("--moves", type=int, default=8, help="MALA moves a level (the sampler's steps)")
    ap.add_argument("--kernel", choices=KERNELS, default=None,
                    help="how particles go between levels (default: the recipe's)")
    ap.add_argument("--dry", action="store_true", help="print, write nothing")
    ap.add_argument("--merge", action="store_true", help="keep the file's other settings")
    args = ap.parse_args()
    target = {"mog6": mog6, "mog10": mog10}[args.target]()
    probabilities = mode_probabilities(target)
    p, floor = probabilities.p, mode_tv_floor(probabilities, args.n)[0]
    recipe = SAMPLERS["smc"].kwargs
    args.kernel = args.kernel or recipe["kernel"]
    args.target_ess = args.target_ess or recipe["target_ess"]
    inflation, tv, nfe = [], [], []
    clock = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        result, _ = sample(target, "smc", steps=args.moves, n=args.n, seed=seed, target_ess=args.target_ess,
                           kernel=args.kernel)
        counts = mode_counts(result.x, target).double()
        inflation.append(float(((counts - args.n * p) ** 2 / (args.n * p)).sum()) / (len(p) - 1))
        tv.append(0.5 * float((counts / args.n - p).abs().sum()) / floor)
        nfe.append(result.nfe)
    se = statistics.stdev(inflation) / len(inflation) ** 0.5 if len(inflation) > 1 else float("nan")
    summary = {"inflation_mean": statistics.fmean(inflation), "inflation_se": se,
               "mode_tv_ratio_mean": statistics.fmean(tv), "nfe_max": max(nfe),
               "seconds": time.perf_counter() - clock, "inflation": inflation, "mode_tv_ratio": tv}  # fmt: skip
    settings = {"target": args.target, "n": args.n, "seeds": [args.first_seed, args.first_seed + args.seeds],
                "target_ess": args.target_ess, "moves": args.moves, "kernel": args.kernel,
                **summary}  # fmt: skip
    name = (f"{args.target}/{args.n}/ess{args.target_ess}/moves{args.moves}/{args.kernel}"
            f"/seeds{args.first_seed}+{args.seeds}")
    records = [record(name, summary["inflation_mean"], "x a fresh sample's variance", None, None, settings)]
    write(NAME, merged(NAME, records) if args.merge else records) if not args.dry else None
    print(f"{name}: variance inflation {summary['inflation_mean']:.2f} (se {se:.2f}), mode-TV ratio "
          f"{summary['mode_tv_ratio_mean']:.2f}, nfe {summary['nfe_max']}, {summary['seconds']:.0f} s")  # fmt: skip


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
