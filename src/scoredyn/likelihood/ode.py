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

from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.targets import GaussianMixture
from ..core.tensors import as_time, atleast_2d_points, generator_device, randn_from
from ._flow import check_solver, solve, solve_interval

__all__ = ["LikelihoodResult", "log_likelihood", "DIVERGENCES", "PROBE_DISTS"]

DIVERGENCES = ("exact", "hutchinson")
PROBE_DISTS = ("rademacher", "gaussian")


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


def _draw_probes(x: Tensor, k: int, dist: str, generator: torch.Generator | None) -> Tensor:
    """``K`` probes per sample, ``(K, N, D)``, with ``E[eps eps^T] = I``, drawn on the generator's device
    and moved to ``x``'s."""
    shape = (k, *x.shape)
    if dist == "rademacher":
        bits = torch.randint(0, 2, shape, generator=generator, device=generator_device(generator))
        return (2 * bits - 1).to(dtype=x.dtype, device=x.device)
    return randn_from(generator, shape, x)


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
    check_solver(rtol, atol, method)
    t0, t1 = solve_interval(field, t0, t1)
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
        z, delta = solve(rhs, (x, l0), t0, t1, dtype, rtol, atol, method)
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
