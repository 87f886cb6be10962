"""Stein variational gradient descent in a score field, annealed over noise levels.

The SVGD direction of Liu & Wang (2016, eq. 8) with the RBF kernel
``k(x, y) = exp(-|x - y|^2 / h^2)`` is

.. math::
    \\phi_i = \\frac1N \\sum_j \\big[k(x_j, x_i)\\, s_j + \\lambda \\nabla_{x_j} k(x_j, x_i)\\big]
           = \\frac1N \\Big[(K s)_i + \\lambda \\frac{2}{h^2}\\big(\\textstyle\\sum_j K_{ij}\\, x_i
             - (K x)_i\\big)\\Big],

with ``K_ij = k(x_j, x_i)``. ``svgd_direction`` evaluates the second form without the ``(N, N, D)``
tensor of pairwise differences: on CUDA in one fused Triton pass (``scoredyn.kernels.svgd``, O(N D)
memory), elsewhere in cache-sized blocks of rows in torch that use the symmetry of ``k`` to evaluate
half the pairs (O(chunk N) memory, the block also bounded by a memory budget).
``_svgd_direction_dense`` is the first form written out, kept as a reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.tensors import atleast_2d_points
from ..kernels._triton import triton_available, triton_runs_on
from ._steps import SampleResult, StepInfo, Tracker
from .langevin import _check_level_grid, _check_positive, _check_steps, _kick, _step_sizes

__all__ = ["BACKENDS", "BLOCK_ROWS", "MEMORY_BUDGET", "svgd", "svgd_direction"]

BACKENDS = ("auto", "triton", "torch")

#: Default bytes for the temporaries of one row block of the ``torch`` backend (``memory_budget``).
MEMORY_BUDGET = 64 * 2**20


def _check_direction_args(
    x: Tensor, score: Tensor, h: float, repulsion: float
) -> tuple[float, float]:
    if score.shape != x.shape:
        raise ValueError(f"score must have x's shape {tuple(x.shape)}, got {tuple(score.shape)}")
    if not 0 <= float(repulsion) < float("inf"):
        raise ValueError(f"repulsion must be >= 0, got {repulsion!r}")
    return _check_positive(h, "h"), float(repulsion)


def _chunk_rows(n: int, d: int, element_size: int, memory_budget: int | None = None) -> int:
    """Rows per block of the ``torch`` backend: as many as fit ``memory_budget`` bytes (at least one).

    A block of ``c`` rows holds the kernel block ``K`` (``c x N``, squared distances accumulated and
    exponentiated in place) and one ``c x N`` scratch block of coordinate differences, ``K [s | x]``
    (``c x 2D``), the row sums and the few ``c x D`` temporaries of the combination: at most
    ``c (2 N + 8 D)`` elements.
    """
    budget = MEMORY_BUDGET if memory_budget is None else memory_budget
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"memory_budget must be a positive integer (bytes), got {memory_budget!r}")
    return max(1, budget // ((2 * n + 8 * d) * element_size))


def _pick_backend(backend: str, x: Tensor) -> str:
    """``auto``: ``triton`` on CUDA when triton imports, else ``torch``. Checks that an explicit
    ``triton`` can run on ``x``'s device (CUDA, or any device under ``TRITON_INTERPRET=1``)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "triton" if x.device.type == "cuda" and triton_available() else "torch"
    if backend == "triton" and not triton_runs_on(x.device):
        why = "triton is not installed" if not triton_available() else f"x is on {x.device}, not CUDA"
        raise ValueError(f"backend 'triton' cannot run here: {why} (TRITON_INTERPRET=1 runs it on the CPU)")
    return backend


