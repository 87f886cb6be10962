"""The training recipe of the two-for-one study per system (Arts et al. 2023, "Two for one", JCTC 19,
6151): one diffusion model per system, trained with the project's ``Trainer`` on equilibrium samples.

The 2-D potentials get an MLP; DW-4 gets an E(n)-equivariant graph network (Garcia Satorras et al. 2021,
"E(n) equivariant graph neural networks", ICML), whose symmetries are built in.
``augment_particles`` makes symmetric images of particle configurations for a net without them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from ....learning import Dataset, TrainConfig, TrainedModel, Trainer, apply_overrides
from ....physics import equilibrium_samples, get_system

__all__ = ["N_TRAIN", "AUGMENT", "TRAIN_STEPS", "augment_particles", "train_system_model", "train"]

# training recipe: configs/mog6.toml's v on VP, but times drawn log-normally in sigma_hat (EDM's,
# scaled to the data) instead of uniformly in t: uniform t spends ~9% of the batch below
# sigma_hat = 0.3, where the force is read, and its force error at sigma_hat = 0.1 was 40-50% (1500
# steps) against 23% (3000 steps, log-normal). EMA 0.998: runs are short (0.999 still remembers the
# warm-up after 1500 steps). The 2-D potentials get an MLP; DW-4 an E(n)-equivariant graph network,
# which has its symmetries built in: an MLP (256 x 3, 8 symmetric images per sample, 3000 steps)
# plateaued at loss 12.6 with a 97% force error and 1.5 kT free-energy error on both routes.
# DW-4's pair distances fluctuate by ~0.25 about minima 3 apart, so its log-normal is centred lower
# (P_mean -2.2: median sigma_hat 0.4 instead of 1.1) and it trains longer: force error at sigma 0.03
# 46% (1500 steps, P_mean -1.2) -> 44% (4000) -> 17% (4000, P_mean -2.2) -> 16% (8000, -2.2).
_RECIPE = [
    "objective.name=v", "objective.process=vp", "objective.time=lognormal", "optim.lr=2e-3",
    "optim.batch_size=256", "optim.warmup=200", "optim.ema_decay=0.998", "run.log_every=100", "run.ckpt_every=1000",
]  # fmt: skip
_SYSTEM_RECIPE = {"double-well": [], "muller-brown": [], "dw4": ["objective.p_mean=-2.2"]}
_NET = {"double-well": ("mlp", 128, 3), "muller-brown": ("mlp", 128, 3), "dw4": ("egnn", 64, 4)}
N_TRAIN = {"double-well": 20000, "muller-brown": 20000, "dw4": 10000}
AUGMENT = {"double-well": 0, "muller-brown": 0, "dw4": 0}
TRAIN_STEPS = {"double-well": 3000, "muller-brown": 3000, "dw4": 8000}
"""Default optimizer steps per system (``train``, ``compare_run`` and the CLI when no steps are given)."""


def augment_particles(x: Tensor, n_particles: int, copies: int, generator: torch.Generator) -> Tensor:
    """``copies`` symmetric images of every configuration: a random permutation of the particles, a
    random rotation about the centre of mass and, with probability 1/2, a reflection (all exact
    symmetries of a pair potential), centre of mass removed. 2-D particles only.

    Args:
        x: (N, n_particles * 2) configurations.
        copies: images per configuration (the originals are not included).

    Returns:
        (copies * N, n_particles * 2), float64.
    """
    if x.ndim != 2 or x.shape[1] != 2 * n_particles:
        raise ValueError(f"x must be (N, {2 * n_particles}) (particles in 2-D), got {tuple(x.shape)}")
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    pos = x.to(torch.float64).reshape(x.shape[0], n_particles, 2)
    pos = (pos - pos.mean(dim=1, keepdim=True)).repeat(copies, 1, 1)
    m = pos.shape[0]
    perm = torch.argsort(torch.rand(m, n_particles, generator=generator), dim=1)
    pos = torch.gather(pos, 1, perm[:, :, None].expand(-1, -1, 2))
    theta = 2 * math.pi * torch.rand(m, generator=generator, dtype=torch.float64)
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (m, 2, 2)
    flip = torch.where(torch.rand(m, generator=generator) < 0.5, -1.0, 1.0).to(torch.float64)
    rot[:, :, 0] *= flip[:, None]  # R diag(flip, 1): a reflection before the rotation
    return torch.einsum("mij,mpj->mpi", rot, pos).reshape(m, -1)


def train_system_model(
    system: str,
    samples: Tensor,
    out_dir: str | Path,
    steps: int,
    seed: int = 0,
    *,
    augment: int | None = None,
    overrides: Sequence[str] = (),
    progress: bool = False,
) -> TrainedModel:
    """Train a diffusion model on equilibrium ``samples`` (N, D) with the project's ``Trainer``.

    The recipe is v-prediction on the VP process with log-normal noise levels; the net is an MLP
    (hidden 128 x 3) for the 2-D potentials and an ``EGNN`` (hidden 64 x 4 layers) for DW-4, which
    needs no augmentation. Particle configurations are centred (centre of mass removed). The trainer
    has no augmentation hook: with ``augment = k > 0`` the training set is replicated ``k`` times
    with random permutations, rotations and reflections (``augment_particles``), the originals
    included (default ``AUGMENT[system]``, 0 for all systems now). Resumes a run already in
    ``out_dir`` (same settings); returns the EMA model as ``load_trained(out_dir)`` would.

    Args:
        overrides: extra ``"section.key=value"`` config items (applied last).
    """
    s = get_system(system)
    if samples.ndim != 2 or samples.shape[1] != s.dim:
        raise ValueError(f"samples must be (N, {s.dim}) for {system}, got {tuple(samples.shape)}")
    copies = AUGMENT[system] if augment is None else int(augment)
    x = samples.to(torch.float64)
    if copies > 0 and s.n_particles is None:
        raise ValueError(f"augment applies to particle systems; {system} has none")
    if s.n_particles is not None:
        centred = x - x.reshape(len(x), s.n_particles, -1).mean(1).repeat(1, s.n_particles)
        g = torch.Generator().manual_seed(seed + 1)
        x = torch.cat([centred, augment_particles(x, s.n_particles, copies, g)]) if copies > 0 else centred
    net, hidden, depth = _NET[system]
    items = [
        *_RECIPE, *_SYSTEM_RECIPE[system], f"model.net={net}", f"model.hidden={hidden}", f"model.depth={depth}",
        f"model.particles={s.n_particles or 0}", f"data.name=physics:{system}",
        f"data.n={x.shape[0]}", f"data.seed={seed}", f"optim.steps={steps}", f"run.seed={seed}",
        f"run.out={out_dir}", f"run.progress={progress}", *overrides,
    ]  # fmt: skip
    data = Dataset(x.detach().to(torch.float32).cpu(), None, 0, f"physics:{system}")
    trainer = Trainer(apply_overrides(TrainConfig(), items), data=data)
    trainer.fit()
    return trainer.trained_model()


def train(
    system: str, out_dir: str | Path, steps: int | None = None, seed: int = 0, *, progress: bool = False
) -> TrainedModel:
    """Draw ``N_TRAIN[system]`` equilibrium samples (``equilibrium_samples``) and train on them for
    ``steps`` (default ``TRAIN_STEPS[system]``)."""
    steps = TRAIN_STEPS[system] if steps is None else steps
    x = equilibrium_samples(system, N_TRAIN[system], seed, progress=progress)
    return train_system_model(system, x, out_dir, steps, seed, progress=progress)
