"""``optimize_grid``: a time grid tuned for a target (or a checkpoint), a named few-step sampler and a
number of evaluations, and the grid file that carries it to ``sample``.

The search itself is ``samplers.grid_tuning`` (GITS's dynamic program, then Nelder–Mead on the
sampler's whole run against the converged probability-flow ODE). This module names things: which
samplers a grid can be tuned for and how their steps count evaluations, the start law the particles
are drawn from (the same one ``sample`` uses), and the JSON file: the process, the sampler, the
evaluations, the times and how they were found. A grid file is checked against the run that reads it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..core.registry import resolve_process
from ..core.targets import GaussianMixture
from ..core.tensors import positive_int
from ..learning import TrainedModel
from ..samplers import check_coefficients, coefficients_of
from ..samplers.grid_tuning import CANDIDATES, METHODS, OBJECTIVES, fit_coefficients, tune_grid
from ..util.files import atomic_write_json, read_json
from . import registry
from .registry import resolve_sampler
from .sources import as_source

__all__ = ["QUICK_TUNING", "TUNABLE", "GridFile", "load_grid_file", "nfe_for_steps", "optimize_grid", "quick_grid",
           "steps_for_nfe"]

GRID_FORMAT = "scoredyn-grid"
GRID_VERSION = 1


@dataclass(frozen=True)
class Tunable:
    """How a deterministic few-step sampler spends evaluations and steps locally.

    Attributes:
        rule: the local step of the dynamic program (``grid_tuning.LOCAL_RULES``).
        free_end: the last step may end at a positive level at no extra cost (data-prediction samplers:
            their step into any level costs the same one evaluation, taken at its start).
    """

    rule: str
    free_end: bool = True


#: The samplers a grid can be tuned for: the deterministic solvers of the probability-flow ODE.
TUNABLE: dict[str, Tunable] = {
    "ddim": Tunable("data"),
    "dpm-solver-2m": Tunable("data"),
    "unipc": Tunable("data"),
    # UniPC's grid (free end), whose evaluation times it keeps; its own ends at sigma = 0, where the
    # fitted last step combines the whole history
    "multistep": Tunable("data"),
    "edm-heun": Tunable("heun", free_end=False),
    "ode-heun": Tunable("heun", free_end=False),
}


def _tunable(sampler: str) -> Tunable:
    resolve_sampler(sampler)
    if sampler not in TUNABLE:
        raise ValueError(f"a grid can be tuned for {', '.join(TUNABLE)}, not {sampler!r}")
    return TUNABLE[sampler]


def steps_for_nfe(sampler: str, nfe: int) -> int:
    """The steps of a tunable ``sampler`` that spend at most ``nfe`` evaluations (``registry.steps_for_nfe``:
    Heun into ``sigma = 0`` spends ``2 S - 1``)."""
    _tunable(sampler)
    return registry.steps_for_nfe(sampler, nfe)


def nfe_for_steps(sampler: str, steps: int) -> int:
    """The evaluations ``steps`` steps of a tunable ``sampler`` spend (the inverse of ``steps_for_nfe``)."""
    _tunable(sampler)
    return registry.nfe_for_steps(sampler, steps)


#: What the demo and the explorer tune with: seconds in 2-D, on starts of another seed than the run they
#: show (a grid is judged on starts it was not fitted to).
QUICK_TUNING = {"n": 1000, "evaluations": 300, "seed_offset": 2}


def quick_grid(target: GaussianMixture | TrainedModel, sampler: str, nfe: int, seed: int) -> GridFile:
    """``optimize_grid`` with ``QUICK_TUNING``, for a run drawn with ``seed``."""
    return optimize_grid(target, sampler, nfe, n=QUICK_TUNING["n"], seed=seed + QUICK_TUNING["seed_offset"],
                         evaluations=QUICK_TUNING["evaluations"])  # fmt: skip


@dataclass(frozen=True)
class GridFile:
    """A tuned grid as written to disk.

    Attributes:
        process, sampler, nfe, steps: what it was tuned for (``steps + 1`` times).
        times: the grid, descending.
        start_time: the time the particles are drawn at; the sampler starts them at ``times[0]``.
        sigma_hat: ``sigma / alpha`` at each time (for reading; ``times`` is what runs).
        method, objective: how it was found (``grid_tuning.METHODS``, ``OBJECTIVES``).
        errors: the mean distance to the teacher on the tuning starts, per stage.
        tuning: the source, start law, particles, seed, evaluations spent and seconds.
        coefficients: the fitted coefficients of ``multistep`` (``steps`` rows, row ``i`` with ``i``
            numbers); ``None`` for the other samplers.
    """

    process: str
    sampler: str
    nfe: int
    steps: int
    times: list[float]
    start_time: float
    sigma_hat: list[float]
    method: str
    objective: str
    errors: dict
    tuning: dict
    coefficients: list[list[float]] | None = None

    @property
    def grid(self) -> Tensor:
        return torch.tensor(self.times, dtype=torch.float64)

    def save(self, path: str | Path) -> Path:
        """Write the file atomically (a temporary name, then a rename)."""
        return atomic_write_json(path, {"format": GRID_FORMAT, "version": GRID_VERSION, **asdict(self)})

    def check_for(self, sampler: str, process: str) -> None:
        """Refuse to run a grid tuned for another sampler or process."""
        if sampler != self.sampler:
            raise ValueError(f"the grid was tuned for {self.sampler}, not {sampler}")
        if process != self.process:
            raise ValueError(f"the grid was tuned on the {self.process} process, not {process}")


def _fail(path: Path, why: str) -> None:
    raise ValueError(f"{path}: not a usable grid file: {why}")


def load_grid_file(path: str | Path) -> GridFile:
    """Read and check a grid file: its format, a known sampler and process, ``steps + 1`` finite,
    strictly descending times within the process's range, and the evaluations its steps spend."""
    path = Path(path)
    if not path.is_file():
        _fail(path, "no such file")
    raw = read_json(path, "grid file")
    if not isinstance(raw, dict) or raw.get("format") != GRID_FORMAT:
        _fail(path, f"its 'format' is not {GRID_FORMAT!r}")
    if raw.get("version") != GRID_VERSION:
        _fail(path, f"version {raw.get('version')!r}; this scoredyn reads version {GRID_VERSION}")
    fields = {k: raw.get(k) for k in GridFile.__dataclass_fields__}
    missing = [k for k, v in fields.items() if v is None and k != "coefficients"]
    if missing:
        _fail(path, f"missing {', '.join(missing)}")
    sampler, process = fields["sampler"], fields["process"]
    if not isinstance(sampler, str) or sampler not in TUNABLE:
        _fail(path, f"sampler {sampler!r} is not one a grid is tuned for ({', '.join(TUNABLE)})")
    try:
        proc = resolve_process(process)
    except (ValueError, TypeError):
        _fail(path, f"unknown process {process!r}")
    times, steps, nfe = fields["times"], fields["steps"], fields["nfe"]
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        _fail(path, f"steps must be a positive integer, got {steps!r}")
    if not isinstance(nfe, int) or isinstance(nfe, bool) or steps_for_nfe(sampler, max(nfe, 1)) != steps:
        _fail(path, f"{steps} steps of {sampler} do not spend nfe {nfe!r}")
    if not isinstance(times, list) or not all(isinstance(t, int | float) and not isinstance(t, bool) for t in times):
        _fail(path, "times must be a list of numbers")
    if len(times) != steps + 1:
        _fail(path, f"{len(times)} times for {steps} steps (need {steps + 1})")
    if not all(math.isfinite(t) for t in times):
        _fail(path, "times contain NaN or inf")
    if not all(a > b for a, b in zip(times, times[1:], strict=False)):
        _fail(path, "times are not strictly descending")
    t_min, t_max = float(proc.t_min), float(proc.t_max)
    start = fields["start_time"]
    if not isinstance(start, int | float) or not t_min <= times[-1] < times[0] <= start <= t_max:
        _fail(path, f"times must lie in [{t_min}, {t_max}] below the start time, got {times[0]}..{times[-1]}")
    coefficients = fields["coefficients"]
    if (sampler == "multistep") != (coefficients is not None):
        _fail(path, "coefficients belong to a multistep grid, and a multistep grid needs them")
    if coefficients is not None:
        if not isinstance(coefficients, list) or not all(isinstance(row, list) for row in coefficients):
            _fail(path, "coefficients must be a list of lists of numbers")
        try:
            check_coefficients(coefficients, steps)
        except ValueError as e:
            _fail(path, str(e))
    return GridFile(**fields)


