"""Reference MD of alanine dipeptide in vacuum (OpenMM, amber14): the trajectory the Ramachandran
checks compare against, its speed, and its convergence by block averages.

    python benchmarks/alanine_reference.py --out DIR --ns 20 [--seed 0] [--subset PATH] [--record]

Writes DIR/alanine_reference.npz (+ .json) through ``scoredyn.physics.alanine.openmm_reference``,
prints steps/s, basin populations and their block averages; ``--subset`` also writes the small
test set (the one shipped as src/scoredyn/physics/data/alanine_subset.npz); ``--record`` writes a
benchmark record of the speed to benchmarks/results/alanine_reference.json.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from _record import record, write  # noqa: E402

from scoredyn.physics.alanine import (
    AlanineSettings,
    basin_populations,
    block_populations,
    openmm_reference,
    write_subset,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for alanine_reference.npz")
    p.add_argument("--ns", type=float, default=20.0, help="simulated time after equilibration, ns")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--blocks", type=int, default=10)
    p.add_argument("--subset", default=None, help="also write the test subset here")
    p.add_argument("--record", action="store_true", help="write benchmarks/results/alanine_reference.json")
    args = p.parse_args()
    if not args.ns > 0:
        p.error(f"--ns must be positive, got {args.ns}")
    s = AlanineSettings(seed=args.seed)
    n_frames = round(args.ns * 1000.0 / (s.timestep * s.save_every))
    tr = openmm_reference(n_frames, out_dir=args.out, settings=s, progress=True)
    summary = {
        "frames": int(tr.x.shape[0]),
        "ns": float(tr.time_ps[-1] / 1000.0),
        "steps_per_second": tr.settings["steps_per_second"],
        "populations": basin_populations(tr.angles),
        "blocks": block_populations(tr.angles, args.blocks),
    }
    print(json.dumps(summary, indent=2))
    if args.subset:
        write_subset(tr, args.subset)
    if args.record:
        rate = tr.settings["steps_per_second"]
        write("alanine_reference.json", [record("alanine-openmm-steps", rate, "steps/s", None, None, tr.settings)])


if __name__ == "__main__":
    main()
