"""The DDPM variational bound (Ho et al. 2020, eq. 5; Sohl-Dickstein et al. 2015), term by term, in
nats: a second estimate of ``log p(x)`` beside the ODE's, and the training objective ``vlb``.

.. math::
    L_{vlb} = L_T + \\sum_{t=2}^T L_{t-1} + L_0, \\qquad
    L_{t-1} = KL\\big(q(x_{t-1} | x_t, x_0) \\,\\|\\, N(\\mu_\\theta, \\varsigma_t^2 I)\\big)
    = \\frac{c_t^2}{2 \\varsigma_t^2} \\| x_0 - \\hat x_0 \\|^2
    + \\frac D2 \\big( r_t - 1 - \\log r_t \\big), \\quad r_t = \\tilde\\beta_t / \\varsigma_t^2,

with ``L_0 = -log N(x_0; x0hat(x_1, 1), beta_1 I)`` (the Gaussian decoder) and ``L_T = KL(q(x_T | x_0) ||
N(0, I))``; ``mu_theta = a_t x_t + c_t x0hat`` is the posterior mean (Ho et al., eq. 7) with the model's
``x0hat`` for ``x_0``, ``c_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t)`` (``Transition.posterior_x0``).
The reverse variance ``varsigma_t^2`` is ``beta_t`` (``"beta"``) or ``beta_tilde_t`` (``"beta_tilde"``,
which zeroes the variance term); the decoder uses ``beta_1`` either way (``beta_tilde_1 = 0``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..core.fields import Field, OnProcess
from ..core.processes import DDPMSchedule, Process
from ..core.tensors import atleast_2d_points, randn_from

__all__ = ["VLB_VARIANCES", "vlb_kernel", "vlb_step_term", "vlb_prior_term", "vlb_terms", "variational_bound"]

VLB_VARIANCES = ("beta", "beta_tilde")


def discrete_steps(process: Process) -> int:
    """``T`` of a discrete schedule (``DDPMSchedule``); ``ValueError`` for a continuous process."""
    steps = getattr(process, "num_steps", None)
    if steps is None:
        raise ValueError(f"objective 'vlb' needs the discrete DDPMSchedule process, got {process!r}")
    return int(steps)


def vlb_kernel(process: Process, variance: str = "beta") -> tuple[Tensor, Tensor]:
    """For ``t = 0..T`` (index 0 unused): the factor ``c_t^2 / (2 varsigma_t^2)`` of ``||x0 - x0hat||^2``
    in ``L_{t-1}``, and the rest of ``L_{t-1}`` per dimension (nats), float64 ``(T + 1,)`` each."""
    if variance not in VLB_VARIANCES:
        raise ValueError(f"variance must be one of {', '.join(VLB_VARIANCES)}, got {variance!r}")
    steps = discrete_steps(process)
    factor, rest = torch.zeros(steps + 1, dtype=torch.float64), torch.zeros(steps + 1, dtype=torch.float64)
    for t in range(1, steps + 1):
        q = process.transition(float(t), float(t - 1))  # var_ts: beta_t, posterior_var: beta_tilde_t
        beta, beta_tilde = float(q.var_ts), float(q.posterior_var)
        var = beta if variance == "beta" or t == 1 else beta_tilde  # beta_tilde_1 = 0: the decoder uses beta_1
        factor[t] = float(q.posterior_x0) ** 2 / (2.0 * var)
        if t == 1:  # L_0: the Gaussian decoder's normalizer
            rest[t] = 0.5 * math.log(2.0 * math.pi * var)
        else:  # L_{t-1}: the KL's variance terms, 0 when varsigma_t^2 = beta_tilde_t
            r = beta_tilde / var
            rest[t] = 0.5 * (r - 1.0 - math.log(r))
    return factor, rest


def vlb_step_term(kernel: tuple[Tensor, Tensor], t: Tensor, x0: Tensor, x0hat: Tensor) -> Tensor:
    """``L_{t-1}`` per sample, in nats, at integer times ``t`` (N,), from ``vlb_kernel``."""
    factor, rest = kernel
    return factor[t].to(x0) * ((x0 - x0hat) ** 2).sum(1) + x0.shape[1] * rest[t].to(x0)


def vlb_prior_term(process: Process, x0: Tensor) -> Tensor:
    """``L_T = KL(q(x_T | x0) || N(0, I))`` per sample, ``q(x_T | x0) = N(sqrt(abar_T) x0, (1 - abar_T) I)``."""
    abar = float(process.alpha(process.t_max)) ** 2
    dim = x0.shape[1]
    return 0.5 * (abar * (x0**2).sum(1) - dim * abar - dim * math.log1p(-abar))


def vlb_terms(
    field: Field,
    x0: Tensor,
    process: Process,
    generator: torch.Generator | None = None,
    *,
    variance: str = "beta",
) -> Tensor:
    """Every term of DDPM's bound (module docstring), exact in ``t``, one ``eps`` draw per term.

    Args:
        field: the model (its ``denoise`` gives ``x0hat``).
        x0: data ``(N, D)``.
        process: a ``DDPMSchedule``.
        generator: the source of the noise.
        variance: the reverse variance, ``"beta"`` or ``"beta_tilde"``.

    Returns:
        ``(N, T + 1)``: column ``k < T`` is ``L_k`` (``L_0`` the decoder), column ``T`` is ``L_T``;
        the row sums are ``L_vlb`` per sample, in nats.
    """
    kernel, steps = vlb_kernel(process, variance), discrete_steps(process)
    columns = []
    for t in range(1, steps + 1):
        x_t = process.marginal_sample(x0, float(t), randn_from(generator, tuple(x0.shape), x0))
        x0hat = field.denoise(x_t, float(t))
        columns.append(vlb_step_term(kernel, torch.full((x0.shape[0],), t), x0, x0hat))
    columns.append(vlb_prior_term(process, x0))
    return torch.stack(columns, 1)


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
    with every term exact in ``t`` and one noise draw each (``vlb_terms``); the decoder ``L_0``
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
