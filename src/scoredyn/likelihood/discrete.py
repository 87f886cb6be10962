"""Bits per dimension of discrete data from a continuous density, and uniform dequantization."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..core.tensors import rand_from

__all__ = ["bits_per_dim", "dequantize"]


def _spacing(levels: int, data_range: float) -> float:
    if not (isinstance(levels, int) and levels >= 2):
        raise ValueError(f"levels must be an integer >= 2, got {levels!r}")
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range!r}")
    return data_range / (levels - 1)


def bits_per_dim(logp: Tensor, dim: int, *, data_range: float = 2.0, levels: int = 256) -> Tensor:
    """Bits per dimension of discrete data from a continuous density on its dequantized values.

    Data are ``levels`` integer values ``k`` scaled to ``x = -r/2 + k Delta`` with
    ``Delta = r / (levels - 1)`` (``r = data_range``; ``[-1, 1]`` for ``r = 2``; 256 levels give
    ``k / 127.5 - 1``, Ho et al. 2020). Uniform dequantization ``u = x + U[-Delta/2, Delta/2]^D``
    has density ``Delta^{-D}`` on the cell of ``k``, so (Theis et al. 2016; Ho et al. 2019, eq. 3)
    ``log P(k) >= E_u[log p(u)] + D log Delta`` and

    .. math::
        \\mathrm{bpd} = -\\frac{\\log p(u) + D \\log \\Delta}{D \\ln 2}
        = -\\frac{\\log p(u)}{D \\ln 2} - \\log_2 \\Delta ,

    bits per integer level (Song et al. 2021 add ``+8`` = ``-log2(1/256)`` for ``[0, 1]`` data).
    A uniform density on the dequantized cube gives exactly ``log2(levels)``.

    Args:
        logp: ``log p(u)`` of dequantized points, any shape.
        dim: ``D``, the number of dimensions.
        data_range: ``r``, the width of the data interval.
        levels: the number of integer values per dimension.
    """
    if not (isinstance(dim, int) and dim >= 1):
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    delta = _spacing(levels, data_range)
    return -(logp + dim * math.log(delta)) / (dim * math.log(2.0))


def dequantize(x: Tensor, levels: int, generator: torch.Generator | None = None, data_range: float = 2.0) -> Tensor:
    """Uniform dequantization ``u = x + Delta (U - 1/2)``, ``U ~ U[0, 1)^D``, ``Delta = r / (levels - 1)``,
    of data on the lattice ``-r/2 + k Delta`` (see ``bits_per_dim``); ``x`` is checked to lie on it."""
    delta = _spacing(levels, data_range)
    k = (x.to(torch.float64) + 0.5 * data_range) / delta
    if ((k - k.round()).abs() > 1e-3).any() or (k.round() < 0).any() or (k.round() > levels - 1).any():
        raise ValueError(f"x must lie on the {levels}-level lattice of [-{data_range / 2}, {data_range / 2}]")
    u = rand_from(generator, tuple(x.shape), x)  # drawn on the generator's device, moved to x's
    return x + delta * (u - 0.5)
