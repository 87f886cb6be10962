"""Alanine dipeptide as an OpenMM system: amber14 (ff14SB: Maier et al. 2015, JCTC 11, 3696) in vacuum,
its energies and forces, and the minimisation that made the shipped structure.

Vacuum means no cutoff and no solvent. Bonds to hydrogen are constrained by default (2 fs steps);
``constraints="none"`` gives the unconstrained system (1 fs). Units are OpenMM's: nm, ps, kJ/mol.
OpenMM (Eastman et al. 2017, "OpenMM 7: rapid development of high performance algorithms for
molecular dynamics", PLoS Comput. Biol. 13, e1005659) is imported only when a function here runs.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...util import atomic_write_text
from ._openmm import constraint_method, make_context, openmm_modules
from .dihedrals import phi_psi
from .structure import N_ATOMS, build_structure, pdb_text, structure_path

__all__ = [
    "AlanineSystem",
    "EnergyForce",
    "alanine_system",
    "energy_force_evaluator",
    "openmm_energy_force",
    "write_structure",
]


@dataclass(frozen=True)
class AlanineSystem:
    """An OpenMM ``system`` (amber14, vacuum), its ``topology``, and ``positions`` (22, 3) in nm."""

    system: Any
    topology: Any
    positions: np.ndarray


def alanine_system(pdb: str | Path | None = None, *, constraints: str = "hbonds") -> AlanineSystem:
    """Alanine dipeptide in vacuum with amber14 (``amber14-all.xml``, ff14SB): no cutoff, no solvent;
    ``constraints="hbonds"`` (bonds to H rigid, default) or ``"none"``. ``pdb`` defaults to the
    shipped minimised structure."""
    _, app, unit = openmm_modules()
    cons = constraint_method(constraints)
    pdb_file = app.PDBFile(str(pdb or structure_path()))
    forcefield = app.ForceField("amber14-all.xml")
    system = forcefield.createSystem(pdb_file.topology, nonbondedMethod=app.NoCutoff, constraints=cons)
    positions = np.asarray(pdb_file.getPositions(asNumpy=True).value_in_unit(unit.nanometer), dtype=np.float64)
    if positions.shape != (N_ATOMS, 3):
        raise ValueError(f"{pdb} has {positions.shape[0]} atoms, expected {N_ATOMS}")
    return AlanineSystem(system, pdb_file.topology, positions)


EnergyForce = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Configurations (N, 22, 3) nm -> energies (N,) kJ/mol and forces (N, 22, 3) kJ/mol/nm."""


def energy_force_evaluator(system: Any, platform: str = "Reference") -> EnergyForce:
    """A function ``x -> (energies, forces)`` of an OpenMM ``system`` that reuses one Context (building
    one costs far more than an evaluation): energies (N,) in kJ/mol and forces (N, 22, 3) in kJ/mol/nm
    at configurations ``x`` (N, 22, 3), (N, 66) or (22, 3) in nm. A non-finite frame gets NaN."""
    openmm, _, unit = openmm_modules()
    ctx = make_context(system, openmm.VerletIntegrator(0.001), platform)
    per_nm = unit.kilojoule_per_mole / unit.nanometer

    def evaluate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float64).reshape(-1, N_ATOMS, 3)
        energies, forces = np.full(len(x), np.nan), np.full(x.shape, np.nan)
        for k, frame in enumerate(x):
            if np.isfinite(frame).all():
                ctx.setPositions(frame)
                state = ctx.getState(getEnergy=True, getForces=True)
                energies[k] = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
                forces[k] = state.getForces(asNumpy=True).value_in_unit(per_nm)
        return energies, forces

    return evaluate


def openmm_energy_force(system: Any, x: np.ndarray, platform: str = "Reference") -> tuple[np.ndarray, np.ndarray]:
    """Potential energies (N,) in kJ/mol and forces (N, 22, 3) in kJ/mol/nm of an OpenMM ``system`` at
    configurations ``x`` (N, 22, 3) or (22, 3) in nm (float64 arithmetic on the Reference platform);
    ``energy_force_evaluator`` for repeated calls."""
    return energy_force_evaluator(system, platform)(x)


def write_structure(path: str | Path, *, phi: float = -80.0, psi: float = 75.0, tolerance: float = 0.1) -> dict:
    """Build the structure (``build_structure``), minimise it with amber14 in vacuum (no constraints,
    L-BFGS to an RMS force below ``tolerance`` kJ/mol/nm), and write it to ``path`` as PDB, atomically.
    Returns the energies before and after (kJ/mol) and the minimised ``phi``/``psi`` (degrees)."""
    openmm, app, unit = openmm_modules()

    built = build_structure(phi, psi)
    pdb = app.PDBFile(io.StringIO(pdb_text(built, "built")))
    system = app.ForceField("amber14-all.xml").createSystem(pdb.topology, nonbondedMethod=app.NoCutoff)
    ctx = make_context(system, openmm.VerletIntegrator(0.001), "Reference")
    ctx.setPositions(built)
    e0 = ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    openmm.LocalEnergyMinimizer.minimize(ctx, tolerance, 0)
    state = ctx.getState(getEnergy=True, getPositions=True)
    x = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    e1 = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    angles = np.degrees(phi_psi(x[None]))[0]
    title = f"alanine dipeptide, amber14 vacuum minimum: E = {e1:.2f} kJ/mol, phi/psi = {angles[0]:.1f}/{angles[1]:.1f}"
    atomic_write_text(path, pdb_text(np.asarray(x), title))
    return {"energy_built": e0, "energy": e1, "phi": float(angles[0]), "psi": float(angles[1])}
