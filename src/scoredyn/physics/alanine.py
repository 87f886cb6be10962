"""Alanine dipeptide (ACE-ALA-NME) in vacuum with OpenMM's amber14 (ff14SB): the structure, its
backbone dihedrals, reference MD, and the aligned Cartesian frame a diffusion model learns in. The
Ramachandran analysis that judges other routes against the reference is ``ramachandran.py`` (its
names are re-exported here).

The structure is built here from internal coordinates (``_ZMATRIX``: standard peptide bond lengths,
angles and a trans backbone at ``(phi, psi) = (-80, 75)`` degrees), then minimised with amber14 in
vacuum; the minimised structure ships as ``data/alanine_dipeptide.pdb`` (``write_structure`` remakes
it). Vacuum means no cutoff and no solvent. Bonds to hydrogen are constrained by default (2 fs steps);
``constraints="none"`` gives the unconstrained system (1 fs).

Units are OpenMM's: nm, ps, kJ/mol. Coordinates are arrays ``(N, 22, 3)`` in the atom order of the
PDB (0-5 ACE, 6-15 ALA, 16-21 NME). ``phi = C(ACE)-N-CA-C`` (atoms 4, 6, 8, 14) and
``psi = N-CA-C-N(NME)`` (atoms 6, 8, 14, 16), in radians in ``(-pi, pi]``, IUPAC sign convention.

OpenMM is an optional dependency (``pip install scoredyn[physics]``): it is imported only by the
functions that run it; ``phi_psi``, ``aligned_cartesian`` and the analysis work without it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..util.files import atomic_savez, atomic_write_json, atomic_write_text
from .ramachandran import (
    BOLTZMANN_KJ,
    basin_populations,
    block_populations,
    ramachandran_error,
    ramachandran_figure,
    ramachandran_surface,
)

__all__ = [
    "N_ATOMS",
    "PHI_ATOMS",
    "PSI_ATOMS",
    "AlanineSystem",
    "AlanineSettings",
    "AlanineTrajectory",
    "structure_path",
    "build_structure",
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
    "ramachandran_figure",
    "aligned_cartesian",
    "kabsch",
]

N_ATOMS = 22
PHI_ATOMS = (4, 6, 8, 14)
PSI_ATOMS = (6, 8, 14, 16)

# --- the structure ----------------------------------------------------------------------------------------

# One row per atom, in PDB order: residue, atom name, element, and the internal coordinates placing it:
# references (a, b, c) already placed, bond |c d| (Angstrom), angle b-c-d and dihedral a-b-c-d (degrees).
# Names are ff14SB's template names; a dihedral ("phi", offset) is the chosen backbone angle plus offset.
# Geometry: Engh & Huber (1991)-like peptide values, tetrahedral methyls, trans (180) peptide bonds.
_ZMATRIX: tuple[tuple, ...] = (
    ("ACE", "HH31", "H", (5, 4, 1), 1.09, 109.5, 0.0),
    ("ACE", "CH3", "C", None, None, None, None),
    ("ACE", "HH32", "H", (5, 4, 1), 1.09, 109.5, 120.0),
    ("ACE", "HH33", "H", (5, 4, 1), 1.09, 109.5, -120.0),
    ("ACE", "C", "C", (1,), 1.522, None, None),
    ("ACE", "O", "O", (1, 4), 1.229, 120.5, None),
    ("ALA", "N", "N", (5, 1, 4), 1.335, 116.6, 180.0),
    ("ALA", "H", "H", (5, 4, 6), 1.01, 119.8, 180.0),
    ("ALA", "CA", "C", (1, 4, 6), 1.458, 121.9, 180.0),  # omega(ACE) = 180
    ("ALA", "HA", "H", (4, 6, 8), 1.09, 109.5, ("phi", 120.0)),
    ("ALA", "CB", "C", (4, 6, 8), 1.525, 110.4, ("phi", -120.0)),
    ("ALA", "HB1", "H", (6, 8, 10), 1.09, 109.5, 180.0),
    ("ALA", "HB2", "H", (6, 8, 10), 1.09, 109.5, 60.0),
    ("ALA", "HB3", "H", (6, 8, 10), 1.09, 109.5, -60.0),
    ("ALA", "C", "C", (4, 6, 8), 1.525, 111.2, ("phi", 0.0)),
    ("ALA", "O", "O", (6, 8, 14), 1.229, 120.5, ("psi", 180.0)),
    ("NME", "N", "N", (6, 8, 14), 1.335, 116.2, ("psi", 0.0)),
    ("NME", "H", "H", (15, 14, 16), 1.01, 119.8, 180.0),
    ("NME", "CH3", "C", (8, 14, 16), 1.449, 121.9, 180.0),  # omega(NME) = 180
    ("NME", "HH31", "H", (14, 16, 18), 1.09, 109.5, 180.0),
    ("NME", "HH32", "H", (14, 16, 18), 1.09, 109.5, 60.0),
    ("NME", "HH33", "H", (14, 16, 18), 1.09, 109.5, -60.0),
)
_BUILD_ORDER = (1, 4, 5, 0, 2, 3, 6, 7, 8, 14, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20, 21)


def _place(a: np.ndarray, b: np.ndarray, c: np.ndarray, bond: float, angle: float, torsion: float) -> np.ndarray:
    """The point ``d`` with ``|c d| = bond``, angle ``b-c-d = angle`` and dihedral ``a-b-c-d = torsion``
    (degrees), in the frame of ``a, b, c`` (the natural extension reference frame, NeRF)."""
    theta, tau = math.radians(angle), math.radians(torsion)
    e_bc = (c - b) / np.linalg.norm(c - b)
    n = np.cross(b - a, e_bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, e_bc)
    local = bond * np.array([-math.cos(theta), math.sin(theta) * math.cos(tau), math.sin(theta) * math.sin(tau)])
    return c + local[0] * e_bc + local[1] * m + local[2] * n


def build_structure(phi: float = -80.0, psi: float = 75.0) -> np.ndarray:
    """Alanine dipeptide (L-alanine) from the internal coordinates ``_ZMATRIX``: (22, 3) positions in nm,
    with backbone dihedrals ``phi``, ``psi`` (degrees) exactly. Unminimised; see ``write_structure``."""
    pos = np.full((N_ATOMS, 3), np.nan)
    angles = {"phi": phi, "psi": psi}

    def value(v) -> float:
        return angles[v[0]] + v[1] if isinstance(v, tuple) else float(v)

    for i in _BUILD_ORDER:
        _, _, _, refs, bond, angle, torsion = _ZMATRIX[i]
        if refs is None:
            pos[i] = 0.0
        elif len(refs) == 1:
            pos[i] = pos[refs[0]] + [bond, 0.0, 0.0]
        elif len(refs) == 2:  # in the xy-plane
            b, c = pos[refs[0]], pos[refs[1]]
            pos[i] = _place(b + [0.0, 1.0, 0.0], b, c, bond, angle, 0.0)
        else:
            a, b, c = (pos[r] for r in refs)
            pos[i] = _place(a, b, c, bond, angle, value(torsion))
    assert np.isfinite(pos).all()
    return pos / 10.0  # Angstrom -> nm


def _pdb_text(positions_nm: np.ndarray, title: str) -> str:
    """A PDB file of the 22 atoms (ATOM records, one chain, residues 1-3), positions in nm."""
    lines = [f"REMARK   1 {title}"]
    for k, ((res, name, element, *_), xyz) in enumerate(zip(_ZMATRIX, 10.0 * positions_nm, strict=True)):
        resseq = ("ACE", "ALA", "NME").index(res) + 1
        padded = f" {name:<3}" if len(name) < 4 else name
        x, y, z = xyz
        lines.append(
            f"ATOM  {k + 1:5d} {padded:4s} {res:3s} A{resseq:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00"
            f"          {element:>2s}"
        )
    lines += ["TER", "END"]
    return "\n".join(lines) + "\n"


def structure_path() -> Path:
    """The shipped, amber14-minimised structure ``scoredyn/physics/data/alanine_dipeptide.pdb``."""
    return Path(str(resources.files("scoredyn.physics") / "data" / "alanine_dipeptide.pdb"))


# --- the OpenMM system ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlanineSystem:
    """An OpenMM ``system`` (amber14, vacuum), its ``topology``, and ``positions`` (22, 3) in nm."""

    system: Any
    topology: Any
    positions: np.ndarray


def _openmm():
    try:
        import openmm
        import openmm.app
        import openmm.unit
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("alanine dipeptide MD needs OpenMM: pip install 'scoredyn[physics]'") from e
    return openmm, openmm.app, openmm.unit


def _constraints(constraints: str):
    _, app, _ = _openmm()
    table = {"hbonds": app.HBonds, "none": None}
    if constraints not in table:
        raise ValueError(f"constraints must be 'hbonds' or 'none', got {constraints!r}")
    return table[constraints]


def alanine_system(pdb: str | Path | None = None, *, constraints: str = "hbonds") -> AlanineSystem:
    """Alanine dipeptide in vacuum with amber14 (``amber14-all.xml``, ff14SB): no cutoff, no solvent;
    ``constraints="hbonds"`` (bonds to H rigid, default) or ``"none"``. ``pdb`` defaults to the
    shipped minimised structure."""
    _, app, unit = _openmm()
    cons = _constraints(constraints)
    pdb_file = app.PDBFile(str(pdb or structure_path()))
    forcefield = app.ForceField("amber14-all.xml")
    system = forcefield.createSystem(pdb_file.topology, nonbondedMethod=app.NoCutoff, constraints=cons)
    positions = np.asarray(pdb_file.getPositions(asNumpy=True).value_in_unit(unit.nanometer), dtype=np.float64)
    if positions.shape != (N_ATOMS, 3):
        raise ValueError(f"{pdb} has {positions.shape[0]} atoms, expected {N_ATOMS}")
    return AlanineSystem(system, pdb_file.topology, positions)


def _platform(name: str):
    openmm, _, _ = _openmm()
    platform = openmm.Platform.getPlatformByName(name)
    return platform, ({"Threads": "1"} if name == "CPU" else {})


def _context(system, integrator, platform: str):
    openmm, _, _ = _openmm()
    plat, props = _platform(platform)
    return openmm.Context(system, integrator, plat, props)


EnergyForce = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def energy_force_evaluator(system: Any, platform: str = "Reference") -> EnergyForce:
    """A function ``x -> (energies, forces)`` of an OpenMM ``system`` that reuses one Context (building
    one costs far more than an evaluation): energies (N,) in kJ/mol and forces (N, 22, 3) in kJ/mol/nm
    at configurations ``x`` (N, 22, 3), (N, 66) or (22, 3) in nm. A non-finite frame gets NaN."""
    openmm, _, unit = _openmm()
    ctx = _context(system, openmm.VerletIntegrator(0.001), platform)
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
    openmm, app, unit = _openmm()
    import io

    built = build_structure(phi, psi)
    pdb = app.PDBFile(io.StringIO(_pdb_text(built, "built")))
    system = app.ForceField("amber14-all.xml").createSystem(pdb.topology, nonbondedMethod=app.NoCutoff)
    ctx = _context(system, openmm.VerletIntegrator(0.001), "Reference")
    ctx.setPositions(built)
    e0 = ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    openmm.LocalEnergyMinimizer.minimize(ctx, tolerance, 0)
    state = ctx.getState(getEnergy=True, getPositions=True)
    x = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    e1 = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    angles = np.degrees(phi_psi(x[None]))[0]
    title = f"alanine dipeptide, amber14 vacuum minimum: E = {e1:.2f} kJ/mol, phi/psi = {angles[0]:.1f}/{angles[1]:.1f}"
    atomic_write_text(path, _pdb_text(np.asarray(x), title))
    return {"energy_built": e0, "energy": e1, "phi": float(angles[0]), "psi": float(angles[1])}


# --- dihedrals ------------------------------------------------------------------------------------------


def dihedral(p0, p1, p2, p3):
    """Dihedral angle of the points ``p0-p1-p2-p3`` (each (..., 3), torch or NumPy), in radians in
    ``(-pi, pi]`` (IUPAC: positive is clockwise looking from ``p1`` to ``p2``):

    .. math::
        \\tau = \\operatorname{atan2}\\big(|b_1|\\, b_0 \\cdot n_2,\\; n_1 \\cdot n_2\\big), \\qquad
        n_1 = b_0 \\times b_1, \\; n_2 = b_1 \\times b_2,

    with ``b_0 = p_1 - p_0``, ``b_1 = p_2 - p_1``, ``b_2 = p_3 - p_2`` (Blondel & Karplus 1996, eq. 12).
    """
    if isinstance(p0, Tensor):
        lib, cross = torch, lambda a, b: torch.linalg.cross(a, b, dim=-1)
    else:
        lib, cross = np, lambda a, b: np.cross(a, b)
        p0, p1, p2, p3 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2, p3))
    b0, b1, b2 = p1 - p0, p2 - p1, p3 - p2
    n1, n2 = cross(b0, b1), cross(b1, b2)
    y = (b0 * n2).sum(-1) * lib.sqrt((b1 * b1).sum(-1))
    return lib.arctan2(y, (n1 * n2).sum(-1))


def phi_psi(x):
    """Backbone dihedrals ``(phi, psi)`` in radians, shape (N, 2), of configurations ``x`` (N, 22, 3) or
    (N, 66) (torch or NumPy; the result has ``x``'s type)."""
    if x.ndim == 2 and x.shape[1] == 3 * N_ATOMS:
        x = x.reshape(x.shape[0], N_ATOMS, 3)
    if x.ndim != 3 or tuple(x.shape[1:]) != (N_ATOMS, 3):
        raise ValueError(f"x must be (N, {N_ATOMS}, 3) or (N, {3 * N_ATOMS}), got {tuple(x.shape)}")
    phi = dihedral(*(x[:, i] for i in PHI_ATOMS))
    psi = dihedral(*(x[:, i] for i in PSI_ATOMS))
    return torch.stack([phi, psi], dim=1) if isinstance(x, Tensor) else np.stack([phi, psi], axis=1)


# --- reference MD -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlanineSettings:
    """How a reference trajectory is made (OpenMM ``LangevinMiddleIntegrator``, amber14 in vacuum).

    Attributes:
        temperature: K.
        timestep: ps (0.002 with ``constraints="hbonds"``; use 0.001 with ``"none"``).
        friction: 1/ps.
        save_every: steps between saved frames (500 x 2 fs = 1 ps).
        equilibration: steps run and discarded before the first saved frame.
        constraints: ``"hbonds"`` or ``"none"``.
        seed: the integrator's random seed and the seed of the initial Maxwell-Boltzmann velocities.
        platform: ``"Reference"`` (double precision, deterministic; measured ~30-40k steps/s here, 20-30
            times the ``"CPU"`` platform, whose per-step overhead dominates for 22 atoms) or ``"CPU"``
            (one thread).
    """

    temperature: float = 300.0
    timestep: float = 0.002
    friction: float = 1.0
    save_every: int = 500
    equilibration: int = 50_000
    constraints: str = "hbonds"
    seed: int = 0
    platform: str = "Reference"

    @property
    def kT(self) -> float:
        """Thermal energy in kJ/mol."""
        return BOLTZMANN_KJ * self.temperature

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AlanineTrajectory:
    """Saved frames ``x`` (S, 22, 3) float32 in nm, their ``angles`` (S, 2) (phi, psi in radians), the
    ``settings`` (a dict of ``AlanineSettings`` plus ``n_frames``, ``steps_per_second``, versions),
    and the file it lives in."""

    x: np.ndarray
    angles: np.ndarray
    settings: dict
    path: Path | None = None

    @property
    def time_ps(self) -> np.ndarray:
        """Time of each frame after the equilibration, in ps."""
        s = self.settings
        return s["timestep"] * s["save_every"] * np.arange(1, self.x.shape[0] + 1)


REFERENCE_FILE = "alanine_reference.npz"


def _simulation(settings: AlanineSettings, n_frames: int, positions: np.ndarray | None = None, progress: bool = False):
    """Run OpenMM: equilibration, then ``n_frames`` frames every ``save_every`` steps. Returns the
    frames (n_frames, 22, 3) float64 nm and the measured steps per second."""
    openmm, _, unit = _openmm()
    from .integrators import _Bar

    s = settings
    sys_ = alanine_system(constraints=s.constraints)
    integrator = openmm.LangevinMiddleIntegrator(
        s.temperature * unit.kelvin, s.friction / unit.picosecond, s.timestep * unit.picosecond
    )
    integrator.setRandomNumberSeed(s.seed)
    ctx = _context(sys_.system, integrator, s.platform)
    ctx.setPositions(sys_.positions if positions is None else positions)
    ctx.applyConstraints(1e-8)
    ctx.setVelocitiesToTemperature(s.temperature * unit.kelvin, s.seed)
    integrator.step(s.equilibration)
    frames = np.empty((n_frames, N_ATOMS, 3))
    start = time.perf_counter()
    with _Bar(progress, n_frames) as bar:
        for k in range(n_frames):
            integrator.step(s.save_every)
            frames[k] = ctx.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
            bar.advance(k + 1)
    rate = n_frames * s.save_every / max(time.perf_counter() - start, 1e-9)
    return frames, rate


def openmm_reference(
    n_frames: int,
    *,
    out_dir: str | Path,
    settings: AlanineSettings = AlanineSettings(),  # noqa: B008 - frozen dataclass
    progress: bool = False,
) -> AlanineTrajectory:
    """A reference trajectory of alanine dipeptide in vacuum with OpenMM, cached in ``out_dir``.

    ``out_dir/alanine_reference.npz`` holds ``x`` (n_frames, 22, 3) float32 nm, ``angles`` (n_frames, 2)
    float32 (phi, psi in radians) and ``settings`` (a JSON string); ``alanine_reference.json`` repeats
    the settings. Both are written atomically. If the file exists with the same settings and at
    least ``n_frames`` frames, it is read instead of rerun (its first ``n_frames`` frames).

    Seeded: the same settings give the same trajectory on the same platform and OpenMM version.
    """
    if not isinstance(n_frames, int) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}")
    if settings.save_every < 1 or settings.equilibration < 0:
        raise ValueError(f"save_every must be >= 1 and equilibration >= 0, got {settings}")
    _constraints(settings.constraints)
    path = Path(out_dir) / REFERENCE_FILE
    if path.is_file():
        cached = load_reference(path)
        same = {k: cached.settings.get(k) for k in settings.to_dict()} == settings.to_dict()
        if same and cached.x.shape[0] >= n_frames:
            return AlanineTrajectory(cached.x[:n_frames], cached.angles[:n_frames], cached.settings, path)
    openmm, _, _ = _openmm()
    frames, rate = _simulation(settings, n_frames, progress=progress)
    x = frames.astype(np.float32)
    angles = phi_psi(frames).astype(np.float32)
    meta = settings.to_dict() | {
        "n_frames": n_frames,
        "kT": settings.kT,
        "steps_per_second": rate,
        "forcefield": "amber14-all.xml (ff14SB), vacuum, NoCutoff",
        "openmm": openmm.__version__,
        "units": "nm, ps, kJ/mol; angles in radians",
    }
    atomic_savez(path, x=x, angles=angles, settings=np.array(json.dumps(meta)))
    atomic_write_json(path.with_suffix(".json"), meta)
    return AlanineTrajectory(x, angles, meta, path)


