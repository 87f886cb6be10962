"""Figures of the "two for one" experiments (Arts et al. 2023): free-energy profiles along a reaction
coordinate, sample clouds over a 2-D potential, and the Ramachandran plot of alanine dipeptide.

Matplotlib ``Figure`` objects on the Agg canvas (the figures of ``scoredyn.app.viz``), written with
``scoredyn.app.viz.save_figure``. This module imports matplotlib; the physics library and the rest
of the experiments do not (``twoforone.compare_run`` imports it when it draws).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from ...physics import Reference, System, density_grid, free_energy_profile
from ...physics.alanine import BOLTZMANN_KJ, ramachandran_surface
from ..viz.common import ACCENT, INK, NAVY, TEAL, as_numpy, new_figure

__all__ = ["free_energy_figure", "samples_figure", "ramachandran_figure"]


def free_energy_figure(system: System, reference: Reference, iid: Tensor, md: Tensor, sigma: float) -> Figure:
    """``F(xi) / kT`` along the reaction coordinate: the reference, the i.i.d. route and the MD route
    at ``sigma``, each aligned to the reference by the reference-mass-weighted mean offset over the
    populated bins (as ``free_energy_error`` aligns them)."""
    kT = system.target.kT
    ref = reference.profile
    mask = ref.prob > 1e-3
    fig, axes = new_figure(1, 1, panel=(5.2, 3.6))
    ax = axes[0, 0]
    x = as_numpy(ref.centres)
    f_ref = as_numpy(ref.free_energy) / kT
    ax.plot(x, f_ref, color=INK, lw=2.0, label=f"reference ({reference.source})")
    routes = (("i.i.d. (diffusion sampler)", iid, NAVY, "o"), (f"MD, learned force, σ = {sigma:g}", md, ACCENT, "s"))
    for label, samples, colour, marker in routes:
        prof = free_energy_profile(system.reaction_coordinate(samples), system.fe_edges, kT)
        f = as_numpy(prof.free_energy) / kT
        populated = as_numpy(mask).astype(bool)
        w = as_numpy(ref.prob)[populated]
        d = f[populated] - f_ref[populated]  # outside the populated range F can be inf on both sides
        shift = float((w * d).sum() / w.sum()) if np.isfinite(d).all() else 0.0
        ax.plot(x, f - shift, color=colour, lw=1.2, marker=marker, ms=3, label=label)
    top = float(np.nanmax(np.where(as_numpy(mask).astype(bool), f_ref, np.nan)))
    ax.set_ylim(-0.3, top + 1.5)
    ax.set_xlabel(system.coordinate)
    ax.set_ylabel("free energy  F / kT")
    ax.set_title(f"{system.name}: free energy along {system.coordinate}", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return fig


def samples_figure(
    system: System, exact: Tensor, iid: Tensor, md: Tensor, sigma: float, max_points: int = 3000
) -> Figure:
    """Three panels over the free-energy contours of a 2-D potential: exact samples, the i.i.d. route,
    and MD frames with the learned force at ``sigma`` (at most ``max_points`` points each)."""
    if system.js_edges is None:
        raise ValueError(f"{system.name} is not a 2-D system")
    grid = density_grid(system.name)
    F = as_numpy(grid.free_energy) / system.target.kT
    xs, ys = as_numpy(grid.xs), as_numpy(grid.ys)
    xe, ye = (as_numpy(e) for e in system.js_edges)
    height = 3.6  # panels as wide as the box's aspect asks, so equal axes leave no blank margins
    width = height * float(xe[-1] - xe[0]) / float(ye[-1] - ye[0]) + 0.4
    fig, axes = new_figure(1, 3, plane=True, panel=(width, height))
    clouds = (("exact samples", exact, INK), ("i.i.d. route", iid, NAVY), (f"MD route, σ = {sigma:g}", md, TEAL))
    for ax, (title, pts, colour) in zip(axes[0], clouds, strict=True):
        ax.contour(xs, ys, F.T, levels=np.arange(0.5, 8.0, 1.0), colors="0.55", linewidths=0.7)
        p = as_numpy(pts)
        p = p[np.random.default_rng(0).permutation(len(p))[:max_points]]
        ax.scatter(p[:, 0], p[:, 1], s=3, color=colour, alpha=0.4, linewidths=0, rasterized=True)
        ax.set_xlim(xe[0], xe[-1])
        ax.set_ylim(ye[0], ye[-1])
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x")
    axes[0, 0].set_ylabel("y")
    fig.suptitle(f"{system.name}: samples over the free-energy contours (1 kT apart)")
    return fig


def ramachandran_figure(
    angles, reference=None, *, bins: int = 60, kT: float = BOLTZMANN_KJ * 300.0, vmax: float = 8.0
) -> Figure:
    """The Ramachandran plot: ``F(phi, psi) / kT`` of ``angles`` (N, 2) radians as a colour map (capped
    at ``vmax``), beside that of ``reference`` (M, 2) when given (``alanine.ramachandran_surface`` on
    ``bins x bins`` cells; ``kT`` in kJ/mol, default 300 K). Returns a matplotlib ``Figure`` (save it
    with ``scoredyn.app.viz.save_figure``)."""
    panels = [("sample", angles)] + ([("reference", reference)] if reference is not None else [])
    fig, axes = new_figure(1, len(panels), panel=(3.4, 3.2), plane=True)
    for ax, (title, a) in zip(axes[0], panels, strict=True):
        s = ramachandran_surface(a, bins=bins, kT=kT)
        f = (s.free_energy / kT).numpy().T  # rows: psi
        deg = np.degrees(s.xedges.numpy())
        mesh = ax.pcolormesh(deg, deg, np.minimum(f, vmax), cmap="viridis", vmin=0.0, vmax=vmax, shading="flat")
        ax.set(title=f"{title} (n={len(a)})", xlabel="phi (deg)", ylabel="psi (deg)", aspect="equal")
        ax.set_xticks([-180, -90, 0, 90, 180])
        ax.set_yticks([-180, -90, 0, 90, 180])
    fig.colorbar(mesh, ax=axes[0].tolist(), label="F / kT", shrink=0.85)
    return fig
