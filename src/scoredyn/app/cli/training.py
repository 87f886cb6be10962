"""``scoredyn train``: fit a score model from a TOML config, flags and ``--set`` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ...core.registry import PROCESSES
from ._common import app, check_device, err, fail


@app.command()
def train(
    data: Annotated[
        str | None, typer.Option(help="dataset: a toy, a mixture name or .json, digits, or points in .csv/.npy/.npz")
    ] = None,
    objective: Annotated[str | None, typer.Option(help="training objective (see README)")] = None,
    process: Annotated[str | None, typer.Option(help=f"forward process: {', '.join(PROCESSES)}")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="run folder (checkpoints, logs)")] = None,
    config: Annotated[Path | None, typer.Option(help="a TOML config; flags and --set override it")] = None,
    steps: Annotated[int | None, typer.Option(help="total optimizer steps")] = None,
    net: Annotated[str | None, typer.Option(help="mlp or unet")] = None,
    parameterization: Annotated[str | None, typer.Option(help="eps, x0, v, score, edm, flow or energy")] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the run")] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="override any config field: section.key=value (repeatable)")
    ] = None,
    fresh: Annotated[bool, typer.Option(help="ignore checkpoints in --out and start over")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Train a score model; resumes from the newest good checkpoint in --out unless --fresh."""
    from ...learning import TrainConfig, Trainer, apply_overrides, load_toml

    cfg = load_toml(config) if config is not None else TrainConfig()
    flags = {
        "data.name": data,
        "objective.name": objective,
        "objective.process": process,
        "run.out": None if out_dir is None else str(out_dir),
        "optim.steps": steps,
        "model.net": net,
        "model.parameterization": parameterization,
        "run.seed": seed,
        "run.device": device,
    }
    items = [f"{k}={v}" for k, v in flags.items() if v is not None]
    items.append(f"run.progress={progress and err.is_terminal}")
    cfg = apply_overrides(cfg, items + list(overrides or []))
    check_device(cfg.run.device)
    if fresh and Path(cfg.run.out, "checkpoints").exists():
        import shutil

        shutil.rmtree(Path(cfg.run.out, "checkpoints"))
        Path(cfg.run.out, "metrics.jsonl").unlink(missing_ok=True)
    trainer = Trainer(cfg, resume=True)
    if trainer.step >= cfg.optim.steps:
        err.print(f"{cfg.run.out} is already at step {trainer.step} (optim.steps = {cfg.optim.steps}); nothing to do")
        return
    start = trainer.step
    result = trainer.fit()
    resumed = f" (resumed at step {start})" if start else ""
    err.print(
        f"trained {cfg.objective.name} on {cfg.data.name} to step {result.step}{resumed}: loss {result.loss:.4g}, "
        f"{result.seconds:.1f}s, {result.samples_per_second:.0f} samples/s; wrote {cfg.run.out}"
    )


#: Why ``--format diffusers`` is refused: the project's networks are not diffusers' classes.
NO_DIFFUSERS = (
    "--format diffusers is not available: the project's networks take (c_in x, log(sigma/alpha)/4) and predict "
    "in the run's parameterization, while a diffusers UNet2DModel takes (x, an integer timestep) with its own "
    "block layout; no weight mapping reproduces the model. Export --format scoredyn (safetensors + run.json), "
    "which load_trained reads and scoredyn.fields.from_callable can wrap"
)


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Option(help="a run folder of `scoredyn train`")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write model.safetensors and run.json into")],
    fmt: Annotated[str, typer.Option("--format", help="scoredyn (diffusers: refused, see the README)")] = "scoredyn",
) -> None:
    """Write a run's EMA weights as model.safetensors beside its run.json: a small folder that
    `--checkpoint` and load_trained read (no optimizer state)."""
    from ...learning import export_model

    if fmt == "diffusers":
        fail(NO_DIFFUSERS)
    if fmt != "scoredyn":
        fail(f"--format must be scoredyn or diffusers, got {fmt!r}")
    if out_dir.exists() and any(out_dir.iterdir()):
        fail(f"--out {out_dir} exists and is not empty")
    dest = export_model(checkpoint, out_dir)
    err.print(f"wrote {dest}/model.safetensors and {dest}/run.json")
