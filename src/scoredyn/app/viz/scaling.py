"""Scaling of the particle dynamics' cost, from the speed benchmarks' records.

Independent particles (Langevin) cost ``O(N D^2 K)`` per step, so their time per step grows linearly
in ``N``; SVGD's pairwise sums cost ``O(N^2 D)``, so its time per step grows quadratically. The
figure puts the measured times on log-log axes beside the reference slopes.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from .benchmarks import benchmark_rows
from .common import new_figure

__all__ = ["scaling_figure"]


def _langevin_points(rows: list[dict]) -> dict[tuple, list[tuple[float, float]]]:
    """(backend, D, K) -> [(N, seconds per step)] from ``particle-steps/s`` records."""
    out = defaultdict(list)
    for r in rows:
        if r.get("unit") == "particle-steps/s" and str(r.get("name", "")).startswith("langevin/") and r.get("value"):
            out[(r["backend"], r["dim"], r["components"])].append((r["n"], r["n"] / r["value"]))
    return out


def _svgd_points(rows: list[dict]) -> dict[tuple, list[tuple[float, float]]]:
    """(backend, D) -> [(N, seconds per direction)] from ``pairs/s`` records (N^2 pairs each)."""
    out = defaultdict(list)
    for r in rows:
        if r.get("unit") == "pairs/s" and r.get("value"):
            out[(r.get("backend", "?"), r["dim"])].append((r["n"], r["n"] ** 2 / r["value"]))
            if r.get("baseline_value"):
                out[("dense", r["dim"])].append((r["n"], r["n"] ** 2 / r["baseline_value"]))
    return out


def _reference(ax, xs: np.ndarray, ys: np.ndarray, slope: int, label: str) -> None:
    """A dashed line of the given log-log slope through the geometric centre of the points."""
    x0, y0 = np.exp(np.log(xs).mean()), np.exp(np.log(ys).mean())
    grid = np.geomspace(xs.min(), xs.max(), 20)
    ax.plot(grid, y0 * (grid / x0) ** slope, "k--", lw=0.8, alpha=0.6, label=label)


def _per_particle_step(rows: list[dict]) -> dict[tuple, list[tuple[float, float]]]:
    """(backend, K) -> [(D, seconds per particle-step)], the largest N measured at each (backend, D, K)."""
    best: dict[tuple, tuple[float, float]] = {}
    for (backend, d, k), pts in _langevin_points(rows).items():
        n, sec = max(pts)
        best[(backend, k, d)] = (d, sec / n)
    out = defaultdict(list)
    for (backend, k, _), pt in best.items():
        out[(backend, k)].append(pt)
    return out


def scaling_figure(langevin, svgd) -> Figure:
    """Time against ``N``, ``D`` and ``K``: Langevin's time per step against ``N`` (linear), its cost per
    particle-step against ``D`` for each ``K``, and SVGD's time per step against ``N`` (quadratic).

    Args:
        langevin: ``langevin_throughput.json`` (a path), or its records.
        svgd: ``svgd_step.json`` (a path), or its records.
    """
    rows_l, rows_s = benchmark_rows(langevin), benchmark_rows(svgd)
    lang, sv = _langevin_points(rows_l), _svgd_points(rows_s)
    if not lang or not sv:
        raise ValueError("scaling_figure needs Langevin particle-steps/s and SVGD pairs/s records")
    fig, axes = new_figure(1, 3, panel=(4.2, 3.6))
    panels = (
        (axes[0, 0], lang, 1, "Langevin on a mixture", "particles N", "seconds per step"),
        (axes[0, 1], _per_particle_step(rows_l), None, "Langevin: cost against D", "dimension D",
         "seconds per particle-step"),
        (axes[0, 2], sv, 2, "SVGD direction", "particles N", "seconds per step"),
    )  # fmt: skip
    for ax, groups, slope, title, xlabel, ylabel in panels:
        xs_all, ys_all = [], []
        for key in sorted(groups, key=str):
            pts = sorted(set(groups[key]))
            if len(pts) < 2:
                continue  # one point shows no scaling; the table has it
            x, y = np.array(pts).T
            ax.loglog(x, y, "o-", ms=4, label=_label(key, by_dim=slope is None))
            xs_all.extend(x)
            ys_all.extend(y)
        if xs_all and slope is not None:
            _reference(ax, np.array(xs_all), np.array(ys_all), slope, "O(N)" if slope == 1 else "O(N^2)")
        if slope is None and xs_all:  # a few dimensions: label them, not the log axis's minor ticks
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticks(sorted(set(xs_all)), [f"{d:g}" for d in sorted(set(xs_all))])
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        ax.legend(fontsize=7)
    return fig


def _label(key: tuple, by_dim: bool) -> str:
    if by_dim:
        return f"{key[0]}, K={key[1]}"
    return f"{key[0]}, D={key[1]}" + (f", K={key[2]}" if len(key) > 2 else "")
