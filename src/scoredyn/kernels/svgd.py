"""The SVGD direction in one fused pass: the kernel-weighted score sum and the kernel-gradient sum
without any ``(N, N)`` or ``(N, N, D)`` tensor, O(N D) memory (Triton; CUDA, or the interpreter).

With ``k_ij = exp(-|x_i - x_j|^2 / h^2)`` the direction of Liu & Wang (2016, eq. 8) is

.. math::
    \\phi_i = \\frac1N \\Big[\\sum_j k_{ij} s_j
              + \\lambda \\frac{2}{h^2} \\Big(x_i \\sum_j k_{ij} - \\sum_j k_{ij} x_j\\Big)\\Big] .

Tiling as in flash attention (Dao et al. 2022): one program owns ``BLOCK_M`` rows ``i`` and walks
over the particles in tiles of ``BLOCK_N`` columns ``j``. Per tile it forms the ``(BLOCK_M,
BLOCK_N)`` kernel block in registers and adds ``K [s_j]`` and ``K [x_j | 1]`` (two ``tl.dot``) to
accumulators of width ``W`` (``D + 1`` padded to a power of two, at least 16 for ``tl.dot``); the
ones column makes the row sums ``sum_j k_ij`` come out of the same product. ``phi`` is written once.
Unlike attention there is no softmax normalisation, so no running maximum is needed:
``0 <= k <= 1`` never overflows, and a far pair's ``k`` underflowing to 0 is its true value to
float precision.

Squared distances come from exact differences, one coordinate at a time, not from the expanded
``|x_i|^2 + |x_j|^2 - 2 x_i . x_j``: the expanded form's absolute error ``eps |x|^2`` becomes an
error ``eps |x|^2 / h^2`` in the exponent, which in float32 at the small bandwidths of annealed SVGD
(``h = 0.01`` over a cloud of radius 5) is a 1.5% error in every ``k``; the exact form's error is
``eps`` relative to ``|x_i - x_j|^2`` wherever the cloud sits. The cost is ``2 D`` flops a pair, the
order of the two products. The particles are centred first (the direction is shift invariant), as
in the torch path, so the expanded repulsion ``x_i sum_j k_ij - sum_j k_ij x_j`` loses only
``eps |x - mean| / h`` relative.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.tensors import atleast_2d_points
from ._triton import jit

__all__ = ["PRECISIONS", "svgd_direction_triton"]

#: ``tl.dot`` input precisions: ``ieee`` (exact float32 products, the default) or ``tf32x3`` (three
#: TF32 tensor-core products, near-float32 accuracy on Ampere and later GPUs).
PRECISIONS = ("ieee", "tf32x3")

try:  # triton is optional (the ``gpu`` and ``test`` extras); the kernel body only needs ``tl``
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only without triton
    tl = None


def _svgd_kernel(
    x_ptr,  # (N, D) contiguous, centred
    s_ptr,  # (N, D) contiguous
    coef_ptr,  # (3,): 1 / h^2, 1 / N, lambda 2 / (h^2 N), in x's dtype
    out_ptr,  # (N, D)
    n,
    D: tl.constexpr,
    W: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """``phi`` for ``BLOCK_M`` rows, accumulated over column tiles of ``BLOCK_N`` (see the module doc)."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    w = tl.arange(0, W)
    in_rows = rows < n
    row_tile = in_rows[:, None] & (w[None, :] < D)
    xi = tl.load(x_ptr + rows[:, None] * D + w[None, :], mask=row_tile, other=0.0)
    inv_h2 = tl.load(coef_ptr)
    acc_s = tl.zeros((BLOCK_M, W), xi.dtype)  # sum_j k_ij s_j
    acc_x = tl.zeros((BLOCK_M, W), xi.dtype)  # [sum_j k_ij x_j | sum_j k_ij | 0]
    for start in range(0, n, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        in_cols = cols < n
        # |x_i - x_j|^2 from exact differences, one coordinate at a time
        d2 = tl.zeros((BLOCK_M, BLOCK_N), xi.dtype)
        for c in tl.static_range(D):
            xi_c = tl.load(x_ptr + rows * D + c, mask=in_rows, other=0.0)
            xj_c = tl.load(x_ptr + cols * D + c, mask=in_cols, other=0.0)
            diff = xi_c[:, None] - xj_c[None, :]
            d2 += diff * diff
        k = tl.where(in_cols[None, :], tl.exp(-d2 * inv_h2), 0.0)
        # K s and K [x | 1] for this tile of columns
        col_tile = in_cols[:, None] & (w[None, :] < D)
        sj = tl.load(s_ptr + cols[:, None] * D + w[None, :], mask=col_tile, other=0.0)
        xj = tl.load(x_ptr + cols[:, None] * D + w[None, :], mask=col_tile, other=0.0)
        xj = tl.where(w[None, :] == D, 1.0, xj).to(xi.dtype)
        acc_s = tl.dot(k, sj, acc_s, input_precision=PRECISION, out_dtype=xi.dtype)
        acc_x = tl.dot(k, xj, acc_x, input_precision=PRECISION, out_dtype=xi.dtype)
    # phi_i = (1/N) K s + lambda (2 / (h^2 N)) (x_i rowsum_i - (K x)_i)
    rowsum = tl.sum(tl.where(w[None, :] == D, acc_x, 0.0), axis=1)
    phi = tl.load(coef_ptr + 1) * acc_s + tl.load(coef_ptr + 2) * (rowsum[:, None] * xi - acc_x)
    tl.store(out_ptr + rows[:, None] * D + w[None, :], phi, mask=row_tile)


def _kernel():
    """The kernel, jitted for the mode in force (``_triton.jit``)."""
    return jit(_svgd_kernel)


def block_config(d: int) -> tuple[int, int, int, int]:
    """``(BLOCK_M, BLOCK_N, W, num_warps)`` for dimension ``d``: ``W`` is ``d + 1`` padded to a
    power of two, at least 16 (the smallest ``tl.dot`` tile); wide accumulators get 8 warps."""
    w = max(16, 1 << d.bit_length())  # the smallest power of two > d
    return 64, 64, w, (8 if w >= 128 else 4)


def svgd_direction_triton(
    x: Tensor, score: Tensor, h: float, repulsion: float = 1.0, *, precision: str = "ieee"
) -> Tensor:
    """The SVGD direction (Liu & Wang 2016, eq. 8) in one fused Triton pass (see the module doc).

    .. math::
        \\phi_i = \\frac1N \\sum_j \\Big[k(x_j, x_i)\\, s_j + \\lambda\\,\\frac{2}{h^2}\\,
                  k(x_j, x_i)\\,(x_i - x_j)\\Big], \\qquad k(x, y) = e^{-|x - y|^2 / h^2} .

    Computes in float32 (float64 for a float64 ``x``) with accumulators of that precision; memory
    is ``O(N D)``: the centred copy of ``x`` and the output.

    Args:
        x: ``(N, D)`` particles on CUDA (any device under ``TRITON_INTERPRET=1``).
        score: ``(N, D)`` the score ``s_j`` at each particle.
        h: kernel bandwidth ``> 0``.
        repulsion: weight ``lambda >= 0`` of the kernel-gradient term (1 is SVGD).
        precision: ``tl.dot`` input precision, one of ``PRECISIONS``.

    Returns:
        ``(N, D)`` the direction ``phi``, in ``x``'s dtype.
    """
    from ..samplers.svgd import _check_direction_args, _pick_backend

    h, lam = _check_direction_args(atleast_2d_points(x), score, h, repulsion)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    _pick_backend("triton", x)  # raises if the kernel cannot run on x's device
    return _fused_direction(x, score, h, lam, precision)


def _fused_direction(x: Tensor, score: Tensor, h: float, lam: float, precision: str = "ieee") -> Tensor:
    """``svgd_direction_triton`` on checked arguments: centre, pad nothing, launch once."""
    n, d = x.shape
    if n * max(d, 16) >= 2**31:
        raise ValueError(f"x has too many entries for 32-bit offsets: N D = {n * d}")
    import triton

    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    xw = x.to(work)
    xc = (xw - xw.mean(0)).contiguous()  # centred: the direction is shift invariant
    sw = score.to(device=x.device, dtype=work).contiguous()
    coef = torch.tensor([1.0 / h**2, 1.0 / n, lam * 2.0 / (h**2 * n)], dtype=work, device=x.device)
    out = torch.empty_like(xc)
    block_m, block_n, w, warps = block_config(d)
    _kernel()[(triton.cdiv(n, block_m),)](
        xc, sw, coef, out, n, D=d, W=w, BLOCK_M=block_m, BLOCK_N=block_n, PRECISION=precision, num_warps=warps
    )
    return out.to(x.dtype)
