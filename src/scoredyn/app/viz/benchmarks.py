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
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from .common import MARKERS, TOL_MUTED, label_line_ends, new_figure

__all__ = ["accuracy_vs_nfe", "likelihood_plot", "benchmark_rows", "series_styles"]

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
    metric: str | Sequence[str] = "energy_x_floor",
    targets: Sequence[str] | None = None,
    samplers: Sequence[str] | None = None,
    labels: str = "right",
    title: str | None = None,
) -> Figure:
    """Accuracy against the number of field evaluations, one panel per target (and metric), one line
    per sampler.

    Reads ``benchmarks/results/accuracy_vs_nfe.json`` (rows with ``target``, ``sampler``, ``nfe``
    and the metric; ``nfe`` falls back to ``nfe_budget``). Both axes are logarithmic; a metric
    ending in ``_x_floor`` is a multiple of the Monte-Carlo floor, and the line at 1 marks exact
    sampling at the run's N. Lines are told apart by colour (Paul Tol's colour-blind-safe "muted"
    scheme, one colour per sampler family: ``unipc`` and diffusers' ``UniPCMultistepScheduler``
    share one), marker and line style (where some samplers are marked ``ours``, the others are
    dashed), and named by direct labels at their right ends instead of a legend.

    Args:
        source: the JSON path, its records, or rows.
        metric: the row field on the y-axis (``energy_x_floor``, ``mode_tv_x_floor``, ``energy``, ...),
            or several (one panel per target and metric).
        targets: which targets to draw (default: all, in file order).
        samplers: which samplers to draw (default: all, in file order).
        labels: direct labels in ``"right"`` (the right-hand column of panels) or ``"all"`` panels.
        title: the figure title.
    """
    metrics = (metric,) if isinstance(metric, str) else tuple(metric)
    if not metrics or labels not in ("right", "all"):
        raise ValueError(f"metric must name at least one field and labels be 'right' or 'all', got {metric!r}, "
                         f"{labels!r}")  # fmt: skip
    rows = [r for r in benchmark_rows(source) if {"target", "sampler"} <= r.keys()]
    rows = [r for r in rows if _number(r.get("nfe", r.get("nfe_budget"))) and any(_number(r.get(m)) for m in metrics)]
    if not rows:
        wanted = " or ".join(map(repr, metrics))
        raise ValueError(f"no rows with target, sampler, nfe and {wanted} in the benchmark data")
    all_targets = list(dict.fromkeys(r["target"] for r in rows))
    all_samplers = list(dict.fromkeys(r["sampler"] for r in rows))
    targets = _pick(targets, all_targets, "targets")
    samplers = _pick(samplers, all_samplers, "samplers")
    style = series_styles(all_samplers)
    panels = [(t, m) for t in targets for m in metrics]
    ncols = min(len(panels), 2)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = new_figure(nrows, ncols, panel=(4.8, 3.6))
    for ax, (target, m) in zip(axes.ravel(), panels, strict=False):
        for s in samplers:
            pts = sorted(
                (r.get("nfe", r.get("nfe_budget")), r[m])
                for r in rows
                if r["target"] == target and r["sampler"] == s and _number(r.get(m))
            )
            if pts:
                nfe, val = np.array(pts, dtype=np.float64).T
                ax.plot(nfe, val, ms=4, label=s, **style[s])
        if m.endswith("_x_floor"):
            ax.axhline(1.0, color="0.3", lw=0.9, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        # the budgets (5, 10, 20, 50) where rows have them: a Heun run spends 9 or 19, not 10 or 20
        ticks = sorted({r.get("nfe_budget", r.get("nfe")) for r in rows if r["target"] == target})
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_title(target if len(metrics) == 1 else f"{target}: {_metric_label(m)}", fontsize=10)
        ax.set_xlabel("NFE (field evaluations per sample)")
        ax.set_ylabel(_metric_label(m))
        ax.grid(alpha=0.3, which="both")
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    fig.draw_without_rendering()  # settle the layout: the labels are spaced by the axes' final height
    for k, ax in enumerate(axes.ravel()[: len(panels)]):
        last_in_row = k % ncols == ncols - 1 or k == len(panels) - 1
        if labels == "all" or last_in_row:
            ends = [(ln.get_label(), ln.get_xdata()[-1], ln.get_ydata()[-1], ln.get_color())
                    for ln in ax.get_lines() if not ln.get_label().startswith("_")]  # fmt: skip
            label_line_ends(ax, ends)
    floor = any(m.endswith("_x_floor") for m in metrics)
    fig.suptitle((title or "Accuracy against cost") + ("  (dotted: Monte-Carlo floor)" if floor else ""))
    return fig


def series_styles(names: Sequence[str]) -> dict[str, dict]:
    """Line styles that tell ``names`` apart: one colour per sampler family (``_family``) from Paul
    Tol's "muted" scheme, a marker per line, solid lines for ``ours`` (or for all when no name says
    ``ours``) and dashed for the others."""
    families = list(dict.fromkeys(_family(s) for s in names))
    marked = any("ours" in s for s in names)
    return {
        s: {
            "color": TOL_MUTED[families.index(_family(s)) % len(TOL_MUTED)],
            "marker": MARKERS[i % len(MARKERS)],
            "ls": "-" if not marked or "ours" in s else "--",
            "lw": 1.6 if not marked or "ours" in s else 1.2,
        }
        for i, s in enumerate(names)
    }


# diffusers' scheduler classes and the samplers of ours they implement
_FAMILIES = {"ddimscheduler": "ddim", "dpmsolvermultistepscheduler": "dpm-solver-2m",
             "unipcmultistepscheduler": "unipc"}  # fmt: skip


def _family(sampler: str) -> str:
    """A sampler's family: its name before any parenthesis, lower-case, foreign class names mapped to ours."""
    head = sampler.split("(")[0].strip().lower()
    return _FAMILIES.get(head, head)


def likelihood_plot(source, *, title: str | None = None) -> Figure:
    """Error of log-likelihood estimates against cost: ``abs_error`` against ``nfe`` and, where
    rows have it, against ``wall_s_per_sample``; one series per estimator and dimension.

    Rows need ``estimator``, ``nfe`` and ``abs_error`` (nats per sample, against the exact
    ``log p``); they may have ``dim`` (series are split by it), ``wall_s_per_sample`` (adds the
    second panel), ``abs_error_std`` (error bars: one standard deviation over the samples) and
    ``name``. Rows missing a needed field are skipped; records may carry the fields at top level or
    in ``settings``. On a logarithmic error axis a bar whose lower end would reach 0 or below is cut
    at the axis' bottom and marked there with a down triangle.

    Args:
        source: a benchmark JSON path, its records, or rows.
        title: the figure title.
    """
    rows = [r for r in benchmark_rows(source) if "estimator" in r and _number(r.get("nfe"))]
    rows = [r for r in rows if _number(r.get("abs_error"))]
    if not rows:
        raise ValueError(f"no likelihood rows: each needs {', '.join(LIKELIHOOD_NEEDS)}")
    timed = any(_number(r.get("wall_s_per_sample")) for r in rows)
    fig, axes = new_figure(1, 2 if timed else 1, panel=(4.6, 3.6))
    series: dict[str, list[dict]] = {}
    for r in rows:
        key = str(r["estimator"]) + (f", D = {r['dim']}" if "dim" in r else "")
        series.setdefault(key, []).append(r)
    log_y = all(r["abs_error"] > 0 for r in rows)
    bottom = _log_bottom(rows) if log_y else None
    clipped_any = False
    for i, (key, group) in enumerate(series.items()):
        group = sorted(group, key=lambda r: r["nfe"])
        style = {"color": TOL_MUTED[i % len(TOL_MUTED)], "marker": MARKERS[i % len(MARKERS)]}
        for ax, xkey in zip(axes[0], ("nfe", "wall_s_per_sample"), strict=False):
            pts = [r for r in group if _number(r.get(xkey))]
            if not pts:
                continue
            x = np.array([r[xkey] for r in pts], dtype=np.float64)
            y = np.array([r["abs_error"] for r in pts], dtype=np.float64)
            err = [r.get("abs_error_std") for r in pts]
            yerr, cut = None, np.zeros(y.size, dtype=bool)
            if all(_number(e) for e in err):
                sd = np.array(err, dtype=np.float64)
                cut = (y - sd <= bottom) if log_y else cut
                yerr = np.stack([np.where(cut, y - bottom, sd), sd]) if log_y else sd
            ax.errorbar(x, y, yerr=yerr, ms=4.5, lw=1.4, capsize=2, elinewidth=0.9, label=key, **style)
            if cut.any():  # the bar goes on below the axis (to 0 or past it)
                clipped_any = True
                low = np.full(cut.sum(), bottom)
                ax.plot(x[cut], low, ls="", marker="v", ms=5, color=style["color"], clip_on=False)
    labels = {"nfe": "NFE (field evaluations per sample)", "wall_s_per_sample": "wall time per sample (s)"}
    for ax, xkey in zip(axes[0], ("nfe", "wall_s_per_sample"), strict=False):
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
        if log_y:
            ax.set_yscale("log")
            ax.set_ylim(bottom=bottom)
        ax.set_xlabel(labels[xkey])
        ax.set_ylabel(r"$|\log \hat p - \log p|$ (nats / sample)")
        ax.grid(alpha=0.3, which="both")
    handles, names = axes[0, 0].get_legend_handles_labels()
    if clipped_any:
        handles.append(Line2D([], [], ls="", marker="v", color="0.3"))
        names.append("bar continues below the axis (to 0)")
    fig.legend(handles, names, loc="outside lower center", ncol=min(len(names), 3), fontsize=8, frameon=False)
    fig.suptitle(title or "Log-likelihood through the probability-flow ODE: error against cost")
    return fig


def _log_bottom(rows: list[dict]) -> float:
    """The bottom of a logarithmic error axis: half the smallest positive end of any point or bar."""
    ends = [r["abs_error"] for r in rows]
    ends += [r["abs_error"] - r["abs_error_std"] for r in rows if _number(r.get("abs_error_std"))]
    return 0.5 * min(v for v in ends if v > 0)


def _plain_log_ticks(axis) -> None:
    """Ticks at 1, 2 and 5 per decade, labelled as plain numbers (``0.002``, ``50``) and no minor
    labels: a log axis' default minor labels (``3x10^-3  4x10^-3``) run into each other."""
    axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _pick(chosen, available: list[str], what: str) -> list[str]:
    if chosen is None:
        return available
    missing = [c for c in chosen if c not in available]
    if missing:
        raise ValueError(f"{what} not in the data: {', '.join(missing)} (there are: {', '.join(available)})")
    return list(chosen)


_METRIC_NAMES = {"energy": "energy distance", "energy_exact": "energy distance to the law", "mode_tv": "mode TV",
                 "mode_tv_exact": "mode TV to the weights", "sliced_w1": "sliced W1"}  # fmt: skip


def _metric_label(metric: str) -> str:
    base = metric.removesuffix("_x_floor")
    name = _METRIC_NAMES.get(base, base.replace("_", " "))
    return f"{name} / MC floor" if metric.endswith("_x_floor") else name
