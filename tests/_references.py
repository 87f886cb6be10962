"""Reference implementations that only the tests use: the plain, memory-hungry forms of formulas the
package evaluates in a faster way, written from the papers independently of the package's code."""

from __future__ import annotations

import torch
from torch import Tensor


def svgd_direction_dense(x: Tensor, score: Tensor, h: float, repulsion: float = 1.0) -> Tensor:
    """Liu & Wang (2016), eq. 8, term by term through the ``(N, N, D)`` differences:
    ``phi_i = (1/N) sum_j [k(x_j, x_i) s_j + lambda grad_{x_j} k(x_j, x_i)]``, ``k(x, y) = exp(-|x - y|^2 / h^2)``,
    ``grad_{x_j} k(x_j, x_i) = (2 / h^2) k(x_j, x_i) (x_i - x_j)``."""
    diff = x[:, None, :] - x[None, :, :]  # diff[i, j] = x_i - x_j
    k = torch.exp(-(diff**2).sum(-1) / h**2)  # k[i, j] = k(x_j, x_i)
    grad_k = (2.0 / h**2) * k[:, :, None] * diff  # grad_{x_j} k(x_j, x_i)
    return (k @ score + repulsion * grad_k.sum(1)) / x.shape[0]
