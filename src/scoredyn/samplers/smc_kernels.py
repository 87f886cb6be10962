"""How SMC's particles go from one noise level to the next, and the weight each way needs.

Between levels ``t -> t'`` a particle ``x ~ p_t`` goes to ``y`` by a kernel, and its weight is multiplied
by the incremental weight that makes the pair exact for ``p_{t'}`` (Del Moral, Doucet & Jasra 2006,
eq. 31). Three kernels, each with the backward kernel that makes its weight computable:

- **stay** (``y = x``): the weight is ``p_{t'}(x) / p_t(x)`` (annealed importance sampling, Neal 2001).
  The particles carry no information about the change of level; the weights carry all of it, and their
  spread inside a mode, summed over the levels after the modes split, is what the mode weights' error
  grows with (docs/algorithms.md).
- **reverse** (``reverse_kernel``): the ancestral step ``y ~ q(x_{t'} | x_t = x, x_0 = x0hat(x))``
  (``ddpm``), with the forward transition ``q(x | y)`` as the backward kernel:
  ``w = p_{t'}(y) q(x | y) / (p_t(x) r(y | x))``, 1 where ``r`` is the exact reverse transition
  (Phillips et al. 2024, PDDS). Its variance omits ``x0``'s posterior spread, so it is far from exact
  where the modes split.
- **flow** (``flow_kernel``): one DDIM step of the probability-flow ODE, a deterministic map ``y = T(x)``
  whose backward kernel is its inverse: ``w = p_{t'}(T x) |det grad T(x)| / p_t(x)`` (escorted
  importance sampling, Vaikuntanathan & Jarzynski 2011; annealed flow transport, Arbel, Matthews &
  Doucet 2021, with the score as the flow). The exact flow carries ``p_t`` to ``p_{t'}``, so the weight
  is 1 up to the step's discretization error: ``O(h^2)`` in the log, where staying is ``O(h)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..core.processes import Process

__all__ = ["gaussian_log_density", "reverse_kernel", "flow_kernel"]


def gaussian_log_density(y: Tensor, mean: Tensor, var: float) -> Tensor:
    """``log N(y; mean, var I)`` of each row, in float64."""
    squared = (y.double() - mean.double()).square().sum(-1)
    return -0.5 * squared / var - 0.5 * y.shape[-1] * math.log(2 * math.pi * var)


def reverse_kernel(
    process: Process, t: float, t_new: float, x: Tensor, x0: Tensor, xi: Tensor
) -> tuple[Tensor, Tensor]:
    """A draw of the ancestral kernel ``r(y | x) = N(c_x x + c_{x_0} x0hat, tilde sigma^2 I)``
    (``Transition``; Ho et al. 2020, eq. 7) with noise ``xi``, and the log of its weight correction
    ``log q(x | y) - log r(y | x)``, ``q(x | y) = N(x; alpha_{t|t'} y, sigma_{t|t'}^2 I)`` the forward
    transition. Where the step is too small for float64 to resolve, or ends at ``sigma = 0`` (no
    density to draw from), the particle stays and the correction is 0."""
    q = process.transition(t, t_new)
    var, var_forward = float(q.posterior_var), float(q.var_ts)
    if not var > 0:  # (the posterior variance is sigma_{t|t'}^2 sigma_{t'}^2 / sigma_t^2: 0 whenever that is)
        return x, torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    mean = float(q.posterior_x) * x.double() + float(q.posterior_x0) * x0.double()
    y = (mean + math.sqrt(var) * xi.double()).to(x.dtype)
    log_forward = gaussian_log_density(x, float(q.alpha_ts) * y.double(), var_forward)
    return y, log_forward - gaussian_log_density(y, mean, var)


def flow_kernel(
    process: Process, t: float, t_new: float, x: Tensor, score: Tensor, jacobian: Tensor
) -> tuple[Tensor, Tensor]:
    """One DDIM step of the probability-flow ODE (Song, Meng & Ermon 2021, eq. 12 with ``eta = 0``),
    written with the score, and the log-determinant of its Jacobian:

    .. math::
        T(x) = \\frac{\\alpha'}{\\alpha} x + \\Big(\\frac{\\alpha'}{\\alpha} - \\frac{\\sigma'}{\\sigma}\\Big)
               \\sigma^2 s(x), \\qquad
        \\nabla T = \\frac{\\alpha'}{\\alpha} I + \\Big(\\frac{\\alpha'}{\\alpha} - \\frac{\\sigma'}{\\sigma}\\Big)
               \\sigma^2 \\nabla s,

    (``x + sigma^2 s = alpha x0hat``, Tweedie). ``T`` is the gradient of
    ``alpha'/(2 alpha) |x|^2 + (alpha'/alpha - sigma'/sigma) sigma^2 log p_t``, whose Hessian is positive
    definite (``I + sigma^2 grad s = alpha^2 Cov(x_0 | x) / sigma^2`` is, and ``alpha' / alpha >= 1 >=
    sigma' / sigma`` going down): ``T`` is one to one and the change of variables exact. ``score`` and
    ``jacobian`` (``Field.score_jacobian``) are at ``x`` and ``t``."""
    a, a_new = float(process.alpha(t)), float(process.alpha(t_new))
    s, s_new = float(process.sigma(t)), float(process.sigma(t_new))
    ratio = a_new / a
    gain = (ratio - s_new / s) * s**2
    y = (ratio * x.double() + gain * score.double()).to(x.dtype)
    eye = torch.eye(x.shape[-1], dtype=torch.float64, device=x.device)
    return y, torch.linalg.slogdet(ratio * eye + gain * jacobian.double())[1]
