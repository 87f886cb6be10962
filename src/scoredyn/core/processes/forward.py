"""Particles of the forward (noising) SDE, simulated by Euler–Maruyama.

Every process here has the linear forward SDE ``dx = f(t) x dt + g(t) dw`` (Song et al. 2021,
eq. 5; ``f`` and ``g^2`` from ``Process``), whose marginals ``p_t`` solve the Fokker–Planck equation
``d p / dt = -div(f x p) + g^2 / 2 lap p``. ``simulate_forward`` moves particles of the data along
that SDE, so they can be set beside the exact ``p_t`` (for a mixture, ``GaussianMixture.noised``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..tensors import as_time, atleast_2d_points, positive_int, randn_from
from .base import Process

__all__ = ["simulate_forward"]


def simulate_forward(
    process: Process,
    x0: Tensor,
    times: Tensor,
    *,
    generator: torch.Generator | None = None,
    substeps: int = 1,
) -> Tensor:
    """Euler–Maruyama paths of the forward SDE from ``x0``, recorded at ``times``.

    Song et al. (2021), eq. 5, with the drift ``f(t) x`` and diffusion ``g(t)`` of ``process``;
    between consecutive recorded times ``substeps`` equal steps ``h``, ``xi_i ~ N(0, I)``:

    .. math::
        x_{i+1} = x_i + h\\, f(t_i)\\, x_i + g(t_i) \\sqrt{h}\\, \\xi_i .

    The state is kept in float64 (2-D particles make it cheap). The discretization error of the
    moments is ``O(h)``: for a VP process the mean factor is ``prod (1 + h f)`` against
    ``alpha(t) = exp(int f)``.

    Args:
        process: the forward process (its ``f`` and ``g2``).
        x0: ``(N, D)`` particles at ``times[0]``.
        times: ``(F,)`` increasing times in ``[t_min, t_max]``.
        generator: the one source of ``xi``: the same seed gives the same paths.
        substeps: Euler–Maruyama steps between consecutive recorded times.

    Returns:
        ``(F, N, D)`` particles in ``x0``'s dtype; entry 0 is ``x0``.
    """
    atleast_2d_points(x0, name="x0")
    positive_int(substeps, "substeps")
    times = _check_times(process, times)
    x = x0.to(torch.float64)
    out = [x]
    for t_a, t_b in zip(times[:-1], times[1:], strict=True):
        h = (t_b - t_a) / substeps
        for j in range(substeps):
            t = t_a + j * h
            # drift f(t) x and diffusion g(t), both at the step's left end (Itô)
            xi = randn_from(generator, tuple(x.shape), x)
            x = x + h * process.f(t) * x + torch.sqrt(process.g2(t) * h) * xi
        out.append(x)
    return torch.stack(out).to(x0.dtype)


def _check_times(process: Process, times: Tensor) -> Tensor:
    """``times`` as float64, checked: 1-D, at least one entry, increasing, inside the process's range."""
    times = as_time(times)
    if times.ndim != 1 or times.numel() < 1 or not torch.isfinite(times).all():
        raise ValueError(f"times must be a 1-D tensor of finite times, got shape {tuple(times.shape)}")
    if times.numel() > 1 and not bool((times[1:] > times[:-1]).all()):
        raise ValueError("times must be strictly increasing")
    lo, hi = float(times[0]), float(times[-1])
    if lo < process.t_min or hi > process.t_max:
        raise ValueError(f"times must lie in [{process.t_min}, {process.t_max}], got [{lo}, {hi}]")
    return times
