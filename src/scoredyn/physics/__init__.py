"""Physics: potentials and their Boltzmann densities, Langevin MD with any force (a denoiser's too),
and the analysis that judges runs (free energies, divergences, correlation times).

``potentials`` (energies with analytic forces), ``boltzmann`` (Boltzmann targets, exact 2-D
references), ``integrators`` (BAOAB, Leimkuhler & Matthews 2013), ``forces`` (a denoiser's score as
a force, Arts et al. 2023, "Two for one"), ``reference`` (DW-4 equilibrium by long MD), ``systems``
(the systems of the two-for-one study and their scores), ``analysis`` (free energies, divergences,
autocorrelation times), and the subpackage ``alanine`` (alanine dipeptide with OpenMM, imported on its
own: ``from scoredyn.physics import alanine``). The experiments that train models and compare routes
live in the application (``scoredyn.app.experiments``).
"""

from .analysis import (
    POPULATED_THRESHOLD,
    Profile,
    Surface,
    aligned_difference,
    bin_edges,
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
from .forces import ForceFn, field_force, multi_sigma_force
from .integrators import LangevinState, Trajectory, baoab, baoab_init, baoab_step
from .potentials import (
    DoubleWell2D,
    DoubleWellPairs,
    LennardJones,
    MullerBrown,
    PairPotential,
    Potential,
    pair_distances,
)
from .reference import DW4_SETTINGS, ReferenceSettings, dw4_reference_samples
from .systems import (
    SYSTEMS,
    Reference,
    System,
    density_grid,
    equilibrium_samples,
    get_system,
    reference_for,
    reference_from_samples,
    score_samples,
)

__all__ = [
    "Potential",
    "DoubleWell2D",
    "MullerBrown",
    "PairPotential",
    "DoubleWellPairs",
    "LennardJones",
    "pair_distances",
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
    "ForceFn",
    "field_force",
    "multi_sigma_force",
    "Profile",
    "Surface",
    "POPULATED_THRESHOLD",
    "bin_edges",
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
