"""Annealed Langevin throughput in the exact mixture field: the fused paths against the reference
sampler (``annealed_langevin`` with ``AnalyticField``), in one run, over N, D and K.

Throughput is ``particle-steps/s`` (particles x Langevin steps / second) at one noise level
(EDM, sigma = 1), particles in float32 started from the exact ``p_t``. Each record's settings hold
``n``, ``dim``, ``components``, ``steps`` and the seconds of the timed run, for time-against-N/D/K
plots. Fused backends: ``triton`` on CUDA; ``compile`` and ``torch`` (the chunked formulation,
uncompiled) on the CPU and, as a comparison, on CUDA.
"""

from __future__ import annotations

import torch

from ...core.fields import AnalyticField
from ...core.processes import EDM
from ...core.registry import resolve_target
from ...core.targets import GaussianMixture, random_mixture
from ...kernels import triton_runs_on
from ...samplers import annealed_langevin
from .record import best_time, record

__all__ = ["run"]

UNIT = "particle-steps/s"
BASELINE = "eager annealed_langevin(AnalyticField) (float64 field)"

#: Largest ``N K D`` for the eager reference: its float64 ``(K, D, N)`` intermediates (several
#: at once) must fit in memory; above it the record's baseline is left empty.
EAGER_MAX_NKD = {"cpu": 2e7, "cuda": 2e8}


def _target(dim: int, k: int) -> GaussianMixture:
    return resolve_target("mog6") if (dim, k) == (2, 6) else random_mixture(dim, k, seed=0)


def _cases(quick: bool, cuda: bool) -> list[tuple[int, int, int, int]]:
    """``(n, dim, components, steps)``: N-scaling on the 2-D 6-component mixture, then D and K."""
    if quick:
        cases = [(n, 2, 6, 5) for n in (10_000, 30_000, 100_000)]
        cases += [(10_000, 10, 6, 3), (2_000, 64, 6, 3), (10_000, 2, 100, 3), (2_000, 10, 100, 3), (1_000, 64, 100, 2)]
        return cases
    cases = [(n, 2, 6, 100) for n in (100_000, 1_000_000, 10_000_000)]
    for dim, k in ((10, 6), (64, 6), (2, 100), (10, 100), (64, 100)):
        cases += [(n, dim, k, 100 if dim * k <= 600 else 20) for n in (1_000_000, 10_000_000)]
    return cases if cuda else [c for c in cases if c[0] <= 1_000_000]


def _backends(quick: bool, cuda: bool, dim: int, k: int) -> list[str]:
    if cuda:
        fused = ["triton"] if triton_runs_on("cuda") else []
        return fused + (["compile"] if (dim, k) == (2, 6) else [])
    # compiling takes 5-20 s per mixture shape: the quick run compiles the 2-D case only
    return ["torch"] + (["compile"] if (dim, k) == (2, 6) or not quick else [])


def run(*, quick: bool, device: str, results=None) -> list[dict]:
    """Time the fused backends and the eager reference; return records (the suite writes them;
    ``results`` unused)."""
    device = str(device)
    cuda = torch.device(device).type == "cuda"
    process = EDM()
    grid = process.sigma_hat_to_t(torch.tensor([1.0], dtype=torch.float64))  # one level, sigma = 1
    repeats = 2 if quick else 5
    records = []
    for n, dim, k, steps in _cases(quick, cuda):
        target = _target(dim, k)
        g = torch.Generator().manual_seed(0)
        x = target.noised(process, grid[0]).sample(n, g).to(device=device, dtype=torch.float32)
        settings = {"n": n, "dim": dim, "components": k, "steps": steps, "levels": 1, "sigma": 1.0,
                    "dtype": "float32", "target": target.name}  # fmt: skip

        def timed(backend, x=x, target=target, steps=steps):
            field = AnalyticField(target, process)
            gen = torch.Generator(device=device).manual_seed(0)  # noise drawn where the particles are
            fn = lambda: annealed_langevin(field, x, grid, steps_per_level=steps, backend=backend, generator=gen)  # noqa: E731
            return best_time(fn, repeats=repeats, warmup=1, device=device)

        base = None
        if n * k * dim <= EAGER_MAX_NKD["cuda" if cuda else "cpu"]:
            seconds = timed("eager")
            base = n * steps / seconds
            records.append(record("langevin/eager", base, UNIT, None, None,
                                  {**settings, "backend": "eager", "seconds": seconds}, device=device))  # fmt: skip
        for backend in _backends(quick, cuda, dim, k):
            seconds = timed(backend)
            value = n * steps / seconds
            ratio = value / base if base else None
            extra = {**settings, "backend": backend, "seconds": seconds}
            rec = record(f"langevin/{backend}", value, UNIT, BASELINE, base, extra, ratio=ratio, device=device)
            records.append(rec)
    return records
