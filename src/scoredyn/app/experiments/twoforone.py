"""Two for one (Arts et al. 2023, "Two for one: diffusion models and force fields for coarse-grained
molecular dynamics", JCTC 19, 6151): one denoiser trained on equilibrium samples gives two samplers.

* **i.i.d. route** — run a diffusion sampler on the trained field (``scoredyn.sampling.sample``).
* **MD route** — use the score of the density smoothed at a small noise level ``sigma`` as a force,
  ``F(x) = kT s_theta(x, sigma)`` (``field_force``), and run BAOAB Langevin dynamics with it.

Both are scored against the exact (2-D) or reference (DW-4) equilibrium: the free-energy error
along the reaction coordinate in kT over the populated range, and a Jensen–Shannon divergence.
Small ``sigma`` means little smoothing bias (``O(sigma^2)``) but a network that is least accurate
there; large ``sigma`` means a smooth, accurate field of the wrong (blurred) density. The table
over ``sigma`` shows that trade-off, and the route's figure is taken at the best ``sigma``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ...core.fields import Field
from ...learning import Dataset, TrainConfig, TrainedModel, Trainer, apply_overrides, load_trained
from ...physics.analysis import integrated_autocorr_time
from ...physics.integrators import baoab
from ...physics.reference import ReferenceSettings
from ...physics.systems import (
    SYSTEMS,
    Reference,
    System,
    equilibrium_samples,
    get_system,
    reference_for,
    reference_from_samples,
    score_samples,
)
from ...util.files import atomic_savez, atomic_write_json

__all__ = [
    "SIGMAS",
    "augment_particles",
    "train_system_model",
    "train",
    "compare",
    "simulate",
    "compare_run",
    "multi_sigma_force",
]

SIGMAS = (0.01, 0.03, 0.1, 0.3)
"""Default noise levels (data units) of the MD route's table."""

BLOWN_UP_RADIUS = 50.0
"""A walker that leaves ``|x_i| <= 50`` (all systems live within ~8 of the origin) or turns
non-finite counts as blown up; the route's statistics use the walkers that did not."""

MAX_BLOWN_UP = 0.01
"""A ``sigma`` whose MD lost more than this fraction of its walkers is not eligible as the best."""

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


def multi_sigma_force(field: Field, sigmas: Sequence[float], kT: float, walkers: int):
    """``field_force`` at several noise levels in one network call: rows ``k*W .. (k+1)*W - 1`` of the
    (K W, D) input get ``F(x) = kT alpha_k s_theta(alpha_k x, t_k)`` with ``sigma(t_k)/alpha(t_k) =
    sigmas[k]`` (the same formula as ``field_force``, batched over ``k``)."""
    sig = torch.as_tensor(list(sigmas), dtype=torch.float64)
    if sig.ndim != 1 or not bool((sig > 0).all()):
        raise ValueError(f"sigmas must be positive, got {list(sigmas)}")
    t = field.process.sigma_hat_to_t(sig).repeat_interleave(walkers)
    alpha = field.process.alpha(t)[:, None]

    def force(x: Tensor) -> Tensor:
        a = alpha.to(x.dtype)
        return (kT * a) * field.score(a * x, t)

    return force


@dataclass
class _Run:
    """What the figures need beyond the numbers: the reference and the samples of each route."""

    reference: Reference
    exact: Tensor
    iid: Tensor
    md: dict[float, Tensor] = field(default_factory=dict)
    md_true: Tensor | None = None


def _md_stats(s: System, ref: Reference, frames: Tensor, dt: float, save_every: int) -> tuple[dict, Tensor]:
    """Scores of MD frames (S, W, D) of one force: blown-up walkers out, the rest pooled."""
    ok = torch.isfinite(frames).all(dim=(0, 2)) & (frames.abs().amax(dim=(0, 2)) <= BLOWN_UP_RADIUS)
    stats = {"blown_up": 1.0 - float(ok.double().mean())}
    good = frames[:, ok]
    if good.shape[1] == 0:
        return {**stats, "fe_error_kT": math.inf, "js": math.nan, "tau_int": math.nan}, good.reshape(-1, s.dim)
    pooled = good.reshape(-1, s.dim)
    obs = torch.stack([s.slow_observable(f) for f in good])  # (S, W)
    try:
        tau = integrated_autocorr_time(obs) * dt * save_every
    except ValueError:  # constant series (e.g. no pair ever crosses): undefined
        tau = math.nan
    return {**stats, **score_samples(s, ref, pooled), "tau_int": tau}, pooled