def svgd_direction(
    x: Tensor,
    score: Tensor,
    h: float,
    repulsion: float = 1.0,
    *,
    backend: str = "auto",
    memory_budget: int | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    """The SVGD update direction (Liu & Wang 2016, eq. 8; Algorithm 1), fused or in row blocks.

    .. math::
        \\phi_i = \\frac1N \\sum_j \\Big[k(x_j, x_i)\\, s_j + \\lambda\\,\\frac{2}{h^2}\\,
                  k(x_j, x_i)\\,(x_i - x_j)\\Big], \\qquad k(x, y) = e^{-|x - y|^2 / h^2} .

    ``triton``: one fused pass (``scoredyn.kernels.svgd.svgd_direction_triton``), O(N D) memory.
    ``torch``: per block of rows ``i``, the kernel block ``K`` from exact pairwise distances to the
    rows from the block's first on, and ``K [s | x | 1]`` for the block's rows, ``K^T [s | x | 1]``
    for the later rows (``k`` is symmetric: about half the pairs are evaluated); then the repulsion
    ``(2 / h^2)(rowsum(K) x_i - K x)``. A block has ``BLOCK_ROWS`` rows, or fewer if
    ``memory_budget`` asks for fewer. Both centre the particles first (the direction is shift
    invariant), which keeps that difference well conditioned.

    Args:
        x: ``(N, D)`` particles.
        score: ``(N, D)`` the score ``s_j`` at each particle.
        h: kernel bandwidth ``> 0``.
        repulsion: weight ``lambda >= 0`` of the kernel-gradient term (1 is SVGD).
        backend: ``auto`` (``triton`` for a CUDA tensor when triton is installed, else ``torch``),
            ``triton`` or ``torch``.
        memory_budget: bytes for one row block's temporaries (``torch``; default ``MEMORY_BUDGET``,
            64 MiB): ``chunk = min(BLOCK_ROWS, max(1, budget // ((2 N + 8 D) * itemsize)))`` rows.
        chunk_size: rows per block (``torch``), overriding ``memory_budget``.

    Returns:
        ``(N, D)`` the direction ``phi``.
    """
    h, lam = _check_direction_args(atleast_2d_points(x), score, h, repulsion)
    N, D = x.shape
    if _pick_backend(backend, x) == "triton":
        from ..kernels.svgd import _fused_direction

        return _fused_direction(x, score, h, lam)
    if chunk_size is None:
        # small blocks even when a big one would fit: each block computes only its pairs with the rows
        # from its first on (k is symmetric), and a block of BLOCK_ROWS rows stays in cache
        chunk_size = min(_chunk_rows(N, D, x.element_size(), memory_budget), BLOCK_ROWS)
    chunk_size = _check_steps(chunk_size, "chunk_size")
    xc = x - x.mean(0)
    # one product gives K s, K x and the row sums of K
    rhs = torch.cat([score, xc, torch.ones(N, 1, dtype=x.dtype, device=x.device)], dim=1)
    acc = torch.zeros_like(rhs)  # sum_j k(x_j, x_i) [s_j | x_j | 1]
    for a in range(0, N, chunk_size):
        b = min(a + chunk_size, N)
        own, later = _row_block(xc[a:b], xc[a:], rhs[a:b], rhs[a:], h)
        acc[a:b] += own
        acc[b:] += later
    Ks, Kx, rowsum = acc.split([D, D, 1], dim=1)
    # (1/N) [K s + lambda (2/h^2) (rowsum(K) x_i - K x)]
    return (Ks + lam * (2.0 / h**2) * (rowsum * xc - Kx)) / N


BLOCK_ROWS = 64
"""Rows per block of the ``torch`` backend unless the memory budget asks for fewer. Measured on one
core, float64, D = 2 (ms per direction at 32 / 64 / 128 / 256 / 512 rows): N = 1000: 10.3 / 8.7 / 9.1 /
11.1 / 15.5; N = 2000: 28 / 23 / 26 / 38 / 54; N = 5000: 187 / 169 / 172 / 198 / 194. One block of all
N rows (no symmetry, out of cache) took 12.9 and 103 ms at N = 1000 and 2000."""


PER_COORDINATE_MAX_DIM = 8
"""Up to this dimension the squared distances are summed one coordinate at a time (two passes per
coordinate over one scratch block: faster than ``cdist`` there, 20-30% of a step at D = 2)."""


def _squared_distances(xi: Tensor, xc: Tensor) -> Tensor:
    """``|x_i - x_j|^2`` (rows ``xi``, columns ``xc``) from exact differences, never the expanded
    ``|x|^2 + |y|^2 - 2 x.y``, whose cancellation costs float32 about 1e-2 of every ``k`` at annealed
    SVGD's small bandwidths."""
    if xc.shape[1] > PER_COORDINATE_MAX_DIM:
        return torch.cdist(xi, xc, compute_mode="donot_use_mm_for_euclid_dist").square_()
    d2 = torch.sub(xi[:, :1], xc[:, 0]).square_()
    diff = torch.empty_like(d2)  # the one scratch block, reused for every coordinate
    for k in range(1, xc.shape[1]):
        torch.sub(xi[:, k : k + 1], xc[:, k], out=diff)
        d2.addcmul_(diff, diff)
    return d2


def _row_block(xi: Tensor, x_from: Tensor, rhs_i: Tensor, rhs_from: Tensor, h: float) -> tuple[Tensor, Tensor]:
    """One row block's share of ``sum_j k(x_j, x_i) [s_j | x_j | 1]``, by symmetry of ``k``.

    ``xi`` are the block's ``c`` rows and ``x_from`` every row from the block's first on (the block's
    own rows first). The kernel block ``K`` (``c x len(x_from)``) gives the block's sums over those
    rows, ``K rhs_from``, and its transpose gives the later rows' sums over the block,
    ``K[:, c:]^T rhs_i``; the earlier rows' sums were added by the earlier blocks. A function of its
    own so the kernel block is freed before the next one is allocated."""
    K = _squared_distances(xi, x_from)
    K.mul_(-1.0 / h**2).exp_()  # K_ij = k(x_j, x_i), in place: the block is the memory budget
    return K @ rhs_from, K[:, xi.shape[0] :].T @ rhs_i


def _svgd_direction_dense(x: Tensor, score: Tensor, h: float, repulsion: float = 1.0) -> Tensor:
    """The SVGD direction term by term through the ``(N, N, D)`` differences (reference only)."""
    h, lam = _check_direction_args(atleast_2d_points(x), score, h, repulsion)
    diff = x[:, None, :] - x[None, :, :]  # diff[i, j] = x_i - x_j
    K = torch.exp(-(diff**2).sum(-1) / h**2)  # K[i, j] = k(x_j, x_i)
    grad_k = (2.0 / h**2) * K[:, :, None] * diff  # grad_{x_j} k(x_j, x_i)
    return (K @ score + lam * grad_k.sum(1)) / x.shape[0]


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
    grid = _check_level_grid(grid)
    T = _check_steps(steps_per_level)
    etas = _step_sizes(field, grid, _check_positive(eta_factor, "eta_factor"), "sigma2")
    b = _check_positive(bandwidth_factor, "bandwidth_factor")
    backend = _pick_backend(backend, x)
    if memory_budget is not None:
        _chunk_rows(*x.shape, x.element_size(), memory_budget)  # check it before the first step
    sigmas = field.process.sigma(grid).tolist()
    tracker = Tracker(field, x, callback, return_path)
    for i, (t, sigma_i, eta_i) in enumerate(zip(grid, sigmas, etas, strict=True)):
        # T steps of x <- x + eta_i phi(x, t_i) [+ sqrt(2 eta_i) xi], h_i = b sigma_i (0: skip)
        for _ in range(T if sigma_i > 0 else 0):
            s = tracker.field.score(x, t)
            phi = svgd_direction(x, s, b * sigma_i, repulsion, backend=backend, memory_budget=memory_budget,
                                 chunk_size=chunk_size)  # fmt: skip
            x = _kick(x, phi, eta_i, generator, noisy=langevin_noise)
        tracker.step(i, t, x)
    return tracker.result(x)
