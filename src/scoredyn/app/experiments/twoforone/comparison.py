"""The two routes of one trained model against the equilibrium (Arts et al. 2023, "Two for one", JCTC 19,
6151): i.i.d. samples of a diffusion sampler, and BAOAB Langevin MD (Leimkuhler & Matthews 2013) with
the learned force ``F = kT s_theta(x, sigma)`` at each noise level of a table.

Both are scored against the exact (2-D) or reference (DW-4) equilibrium: the free-energy error
along the reaction coordinate in kT over the populated range, and a Jensen–Shannon divergence. Small
``sigma`` means little smoothing bias (``O(sigma^2)``) but a network that is least accurate there;
large ``sigma`` means a smooth, accurate field of the wrong (blurred) density. The table over
``sigma`` shows that trade-off; the route's entry is the best eligible ``sigma``. Floors: fresh exact
(or reference) samples of the i.i.d. route's size, and the same MD with the true force.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ....learning import TrainedModel
from ....physics import (
    SYSTEMS,
    Reference,
    System,
    baoab,
    equilibrium_samples,
    get_system,
    integrated_autocorr_time,
    multi_sigma_force,
    reference_for,
    score_samples,
)
from ..results import best_sigma, json_safe

__all__ = ["SIGMAS", "BLOWN_UP_RADIUS", "MAX_BLOWN_UP", "RouteSamples", "md_scores", "compare_routes", "compare"]

SIGMAS = (0.01, 0.03, 0.1, 0.3)
"""Default noise levels (data units) of the MD route's table."""

BLOWN_UP_RADIUS = 50.0
"""A walker that leaves ``|x_i| <= 50`` (all systems live within ~8 of the origin) or turns
non-finite counts as blown up; the route's statistics use the walkers that did not."""

MAX_BLOWN_UP = 0.01
"""A ``sigma`` whose MD lost more than this fraction of its walkers is not eligible as the best."""


@dataclass
class RouteSamples:
    """What the figures need beyond the numbers: the reference, the exact (or reference) samples of the
    floor, the i.i.d. route's samples and the MD route's pooled frames per ``sigma`` (and with the
    true force)."""

    reference: Reference
    exact: Tensor
    iid: Tensor
    md: dict[float, Tensor] = field(default_factory=dict)
    md_true: Tensor | None = None


def md_scores(s: System, ref: Reference, frames: Tensor, dt: float, save_every: int) -> tuple[dict, Tensor]:
    """Scores of MD frames (S, W, D) of one force: walkers that blew up (non-finite, or beyond
    ``BLOWN_UP_RADIUS``) out, the rest pooled and scored (``score_samples``), plus the integrated
    autocorrelation time of the system's slow observable in time units (``tau_int``) and the
    fraction ``blown_up``. Returns the scores and the pooled frames (S W', D)."""
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


def compare_routes(
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
) -> tuple[dict, RouteSamples]:
    """``compare`` with its inputs open: the ``reference``, the floor's samples (``floor_samples``,
    default fresh equilibrium samples) and the MD ``starts`` (default fresh equilibrium samples) may
    be given, as ``compare_run`` does for DW-4 from one reference run. Returns the ``compare`` dict
    and the samples of each route (``RouteSamples``) for the figures."""
    from ...sampling import sample

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
    run = RouteSamples(ref, exact, result.x)
    table = []
    for k, sigma in enumerate(sigmas):
        stats, pooled = md_scores(s, ref, tr.x[keep, k * walkers : (k + 1) * walkers], dt, s.save_every)
        table.append({"sigma": float(sigma), **stats})
        run.md[float(sigma)] = pooled
    true_stats, run.md_true = md_scores(s, ref, tr_true.x[keep], dt, s.save_every)

    best, selected_by = best_sigma(table, MAX_BLOWN_UP)
    md_settings = {"walkers": walkers, "dt": dt, "friction": friction, "burn_in": burn_in, "duration": duration,
                   "save_every": s.save_every, "frames_per_walker": int(keep.sum()), "seconds": md_seconds}  # fmt: skip
    md = {**best, **md_settings, "selected_by": selected_by}
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
    return json_safe(out), run


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
    return compare_routes(system, model, sigmas=sigmas, n_iid=n_iid, sampler=sampler, sampler_steps=sampler_steps,
                          walkers=walkers, dt=dt, friction=friction, burn_in=burn_in, duration=duration, seed=seed,
                          reference=reference, progress=progress)[0]  # fmt: skip
