"""Accuracy against cost: every sampler of scoredyn and diffusers' schedulers on the same exact
field, at NFE 5, 10, 20, 50, on mog6, mog10 (10-D), offcentre and rings.

Each run draws N particles from the exact p_{t_max} (the same start for peers and for us), and
is scored by energy distance and mode TV against fresh exact samples, as multiples of the
Monte-Carlo floor (1 = indistinguishable from exact sampling at this N).

diffusers' schedulers run their own loop on the DDPM schedule (linear betas, T = 1000); their
epsilon-predictor is the exact field evaluated at the noise level each scheduler steps on.

    python benchmarks/accuracy_vs_nfe.py [--n 5000] [--quick]
    -> benchmarks/results/accuracy_vs_nfe.json, and a Markdown table on stdout
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record, write  # noqa: E402

from scoredyn import AnalyticField, DDPMSchedule, evaluate, sample  # noqa: E402
from scoredyn.core.registry import resolve_target  # noqa: E402
from scoredyn.samplers import (
    start_distribution,  # noqa: E402
)

TARGETS = ("mog6", "mog10", "offcentre", "rings")
NFES = (5, 10, 20, 50)
METRICS = ("mode_tv", "energy")


@dataclass(frozen=True)
class Ours:
    """A scoredyn sampler; ``per_nfe`` turns an NFE budget into its step count."""

    label: str
    sampler: str
    per_nfe: int = 1  # evaluations per step (Heun: 2; PC with one corrector: 2)
    overrides: dict = field(default_factory=dict)

    def steps(self, nfe: int) -> int:
        return max(1, (nfe + self.per_nfe - 1) // self.per_nfe) if self.per_nfe > 1 else nfe


OURS = (
    Ours("unipc (ours, default)", "unipc"),
    Ours("dpm-solver-2m (ours, default)", "dpm-solver-2m"),
    Ours("unipc (ours, Karras grid)", "unipc", overrides={"process": "edm", "grid": "karras"}),
    Ours("unipc (ours, log-SNR grid)", "unipc", overrides={"process": "edm", "grid": "logsnr"}),
    Ours("ddim (ours)", "ddim"),
    Ours("edm-heun (ours)", "edm-heun", per_nfe=2),
    Ours("ode-euler (ours)", "ode-euler"),
    Ours("ddpm (ours)", "ddpm"),
    Ours("sde (ours)", "sde"),
    Ours("pc (ours)", "pc", per_nfe=2),
)


def _peer_schedulers():
    import diffusers

    return {
        "DDIMScheduler (trailing)": lambda: diffusers.DDIMScheduler(
            set_alpha_to_one=True, clip_sample=False, timestep_spacing="trailing"
        ),
        "DPMSolverMultistepScheduler (dpmsolver++, 2M)": lambda: diffusers.DPMSolverMultistepScheduler(
            algorithm_type="dpmsolver++", solver_order=2
        ),
        "DPMSolverMultistepScheduler (2M, Karras sigmas)": lambda: diffusers.DPMSolverMultistepScheduler(
            algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True
        ),
        "UniPCMultistepScheduler (bh2)": lambda: diffusers.UniPCMultistepScheduler(solver_type="bh2"),
        "UniPCMultistepScheduler (bh2, Karras sigmas)": lambda: diffusers.UniPCMultistepScheduler(
            solver_type="bh2", use_karras_sigmas=True
        ),
    }


def run_peer(make, target, nfe: int, n: int, seed: int):
    """diffusers' own loop; the model is the exact eps at the scheduler's current noise level."""
    process = DDPMSchedule()
    field = AnalyticField(target, process)
    sched = make()
    sched.set_timesteps(nfe)
    has_sigmas = hasattr(sched, "sigmas") and sched.sigmas is not None and len(sched.sigmas) > nfe
    k0 = float(sched.timesteps[0])
    t0 = (
        process.sigma_hat_to_t(torch.tensor([float(sched.sigmas[0])], dtype=torch.float64))[0]
        if has_sigmas
        else torch.tensor(k0 + 1.0, dtype=torch.float64)
    )
    gen = torch.Generator().manual_seed(seed)
    x = start_distribution("exact", process, t0, target=target).sample(n, gen)
    evals = 0
    for i, k in enumerate(sched.timesteps):
        if has_sigmas:
            # the noise-to-signal ratio this step uses, mapped to our time exactly
            t = process.sigma_hat_to_t(torch.tensor([float(sched.sigmas[i])], dtype=torch.float64))[0]
        else:
            t = torch.tensor(float(k) + 1.0, dtype=torch.float64)
        eps = field.eps(x, t)
        evals += 1
        x = sched.step(eps, k, x).prev_sample.to(torch.float64)
    return x, evals


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="NFE 5 and 10 on mog6 and mog10 only")
    args = ap.parse_args()
    torch.set_num_threads(2)
    targets = TARGETS[:2] if args.quick else TARGETS
    nfes = NFES[:2] if args.quick else NFES
    try:
        peers = _peer_schedulers()
    except ImportError:
        peers = {}
        print("diffusers not installed: peers skipped")
    rows, records = [], []
    for tname in targets:
        target = resolve_target(tname)
        for nfe in nfes:
            results = {}
            for o in OURS:
                t0 = time.perf_counter()
                res, settings = sample(target, o.sampler, steps=o.steps(nfe), n=args.n, seed=args.seed, **o.overrides)
                wall = time.perf_counter() - t0
                results[o.label] = (res.x, res.nfe, wall, settings)
            for label, make in peers.items():
                t0 = time.perf_counter()
                x, evals = run_peer(make, target, nfe, args.n, args.seed)
                results[label] = (x, evals, time.perf_counter() - t0, {"scheduler": label})
            for label, (x, used, wall, _settings) in results.items():
                ev = evaluate(x, target, seed=args.seed + 1, metrics=METRICS)
                row = {
                    "target": tname, "nfe_budget": nfe, "sampler": label, "nfe": used, "wall_s": wall,
                    "energy_x_floor": ev["energy"]["ratio"], "mode_tv_x_floor": ev["mode_tv"]["ratio"],
                    "energy": ev["energy"]["value"], "energy_floor": ev["energy"]["floor"],
                    "mode_tv": ev["mode_tv"]["value"], "mode_tv_floor": ev["mode_tv"]["floor"],
                }
                rows.append(row)
                print(f"{tname:9s} NFE {nfe:3d} {label:48s} nfe {used:4d}  energy x{row['energy_x_floor']:7.2f}"
                      f"  mode TV x{row['mode_tv_x_floor']:6.2f}", flush=True)
            best_peer = min(
                (r for r in rows if r["target"] == tname and r["nfe_budget"] == nfe and "(ours" not in r["sampler"]),
                key=lambda r: r["energy_x_floor"], default=None,
            )
            best_ours = min(
                (r for r in rows if r["target"] == tname and r["nfe_budget"] == nfe and "(ours" in r["sampler"]),
                key=lambda r: r["energy_x_floor"],
            )
            records.append(record(
                f"accuracy_{tname}_nfe{nfe}", best_ours["energy_x_floor"], "energy distance / MC floor",
                best_peer["sampler"] if best_peer else None, best_peer["energy_x_floor"] if best_peer else None,
                {"target": tname, "nfe": nfe, "n": args.n, "seed": args.seed, "ours": best_ours["sampler"]},
            ))
    records.append(record("accuracy_rows", None, "rows", None, None, {"rows": rows}))
    print("wrote", write("accuracy_vs_nfe.json" if not args.quick else "accuracy_vs_nfe_quick.json", records))
    print(markdown(rows))


def markdown(rows: list[dict]) -> str:
    """One table per target: sampler x NFE, cells 'energy / mode TV' as multiples of the floor."""
    out = []
    for tname in dict.fromkeys(r["target"] for r in rows):
        sub = [r for r in rows if r["target"] == tname]
        nfes = sorted({r["nfe_budget"] for r in sub})
        out += [f"\n**{tname}** (energy / mode TV, multiples of the Monte-Carlo floor)\n",
                "| sampler | " + " | ".join(f"NFE {k}" for k in nfes) + " |",
                "|---|" + "---:|" * len(nfes)]
        for label in dict.fromkeys(r["sampler"] for r in sub):
            cells = []
            for k in nfes:
                r = next(r for r in sub if r["sampler"] == label and r["nfe_budget"] == k)
                cells.append(f"{r['energy_x_floor']:.2f} / {r['mode_tv_x_floor']:.2f}")
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
