"""The frame a diffusion model of a molecule learns in: Kabsch alignment of each frame onto a reference
structure (Kabsch 1976, "A solution for the best rotation to relate two sets of vectors", Acta Cryst.
A32, 922), which removes translation and rotation and keeps chirality."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["kabsch", "aligned_cartesian"]


def kabsch(x: Tensor, reference: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Kabsch (1976) alignment of frames ``x`` (N, A, 3) onto ``reference`` (A, 3): with centred ``X``
    and ``Y = reference - mean``, ``H = X^T Y = U S V^T``,

    .. math::
        R = V \\operatorname{diag}(1, 1, d)\\, U^T, \\qquad d = \\operatorname{sign} \\det(V U^T),

    the proper rotation minimising ``sum_i |R x_i - y_i|^2`` (chirality kept). Centring is by the
    geometric centre (unweighted, as the Kabsch least squares is). Returns ``y_i = R (x_i - c)``
    (N, A, 3), ``R`` (N, 3, 3) and the centres ``c`` (N, 1, 3)."""
    c = x.mean(dim=1, keepdim=True)
    xc, yc = x - c, reference - reference.mean(dim=0)
    u, _, vh = torch.linalg.svd(xc.transpose(1, 2) @ yc)
    v = vh.transpose(1, 2)
    d = torch.sign(torch.linalg.det(v @ u.transpose(1, 2)))
    diag = torch.ones(x.shape[0], 3, dtype=x.dtype)
    diag[:, 2] = torch.where(d == 0, torch.ones_like(d), d)
    r = v @ torch.diag_embed(diag) @ u.transpose(1, 2)
    return xc @ r.transpose(1, 2), r, c


def aligned_cartesian(x: Tensor | np.ndarray, reference: Tensor | np.ndarray) -> Tensor:
    """Frames ``x`` (N, 22, 3) (or (N, 66)) centred and rotated onto ``reference`` (22, 3) by ``kabsch``,
    flattened to (N, 66), float64: the 66-D representation (no translation, no rotation left,
    chirality kept)."""
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x, dtype=torch.float64)
    ref = torch.as_tensor(np.asarray(reference) if not isinstance(reference, Tensor) else reference)
    ref = ref.to(torch.float64).reshape(-1, 3)
    x = x.reshape(x.shape[0], -1, 3)
    if x.shape[1] != ref.shape[0]:
        raise ValueError(f"x has {x.shape[1]} atoms per frame but reference has {ref.shape[0]}")
    return kabsch(x, ref)[0].reshape(x.shape[0], -1)
