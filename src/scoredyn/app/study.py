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
from ..samplers import svgd
from ..samplers.grid_tuning import COEFFICIENT_ITERATIONS
from .registry import resolve_sampler, steps_for_nfe
from .sampling import sample
from .tuning import QUICK_TUNING, nfe_for_steps, quick_grid

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
    """One row of the study: a label, a sampler name, its step count and knobs (sampler knobs, or
    ``process`` / ``grid`` names that override the sampler's defaults)."""

    label: str
    sampler: str
    steps: int
    knobs: dict = field(default_factory=dict)
    n: int | None = None  # overrides the study's particle count (SVGD is quadratic in n)
    short: str = ""  # a panel title for the sample clouds (default: the label)


# SVGD is often said to reach mode TV <= 0.037 here only with a broader kernel and stronger repulsion,
# and to collapse with weak repulsion. The sweep (svgd_sweep, benchmarks/particle_study.py) finds the
# collapse, but the best setting is a broad kernel (h = 2 sigma) with repulsion 1; repulsion 10
# over-spreads. SVGD is O(N^2) per step, so its rows use fewer particles.
SVGD_BROAD = {"bandwidth_factor": 2.0, "repulsion": 1.0}
SVGD_WEAK = {"bandwidth_factor": 1.0, "repulsion": 0.1}
SVGD_N = 1000

# Song et al. 2021's probability-flow ODE (eq. 13) on their VP process, solved with Heun on a grid uniform
# in t: Song et al.'s own grid for VP, and on the exact mog6 field the best of uniform, log-SNR and Karras
# for Heun on VP (energy / floor 2.2 against 2.9 and 2.9 at 39 NFE, 4.4 against 12 and 13 at 19; mean of
# 3 seeds, N = 4000). EDM Heun (Karras et al. 2022, Alg. 2, no churn) is the same ODE written on the EDM
# process with a Karras grid, so the two rows compare two processes and grids, not two solvers.
PF_ODE_VP = {"process": "vp", "grid": "uniform"}

MAIN_RUNS: tuple[StudyRun, ...] = (
    StudyRun("(A) score-only drift", "score-drift", 100, short="(A) score drift"),
    StudyRun("(B) annealed Langevin", "annealed-langevin", 100, short="(B) annealed Langevin"),
    StudyRun("(B) + Metropolis test: annealed MALA", "annealed-mala", 100, short="(B) + MALA"),
    StudyRun("(B) + weights: SMC over noise levels", "smc", 8, short="(B) + SMC"),
    StudyRun("(C) SVGD, broad kernel h = 2 sigma, repulsion 1", "svgd", 100, SVGD_BROAD, SVGD_N, "(C) SVGD, h = 2σ"),
    StudyRun("(C) SVGD, h = sigma, weak repulsion 0.1", "svgd", 100, SVGD_WEAK, SVGD_N, "(C) SVGD, weak repulsion"),
    StudyRun("(C) + median bandwidth, step over the kernel mass", "svgd-median", 100, {}, SVGD_N, "(C) SVGD, median h"),
    StudyRun("Langevin, no annealing", "langevin", 1000, short="Langevin, no annealing"),
    StudyRun("DDPM ancestral", "ddpm", 1000, short="DDPM"),
    StudyRun("DDIM", "ddim", 50, short="DDIM"),
    StudyRun("reverse SDE (Euler–Maruyama)", "sde", 500, short="reverse SDE"),
    StudyRun("predictor–corrector", "pc", 250, short="predictor–corrector"),
    StudyRun("PF-ODE Euler", "ode-euler", 100, short="PF-ODE Euler"),
    StudyRun("PF-ODE Heun on VP (Song et al. 2021)", "ode-heun", 20, PF_ODE_VP, short="PF-ODE Heun, VP"),
    StudyRun("PF-ODE adaptive (dopri5)", "ode-adaptive", 10, short="PF-ODE dopri5"),
    StudyRun("EDM Heun", "edm-heun", 20, short="EDM Heun"),
    StudyRun("DPM-Solver++(2M)", "dpm-solver-2m", 10, short="DPM-Solver++(2M)"),
    StudyRun("UniPC (bh2)", "unipc", 10, short="UniPC"),
    StudyRun("UniPC (bh2), 5 evaluations", "unipc", 5, short="UniPC, 5 NFE"),
    StudyRun("UniPC (bh2), 5 evaluations, tuned grid", "unipc", 5, {"grid": "tuned"}, short="UniPC, 5 NFE, tuned"),
    StudyRun("multistep, 5 evaluations, fitted grid and coefficients", "multistep", 5, {"grid": "tuned"},
             short="multistep, 5 NFE, fitted"),
)