def _compare(
    system: str,
    model: TrainedModel,
    *,
    sigmas: Sequence[float],
    n_iid: int,
    sampler: str,
    sampler_steps: int,
    walkers: int,
    dt: float | None,
    friction: float,
    burn_in: float | None,
    duration: float | None,
    seed: int,
    reference: Reference | None,
    progress: bool,
    floor_samples: Tensor | None = None,
    starts: Tensor | None = None,
) -> tuple[dict, _Run]:
    from ..sampling import sample

    s = get_system(system)
    kT = s.target.kT
    ref = reference or reference_for(system)
    dt, burn_in, duration = dt or s.dt, s.burn_in if burn_in is None else burn_in, duration or s.duration
    burn, n_steps = round(burn_in / dt), round((burn_in + duration) / dt)

    # the Monte-Carlo floor: fresh exact (2-D) or reference (DW-4) samples of the i.i.d. route's size
    exact = floor_samples if floor_samples is not None else equilibrium_samples(system, n_iid, seed + 2)
    floor = {**score_samples(s, ref, exact), "n": n_iid, "source": ref.source}

    # route (a): i.i.d. samples from the trained model
    t0 = time.perf_counter()
    result, _ = sample(model, sampler, steps=sampler_steps, n=n_iid, seed=seed)
    iid = {**score_samples(s, ref, result.x), "n": n_iid, "sampler": sampler, "steps": sampler_steps,
           "nfe": int(result.nfe), "seconds": time.perf_counter() - t0}  # fmt: skip

    # route (b): BAOAB with the learned force at every sigma at once (common starts and noise),
    # and with the true force: the MD floor for the same walkers, run length and correlations
    x0 = starts if starts is not None else equilibrium_samples(system, walkers, seed + 3)
    md_knobs = dict(dt=dt, friction=friction, kT=kT, n_steps=n_steps, save_every=s.save_every,
                    remove_com=s.n_particles)  # fmt: skip
    t0 = time.perf_counter()
    with torch.inference_mode():
        force = multi_sigma_force(model.field, sigmas, kT, walkers)
        tr = baoab(force, x0.repeat(len(sigmas), 1), generator=torch.Generator().manual_seed(seed + 4),
                   progress=progress, **md_knobs)  # fmt: skip
    md_seconds = time.perf_counter() - t0
    tr_true = baoab(s.target.force, x0, generator=torch.Generator().manual_seed(seed + 4), **md_knobs)
    keep = torch.arange(tr.x.shape[0]) * s.save_every >= burn
    run = _Run(ref, exact, result.x)
    table = []
    for k, sigma in enumerate(sigmas):
        stats, pooled = _md_stats(s, ref, tr.x[keep, k * walkers : (k + 1) * walkers], dt, s.save_every)
        table.append({"sigma": float(sigma), **stats})
        run.md[float(sigma)] = pooled
    true_stats, run.md_true = _md_stats(s, ref, tr_true.x[keep], dt, s.save_every)

    eligible = [r for r in table if r["blown_up"] <= MAX_BLOWN_UP and math.isfinite(r["fe_error_kT"])]
    best = min(eligible or table, key=lambda r: r["fe_error_kT"])
    md_settings = {"walkers": walkers, "dt": dt, "friction": friction, "burn_in": burn_in, "duration": duration,
                   "save_every": s.save_every, "frames_per_walker": int(keep.sum()), "seconds": md_seconds}  # fmt: skip
    md = {
        **best,
        **md_settings,
        "selected_by": f"lowest fe_error_kT among sigmas with blown_up <= {MAX_BLOWN_UP}"
        + ("" if eligible else " (none eligible: lowest overall)"),
    }
    out = {
        "system": system,
        "kT": kT,
        "coordinate": s.coordinate,
        "routes": {"iid": iid, "md": md},
        "sigma_table": table,
        "reference": {**floor, "md_true_force": {**true_stats, **md_settings}},
        "model": {"directory": model.directory, "step": model.step},
        "seed": seed,
    }
    return _finite(out), run


