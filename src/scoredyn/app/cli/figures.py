"""``scoredyn figures``: the interactive figures of the texts (noise compass, reverse SDE against the
probability-flow ODE, linear against cosine schedule, the forward SDE beside its Fokker–Planck
solution) on one exact 2-D mixture, as one self-contained page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ...util.files import check_writable
from ._common import app, err, fail, seed_option

DEFAULT_TARGET = "mog6"


@app.command()
def figures(
    target: Annotated[
        str | None, typer.Option(help=f"a 2-D built-in target or mixture .json (default {DEFAULT_TARGET})")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="a run folder: the page uses the exact mixture of its 2-D training data")
    ] = None,
    seed: Annotated[int, seed_option("seed of every precomputed run")] = 0,
    out_path: Annotated[Path, typer.Option("--out", help="output .html")] = Path("figures.html"),
) -> None:
    """Write the interactive figures page: noise compass, SDE/ODE paths, schedules, Fokker–Planck.

    One self-contained HTML file (plotly.js inlined, no network) on an exact 2-D mixture,
    standardized; Python computes every path and particle, the page evaluates closed forms."""
    from ...core.registry import resolve_target
    from ..explorer.figures import build_figures

    if out_path.suffix.lower() not in (".html", ".htm"):
        fail(f"--out must end in .html, got {out_path}")
    check_writable(out_path)
    if target is not None and checkpoint is not None:
        fail("give at most one of --target and --checkpoint")
    source = None
    if checkpoint is not None:
        from ...learning import read_run

        # the page evaluates closed forms only: a checkpoint stands for the exact mixture of its data
        _, _, config = read_run(checkpoint)
        target = config.data.name
        source = (f"exact mixture of {target!r}, the training data of checkpoint {checkpoint} "
                  "(the page draws no learned field)")  # fmt: skip
    mixture = resolve_target(target or DEFAULT_TARGET)
    info = build_figures(mixture, out_path, seed=seed, source=source)
    err.print(f"wrote {info['path']} ({info['bytes'] / 1e6:.1f} MB, {info['seconds']:.1f}s)")
