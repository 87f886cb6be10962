"""Noise schedules side by side: ``alpha^2`` (DDPM's ``abar``), ``sigma`` and the log-SNR
``lambda = log(alpha / sigma)`` of each process against normalised time.

For ``x_t = alpha(t) x_0 + sigma(t) eps`` (DESIGN.md), ``alpha^2`` is the fraction of signal power
left, ``sigma`` the noise scale, and ``lambda`` (the *half* log-SNR, ``log SNR = 2 lambda``;
Kingma et al. 2021) the one number a sampler's grid is laid out in. The linear VP schedule
(Ho et al. 2020) spends its signal early; the cosine one (Nichol & Dhariwal 2021, eq. 17) keeps
``alpha^2`` near 1 longer and falls linearly in the middle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from ...core.processes import Process
from ...core.registry import PROCESSES
from .common import MARKERS, TOL_MUTED, new_figure

__all__ = ["schedules", "coinciding"]

# the pair that Nichol & Dhariwal (2021) compare, linear and cosine, is drawn heavier
HIGHLIGHT = ("vp", "vp-cosine")
#: two curves closer than this (relative to the first's largest value) are drawn as coinciding
COINCIDE_RTOL = 0.02
PANELS = (r"$\alpha^2$", r"$\sigma$", r"$\lambda$")


def schedules(
    processes: Mapping[str, Process] | Sequence[str] | None = None,
    *,
    points: int = 400,
    eps: float = 1e-3,
) -> Figure:
    """Three panels against ``u = (t - t_min) / (t_max - t_min)``: ``alpha^2``, ``sigma`` (log
    scale) and ``lambda = log(alpha / sigma)``, one line per process.

    Some schedules coincide: SubVP has VP's ``alpha`` (Song et al. 2021), VE and EDM have ``alpha =
    1``, and the discrete DDPM schedules (T = 1000) are VP's and VP-cosine's to within 1%. So that
    no line hides another, each process has its own colour (Paul Tol's colour-blind-safe "muted"
    scheme), marker and marker phase; a line that coincides with an earlier one in some panel is
    drawn dashed and thinner over it, and its legend entry says which one it matches, and where.

    Args:
        processes: name -> process, or names from ``registry.PROCESSES``; default all of them.
        points: points per line.
        eps: the line starts at ``u = eps`` (``sigma = 0``, ``lambda = inf`` at ``u = 0`` for all but VE).
    """
    procs = _resolve(processes)
    fig, axes = new_figure(1, 3, panel=(4.0, 3.3))
    u = np.linspace(eps, 1.0, points)
    curves = {name: _curves(p, u) for name, p in procs.items()}
    notes = coinciding(curves)
    every = max(points // 8, 1)
    for i, (name, p) in enumerate(procs.items()):
        over = name in notes  # drawn over an earlier line it coincides with
        style = {
            "color": TOL_MUTED[i % len(TOL_MUTED)],
            "lw": 1.3 if over else 2.6 if name in HIGHLIGHT else 1.8,
            "ls": "--" if over else "-",
            "marker": MARKERS[i % len(MARKERS)],
            "ms": 4.5,
            "markevery": (i * every // max(len(procs), 1), every),  # markers of coinciding lines interleave
        }
        label = f"{name}  ($t \\in [{p.t_min:g}, {p.t_max:g}]$)" + (f"; {notes[name]}" if over else "")
        for ax, values in zip(axes[0], curves[name], strict=True):
            ax.plot(u, values, label=label if ax is axes[0, 0] else None, **style)
    axes[0, 0].set_ylabel(r"$\alpha(t)^2$  ($\bar\alpha$)")
    axes[0, 0].set_title("signal power left", fontsize=10)
    axes[0, 1].set_ylabel(r"$\sigma(t)$")
    axes[0, 1].set_yscale("log")
    axes[0, 1].set_title("noise scale", fontsize=10)
    axes[0, 2].set_ylabel(r"$\lambda(t) = \log(\alpha / \sigma)$")
    axes[0, 2].set_title("half log-SNR", fontsize=10)
    for ax in axes[0]:
        ax.set_xlabel(r"normalised time $(t - t_{\min}) / (t_{\max} - t_{\min})$")
        ax.grid(alpha=0.3)
        ax.set_xlim(0, 1)
    fig.legend(loc="outside right center", fontsize=8.5, frameon=False)
    fig.suptitle(r"Noise schedules of $x_t = \alpha(t)\,x_0 + \sigma(t)\,\epsilon$")
    return fig


def coinciding(curves: Mapping[str, Sequence[np.ndarray]], rtol: float = COINCIDE_RTOL) -> dict[str, str]:
    """Which line hides under which: for each process whose curve matches an earlier one's in some
    panel (``alpha^2``, ``sigma``, ``lambda``), a note such as ``"= vp in α²"`` (equal to rounding)
    or ``"≈ vp in every panel"`` (within ``rtol`` of the earlier curve's largest value)."""
    names = list(curves)
    notes = {}
    for j, b in enumerate(names):
        for a in names[:j]:
            same = [(panel, gap) for panel, x, y in zip(PANELS, curves[a], curves[b], strict=True)
                    if (gap := _gap(x, y)) <= rtol]  # fmt: skip
            if same:
                sign = "=" if all(gap <= 1e-9 for _, gap in same) else "≈"
                where = "every panel" if len(same) == len(PANELS) else ", ".join(panel for panel, _ in same)
                notes[b] = f"{sign} {a} in {where}"
                break
    return notes


def _curves(p: Process, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = torch.from_numpy(p.t_min + u * (p.t_max - p.t_min))
    return (p.alpha(t) ** 2).numpy(), p.sigma(t).numpy(), p.log_snr(t).numpy()


def _gap(x: np.ndarray, y: np.ndarray) -> float:
    """The largest difference of two curves where both are finite, relative to the first's size."""
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return math.inf
    return float(np.abs(x[ok] - y[ok]).max() / max(np.abs(x[ok]).max(), 1e-300))


def _resolve(processes) -> dict[str, Process]:
    if processes is None:
        return {name: make() for name, make in PROCESSES.items()}
    if isinstance(processes, Mapping):
        return dict(processes)
    out = {}
    for name in processes:
        if name not in PROCESSES:
            raise ValueError(f"unknown process {name!r}: use one of {', '.join(PROCESSES)}")
        out[name] = PROCESSES[name]()
    if not out:
        raise ValueError("processes must name at least one process")
    return out
