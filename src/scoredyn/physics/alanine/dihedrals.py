"""Dihedral angles, and the backbone dihedrals ``(phi, psi)`` of alanine dipeptide (IUPAC convention,
radians in ``(-pi, pi]``), for torch tensors and NumPy arrays alike."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .structure import N_ATOMS, PHI_ATOMS, PSI_ATOMS

__all__ = ["dihedral", "phi_psi"]

Array = Tensor | np.ndarray


def dihedral(p0: Array, p1: Array, p2: Array, p3: Array) -> Array:
    """Dihedral angle of the points ``p0-p1-p2-p3`` (each (..., 3), torch or NumPy), in radians in
    ``(-pi, pi]`` (IUPAC: positive is clockwise looking from ``p1`` to ``p2``):

    .. math::
        \\tau = \\operatorname{atan2}\\big(|b_1|\\, b_0 \\cdot n_2,\\; n_1 \\cdot n_2\\big), \\qquad
        n_1 = b_0 \\times b_1, \\; n_2 = b_1 \\times b_2,

    with ``b_0 = p_1 - p_0``, ``b_1 = p_2 - p_1``, ``b_2 = p_3 - p_2`` (Blondel & Karplus 1996,
    J. Comput. Chem. 17, 1132, eq. 12).
    """
    if isinstance(p0, Tensor):
        lib, cross = torch, lambda a, b: torch.linalg.cross(a, b, dim=-1)
    else:
        lib, cross = np, lambda a, b: np.cross(a, b)
        p0, p1, p2, p3 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2, p3))
    b0, b1, b2 = p1 - p0, p2 - p1, p3 - p2
    n1, n2 = cross(b0, b1), cross(b1, b2)
    y = (b0 * n2).sum(-1) * lib.sqrt((b1 * b1).sum(-1))
    return lib.arctan2(y, (n1 * n2).sum(-1))


def phi_psi(x: Array) -> Array:
    """Backbone dihedrals ``(phi, psi)`` in radians, shape (N, 2), of configurations ``x`` (N, 22, 3) or
    (N, 66) (torch or NumPy; the result has ``x``'s type)."""
    if x.ndim == 2 and x.shape[1] == 3 * N_ATOMS:
        x = x.reshape(x.shape[0], N_ATOMS, 3)
    if x.ndim != 3 or tuple(x.shape[1:]) != (N_ATOMS, 3):
        raise ValueError(f"x must be (N, {N_ATOMS}, 3) or (N, {3 * N_ATOMS}), got {tuple(x.shape)}")
    phi = dihedral(*(x[:, i] for i in PHI_ATOMS))
    psi = dihedral(*(x[:, i] for i in PSI_ATOMS))
    return torch.stack([phi, psi], dim=1) if isinstance(x, Tensor) else np.stack([phi, psi], axis=1)
