"""``scoredyn report | explore``: pages to look at — a run's report, and the interactive explorer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import app, err


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
