"""Benchmark results as figures: accuracy against NFE, and likelihood error against cost.

Both read the JSON files of ``benchmarks/results/`` (a list of records
``{"name", "device", "value", "unit", "baseline", ..., "settings", ...}``) or the rows themselves,
and accept a path, a list of records, or one record.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from .common import new_figure

__all__ = ["accuracy_vs_nfe", "likelihood_plot", "benchmark_rows"]

# fields a likelihood row needs, and the ones it may have
LIKELIHOOD_NEEDS = ("estimator", "nfe", "abs_error")
LIKELIHOOD_OPTIONAL = ("name", "dim", "wall_s_per_sample", "abs_error_std")


def benchmark_rows(source) -> list[dict]:
    """Flat rows from a benchmark JSON file (a path), its records, or rows.

    A record whose ``settings`` holds ``rows`` (as ``accuracy_vs_nfe.json``'s ``accuracy_rows``)
    contributes those rows; any other record contributes itself with its ``settings`` merged in
    (its own keys win), so ``{"name", ..., "settings": {"nfe": 5}}`` and ``{"nfe": 5}`` read alike.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"no benchmark file at {path}")
        try:
            source = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not JSON ({e.msg})") from None
    records = [source] if isinstance(source, dict) else list(source)
    rows: list[dict] = []
    for r in records:
        if not isinstance(r, dict):
            raise ValueError(f"benchmark records must be JSON objects, got {r!r}")
        settings = r.get("settings") if isinstance(r.get("settings"), dict) else {}
        if isinstance(settings.get("rows"), list):
            rows += [row for row in settings["rows"] if isinstance(row, dict)]
        else:
            rows.append({**settings, **{k: v for k, v in r.items() if k != "settings"}})
    return rows


