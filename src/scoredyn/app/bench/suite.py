"""The benchmark suite behind ``scoredyn bench``: every part, quick (CPU-sized) or full (GPU-sized).

Each part is a module of this package with ``run(*, quick, device, results=None) -> list[dict]``
returning records in DESIGN.md's format; the suite runs the parts in order, writes each part's
records to ``<results>/<file>`` (atomically) and returns them all.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .record import write


@dataclass(frozen=True)
class Part:
    """One benchmark of the suite: its module (dotted path, with a ``run``) and its results file."""

    name: str
    module: str
    filename: str
    about: str


PARTS: tuple[Part, ...] = (  # fmt: skip
    Part("langevin", f"{__package__}.langevin", "langevin_throughput.json", "fused annealed Langevin, exact mixture"),
    Part("corrected", f"{__package__}.corrected", "corrected_throughput.json", "annealed MALA and SMC, exact mixture"),
    Part("svgd", f"{__package__}.svgd", "svgd_step.json", "SVGD pairwise sums against the dense formulation"),
    Part("samplers", f"{__package__}.samplers", "sampler_overhead.json", "network samplers: time outside the network"),
    Part("training", f"{__package__}.training", "train_throughput.json", "training samples/s, compiled against eager"),
    Part("demo", f"{__package__}.demo", "demo_time.json", "`scoredyn demo` wall time"),
)


def part_names() -> list[str]:
    return [p.name for p in PARTS]


def run_suite(
    *,
    quick: bool,
    device: str = "cpu",
    parts: Sequence[str] | None = None,
    results: str | os.PathLike | None = None,
    on_part: Callable[[Part], None] | None = None,
) -> list[dict]:
    """Run ``parts`` (all by default) and write each one's records; returns every record.

    Args:
        quick: CPU-sized runs (seconds each) instead of the GPU sizes of the full suite.
        device: ``"cpu"`` or ``"cuda"``.
        parts: names from ``part_names()``.
        results: the folder for the JSON files (``benchmarks/results`` of a checkout by default).
        on_part: called with each part before it runs (progress display).
    """
    chosen = list(parts) if parts else part_names()
    unknown = sorted(set(chosen) - set(part_names()))
    if unknown:
        raise ValueError(f"unknown benchmark part(s) {', '.join(unknown)}: use {', '.join(part_names())}")
    records: list[dict] = []
    for part in PARTS:
        if part.name not in chosen:
            continue
        if on_part is not None:
            on_part(part)
        module = importlib.import_module(part.module)
        recs = module.run(quick=quick, device=device, results=results)
        write(part.filename if not quick else f"quick_{part.filename}", recs, Path(results) if results else None)
        records.extend(recs)
    return records
