"""``scoredyn bench``: run the speed benchmarks, write their records, print a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ...util.files import check_writable
from ._common import app, check_device, err, fail, out


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="CPU-sized runs (about a minute each part)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the records as one JSON list")] = False,
    part: Annotated[list[str] | None, typer.Option("--part", help="run only this part (repeatable)")] = None,
    results: Annotated[
        Path | None, typer.Option(help="folder for the JSON records (default: benchmarks/results of a checkout)")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
) -> None:
    """Run the speed benchmarks (fused Langevin, SVGD, sampler overhead, training, demo) against their
    plain PyTorch baselines in the same run; write records (DESIGN.md's format) and print a table."""
    from ..bench.record import CHECKOUT_RESULTS
    from ..bench.suite import part_names, run_suite

    device = check_device(device)
    if not quick and device == "cpu":
        fail("the full suite is GPU-sized: use --device cuda, or --quick on the CPU")
    for p in part or []:
        if p not in part_names():
            fail(f"unknown --part {p!r}: use one of {', '.join(part_names())}")
    if results is None and not CHECKOUT_RESULTS.parent.is_dir():
        results = Path("bench-results")  # an installed copy has no benchmarks/ folder beside it
    folder = results or CHECKOUT_RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    check_writable(folder / "records.json")  # before minutes of benchmarking, not after

    def announce(p) -> None:
        err.print(f"[bold]{p.name}[/]: {p.about} ...")

    records = run_suite(quick=quick, device=device, parts=part, results=results, on_part=announce)
    err.print(f"wrote {len(records)} records to {folder}")
    if as_json:
        print(json.dumps(records))
        return
    where = records[0]["device"] if records else device
    table = Table(title=f"scoredyn bench ({'quick' if quick else 'full'}, {where})")
    for col in ("benchmark", "value", "unit", "baseline", "baseline value", "ratio"):
        table.add_column(col, justify="right" if col in ("value", "baseline value", "ratio") else "left")
    for r in records:
        cells = (r["value"], r["unit"], r["baseline"], r["baseline_value"], r["ratio"])
        table.add_row(r["name"], *(_fmt(c) for c in cells))
    out.print(table)

