"""Shared pieces of the metrics: the float64 points check, row blocks, blocked pair means, squared
distances (public names, used only by the modules of this package).

Every pairwise sum is taken in row blocks of at most ``BLOCK`` kernel entries, so ``N = 20,000``
never builds an ``N x N`` matrix (and nothing builds ``N x N x D``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

BLOCK = 2**20  # entries per pairwise block (8 MiB in float64)


def points(x, name: str, dim: int | None = None) -> Tensor:
    """``x`` as a float64 ``(N, D)`` tensor of finite points (``ValueError`` naming ``name`` otherwise).

    Args:
        x: ``(N, D)`` points (anything ``torch.as_tensor`` takes), ``N >= 1``.
        name: the argument's name, for the error message.
        dim: the required ``D``, or None for any.
    """
    x = torch.as_tensor(x).to(torch.float64)
    if x.ndim != 2 or x.shape[0] == 0 or (dim is not None and x.shape[1] != dim):
        want = f"(N, {dim})" if dim is not None else "(N, D)"
        raise ValueError(f"{name} must have shape {want} with N >= 1, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def row_blocks(n_rows: int, n_cols: int) -> Iterable[slice]:
    """Row slices such that each ``rows x n_cols`` block holds at most ``BLOCK`` entries.

    Args:
        n_rows, n_cols: the shape of the full (never built) matrix.
    """
    step = max(1, BLOCK // max(n_cols, 1))
    return (slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step))


def sq_dist(a: Tensor, b: Tensor) -> Tensor:
    """Squared Euclidean distances, expanded so that no ``(N, M, D)`` difference is formed.

    .. math:: |a_i - b_j|^2 = |a_i|^2 + |b_j|^2 - 2\\, a_i^\\top b_j \\quad (\\text{clamped at } 0)

    Args:
        a: ``(N, D)``.
        b: ``(M, D)``.

    Returns:
        ``(N, M)``.
    """
    d2 = (a @ b.T).mul_(-2.0).add_((a * a).sum(1)[:, None]).add_((b * b).sum(1)[None, :])
    return d2.clamp_min_(0.0)


def pair_mean(n: int, m: int, block: Callable[[slice, slice], Tensor], same: bool = False) -> float:
    """The mean of ``f`` over all pairs, computed block by block (a V-statistic's double sum).

    .. math:: \\frac{1}{nm} \\sum_{i<n,\\, j<m} f(i, j)

    With ``same`` (one sample against itself, ``f`` symmetric) only the blocks on and above the
    diagonal are computed; those strictly above count twice.

    Args:
        n, m: the numbers of rows and columns.
        block: ``block(rows, cols)`` returns the values of ``f`` on a block, shape ``(len(rows), len(cols))``.
        same: ``f`` is symmetric and ``n = m``.
    """
    total = 0.0
    for rows in row_blocks(n, m):
        if same:
            values = block(rows, slice(rows.start, m))
            width = rows.stop - rows.start
            total += float(values[:, :width].sum()) + 2.0 * float(values[:, width:].sum())
        else:
            total += float(block(rows, slice(0, m)).sum())
    return total / (n * m)
