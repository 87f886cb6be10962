"""The metric table and ``evaluate``: every metric of a sample set beside its floor.

``METRICS`` maps a name to a ``Metric``: the function that scores a sample set, how its floor is found
and any size limit. ``evaluate`` reads only the table, so adding a metric is one function plus one
table line. Here, a function beside ``_energy`` below::

    def _mean_gap(x: Tensor, y: Tensor, ctx: MetricContext) -> float:
        return float((x.mean(0) - y.mean(0)).norm())

and a line in the ``METRICS`` literal::

    "mean_gap": Metric(_mean_gap),  # Monte-Carlo floor from ``repeats`` pairs of exact sets

From outside the package the line is ``METRICS["mean_gap"] = Metric(mean_gap)`` (with
``from scoredyn.metrics import METRICS, Metric, MetricContext``). A one-sample metric, scored against
the target alone like KSD, is ``Metric(fn, two_sample=False)`` with ``fn(x, ctx)``;
``Metric(fn, min_repeats=20)`` draws its Monte-Carlo floor at least 20 times; ``Metric(fn,
max_points=1000)`` is skipped above 1000 points; ``Metric(fn, block_points=2**16)`` is averaged over
blocks of at most that many points (its floor taken at the block size); ``Metric(fn,
first_points=2**16)`` scores the first that many points of each set.

The built-in metrics return an ``Estimate`` (value, standard error, the sizes its floor refers to)
and come with a computed floor: for a mixture, every floor is exact or a closed form up to a stated
Monte-Carlo error, and every value has a 95% interval for its ratio to the floor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.targets import GaussianMixture
from ._blocks import points
from .closed_forms import mean_pair_distance, mean_pair_kernel
from .distances import W2_MAX_POINTS, median_heuristic, sliced_wasserstein, wasserstein2
from .estimates import PAIR_BUDGET, Z_95, Estimate
from .exact import (
    energy_exact,
    energy_two_sample,
    ksd_estimate,
    ksd_floor,
    mmd_exact,
    mmd_two_sample,
    mode_counts,
    mode_probabilities,
    mode_tv_exact,
    mode_tv_floor,
    mode_tv_two_sample,
    mode_tv_two_sample_floor,
)
from .floors import Floor, mc_floor

SLICED_POINTS = 2**16  # sliced W1 scores the first this-many points of each set (its cost is sorting)


@dataclass(frozen=True)
class MetricContext:
    """What a metric may use besides the samples, fixed for one call of ``evaluate``.

    Attributes:
        target: the exact mixture.
        seed: ``evaluate``'s seed (e.g. for the sliced directions and the bootstrap).
        bandwidth: the MMD bandwidth, the median heuristic of the reference (a property of the
            target, shared by value and floor).
        pair_budget: kernel evaluations per pair term before the block estimator takes over.
    """

    target: GaussianMixture
    seed: int
    bandwidth: float
    pair_budget: int = PAIR_BUDGET


@dataclass(frozen=True)
class Metric:
    """One row of ``METRICS``: how ``evaluate`` scores a metric and finds its floor.

    Attributes:
        fn: two-sample ``fn(x, y, ctx)`` with ``x (N, D)`` the samples and ``y (M, D)`` the
            reference; one-sample ``fn(x, ctx)`` when ``two_sample`` is False. Returns a float, or
            an ``Estimate`` (value, standard error, block sizes).
        two_sample: whether ``fn`` compares with the reference.
        floor: ``floor(ctx, estimate) -> Floor``: the floor computed from the law at the estimate's
            sizes; None: the Monte-Carlo floor (``mc_floor``) at the sizes scored.
        min_repeats: the Monte-Carlo floor draws ``max(repeats, min_repeats)`` times (None:
            ``repeats``).
        max_points: the metric is skipped when either set holds more points (None: no limit).
        uses_bandwidth: ``fn`` reads ``ctx.bandwidth``, so its floor is cached per bandwidth.
        block_points: a float-valued ``fn`` is averaged over blocks of at most this many points
            (None: all points at once).
        first_points: ``fn`` scores only the first this-many points of each set (rows are
            exchangeable draws), its floor taken at that size (None: all points).
    """

    fn: Callable[..., float | Estimate]
    two_sample: bool = True
    floor: Callable[[MetricContext, Estimate], Floor] | None = None
    min_repeats: int | None = None
    max_points: int | None = None
    uses_bandwidth: bool = False
    block_points: int | None = None
    first_points: int | None = None


def _computed(mean: float, std: float = 0.0) -> Floor:
    return Floor(mean, std, (mean,))


def _mode_tv(x: Tensor, y: Tensor, ctx: MetricContext) -> Estimate:
    return mode_tv_two_sample(x, y, ctx.target, seed=ctx.seed)


def _mode_tv_floor(ctx: MetricContext, est: Estimate) -> Floor:
    n, m = round(1 / est.inv_n), round(1 / est.inv_m)
    return _computed(*mode_tv_two_sample_floor(ctx.target, n, m, seed=ctx.seed + 1))


def _mode_tv_exact(x: Tensor, ctx: MetricContext) -> Estimate:
    return mode_tv_exact(x, ctx.target, seed=ctx.seed)


def _mode_tv_exact_floor(ctx: MetricContext, est: Estimate) -> Floor:
    return _computed(*mode_tv_floor(mode_probabilities(ctx.target), round(1 / est.inv_n)))


def _energy(x: Tensor, y: Tensor, ctx: MetricContext) -> Estimate:
    return energy_two_sample(x, y, ctx.pair_budget)


def _energy_floor(ctx: MetricContext, est: Estimate) -> Floor:
    return _computed(mean_pair_distance(ctx.target) * (est.inv_n + est.inv_m))


def _energy_exact(x: Tensor, ctx: MetricContext) -> Estimate:
    return energy_exact(x, ctx.target, ctx.pair_budget)


def _energy_exact_floor(ctx: MetricContext, est: Estimate) -> Floor:
    return _computed(mean_pair_distance(ctx.target) * est.inv_n)


def _mmd(x: Tensor, y: Tensor, ctx: MetricContext) -> Estimate:
    return mmd_two_sample(x, y, ctx.bandwidth, ctx.pair_budget)


def _mmd_floor(ctx: MetricContext, est: Estimate) -> Floor:
    return _computed((1 - mean_pair_kernel(ctx.target, ctx.bandwidth)) * (est.inv_n + est.inv_m))


def _mmd_exact(x: Tensor, ctx: MetricContext) -> Estimate:
    return mmd_exact(x, ctx.target, ctx.bandwidth, ctx.pair_budget)


def _mmd_exact_floor(ctx: MetricContext, est: Estimate) -> Floor:
    return _computed((1 - mean_pair_kernel(ctx.target, ctx.bandwidth)) * est.inv_n)


def _ksd(x: Tensor, ctx: MetricContext) -> Estimate:
    return ksd_estimate(x, ctx.target, ctx.pair_budget)


def _ksd_floor(ctx: MetricContext, est: Estimate) -> Floor:
    mean, se = ksd_floor(ctx.target)
    return _computed(mean * est.inv_n, se * est.inv_n)


def _sliced_w1(x: Tensor, y: Tensor, ctx: MetricContext) -> float:
    return sliced_wasserstein(x, y, seed=ctx.seed)


def _w2(x: Tensor, y: Tensor, ctx: MetricContext) -> float:
    return wasserstein2(x, y)


METRICS: dict[str, Metric] = {
    "mode_tv": Metric(_mode_tv, floor=_mode_tv_floor),
    "energy": Metric(_energy, floor=_energy_floor),
    "sliced_w1": Metric(_sliced_w1, first_points=SLICED_POINTS),
    "mmd": Metric(_mmd, floor=_mmd_floor, uses_bandwidth=True),
    "ksd": Metric(_ksd, two_sample=False, floor=_ksd_floor),
    "w2": Metric(_w2, max_points=W2_MAX_POINTS),
    # against the exact law itself: no reference, so no reference error
    "mode_tv_exact": Metric(_mode_tv_exact, two_sample=False, floor=_mode_tv_exact_floor),
    "energy_exact": Metric(_energy_exact, two_sample=False, floor=_energy_exact_floor),
    "mmd_exact": Metric(_mmd_exact, two_sample=False, floor=_mmd_exact_floor, uses_bandwidth=True),
}

_FLOORS: dict[tuple, Floor] = {}  # evaluate's Monte-Carlo floors by everything they depend on
_FLOORS_MAX = 256


def _fingerprint(target: GaussianMixture) -> tuple:
    """The mixture's numbers as bytes: a key equal for equal mixtures (its floors are equal)."""
    parts = (target.weights, target.means, target.covs)
    return tuple((tuple(t.shape), str(t.dtype), t.detach().cpu().numpy().tobytes()) for t in parts)


