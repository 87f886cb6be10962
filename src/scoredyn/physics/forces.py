"""A denoiser as a force field (Arts et al. 2023, "Two for one: diffusion models and force fields for
coarse-grained molecular dynamics", JCTC 19, 6151, sec. 2).

A Boltzmann density ``p(x) ∝ exp(-U(x) / kT)`` has the score ``grad log p = F / kT``, so the score of
a diffusion model trained on equilibrium samples, read at a small noise level ``sigma_hat``, is a
force: that of the data smoothed by ``N(0, sigma_hat^2 I)``. ``field_force`` reads it at one level;
``multi_sigma_force`` at several levels in one network call, for running MD at each level side by
side. Any ``ForceFn`` drives the integrators of :mod:`.integrators`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.tensors import PerDevice

__all__ = ["ForceFn", "field_force", "multi_sigma_force"]

ForceFn = Callable[[Tensor], Tensor]
"""A force field: positions (N, D) -> forces (N, D)."""


def field_force(field: Field, sigma_hat: float, kT: float) -> ForceFn:
    """A denoiser as a force field (Arts et al. 2023, "Two for one", sec. 2): ``F(x) = kT s(x, sigma_hat)``.

    The score is that of the data smoothed by noise of standard deviation ``sigma_hat``,
    ``p_0 * N(0, sigma_hat^2 I)``, whatever the process: at the time ``t`` with ``sigma / alpha =
    sigma_hat``, ``x_t / alpha`` has that law, so

    .. math::
        F(x) = kT\\, \\alpha(t)\\, s_\\theta(\\alpha(t)\\, x, t).

    (For VE/EDM ``alpha = 1``; for VP it removes the small shrinkage ``alpha < 1``.) ``sigma_hat``
    trades the bias of smoothing (``O(sigma_hat^2)``) against the network's error at low noise.

    Args:
        field: the score field (its ``process`` maps ``sigma_hat`` to ``t``).
        sigma_hat: noise level in data units, > 0.
        kT: thermal energy.

    Returns:
        A ``ForceFn``: positions (N, D) -> forces (N, D).
    """
    if not sigma_hat > 0:
        raise ValueError(f"sigma_hat must be positive, got {sigma_hat}")
    t = field.process.sigma_hat_to_t(torch.tensor(float(sigma_hat), dtype=torch.float64))
    alpha = float(field.process.alpha(t))

    def force(x: Tensor) -> Tensor:
        return (kT * alpha) * field.score(alpha * x, t)

    return force


def multi_sigma_force(field: Field, sigmas: Sequence[float], kT: float, walkers: int) -> ForceFn:
    """``field_force`` at ``K`` noise levels in one network call (Arts et al. 2023, sec. 2, batched over
    the levels): rows ``k W .. (k+1) W - 1`` of the input get

    .. math::
        F(x) = kT\\, \\alpha_k\\, s_\\theta(\\alpha_k x, t_k), \\qquad \\sigma(t_k) / \\alpha(t_k) = \\hat\\sigma_k .

    Args:
        field: the score field.
        sigmas: the ``K`` noise levels ``sigma_hat_k`` in data units, each > 0.
        kT: thermal energy.
        walkers: ``W``, the rows per level.

    Returns:
        A ``ForceFn`` on (K W, D) positions.
    """
    sig = torch.as_tensor(list(sigmas), dtype=torch.float64)
    if sig.ndim != 1 or not bool((sig > 0).all()):
        raise ValueError(f"sigmas must be positive, got {list(sigmas)}")
    t = field.process.sigma_hat_to_t(sig).repeat_interleave(walkers)
    levels = PerDevice(t, field.process.alpha(t)[:, None])  # moved to the walkers' device once

    def force(x: Tensor) -> Tensor:
        t_x, alpha = levels.on(x.device)
        a = alpha.to(x.dtype)
        return (kT * a) * field.score(a * x, t_x)

    return force
