"""The systems of the "two for one" study (Arts et al. 2023, "Two for one", JCTC 19, 6151), and how
samples of them are scored against the reference.

Each system fixes its Boltzmann target, its reaction coordinate (``x`` for the 2-D potentials; the
interatomic distance, all pairs pooled, for DW-4), the bins of the free-energy profile and of the
Jensen–Shannon histogram, MD defaults, and a slow observable for correlation times. The reference
is exact for the 2-D potentials (quadrature: ``Boltzmann.marginal`` and ``Boltzmann.surface``) and a
long BAOAB run of the true potential for DW-4 (``dw4_reference_samples``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..util import atomic_savez
from .analysis import (
    Profile,
    distance_histogram,
    free_energy_error,
    free_energy_profile,
    free_energy_surface,
    interatomic_distances,
    js_divergence,
)
from .boltzmann import Boltzmann, DensityGrid, double_well, dw4, muller_brown
from .reference import DW4_SETTINGS, ReferenceSettings, dw4_reference_samples

__all__ = [
    "SYSTEMS",
    "System",
    "Reference",
    "get_system",
    "density_grid",
    "equilibrium_samples",
    "reference_for",
    "reference_from_samples",
    "score_samples",
]

SYSTEMS = ("double-well", "muller-brown", "dw4")


@dataclass(frozen=True)
class System:
    """One system of the study.

    Attributes:
        name: ``"double-well"``, ``"muller-brown"`` or ``"dw4"``.
        target: its Boltzmann density at ``kT = 1``.
        fe_edges: bins of the reaction coordinate's free-energy profile.
        js_edges: ``(xedges, yedges)`` of the 2-D Jensen–Shannon histogram, or ``None`` (DW-4: the
            distance histogram on ``fe_edges`` is used).
        n_particles: particles whose centre of mass MD removes (DW-4: 4), else ``None``.
        dt, burn_in, duration, save_every: MD defaults (time units of the potential, friction 1).
        coordinate: name of the reaction coordinate (for tables and plots).
    """

    name: str
    target: Boltzmann
    fe_edges: Tensor
    js_edges: tuple[Tensor, Tensor] | None
    n_particles: int | None
    dt: float
    burn_in: float
    duration: float
    save_every: int
    coordinate: str

    @property
    def dim(self) -> int:
        return self.target.dim

    def reaction_coordinate(self, x: Tensor) -> Tensor:
        """Values whose histogram is the free-energy profile: ``x`` (2-D) or all pair distances (DW-4), flat."""
        if self.n_particles is None:
            return x[:, 0].to(torch.float64)
        return interatomic_distances(x.to(torch.float64), self.n_particles).reshape(-1)

    def slow_observable(self, x: Tensor) -> Tensor:
        """One number per configuration (N,) for correlation times: ``x`` (2-D), or the number of pairs
        on the short side of the pair barrier ``d < d_0`` (DW-4's slowest observable, ``reference.py``)."""
        if self.n_particles is None:
            return x[:, 0].to(torch.float64)
        d = interatomic_distances(x.to(torch.float64), self.n_particles)
        return (d < self.target.potential.d0).to(torch.float64).sum(dim=1)


def get_system(name: str) -> System:
    """The system ``name`` (one of ``SYSTEMS``)."""
    if name == "double-well":
        edges = torch.linspace(-2.0, 2.0, 41, dtype=torch.float64)
        js = (torch.linspace(-2.2, 2.2, 45, dtype=torch.float64), torch.linspace(-4.0, 4.0, 41, dtype=torch.float64))
        # slowest relaxation: well populations, time constant ~20 (tests/physics/test_integrators.py)
        return System(name, double_well(), edges, js, None, 0.05, 50.0, 100.0, 10, "x")
    if name == "muller-brown":
        edges = torch.linspace(-1.8, 1.3, 32, dtype=torch.float64)
        js = (torch.linspace(-1.8, 1.3, 32, dtype=torch.float64), torch.linspace(-0.6, 2.2, 29, dtype=torch.float64))
        # stiff basins (omega ~ 10 in the deepest): dt 0.02; intra-basin relaxation ~1, crossings rare
        return System(name, muller_brown(), edges, js, None, 0.02, 5.0, 20.0, 25, "x")
    if name == "dw4":
        edges = torch.linspace(0.5, 7.5, 36, dtype=torch.float64)
        # the pair-population relaxation has a time constant of 60-80 (reference.py): the run is short
        # of it, so the MD route measures the learned force's local equilibrium more than its populations
        return System(name, dw4(), edges, None, 4, 0.02, 20.0, 40.0, 50, "pair distance")
    raise ValueError(f"unknown system {name!r}: use one of {', '.join(SYSTEMS)}")


@functools.lru_cache(maxsize=4)
def density_grid(name: str) -> DensityGrid:
    """The exact density of the 2-D system ``name`` on 801 x 801 nodes over its box
    (``Boltzmann.density_grid``), computed once per system: the source of its i.i.d. equilibrium
    samples and of the contours drawn under them."""
    return get_system(name).target.density_grid(801)


def equilibrium_samples(
    system: str,
    n: int,
    seed: int = 0,
    *,
    cache: str | Path | None = None,
    settings: ReferenceSettings = DW4_SETTINGS,
    progress: bool = False,
) -> Tensor:
    """``n`` equilibrium configurations (n, D), float64.

    2-D potentials: i.i.d. draws from the exact density on an 801 x 801 grid (``DensityGrid.sample``:
    a cell by its mass, then uniform within it; exact up to the grid spacing). DW-4: the frames of a
    long BAOAB run of the true potential (``dw4_reference_samples`` with ``settings``), optionally cached
    in the ``.npz`` file ``cache`` (reused when its ``n``, ``seed`` and run settings match; written
    atomically).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    sys_ = get_system(system)
    if sys_.n_particles is None:
        return density_grid(system).sample(n, torch.Generator().manual_seed(seed))
    key = np.array(repr((n, seed, sorted(settings.to_dict().items()))))
    if cache is not None and Path(cache).exists():
        with np.load(cache) as f:
            if "key" in f and str(f["key"]) == str(key):
                return torch.from_numpy(f["samples"]).to(torch.float64)
    x = dw4_reference_samples(n, seed=seed, settings=settings, progress=progress)
    if cache is not None:
        atomic_savez(cache, samples=x.numpy(), key=key)
    return x


@dataclass(frozen=True)
class Reference:
    """What samples are scored against: the free-energy profile and the JS histogram (bin masses)."""

    profile: Profile
    histogram: Tensor
    source: str


def reference_for(system: str, *, n_ref: int = 40000, seed: int = 10**6, cache: str | Path | None = None) -> Reference:
    """The reference of ``system``: exact quadrature for the 2-D potentials (``n_ref`` unused), else
    ``n_ref`` reference MD samples (seeded apart from training and start samples)."""
    s = get_system(system)
    if s.js_edges is not None:
        xe, ye = s.js_edges
        return Reference(s.target.marginal(s.fe_edges), s.target.surface(xe, ye).prob, "exact quadrature")
    return reference_from_samples(system, equilibrium_samples(system, n_ref, seed, cache=cache))


def reference_from_samples(system: str, x: Tensor) -> Reference:
    """A reference built from equilibrium samples ``x`` (N, D) of a particle system (DW-4)."""
    s = get_system(system)
    if s.n_particles is None:
        raise ValueError(f"{system} has an exact reference: use reference_for")
    return Reference(
        free_energy_profile(s.reaction_coordinate(x), s.fe_edges, s.target.kT),
        distance_histogram(x, s.n_particles, s.fe_edges),
        f"{x.shape[0]} BAOAB reference samples",
    )


def score_samples(system: System, reference: Reference, x: Tensor) -> dict[str, float]:
    """``fe_error_kT`` (mean |F - F_ref| / kT over the populated bins, ``free_energy_error``) and ``js``
    (Jensen–Shannon divergence, base 2, of the 2-D histogram or the distance histogram) of ``x`` (N, D)."""
    x = x.to(torch.float64)
    profile = free_energy_profile(system.reaction_coordinate(x), system.fe_edges, system.target.kT)
    fe = free_energy_error(profile, reference.profile)
    if system.js_edges is not None:
        hist = free_energy_surface(x, *system.js_edges, system.target.kT).prob
    else:
        hist = distance_histogram(x, system.n_particles, system.fe_edges)
    js = js_divergence(hist, reference.histogram) if float(hist.sum()) > 0 else math.nan
    return {"fe_error_kT": fe, "js": js}
