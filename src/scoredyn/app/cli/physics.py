"""``scoredyn physics simulate | train | compare``: a denoiser as a force field (Arts et al. 2023)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from ...util.files import output_folder
from ..sampling import MEMORY_BUDGET_GIB, gib
from ._common import app, err, fail, seed_option

physics_app = typer.Typer(no_args_is_help=True, help="Learned force fields: Langevin MD with a denoiser's score.")
app.add_typer(physics_app, name="physics")

SystemOpt = Annotated[str, typer.Option(help="double-well, muller-brown or dw4")]


def _system(name: str) -> str:
    from ...physics import SYSTEMS

    if name not in SYSTEMS:
        fail(f"unknown system {name!r}: use one of {', '.join(SYSTEMS)}")
    return name


@physics_app.command()
def simulate(
    system: SystemOpt,
    out_dir: Annotated[Path, typer.Option("--out", help="output folder (trajectory.npz)")],
    force: Annotated[str, typer.Option(help="'true' (the potential's force) or a trained run folder")] = "true",
    sigma: Annotated[float, typer.Option(help="noise level of the learned force, in data units")] = 0.1,
    steps: Annotated[int, typer.Option(help="BAOAB steps")] = 2000,
    dt: Annotated[float | None, typer.Option(help="time step (default: the system's)")] = None,
    friction: Annotated[float, typer.Option(help="Langevin friction")] = 1.0,
    walkers: Annotated[int, typer.Option(help="independent walkers")] = 256,
    save_every: Annotated[int, typer.Option(help="keep every k-th step")] = 10,
    seed: Annotated[int, seed_option("seed")] = 0,
) -> None:
    """Langevin MD (BAOAB) with the true force or kT x the learned score at noise level --sigma."""
    from ..experiments.twoforone import simulate as run

    for name, value in (("--steps", steps), ("--walkers", walkers), ("--save-every", save_every)):
        if value < 1:
            fail(f"{name} must be a positive integer, got {value}")
    if not all(0 < v < math.inf for v in (sigma, friction, 1.0 if dt is None else dt)):
        fail("--sigma, --friction and --dt must be positive and finite")
    if force != "true" and not Path(force).is_dir():
        fail(f"--force must be 'true' or a trained run folder, got {force!r}")
    from ...physics import get_system

    frames = steps // save_every + 1  # the trajectory kept in memory, float64
    need = 8 * frames * walkers * get_system(_system(system)).dim
    if need > MEMORY_BUDGET_GIB * 2**30:
        fail(f"the trajectory needs about {gib(need)} GiB ({frames:,} frames x {walkers:,} walkers), above "
             f"{MEMORY_BUDGET_GIB:g} GiB: use fewer steps or walkers, or a larger --save-every")  # fmt: skip
    with output_folder(out_dir):  # a failed write leaves no empty folder
        info = run(_system(system), out_dir, force=force, sigma=sigma, steps=steps, dt=dt, friction=friction,
                   walkers=walkers, save_every=save_every, seed=seed, progress=err.is_terminal)  # fmt: skip
    err.print(f"wrote {info['path']}: {info['frames']} frames x {walkers} walkers; {info['blown_up']:.0%} blew up")


@physics_app.command()
def train(
    system: SystemOpt,
    out_dir: Annotated[Path, typer.Option("--out", help="run folder")],
    steps: Annotated[int | None, typer.Option(help="optimizer steps (default: 3000; DW-4 8000)")] = None,
    seed: Annotated[int, seed_option("seed of the samples and the run")] = 0,
) -> None:
    """Draw equilibrium samples of the system (exact, or a long BAOAB run for DW-4) and train on them."""
    from ..experiments.twoforone import train as run

    if steps is not None and steps < 1:
        fail(f"--steps must be a positive integer, got {steps}")
    model = run(_system(system), out_dir, steps=steps, seed=seed, progress=err.is_terminal)
    err.print(f"trained a score model of {system} to step {model.step}; wrote {out_dir}")


@physics_app.command()
def compare(
    system: SystemOpt,
    out_dir: Annotated[Path, typer.Option("--out", help="output folder (model/, compare.json, figures)")],
    steps: Annotated[
        int | None, typer.Option(help="training steps (default: 3000; DW-4 8000); a model already there is reused")
    ] = None,
    seed: Annotated[int, seed_option("seed")] = 0,
    quick: Annotated[bool, typer.Option(help="fewer samples and walkers, half the MD time")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the comparison as one JSON object")] = False,
) -> None:
    """Two for one: i.i.d. samples of a trained model and Langevin MD with its learned force, each
    against the reference (free-energy error in kT, JS divergence), with a table over sigma."""
    from ..experiments.twoforone import compare_run

    if steps is not None and steps < 1:
        fail(f"--steps must be a positive integer, got {steps}")
    doc = compare_run(_system(system), out_dir, steps=steps, seed=seed, quick=quick, progress=err.is_terminal)
    if as_json:
        print(json.dumps(doc))
        return
    for route in ("iid", "md"):
        r = doc["routes"][route]
        extra = f" (sigma {r['sigma']})" if route == "md" else ""
        err.print(f"{system} {route}{extra}: free-energy error {r['fe_error_kT']} kT, JS {r['js']}")
    err.print(f"wrote {out_dir}/compare.json")
