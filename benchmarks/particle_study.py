"""The particle-dynamics study's sweeps, checked by the numbers:

- (B) annealed Langevin: how the gap to the Monte-Carlo floor shrinks with steps per level;
- (C) SVGD: bandwidth factor x repulsion, deterministic and with Langevin noise, on mog6 and on
  the 10-D mixture mog10 (checking the claim that SVGD reaches TV <= 0.037 only with a broad kernel
  and strong repulsion, and collapses with weak repulsion).

    python benchmarks/particle_study.py [--n 1000]
    -> benchmarks/results/particle_study.json and Markdown tables on stdout
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record, write  # noqa: E402

from scoredyn.app.study import StudyRun, langevin_steps_sweep, run_study, svgd_sweep  # noqa: E402
from scoredyn.core.targets import mog6, mog10  # noqa: E402


def table(title: str, rows: list[dict]) -> str:
    lines = [f"\n**{title}**\n", "| run | n | mode TV (floor) | energy (floor) | dominant weight | NFE | wall s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['n']} | {r['mode_tv']['value']:.4f} ({r['mode_tv']['floor']:.4f}) | "
            f"{r['energy']['value']:.4f} ({r['energy']['floor']:.4f}) | {r['dominant_fraction']:.3f} | "
            f"{r['nfe']} | {r['wall_s']:.1f} |"
        )
    return "\n".join(lines)


def _progress(row: dict) -> None:
    print(f"  {row['label']}: mode TV {row['mode_tv']['value']:.4f} ({row['mode_tv']['floor']:.4f}), "
          f"energy {row['energy']['value']:.4f} ({row['energy']['floor']:.4f}), {row['wall_s']:.1f}s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    # one thread: these are many small tensor operations, which oversubscribed threads slow badly
    torch.set_num_threads(1)
    sections = {}
    for tname, target in (("mog6", mog6()), ("mog10", mog10())):
        sections[f"{tname}: (B) annealed Langevin, steps per level"] = run_study(
            target, langevin_steps_sweep(), 2 * args.n, args.seed, on_row=_progress
        )[0]
        sweep = svgd_sweep(n=args.n)
        noisy = [
            StudyRun(f"(C) h={b:g} sigma, repulsion {r:g}, with noise", "svgd", 100,
                     {"bandwidth_factor": b, "repulsion": r, "langevin_noise": True}, args.n)
            for b, r in ((1.0, 0.1), (2.0, 1.0))
        ]
        sections[f"{tname}: (C) SVGD, bandwidth x repulsion"] = run_study(
            target, sweep + noisy, args.n, args.seed, on_row=_progress
        )[0]
        for title, rows in sections.items():
            if title.startswith(tname):
                print(table(title, rows), flush=True)
    records = [record("particle_study", None, "rows", None, None, {"n": args.n, "seed": args.seed,
                                                                     "sections": sections})]
    print("wrote", write("particle_study.json", records))


if __name__ == "__main__":
    main()
