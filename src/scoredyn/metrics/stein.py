"""Goodness of fit from the score alone: the kernel Stein discrepancy (one sample set, no reference)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ._blocks import pair_mean, points, sq_dist
from .distances import median_heuristic


def stein_kernel(
    x: Tensor,
    score: Tensor | Callable[[Tensor], Tensor],
    *,
    kernel: str = "imq",
    c: float = 1.0,
    beta: float = -0.5,
    bandwidth: float | None = None,
) -> Callable[[slice, slice], Tensor]:
    """The Langevin Stein kernel ``k_0`` on blocks of ``x``: ``block(i, j)`` gives ``k_0(x_i, x_j)``,
    shape ``(len(i), len(j))`` (the terms of ``kernel_stein_discrepancy``; arguments as there)."""
    x = points(x, "x")
    s = points(score(x) if callable(score) else score, "score", x.shape[1]).to(x.device)
    if s.shape[0] != x.shape[0]:
        raise ValueError(f"score must have shape {tuple(x.shape)}, got {tuple(s.shape)}")
    d = x.shape[1]
    if kernel == "imq":
        if not (c > 0 and -1 < beta < 0):
            raise ValueError(f"IMQ needs c > 0 and -1 < beta < 0, got c={c}, beta={beta}")
    elif kernel == "rbf":
        h = median_heuristic(x) if bandwidth is None else float(bandwidth)
        if not h > 0:
            raise ValueError(f"bandwidth must be positive, got {h}")
    else:
        raise ValueError(f"kernel must be 'imq' or 'rbf', got {kernel!r}")
    s_dot_x = (s * x).sum(1)
    xs, sx = torch.cat([x, s], 1), torch.cat([s, x], 1)

    def k0(i: slice, j: slice) -> Tensor:
        r2 = sq_dist(x[i], x[j])  # |x_i - x_j|^2
        ss = s[i] @ s[j].T  # s_i . s_j
        # sr = (s_j - s_i) . (x_i - x_j), expanded so that no (rows, N, D) tensor is formed
        sr = (xs[i] @ sx[j].T).sub_(s_dot_x[j][None, :]).sub_(s_dot_x[i][:, None])
        if kernel == "imq":
            q = r2.add_(c * c)
            k = q.pow(beta)
            dk = (k / q).mul_(2 * beta)  # grad_x k = dk (x - y) = -grad_y k
            # tr grad_x grad_y k = -dk (D + 2 (beta - 1) r2 / q), with r2 / q = 1 - c^2 / q
            trace_over_dk = q.reciprocal_().mul_(2 * (beta - 1) * c * c).sub_(d + 2 * (beta - 1))
            return ss.mul_(k).add_(dk.mul_(sr.add_(trace_over_dk)))
        k = (r2 * (-0.5 / h**2)).exp_()
        # grad_x k = -k (x - y) / h^2;  tr grad_x grad_y k = k (D / h^2 - r2 / h^4)
        return ss.sub_(sr, alpha=1 / h**2).add_(d / h**2).sub_(r2, alpha=1 / h**4).mul_(k)

    return k0


def kernel_stein_discrepancy(
    x: Tensor,
    score: Tensor | Callable[[Tensor], Tensor],
    *,
    kernel: str = "imq",
    c: float = 1.0,
    beta: float = -0.5,
    bandwidth: float | None = None,
) -> float:
    """Squared kernel Stein discrepancy of samples ``x`` from the law whose score is given
    (Gorham & Mackey 2017, the Langevin Stein kernel; Liu, Lee & Jordan 2016), V-statistic.

    .. math::
        \\mathrm{KSD}^2 = \\frac{1}{N^2} \\sum_{i,j} k_0(x_i, x_j), \\quad
        k_0(x, y) = s(x)^\\top s(y)\\, k + s(x)^\\top \\nabla_y k + s(y)^\\top \\nabla_x k
            + \\operatorname{tr} \\nabla_x \\nabla_y k

    with ``s = grad log p`` and base kernel IMQ ``k = (c^2 + |x - y|^2)^beta`` (``beta = -1/2``,
    ``c = 1`` as recommended there) or RBF ``k = exp(-|x - y|^2 / (2h^2))``. Only the score is
    needed, so it judges samples of a density known up to its normaliser. For exact samples its
    mean is ``E k_0(x, x) / N`` (the off-diagonal terms have mean zero): ``2D/N`` for ``N(0, I)``
    with the default IMQ kernel.

    Args:
        x: ``(N, D)`` samples.
        score: ``(N, D)`` scores at ``x``, or a function returning them.
        kernel: ``"imq"`` or ``"rbf"``.
        c, beta: IMQ parameters (``c > 0``, ``-1 < beta < 0``).
        bandwidth: RBF ``h``; default ``median_heuristic(x)``.
    """
    x = points(x, "x")
    k0 = stein_kernel(x, score, kernel=kernel, c=c, beta=beta, bandwidth=bandwidth)
    return pair_mean(x.shape[0], x.shape[0], k0, same=True)
