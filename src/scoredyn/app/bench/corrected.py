"""The corrected particle samplers' throughput beside annealed Langevin's, in the exact mixture field:
annealed MALA and SMC evaluate the score and the density together (one pass: the density is the
log-sum-exp the score's softmax needs anyway; ``kernels.mixture_score_log_prob`` compiled on CUDA, the
exact field's own pass on the CPU), annealed Langevin kicks with its default path (the fused Triton
kernel on CUDA, the field's loop on the CPU). One run, the same particles, mixtures and devices.

Throughput is ``particle-steps/s``: particles x evaluations per particle (the samplers' ``nfe``) /
second; the ratio is against annealed Langevin's default path at the same N, D and K. A MALA step is a
kick, a density evaluation and a test; an SMC level adds the flow step with its score Jacobian (counted
as one evaluation), the weights, the resampling (a Hilbert sort) and the adaptive search.
"""

from __future__ import annotations

import torch

from ...core.fields import AnalyticField
from ...core.processes import EDM, VP
from ...core.registry import resolve_target
from ...core.targets import random_mixture
from ...kernels import triton_runs_on
from ...samplers import annealed_langevin, annealed_mala, end_points_grid, geometric_sigma_grid, smc, start_distribution
from .record import best_time, record

__all__ = ["run"]

UNIT = "particle-steps/s"


def _cases(quick: bool, cuda: bool) -> list[tuple[int, int, int]]:
    """``(n, dim, components)``."""
    if quick:
        return [(20_000, 2, 6), (20_000, 10, 8)]
    sizes = (100_000, 1_000_000) + ((10_000_000,) if cuda else ())
    return [(n, d, k) for n in sizes for d, k in ((2, 6), (10, 8))]


def _runs(target, n: int, device: str, langevin_backend: str, levels: int = 5, steps: int = 20) -> dict:
    """The three samplers on ``n`` float32 particles of the mixture ``target``, each a callable."""
    g = torch.Generator().manual_seed(0)
    ladder, vp = geometric_sigma_grid(EDM(), levels), VP()
    x_ladder = start_distribution("ladder", EDM(), ladder[0], dim=target.dim).sample(n, g).to(device, torch.float32)
    start = start_distribution("standard", vp, 1.0, dim=target.dim)
    x_vp = start.sample(n, g).to(device, torch.float32)
    return {
        "annealed-langevin": lambda: annealed_langevin(AnalyticField(target, EDM()), x_ladder, ladder,
                                                       steps_per_level=steps, backend=langevin_backend,
                                                       generator=torch.Generator(device).manual_seed(0)),
        "annealed-mala": lambda: annealed_mala(AnalyticField(target, EDM()), x_ladder, ladder,
                                               steps_per_level=steps - 1,
                                               generator=torch.Generator(device).manual_seed(0)),
        "smc": lambda: smc(AnalyticField(target, vp), x_vp, end_points_grid(vp), start=start, kernel="flow",
                           steps_per_level=4, target_ess=0.9, final_steps=20,
                           generator=torch.Generator(device).manual_seed(0)),
    }  # fmt: skip


def run(*, quick: bool, device: str, results=None) -> list[dict]:
    """Time annealed Langevin, annealed MALA and SMC; return records (``results`` unused)."""
    device = str(device)
    cuda = torch.device(device).type == "cuda"
    langevin_backend = ("triton" if triton_runs_on(device) else "compile") if cuda else "eager"
    repeats = 2 if quick else 3
    records = []
    for n, dim, k in _cases(quick, cuda):
        target = resolve_target("mog6") if (dim, k) == (2, 6) else random_mixture(dim, k, seed=0, mean_scale=5.0)
        settings = {"n": n, "dim": dim, "components": k, "dtype": "float32", "target": target.name}
        base = None
        for name, fn in _runs(target, n, device, langevin_backend).items():
            nfe = fn().nfe  # also the warm-up
            seconds = best_time(fn, repeats=repeats, warmup=0, device=device)
            value = n * nfe / seconds
            if name == "annealed-langevin":
                base = value
            extra = {**settings, "sampler": name, "nfe": nfe, "seconds": seconds}
            baseline = None if name == "annealed-langevin" else f"annealed-langevin ({langevin_backend})"
            records.append(record(f"corrected/{name}", value, UNIT, baseline, None if baseline is None else base,
                                  extra, ratio=None if baseline is None else value / base, device=device))  # fmt: skip
    return records
