"""Reference equilibrium samples of DW-4 by long BAOAB runs of the true potential.

DW-4 has no closed-form marginal, so its reference is MD: many independent walkers started from
random configurations, a burn-in, then frames kept every ``thin`` time units. Measured (BAOAB, dt
0.02, gamma 1, 2000-4000 walkers from ``2 N(0, I)``): the slowest observable seen is the number of
pairs on the short side of the pair barrier (``d_ij < d_0``); its walker mean relaxes from 3.76 to
its equilibrium ~2.96 with a time constant of roughly 60-80, and its integrated autocorrelation time
at equilibrium is 15-20 (Sokal window; the energy's is ~2.5). Hence a burn-in of 300 and a thinning
of 50 time units. Centre-of-mass motion is removed, so samples are mean-free, as in the DW-4 data
of Köhler et al. (2020). ``dt`` must stay small for spread-out starts: the quartic pair term is stiff
at large distances (``dt = 0.05`` blew up walkers started from ``2.5 N(0, I)``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from .boltzmann import Boltzmann, dw4
from .integrators import baoab

__all__ = ["ReferenceSettings", "DW4_SETTINGS", "dw4_reference_samples"]


@dataclass(frozen=True)
class ReferenceSettings:
    """How a reference run is made (times in the potential's time units, masses 1).

    Attributes:
        dt: BAOAB step (DW-4: ``omega dt ~ 0.2`` for the pair modes near the minima).
        friction: Langevin friction ``gamma``.
        kT: thermal energy.
        n_walkers: independent walkers run as one batch.
        burn_in: time discarded at the start of each walker.
        thin: time between kept frames of a walker.
        init_scale: walkers start at ``init_scale * N(0, I)`` configurations (centred).
    """

    dt: float = 0.02
    friction: float = 1.0
    kT: float = 1.0
    n_walkers: int = 2000
    burn_in: float = 300.0
    thin: float = 50.0
    init_scale: float = 2.0

    def to_dict(self) -> dict:
        return asdict(self)


DW4_SETTINGS = ReferenceSettings()


def dw4_reference_samples(
    n_samples: int,
    *,
    seed: int = 0,
    settings: ReferenceSettings = DW4_SETTINGS,
    target: Boltzmann | None = None,
    progress: bool = False,
) -> Tensor:
    """``n_samples`` equilibrium configurations of DW-4, shape (n_samples, 8), float64, mean-free.

    Each of ``settings.n_walkers`` walkers runs ``burn_in`` and then ``ceil(n_samples / n_walkers)``
    stretches of ``thin``; its frame at the end of each stretch is kept. Seeded: the same ``seed``
    and settings give the same samples.
    """
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    s = settings
    target = target or dw4(s.kT)
    g = torch.Generator().manual_seed(seed)
    per_walker = math.ceil(n_samples / s.n_walkers)
    burn, thin = round(s.burn_in / s.dt), round(s.thin / s.dt)
    x0 = s.init_scale * torch.randn(s.n_walkers, target.dim, generator=g, dtype=torch.float64)
    n_particles = target.potential.n_particles
    tr = baoab(
        target.force,
        x0,
        dt=s.dt,
        friction=s.friction,
        kT=s.kT,
        n_steps=burn + per_walker * thin,
        save_every=thin,
        generator=g,
        remove_com=n_particles,
        progress=progress,
    )
    # frames saved at steps 0, thin, 2 thin, ...: keep those past the burn-in
    kept = tr.x[torch.arange(tr.x.shape[0]) * thin >= burn][-per_walker:]
    if not bool(torch.isfinite(kept).all()):
        raise RuntimeError(f"the reference run went unstable at dt={s.dt}: use a smaller dt or init_scale")
    return kept.reshape(-1, target.dim)[:n_samples]
