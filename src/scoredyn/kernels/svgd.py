"""The kernel sums behind the SVGD direction, without any ``(N, N, D)`` tensor.

For particles ``x`` (N, D) and values ``V`` (N, W) these backends return

.. math::
    (K V)_i = \\sum_j k(x_j, x_i)\\, V_j, \\qquad k(x, y) = e^{-|x - y|^2 / h^2},

which ``samplers.svgd.svgd_direction`` combines into Liu & Wang's (2016) eq. 8 with
``V = [s | x | 1]``. Squared distances always come from exact differences, never from the expanded
``|x_i|^2 + |x_j|^2 - 2 x_i . x_j``, whose cancellation costs float32 about 1e-2 of every ``k`` at
annealed SVGD's small bandwidths (an error ``eps |x|^2 / h^2`` in the exponent; ``h = 0.01`` over a
cloud of radius 5 is a 1.5% error in every ``k``). The caller centres the particles.

- ``torch`` (``kernel_sums_tiled``): blocks of rows in torch that use the symmetry of ``k``: a block
  of rows evaluates ``k`` only against the rows from its own first on, adds ``K V`` to its own rows
  and ``K^T V`` to the later ones (about half the pairs), in ``O(chunk N)`` memory.
- ``triton`` (``kernel_sums_triton``): one fused pass in the manner of flash attention (Dao et al.
  2022): a program owns ``BLOCK_M`` rows, walks over the particles in tiles of ``BLOCK_N`` columns,
  forms each ``(BLOCK_M, BLOCK_N)`` kernel block in registers and sums the tile's ``K V`` with one
  ``tl.dot``; ``O(N W)`` memory. Unlike attention there is no softmax, so no running maximum:
  ``0 <= k <= 1`` never overflows, and a far pair's ``k`` underflowing to 0 is its value to float
  precision.

Each tile's ``tl.dot`` starts from zero and the tile sums are added with compensation (Knuth's
TwoSum keeps each addition's rounding error; the errors are summed apart and added at the end:
``Sum2`` of Ogita, Rump & Oishi 2005), so no output is one long float32 chain. With
``precision="ieee"`` a ``tl.dot`` into the running accumulator compiles to ``N`` fused multiply-adds
in a row per output, whose rounding grows with ``N``, while the tensor-core variants (as Triton
lowers them) sum each tile apart and come out the more accurate. A float32 emulation of the orders on
the CPU (the SVGD direction against float64; N = 4096 particles from N(0, 9 I) in 2-D, h = 1): 1.1e-4
for the one chain, 1.7e-5 for tiles added plainly, 4e-6 for tiles added with compensation. So a sum
carries the rounding of one tile of ``BLOCK_N`` terms whatever ``N``, for every ``precision``
(``backends``: ``ieee`` by default).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .backends import PRECISIONS, check_backend, check_precision, jit, triton_available

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "BLOCK_ROWS",
    "MEMORY_BUDGET",
    "PER_COORDINATE_MAX_DIM",
    "chunk_rows",
    "resolve_backend",
    "kernel_sums",
    "kernel_sums_tiled",
    "kernel_sums_triton",
    "block_config",
]

BACKENDS = ("auto", "triton", "torch")

#: Default bytes for the temporaries of one row block of the ``torch`` backend (``memory_budget``).
MEMORY_BUDGET = 64 * 2**20

BLOCK_ROWS = 64
"""Rows per block of the ``torch`` backend unless the memory budget asks for fewer. Measured on one
core, float64, D = 2 (ms per direction at 32 / 64 / 128 / 256 / 512 rows): N = 1000: 10.3 / 8.7 / 9.1 /
11.1 / 15.5; N = 2000: 28 / 23 / 26 / 38 / 54; N = 5000: 187 / 169 / 172 / 198 / 194. One block of all
N rows (no symmetry, out of cache) took 12.9 and 103 ms at N = 1000 and 2000."""

PER_COORDINATE_MAX_DIM = 8
"""Up to this dimension the squared distances are summed one coordinate at a time (two passes per
coordinate over one scratch block: faster than ``cdist`` there, 20-30% of a step at D = 2)."""

#: ``triton.language``, bound by ``backends.jit`` when a kernel is first used: importing scoredyn never
#: imports triton (an optional dependency, and a sixth of a second at every start).
tl: Any = None


def kernel_sums(
    x: Tensor,
    values: Tensor,
    h: float,
    *,
    backend: str = "auto",
    memory_budget: int | None = None,
    chunk_size: int | None = None,
    precision: str = "ieee",
) -> Tensor:
    """``(K V)_i = sum_j k(x_j, x_i) V_j`` (module doc) by the chosen backend.

    Args:
        x: ``(N, D)`` particles, centred by the caller.
        values: ``(N, W)`` the values ``V_j``.
        h: the bandwidth ``> 0``.
        backend: ``auto`` (``triton`` for a CUDA tensor when triton is installed, else ``torch``),
            ``triton`` or ``torch``.
        memory_budget: bytes for one row block's temporaries (``torch``; default ``MEMORY_BUDGET``).
        chunk_size: rows per block (``torch``), overriding ``memory_budget``.
        precision: the products' precision of ``triton``, one of ``PRECISIONS`` (``backends``):
            ``ieee`` (default; float32 accuracy), ``tf32x3`` (near float32) or ``tf32`` (about 1e-3
            relative); float64 takes ``ieee`` only. The ``torch`` backend computes in ``x``'s dtype
            and does not use it (it is checked all the same).

    Returns:
        ``(N, W)``, in ``x``'s dtype (``torch``) or float32/float64 (``triton``).
    """
    check_precision(precision, torch.float64 if x.dtype == torch.float64 else torch.float32)
    if resolve_backend(backend, x.device) == "triton":
        return kernel_sums_triton(x, values, h, precision=precision)
    if chunk_size is None:
        # small blocks even when a big one would fit: each block computes only its pairs with the rows
        # from its first on (k is symmetric), and a block of BLOCK_ROWS rows stays in cache
        chunk_size = min(chunk_rows(*x.shape, x.element_size(), memory_budget), BLOCK_ROWS)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return kernel_sums_tiled(x, values, h, chunk_size)


def resolve_backend(backend: str, device: str | torch.device) -> str:
    """``backend`` checked, with ``auto`` resolved: ``triton`` for a CUDA tensor when triton is
    installed, else ``torch``; an explicit ``triton`` must be able to run on ``device``."""
    auto = "triton" if torch.device(device).type == "cuda" and triton_available() else "torch"
    return check_backend(backend, BACKENDS, device, auto)


def chunk_rows(n: int, d: int, element_size: int, memory_budget: int | None = None) -> int:
    """Rows per block of the ``torch`` backend for SVGD's sums (``V = [s | x | 1]``, ``W = 2 D + 1``):
    as many as fit ``memory_budget`` bytes (at least one).

    A block of ``c`` rows holds the kernel block ``K`` (``c x N``, squared distances accumulated and
    exponentiated in place), one ``c x N`` scratch block of coordinate differences, ``K V`` and the
    few ``c x D`` temporaries of the direction's combination: at most ``c (2 N + 8 D)`` elements.
    """
    budget = MEMORY_BUDGET if memory_budget is None else memory_budget
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"memory_budget must be a positive integer (bytes), got {memory_budget!r}")
    return max(1, budget // ((2 * n + 8 * d) * element_size))


def kernel_sums_tiled(x: Tensor, values: Tensor, h: float, chunk: int) -> Tensor:
    """``K V`` in blocks of ``chunk`` rows, each pair evaluated once (``k`` is symmetric)."""
    total = torch.zeros_like(values)
    for a in range(0, x.shape[0], chunk):
        b = min(a + chunk, x.shape[0])
        own, later = _row_block(x[a:b], x[a:], values[a:b], values[a:], h)
        total[a:b] += own
        total[b:] += later
    return total


def _squared_distances(xi: Tensor, xc: Tensor) -> Tensor:
    """``|x_i - x_j|^2`` (rows ``xi``, columns ``xc``) from exact differences (module doc)."""
    if xc.shape[1] > PER_COORDINATE_MAX_DIM:
        return torch.cdist(xi, xc, compute_mode="donot_use_mm_for_euclid_dist").square_()
    d2 = torch.sub(xi[:, :1], xc[:, 0]).square_()
    diff = torch.empty_like(d2)  # the one scratch block, reused for every coordinate
    for k in range(1, xc.shape[1]):
        torch.sub(xi[:, k : k + 1], xc[:, k], out=diff)
        d2.addcmul_(diff, diff)
    return d2


def _row_block(xi: Tensor, x_from: Tensor, v_i: Tensor, v_from: Tensor, h: float) -> tuple[Tensor, Tensor]:
    """One row block's share of ``K V``, by symmetry of ``k``.

    ``xi`` are the block's ``c`` rows and ``x_from`` every row from the block's first on (the block's
    own rows first). The kernel block ``K`` (``c x len(x_from)``) gives the block's sums over those
    rows, ``K v_from``, and its transpose gives the later rows' sums over the block,
    ``K[:, c:]^T v_i``; the earlier rows' sums were added by the earlier blocks. A function of its
    own so the kernel block is freed before the next one is allocated."""
    K = _squared_distances(xi, x_from)
    K.mul_(-1.0 / h**2).exp_()  # K_ij = k(x_j, x_i), in place: the block is the memory budget
    return K @ v_from, K[:, xi.shape[0] :].T @ v_i


# --- the Triton kernel -------------------------------------------------------------------------------


def _kernel_sums_kernel(
    x_ptr,  # (N, D) contiguous, centred
    v_ptr,  # (N, WV) contiguous
    coef_ptr,  # (1,): 1 / h^2, in x's dtype
    out_ptr,  # (N, WV)
    n,
    WV,
    D: tl.constexpr,
    W: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """``K V`` for ``BLOCK_M`` rows, accumulated over column tiles of ``BLOCK_N`` (module doc)."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    w = tl.arange(0, W)
    in_rows = rows < n
    inv_h2 = tl.load(coef_ptr)
    acc = tl.zeros((BLOCK_M, W), inv_h2.dtype)  # sum_j k_ij V_j over the tiles so far
    err = tl.zeros((BLOCK_M, W), inv_h2.dtype)  # the rounding errors of those additions
    for start in range(0, n, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        in_cols = cols < n
        # |x_i - x_j|^2 from exact differences, one coordinate at a time
        d2 = tl.zeros((BLOCK_M, BLOCK_N), inv_h2.dtype)
        for c in tl.static_range(D):
            xi_c = tl.load(x_ptr + rows * D + c, mask=in_rows, other=0.0)
            xj_c = tl.load(x_ptr + cols * D + c, mask=in_cols, other=0.0)
            diff = xi_c[:, None] - xj_c[None, :]
            d2 += diff * diff
        k = tl.where(in_cols[None, :], tl.exp(-d2 * inv_h2), 0.0)
        # K V for this tile of columns, from zero
        vj = tl.load(v_ptr + cols[:, None] * WV + w[None, :], mask=in_cols[:, None] & (w[None, :] < WV), other=0.0)
        part = tl.dot(k, vj, input_precision=PRECISION, out_dtype=inv_h2.dtype)
        # acc + part with its rounding error kept (TwoSum: total + lost = acc + part exactly)
        total = acc + part
        back = total - acc
        err += (acc - (total - back)) + (part - back)
        acc = total
    out = acc + err
    tl.store(out_ptr + rows[:, None] * WV + w[None, :], out, mask=in_rows[:, None] & (w[None, :] < WV))


def block_config(width: int) -> tuple[int, int, int, int]:
    """``(BLOCK_M, BLOCK_N, W, num_warps)`` for ``width`` value columns: ``W`` is ``width`` padded to a
    power of two, at least 16 (the smallest ``tl.dot`` tile); wide accumulators get 8 warps."""
    w = max(16, 1 << (width - 1).bit_length())
    return 64, 64, w, (8 if w >= 128 else 4)


def kernel_sums_triton(x: Tensor, values: Tensor, h: float, *, precision: str = "ieee") -> Tensor:
    """``K V`` in one fused Triton pass (module doc), computed in float32 (float64 for a float64
    ``x``) with accumulators of that precision; ``O(N W)`` memory.

    Args:
        x: ``(N, D)`` centred particles on CUDA (any device under ``TRITON_INTERPRET=1``).
        values: ``(N, W)`` the values ``V_j``.
        h: the bandwidth ``> 0``.
        precision: the products' precision, one of ``PRECISIONS`` (see ``kernel_sums``).
    """
    check_precision(precision, torch.float64 if x.dtype == torch.float64 else torch.float32)
    check_backend("triton", BACKENDS, x.device, "triton")  # raises if the kernel cannot run on x's device
    n, d = x.shape
    width = values.shape[1]
    if n * max(d, width, 16) >= 2**31:
        raise ValueError(f"x has too many entries for 32-bit offsets: N W = {n * max(d, width)}")
    import triton

    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    xw = x.to(work).contiguous()
    vw = values.to(device=x.device, dtype=work).contiguous()
    coef = torch.tensor([1.0 / h**2], dtype=work, device=x.device)
    out = torch.empty_like(vw)
    block_m, block_n, w, warps = block_config(width)
    jit(_kernel_sums_kernel)[(triton.cdiv(n, block_m),)](
        xw, vw, coef, out, n, width, D=d, W=w, BLOCK_M=block_m, BLOCK_N=block_n, PRECISION=precision,
        num_warps=warps,
    )  # fmt: skip
    return out
