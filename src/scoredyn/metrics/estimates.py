"""Estimates with their standard errors: V-statistics from grouped pair sums, the delete-a-group
jackknife, and the block estimator that keeps the pair count bounded at any ``N``.

A V-statistic such as the energy distance costs ``N^2`` kernel evaluations: at ``N = 10^6`` that is
``10^12``, out of reach. Above ``PAIR_BUDGET`` kernel evaluations the samples are split into ``B``
blocks of ``b ~ PAIR_BUDGET / N`` points, the statistic is computed on each block and averaged: the
block estimator of Zaremba, Gretton & Blaschko (2013, "B-test"). Its expectation is that of one
block, so its floor is the floor at size ``b`` (``Estimate.inv_n``), and averaging ``B`` blocks
divides its variance by ``B``.

Standard errors come from the delete-a-group jackknife (Efron & Stein 1981): the ``G`` groups of a
set are left out in turn, ``var = (G - 1)/G sum_g (theta_(-g) - mean)^2``. By the Efron–Stein
inequality it overestimates the variance on average, so intervals built on it err on the wide side.
For a V-statistic the left-out values come from the ``G x G`` matrix of group pair sums, which the
blocked computation produces anyway: the jackknife costs nothing extra.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ._blocks import BLOCK

PAIR_BUDGET = 2**28  # kernel evaluations per pair term before the block estimator takes over
MIN_BLOCK = 256  # the smallest block: below it the per-block statistic is too coarse to be useful
GROUPS = 20  # jackknife groups per set (or per block)
Z_95 = 1.959963984540054  # the two-sided 95% normal quantile


@dataclass(frozen=True)
class Estimate:
    """A metric's value with its standard error and the sizes its expectation refers to.

    Attributes:
        value: the estimate (the mean over blocks for the block estimator).
        se: its standard error (None when not available).
        inv_n, inv_m: the mean over blocks of ``1 / n_b`` and ``1 / m_b`` (block sizes of the sample
            and of the reference; ``inv_m = 0`` without a reference): a V-statistic floor is
            ``a * inv_n + c * inv_m``.
        blocks: number of blocks ``B`` (1: the full statistic).
    """

    value: float
    se: float | None
    inv_n: float
    inv_m: float = 0.0
    blocks: int = 1


def block_count(n: int, budget: int = PAIR_BUDGET) -> int:
    """Number of blocks ``B`` so that ``B`` blocks of ``n / B`` points cost at most ``budget`` pairs in all
    (``B (n/B)^2 = n^2 / B``), with blocks of at least ``MIN_BLOCK`` points; 1 when ``n^2 <= budget``."""
    if n * n <= budget:
        return 1
    return max(1, min(math.ceil(n * n / budget), n // MIN_BLOCK))


def groups_of(n: int, groups: int = GROUPS) -> list[slice]:
    """``min(groups, n)`` contiguous near-equal slices covering ``range(n)``."""
    g = max(1, min(groups, n))
    edges = [round(i * n / g) for i in range(g + 1)]
    return [slice(edges[i], edges[i + 1]) for i in range(g)]


def grouped_pair_sums(
    rows: list[slice], cols: list[slice], block: Callable[[slice, slice], Tensor], same: bool = False
) -> Tensor:
    """The ``G x H`` matrix of kernel sums ``S[g, h] = sum_{i in g, j in h} f(i, j)``, block by block.

    Each group pair is computed in row slices of at most ``BLOCK`` entries, so nothing larger is
    ever built. With ``same`` (``f`` symmetric over one set) only ``h >= g`` is computed.

    Args:
        rows, cols: the groups of the two index sets.
        block: ``block(rows, cols)`` returns ``f`` on a block, shape ``(len(rows), len(cols))``.
        same: the two sets are one and ``f`` is symmetric.
    """
    sums = torch.zeros(len(rows), len(cols), dtype=torch.float64)
    for g, r in enumerate(rows):
        for h, c in enumerate(cols):
            if same and h < g:
                sums[g, h] = sums[h, g]
                continue
            width = c.stop - c.start
            step = max(1, BLOCK // max(width, 1))
            total = 0.0
            for start in range(r.start, r.stop, step):
                total += float(block(slice(start, min(start + step, r.stop)), c).sum())
            sums[g, h] = total
    return sums


def without_group(sums: Tensor, drop: int | None) -> float:
    """The total of a group pair-sum matrix with group ``drop`` left out of both sides (None: all)."""
    total = float(sums.sum())
    if drop is None:
        return total
    return total - float(sums[drop].sum()) - float(sums[:, drop].sum()) + float(sums[drop, drop])


def jackknife(statistic: Callable[[int | None], float], groups: int) -> tuple[float, float | None]:
    """The statistic and its delete-a-group jackknife standard error (Efron & Stein 1981).

    .. math:: \\widehat{\\mathrm{var}} = \\frac{G - 1}{G} \\sum_{g=1}^{G}
              \\big(\\theta_{(-g)} - \\bar\\theta_{(\\cdot)}\\big)^2

    Args:
        statistic: ``statistic(drop)``: the value with group ``drop`` left out (None: all groups).
        groups: ``G`` (no standard error for ``G < 2``).
    """
    value = statistic(None)
    if groups < 2:
        return value, None
    left_out = torch.tensor([statistic(g) for g in range(groups)], dtype=torch.float64)
    var = (groups - 1) / groups * float(((left_out - left_out.mean()) ** 2).sum())
    return value, math.sqrt(var)


def blocked(
    x: Tensor,
    y: Tensor | None,
    per_block: Callable[[Tensor, Tensor | None, Tensor | None, int], tuple[float, float | None]],
    budget: int = PAIR_BUDGET,
    per_point: Tensor | None = None,
) -> Estimate:
    """The block estimator: ``per_block`` on ``B`` contiguous blocks of ``x`` (and of ``y``), averaged.

    .. math:: \\hat\\theta = \\frac{1}{B} \\sum_{b=1}^{B} \\hat\\theta_b

    with ``B = block_count(max(N, M), budget)``; ``B = 1`` is the full statistic. With fewer than
    ``GROUPS`` blocks each block's jackknife gives the standard error,
    ``se = (sum_b se_b^2)^{1/2} / B``; with more, the blocks themselves are the independent
    replicates, ``se = sd(theta_b) / sqrt(B)``, and the blocks skip the jackknife (one group each).

    Args:
        x: ``(N, D)`` samples.
        y: ``(M, D)`` reference, or None.
        per_block: ``per_block(x_b, y_b, per_point_b, groups) -> (value, se)`` with ``groups`` the
            jackknife groups to use (1: no standard error needed).
        budget: pair evaluations per term.
        per_point: ``(N,)`` values split alongside ``x`` (e.g. a closed-form cross term), or None.
    """
    n, m = x.shape[0], (0 if y is None else y.shape[0])
    b = block_count(max(n, m), budget)
    groups = GROUPS if b < GROUPS else 1
    xs = torch.tensor_split(x, b)
    ys = [None] * b if y is None else torch.tensor_split(y, b)
    ps = [None] * b if per_point is None else torch.tensor_split(per_point, b)
    values, variances = [], []
    for xb, yb, pb in zip(xs, ys, ps, strict=True):
        v, se = per_block(xb, yb, pb, groups)
        values.append(v)
        variances.append(None if se is None else se * se)
    if groups == 1 and b > 1:
        se = float(torch.tensor(values, dtype=torch.float64).std()) / math.sqrt(b)
    else:
        se = None if any(v is None for v in variances) else math.sqrt(sum(variances)) / b
    inv_n = sum(1.0 / xb.shape[0] for xb in xs) / b
    inv_m = 0.0 if y is None else sum(1.0 / yb.shape[0] for yb in ys) / b
    return Estimate(sum(values) / b, se, inv_n, inv_m, b)
