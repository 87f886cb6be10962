"""Langevin MD of a system of the two-for-one study (Arts et al. 2023, "Two for one") with the true
force or a trained model's, by BAOAB (Leimkuhler & Matthews 2013), written to a trajectory file:
what ``scoredyn physics simulate`` runs."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ....learning import load_trained
from ....physics import Boltzmann, baoab, equilibrium_samples, field_force, get_system
from ....util import atomic_savez
from .comparison import BLOWN_UP_RADIUS

__all__ = ["simulate"]


def simulate(
    system: str,
    out_dir: str | Path,
    *,
    force: str = "true",
    sigma: float = 0.1,
    steps: int = 2000,
    dt: float | None = None,
    friction: float = 1.0,
    kT: float = 1.0,
    walkers: int = 256,
    save_every: int = 10,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """BAOAB MD of ``system`` from equilibrium starts, written to ``out_dir/trajectory.npz`` atomically.

    ``force="true"`` uses ``-grad U``; any other value is a trained run folder (``load_trained``) whose
    ``kT s_theta(x, sigma)`` is the force. The file holds ``x`` (frames, walkers, D) float32, ``times``
    (frames,) and ``settings`` (a JSON string). Returns the settings plus ``path``, ``frames`` and
    ``blown_up`` (fraction of walkers that went non-finite or beyond ``|x_i| = 50``).
    """
    s = get_system(system)
    if not kT > 0 or not sigma > 0:
        raise ValueError(f"kT and sigma must be positive, got kT={kT}, sigma={sigma}")
    target = Boltzmann(s.target.potential, kT)
    if force == "true":
        fn = target.force
    else:
        model = load_trained(force)
        if model.field_dim != s.dim:
            raise ValueError(f"the model in {force} is {model.field_dim}-D; {system} is {s.dim}-D")
        fn = field_force(model.field, sigma, kT)
    dt = dt or s.dt
    x0 = equilibrium_samples(system, walkers, seed)
    with torch.inference_mode():
        g = torch.Generator().manual_seed(seed + 1)
        tr = baoab(fn, x0, dt=dt, friction=friction, kT=kT, n_steps=steps, save_every=save_every,
                   generator=g, remove_com=s.n_particles, progress=progress)  # fmt: skip
    ok = torch.isfinite(tr.x).all(dim=(0, 2)) & (tr.x.abs().amax(dim=(0, 2)) <= BLOWN_UP_RADIUS)
    settings = {"system": system, "force": force, "sigma": sigma if force != "true" else None, "steps": steps,
                "dt": dt, "friction": friction, "kT": kT, "walkers": walkers, "save_every": save_every,
                "seed": seed, "start": "equilibrium samples"}  # fmt: skip
    path = Path(out_dir) / "trajectory.npz"
    atomic_savez(path, x=tr.x.to(torch.float32).numpy(), times=tr.times.numpy(), settings=json.dumps(settings))
    return {**settings, "path": str(path), "frames": int(tr.x.shape[0]), "blown_up": 1.0 - float(ok.double().mean())}
