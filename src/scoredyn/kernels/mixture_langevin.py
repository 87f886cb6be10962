"""Langevin steps in the score of a Gaussian mixture, fused: the score and the kick in one pass, the
particles read and written once per block of steps.

The plain path (``samplers.langevin_steps`` calling a field's ``score``) forms ``(N, K, D)``
intermediates at every step and reads and writes every particle at every step. Here the mixture of
one noise level, ``p = sum_k pi_k N(m_k, S_k)``, arrives reduced (``GaussianMixture.precision_terms``,
float64 on the host) to means, precisions and log-weights

.. math::
    m_k, \\quad P_k = S_k^{-1}, \\quad c_k = \\log \\pi_k + \\tfrac12 \\log\\det P_k,

so that, with ``d_k = x - m_k`` (the ``2 pi`` constant cancels in the softmax),

.. math::
    s(x) = -\\sum_k w_k P_k d_k, \\qquad w = \\operatorname{softmax}_k\\big(c_k - \\tfrac12 d_k^\\top P_k d_k\\big),

and ``steps`` kicks ``x <- x + eta s(x) + sqrt(2 eta) xi`` (Roberts & Tweedie 1996, eq. 1.3) run here.

Backends:

- ``triton``: one program owns ``BLOCK_N`` particles and keeps them in registers for a whole block of
  steps. The components are visited in a loop with an online log-sum-exp (a running maximum, and the
  sum and the weighted accumulator rescaled when it grows: Milakov & Gimelshein 2018; Dao et al.
  2022), so no ``(N, K, D)`` tensor exists anywhere. The noise is Philox (Salmon et al. 2011,
  ``tl.randn``) keyed by ``(seed, step)`` and counted by ``(particle, coordinate)``: independent across
  steps, particles and coordinates, and the same whatever ``steps_per_launch`` is; the seed is drawn
  from the run's generator.
- ``compile`` / ``torch``: the same formula on chunks of particles (memory bounded by ``CHUNK_BYTES``),
  ``torch.compile``'d or eager, with one ``(N, D)`` noise draw a step from the run's generator: the
  draws of the plain path, so in float64 it follows the plain path's particles.

Precision (``triton``; ``backends`` says what each choice means on a GPU). Above ``D = 8`` the
products ``P_k d_k`` are one ``tl.dot`` per component, in the ``precision`` asked for: ``ieee`` by
default, float32 multiply-adds on the FP32 lanes, the plain float32 path's arithmetic. Rounding shows
here more than in most products: the logits ``-1/2 d^T P d`` reach ``1e3`` and more at the small
noise levels, and where two components compete their responsibilities move with the logits'
absolute error, so ``tf32``'s ~1e-3 relative error per product is an O(1) error there, and even
``tf32x3``'s ~1e-6 is up to 16 times float32's rounding. ``tf32x3`` and ``tf32`` run the products on
the tensor cores and are there to be asked for. Up to ``D = 8`` the products are plain multiply-adds
whatever ``precision`` says.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .backends import check_backend, check_precision, jit

__all__ = ["BACKENDS", "CHUNK_BYTES", "mixture_score", "mixture_langevin"]

BACKENDS = ("triton", "compile", "torch")

#: Memory for the ``(chunk, K, D)`` intermediates of the ``torch`` and ``compile`` backends.
CHUNK_BYTES = 256 * 2**20

#: ``triton.language``, bound by ``backends.jit`` when a kernel is first used: importing scoredyn never
#: imports triton (an optional dependency, and a sixth of a second at every start).
tl: Any = None


def mixture_langevin(
    x: Tensor,
    terms: tuple[Tensor, Tensor, Tensor],
    eta: float,
    steps: int,
    *,
    noise: bool = True,
    generator: torch.Generator | None = None,
    backend: str = "torch",
    steps_per_launch: int | None = None,
    precision: str = "ieee",
) -> Tensor:
    """``steps`` Langevin kicks ``x <- x + eta s(x) + sqrt(2 eta) xi`` in the score of one mixture.

    Args:
        x: ``(N, D)`` particles (float32 or float64); not modified.
        terms: the mixture's ``(means (K, D), precisions (K, D, D), log-weights (K,))`` (module doc).
        eta: the step size ``> 0``.
        steps: the number of kicks.
        noise: ``False`` drops ``xi`` (score ascent).
        generator: the run's one source of randomness (the noise, or the Philox seed of ``triton``).
        backend: ``triton``, ``compile`` or ``torch``.
        steps_per_launch: kicks per kernel launch (``triton``; default all): the particles stay in
            registers that long.
        precision: the products' precision of ``triton`` above ``D = 8`` (module doc; one of
            ``backends.PRECISIONS``): ``ieee`` (default; float32 accuracy), ``tf32x3`` (three TF32
            tensor-core passes, near float32) or ``tf32`` (one pass, about 1e-3 relative per product);
            float64 takes ``ieee`` only. ``torch`` and ``compile`` compute in ``x``'s dtype and do
            not use it (it is checked all the same).

    Returns:
        ``(N, D)`` the particles after the kicks: float32, or float64 for a float64 ``x``
        (``triton``); ``x``'s dtype otherwise.
    """
    backend = check_backend(backend, BACKENDS, x.device, backend)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    check_precision(precision, work)
    if steps_per_launch is not None and (isinstance(steps_per_launch, bool) or not isinstance(steps_per_launch, int)
                                         or steps_per_launch < 1):  # fmt: skip
        raise ValueError(f"steps_per_launch must be a positive integer, got {steps_per_launch!r}")
    if backend != "triton":
        terms = tuple(v.to(device=x.device, dtype=x.dtype) for v in terms)
        return _torch_steps(x, terms, eta, steps, generator, noise, compiled=backend == "compile")
    xw = x.to(work).contiguous().clone()
    terms = tuple(v.to(device=x.device, dtype=work) for v in terms)
    padded = _pad(terms, _block_config(x.shape[1], precision)[1], xw)
    seed = int(torch.randint(0, 2**31, (1,), generator=generator, device=_device(generator)))
    launch = steps if steps_per_launch is None else steps_per_launch
    for start in range(0, steps, launch):
        _triton_steps(xw, padded, eta, _philox_key(seed, start), min(launch, steps - start), noise, precision)
    return xw


def _device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


# --- the torch formulation (the compile and torch backends) ------------------------------------------


def mixture_score(x: Tensor, means: Tensor, prec: Tensor, const: Tensor) -> Tensor:
    """``s(x) = -sum_k w_k P_k (x - m_k)`` for ``x`` (N, D) from the terms of the module doc (in ``x``'s dtype).
    Forms ``(N, K, D)`` intermediates: callers pass chunks."""
    diff = x[:, None, :] - means  # (N, K, D)
    if x.shape[1] <= 8:  # tiny D: a broadcast sum, which the compiler fuses
        pd = (diff[..., :, None] * prec).sum(-2)
    else:
        pd = torch.einsum("nkd,kde->nke", diff, prec)
    w = torch.softmax(const - 0.5 * (diff * pd).sum(-1), dim=1)  # (N, K)
    return -(w[..., None] * pd).sum(1)


def _kick(
    x: Tensor, xi: Tensor | None, eta: Tensor, scale: Tensor, means: Tensor, prec: Tensor, const: Tensor
) -> Tensor:
    """``x + eta s(x) + sqrt(2 eta) xi`` (``scale = sqrt(2 eta)``; ``xi = None``: no noise)."""
    x = x + eta * mixture_score(x, means, prec, const)
    return x if xi is None else x + scale * xi


_COMPILED: dict[str, object] = {}


def _compiled_kick():
    if "kick" not in _COMPILED:
        _COMPILED["kick"] = torch.compile(_kick, dynamic=None)
    return _COMPILED["kick"]


def _torch_steps(x, terms, eta, steps, generator, noisy, compiled) -> Tensor:
    """``steps`` kicks of the whole batch, in chunks of particles; one ``(N, D)`` noise draw a step."""
    kick = _compiled_kick() if compiled else _kick
    means, prec, const = terms
    k, d = prec.shape[0], prec.shape[1]
    chunk = max(1024, CHUNK_BYTES // (k * d * (d + 3) * x.element_size()))
    eta_t = torch.tensor(eta, dtype=x.dtype, device=x.device)
    scale_t = torch.tensor(math.sqrt(2.0 * eta), dtype=x.dtype, device=x.device)
    for _ in range(steps):
        xi = None  # drawn on the generator's device, then moved (a CPU generator drives CUDA particles)
        if noisy:
            xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=_device(generator)).to(x.device)
        parts = [
            kick(x[i : i + chunk], None if xi is None else xi[i : i + chunk], eta_t, scale_t, means, prec, const)
            for i in range(0, x.shape[0], chunk)
        ]
        x = parts[0] if len(parts) == 1 else torch.cat(parts)
    return x


# --- the Triton kernel -------------------------------------------------------------------------------


def _langevin_kernel(
    x_ptr,  # (N, D) contiguous, updated in place
    n,
    d,
    means_ptr,  # (K, DP) zero-padded
    prec_ptr,  # (K, DP, DP) zero-padded
    const_ptr,  # (K,)
    coef_ptr,  # (2,): eta, sqrt(2 eta), in x's dtype
    n_comp,
    key,  # Philox key of this launch's first step
    steps,
    BLOCK_N: tl.constexpr,
    DP: tl.constexpr,
    USE_DOT: tl.constexpr,
    NOISY: tl.constexpr,
    WIDE: tl.constexpr,
    DOT_PRECISION: tl.constexpr = "ieee",
):
    """``steps`` Langevin kicks of ``BLOCK_N`` particles held in registers (see the module doc)."""
    pid = tl.program_id(0)
    if WIDE:  # N * DP >= 2^31: 64-bit addresses and noise counters
        pid = pid.to(tl.int64)
    rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.arange(0, DP)
    inside = (rows[:, None] < n) & (cols[None, :] < d)
    at = rows[:, None] * d + cols[None, :]
    x = tl.load(x_ptr + at, mask=inside, other=0.0)
    counter = rows[:, None] * DP + cols[None, :]  # one Philox counter per (particle, coordinate)
    p_at = cols[:, None] * DP + cols[None, :]
    eta = tl.load(coef_ptr)
    scale = tl.load(coef_ptr + 1)
    for s in range(steps):
        # online log-sum-exp over the components: running max, rescaled sum and accumulator
        run_max = tl.full((BLOCK_N,), float("-inf"), x.dtype)
        run_sum = tl.zeros((BLOCK_N,), x.dtype)
        acc = tl.zeros((BLOCK_N, DP), x.dtype)  # sum_k exp(logit_k - max) (-P_k d_k)
        for k in range(n_comp):
            diff = x - tl.load(means_ptr + k * DP + cols)[None, :]
            prec = tl.load(prec_ptr + k * DP * DP + p_at)
            if USE_DOT:
                pd = tl.dot(diff, prec, input_precision=DOT_PRECISION, out_dtype=x.dtype)
            else:
                pd = tl.sum(diff[:, :, None] * prec[None, :, :], axis=1)
            logit = tl.load(const_ptr + k) - 0.5 * tl.sum(diff * pd, axis=1)
            new_max = tl.maximum(run_max, logit)
            rescale = tl.exp(run_max - new_max)
            p = tl.exp(logit - new_max)
            run_sum = run_sum * rescale + p
            acc = acc * rescale[:, None] - p[:, None] * pd
            run_max = new_max
        # x <- x + eta s(x) + sqrt(2 eta) xi
        x = x + eta * (acc / run_sum[:, None])
        if NOISY:
            x = x + scale * tl.randn(key + s, counter).to(x.dtype)
    tl.store(x_ptr + at, x, mask=inside)


def _pad(terms: tuple[Tensor, Tensor, Tensor], dp: int, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    means, prec, const = terms
    k, d = means.shape
    m = torch.zeros(k, dp, dtype=like.dtype, device=like.device)
    p = torch.zeros(k, dp, dp, dtype=like.dtype, device=like.device)
    m[:, :d] = means.to(like.dtype)
    p[:, :d, :d] = prec.to(like.dtype)
    return m.contiguous(), p.contiguous(), const.to(like.dtype).contiguous()


#: ``(BLOCK_N, num_warps)`` of the ``ieee`` products by padded dimension (multiply-adds on the FP32
#: lanes hold more in registers than tensor-core products do).
_FMA_BLOCKS = {16: (32, 4), 32: (64, 8), 64: (32, 8)}


def _block_config(d: int, precision: str = "ieee") -> tuple[int, int, bool, int]:
    """``(BLOCK_N, DP, USE_DOT, num_warps)``: D padded to a power of two; ``tl.dot`` (tiles >= 16)
    above D = 8, else a broadcast sum over a ``BLOCK_N x DP x DP`` product of at most 1024 elements.
    Chosen so that ptxas reports no register spills for the noisy kernel compiled for sm_90a (Triton
    3.9, compiled without a GPU): ``ieee`` float32 72 / 109 / 198 registers at DP = 16 / 32 / 64 (float64
    126 / 194 / 210; the noise-free float32 kernel spills 28 bytes at DP = 64); ``tf32x3`` 96 / 158 /
    222 with 64 rows (4 warps at DP = 16 and 8 above; 4 warps spill at DP = 64). The broadcast sum
    takes 64 registers at D = 2. Their speeds are not measured here (``benchmarks/gpu_check.py``)."""
    dp = 1 << max(0, (d - 1).bit_length())
    if dp <= 8:
        return max(64, 1024 // (dp * dp)), dp, False, 4
    dp = max(dp, 16)
    if precision == "ieee":
        rows, warps = _FMA_BLOCKS.get(dp, (32, 8))
        return rows, dp, True, warps
    return 64, dp, True, (8 if dp >= 32 else 4)


def _triton_steps(x: Tensor, padded, eta: float, key: int, steps: int, noisy: bool, precision: str) -> None:
    """``steps`` kicks of ``x`` (contiguous float32/64, updated in place) in one launch, the products
    in ``precision`` (checked by the caller)."""
    import triton

    n, d = x.shape
    block_n, dp, use_dot, warps = _block_config(d, precision)
    means, prec, const = padded
    coef = torch.tensor([eta, math.sqrt(2.0 * eta)], dtype=x.dtype, device=x.device)
    wide = n * max(dp, d) >= 2**31 - 1
    grid = (triton.cdiv(n, block_n),)
    jit(_langevin_kernel)[grid](
        x, n, d, means, prec, const, coef, means.shape[0], key, steps,
        BLOCK_N=block_n, DP=dp, USE_DOT=use_dot, NOISY=noisy, WIDE=wide, DOT_PRECISION=precision,
        num_warps=warps,
    )  # fmt: skip


def _philox_key(seed: int, step: int) -> int:
    """A distinct 64-bit key per ``(seed, global step)``: the seed in the high word, the step in the low."""
    return ((seed + 1) << 32) + step
