"""Benchmark records in the format of DESIGN.md, and the timing helpers every benchmark shares.

A record is ``{"name", "device", "value", "unit", "baseline", "baseline_value", "ratio",
"settings", "versions", "date"}``; ``write`` puts a list of them in one JSON file, atomically, and
``merged`` keeps a file's other records through a partial rerun.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ...util.files import atomic_write_json
from ...util.versions import versions

#: ``benchmarks/results`` of a source checkout (the scripts' default folder).
CHECKOUT_RESULTS = Path(__file__).resolve().parents[4] / "benchmarks" / "results"


def device_name(device: str | torch.device = "cpu") -> str:
    """The machine a benchmark ran on, in words: the GPU's name, or the CPU and its thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def record(name, value, unit, baseline, baseline_value, settings, ratio=None, device="cpu") -> dict:
    """One record: ``ratio`` defaults to ``baseline_value / value`` (how many times better ours is
    when lower is better, e.g. seconds; pass ``ratio`` for throughputs, where higher is better)."""
    if ratio is None and baseline_value is not None and value:
        ratio = baseline_value / value
    return {
        "name": name,
        "device": device_name(device),
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": ratio,
        "settings": settings,
        "versions": versions(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def write(filename: str, records: list[dict], results: str | os.PathLike | None = None) -> Path:
    """Write ``records`` to ``results/filename`` atomically (``util.files.atomic_write_json``)."""
    folder = Path(results) if results is not None else CHECKOUT_RESULTS
    return atomic_write_json(folder / filename, records, indent=1)


def merged(filename: str, records: list[dict], results: str | os.PathLike | None = None) -> list[dict]:
    """The records of ``results/filename`` that ``records`` does not redo (by name), then ``records``: what a
    partial rerun writes so that the file keeps the rest (``records`` alone where there is no file yet)."""
    path = (Path(results) if results is not None else CHECKOUT_RESULTS) / filename
    redone = {r["name"] for r in records}
    kept = [r for r in json.loads(path.read_text()) if r["name"] not in redone] if path.exists() else []
    return kept + records


def synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1, device="cpu") -> float:
    """The fastest of ``repeats`` wall-clock runs of ``fn`` (seconds), after ``warmup`` untimed
    runs; the device is synchronised around each run so GPU work is counted."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return min(times)
