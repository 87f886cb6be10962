"""Stein variational gradient descent in a score field, annealed over noise levels.

The SVGD direction of Liu & Wang (2016, eq. 8) with the RBF kernel ``k(x, y) = exp(-|x - y|^2 / h^2)``,

.. math::
    \\phi_i = \\frac1N \\sum_j \\big[k(x_j, x_i)\\, s_j + \\lambda \\nabla_{x_j} k(x_j, x_i)\\big]
           = \\frac1N \\Big[(K s)_i + \\lambda \\frac{2}{h^2}\\big(\\textstyle\\sum_j K_{ij}\\, x_i
             - (K x)_i\\big)\\Big], \\qquad K_{ij} = k(x_j, x_i),

is evaluated in its second form: the kernel sums ``sum_j k(x_j, x_i) [s_j | x_j | 1]`` come from a
backend underneath (``kernels.svgd``: tiled torch blocks that use the symmetry of ``k``, or one fused
Triton pass on CUDA), never through the ``(N, N, D)`` tensor of pairwise differences.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.tensors import atleast_2d_points, positive_float, positive_int
from ..kernels.svgd import BACKENDS, MEMORY_BUDGET, chunk_rows, kernel_sums, resolve_backend
from ._steps import SampleResult, StepInfo, Tracker, check_level_grid, langevin_kick, langevin_step_sizes, noise

__all__ = ["BACKENDS", "MEMORY_BUDGET", "svgd", "svgd_direction"]


def _check_repulsion(repulsion: float) -> float:
    if not 0 <= float(repulsion) < float("inf"):
        raise ValueError(f"repulsion must be >= 0, got {repulsion!r}")
    return float(repulsion)


def svgd_direction(
    x: Tensor,
    score: Tensor,
    h: float,
    repulsion: float = 1.0,
    *,
    backend: str = "auto",
    memory_budget: int | None = None,
    chunk_size: int | None = None,
    precision: str = "ieee",
) -> Tensor:
    """The SVGD update direction (Liu & Wang 2016, eq. 8; Algorithm 1).

    .. math::
        \\phi_i = \\frac1N \\sum_j \\Big[k(x_j, x_i)\\, s_j + \\lambda\\,\\frac{2}{h^2}\\,
                  k(x_j, x_i)\\,(x_i - x_j)\\Big], \\qquad k(x, y) = e^{-|x - y|^2 / h^2} .

    Args:
        x: ``(N, D)`` particles.
        score: ``(N, D)`` the score ``s_j`` at each particle.
        h: kernel bandwidth ``> 0``.
        repulsion: weight ``lambda >= 0`` of the kernel-gradient term (1 is SVGD).
        backend: the kernel sums' backend (``kernels.svgd.kernel_sums``): ``auto`` (``triton`` for a
            CUDA tensor when triton is installed, else ``torch``), ``triton`` (one fused pass, O(N D)
            memory) or ``torch`` (blocks of rows, O(chunk N) memory).
        memory_budget: bytes for one row block's temporaries (``torch``; default ``MEMORY_BUDGET``,
            64 MiB): ``chunk = min(BLOCK_ROWS, max(1, budget // ((2 N + 8 D) * itemsize)))`` rows.
        chunk_size: rows per block (``torch``), overriding ``memory_budget``.
        precision: ``tl.dot`` input precision of ``triton``: ``ieee`` or ``tf32x3`` (three TF32
            tensor-core products, near-float32 accuracy on Ampere and later GPUs).

    Returns:
        ``(N, D)`` the direction ``phi``.
    """
    x = atleast_2d_points(x)
    if score.shape != x.shape:
        raise ValueError(f"score must have x's shape {tuple(x.shape)}, got {tuple(score.shape)}")
    h, lam = positive_float(h, "h"), _check_repulsion(repulsion)
    N, D = x.shape
    # the direction is shift invariant: centred, x_i sum_j k_ij - sum_j k_ij x_j loses only eps |x - mean| / h
    xc = x - x.mean(0)
    # the kernel sums sum_j k(x_j, x_i) [s_j | x_j | 1], from the backend underneath
    values = torch.cat([score.to(xc.dtype), xc, torch.ones(N, 1, dtype=x.dtype, device=x.device)], dim=1)
    sums = kernel_sums(xc, values, h, backend=backend, memory_budget=memory_budget, chunk_size=chunk_size,
                       precision=precision)  # fmt: skip
    Ks, Kx, k_sum = sums.to(x.dtype).split([D, D, 1], dim=1)
    # phi_i = (1/N) [(K s)_i + lambda (2/h^2) (x_i sum_j k_ij - (K x)_i)]
    return (Ks + lam * (2.0 / h**2) * (k_sum * xc - Kx)) / N


def svgd(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    steps_per_level: int = 100,
    eta_factor: float = 0.5,
    bandwidth_factor: float = 1.0,
    repulsion: float = 1.0,
    langevin_noise: bool = False,
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
    backend: str = "auto",
    memory_budget: int | None = None,
    chunk_size: int | None = None,
) -> SampleResult:
    """Annealed SVGD (Liu & Wang 2016, Algorithm 1) over the noise levels of ``grid``.

    At each level ``t_i``, with ``h_i = bandwidth_factor sigma(t_i)`` and
    ``eta_i = eta_factor sigma(t_i)^2``, ``steps_per_level`` steps of

    .. math::
        x_i \\leftarrow x_i + \\eta\\, \\phi_i(x_{1:N}, t) \\;\\big[+ \\sqrt{2\\eta}\\,\\xi_i\\big],

    ``phi`` from ``svgd_direction`` with the field's score; the bracketed Langevin noise only with
    ``langevin_noise`` (stochastic SVGD). A level with ``sigma = 0`` is skipped. Each step costs
    ``O(N^2 D)`` time and ``O(N D)`` (``triton``) or ``O(chunk N)`` (``torch``) memory. The path is
    recorded after each level.
    NFE is ``levels * steps_per_level``.

    Args:
        field: the score field.
        x: ``(N, D)`` start at ``grid[0]``.
        grid: ``(L,)`` non-increasing times, one per level (e.g. ``geometric_sigma_grid``).
        steps_per_level: steps at each level.
        eta_factor: step size factor.
        bandwidth_factor: kernel bandwidth in units of ``sigma(t)``.
        repulsion: weight ``lambda`` of the kernel-gradient term.
        langevin_noise: add ``sqrt(2 eta) xi``.
        generator: the one source of noise (used only with ``langevin_noise``).
        callback: called with ``StepInfo`` after each level.
        return_path: keep the particles after each level.
        backend: ``auto``, ``triton`` or ``torch`` (see ``svgd_direction``).
        memory_budget: bytes for one row block of the ``torch`` backend (see ``svgd_direction``).
        chunk_size: rows per kernel block of the ``torch`` backend (see ``svgd_direction``).
    """
    x = atleast_2d_points(x)
    grid = check_level_grid(grid)
    T = positive_int(steps_per_level, "steps_per_level")
    etas = langevin_step_sizes(field.process, grid, positive_float(eta_factor, "eta_factor"), "sigma2")
    b = positive_float(bandwidth_factor, "bandwidth_factor")
    _check_repulsion(repulsion)
    backend = resolve_backend(backend, x.device)  # once, before the first step
    if memory_budget is not None:
        chunk_rows(*x.shape, x.element_size(), memory_budget)
    sigmas = field.process.sigma(grid).tolist()
    tracker = Tracker(field, x, callback, return_path)
    for i, (t, sigma_i, eta_i) in enumerate(zip(grid, sigmas, etas, strict=True)):
        # T steps of x <- x + eta_i phi(x, t_i) [+ sqrt(2 eta_i) xi], h_i = b sigma_i (0: skip)
        for _ in range(T if sigma_i > 0 else 0):
            s = tracker.field.score(x, t)
            phi = svgd_direction(x, s, b * sigma_i, repulsion, backend=backend, memory_budget=memory_budget,
                                 chunk_size=chunk_size)  # fmt: skip
            x = langevin_kick(x, phi, eta_i, noise(x, generator) if langevin_noise else None)
        tracker.step(i, t, x)
    return tracker.result(x)
