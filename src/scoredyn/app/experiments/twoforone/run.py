"""One system of the two-for-one study end to end (Arts et al. 2023, "Two for one"): train (or reuse)
its model, compare both routes, and write ``compare.json`` and the figures: what ``scoredyn physics
compare`` and ``benchmarks/physics_twoforone.py`` run."""

from __future__ import annotations

from pathlib import Path

from ....learning import load_trained
from ....physics import ReferenceSettings, equilibrium_samples, get_system, reference_for, reference_from_samples
from ....util import atomic_write_json
from .comparison import SIGMAS, compare_routes
from .training import N_TRAIN, TRAIN_STEPS, train, train_system_model

__all__ = ["QUICK", "N_REF_DW4", "POOL_SETTINGS", "compare_run"]

QUICK = {"n_iid": 4000, "walkers": 128, "duration_factor": 0.5}
"""``compare_run(quick=True)``: i.i.d. samples, MD walkers, and the fraction of the system's MD time."""
N_REF_DW4 = 20000
"""DW-4's reference samples (half with ``quick``), taken from the pooled reference run."""
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
    from ..figures import free_energy_figure, samples_figure

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
    result, run = compare_routes(system, model, sigmas=SIGMAS, sampler="sde", sampler_steps=100, dt=None,
                                 friction=1.0, burn_in=None, seed=seed, reference=ref, progress=progress,
                                 floor_samples=floor, starts=starts, **knobs)  # fmt: skip
    atomic_write_json(out / "compare.json", result)
    from ...viz import save_figure  # matplotlib only when drawing

    best = result["routes"]["md"]["sigma"]
    save_figure(free_energy_figure(s, run.reference, run.iid, run.md[best], best), out / "free_energy.png")
    if s.js_edges is not None:
        save_figure(samples_figure(s, run.exact, run.iid, run.md[best], best), out / "samples.png")
    return result