def accuracy_vs_nfe(
    source,
    *,
    metric: str = "energy_x_floor",
    targets: Sequence[str] | None = None,
    samplers: Sequence[str] | None = None,
) -> Figure:
    """Accuracy against the number of field evaluations, one panel per target, one line per sampler.

    Reads ``benchmarks/results/accuracy_vs_nfe.json`` (rows with ``target``, ``sampler``, ``nfe``
    and the metric; ``nfe`` falls back to ``nfe_budget``). Both axes are logarithmic; a metric
    ending in ``_x_floor`` is a multiple of the Monte-Carlo floor, and the line at 1 marks exact
    sampling at the run's N. scoredyn's samplers (names containing ``ours``) are solid lines,
    other implementations dashed.

    Args:
        source: the JSON path, its records, or rows.
        metric: the row field on the y-axis (``energy_x_floor``, ``mode_tv_x_floor``, ``energy``, ...).
        targets: which targets to draw (default: all, in file order).
        samplers: which samplers to draw (default: all, in file order).
    """
    rows = [r for r in benchmark_rows(source) if {"target", "sampler"} <= r.keys() and _number(r.get(metric))]
    rows = [r for r in rows if _number(r.get("nfe", r.get("nfe_budget")))]
    if not rows:
        raise ValueError(f"no rows with target, sampler, nfe and {metric!r} in the benchmark data")
    all_targets = list(dict.fromkeys(r["target"] for r in rows))
    all_samplers = list(dict.fromkeys(r["sampler"] for r in rows))
    targets = _pick(targets, all_targets, "targets")
    samplers = _pick(samplers, all_samplers, "samplers")
    cmap = colormaps["tab20"]
    colour = {s: cmap(i % cmap.N) for i, s in enumerate(all_samplers)}
    ncols = min(len(targets), 2)
    nrows = math.ceil(len(targets) / ncols)
    fig, axes = new_figure(nrows, ncols, panel=(4.8, 3.4))
    floor = metric.endswith("_x_floor")
    for ax, target in zip(axes.ravel(), targets, strict=False):
        for s in samplers:
            mine = [r for r in rows if r["target"] == target and r["sampler"] == s]
            pts = sorted((r.get("nfe", r.get("nfe_budget")), r[metric]) for r in mine)
            if not pts:
                continue
            nfe, val = np.array(pts, dtype=np.float64).T
            ours = "ours" in s
            style = {"lw": 1.6, "ls": "-"} if ours else {"lw": 1.1, "ls": "--"}
            ax.plot(nfe, val, marker="o", ms=3.5, color=colour[s], label=s, **style)
        if floor:
            ax.axhline(1.0, color="0.3", lw=0.9, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        # the budgets (5, 10, 20, 50) where rows have them: a Heun run spends 9 or 19, not 10 or 20
        ticks = sorted({r.get("nfe_budget", r.get("nfe")) for r in rows if r["target"] == target})
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_title(target, fontsize=10)
        ax.set_xlabel("NFE (field evaluations per sample)")
        ax.set_ylabel(_metric_label(metric))
        ax.grid(alpha=0.3, which="both")
    for ax in axes.ravel()[len(targets) :]:
        ax.set_visible(False)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    seen = set(labels)
    for ax in axes.ravel()[1 : len(targets)]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in seen:
                handles.append(h), labels.append(lab), seen.add(lab)
    fig.legend(handles, labels, loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle("Accuracy against cost" + ("  (dotted: Monte-Carlo floor)" if floor else ""))
    return fig


def likelihood_plot(source, *, title: str | None = None) -> Figure:
    """Error of log-likelihood estimates against cost: ``abs_error`` against ``nfe`` and, where
    rows have it, against ``wall_s_per_sample``; one series per estimator and dimension.

    Rows need ``estimator``, ``nfe`` and ``abs_error`` (nats per sample, against the exact
    ``log p``); they may have ``dim`` (series are split by it), ``wall_s_per_sample`` (adds the
    second panel), ``abs_error_std`` (error bars) and ``name``. Rows missing a needed field are
    skipped; records may carry the fields at top level or in ``settings``.

    Args:
        source: a benchmark JSON path, its records, or rows.
        title: the figure title.
    """
    rows = [r for r in benchmark_rows(source) if "estimator" in r and _number(r.get("nfe"))]
    rows = [r for r in rows if _number(r.get("abs_error"))]
    if not rows:
        raise ValueError(f"no likelihood rows: each needs {', '.join(LIKELIHOOD_NEEDS)}")
    timed = any(_number(r.get("wall_s_per_sample")) for r in rows)
    fig, axes = new_figure(1, 2 if timed else 1, panel=(4.4, 3.4))
    series: dict[str, list[dict]] = {}
    for r in rows:
        key = str(r["estimator"]) + (f", D = {r['dim']}" if "dim" in r else "")
        series.setdefault(key, []).append(r)
    cmap = colormaps["tab10"]
    for i, (key, group) in enumerate(series.items()):
        group = sorted(group, key=lambda r: r["nfe"])
        for ax, xkey in zip(axes[0], ("nfe", "wall_s_per_sample"), strict=False):
            pts = [r for r in group if _number(r.get(xkey))]
            if not pts:
                continue
            x = np.array([r[xkey] for r in pts], dtype=np.float64)
            y = np.array([r["abs_error"] for r in pts], dtype=np.float64)
            err = [r.get("abs_error_std") for r in pts]
            yerr = np.array(err, dtype=np.float64) if all(_number(e) for e in err) else None
            ax.errorbar(x, y, yerr=yerr, marker="o", ms=4, lw=1.4, capsize=2, color=cmap(i % 10), label=key)
    labels = {"nfe": "NFE (field evaluations per sample)", "wall_s_per_sample": "wall time per sample (s)"}
    for ax, xkey in zip(axes[0], ("nfe", "wall_s_per_sample"), strict=False):
        ax.set_xscale("log")
        if all(r["abs_error"] > 0 for r in rows):
            ax.set_yscale("log")
        ax.set_xlabel(labels[xkey])
        ax.set_ylabel(r"$|\log \hat p - \log p|$ (nats / sample)")
        ax.grid(alpha=0.3, which="both")
    axes[0, 0].legend(fontsize=8, frameon=False)
    fig.suptitle(title or "Log-likelihood through the probability-flow ODE: error against cost")
    return fig


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _pick(chosen, available: list[str], what: str) -> list[str]:
    if chosen is None:
        return available
    missing = [c for c in chosen if c not in available]
    if missing:
        raise ValueError(f"{what} not in the data: {', '.join(missing)} (there are: {', '.join(available)})")
    return list(chosen)


def _metric_label(metric: str) -> str:
    if metric.endswith("_x_floor"):
        return f"{metric.removesuffix('_x_floor').replace('_', ' ')} / MC floor"
    return metric.replace("_", " ")
