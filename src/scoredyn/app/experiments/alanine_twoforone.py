"""Two for one for alanine dipeptide (Arts et al. 2023, "Two for one", JCTC 19, 6151): one diffusion model
trained on reference frames gives i.i.d. conformations and a force field for Langevin MD.

**Representation.** A frame ``x`` (22, 3) in nm is centred on its geometric centre and rotated onto
the shipped amber14 minimum (Kabsch, as ``alanine.aligned_cartesian``), flattened to 66-D ``y``, and
standardised with one scalar: ``z = (y - mu) / scale`` (``mu`` the mean aligned frame, ``scale`` the
RMS of ``y - mu`` over frames and coordinates, ~0.1 nm). One scalar keeps noise isotropic, so
``sigma`` in model units is ``sigma * scale`` nm. ``AlignedFrame`` holds ``(reference, mu, scale)`` and
is written next to the model (``frame.json``) so the field maps back to nm.

**Force.** At a lab-frame configuration ``x`` with centre ``c`` and Kabsch rotation ``R``
(``y_i = R (x_i - c)``), the learned score ``s_z`` of the data smoothed at ``sigma`` gives, in kJ/mol/nm,

.. math::
    F_y = \\frac{kT}{\\text{scale}}\\, s_z\\Big(\\frac{y - \\mu}{\\text{scale}}\\Big), \\qquad
    F_{x,i} = R^\\top F_{y,i},

then the net force and net torque (zero for any physical force field) are projected out. The force
is rotation- and translation-equivariant by construction. MD is unconstrained BAOAB with the atoms'
amber14 masses; the true-force floor is the same MD with OpenMM's unconstrained amber14 force.
The learned force is not exactly conservative and is noisy at small ``sigma``: at friction 1/ps
walkers heat up and break bonds within 0.2-1 ps (halving ``dt`` does not help); friction 20/ps
(which leaves the configurational equilibrium unchanged) keeps ``sigma >= 0.1`` stable.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ...learning import Dataset, TrainConfig, TrainedModel, Trainer, apply_overrides
from ...physics import ForceFn, baoab, multi_sigma_force
from ...physics.alanine import (
    BOLTZMANN_KJ,
    N_ATOMS,
    alanine_system,
    energy_force_evaluator,
    kabsch,
    phi_psi,
    ramachandran_error,
    read_structure,
)
from ...util import atomic_write_json
from .results import best_sigma, json_safe

__all__ = [
    "SIGMAS",
    "BLOWN_UP_BOND",
    "MAX_BLOWN_UP",
    "AlignedFrame",
    "kabsch",
    "aligned_force",
    "openmm_force",
    "atom_masses",
    "bond_pairs",
    "bond_error",
    "train_alanine",
    "compare_alanine",
    "load_frame",
]

SIGMAS = (0.02, 0.05, 0.1, 0.2, 0.5)
"""Default noise levels of the MD table, in model (standardised) units; nm = sigma * frame.scale."""

KT_300 = BOLTZMANN_KJ * 300.0
BLOWN_UP_BOND = 0.1
"""A walker any of whose bonds ever deviates more than 0.1 nm from its mean reference length (a bond
stretched by 70-100%: broken), or that turns non-finite, counts as blown up. Softened bonds (the
smoothed density's) are not: their error is ``bond_error_nm``."""

MAX_BLOWN_UP = 0.01
"""A ``sigma`` whose MD lost more than this fraction of its walkers is not eligible as the best."""

_RECIPE = [
    "model.net=mlp", "objective.name=v", "objective.process=vp", "objective.time=lognormal",
    "objective.p_mean=-2.0", "objective.p_std=1.5", "optim.lr=1e-3", "optim.batch_size=256",
    "optim.warmup=200", "optim.ema_decay=0.998", "run.log_every=200", "run.ckpt_every=2000",
]  # fmt: skip


@dataclass(frozen=True)
class AlignedFrame:
    """The 66-D representation: ``z = (kabsch(x, reference) - mu) / scale``. ``reference`` (22, 3) nm,
    centred; ``mu`` (66,) nm; ``scale`` nm."""

    reference: Tensor
    mu: Tensor
    scale: float

    @classmethod
    def fit(cls, frames: Tensor, reference: Tensor | None = None) -> AlignedFrame:
        """Mean and RMS scale of ``frames`` (N, 22, 3) nm aligned onto ``reference`` (default the minimum)."""
        ref = torch.as_tensor(read_structure() if reference is None else reference, dtype=torch.float64)
        ref = ref - ref.mean(dim=0)
        y = kabsch(torch.as_tensor(frames, dtype=torch.float64).reshape(-1, N_ATOMS, 3), ref)[0].reshape(-1, 66)
        mu = y.mean(dim=0)
        return cls(ref, mu, float((y - mu).pow(2).mean().sqrt()))

    def encode(self, x: Tensor) -> Tensor:
        """Frames (N, 22, 3) or (N, 66) nm -> (N, 66) model units, float64."""
        x = torch.as_tensor(x, dtype=torch.float64).reshape(-1, N_ATOMS, 3)
        return (kabsch(x, self.reference)[0].reshape(-1, 66) - self.mu) / self.scale

    def decode(self, z: Tensor) -> Tensor:
        """Model units (N, 66) -> frames (N, 22, 3) nm in the aligned frame, float64."""
        return (z.to(torch.float64) * self.scale + self.mu).reshape(-1, N_ATOMS, 3)

    def to_dict(self) -> dict:
        return {"reference": self.reference.tolist(), "mu": self.mu.tolist(), "scale": self.scale, "units": "nm"}

    @classmethod
    def from_dict(cls, d: dict) -> AlignedFrame:
        t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
        return cls(t(d["reference"]), t(d["mu"]), float(d["scale"]))


def _project_rigid(f: Tensor, r: Tensor) -> Tensor:
    """Remove the net force and the net torque about the centre from forces ``f`` (N, A, 3) at centred
    positions ``r`` (N, A, 3): ``f_i - fbar - omega x r_i`` with ``I omega = sum_i r_i x f_i``,
    ``I = sum_i (|r_i|^2 1 - r_i r_i^T)``."""
    f = f - f.mean(dim=1, keepdim=True)
    tau = torch.linalg.cross(r, f, dim=-1).sum(dim=1)
    eye = torch.eye(3, dtype=r.dtype)
    inertia = (r * r).sum(dim=(1, 2))[:, None, None] * eye - r.transpose(1, 2) @ r
    omega = torch.linalg.solve(inertia, tau[..., None])[..., 0]
    return f - torch.linalg.cross(omega[:, None, :].expand_as(r), r, dim=-1)


def aligned_force(score_z: ForceFn, frame: AlignedFrame, kT: float, *, project: bool = True) -> ForceFn:
    """A force on lab-frame configurations from a score in the aligned, standardised frame (module
    docstring): ``x`` (N, 66) nm -> ``F`` (N, 66) kJ/mol/nm (``kT`` in kJ/mol). ``score_z``: (N, 66) model
    units -> score in model units (e.g. ``multi_sigma_force(field, sigmas, 1.0, walkers)``).
    ``project`` removes net force and torque."""

    def force(x: Tensor) -> Tensor:
        pos = x.to(torch.float64).reshape(-1, N_ATOMS, 3)
        y, r, _ = kabsch(pos, frame.reference)
        s = score_z(((y.reshape(-1, 66) - frame.mu) / frame.scale).to(x.dtype)).to(torch.float64)
        f_y = (kT / frame.scale) * s.reshape(-1, N_ATOMS, 3)
        f = f_y @ r  # rows: F_x,i = R^T F_y,i
        if project:
            f = _project_rigid(f, pos - pos.mean(dim=1, keepdim=True))
        return f.reshape(x.shape).to(x.dtype)

    return force


def openmm_force(platform: str = "Reference") -> ForceFn:
    """amber14's unconstrained vacuum force (kJ/mol/nm) at (N, 66) nm, one OpenMM context reused
    (``alanine.energy_force_evaluator``); a non-finite configuration gets a NaN force."""
    evaluate = energy_force_evaluator(alanine_system(constraints="none").system, platform)

    def force(x: Tensor) -> Tensor:
        _, f = evaluate(x.detach().to(torch.float64).cpu().numpy())
        return torch.as_tensor(f, dtype=x.dtype).reshape(x.shape)

    return force


def atom_masses() -> Tensor:
    """amber14 masses (66,) in dalton, each atom's repeated over x, y, z (OpenMM's system)."""
    from openmm import unit

    s = alanine_system(constraints="none").system
    m = [s.getParticleMass(i).value_in_unit(unit.dalton) for i in range(N_ATOMS)]
    return torch.tensor(m, dtype=torch.float64).repeat_interleave(3)


def bond_pairs() -> list[tuple[int, int]]:
    """Covalent bonds of the minimum: atom pairs closer than 0.16 nm (longest bond C-C 0.153 nm,
    shortest non-bond H-H 0.17 nm)."""
    x = read_structure()
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    return [(i, j) for i in range(N_ATOMS) for j in range(i + 1, N_ATOMS) if d[i, j] < 0.16]


def _bond_lengths(x: Tensor) -> Tensor:
    i, j = (torch.tensor(v) for v in zip(*bond_pairs(), strict=True))
    pos = x.to(torch.float64).reshape(*x.shape[:-1], N_ATOMS, 3) if x.shape[-1] == 66 else x.to(torch.float64)
    return (pos[..., i, :] - pos[..., j, :]).norm(dim=-1)


def bond_error(x: Tensor, reference: Tensor) -> float:
    """Mean over bonds of |mean bond length of ``x`` - that of ``reference``| (nm); frames (N, 22, 3)/(N, 66)."""
    return float((_bond_lengths(x).mean(0) - _bond_lengths(reference).mean(0)).abs().mean())


def train_alanine(
    frames: Tensor, out_dir: str | Path, steps: int, seed: int = 0, *, hidden: int = 256, depth: int = 3,
    overrides: Sequence[str] = (), progress: bool = False,
) -> tuple[TrainedModel, AlignedFrame]:  # fmt: skip
    """Train an MLP (v on VP, log-normal noise levels ``ln sigma ~ N(-2, 1.5^2)`` in model units) on
    reference ``frames`` (N, 22, 3) nm in the aligned, standardised frame; writes ``out_dir/frame.json``.
    Returns the EMA model and the frame."""
    frame = AlignedFrame.fit(frames)
    z = frame.encode(frames)
    items = [
        *_RECIPE, f"model.hidden={hidden}", f"model.depth={depth}", "data.name=physics:alanine",
        f"data.n={z.shape[0]}", f"data.seed={seed}", f"optim.steps={steps}", f"run.seed={seed}",
        f"run.out={out_dir}", f"run.progress={progress}", *overrides,
    ]  # fmt: skip
    trainer = Trainer(apply_overrides(TrainConfig(), items), data=Dataset(z.float(), None, 0, "physics:alanine"))
    trainer.fit()
    atomic_write_json(Path(out_dir) / "frame.json", frame.to_dict())
    return trainer.trained_model(), frame


def _md_scores(frames: Tensor, ref_angles: Tensor, ref_bonds: Tensor) -> tuple[dict, Tensor]:
    """Scores of MD frames (S, W, 66): walkers whose bonds break (or go non-finite) out, the rest pooled."""
    lengths = _bond_lengths(frames)  # (S, W, B)
    bad = ~torch.isfinite(lengths).all(dim=(0, 2)) | ((lengths - ref_bonds).abs().amax(dim=(0, 2)) > BLOWN_UP_BOND)
    stats = {"blown_up": float(bad.double().mean())}
    good = frames[:, ~bad].reshape(-1, 66)
    if good.shape[0] == 0:
        return {**stats, "fe_error_kT": math.inf, "js": math.nan, "bond_error_nm": math.nan}, good
    bond = float((_bond_lengths(good).mean(0) - ref_bonds).abs().mean())
    return {**stats, **_rama(phi_psi(good), ref_angles), "bond_error_nm": bond}, good


def _rama(angles: Tensor, ref_angles: Tensor) -> dict:
    """``ramachandran_error`` on 36 x 36 cells, and ``fe_error_kT_18`` on 18 x 18 (20-degree) cells:
    short MD from few starts leaves some populated 10-degree cells empty (``fe_error_kT`` = inf)."""
    err, coarse = ramachandran_error(angles, ref_angles), ramachandran_error(angles, ref_angles, bins=18)
    return {"fe_error_kT": err["fe_error_kT"], "js": err["js"], "fe_error_kT_18": coarse["fe_error_kT"]}


def compare_alanine(
    model: TrainedModel, frame: AlignedFrame, *, reference: Tensor, floor: Tensor, starts: Tensor,
    sigmas: Sequence[float] = SIGMAS, n_iid: int = 5000, sampler: str = "sde", sampler_steps: int = 100,
    dt: float = 0.0005, friction: float = 20.0, n_steps: int = 8000, burn_in: int = 2000, save_every: int = 50,
    kT: float = KT_300, seed: int = 0, true_force: bool = True,
) -> tuple[dict, dict[str, Tensor]]:  # fmt: skip
    """Score both routes of an alanine model against ``reference`` frames (M, 22, 3) nm (held out).

    Route ``iid``: ``n_iid`` samples of ``sampler``, decoded to nm. Route ``md``: unconstrained BAOAB
    (``dt`` ps, amber14 masses) from ``starts`` (W, 22, 3) with ``aligned_force`` at each ``sigma``
    (model units), ``n_steps`` steps, frames every ``save_every`` after ``burn_in`` steps pooled; the
    best ``sigma`` by ``fe_error_kT`` among those losing <= 1% of walkers is the route's entry.
    ``reference["iid_floor"]``: the metrics of ``floor`` (n_iid frames of the reference law, disjoint
    from ``reference``); ``reference["md_true_force"]``: the same MD with OpenMM's force. Each table
    row also has ``force_rel_error``, ``|F_learned - F_true| / |F_true|`` at the starts.

    Returns the contract dict (non-finite numbers as None) and the angles of each route.
    """
    from ..sampling import sample

    if not (0 <= burn_in < n_steps and save_every >= 1):
        raise ValueError(f"need 0 <= burn_in < n_steps and save_every >= 1, got {burn_in}, {n_steps}, {save_every}")
    ref = torch.as_tensor(reference, dtype=torch.float64).reshape(-1, N_ATOMS, 3)
    ref_angles, ref_bonds = phi_psi(ref), _bond_lengths(ref).mean(0)
    fl = torch.as_tensor(floor, dtype=torch.float64).reshape(-1, N_ATOMS, 3)
    floor_stats = {**_rama(phi_psi(fl), ref_angles), "n": fl.shape[0], "bond_error_nm": bond_error(fl, ref),
                   "n_reference": ref.shape[0]}  # fmt: skip

    # route (a): i.i.d. samples, decoded to nm
    t0 = time.perf_counter()
    result, _ = sample(model, sampler, steps=sampler_steps, n=n_iid, seed=seed)
    x_iid = frame.decode(result.x)
    iid = {**_rama(phi_psi(x_iid), ref_angles), "bond_error_nm": bond_error(x_iid, ref),
           "n": n_iid, "sampler": sampler, "steps": sampler_steps, "nfe": int(result.nfe),
           "seconds": time.perf_counter() - t0}  # fmt: skip
    angles = {"reference": ref_angles, "iid": phi_psi(x_iid)}

    # route (b): BAOAB with the learned force at every sigma at once (common starts and noise)
    x0 = torch.as_tensor(starts, dtype=torch.float64).reshape(-1, 66)
    w, m = x0.shape[0], atom_masses()[None]
    knobs = dict(dt=dt, friction=friction, kT=kT, n_steps=n_steps, save_every=save_every, masses=m,
                 remove_com=N_ATOMS)  # fmt: skip
    t0 = time.perf_counter()
    with torch.inference_mode():
        force = aligned_force(multi_sigma_force(model.field, sigmas, 1.0, w), frame, kT)
        tr = baoab(force, x0.repeat(len(sigmas), 1), generator=torch.Generator().manual_seed(seed + 4), **knobs)
        f_learned = force(x0.repeat(len(sigmas), 1)).reshape(len(sigmas), w, 66)
    md_seconds = time.perf_counter() - t0
    f_true = openmm_force()(x0) if true_force else None
    keep = torch.arange(tr.x.shape[0]) * save_every >= burn_in
    table = []
    for k, sigma in enumerate(sigmas):
        stats, good = _md_scores(tr.x[keep, k * w : (k + 1) * w], ref_angles, ref_bonds)
        row = {"sigma": float(sigma), "sigma_nm": float(sigma) * frame.scale, **stats}
        if f_true is not None:  # relative RMS error of the learned force at the (reference) starts
            row["force_rel_error"] = float((f_learned[k] - f_true).norm() / f_true.norm())
        table.append(row)
        angles[f"md_{sigma:g}"] = phi_psi(good) if good.shape[0] else torch.empty(0, 2)
    md_settings = {"walkers": w, "dt_ps": dt, "friction_per_ps": friction, "n_steps": n_steps, "burn_in": burn_in,
                   "save_every": save_every, "frames_per_walker": int(keep.sum()), "seconds": md_seconds,
                   "constraints": "none", "masses": "amber14"}  # fmt: skip
    best, selected_by = best_sigma(table, MAX_BLOWN_UP)
    md = {**best, **md_settings, "selected_by": selected_by}
    out_ref = {"iid_floor": floor_stats}
    if true_force:
        t0 = time.perf_counter()
        tr_true = baoab(openmm_force(), x0, generator=torch.Generator().manual_seed(seed + 4), **knobs)
        true_stats, good = _md_scores(tr_true.x[keep], ref_angles, ref_bonds)
        out_ref["md_true_force"] = {**true_stats, **md_settings, "seconds": time.perf_counter() - t0}
        angles["md_true"] = phi_psi(good)
    out = {
        "system": "alanine-dipeptide", "kT": kT, "units": "nm, ps, kJ/mol; sigma in model units (nm = sigma_nm)",
        "representation": {"kind": "Kabsch-aligned Cartesian, centred, standardised", "scale_nm": frame.scale},
        "routes": {"iid": iid, "md": md}, "sigma_table": table, "reference": out_ref,
        "model": {"directory": model.directory, "step": model.step}, "seed": seed,
    }  # fmt: skip
    return json_safe(out), angles


def load_frame(out_dir: str | Path) -> AlignedFrame:
    """The ``AlignedFrame`` written by ``train_alanine`` into ``out_dir``."""
    return AlignedFrame.from_dict(json.loads((Path(out_dir) / "frame.json").read_text()))