def optimize_grid(
    target: GaussianMixture | TrainedModel,
    sampler: str,
    nfe: int,
    *,
    process: str | None = None,
    start: str | None = None,
    n: int = 2000,
    seed: int = 0,
    method: str = "gits+continuous",
    objective: str = "distance",
    optimize_start: bool = True,
    optimize_end: bool | None = None,
    candidates: int | None = None,
    evaluations: int = 600,
    device: str = "cpu",
) -> GridFile:
    """A grid for ``sampler`` at ``nfe`` evaluations, tuned on the field of ``target`` (its exact field,
    or a trained model's) against the converged probability-flow ODE from ``n`` starts drawn with
    ``seed`` from the start law ``sample`` uses (``grid_tuning.tune_grid``).

    Args:
        target: an exact mixture, or a trained model (``learning.load_trained``).
        sampler: one of ``TUNABLE``.
        nfe: the evaluations the grid is for.
        process: the process (default: the sampler's recipe's).
        start: the start kind (default: the recipe's, ``moments`` for a trained model).
        n, seed: the tuning starts (judge the grid on others).
        method: ``gits``, ``continuous`` or ``gits+continuous``.
        objective: the continuous stage's objective, ``distance`` or ``energy``.
        optimize_start: whether the first time is tuned (the particles are still drawn at ``t_max``).
        optimize_end: whether the last step may end above ``sigma = 0`` (default: where it costs no
            evaluation).
        candidates: the dynamic program's candidate levels (default: ``grid_tuning.CANDIDATES`` of the
            sampler's local rule).
        evaluations: the most sampler runs of the continuous stage.
        device: where the tuning particles live.

    Returns:
        the grid file (``GridFile.save`` writes it).
    """
    spec = _tunable(sampler)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    n, steps = positive_int(n, "n"), steps_for_nfe(sampler, nfe)
    if n < 2:
        raise ValueError(f"tuning needs at least 2 particles, got {n}")
    source = as_source(target)
    recipe = resolve_sampler(sampler)
    proc_name = process or recipe.process
    proc = resolve_process(proc_name)
    start_kind = start or source.default_start(recipe.start)
    t_max = torch.tensor(float(proc.t_max), dtype=torch.float64)
    law = source.start(start_kind, proc, t_max)
    x = law.sample(n, generator=torch.Generator().manual_seed(seed)).to(device)
    field = source.field(proc)

    # a multistep grid starts from UniPC's: the best fixed-coefficient solver places the evaluations best
    # (fitted on DPM-Solver++(2M)'s own tuned grid instead, mog10 at 5 evaluations ended 5.5 / 13.4x the
    # floor in mode TV / energy against 1.8 / 2.0x; docs/algorithms.md)
    grid_recipe = resolve_sampler("unipc") if sampler == "multistep" else recipe

    def run(x: Tensor, grid: Tensor) -> Tensor:
        with torch.no_grad():
            return grid_recipe.fn(field, x, grid, **grid_recipe.kwargs).x

    with torch.no_grad():
        found = tune_grid(
            field, run, x, steps, method=method, rule=spec.rule, optimize_start=optimize_start,
            optimize_end=spec.free_end if optimize_end is None else optimize_end, objective=objective,
            candidates=candidates, evaluations=evaluations,
        )  # fmt: skip
    times = found.times
    errors, seconds, coefficients = found.errors, found.seconds, None
    if sampler == "multistep":
        # UniPC's evaluation times, the end moved to the teacher's (sigma = 0 where the process reaches
        # it), where the last step's coefficients combine the whole history; then the coefficients
        clock = time.perf_counter()
        times = torch.cat([times[:steps], found.teacher_times[-1:]])
        if not bool((times[1:] < times[:-1]).all()):
            raise ValueError("the tuned grid's last level is the teacher's end, which leaves multistep no step "
                             "into it; use a process whose sigma reaches 0 (e.g. vp)")  # fmt: skip
        with torch.no_grad():  # UniPC on the same grid, as coefficients: the fit starts from the fixed rule
            path = grid_recipe.fn(field, x, times, return_path=True, **grid_recipe.kwargs).path
            start = coefficients_of(field, times, path)
        coefficients, errors["coefficients"] = fit_coefficients(field, x, times, found.teacher_end, start)
        seconds += time.perf_counter() - clock
    levels = CANDIDATES[spec.rule] if candidates is None else candidates
    return GridFile(
        process=proc_name,
        sampler=sampler,
        nfe=int(nfe),
        steps=steps,
        times=times.tolist(),
        start_time=found.start_time,
        sigma_hat=proc.sigma_hat(times).tolist(),
        method=method,
        objective=objective,
        errors=errors,
        tuning={"source": source.label, "start": start_kind, "n": n, "seed": seed, "candidates": levels,
                "evaluations": found.evaluations, "seconds": seconds},  # fmt: skip
        coefficients=coefficients,
    )