def load_reference(path: str | Path) -> AlanineTrajectory:
    """A trajectory written by ``openmm_reference`` (the ``.npz`` file, or the folder holding it)."""
    path = Path(path)
    path = path / REFERENCE_FILE if path.is_dir() else path
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    with np.load(path, allow_pickle=False) as f:
        return AlanineTrajectory(f["x"], f["angles"], json.loads(str(f["settings"])), path)


SUBSET_FILE = "alanine_subset.npz"


def write_subset(
    reference: AlanineTrajectory, path: str | Path, *, n_angles: int = 20_000, n_frames: int = 1000
) -> None:
    """The small test set shipped as ``data/alanine_subset.npz``: ``angles`` of ``n_angles`` frames and
    coordinates ``x`` of ``n_frames`` frames (float32), each evenly strided over the whole reference."""
    total = reference.x.shape[0]
    if not 1 <= n_frames <= n_angles <= total:
        raise ValueError(f"need 1 <= n_frames ({n_frames}) <= n_angles ({n_angles}) <= frames ({total})")
    ia = np.linspace(0, total - 1, n_angles).round().astype(int)
    ix = np.linspace(0, total - 1, n_frames).round().astype(int)
    meta = reference.settings | {"subset_of": reference.settings.get("n_frames"), "angle_frames": n_angles}
    meta |= {"coordinate_frames": n_frames}
    atomic_savez(
        path,
        x=reference.x[ix].astype(np.float32),
        angles=reference.angles[ia].astype(np.float32),
        settings=np.array(json.dumps(meta)),
    )


