"""Two for one for alanine dipeptide: train a diffusion model on reference frames, then score its
i.i.d. samples and its learned-force MD against the reference Ramachandran distribution.

    python benchmarks/alanine_twoforone.py --reference DIR --out DIR [--steps 6000] [--quick]

DIR/alanine_reference.npz comes from benchmarks/alanine_reference.py (made with --ns if missing).
Frames are split by parity: even frames train the model (and give the i.i.d. Monte-Carlo floor, a
strided subset of n_iid frames), odd frames are the reference. MD walkers start from odd frames.
Writes OUT/compare.json, OUT/ramachandran_{iid,md,md_true}.png and
benchmarks/results/alanine_twoforone.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _record import record, write  # noqa: E402

from scoredyn.app.experiments.alanine_twoforone import SIGMAS, compare_alanine, train_alanine  # noqa: E402
from scoredyn.app.experiments.figures import ramachandran_figure  # noqa: E402
from scoredyn.app.viz import save_figure  # noqa: E402
from scoredyn.physics.alanine import AlanineSettings, openmm_reference  # noqa: E402
from scoredyn.util import atomic_write_json  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", required=True)
    p.add_argument("--ns", type=float, default=40.0, help="reference length used (made if missing), ns")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=6000, help="training steps")
    p.add_argument("--n-iid", type=int, default=5000)
    p.add_argument("--walkers", type=int, default=128)
    p.add_argument("--md-steps", type=int, default=8000)
    p.add_argument("--dt", type=float, default=0.0005, help="ps")
    p.add_argument("--friction", type=float, default=20.0, help="1/ps (1 heats up: see the module notes)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    s = AlanineSettings()
    n_frames = round(args.ns * 1000.0 / (s.timestep * s.save_every))
    tr = openmm_reference(n_frames, out_dir=args.reference, settings=s)
    x = torch.as_tensor(tr.x, dtype=torch.float64)
    train_x, ref_x = x[0::2], x[1::2]
    floor = train_x[np.linspace(0, len(train_x) - 1, args.n_iid).round().astype(int)]
    starts = ref_x[np.linspace(0, len(ref_x) - 1, args.walkers).round().astype(int)]
    out = Path(args.out)
    t0 = time.perf_counter()
    model, frame = train_alanine(train_x, out / "model", args.steps, args.seed)
    train_seconds = time.perf_counter() - t0
    result, angles = compare_alanine(
        model, frame, reference=ref_x, floor=floor, starts=starts, n_iid=args.n_iid, dt=args.dt,
        n_steps=args.md_steps, burn_in=args.md_steps // 4, friction=args.friction, seed=args.seed,
    )  # fmt: skip
    result["train"] = {"steps": args.steps, "frames": len(train_x), "seconds": train_seconds}
    atomic_write_json(out / "compare.json", result)
    best = result["routes"]["md"]["sigma"]
    save_figure(ramachandran_figure(angles["iid"], angles["reference"]), out / "ramachandran_iid.png")
    md_key = f"md_{best:g}"
    if angles[md_key].shape[0]:
        save_figure(ramachandran_figure(angles[md_key], angles["reference"]), out / "ramachandran_md.png")
    save_figure(ramachandran_figure(angles["md_true"], angles["reference"]), out / "ramachandran_md_true.png")
    print(json.dumps(result, indent=1))
    settings = {k: v for k, v in vars(args).items()} | {"sigmas": list(SIGMAS), "reference_frames": len(ref_x)}
    ref = result["reference"]
    write("alanine_twoforone.json", [
        record("alanine-iid-fe-error-kT", result["routes"]["iid"]["fe_error_kT"], "kT", "reference subset (MC floor)",
               ref["iid_floor"]["fe_error_kT"], settings),
        record("alanine-md-fe-error-kT", result["routes"]["md"]["fe_error_kT"], "kT", "OpenMM force, same MD",
               ref["md_true_force"]["fe_error_kT"], settings | {"sigma": best, "sigma_table": result["sigma_table"]}),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
