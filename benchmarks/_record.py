"""Benchmark records in the format of DESIGN.md, written atomically to benchmarks/results/."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

import scoredyn
from scoredyn._io import file_mode

RESULTS = Path(__file__).resolve().parent / "results"


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def versions() -> dict:
    return {
        "scoredyn": scoredyn.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def record(name, value, unit, baseline, baseline_value, settings, ratio=None) -> dict:
    """One record: ``ratio`` defaults to ``baseline_value / value`` (how many times better ours is
    when lower is better, e.g. seconds)."""
    if ratio is None and baseline_value is not None and value:
        ratio = baseline_value / value
    return {
        "name": name,
        "device": device_name(),
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": ratio,
        "settings": settings,
        "versions": versions(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def write(filename: str, records: list[dict]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / filename
    fd, tmp = tempfile.mkstemp(dir=RESULTS, prefix=f".{filename}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(records, fh, indent=1)
    os.chmod(tmp, file_mode())  # mkstemp makes 0600; results are ordinary files (the umask's mode)
    os.replace(tmp, path)
    return path
