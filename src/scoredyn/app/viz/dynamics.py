"""Particles in motion: reverse-SDE and probability-flow-ODE paths from the same starts, and the
forward process noising the data.

The reverse-time family (Song et al. 2021, eqs. 6 and 13; DESIGN.md):

.. math::
    dx = \\Big[f x - \\tfrac{1 + \\lambda^2}{2} g^2 \\nabla_x \\log p_t(x)\\Big] dt + \\lambda g\\, d\\bar w,

with ``lambda = 1`` the reverse SDE (Anderson 1982) and ``lambda = 0`` the probability-flow ODE;
both carry ``p_T`` to ``p_0``. The ODE's velocity is Lipschitz in ``x``, so its solutions are unique:
two particles never sit at the same point at the same time, and its paths in ``(x, t)`` never meet.
Drawn in the plane, without ``t``, they may cross (one particle passes where another was earlier).
The forward marginal is ``x_t = alpha(t) x_0 + sigma(t) eps``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import Tensor

from ...core.fields import AnalyticField, Field
from ...core.processes import VP, Process
from ...core.targets import GaussianMixture
from ...samplers import karras_grid, ode, reverse_sde, start_distribution
from .common import (
    INK,
    NAVY,
    as_numpy,
    check_2d,
    cover,
    density_on,
    exact_target,
    hdr_levels,
    limits,
    mixture_box,
    new_figure,
    plane_grid,
)

__all__ = ["trajectories", "forward_noising", "Paths", "reverse_paths"]


@dataclass(frozen=True)
class Paths:
    """Particle paths of one run: ``x`` ``(S + 1, N, D)`` at the grid ``times`` ``(S + 1,)``, and a
    label for the legend."""

    x: np.ndarray
    times: np.ndarray
    label: str


def reverse_paths(
    field: Field, starts: Tensor, *, steps: int = 40, seed: int = 0, lam: float = 1.0, method: str = "heun"
) -> tuple[Paths, Paths]:
    """The reverse SDE (Euler-Maruyama, noise scale ``lam``) and the PF-ODE (``method``) from the
    same ``starts`` ``(N, D)`` at ``t_max`` on one Karras grid of ``steps`` steps."""
    times = karras_grid(field.process, steps)
    x = starts.to(torch.float64)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sde = reverse_sde(field, x, times, lam=lam, generator=gen, return_path=True)
        flow = ode(field, x, times, method=method, return_path=True)
    t = times.numpy()
    return (
        Paths(as_numpy(sde.path), t, rf"reverse SDE ($\lambda = {lam:g}$, Euler–Maruyama)"),
        Paths(as_numpy(flow.path), t, rf"probability-flow ODE ($\lambda = 0$, {method.capitalize()})"),
    )


def trajectories(
    field_or_target: Field | GaussianMixture,
    starts: Tensor | np.ndarray | int = 24,
    *,
    process: Process | None = None,
    steps: int = 40,
    seed: int = 0,
    lam: float = 1.0,
    method: str = "heun",
    lim: float | Sequence[float] | None = None,
    cmap: str = "plasma",
) -> Figure:
    """Paths of the reverse SDE and of the probability-flow ODE from the same starts, side by side.

    Each path is drawn as segments coloured by the time ``t`` of the process (one colour bar):
    the ODE's paths are smooth and, as curves in ``(x, t)``, never meet (their drawn 2-D shadows
    may cross, at different times), the SDE's wander, and both end on the data. Open circles mark
    the starts, dots the ends, grey lines the 50%/90% mass contours of ``p_0`` where the target is
    known.

    Args:
        field_or_target: a 2-D field, or an exact mixture (its exact field on ``process``).
        starts: start points ``(N, 2)`` at ``t_max``, or a number of them drawn from the exact
            ``p_T`` of the target (``N(0, I)`` scaled by the process for a learned field).
        process: the process of a target's exact field (default: ``VP`` linear); a field brings its own.
        steps: steps of the Karras grid both solvers use.
        seed: seeds the starts and the SDE's noise.
        lam: the SDE's noise scale (``1``: Anderson's reverse SDE).
        method: the ODE solver (``euler``, ``heun``, ``rk4``).
        lim: the window; by default it holds every path point and the data.
        cmap: colour map of ``t``.
    """
    field = _as_field(field_or_target, process)
    target = exact_target(field)
    x0 = _starts(starts, field, target, seed)
    check_2d(x0.shape[1], "starts")
    sde, flow = reverse_paths(field, x0, steps=steps, seed=seed, lam=lam, method=method)
    clouds = [sde.x, flow.x]
    lims = limits(lim, *clouds) if lim is not None or target is None else cover(mixture_box([target]), clouds)
    norm = Normalize(vmin=float(sde.times.min()), vmax=float(sde.times.max()))
    fig, axes = new_figure(1, 2, panel=(4.4, 4.2), plane=True)
    lines = None
    for ax, paths in zip(axes[0], (sde, flow), strict=True):
        if target is not None:
            _contours(ax, target, lims)
        lines = _path_lines(paths, norm, cmap)
        ax.add_collection(lines)
        ax.scatter(paths.x[0, :, 0], paths.x[0, :, 1], s=22, facecolors="none", edgecolors=INK, linewidths=0.8)
        ax.scatter(paths.x[-1, :, 0], paths.x[-1, :, 1], s=14, color=INK, zorder=3)
        ax.set_xlim(lims[0], lims[1])
        ax.set_ylim(lims[2], lims[3])
        ax.set_aspect("equal")
        ax.set_title(paths.label, fontsize=10)
        ax.set_xlabel(r"$x_1$")
    axes[0, 0].set_ylabel(r"$x_2$")
    fig.colorbar(lines, ax=axes[0, :].tolist(), label=f"time $t$ of {field.process.name}")
    handles = [
        Line2D([], [], ls="", marker="o", mfc="none", mec=INK, label=r"start ($t = t_{\max}$)"),
        Line2D([], [], ls="", marker="o", ms=4, color=INK, label=r"end ($t = t_{\min}$)"),
    ]
    if target is not None:
        handles.append(Line2D([], [], color="0.5", label=r"$p_0$: 90% / 50% mass"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False)
    fig.suptitle(f"{x0.shape[0]} particles from the same starts, {steps} steps")
    return fig


def forward_noising(
    x0: Tensor | np.ndarray,
    process: Process,
    times: Sequence[float],
    *,
    seed: int = 0,
    target: GaussianMixture | None = None,
    lim: float | Sequence[float] | None = None,
    max_points: int = 3000,
) -> Figure:
    """The data noised by the forward process, one panel per time:
    ``x_t = alpha(t) x_0 + sigma(t) eps`` with one draw of ``eps`` shared by every panel (the same
    particles at every time), so each particle's drift towards the origin and spread can be followed.

    Args:
        x0: data points ``(N, 2)``.
        process: the forward process.
        times: the times of the panels.
        seed: seeds ``eps ~ N(0, I)`` (``torch.randn(N, 2)`` in float64 from ``Generator().manual_seed(seed)``).
        target: the exact data mixture: its noised density ``p_t`` is drawn as contours.
        lim: the window (default: all panels' points).
        max_points: at most this many points are drawn per panel.
    """
    x = torch.as_tensor(as_numpy(x0))
    if x.ndim != 2:
        raise ValueError(f"x0 must have shape (N, 2), got {tuple(x.shape)}")
    check_2d(x.shape[1], "x0")
    times = [float(t) for t in times]
    if not times:
        raise ValueError("times must hold at least one time")
    for t in times:
        if not process.t_min <= t <= process.t_max:
            raise ValueError(f"times must lie in [{process.t_min}, {process.t_max}], got {t}")
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    noised = [as_numpy(process.marginal_sample(x, t, eps)) for t in times]
    lims = limits(lim, *noised)
    fig, axes = new_figure(1, len(times), plane=True)
    for ax, t, xt in zip(axes[0], times, noised, strict=True):
        if target is not None:
            _contours(ax, target.noised(process, t), lims)
        ax.scatter(xt[:max_points, 0], xt[:max_points, 1], s=4, color=NAVY, alpha=0.5, linewidths=0)
        a, s = float(process.alpha(t)), float(process.sigma(t))
        ax.set_title(rf"$t = {t:.3g}$: $\alpha = {a:.2f}$, $\sigma = {s:.2f}$", fontsize=10)
        ax.set_xlim(lims[0], lims[1])
        ax.set_ylim(lims[2], lims[3])
        ax.set_aspect("equal")
        ax.set_xlabel(r"$x_1$")
    axes[0, 0].set_ylabel(r"$x_2$")
    fig.suptitle(rf"Forward process {process.name}: $x_t = \alpha(t)\,x_0 + \sigma(t)\,\epsilon$")
    return fig


def _as_field(field_or_target: Field | GaussianMixture, process: Process | None) -> Field:
    if isinstance(field_or_target, GaussianMixture):
        check_2d(field_or_target.dim, "target")
        return AnalyticField(field_or_target, process if process is not None else VP())
    if process is not None and process is not field_or_target.process:
        raise ValueError("process is only for a target; a field brings its own process")
    return field_or_target


def _starts(starts, field: Field, target: GaussianMixture | None, seed: int) -> Tensor:
    if isinstance(starts, int):
        if starts < 1:
            raise ValueError(f"starts must be a positive number of particles or an (N, 2) array, got {starts}")
        p = field.process
        law = (
            start_distribution("exact", p, p.t_max, target=target)
            if target is not None
            else start_distribution("standard", p, p.t_max, dim=2)
        )
        return law.sample(starts, generator=torch.Generator().manual_seed(seed))
    x = torch.as_tensor(as_numpy(starts))
    if x.ndim != 2:
        raise ValueError(f"starts must have shape (N, 2), got {tuple(x.shape)}")
    return x


def _path_lines(paths: Paths, norm: Normalize, cmap: str) -> LineCollection:
    """One segment per particle per step, ``(S * N)`` in all, coloured by the time at its start."""
    x = paths.x  # (S + 1, N, 2)
    segs = np.stack([x[:-1], x[1:]], axis=2)  # (S, N, 2, 2)
    colour = np.repeat(paths.times[:-1], x.shape[1])
    lines = LineCollection(segs.reshape(-1, 2, 2), cmap=cmap, norm=norm, linewidths=1.0, alpha=0.9)
    lines.set_array(colour)
    return lines


def _contours(ax, law: GaussianMixture, lims, n: int = 140) -> None:
    X, Y, _ = plane_grid(lims, n)
    p = density_on(law, X, Y)
    levels = hdr_levels(p, (X[0, 1] - X[0, 0]) * (Y[1, 0] - Y[0, 0]))
    if levels.size:
        ax.contour(X, Y, p, levels=levels, colors="0.55", linewidths=0.9, linestyles=["--", "-"][: levels.size])
