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
max_points=1000)`` is skipped above 1000 points.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ..core.targets import GaussianMixture
from ._blocks import points
from .distances import W2_MAX_POINTS, energy_distance, median_heuristic, mmd, sliced_wasserstein, wasserstein2
from .floors import Floor, expected_null_floor, mc_floor
from .modes import mode_tv, mode_weights
from .stein import kernel_stein_discrepancy


@dataclass(frozen=True)
class MetricContext:
    """What a metric may use besides the samples, fixed for one call of ``evaluate``.

    Attributes:
        target: the exact mixture.
        seed: ``evaluate``'s seed (e.g. for the sliced directions).
        bandwidth: the MMD bandwidth, the median heuristic of the reference (a property of the
            target, shared by value and floor).
    """

    target: GaussianMixture
    seed: int
    bandwidth: float


@dataclass(frozen=True)
class Metric:
    """One row of ``METRICS``: how ``evaluate`` scores a metric and finds its floor.

    Attributes:
        fn: two-sample ``fn(x, y, ctx) -> float`` with ``x (N, D)`` the samples and ``y (M, D)`` the
            reference; one-sample ``fn(x, ctx) -> float`` when ``two_sample`` is False.
        two_sample: whether ``fn`` compares with the reference.
        exact_floor: ``"energy"`` or ``"mmd"``: the floor is the exact expectation of that
            V-statistic under equal laws (``expected_null_floor``); None: the Monte-Carlo floor
            (``mc_floor``).
        min_repeats: the Monte-Carlo floor draws ``max(repeats, min_repeats)`` times (None:
            ``repeats``).
        max_points: the metric is skipped when either set holds more points (None: no limit).
        uses_bandwidth: ``fn`` reads ``ctx.bandwidth``, so its floor is cached per bandwidth.
    """

    fn: Callable[..., float]
    two_sample: bool = True
    exact_floor: Literal["energy", "mmd"] | None = None
    min_repeats: int | None = None
    max_points: int | None = None
    uses_bandwidth: bool = False


def _mode_tv(x: Tensor, y: Tensor, ctx: MetricContext) -> float:
    return mode_tv(x, y, ctx.target)


def _energy(x: Tensor, y: Tensor, ctx: MetricContext) -> float:
    return energy_distance(x, y)


def _sliced_w1(x: Tensor, y: Tensor, ctx: MetricContext) -> float:
    return sliced_wasserstein(x, y, seed=ctx.seed)


def _mmd(x: Tensor, y: Tensor, ctx: MetricContext) -> float:
    return mmd(x, y, bandwidth=ctx.bandwidth)


def _ksd(x: Tensor, ctx: MetricContext) -> float:
    return kernel_stein_discrepancy(x, ctx.target.score)


def _w2(x: Tensor, y: Tensor, ctx: MetricContext) -> float:
    return wasserstein2(x, y)


METRICS: dict[str, Metric] = {
    # mode TV costs one assignment per set: many repeats make its floor steady
    "mode_tv": Metric(_mode_tv, min_repeats=20),
    "energy": Metric(_energy, exact_floor="energy"),
    "sliced_w1": Metric(_sliced_w1),
    "mmd": Metric(_mmd, exact_floor="mmd", uses_bandwidth=True),
    "ksd": Metric(_ksd, two_sample=False),
    "w2": Metric(_w2, max_points=W2_MAX_POINTS),
}

_FLOORS: dict[tuple, Floor] = {}  # evaluate's floors by everything they depend on
_FLOORS_MAX = 256


def _fingerprint(target: GaussianMixture) -> tuple:
    """The mixture's numbers as bytes: a key equal for equal mixtures (its floors are equal)."""
    parts = (target.weights, target.means, target.covs)
    return tuple((tuple(t.shape), str(t.dtype), t.detach().cpu().numpy().tobytes()) for t in parts)


