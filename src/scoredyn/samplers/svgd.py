"""Stein variational gradient descent in a score field, annealed over noise levels.

The SVGD direction of Liu & Wang (2016, eq. 8) with the RBF kernel ``k(x, y) = exp(-|x - y|^2 / h^2)``,

.. math::
    \\phi_i = \\frac1N \\sum_j \\big[k(x_j, x_i)\\, s_j + \\lambda \\nabla_{x_j} k(x_j, x_i)\\big]
           = \\frac1N \\Big[(K s)_i + \\lambda \\frac{2}{h^2}\\big(\\textstyle\\sum_j K_{ij}\\, x_i
             - (K x)_i\\big)\\Big], \\qquad K_{ij} = k(x_j, x_i),

is evaluated in its second form: the kernel sums ``sum_j k(x_j, x_i) [s_j | x_j | 1]`` come from a
backend underneath (``kernels.svgd``: tiled torch blocks that use the symmetry of ``k``, or one fused
Triton pass on CUDA), never through the ``(N, N, D)`` tensor of pairwise differences.

Why the text's annealed SVGD (``h = 2 sigma``, ``1/N``) misses the law in 10-D, and the knobs of
``svgd`` that make it reach it (``benchmarks/svgd_exact.py``; ``docs/algorithms.md``):

- ``bandwidth="median"``: at each level ``h`` from the particles' median pairwise distance (Liu &
  Wang 2016, Sec. 5), not ``h = c sigma``, which shrinks with the noise while the particles' spacing
  does not: in mog10 pairs within a component sit ~4.5 apart, so from ``sigma ~ 1`` down to the last
  level (``h = 0.1``) every particle feels little but itself. ``min_neighbours`` widens ``h`` where
  a particle would get less kernel mass than that from the others: a particle alone climbs its own
  score, and the cloud collapses (SVGD's variance collapse in high dimension).
- ``normalization="mass"``: the direction divided by the kernel mass ``sum_j k(x_j, x_i)``, not by
  ``N``. The ``1/N`` of eq. 8 scales a particle's step by the kernel density around it: where that
  is small (in 10-D, or in the tail of the broad start) the particle hardly moves and the ladder
  ends before it arrives. A positive number per particle changes no fixed point ``phi_i = 0``; the
  step is then capped at ``eta_factor h^2`` so the repulsion never overshoots.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.tensors import atleast_2d_points, positive_float, positive_int
from ..kernels.svgd import BACKENDS, MEMORY_BUDGET, chunk_rows, kernel_sums, resolve_backend
from ._steps import SampleResult, StepInfo, Tracker, check_level_grid, langevin_kick, langevin_step_sizes, noise

__all__ = [
    "BACKENDS",
    "BANDWIDTHS",
    "MEMORY_BUDGET",
    "NORMALIZATIONS",
    "BANDWIDTH_POINTS",
    "median_bandwidth",
    "neighbour_bandwidth",
    "level_bandwidth",
    "svgd",
    "svgd_direction",
]

#: ``svgd``'s bandwidth rules: ``sigma`` (``h = c sigma(t)``) or ``median`` (``c`` times the median heuristic).
BANDWIDTHS = ("sigma", "median")

#: ``svgd_direction``'s normalisations: ``n`` (the ``1/N`` of Liu & Wang's eq. 8) or ``mass`` (``1 / sum_j k_ij``).
NORMALIZATIONS = ("n", "mass")

#: Particles the bandwidth rules look at (the first ones: the particles are exchangeable), so a rule
#: costs ``O(BANDWIDTH_POINTS^2 D)`` once per level whatever ``N``.
BANDWIDTH_POINTS = 500

_BISECTIONS = 60  # halvings of the log-bandwidth bracket in neighbour_bandwidth (relative error 2^-60 of it)


def _check_repulsion(repulsion: float) -> float:
    if not 0 <= float(repulsion) < float("inf"):
        raise ValueError(f"repulsion must be >= 0, got {repulsion!r}")
    return float(repulsion)


def _check_choice(value: str, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _pair_distances(x: Tensor, max_points: int) -> Tensor:
    """``|x_i - x_j|`` for ``i < j`` among the first ``max_points`` particles (float64, flat)."""
    sub = x[:max_points].to(torch.float64)
    return torch.pdist(sub)


def median_bandwidth(x: Tensor, max_points: int = BANDWIDTH_POINTS) -> float:
    """The median heuristic of Liu & Wang (2016, Sec. 5) in this module's units.

    Their kernel ``exp(-|x - y|^2 / h_LW)`` with ``h_LW = med^2 / log N`` is ours,
    ``exp(-|x - y|^2 / h^2)``, at

    .. math:: h = \\frac{\\mathrm{med}}{\\sqrt{\\log N}}, \\qquad
              N\\, k(\\mathrm{med}) = N e^{-\\log N} = 1,

    so a particle's kernel mass from the others is about one where the distances concentrate near
    their median (high dimension). ``med`` is the median (midpoint of the two middle values for an
    even count) of ``|x_i - x_j|``, ``i < j``, over the first ``max_points`` particles; ``N`` counts
    them all.

    Args:
        x: ``(N, D)`` particles, ``N >= 2``, not all equal.
        max_points: particles the median looks at.
    """
    x = atleast_2d_points(x)
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"the median bandwidth needs at least 2 particles, got {n}")
    med = float(torch.quantile(_pair_distances(x, positive_int(max_points, "max_points")), 0.5))
    if not med > 0:
        raise ValueError("the median bandwidth needs distinct particles: the median distance is 0")
    return med / math.sqrt(math.log(n))


def neighbour_bandwidth(x: Tensor, neighbours: float, max_points: int = BANDWIDTH_POINTS) -> float:
    """The bandwidth at which a particle gets ``neighbours`` of kernel mass from the others, on average:

    .. math:: \\frac1M \\sum_{i \\le M} \\sum_{j \\ne i,\\, j \\le M} e^{-|x_i - x_j|^2 / h^2}
              = \\frac{M - 1}{N - 1}\\, m

    over the first ``M = min(N, max_points)`` particles (the subsample's share of the ``m`` neighbours
    among all ``N``). The left side grows from 0 to ``M - 1`` with ``h``; the root is found by
    bisection in ``log h``.

    Args:
        x: ``(N, D)`` particles, ``N >= 2``, not all equal.
        neighbours: ``m``, in ``(0, N - 1)``.
        max_points: particles the rule looks at.
    """
    x = atleast_2d_points(x)
    n = x.shape[0]
    m = positive_float(neighbours, "neighbours")
    if n < 2 or m >= n - 1:
        raise ValueError(f"neighbours must lie below N - 1 = {n - 1}, got {neighbours!r}")
    d2 = _pair_distances(x, positive_int(max_points, "max_points")).square()
    if not float(d2.max()) > 0:
        raise ValueError("the neighbour bandwidth needs distinct particles")
    rows = min(n, max_points)
    target = 0.5 * rows * (rows - 1) / (n - 1) * m  # the sum over pairs i < j is half the sum over i, j != i
    positive = d2[d2 > 0]
    lo, hi = 0.5 * math.log(float(positive.min())) - 10.0, 0.5 * math.log(float(d2.max())) + 10.0
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        mass = float(torch.exp(-d2 / math.exp(2.0 * mid)).sum())
        lo, hi = (mid, hi) if mass < target else (lo, mid)
    return math.exp(0.5 * (lo + hi))


def svgd_direction(
    x: Tensor,
    score: Tensor,
    h: float,
    repulsion: float = 1.0,
    *,
    normalization: str = "n",
    backend: str = "auto",
    memory_budget: int | None = None,
    chunk_size: int | None = None,
    precision: str = "ieee",
) -> Tensor:
    """The SVGD update direction (Liu & Wang 2016, eq. 8; Algorithm 1).

    .. math::
        \\phi_i = \\frac1{Z_i} \\sum_j \\Big[k(x_j, x_i)\\, s_j + \\lambda\\,\\frac{2}{h^2}\\,
                  k(x_j, x_i)\\,(x_i - x_j)\\Big], \\qquad k(x, y) = e^{-|x - y|^2 / h^2},

    with ``Z_i = N`` (``normalization="n"``, eq. 8) or ``Z_i = sum_j k(x_j, x_i)`` (``"mass"``, at
    least 1: the particle's own term). The second is a kernel-weighted mean of the scores plus a
    push away from the kernel-weighted mean of the particles,
    ``phi_i = E_k[s] + lambda (2 / h^2) (x_i - E_k[x])``, the same at every kernel density; both
    vanish at the same points.

    Args:
        x: ``(N, D)`` particles.
        score: ``(N, D)`` the score ``s_j`` at each particle.
        h: kernel bandwidth ``> 0``.
        repulsion: weight ``lambda >= 0`` of the kernel-gradient term (1 is SVGD).
        normalization: ``n`` or ``mass`` (one of ``NORMALIZATIONS``).
        backend: the kernel sums' backend (``kernels.svgd.kernel_sums``): ``auto`` (``triton`` for a
            CUDA tensor when triton is installed, else ``torch``), ``triton`` (one fused pass, O(N D)
            memory) or ``torch`` (blocks of rows, O(chunk N) memory).
        memory_budget: bytes for one row block's temporaries (``torch``; default ``MEMORY_BUDGET``,
            64 MiB): ``chunk = min(BLOCK_ROWS, max(1, budget // ((2 N + 8 D) * itemsize)))`` rows.
        chunk_size: rows per block (``torch``), overriding ``memory_budget``.
        precision: the products' precision of ``triton`` (``kernels.svgd.kernel_sums``): ``ieee``
            (float32 accuracy), ``tf32x3`` (near float32) or ``tf32`` (about 1e-3 relative).

    Returns:
        ``(N, D)`` the direction ``phi``.
    """
    x = atleast_2d_points(x)
    if score.shape != x.shape:
        raise ValueError(f"score must have x's shape {tuple(x.shape)}, got {tuple(score.shape)}")
    h, lam = positive_float(h, "h"), _check_repulsion(repulsion)
    _check_choice(normalization, NORMALIZATIONS, "normalization")
    N, D = x.shape
    # the direction is shift invariant: centred, x_i sum_j k_ij - sum_j k_ij x_j loses only eps |x - mean| / h
    xc = x - x.mean(0)
    # the kernel sums sum_j k(x_j, x_i) [s_j | x_j | 1], from the backend underneath
    values = torch.cat([score.to(xc.dtype), xc, torch.ones(N, 1, dtype=x.dtype, device=x.device)], dim=1)
    sums = kernel_sums(xc, values, h, backend=backend, memory_budget=memory_budget, chunk_size=chunk_size,
                       precision=precision)  # fmt: skip
    Ks, Kx, k_sum = sums.to(x.dtype).split([D, D, 1], dim=1)
    # phi_i = [(K s)_i + lambda (2/h^2) (x_i sum_j k_ij - (K x)_i)] / Z_i
    Z = N if normalization == "n" else k_sum
    return (Ks + lam * (2.0 / h**2) * (k_sum * xc - Kx)) / Z


def level_bandwidth(x: Tensor, sigma: float, bandwidth: str, factor: float, min_neighbours: float) -> float:
    """One level's ``h``: ``factor sigma`` (``sigma``) or ``factor median_bandwidth(x)`` (``median``),
    widened to ``neighbour_bandwidth(x, min_neighbours)`` where that is wider (``min_neighbours > 0``)."""
    _check_choice(bandwidth, BANDWIDTHS, "bandwidth")
    h = factor * (sigma if bandwidth == "sigma" else median_bandwidth(x))
    return max(h, neighbour_bandwidth(x, min_neighbours)) if min_neighbours > 0 else h


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
    bandwidth: str = "sigma",
    normalization: str = "n",
    min_neighbours: float = 0.0,
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
    backend: str = "auto",
    memory_budget: int | None = None,
    chunk_size: int | None = None,
) -> SampleResult:
    """Annealed SVGD (Liu & Wang 2016, Algorithm 1) over the noise levels of ``grid``.

    At each level ``t_i``, with the bandwidth ``h_i`` (``level_bandwidth``: ``bandwidth_factor
    sigma(t_i)``, or ``bandwidth_factor`` times the median heuristic of the particles entering the
    level, Liu & Wang 2016, Sec. 5) and ``eta_i = eta_factor sigma(t_i)^2``, ``steps_per_level``
    steps of

    .. math::
        x_i \\leftarrow x_i + \\eta\\, \\phi_i(x_{1:N}, t) \\;\\big[+ \\sqrt{2\\eta}\\,\\xi_i\\big],

    ``phi`` from ``svgd_direction`` with the field's score; the bracketed Langevin noise only with
    ``langevin_noise`` (stochastic SVGD). With ``normalization="mass"`` the step is also capped,
    ``eta_i = eta_factor min(sigma_i^2, h_i^2)``: the push ``eta (2 / h^2) (x_i - E_k[x])`` then
    never overshoots the kernel-weighted mean. A level with ``sigma = 0`` is skipped. Each step costs
    ``O(N^2 D)`` time and ``O(N D)`` (``triton``) or ``O(chunk N)`` (``torch``) memory; the bandwidth
    rules ``O(BANDWIDTH_POINTS^2 D)`` once per level. The path is recorded after each level.
    NFE is ``levels * steps_per_level``.

    Args:
        field: the score field.
        x: ``(N, D)`` start at ``grid[0]``.
        grid: ``(L,)`` non-increasing times, one per level (e.g. ``geometric_sigma_grid``).
        steps_per_level: steps at each level.
        eta_factor: step size factor.
        bandwidth_factor: kernel bandwidth in units of ``sigma(t)`` or of the median heuristic.
        repulsion: weight ``lambda`` of the kernel-gradient term.
        langevin_noise: add ``sqrt(2 eta) xi``.
        bandwidth: ``sigma`` or ``median`` (one of ``BANDWIDTHS``).
        normalization: ``n`` or ``mass`` (one of ``NORMALIZATIONS``; see ``svgd_direction``).
        min_neighbours: if ``> 0``, the least mean kernel mass a particle gets from the others
            (``neighbour_bandwidth``); 0 keeps the bandwidth rule as it is.
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
    _check_choice(bandwidth, BANDWIDTHS, "bandwidth")
    _check_choice(normalization, NORMALIZATIONS, "normalization")
    m = float(min_neighbours)
    if not (m == 0 or 0 < m < x.shape[0] - 1):
        raise ValueError(f"min_neighbours must be 0 or lie in (0, N - 1) = (0, {x.shape[0] - 1}), got {m!r}")
    backend = resolve_backend(backend, x.device)  # once, before the first step
    if memory_budget is not None:
        chunk_rows(*x.shape, x.element_size(), memory_budget)
    sigmas = field.process.sigma(grid).tolist()
    tracker = Tracker(field, x, callback, return_path)
    for i, (t, sigma_i, eta_i) in enumerate(zip(grid, sigmas, etas, strict=True)):
        steps = T if sigma_i > 0 else 0  # a level at sigma = 0 is skipped (step size 0)
        if steps:
            # the level's bandwidth, from sigma_i or from the particles entering the level
            h_i = level_bandwidth(x, sigma_i, bandwidth, b, m)
            eta_i = min(eta_i, eta_factor * h_i**2) if normalization == "mass" else eta_i
        # T steps of x <- x + eta_i phi(x, t_i) [+ sqrt(2 eta_i) xi]
        for _ in range(steps):
            s = tracker.field.score(x, t)
            phi = svgd_direction(x, s, h_i, repulsion, normalization=normalization, backend=backend,
                                 memory_budget=memory_budget, chunk_size=chunk_size)  # fmt: skip
            x = langevin_kick(x, phi, eta_i, noise(x, generator) if langevin_noise else None)
        tracker.step(i, t, x)
    return tracker.result(x)