def _score(metric: Metric, x: Tensor, y: Tensor, ctx: MetricContext) -> Estimate:
    """The metric's value as an ``Estimate``; a float-valued ``fn`` is averaged over ``block_points``
    blocks (standard error from their spread when there are at least two)."""

    def call(a: Tensor, b: Tensor) -> float | Estimate:
        return metric.fn(a, b, ctx) if metric.two_sample else metric.fn(a, ctx)

    if metric.first_points is not None:
        x, y = x[: metric.first_points], y[: metric.first_points]
    n, m = x.shape[0], y.shape[0]
    blocks = 1 if metric.block_points is None else max(1, math.ceil(max(n, m) / metric.block_points))
    if blocks == 1:
        out = call(x, y)
        return out if isinstance(out, Estimate) else Estimate(float(out), None, 1.0 / n, 1.0 / m)
    xs, ys = torch.tensor_split(x, blocks), torch.tensor_split(y, blocks)
    values = torch.tensor([float(call(a, b)) for a, b in zip(xs, ys, strict=True)], dtype=torch.float64)
    se = float(values.std()) / math.sqrt(blocks)
    return Estimate(float(values.mean()), se, 1.0 / xs[-1].shape[0], 1.0 / ys[-1].shape[0], blocks)


def _mc_floor(metric: Metric, ctx: MetricContext, n: int, m: int, repeats: int, generator: torch.Generator) -> Floor:
    """The Monte-Carlo floor of a metric without a computed one, at sizes ``n`` and ``m``."""
    reps = repeats if metric.min_repeats is None else max(repeats, metric.min_repeats)
    if metric.two_sample:
        return mc_floor(
            lambda a, b: float(metric.fn(a, b, ctx)), ctx.target.sample, n, m=m, repeats=reps, generator=generator
        )
    return mc_floor(
        lambda a: float(metric.fn(a, ctx)), ctx.target.sample, n, repeats=reps, generator=generator, two_sample=False
    )