# The accuracy-against-cost sweep: each diffusion sampler of MAIN_RUNS (as it runs there) at growing
# budgets, scored on two cheap metrics (the adaptive ODE picks its own NFE, so it is left out).
SWEEP_SAMPLERS: tuple[tuple[str, str, dict], ...] = (
    ("DDPM", "ddpm", {}),
    ("DDIM", "ddim", {}),
    ("reverse SDE", "sde", {}),
    ("predictor–corrector", "pc", {}),
    ("PF-ODE Euler", "ode-euler", {}),
    ("PF-ODE Heun, VP", "ode-heun", PF_ODE_VP),
    ("EDM Heun", "edm-heun", {}),
    ("DPM-Solver++(2M)", "dpm-solver-2m", {}),
    ("UniPC", "unipc", {}),
)
SWEEP_BUDGETS = (5, 10, 20, 50, 100, 200)
# both one-sample, against the exact law: no reference draw adds its noise, and they are the cheapest
SWEEP_METRICS = ("energy_exact", "mode_tv_exact")
SWEEP_N = 500  # per point: enough to rank the samplers, and cheap (the floor scales with it)


def accuracy_sweep(budgets: Iterable[int] = SWEEP_BUDGETS, n: int = SWEEP_N) -> list[StudyRun]:
    """Each of ``SWEEP_SAMPLERS`` at each budget (NFE); ``short`` names the sampler (one line of the
    figure), the label adds the budget."""
    return [
        StudyRun(f"{name}, {b} NFE", sampler, steps_for_nfe(sampler, b), knobs, n, name)
        for name, sampler, knobs in SWEEP_SAMPLERS
        for b in budgets
    ]


def sweep_points(rows: Iterable[dict], budgets: Iterable[int] = SWEEP_BUDGETS) -> list[dict]:
    """The sweep's rows as the points of the accuracy figure (and of ``table.json``): the sampler's
    name, its budget and NFE, process and grid, and each metric's value, floor and ratio."""
    budgets = sorted(budgets)
    points = []
    for r in rows:
        budget = next((b for b in budgets if steps_for_nfe(r["sampler"], b) == r["steps"]), r["nfe"])
        point = {"series": r.get("short") or r["label"], "sampler": r["sampler"], "steps": r["steps"],
                 "nfe_budget": budget, "nfe": r["nfe"], "n": r["n"], "wall_s": r["wall_s"],
                 "process": r["settings"]["process"], "grid": r["settings"]["grid"]}  # fmt: skip
        keep = ("value", "floor", "ratio", "ratio_ci")
        point.update({m: {k: r[m][k] for k in keep} for m in SWEEP_METRICS if m in r})
        points.append(point)
    return points


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
    row = {"label": run.label, "short": run.short or run.label, "sampler": run.sampler, "steps": run.steps,
           "knobs": run.knobs, "n": n}  # fmt: skip
    row.update({m: scores[m] for m in metrics})
    row.update({"nfe": result.nfe, "wall_s": wall, "settings": settings})
    row["dominant_fraction"] = float(scores["mode_weights"][int(target.weights.argmax())])
    return row, result.x


def run_cost(run: StudyRun, n: int, levels: int = 10) -> float:
    """A rough cost of a row, to start the costliest first: particles x field evaluations, times
    the particles again for SVGD (its pairwise sums are ``O(N^2)`` per step), plus a tuned grid's
    tuning (``QUICK_TUNING``: its evaluations of the sampler on its own particles), which otherwise
    leaves a row that looks cheap to run last, alone."""
    n = min(run.n, n) if run.n else n
    recipe = resolve_sampler(run.sampler)
    nfe = run.steps * (levels if recipe.per_level else 1)
    cost = float(nfe * n * (n / 100.0 if recipe.fn is svgd else 1.0))  # svgd and svgd-median
    if run.knobs.get("grid") == "tuned":  # each candidate grid is run, then scored (~20 evaluations' worth)
        nfe = nfe_for_steps(run.sampler, run.steps)
        cost += QUICK_TUNING["evaluations"] * (nfe + TUNING_SCORE_COST) * QUICK_TUNING["n"]
        if run.sampler == "multistep":  # its coefficients' fit: a forward and a backward pass an iteration
            cost += COEFFICIENT_ITERATIONS * nfe * 3 * QUICK_TUNING["n"]
    return cost


#: scoring a candidate grid while tuning costs about as much as this many field evaluations of its
#: particles (measured on mog6: the tuned row's 3 s against annealed Langevin's 1 s at 2 M evaluations)
TUNING_SCORE_COST = 20


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


