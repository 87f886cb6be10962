"""Ramachandran analysis of alanine dipeptide: basin populations on the (phi, psi) torus, their
block estimates, the free-energy surface and its error in kT against a reference.

Angles are (N, 2) ``(phi, psi)`` in radians (``dihedrals.phi_psi``), torch or NumPy. The basins are
the conformations named on the vacuum Ramachandran map (C7eq/C5, alphaR, C7ax/alphaL), with the
boundaries given below. The figure of a surface is drawn by the application
(``scoredyn.app.experiments.figures.ramachandran_figure``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..analysis import Profile, Surface, free_energy_error, free_energy_surface, js_divergence

__all__ = ["BOLTZMANN_KJ", "basin_populations", "block_populations", "ramachandran_surface", "ramachandran_error"]

BOLTZMANN_KJ = 0.0083144626  # kJ/mol/K (R)


# Basins on the (phi, psi) torus, degrees. The right half 0 <= phi < 120 holds C7ax and alpha_L, rare in
# vacuum; alpha_R is psi in [-150, 0) outside it; the rest is the C7eq/C5/extended basin, which wraps
# across phi = 180 (C5 sits near phi = -155: in 40 ns every frame with phi > 0 had phi > 175).
def _right(phi, psi):
    return (phi >= 0) & (phi < 120)


_BASINS = {
    "C7eq/C5": lambda phi, psi: ~_right(phi, psi) & ((psi >= 0) | (psi < -150)),
    "alphaR": lambda phi, psi: ~_right(phi, psi) & (psi < 0) & (psi >= -150),
    "C7ax/alphaL": _right,
}


def _angles(angles) -> np.ndarray:
    a = angles.detach().cpu().numpy() if isinstance(angles, Tensor) else np.asarray(angles)
    if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] == 0:
        raise ValueError(f"angles must be (N, 2) (phi, psi) in radians, got shape {a.shape}")
    return a.astype(np.float64)


def basin_populations(angles) -> dict[str, float]:
    """Fractions of frames of ``angles`` (N, 2) radians in each basin (degrees): ``C7ax/alphaL``:
    0 <= phi < 120; ``alphaR``: elsewhere with psi in [-150, 0); ``C7eq/C5``: the rest (phi < 0 or
    phi >= 120, psi outside [-150, 0))."""
    phi, psi = np.degrees(_angles(angles)).T
    return {name: float(inside(phi, psi).mean()) for name, inside in _BASINS.items()}


def block_populations(angles, n_blocks: int = 10) -> dict[str, dict[str, float]]:
    """Basin populations in ``n_blocks`` consecutive blocks of a trajectory: per basin the mean over
    blocks, their standard deviation, and the standard error ``sd / sqrt(n_blocks)`` (a fair error bar
    only when blocks are longer than the slowest relaxation), plus the per-block values."""
    a = _angles(angles)
    if not 2 <= n_blocks <= a.shape[0]:
        raise ValueError(f"n_blocks must be between 2 and the number of frames {a.shape[0]}, got {n_blocks}")
    per_block = [basin_populations(b) for b in np.array_split(a, n_blocks)]
    out = {}
    for name in _BASINS:
        v = np.array([b[name] for b in per_block])
        out[name] = {
            "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)),
            "stderr": float(v.std(ddof=1) / n_blocks**0.5),
        }
        out[name]["blocks"] = [float(b) for b in v]
    return out


def _torus_edges(bins: int) -> np.ndarray:
    if not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    return np.linspace(-math.pi, math.pi, bins + 1)


def ramachandran_surface(angles, *, bins: int = 60, kT: float = BOLTZMANN_KJ * 300.0) -> Surface:
    """The free-energy surface ``F(phi, psi) = -kT log p(phi, psi)`` on ``bins x bins`` equal cells
    tiling the torus ``[-pi, pi)^2`` (every angle falls in exactly one cell: periodic bins), from
    ``angles`` (N, 2) radians. ``kT`` in kJ/mol (default 300 K); ``Surface.free_energy`` is in kJ/mol."""
    a = torch.as_tensor(np.mod(_angles(angles) + math.pi, 2 * math.pi) - math.pi)  # wrap into [-pi, pi)
    e = _torus_edges(bins)
    return free_energy_surface(a, e, e, kT)


def _as_profile(surface: Surface) -> Profile:
    # the cells as the bins of one unit-width axis: the cells are of equal area, so the free energies
    # differ from the surface's by a constant, which free_energy_error's alignment removes
    n = surface.prob.numel()
    return Profile(torch.arange(n + 1, dtype=torch.float64), surface.prob.reshape(-1), surface.kT)


def ramachandran_error(angles, reference, *, bins: int = 36, populated: float = 1e-3) -> dict[str, float]:
    """How far the Ramachandran distribution of ``angles`` (N, 2) is from ``reference`` (M, 2) (radians),
    on ``bins x bins`` periodic cells: ``fe_error_kT`` (mean |F - F_ref - c| / kT over the cells with
    reference mass above ``populated``, aligned as in ``analysis.free_energy_error``; ``inf`` if one is
    empty) and ``js`` (Jensen-Shannon divergence of the cell masses, bits)."""
    p, q = ramachandran_surface(angles, bins=bins), ramachandran_surface(reference, bins=bins)
    return {
        "fe_error_kT": free_energy_error(_as_profile(p), _as_profile(q), populated),
        "js": js_divergence(p.prob, q.prob),
        "populated_cells": int((q.prob > populated).sum()),
    }