def ratio_interval(est: Estimate, floor: Floor) -> list[float] | None:
    """The 95% interval of ``value / floor`` from the value's standard error (normal approximation),
    clipped at 0; None without a standard error or a positive floor.

    .. math:: \\big[\\max(0, (v - 1.96\\, \\mathrm{se}) / f),\\ (v + 1.96\\, \\mathrm{se}) / f\\big]
    """
    if est.se is None or not floor.mean > 0:
        return None
    return [max(0.0, (est.value - Z_95 * est.se) / floor.mean), (est.value + Z_95 * est.se) / floor.mean]


def evaluate(
    samples: Tensor,
    target: GaussianMixture,
    *,
    reference: Tensor | None = None,
    seed: int = 0,
    metrics: Iterable[str] = METRICS,
    repeats: int = 3,
    pair_budget: int = PAIR_BUDGET,
) -> dict:
    """Score ``samples`` against the exact ``target``: every metric beside its floor, with an interval.

    .. math:: \\text{ratio} = d(x, y) / \\text{floor}_d(n, m)

    where ``floor_d(n, m)`` is the expected value of ``d`` on independent exact sets of the same sizes,
    so a ratio near 1 means "as good as exact sampling can show at this ``n``".

    Two-sample metrics (``mode_tv``, ``energy``, ``sliced_w1``, ``mmd``, ``w2``) compare ``samples``
    with ``reference`` (default: fresh exact samples of the same size, drawn with ``seed``);
    one-sample metrics compare with the law itself: ``ksd`` through its score, ``mode_tv_exact``
    through the exact mode probabilities, ``mmd_exact`` through the kernel mean embedding, and
    ``energy_exact`` through ``E_Y |x - Y|`` and ``E|Y - Y'|`` (all closed forms, ``closed_forms``).
    Floors: exact or closed form where the table gives a ``floor`` (energy and MMD:
    ``(1/n + 1/m)`` times a closed-form pair expectation; KSD: ``E k_0(X, X) / n``; mode TV to the
    law: de Moivre's binomial deviation; two-sample mode TV: ``BOOTSTRAP_REPLICATES`` multinomial
    count draws), otherwise ``mc_floor`` with ``repeats`` draws (at least ``min_repeats``) from a
    generator derived from ``seed``. Pair sums above ``pair_budget`` kernel evaluations use the
    block estimator (``estimates.blocked``; the entry's ``blocks`` says how many, and its floor is
    at the block size). The MMD bandwidth is the median heuristic of the reference.

    Returns a JSON-able dict: ``{"n", "dim", "seed", <metric>: {"value", "floor", "floor_std",
    "ratio", "ratio_ci", "se", "blocks"}, "mode_weights", "target_weights"}`` with ``ratio = value /
    floor`` (``None`` when the floor is 0, e.g. a one-component target's mode TV) and ``ratio_ci``
    its 95% interval (``ratio_interval``; ``None`` without a standard error).

    Args:
        samples: ``(N, D)`` samples to judge.
        target: the exact mixture.
        reference: ``(M, D)`` exact samples to compare with, instead of fresh ones.
        seed: seeds the reference, the floors, the sliced directions and the bootstrap.
        metrics: names from ``METRICS``.
        repeats: draws per Monte-Carlo floor.
        pair_budget: kernel evaluations per pair term before the block estimator takes over.
    """
    metrics = tuple(metrics)
    unknown = [name for name in metrics if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {', '.join(METRICS)}")
    if pair_budget < 1:
        raise ValueError(f"pair_budget must be >= 1, got {pair_budget}")
    x = points(samples, "samples", target.dim)  # scored where the samples are; the floors on the CPU
    if x.shape[0] < 2:
        raise ValueError(f"samples must hold at least 2 points, got {x.shape[0]}")
    g = torch.Generator().manual_seed(seed)
    if reference is None:
        y = target.sample(x.shape[0], g, device=x.device)
    else:
        y = points(reference, "reference", target.dim).to(x.device)
    floor_seed = int(torch.randint(2**62, (1,), generator=g))
    ctx = MetricContext(target, seed, median_heuristic(y), pair_budget)

    n, m = x.shape[0], y.shape[0]
    out: dict = {"n": n, "dim": target.dim, "seed": seed}
    for name in metrics:
        metric = METRICS[name]
        if metric.max_points is not None and max(n, m) > metric.max_points:
            continue
        est = _score(metric, x, y, ctx)
        if metric.floor is not None:
            floor = metric.floor(ctx, est)
        else:
            # the floor depends on the metric, the target, the sizes and the seeds only (never on the
            # samples): rows scored with the same ones (a study's rows) share it
            nb, mb = round(1 / est.inv_n), round(1 / est.inv_m)
            h = ctx.bandwidth if metric.uses_bandwidth else None
            key = (name, _fingerprint(target), nb, mb, floor_seed, repeats, seed, h, metric)
            floor = _FLOORS.get(key)
            if floor is None:
                floor = _mc_floor(metric, ctx, nb, mb, repeats, torch.Generator().manual_seed(floor_seed))
                if len(_FLOORS) >= _FLOORS_MAX:
                    _FLOORS.pop(next(iter(_FLOORS)))  # the oldest
                _FLOORS[key] = floor
        ratio = est.value / floor.mean if floor.mean > 0 else None
        out[name] = {
            "value": est.value,
            "floor": floor.mean,
            "floor_std": floor.std,
            "ratio": ratio,
            "ratio_ci": ratio_interval(est, floor),
            "se": est.se,
            "blocks": est.blocks,
        }
    out["mode_weights"] = (mode_counts(x, target) / n).tolist()
    out["target_weights"] = target.weights.tolist()
    return out