def compare(
    system: str,
    model: TrainedModel,
    *,
    sigmas: Sequence[float] = SIGMAS,
    n_iid: int = 10000,
    sampler: str = "sde",
    sampler_steps: int = 100,
    walkers: int = 256,
    dt: float | None = None,
    friction: float = 1.0,
    burn_in: float | None = None,
    duration: float | None = None,
    seed: int = 0,
    reference: Reference | None = None,
    progress: bool = False,
) -> dict:
    """Score both routes of a trained model of ``system`` against its equilibrium.

    Route ``iid``: ``n_iid`` samples of ``sampler`` (``sampler_steps`` steps). Route ``md``: BAOAB with
    ``F = kT s_theta(x, sigma)`` for each ``sigma`` in ``sigmas`` (data units), ``walkers`` walkers
    started from fresh equilibrium samples, ``burn_in`` then ``duration`` time units (system defaults,
    ``get_system``), frames every ``save_every`` steps pooled; the best ``sigma`` by free-energy error
    among those that lost at most 1% of their walkers is the route's entry, the rest is
    ``sigma_table``. ``reference`` holds the floors: the same metrics for ``n_iid`` fresh exact /
    reference samples, and for the same MD with the true force.

    Returns:
        ``{"system", "kT", "coordinate", "routes": {"iid": {"fe_error_kT", "js", ...}, "md":
        {"fe_error_kT", "js", "sigma", "tau_int", "blown_up", ...}}, "sigma_table": [...],
        "reference": {"fe_error_kT", "js", "n", "source", "md_true_force": {...}}, "model", "seed"}``;
        non-finite numbers are ``None`` (JSON null).
    """
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}: use one of {', '.join(SYSTEMS)}")
    if not isinstance(walkers, int) or walkers < 1 or not isinstance(n_iid, int) or n_iid < 1:
        raise ValueError(f"walkers and n_iid must be positive integers, got {walkers!r}, {n_iid!r}")
    return _compare(system, model, sigmas=sigmas, n_iid=n_iid, sampler=sampler, sampler_steps=sampler_steps,
                    walkers=walkers, dt=dt, friction=friction, burn_in=burn_in, duration=duration, seed=seed,
                    reference=reference, progress=progress)[0]  # fmt: skip


def _finite(obj):
    """Non-finite floats as ``None``, recursively (JSON has no inf/NaN)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


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
    import json

    from ...physics.boltzmann import Boltzmann
    from ...physics.integrators import field_force

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


QUICK = {"n_iid": 4000, "walkers": 128, "duration_factor": 0.5}
N_REF_DW4 = 20000
POOL_SETTINGS = ReferenceSettings(thin=25.0)
"""DW-4's pooled reference run: ``DW4_SETTINGS`` but frames 25 time units apart (its slowest
observable's integrated autocorrelation time is 15-20, ``reference.py``): half the cost of 50."""


def compare_run(
    system: str,
    out_dir: str | Path,
    steps: int | None = None,
    seed: int = 0,
    *,
    quick: bool = False,
    progress: bool = False,
) -> dict:
    """Train (or reuse the model in ``out_dir/model`` if trained to ``steps``, default
    ``TRAIN_STEPS[system]``), compare both routes, and write ``out_dir/compare.json``,
    ``out_dir/free_energy.png`` and, for the 2-D systems, ``out_dir/samples.png``. ``quick``: fewer
    samples and walkers and half the MD time. Returns the ``compare`` dict (the ``physics compare
    --json`` contract)."""
    from .figures import free_energy_figure, samples_figure

    out = Path(out_dir)
    s = get_system(system)
    steps = TRAIN_STEPS[system] if steps is None else steps
    knobs = {"n_iid": 10000, "walkers": 256, "duration": s.duration}
    if quick:
        knobs = {
            "n_iid": QUICK["n_iid"],
            "walkers": QUICK["walkers"],
            "duration": s.duration * QUICK["duration_factor"],
        }
    n_train, n_iid, walkers = N_TRAIN[system], knobs["n_iid"], knobs["walkers"]
    if s.n_particles is None:
        ref, floor, starts, x_train = reference_for(system), None, None, None
    else:  # one cached reference run, split by frames: training set, reference, floor, MD starts
        n_ref = N_REF_DW4 // 2 if quick else N_REF_DW4
        pool = equilibrium_samples(system, n_train + n_ref + n_iid + walkers, seed, cache=out / "reference.npz",
                                   settings=POOL_SETTINGS, progress=progress)  # fmt: skip
        x_train, rest = pool[:n_train], pool[n_train:]
        ref = reference_from_samples(system, rest[:n_ref])
        floor, starts = rest[n_ref : n_ref + n_iid], rest[n_ref + n_iid :]
    model_dir = out / "model"
    try:
        model = load_trained(model_dir)
        if model.step < steps:
            raise ValueError("not trained far enough")
    except ValueError:
        if x_train is None:
            model = train(system, model_dir, steps, seed, progress=progress)
        else:
            model = train_system_model(system, x_train, model_dir, steps, seed, progress=progress)
    result, run = _compare(system, model, sigmas=SIGMAS, sampler="sde", sampler_steps=100, dt=None, friction=1.0,
                           burn_in=None, seed=seed, reference=ref, progress=progress, floor_samples=floor,
                           starts=starts, **knobs)  # fmt: skip
    atomic_write_json(out / "compare.json", result)
    from ..viz import save_figure

    best = result["routes"]["md"]["sigma"]
    save_figure(free_energy_figure(s, run.reference, run.iid, run.md[best], best), out / "free_energy.png")
    if s.js_edges is not None:
        save_figure(samples_figure(s, run.exact, run.iid, run.md[best], best), out / "samples.png")
    return result
