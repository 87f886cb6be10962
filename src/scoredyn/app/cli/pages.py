"""``scoredyn report | explore``: pages to look at — a run's report, and the interactive explorer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ...util.files import check_writable
from ._common import app, err, fail, progress, resolve_source, seed_option


@app.command()
def report(
    run_dir: Annotated[
        Path, typer.Argument(help="a demo folder, a training run folder, or a benchmark results folder")
    ],
    out_path: Annotated[Path | None, typer.Option("--out", help="output .html (default RUN_DIR/report.html)")] = None,
) -> None:
    """Rebuild the self-contained report.html of a run from its outputs: tables, figures, settings, versions."""
    from ..report import build_report

    path = build_report(run_dir, out=out_path)
    err.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


@app.command()
def explore(
    target: Annotated[str | None, typer.Option(help="a 2-D built-in target or mixture .json")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="a run folder of a model trained on 2-D data")] = None,
    out_path: Annotated[Path, typer.Option("--out", help="output .html")] = Path("explore.html"),
    n: Annotated[int, typer.Option(help="particles per precomputed run")] = 2000,
    frames: Annotated[int, typer.Option(help="frames kept per run (play/scrub); half for stochastic samplers")] = 100,
    seed: Annotated[int, seed_option("seed of every precomputed run")] = 0,
    sampler: Annotated[
        list[str] | None,
        typer.Option(help="only this sampler, NAME or NAME:STEPS[,STEPS...] (repeatable; default: every sampler)"),
    ] = None,
    serve_page: Annotated[bool, typer.Option("--serve", help="then serve the page on 127.0.0.1 until Ctrl-C")] = False,
    port: Annotated[int, typer.Option(help="the port of --serve (0: a free one)")] = 0,
) -> None:
    """Write a self-contained interactive page of the dynamics on a 2-D target or model: every sampler's
    precomputed run to play and scrub over the exact noised density and its score, forward/reverse,
    particle trails, and each frame's distance to the exact law."""
    from ..explorer import build_explorer, check_port, serve

    if out_path.suffix.lower() not in (".html", ".htm"):
        fail(f"--out must end in .html, got {out_path}")
    check_writable(out_path)
    if n < 10 or frames < 2:
        fail(f"--n must be at least 10 and --frames at least 2, got {n} and {frames}")
    if serve_page:
        check_port(port)  # before the build: a busy port is reported now, not after it
    elif port:
        fail("--port is the port of --serve: give --serve too")
    samplers = _sampler_table(sampler) if sampler else None
    source, name = resolve_source(target, checkpoint)
    with progress() as bar:
        task = bar.add_task(f"explorer for {name}", total=None)
        info = build_explorer(source, out_path, n=n, frames=frames, seed=seed, samplers=samplers,
                              log=lambda msg: bar.update(task, description=str(msg)[:60]))  # fmt: skip
    err.print(f"wrote {info['path']} ({info['bytes'] / 1e6:.1f} MB, {len(info['runs'])} runs, {info['seconds']:.0f}s)")
    if serve_page:
        serve(out_path, port=port)


def _sampler_table(options: list[str]) -> dict[str, tuple[int, ...]]:
    """``--sampler`` values as the explorer's table: ``NAME`` takes its default step counts."""
    from ..explorer.frames import DEFAULT_SAMPLERS

    table = {}
    for option in options:
        name, _, steps = option.partition(":")
        if not steps:
            if name not in DEFAULT_SAMPLERS:
                fail(f"--sampler {option!r}: unknown sampler; use one of {', '.join(DEFAULT_SAMPLERS)}")
            table[name] = DEFAULT_SAMPLERS[name]
            continue
        try:
            table[name] = tuple(int(s) for s in steps.split(","))
        except ValueError:
            fail(f"--sampler {option!r}: steps must be integers, as in NAME:10,50")
    return table