def _score_run_numpy(
    target: GaussianMixture, run: StudyRun, n: int, seed: int, metrics: tuple[str, ...]
) -> tuple[dict, object]:
    """``score_run`` in a worker: the samples go back as a NumPy array (plain pickling, no shared
    memory handles)."""
    row, x = score_run(target, run, n, seed, metrics)
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
    metrics: Iterable[str] = STUDY_METRICS,
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
        metrics: the metrics each row is scored on (``metrics.METRICS`` names).
    """
    runs = list(runs)
    metrics = tuple(metrics)
    results: dict[int, tuple[dict, torch.Tensor]] = {}

    def finished(i: int, row: dict, x: torch.Tensor) -> None:
        results[i] = (row, x)
        if on_row is not None:
            on_row(row)
        if on_samples is not None:
            on_samples(row["label"], x)

    if pool is None:
        for i, run in enumerate(runs):
            finished(i, *score_run(target, run, n, seed, metrics))
    else:
        key = order if order is not None else (lambda r: -run_cost(r, n))
        start = sorted(range(len(runs)), key=lambda i: key(runs[i]))  # stable: ties keep their order
        futures: dict[Future, int] = {
            pool.submit(_score_run_numpy, target, runs[i], n, seed, metrics): i for i in start
        }
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


# --- reading the rows: the rule of the floor, and the words and numbers the tables show ----------------

#: The metrics that decide whether a row is within the floor: those with a standard error (sliced W1
#: has none, so its ratio is shown but cannot be tested).
FLOOR_RULE_METRICS = ("mode_tv_exact", "mode_tv", "energy")

SECTION_TITLES = {
    "main": "All samplers",
    "langevin_steps": "(B) annealed Langevin: steps per noise level",
    "svgd_sweep": "(C) SVGD: kernel bandwidth × repulsion",
}


def within_floor(entry: dict) -> bool | None:
    """Whether a metric's value is within its floor: the 95% interval of ``value / floor`` (the
    value's standard error, ``metrics.ratio_interval``) reaches down to 1, i.e. ``value - 1.96 se <=
    floor``, so at this N the run cannot be told from exact sampling by this metric. ``None`` where
    the entry has no interval."""
    ci = entry.get("ratio_ci")
    return None if ci is None else bool(ci[0] <= 1.0)


def row_within_floor(row: dict) -> bool:
    """Whether every metric of ``FLOOR_RULE_METRICS`` that the row has an interval for is within the
    floor (``within_floor``), and there is at least one."""
    verdicts = [within_floor(row[m]) for m in FLOOR_RULE_METRICS if isinstance(row.get(m), dict)]
    verdicts = [v for v in verdicts if v is not None]
    return bool(verdicts) and all(verdicts)


def section_title(name: str, n: int) -> str:
    """A table's heading in words (``"main"`` -> ``"All samplers, N = 2,000"``)."""
    if name in SECTION_TITLES:
        return f"{SECTION_TITLES[name]}, N = {n:,}"
    if name.startswith("large N"):
        return f"(A), (B) and (B)'s corrections at {name.removeprefix('large ')}"
    return name.replace("_", " ").capitalize()


def run_setup(row: dict) -> tuple[str, str, str]:
    """``(process, grid, steps)`` of a row as it ran (from its settings): the steps of the annealed
    particle samplers read ``100 × 10 levels``, SMC's ``8 per level, adaptive``."""
    settings = row.get("settings") or {}
    steps, levels = row["steps"], settings.get("levels")
    recipe = resolve_sampler(row["sampler"])
    if recipe.adaptive:
        text = f"{steps} per level, adaptive"
    elif levels:
        text = f"{steps} × {levels} levels"
    else:
        text = str(steps)
    return str(settings.get("process", "")), str(settings.get("grid", "")), text


def significant(x: float | None, digits: int = 3) -> str:
    """``x`` to ``digits`` significant figures, trailing zeros kept so that a column reads alike
    (``0.0200`` beside ``0.0195``; ``3.62``; ``463``; ``1,250``); ``""`` for None."""
    if x is None:
        return ""
    x = float(x)
    if x == 0 or x != x or abs(x) == float("inf"):
        return f"{x:g}".replace("-0", "0")
    if abs(x) >= 10**digits:
        return f"{x:,.0f}"
    text = f"{x:#.{digits}g}"
    return text if "e" in text else text.rstrip(".")


def ratio_text(ratio: float | None) -> str:
    """A ratio to 2 decimals (``0.91``, ``462.91``, ``1,350.74``); ``""`` for None."""
    return "" if ratio is None else f"{ratio:,.2f}"
