"""Alanine dipeptide (ACE-ALA-NME) in vacuum with OpenMM's amber14 (ff14SB): the structure, its
backbone dihedrals, reference MD, the Ramachandran analysis that judges other routes against it, and
the aligned Cartesian frame a diffusion model learns in (as in Arts et al. 2023, "Two for one").

One concept per module: ``structure`` (atoms, internal coordinates, the shipped PDB), ``dihedrals``
(``phi``, ``psi``), ``system`` (the OpenMM system, energies and forces, minimisation),
``trajectories`` (reference MD and the shipped subset), ``ramachandran`` (basins, free-energy
surface and its error), ``alignment`` (Kabsch).

Units are OpenMM's: nm, ps, kJ/mol. Coordinates are arrays ``(N, 22, 3)`` in the atom order of the
PDB (0-5 ACE, 6-15 ALA, 16-21 NME). ``phi = C(ACE)-N-CA-C`` (atoms 4, 6, 8, 14) and
``psi = N-CA-C-N(NME)`` (atoms 6, 8, 14, 16), in radians in ``(-pi, pi]``, IUPAC sign convention.

OpenMM is an optional dependency (``pip install scoredyn[physics]``): it is imported only by the
functions that run it; the structure, ``phi_psi``, ``aligned_cartesian`` and the analysis work
without it.
"""

from .alignment import aligned_cartesian, kabsch
from .dihedrals import dihedral, phi_psi
from .ramachandran import BOLTZMANN_KJ, basin_populations, block_populations, ramachandran_error, ramachandran_surface
from .structure import (
    N_ATOMS,
    PHI_ATOMS,
    PSI_ATOMS,
    build_structure,
    pdb_text,
    place_atom,
    read_structure,
    structure_path,
)
from .system import (
    AlanineSystem,
    EnergyForce,
    alanine_system,
    energy_force_evaluator,
    openmm_energy_force,
    write_structure,
)
from .trajectories import (
    REFERENCE_FILE,
    SUBSET_FILE,
    AlanineSettings,
    AlanineTrajectory,
    load_reference,
    load_subset,
    openmm_reference,
    write_subset,
)

__all__ = [
    "N_ATOMS",
    "PHI_ATOMS",
    "PSI_ATOMS",
    "BOLTZMANN_KJ",
    "AlanineSystem",
    "AlanineSettings",
    "AlanineTrajectory",
    "EnergyForce",
    "REFERENCE_FILE",
    "SUBSET_FILE",
    "place_atom",
    "structure_path",
    "read_structure",
    "build_structure",
    "pdb_text",
    "write_structure",
    "alanine_system",
    "openmm_energy_force",
    "energy_force_evaluator",
    "dihedral",
    "phi_psi",
    "openmm_reference",
    "load_reference",
    "load_subset",
    "write_subset",
    "basin_populations",
    "block_populations",
    "ramachandran_surface",
    "ramachandran_error",
    "aligned_cartesian",
    "kabsch",
]
