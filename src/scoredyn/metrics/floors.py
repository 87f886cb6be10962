"""Monte-Carlo floors: the value a metric takes between independent exact sample sets.

Every distance of this package is an estimate from finitely many samples, so even exact samples score
above zero. The *floor* of a metric at sample size ``n`` is its value between two independent exact
sample sets of that size (``mc_floor``), or the exact expectation of that value where it has a closed
form (``expected_null_floor``); a sampler is judged by ``value / floor``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from ..core.targets import GaussianMixture


class Floor(NamedTuple):
    """A metric's Monte-Carlo floor: mean and sample standard deviation over the repeats."""

    mean: float
    std: float
    values: tuple[float, ...]


def mc_floor(
    metric: Callable[..., float],
    sampler: Callable[[int, torch.Generator], Tensor],
    n: int,
    *,
    m: int | None = None,
    repeats: int = 3,
    generator: torch.Generator | None = None,
    two_sample: bool = True,
) -> Floor:
    """The Monte-Carlo floor of ``metric`` at sample size ``n``: its value between two independent
    exact sample sets of sizes ``n`` and ``m`` (default ``n``), over ``repeats`` draws.

    .. math::
        \\text{floor} = \\frac{1}{R} \\sum_{r=1}^{R} d(X^{(r)}, Y^{(r)}), \\qquad
        X^{(r)} \\sim p^{\\otimes n},\\ Y^{(r)} \\sim p^{\\otimes m} \\text{ independent}

    with ``std`` the sample standard deviation of the ``R`` values (0 for ``R = 1``). With
    ``two_sample=False`` the metric takes one set (e.g. KSD): the floor is its value on one exact
    set of size ``n``. Draws alternate ``X^{(1)}, Y^{(1)}, X^{(2)}, ...`` from ``generator``.

    Args:
        metric: ``metric(x, y) -> float`` (or ``metric(x)`` when ``two_sample`` is False).
        sampler: exact sampler ``sampler(n, generator) -> (n, D)``, e.g. ``GaussianMixture.sample``.
        n, m: sample sizes.
        repeats: number of independent draws.
        generator: the source of the exact samples.
    """
    if n < 1 or (m is not None and m < 1) or repeats < 1:
        raise ValueError(f"n, m and repeats must be >= 1, got n={n}, m={m}, repeats={repeats}")
    values = []
    for _ in range(repeats):
        x = sampler(n, generator)
        values.append(float(metric(x, sampler(m or n, generator)) if two_sample else metric(x)))
    v = torch.tensor(values, dtype=torch.float64)
    std = float(v.std()) if repeats > 1 else 0.0
    return Floor(float(v.mean()), std, tuple(values))


def expected_null_floor(
    name: str,
    target: GaussianMixture,
    n: int,
    m: int,
    *,
    bandwidth: float | None = None,
    pairs: int = 200_000,
    generator: torch.Generator | None = None,
) -> Floor:
    r"""The exact expectation of the energy or MMD V-statistic between independent exact sets.

    For sets of sizes ``n`` and ``m`` drawn from the same law, with the diagonal of each self-term
    included (the V-statistics of Székely & Rizzo 2013 and Gretton et al. 2012, ``MMD_b^2``),

    .. math::
        E[\mathrm{ED}_V] = (1/n + 1/m)\, E|X - X'|, \qquad
        E[\mathrm{MMD}^2_V] = (1/n + 1/m)\,(1 - E\, k(X, X')),

    where the single expectation is estimated from ``pairs`` independent exact pairs (relative
    error about ``1 / sqrt(pairs)``, far below the spread of a few Monte-Carlo repeats). ``std``
    is the standard error of that estimate, scaled alike; ``values`` holds the mean alone.

    Args:
        name: ``"energy"`` or ``"mmd"``.
        target: the exact law ``p`` (``X, X' ~ p``).
        n, m: the two sample sizes.
        bandwidth: the RBF ``h`` of ``k(x, y) = exp(-|x - y|^2 / (2h^2))`` (needed for ``"mmd"``).
        pairs: number of exact pairs ``(X, X')``.
        generator: the source of the exact pairs (``pairs`` points for ``X``, then for ``X'``).
    """
    a, b = target.sample(pairs, generator), target.sample(pairs, generator)
    r = (a - b).norm(dim=1)
    if name == "energy":
        terms = r
    elif name == "mmd":
        if bandwidth is None:
            raise ValueError("the MMD floor needs the bandwidth")
        terms = 1.0 - torch.exp(-(r**2) / (2 * bandwidth**2))
    else:
        raise ValueError(f"no closed-form floor for {name!r}")
    scale = 1.0 / n + 1.0 / m
    mean, se = float(terms.mean()) * scale, float(terms.std()) / math.sqrt(pairs) * scale
    return Floor(mean, se, (mean,))
