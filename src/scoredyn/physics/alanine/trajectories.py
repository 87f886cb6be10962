"""Reference molecular dynamics of alanine dipeptide with OpenMM, and the small subset of it that ships.

``openmm_reference`` runs ``LangevinMiddleIntegrator`` (Zhang et al. 2019, "Unified efficient
thermostat scheme for the canonical ensemble with holonomic or isokinetic constraints via molecular
dynamics", J. Phys. Chem. A 123, 6056) on amber14 in vacuum and caches the frames and their
backbone dihedrals in one ``.npz`` file (written atomically); ``write_subset`` strides a long run
down to ``data/alanine_subset.npz`` and ``load_subset`` reads that back. Units: nm, ps, kJ/mol;
angles in radians.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ...util import ProgressBar, atomic_savez, atomic_write_json
from ._openmm import constraint_method, make_context, openmm_modules
from .dihedrals import phi_psi
from .ramachandran import BOLTZMANN_KJ
from .structure import N_ATOMS
from .system import alanine_system

__all__ = [
    "AlanineSettings",
    "AlanineTrajectory",
    "REFERENCE_FILE",
    "SUBSET_FILE",
    "openmm_reference",
    "load_reference",
    "write_subset",
    "load_subset",
]


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
    openmm, _, unit = openmm_modules()
    s = settings
    sys_ = alanine_system(constraints=s.constraints)
    integrator = openmm.LangevinMiddleIntegrator(
        s.temperature * unit.kelvin, s.friction / unit.picosecond, s.timestep * unit.picosecond
    )
    integrator.setRandomNumberSeed(s.seed)
    ctx = make_context(sys_.system, integrator, s.platform)
    ctx.setPositions(sys_.positions if positions is None else positions)
    ctx.applyConstraints(1e-8)
    ctx.setVelocitiesToTemperature(s.temperature * unit.kelvin, s.seed)
    integrator.step(s.equilibration)
    frames = np.empty((n_frames, N_ATOMS, 3))
    start = time.perf_counter()
    with ProgressBar("md", n_frames, enabled=progress, every=100) as bar:
        for k in range(n_frames):
            integrator.step(s.save_every)
            frames[k] = ctx.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
            bar.update(k + 1)
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
    constraint_method(settings.constraints)
    path = Path(out_dir) / REFERENCE_FILE
    if path.is_file():
        cached = load_reference(path)
        same = {k: cached.settings.get(k) for k in settings.to_dict()} == settings.to_dict()
        if same and cached.x.shape[0] >= n_frames:
            return AlanineTrajectory(cached.x[:n_frames], cached.angles[:n_frames], cached.settings, path)
    openmm, _, _ = openmm_modules()
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
