"""The particle-dynamics study behind ``scoredyn demo``.

On the exact ``mog6`` field it runs (A) score-only drift, (B) annealed Langevin and (C) annealed
SVGD on one budget (geometric sigmas 10 -> 0.05, 10 levels, 100 steps per level, ``eta = 0.5
sigma^2``: Song & Ermon's annealed ladder), beside them the two corrections of (B) that use the density
(annealed MALA on the same ladder; SMC, which reweights, on its own adaptive ladder within the same
budget), then every diffusion sampler, and scores each run against
fresh exact samples and the exact law, beside the floor. Optional sweeps: steps per level for (B), and
bandwidth x repulsion for (C). Rows in, rows out; the CLI renders them.

The rows are independent (each draws from its own seeded generator), so ``run_study`` can run them
in worker processes (``study_pool``), costliest first, and give the same rows in the same order.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import torch

from ..core.targets import GaussianMixture
from ..metrics import evaluate
from .registry import resolve_sampler
from .sampling import sample
from .tuning import nfe_for_steps, quick_grid

__all__ = [
    "StudyRun",
    "MAIN_RUNS",
    "run_study",
    "run_cost",
    "study_pool",
    "default_workers",
    "langevin_steps_sweep",
    "svgd_sweep",
]

# mode_tv_exact: the TV to the probabilities that exact samples are assigned with (mode TV to the
# mixture's weights, without the assignment rule's own error); mode_tv: the two-sample version
STUDY_METRICS = ("mode_tv_exact", "mode_tv", "energy", "sliced_w1")


@dataclass(frozen=True)
class StudyRun:
    """One row of the study: a label, a sampler name, its step count and knobs."""

    label: str
    sampler: str
    steps: int
    knobs: dict = field(default_factory=dict)
    n: int | None = None  # overrides the study's particle count (SVGD is quadratic in n)


# SVGD is often said to reach mode TV <= 0.037 here only with a broader kernel and stronger repulsion,
# and to collapse with weak repulsion. The sweep (svgd_sweep, benchmarks/particle_study.py) finds the
# collapse, but the best setting is a broad kernel (h = 2 sigma) with repulsion 1; repulsion 10
# over-spreads. SVGD is O(N^2) per step, so its rows use fewer particles.
SVGD_BROAD = {"bandwidth_factor": 2.0, "repulsion": 1.0}
SVGD_WEAK = {"bandwidth_factor": 1.0, "repulsion": 0.1}
SVGD_N = 1000

MAIN_RUNS: tuple[StudyRun, ...] = (
    StudyRun("(A) score-only drift", "score-drift", 100),
    StudyRun("(B) annealed Langevin", "annealed-langevin", 100),
    StudyRun("(B) + Metropolis test: annealed MALA", "annealed-mala", 100),
    StudyRun("(B) + weights: SMC over noise levels", "smc", 8),
    StudyRun("(C) SVGD, broad kernel h = 2 sigma, repulsion 1", "svgd", 100, SVGD_BROAD, SVGD_N),
    StudyRun("(C) SVGD, h = sigma, weak repulsion 0.1", "svgd", 100, SVGD_WEAK, SVGD_N),
    StudyRun("(C) + median bandwidth, step over the kernel mass", "svgd-median", 100, {}, SVGD_N),
    StudyRun("Langevin, no annealing", "langevin", 1000),
    StudyRun("DDPM ancestral", "ddpm", 1000),
    StudyRun("DDIM", "ddim", 50),
    StudyRun("reverse SDE (Euler–Maruyama)", "sde", 500),
    StudyRun("predictor–corrector", "pc", 250),
    StudyRun("PF-ODE Euler", "ode-euler", 100),
    StudyRun("PF-ODE Heun", "ode-heun", 20),
    StudyRun("PF-ODE adaptive (dopri5)", "ode-adaptive", 10),
    StudyRun("EDM Heun", "edm-heun", 20),
    StudyRun("DPM-Solver++(2M)", "dpm-solver-2m", 10),
    StudyRun("UniPC (bh2)", "unipc", 10),
    StudyRun("UniPC (bh2), 5 evaluations", "unipc", 5),
    StudyRun("UniPC (bh2), 5 evaluations, tuned grid", "unipc", 5, {"grid": "tuned"}),
)



def score_run(
    target: GaussianMixture, run: StudyRun, n: int, seed: int, metrics: Iterable[str] = STUDY_METRICS
) -> tuple[dict, torch.Tensor]:
    """Run one row and score it: each metric against fresh exact samples, beside its floor."""
    n = min(run.n, n) if run.n else n  # a row may ask for fewer particles (SVGD is O(N^2)), never more
    t0 = time.perf_counter()
    knobs = dict(run.knobs)
    if knobs.get("grid") == "tuned":  # tuned here, on other starts, and its time counted in the row's
        knobs["grid"] = quick_grid(target, run.sampler, nfe_for_steps(run.sampler, run.steps), seed)
    result, settings = sample(target, run.sampler, steps=run.steps, n=n, seed=seed, **knobs)
    wall = time.perf_counter() - t0
    scores = evaluate(result.x, target, seed=seed + 1, metrics=tuple(metrics))
    row = {"label": run.label, "sampler": run.sampler, "steps": run.steps, "knobs": run.knobs, "n": n}
    row.update({m: scores[m] for m in metrics})
    row.update({"nfe": result.nfe, "wall_s": wall, "settings": settings})
    row["dominant_fraction"] = float(scores["mode_weights"][int(target.weights.argmax())])
    return row, result.x


def run_cost(run: StudyRun, n: int, levels: int = 10) -> float:
    """A rough cost of a row, to start the costliest first: particles x field evaluations, times
    the particles again for SVGD (its pairwise sums are ``O(N^2)`` per step)."""
    n = min(run.n, n) if run.n else n
    nfe = run.steps * (levels if resolve_sampler(run.sampler).per_level else 1)
    return float(nfe * n * (n / 100.0 if run.sampler == "svgd" else 1.0))


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(max_workers: int = 4) -> int:
    """Worker processes for the study: one per available core, at most ``max_workers`` (the
    study's two SVGD rows make up most of its cost, so more workers than that gain little)."""
    return max(1, min(available_cores(), max_workers))


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def study_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` processes for ``run_study``, started now, each with its share of the cores as
    torch threads. On Linux they are forked: they share the parent's imports (no second start-up
    of torch), and forking before any thread of the parent starts (a progress bar, a figure
    renderer) is what keeps that safe, so create the pool first. Use it as a context manager."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    threads = max(1, available_cores() // workers)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method), initializer=_init_worker,
                               initargs=(threads,))  # fmt: skip
    pool.submit(int).result()  # start the workers now (a fork pool starts them all at its first task)
    return pool


def _score_run_numpy(target: GaussianMixture, run: StudyRun, n: int, seed: int) -> tuple[dict, object]:
    """``score_run`` in a worker: the samples go back as a NumPy array (plain pickling, no shared
    memory handles)."""
    row, x = score_run(target, run, n, seed)
    return row, x.detach().cpu().numpy()


def run_study(
    target: GaussianMixture,
    runs: Iterable[StudyRun],
    n: int,
    seed: int = 0,
    on_row: Callable[[dict], None] | None = None,
    *,
    pool: ProcessPoolExecutor | None = None,
    order: Callable[[StudyRun], object] | None = None,
    on_samples: Callable[[str, torch.Tensor], None] | None = None,
) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """Every row of ``runs`` on ``target``; returns the rows (in the order of ``runs``) and the
    samples by label.

    Args:
        target: the exact mixture.
        runs: the rows.
        n: particles per row (a row may ask for fewer).
        seed: every row's seed (rows are independent: each has its own generator).
        on_row: called with each row as it finishes (in finishing order with a pool).
        pool: run the rows in these worker processes (``study_pool``), ``order`` first; the rows
            and samples are those of a run without a pool.
        order: sort key of the rows' start order in the pool; by default the costliest
            (``run_cost``) first, which keeps the workers busy until the end.
        on_samples: called with each row's label and samples as it finishes.
    """
    runs = list(runs)
    results: dict[int, tuple[dict, torch.Tensor]] = {}

    def finished(i: int, row: dict, x: torch.Tensor) -> None:
        results[i] = (row, x)
        if on_row is not None:
            on_row(row)
        if on_samples is not None:
            on_samples(row["label"], x)

    if pool is None:
        for i, run in enumerate(runs):
            finished(i, *score_run(target, run, n, seed))
    else:
        key = order if order is not None else (lambda r: -run_cost(r, n))
        start = sorted(range(len(runs)), key=lambda i: key(runs[i]))  # stable: ties keep their order
        futures: dict[Future, int] = {pool.submit(_score_run_numpy, target, runs[i], n, seed): i for i in start}
        try:
            for fut in as_completed(futures):
                row, x = fut.result()
                finished(futures[fut], row, torch.from_numpy(x))
        except BaseException:
            for fut in futures:  # a failed row (or Ctrl-C) stops the rest
                fut.cancel()
            raise
    rows = [results[i][0] for i in range(len(runs))]
    samples = {runs[i].label: results[i][1] for i in range(len(runs))}
    return rows, samples


def langevin_steps_sweep(steps_per_level: Iterable[int] = (10, 30, 100, 300, 1000)) -> list[StudyRun]:
    """(B) at growing budgets: how the remaining gap to the floor shrinks with steps per level."""
    return [StudyRun(f"(B) {s} steps/level", "annealed-langevin", s) for s in steps_per_level]


def svgd_sweep(
    bandwidth_factors: Iterable[float] = (0.5, 1.0, 2.0, 4.0),
    repulsions: Iterable[float] = (0.1, 1.0, 10.0),
    steps: int = 100,
    n: int | None = None,
) -> list[StudyRun]:
    """(C) over a bandwidth-factor x repulsion grid at the study's budget."""
    return [
        StudyRun(f"(C) h={b:g} sigma, repulsion {r:g}", "svgd", steps, {"bandwidth_factor": b, "repulsion": r}, n)
        for b in bandwidth_factors
        for r in repulsions
    ]
