"""``scoredyn likelihood | interpolate``: densities through the probability-flow ODE, and paths
between two data points through its latent space."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from rich.table import Table

from ...core.registry import PROCESSES, TARGETS
from ...core.targets import GaussianMixture
from ...likelihood import decode, encode, slerp
from ...util.files import atomic_savez, check_writable, load_samples
from ...util.versions import versions
from ..estimate import ESTIMATORS, data_end_time, estimate_likelihood, source_field
from ..sources import as_source
from ._common import app, check_device, err, fail, out, progress, resolve_source, seed_option

HELD_OUT = "held-out"
TargetOpt = Annotated[str | None, typer.Option(help=f"built-in ({', '.join(TARGETS)}) or a mixture .json")]
CheckpointOpt = Annotated[Path | None, typer.Option(help="a run folder of `scoredyn train` (or `digits`)")]
DataOpt = Annotated[
    str,
    typer.Option(help=f".npz (its 'samples') or .npy; or '{HELD_OUT}': the run's held-out data, fresh exact samples"),
]


#: The adaptive solver's tolerances: below 1e-12 float64 cannot resolve them (its steps underflow),
#: above 1 they control nothing.
TOLERANCE_RANGE = (1e-12, 1.0)


def _check_tolerance(name: str, value: float) -> None:
    low, high = TOLERANCE_RANGE
    if not low <= value <= high:
        fail(f"{name} must be in [{low:g}, {high:g}], got {value}")


def _data(spec: str, source, n: int | None, seed: int) -> torch.Tensor:
    """The rows to score: a file, or the held-out data of the source (at most ``n``)."""
    if spec == HELD_OUT:
        if isinstance(source, GaussianMixture):
            return source.sample(n or 2000, torch.Generator().manual_seed(seed + 1)).double()
        from ...learning import load_dataset

        data = source.config.data  # the trained model's own data set
        return load_dataset(data.name, data.n, data.seed).reference(n or 2000, seed).double()
    x = torch.from_numpy(load_samples(spec)).double()
    dim = as_source(source).dim
    if x.shape[1] != dim:
        fail(f"the points in {spec} are {x.shape[1]}-D, but the model is {dim}-D")
    return x if n is None else x[:n]


@app.command()
def likelihood(
    data: DataOpt,
    target: TargetOpt = None,
    checkpoint: CheckpointOpt = None,
    hutchinson: Annotated[int, typer.Option(help="Hutchinson probes per sample (0: the exact divergence)")] = 0,
    rtol: Annotated[float, typer.Option(help="relative tolerance of the adaptive ODE solver")] = 1e-5,
    atol: Annotated[float, typer.Option(help="absolute tolerance of the adaptive ODE solver")] = 1e-5,
    estimator: Annotated[str, typer.Option(help="ode (the PF-ODE) or vlb (the DDPM bound, a lower bound)")] = "ode",
    sigma_min: Annotated[
        float | None, typer.Option(help="sigma/alpha at the data end (default 0 for a target, 1e-3 for a checkpoint)")
    ] = None,
    dequantize: Annotated[
        int, typer.Option(help="levels of discrete data in [-1, 1] (digits: 17): dequantize and report bits/dim")
    ] = 0,
    process: Annotated[str | None, typer.Option(help=f"an exact target's process: {', '.join(PROCESSES)}")] = None,
    n: Annotated[int, typer.Option(help="score at most this many rows (0: all)")] = 0,
    batch: Annotated[int, typer.Option(help="rows per ODE solve")] = 500,
    seed: Annotated[int, seed_option("seed of probes, dequantization and held-out draws")] = 0,
    ema: Annotated[bool, typer.Option(help="with --checkpoint: the EMA weights (default) or the raw ones")] = True,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """log p(x) of every data row by the probability-flow ODE (exact or Hutchinson divergence), or the
    DDPM variational bound; prints the mean with its standard error, and bits/dim for discrete data."""
    if estimator not in ESTIMATORS:
        fail(f"--estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    for name, value in (("--hutchinson", hutchinson), ("--n", n), ("--dequantize", dequantize), ("--seed", seed)):
        if value < 0:
            fail(f"{name} must be >= 0, got {value}")
    if batch < 1:
        fail(f"--batch must be a positive integer, got {batch}")
    if dequantize == 1:
        fail("--dequantize needs at least 2 levels (or 0 for continuous data)")
    _check_tolerance("--rtol", rtol)
    _check_tolerance("--atol", atol)
    from ...learning.distributed import finish, init_distributed, local_device

    ranks, _ = init_distributed("cpu")  # under torchrun: the batches are shared out, gathered on the CPU (gloo)
    dev = str(local_device(check_device(device)))
    source, source_name = resolve_source(target, checkpoint, ema=ema, device=dev)
    x = _data(data, source, n or None, seed)
    t0 = time.perf_counter()
    with progress(disable=not ranks.main) as bar:
        task = bar.add_task(f"log p on {source_name}", total=x.shape[0])
        result = estimate_likelihood(
            source,
            x,
            estimator=estimator,
            hutchinson=hutchinson,
            rtol=rtol,
            atol=atol,
            sigma_min=sigma_min,
            dequantize_levels=dequantize or None,
            process=process,
            batch=batch,
            seed=seed,
            on_batch=lambda rows: bar.advance(task, rows),
            ranks=ranks,
            device=dev,
        )
    finish(ranks)
    if not ranks.main:
        return
    doc = result.to_dict()
    doc["settings"].update(source=source_name, data=data, wall_s=time.perf_counter() - t0, versions=versions())
    if as_json:
        print(json.dumps(doc))
        return
    table = Table(title=f"log p on {source_name} ({result.estimator}, N = {x.shape[0]})")
    for col in ("quantity", "mean", "std. error"):
        table.add_column(col, justify="left" if col == "quantity" else "right")
    table.add_row("log p (nats)", f"{doc['mean']:.4f}", f"{doc['stderr']:.4f}")
    if "bits_per_dim" in doc:
        table.add_row("bits/dim", f"{doc['bits_per_dim']['mean']:.4f}", f"{doc['bits_per_dim']['stderr']:.4f}")
    table.add_row("NFE", str(doc["nfe"]), "")
    out.print(table)


@app.command()
def interpolate(
    data: DataOpt,
    out_path: Annotated[Path, typer.Option("--out", help="output .npz (path, latents, ends)")],
    target: TargetOpt = None,
    checkpoint: CheckpointOpt = None,
    pair: Annotated[tuple[int, int], typer.Option(help="row indices of the two end points in --data")] = (0, 1),
    n: Annotated[int, typer.Option(help="points on the path, ends included")] = 9,
    rtol: Annotated[float, typer.Option(help="relative tolerance of the adaptive ODE solver")] = 1e-5,
    process: Annotated[str | None, typer.Option(help=f"an exact target's process: {', '.join(PROCESSES)}")] = None,
    seed: Annotated[int, seed_option("seed of held-out draws")] = 0,
    ema: Annotated[bool, typer.Option(help="with --checkpoint: the EMA weights (default) or the raw ones")] = True,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
) -> None:
    """Encode two data points to the PF-ODE's latents at t_max, interpolate them spherically, and
    decode the path back to data; writes the path (its 'samples') and the latents to an .npz."""
    if out_path.suffix != ".npz":
        fail(f"--out must end in .npz, got {out_path}")
    check_writable(out_path)
    if n < 2:
        fail(f"--n must be at least 2, got {n}")
    _check_tolerance("--rtol", rtol)
    dev = check_device(device)
    source, source_name = resolve_source(target, checkpoint, ema=ema, device=dev)
    x = _data(data, source, None, seed)
    i, j = pair
    if not (0 <= i < x.shape[0] and 0 <= j < x.shape[0]) or i == j:
        fail(f"--pair must be two different row indices in 0..{x.shape[0] - 1}, got {i} {j}")
    fld, _prior, sigma_min = source_field(source, process)
    t0 = data_end_time(fld.process, sigma_min)
    ends = x[[i, j]]
    z = encode(fld, ends.to(dev), t0=t0, rtol=rtol, atol=rtol)
    latents = slerp(z[0], z[1], n)
    path = decode(fld, latents, t0=t0, rtol=rtol, atol=rtol).cpu()
    latents = latents.cpu()
    if not torch.isfinite(path).all():
        fail("the decoded path has NaN or inf; nothing written")
    settings = {"source": source_name, "pair": [i, j], "n": n, "rtol": rtol, "t0": t0, "versions": versions()}
    atomic_savez(
        out_path,
        samples=path.numpy(),
        latents=latents.numpy(),
        ends=ends.numpy(),
        settings=np.array(json.dumps(settings)),
    )
    err.print(f"wrote {out_path}: a path of {n} points in {x.shape[1]}-D from row {i} to row {j} of {data}")
