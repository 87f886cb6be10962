"""``scoredyn tune-grid``: a time grid tuned for a target or a checkpoint, a few-step sampler and a
number of evaluations, written as a grid file that ``scoredyn sample --grid`` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ...core.registry import PROCESSES, TARGETS
from ...samplers.grid_tuning import CANDIDATES, METHODS, OBJECTIVES
from ...util.files import check_writable
from ..tuning import TUNABLE, optimize_grid
from ._common import app, check_device, err, fail, resolve_source, seed_option

#: Grid tuning is for few-step samplers: past these budgets a run is many-step, where hand-made grids do
#: well, and tuning would only exhaust time and memory (the dynamic program makes candidates^2 / 2 local
#: steps and two candidates^2 cost tables).
MAX_NFE, MAX_CANDIDATES, MAX_EVALUATIONS = 1000, 2000, 100_000


@app.command("tune-grid")
def tune_grid(
    sampler: Annotated[str, typer.Option(help=f"one of: {', '.join(TUNABLE)}")],
    nfe: Annotated[int, typer.Option(help="evaluations of the field the grid spends")],
    out_path: Annotated[Path, typer.Option("--out", help="the grid file (.json)")],
    target: Annotated[str | None, typer.Option(help=f"built-in ({', '.join(TARGETS)}) or a mixture .json")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="a run folder of `scoredyn train`")] = None,
    process: Annotated[
        str | None, typer.Option(help=f"the process: {', '.join(PROCESSES)} (default: the sampler's)")
    ] = None,
    method: Annotated[str, typer.Option(help=f"one of: {', '.join(METHODS)}")] = "gits+continuous",
    objective: Annotated[str, typer.Option(help=f"the continuous stage's: {', '.join(OBJECTIVES)}")] = "distance",
    n: Annotated[int, typer.Option(help="tuning particles")] = 2000,
    seed: Annotated[int, seed_option("seed of the tuning starts (judge the grid on another)")] = 0,
    candidates: Annotated[
        int | None, typer.Option(help=f"candidate levels of the dynamic program (default: {CANDIDATES})")
    ] = None,
    evaluations: Annotated[int, typer.Option(help="most sampler runs of the continuous stage")] = 600,
    start_time: Annotated[bool, typer.Option("--tune-start/--no-tune-start", help="tune the first time too")] = True,
    ema: Annotated[bool, typer.Option(help="with --checkpoint: the EMA weights (default) or the raw ones")] = True,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
) -> None:
    """Tune the time grid of a few-step sampler against the converged probability-flow ODE (GITS's
    dynamic program, then Nelder-Mead on the sampler's whole run); write a grid file for `sample --grid`."""
    if sampler not in TUNABLE:
        fail(f"--sampler: a grid can be tuned for {', '.join(TUNABLE)}, not {sampler!r}")
    for name, value, most in (("--nfe", nfe, MAX_NFE), ("--candidates", candidates, MAX_CANDIDATES),
                              ("--evaluations", evaluations, MAX_EVALUATIONS)):  # fmt: skip
        if value is not None and not 1 <= value <= most:
            fail(f"{name} must be an integer in [1, {most:,}], got {value}")
    if n < 2:
        fail(f"--n must be at least 2, got {n}")
    if out_path.suffix != ".json":
        fail(f"--out must end in .json, got {out_path}")
    check_writable(out_path)
    if method not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if objective not in OBJECTIVES:
        fail(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    dev = check_device(device)
    source, name = resolve_source(target, checkpoint, ema=ema, device=dev)
    with err.status(f"tuning {sampler} at nfe {nfe} on {name} ({method}, {n} particles) ..."):  # a terminal only
        found = optimize_grid(source, sampler, nfe, process=process, n=n, seed=seed, method=method,
                              objective=objective, optimize_start=start_time, candidates=candidates,
                              evaluations=evaluations, device=dev)  # fmt: skip
    found.save(out_path)
    shown = ("initial", "gits", "continuous", "coefficients")
    stages = ", ".join(f"{k} {v:.4g}" for k, v in found.errors.items() if k in shown)
    err.print(f"wrote {out_path}: {found.steps} steps, sigma/alpha "
              f"{' > '.join(f'{s:.3g}' for s in found.sigma_hat)}; mean distance to the teacher: {stages}; "
              f"{found.tuning['seconds']:.1f}s")  # fmt: skip