def _floor(metric: Metric, ctx: MetricContext, n: int, m: int, repeats: int, generator: torch.Generator) -> Floor:
    """The floor of one metric at sizes ``n`` (samples) and ``m`` (reference), as the table says."""
    if metric.exact_floor is not None:
        return expected_null_floor(metric.exact_floor, ctx.target, n, m, bandwidth=ctx.bandwidth, generator=generator)
    reps = repeats if metric.min_repeats is None else max(repeats, metric.min_repeats)
    if metric.two_sample:
        return mc_floor(
            lambda a, b: metric.fn(a, b, ctx), ctx.target.sample, n, m=m, repeats=reps, generator=generator
        )
    return mc_floor(
        lambda a: metric.fn(a, ctx), ctx.target.sample, n, repeats=reps, generator=generator, two_sample=False
    )


def evaluate(
    samples: Tensor,
    target: GaussianMixture,
    *,
    reference: Tensor | None = None,
    seed: int = 0,
    metrics: Iterable[str] = METRICS,
    repeats: int = 3,
) -> dict:
    """Score ``samples`` against the exact ``target``: every metric beside its Monte-Carlo floor.

    .. math:: \\text{ratio} = d(x, y) / \\text{floor}_d(n, m)

    where ``floor_d(n, m)`` is the value of ``d`` between independent exact sets of the same sizes, so
    a ratio near 1 means "as good as exact sampling can show at this ``n``".

    Two-sample metrics compare ``samples`` with ``reference`` (default: fresh exact samples of
    the same size, drawn with ``seed``); KSD uses the exact score. Each floor is ``mc_floor`` at
    the same sizes with ``repeats`` draws (20 at least for the cheap mode TV) from a generator
    derived from ``seed``; for energy distance and MMD the floor is the exact expectation of the
    V-statistic under equal laws (``expected_null_floor``), which does not fluctuate. The MMD
    bandwidth is the median heuristic of the reference (a property of the target, shared by
    value and floor); ``w2`` is skipped above ``W2_MAX_POINTS`` points. What each metric needs is
    read from ``METRICS``.

    Returns a JSON-able dict: ``{"n", "dim", "seed", <metric>: {"value", "floor", "floor_std",
    "ratio"}, "mode_weights", "target_weights"}`` with ``ratio = value / floor`` (``None`` when the
    floor is 0, e.g. ``mode_tv`` of a one-component target).

    Args:
        samples: ``(N, D)`` samples to judge.
        target: the exact mixture.
        reference: ``(M, D)`` exact samples to compare with, instead of fresh ones.
        seed: seeds the reference, the floors and the sliced directions.
        metrics: names from ``METRICS``.
        repeats: draws per floor.
    """
    metrics = tuple(metrics)
    unknown = [name for name in metrics if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {', '.join(METRICS)}")
    x = points(samples, "samples", target.dim).cpu()  # the target's tensors live on the CPU
    if x.shape[0] < 2:
        raise ValueError(f"samples must hold at least 2 points, got {x.shape[0]}")
    g = torch.Generator().manual_seed(seed)
    if reference is None:
        y = target.sample(x.shape[0], g)
    else:
        y = points(reference, "reference", target.dim).cpu()
    floor_seed = int(torch.randint(2**62, (1,), generator=g))
    ctx = MetricContext(target, seed, median_heuristic(y))

    n, m = x.shape[0], y.shape[0]
    out: dict = {"n": n, "dim": target.dim, "seed": seed}
    for name in metrics:
        metric = METRICS[name]
        if metric.max_points is not None and max(n, m) > metric.max_points:
            continue
        value = metric.fn(x, y, ctx) if metric.two_sample else metric.fn(x, ctx)
        # the floor depends on the metric, the target, the sizes and the seeds only (never on the
        # samples): rows scored with the same ones (a study's rows) share it
        h = ctx.bandwidth if metric.uses_bandwidth else None
        key = (name, _fingerprint(target), n, m, floor_seed, repeats, seed, h, metric)
        floor = _FLOORS.get(key)
        if floor is None:
            floor = _floor(metric, ctx, n, m, repeats, torch.Generator().manual_seed(floor_seed))
            if len(_FLOORS) >= _FLOORS_MAX:
                _FLOORS.pop(next(iter(_FLOORS)))  # the oldest
            _FLOORS[key] = floor
        ratio = value / floor.mean if floor.mean > 0 else None
        out[name] = {"value": value, "floor": floor.mean, "floor_std": floor.std, "ratio": ratio}
    out["mode_weights"] = mode_weights(x, target).tolist()
    out["target_weights"] = target.weights.tolist()
    return out