def load_subset() -> tuple[np.ndarray, np.ndarray, dict]:
    """The shipped subset of the reference: coordinates (1000, 22, 3) float32 nm, angles (20000, 2) float32
    radians, and the settings of the run it was taken from."""
    path = Path(str(resources.files("scoredyn.physics") / "data" / SUBSET_FILE))
    with np.load(path, allow_pickle=False) as f:
        return f["x"], f["angles"], json.loads(str(f["settings"]))


# --- representation for a diffusion model --------------------------------------------------------------


def kabsch(x: Tensor, reference: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Kabsch (1976) alignment of frames ``x`` (N, A, 3) onto ``reference`` (A, 3): with centred ``X``
    and ``Y = reference - mean``, ``H = X^T Y = U S V^T``,

    .. math::
        R = V \\operatorname{diag}(1, 1, d)\\, U^T, \\qquad d = \\operatorname{sign} \\det(V U^T),

    the proper rotation minimising ``sum_i |R x_i - y_i|^2`` (chirality kept). Centring is by the
    geometric centre (unweighted, as the Kabsch least squares is). Returns ``y_i = R (x_i - c)``
    (N, A, 3), ``R`` (N, 3, 3) and the centres ``c`` (N, 1, 3)."""
    c = x.mean(dim=1, keepdim=True)
    xc, yc = x - c, reference - reference.mean(dim=0)
    u, _, vh = torch.linalg.svd(xc.transpose(1, 2) @ yc)
    v = vh.transpose(1, 2)
    d = torch.sign(torch.linalg.det(v @ u.transpose(1, 2)))
    diag = torch.ones(x.shape[0], 3, dtype=x.dtype)
    diag[:, 2] = torch.where(d == 0, torch.ones_like(d), d)
    r = v @ torch.diag_embed(diag) @ u.transpose(1, 2)
    return xc @ r.transpose(1, 2), r, c


def aligned_cartesian(x, reference) -> Tensor:
    """Frames ``x`` (N, 22, 3) (or (N, 66)) centred and rotated onto ``reference`` (22, 3) by ``kabsch``,
    flattened to (N, 66), float64: the 66-D representation (no translation, no rotation left,
    chirality kept)."""
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x, dtype=torch.float64)
    ref = torch.as_tensor(np.asarray(reference) if not isinstance(reference, Tensor) else reference)
    ref = ref.to(torch.float64).reshape(-1, 3)
    x = x.reshape(x.shape[0], -1, 3)
    if x.shape[1] != ref.shape[0]:
        raise ValueError(f"x has {x.shape[1]} atoms per frame but reference has {ref.shape[0]}")
    return kabsch(x, ref)[0].reshape(x.shape[0], -1)
