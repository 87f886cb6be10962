"""Exact likelihoods through the probability-flow ODE, bits/dim, and the ODE's latent space.

The PF-ODE ``dx/dt = v(x, t)`` (Song et al. 2021, eq. 13) is a continuous normalizing flow, so
the instantaneous change of variables (Chen et al. 2018, thm. 1; Grathwohl et al. 2019, eq. 4;
Song et al. 2021, app. D.2, eq. 39) gives the density of the data end exactly:

.. math::
    \\frac{d}{dt}\\begin{bmatrix} x_t \\\\ \\ell_t \\end{bmatrix}
    = \\begin{bmatrix} v(x_t, t) \\\\ \\nabla\\cdot v(x_t, t) \\end{bmatrix}, \\qquad
    \\log p_{t_0}(x) = \\log p_{t_1}(x_{t_1}) + \\int_{t_0}^{t_1} \\nabla\\cdot v(x_t, t)\\,dt .

The divergence is exact (``D`` vector-Jacobian products) or the Hutchinson–Skilling estimate
``eps^T (dv/dx) eps`` (Hutchinson 1989; Skilling 1989) with probes fixed for the whole solve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .core.fields import Field, OnProcess
from .core.processes import DDPMSchedule
from .core.targets import GaussianMixture
from .core.tensors import as_time, atleast_2d_points
from .learning import vlb_terms

__all__ = [
    "LikelihoodResult",
    "log_likelihood",
    "bits_per_dim",
    "dequantize",
    "encode",
    "decode",
    "slerp",
    "interpolate",
    "variational_bound",
]

DIVERGENCES = ("exact", "hutchinson")
PROBE_DISTS = ("rademacher", "gaussian")
ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "adaptive_heun")


@dataclass
class LikelihoodResult:
    """What ``log_likelihood`` returns.

    Attributes:
        logp: ``log p_{t0}(x)``, ``(N,)`` (the mean over probes for Hutchinson).
        logp_per_probe: one estimate per probe, ``(N, K)``, when ``probes > 1``; else ``None``.
        nfe: evaluations of the ODE right-hand side (each one field evaluation on ``N`` points,
            replicated ``K`` or ``D`` times, plus its vector-Jacobian product).
        prior_logp: ``log prior(z)``, ``(N,)``.
        delta_logp: ``int_{t0}^{t1} div v dt``, ``(N,)`` (mean over probes).
        z: the latent ``x(t1)``, ``(N, D)``.
    """

    logp: Tensor
    logp_per_probe: Tensor | None
    nfe: int
    prior_logp: Tensor
    delta_logp: Tensor
    z: Tensor


def _times(field: Field, t0: float | None, t1: float | None) -> tuple[float, float]:
    """Default and check the solve interval ``t_min <= t0 < t1 <= t_max``."""
    p = field.process
    t0 = p.t_min if t0 is None else float(t0)
    t1 = p.t_max if t1 is None else float(t1)
    if not p.t_min <= t0 < t1 <= p.t_max:
        raise ValueError(f"need t_min <= t0 < t1 <= t_max = {p.t_max}, got t0={t0!r}, t1={t1!r}")
    return t0, t1


def _check_solver(rtol: float, atol: float, method: str) -> None:
    if not (rtol > 0 and atol > 0):
        raise ValueError(f"rtol and atol must be positive, got rtol={rtol!r}, atol={atol!r}")
    if method not in ADAPTIVE_METHODS:
        raise ValueError(f"method must be one of {', '.join(ADAPTIVE_METHODS)}, got {method!r}")


def _solve(func, y0, t_a: float, t_b: float, dtype: torch.dtype, rtol: float, atol: float, method: str):
    """``odeint`` from ``t_a`` to ``t_b``; the end is a forced step point, so no stage is
    evaluated beyond it (past ``t_min`` a VP ``sigma`` is NaN). Returns the state at ``t_b``."""
    ref = y0[0] if isinstance(y0, tuple) else y0
    ts = torch.tensor([t_a, t_b], dtype=dtype, device=ref.device)
    from torchdiffeq import odeint  # here, not at import: it pulls in scipy.integrate (~1 s)

    out = odeint(func, y0, ts, rtol=rtol, atol=atol, method=method, options={"step_t": ts[1:]})
    return tuple(o[-1] for o in out) if isinstance(out, tuple) else out[-1]


def _draw_probes(x: Tensor, k: int, dist: str, generator: torch.Generator | None) -> Tensor:
    """``K`` probes per sample, ``(K, N, D)``, with ``E[eps eps^T] = I``."""
    shape = (k, *x.shape)
    if dist == "rademacher":
        bits = torch.randint(0, 2, shape, generator=generator, device=x.device)
        return (2 * bits - 1).to(x.dtype)
    return torch.randn(shape, generator=generator, dtype=x.dtype, device=x.device)


def _basis_probes(x: Tensor) -> Tensor:
    """The ``D`` basis vectors as probes, ``(D, N, D)``: ``sum_i e_i^T J e_i = tr J`` exactly."""
    n, d = x.shape
    return torch.eye(d, dtype=x.dtype, device=x.device)[:, None, :].expand(d, n, d)


def _velocity_and_quadratic(field: Field, x: Tensor, t: Tensor, eps: Tensor, graph: bool) -> tuple[Tensor, Tensor]:
    """``v(x, t)`` (N, D) and ``eps_k^T (dv/dx) eps_k`` (N, K): one field evaluation on the
    ``K`` replicas of ``x`` and one vector-Jacobian product (rows do not interact)."""
    k, n, d = eps.shape
    x_rep = (x if graph else x.detach()).repeat(k, 1)
    if not x_rep.requires_grad:
        x_rep.requires_grad_(True)
    e = eps.reshape(k * n, d)
    v_rep = field.velocity(x_rep, t)
    (vjp,) = torch.autograd.grad(v_rep, x_rep, grad_outputs=e, create_graph=graph)
    quad = (vjp * e).sum(1).reshape(k, n).T
    return v_rep[:n], quad


def log_likelihood(
    field: Field,
    x: Tensor,
    *,
    prior: GaussianMixture,
    t0: float | None = None,
    t1: float | None = None,
    divergence: str = "exact",
    probes: int = 1,
    probe_dist: str = "rademacher",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    method: str = "dopri5",
    generator: torch.Generator | None = None,
    differentiable: bool = False,
    dtype: torch.dtype = torch.float64,
) -> LikelihoodResult:
    """``log p_{t0}(x)`` by the instantaneous change of variables along the PF-ODE.

    Chen et al. (2018), thm. 1; Grathwohl et al. (2019, FFJORD), eqs. 4 and 7; Song et al. (2021),
    app. D.2, eq. 39:

    .. math::
        \\log p_{t_0}(x) = \\log \\pi(x_{t_1}) + \\int_{t_0}^{t_1} \\nabla\\cdot v(x_t, t)\\,dt,
        \\qquad \\nabla\\cdot v \\approx \\tfrac1K \\textstyle\\sum_k \\epsilon_k^\\top
        \\tfrac{\\partial v}{\\partial x}\\epsilon_k .

    The prior ``pi`` is the caller's choice: ``start_distribution("exact", process, t1, target=...)``
    gives the exact answer for an exact field; ``"moments"`` / ``"standard"`` the usual
    approximation for a learned one (its mismatch with ``p_{t1}`` is part of the result).

    ``t0`` defaults to ``process.t_min``. There ``sigma = 0`` for VP/EDM: the exact field is finite,
    but a network's score is not; pass a small ``t0`` (e.g. ``1e-5``) and the result is
    ``log p_{t0}(x)``, the density of the slightly noised data (Song et al. 2021 use ``1e-5``).

    Hutchinson probes are drawn once from ``generator`` and fixed over the whole solve, so each
    probe's estimate is ``eps^T (int J dt) eps``, an unbiased estimate of the exact integral.

    Args:
        field: the score field (``field.velocity``, differentiable in ``x``).
        x: data points ``(N, D)``.
        prior: a ``GaussianMixture`` with ``log_prob`` at ``t1``.
        t0, t1: the solve interval, ``t_min <= t0 < t1 <= t_max`` (defaults: the whole process).
        divergence: ``exact`` (``D`` VJPs, for small ``D``) or ``hutchinson``.
        probes: Hutchinson probes per sample ``K`` (``>= 1``); ignored for ``exact``.
        probe_dist: ``rademacher`` or ``gaussian``.
        rtol, atol, method: torchdiffeq's adaptive solver and tolerances.
        generator: the source of the probes.
        differentiable: keep the graph through the solver (``create_graph``) so that ``logp``
            can be differentiated with respect to the field's parameters.
        dtype: working precision of the state (float64).
    """
    atleast_2d_points(x)
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {', '.join(DIVERGENCES)}, got {divergence!r}")
    if probe_dist not in PROBE_DISTS:
        raise ValueError(f"probe_dist must be one of {', '.join(PROBE_DISTS)}, got {probe_dist!r}")
    if not (isinstance(probes, int) and probes >= 1):
        raise ValueError(f"probes must be a positive integer, got {probes!r}")
    if prior.dim != x.shape[1]:
        raise ValueError(f"prior has dimension {prior.dim}, x has {x.shape[1]}")
    _check_solver(rtol, atol, method)
    t0, t1 = _times(field, t0, t1)
    x = x.to(dtype)
    hutchinson = divergence == "hutchinson"
    eps = _draw_probes(x, probes, probe_dist, generator) if hutchinson else _basis_probes(x)
    nfe = 0

    def rhs(t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        # d/dt [x, l] = [v, div v]: exact (sum over basis) or one estimate per probe
        nonlocal nfe
        nfe += 1
        with torch.enable_grad():
            v, quad = _velocity_and_quadratic(field, state[0], as_time(t), eps, differentiable)
        div = quad if hutchinson else quad.sum(1, keepdim=True)
        if not differentiable:
            v, div = v.detach(), div.detach()
        return v.to(dtype), div.to(dtype)

    l0 = torch.zeros(x.shape[0], probes if hutchinson else 1, dtype=dtype, device=x.device)
    with torch.set_grad_enabled(differentiable):
        z, delta = _solve(rhs, (x, l0), t0, t1, dtype, rtol, atol, method)
    prior_logp = prior.log_prob(z).to(dtype)
    per_probe = prior_logp[:, None] + delta
    return LikelihoodResult(
        logp=per_probe.mean(1),
        logp_per_probe=per_probe if probes > 1 and hutchinson else None,
        nfe=nfe,
        prior_logp=prior_logp,
        delta_logp=delta.mean(1),
        z=z,
    )


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
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + delta * (u - 0.5)


def _flow(field: Field, x: Tensor, t_a: float, t_b: float, rtol: float, atol: float, method: str) -> Tensor:
    """The PF-ODE solution map from ``t_a`` to ``t_b`` (float64, no graph)."""
    atleast_2d_points(x)
    _check_solver(rtol, atol, method)

    def rhs(t: Tensor, y: Tensor) -> Tensor:
        return field.velocity(y, as_time(t)).to(torch.float64)

    with torch.no_grad():
        return _solve(rhs, x.to(torch.float64), t_a, t_b, torch.float64, rtol, atol, method)


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
    t0, t1 = _times(field, t0, t1)
    return _flow(field, x, t0, t1, rtol, atol, method)


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
    t0, t1 = _times(field, t0, t1)
    return _flow(field, z, t1, t0, rtol, atol, method)


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


def variational_bound(
    field: Field,
    x: Tensor,
    *,
    schedule: DDPMSchedule | None = None,
    variance: str = "beta",
    generator: torch.Generator | None = None,
) -> Tensor:
    """A second estimate: the DDPM evidence lower bound ``-L_vlb <= log p(x)`` per sample, in nats.

    Ho et al. (2020), eq. 5 (Sohl-Dickstein et al. 2015): ``L_vlb = L_T + sum_{t>1} L_{t-1} + L_0``
    with every term exact in ``t`` and one noise draw each (``losses.vlb_terms``); the decoder ``L_0``
    is the Gaussian ``N(x; x0hat(x_1, 1), beta_1 I)``, so the bound is on the density, as ``log_likelihood``.
    The field is read on ``schedule`` (default: DDPM's 1000-step linear betas) at equal SNR.

    Args:
        field: any score field.
        x: data ``(N, D)``.
        schedule: the discrete schedule of the bound.
        variance: the reverse variance, ``"beta"`` (tighter here) or ``"beta_tilde"``.
        generator: the source of the noise draws.
    """
    atleast_2d_points(x)
    schedule = DDPMSchedule() if schedule is None else schedule
    on_schedule = field if field.process is schedule else OnProcess(field, schedule)
    with torch.no_grad():
        return -vlb_terms(on_schedule, x.to(torch.float64), schedule, generator, variance=variance).sum(1)
