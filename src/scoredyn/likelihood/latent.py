"""The probability-flow ODE's latent space: encode data to ``x(t1)``, decode back, and interpolate
between two data points along a spherical path of their latents (Song et al. 2021, sec. 4.3)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.fields import Field
from ._flow import flow_map, solve_interval

__all__ = ["encode", "decode", "slerp", "interpolate"]


def encode(
    field: Field,
    x: Tensor,
    *,
    t0: float | None = None,
    t1: float | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    method: str = "dopri5",
) -> Tensor:
    """The latent ``z = x(t1)`` of data ``x = x(t0)`` along the PF-ODE (Song et al. 2021, sec. 4.3),
    ``(N, D)`` float64. Defaults ``t0 = t_min``, ``t1 = t_max``."""
    t0, t1 = solve_interval(field, t0, t1)
    return flow_map(field, x, t0, t1, rtol, atol, method)


def decode(
    field: Field,
    z: Tensor,
    *,
    t1: float | None = None,
    t0: float | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    method: str = "dopri5",
) -> Tensor:
    """The inverse of ``encode``: data ``x(t0)`` from the latent ``z = x(t1)``, ``(N, D)`` float64."""
    t0, t1 = solve_interval(field, t0, t1)
    return flow_map(field, z, t1, t0, rtol, atol, method)


def slerp(z0: Tensor, z1: Tensor, n: int) -> Tensor:
    """Spherical interpolation (Shoemake 1985; as for DDIM latents, Song et al. 2021a, sec. 5.3):

    .. math::
        z(s) = \\frac{\\sin((1-s)\\theta)}{\\sin\\theta} z_0 + \\frac{\\sin(s\\theta)}{\\sin\\theta} z_1,
        \\qquad \\cos\\theta = \\frac{z_0^\\top z_1}{\\|z_0\\|\\|z_1\\|},

    at ``n`` equispaced ``s`` in ``[0, 1]`` (linear where ``theta`` is ~0). ``z0``, ``z1``: ``(D,)``;
    returns ``(n, D)``."""
    if z0.ndim != 1 or z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must be vectors of one shape (D,), got {tuple(z0.shape)}, {tuple(z1.shape)}")
    if not (isinstance(n, int) and n >= 2):
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    s = torch.linspace(0.0, 1.0, n, dtype=z0.dtype, device=z0.device)[:, None]
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(theta) < 1e-6:
        return (1 - s) * z0 + s * z1
    return (torch.sin((1 - s) * theta) * z0 + torch.sin(s * theta) * z1) / torch.sin(theta)


def interpolate(
    field: Field,
    x0: Tensor,
    x1: Tensor,
    n: int,
    *,
    t0: float | None = None,
    t1: float | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> Tensor:
    """A path of ``n`` data points from ``x0`` to ``x1`` (each ``(D,)``): encode both, ``slerp``
    the latents, decode; ``(n, D)``. Slerp suits latents centred at 0 (VP at ``t_max``); under
    VE/EDM the latents are centred on the data mean."""
    z = encode(field, torch.stack([x0, x1]), t0=t0, t1=t1, rtol=rtol, atol=atol)
    return decode(field, slerp(z[0], z[1], n), t0=t0, t1=t1, rtol=rtol, atol=atol)
