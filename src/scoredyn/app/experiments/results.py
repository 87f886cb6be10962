"""What the two-for-one experiments (Arts et al. 2023, "Two for one") report alike: the MD route's
entry chosen from its table over noise levels, and results made safe for JSON."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["best_sigma", "json_safe"]


def best_sigma(table: Sequence[dict], max_blown_up: float) -> tuple[dict, str]:
    """The row of an MD table over ``sigma`` that the route reports: the lowest ``fe_error_kT`` among
    the rows that lost at most ``max_blown_up`` of their walkers and have a finite error (the lowest
    overall when none qualifies). Returns the row and a sentence saying how it was chosen.

    Args:
        table: rows with ``"fe_error_kT"`` and ``"blown_up"`` (a fraction of walkers).
        max_blown_up: the largest fraction of lost walkers an eligible row may have.
    """
    eligible = [r for r in table if r["blown_up"] <= max_blown_up and math.isfinite(r["fe_error_kT"])]
    best = min(eligible or table, key=lambda r: r["fe_error_kT"])
    selected_by = f"lowest fe_error_kT among sigmas with blown_up <= {max_blown_up}" + (
        "" if eligible else " (none eligible: lowest overall)"
    )
    return best, selected_by


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None``, recursively through dicts, lists and
    tuples (tuples become lists): JSON has no inf or NaN."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
