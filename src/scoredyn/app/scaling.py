"""Does a sampler stay at the floor as N grows? One sampler at growing particle counts, each run
scored against the exact law.

A bias ``D`` shows as ``ratio = 1 + D / floor(N)``, and every floor shrinks like ``1/N`` (the
V-statistics) or ``1/sqrt(N)`` (mode TV), so a sampler that looks exact at ``N = 2000`` may sit
several floors off at ``N = 10^5``. ``scaling`` runs the sampler at each ``N`` of ``sizes`` (an
independent run per size, seeded) and reports value, floor, ratio and its 95% interval per metric;
a sampler is *at the floor* on a metric only if the ratio stays at most ``AT_FLOOR_RATIO`` at every
``N``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from ..core.targets import GaussianMixture
from ..metrics import evaluate
from .sampling import sample

__all__ = ["AT_FLOOR_RATIO", "SCALING_METRICS", "check_sizes", "scaling", "at_floor"]

AT_FLOOR_RATIO = 1.5
SCALING_METRICS = ("mode_tv_exact", "energy_exact", "mmd_exact", "ksd")


def check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    """The particle counts as a strictly increasing tuple of integers >= 2 (``ValueError`` otherwise)."""
    sizes = tuple(sizes)
    if not sizes:
        raise ValueError("sizes must hold at least one particle count")
    if any(int(n) != n or n < 2 for n in sizes):
        raise ValueError(f"every size must be an integer >= 2, got {list(sizes)}")
    if any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)):
        raise ValueError(f"sizes must be strictly increasing, got {list(sizes)}")
    return tuple(int(n) for n in sizes)


def scaling(
    target: GaussianMixture,
    sampler: str,
    sizes: Iterable[int],
    *,
    steps: int,
    seed: int = 0,
    metrics: Iterable[str] = SCALING_METRICS,
    on_size: Callable[[dict], None] | None = None,
    **sample_options,
) -> list[dict]:
    """Run ``sampler`` on ``target``'s exact field at each particle count and score each run.

    Returns one row per size: ``{"n", "nfe", "wall_s", <metric>: evaluate's entry}``.

    Args:
        target: the exact mixture.
        sampler: a name from ``registry.SAMPLERS``.
        sizes: strictly increasing particle counts (``check_sizes``).
        steps: the sampler's step count.
        seed: seeds the run at each size (``seed``) and its scoring (``seed + 1``).
        metrics: names from ``METRICS``.
        on_size: called with each row as it finishes.
        **sample_options: passed on to ``sampling.sample`` (levels, process, grid, knobs).
    """
    metrics = tuple(metrics)
    rows = []
    for n in check_sizes(tuple(sizes)):
        t0 = time.perf_counter()
        result, _ = sample(target, sampler, steps=steps, n=n, seed=seed, **sample_options)
        wall = time.perf_counter() - t0
        scores = evaluate(result.x, target, seed=seed + 1, metrics=metrics)
        row = {"n": n, "nfe": result.nfe, "wall_s": wall, **{m: scores[m] for m in metrics if m in scores}}
        rows.append(row)
        if on_size is not None:
            on_size(row)
    return rows


def at_floor(rows: list[dict], metric: str, limit: float = AT_FLOOR_RATIO) -> bool:
    """Whether ``metric``'s ratio stays at most ``limit`` at every size of ``rows``."""
    ratios = [row[metric]["ratio"] for row in rows if metric in row]
    return bool(ratios) and all(r is not None and r <= limit for r in ratios)
