"""Physics: potentials and their Boltzmann densities, Langevin MD with any force (a denoiser's too),
and the analysis that judges runs (free energies, divergences, correlation times)."""

from .analysis import (
    Profile,
    Surface,
    aligned_difference,
    distance_histogram,
    free_energy_error,
    free_energy_profile,
    free_energy_surface,
    integrated_autocorr_time,
    interatomic_distances,
    js_divergence,
    project,
)
from .boltzmann import Boltzmann, DensityGrid, double_well, dw4, muller_brown
from .integrators import LangevinState, Trajectory, baoab, baoab_init, baoab_step, field_force
from .potentials import DoubleWell2D, DoubleWellPairs, LennardJones, MullerBrown, PairPotential, Potential
from .reference import DW4_SETTINGS, ReferenceSettings, dw4_reference_samples

__all__ = [
    "Potential",
    "DoubleWell2D",
    "MullerBrown",
    "PairPotential",
    "DoubleWellPairs",
    "LennardJones",
    "Boltzmann",
    "DensityGrid",
    "double_well",
    "muller_brown",
    "dw4",
    "LangevinState",
    "Trajectory",
    "baoab_init",
    "baoab_step",
    "baoab",
    "field_force",
    "Profile",
    "Surface",
    "project",
    "free_energy_profile",
    "free_energy_surface",
    "aligned_difference",
    "free_energy_error",
    "js_divergence",
    "interatomic_distances",
    "distance_histogram",
    "integrated_autocorr_time",
    "ReferenceSettings",
    "DW4_SETTINGS",
    "dw4_reference_samples",
]
