"""Annealed Langevin in the exact field of a Gaussian mixture, fused: the score and the kick in one
pass, the particles read and written once per block of steps.

The reference (``annealed_langevin`` with ``AnalyticField``) forms ``(N, K, D)`` intermediates at
every step and reads and writes every particle at every step. Here each level's noised mixture
``p_t = sum_k pi_k N(alpha mu_k, alpha^2 Sigma_k + sigma^2 I)`` is reduced once, on the host in
float64, to means, precisions and log-weights

.. math::
    m_k = \\alpha \\mu_k, \\quad P_k = (\\alpha^2 \\Sigma_k + \\sigma^2 I)^{-1}, \\quad
    c_k = \\log \\pi_k + \\tfrac12 \\log\\det P_k,

so that, with ``d_k = x - m_k`` (the ``2 pi`` constant cancels in the softmax),

.. math::
    s(x) = -\\sum_k w_k P_k d_k, \\qquad w = \\operatorname{softmax}_k\\big(c_k - \\tfrac12 d_k^\\top P_k d_k\\big).

Backends:

- ``triton``: one program owns ``BLOCK_N`` particles and keeps them in registers for a whole
  block of steps. The components are visited in a loop with an online log-sum-exp (a running
  maximum, and the sum and the weighted accumulator rescaled when it grows: Milakov & Gimelshein
  2018; Dao et al. 2022), so no ``(N, K, D)`` tensor exists anywhere. The noise is Philox
  (Salmon et al. 2011, ``tl.randn``) keyed by ``(seed, global step)`` and counted by
  ``(particle, coordinate)``: independent across steps, particles and coordinates, and the same
  whatever ``steps_per_launch`` is.
- ``compile`` / ``torch``: the same formula on chunks of particles (memory bounded by
  ``CHUNK_BYTES``), ``torch.compile``'d or eager, with noise from a ``torch.Generator`` seeded
  with ``seed``: the reference's draws, so in float64 it follows the reference's path.
- ``eager``: the reference sampler itself.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..core.fields import AnalyticField
from ..core.processes import Process
from ..core.targets import GaussianMixture
from ..core.tensors import atleast_2d_points
from ..samplers import SampleResult, annealed_langevin, score_drift
from ..samplers._steps import noise
from ..samplers.langevin import _check_level_grid, _check_positive, _check_steps, _step_sizes
from ._triton import jit, triton_available, triton_runs_on

__all__ = ["BACKENDS", "fused_annealed_langevin", "level_terms", "mixture_score", "pick_backend"]

BACKENDS = ("auto", "triton", "compile", "torch", "eager")

#: Memory for the ``(chunk, K, D)`` intermediates of the ``torch`` and ``compile`` backends.
CHUNK_BYTES = 256 * 2**20

try:  # triton is optional (the ``gpu`` and ``test`` extras); the kernel body only needs ``tl``
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only without triton
    tl = None


# --- the noised mixture of one level, in the form every backend reads ------------------------------


def level_terms(target: GaussianMixture, process: Process, t: float | Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Means ``m_k`` (K, D), precisions ``P_k`` (K, D, D) and log-weights ``c_k`` (K,) of ``p_t``,
    in float64: ``m_k = alpha mu_k``, ``P_k = (alpha^2 Sigma_k + sigma^2 I)^{-1}`` (from its Cholesky
    factor), ``c_k = log pi_k - sum log diag L_k``."""
    p_t = target.noised(process, t)  # the exact marginal: means alpha mu_k, covs alpha^2 Sigma_k + sigma^2 I
    prec = torch.cholesky_inverse(p_t.chol)
    prec = 0.5 * (prec + prec.transpose(1, 2))
    const = torch.log(p_t.weights) - torch.log(torch.diagonal(p_t.chol, dim1=1, dim2=2)).sum(1)
    return p_t.means, prec, const


# --- the torch formulation (the compile and torch backends) ------------------------------------------


def mixture_score(x: Tensor, means: Tensor, prec: Tensor, const: Tensor) -> Tensor:
    """``s(x) = -sum_k w_k P_k (x - m_k)`` for ``x`` (N, D) from ``level_terms`` (in ``x``'s dtype).
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
        xi = noise(x, generator) if noisy else None
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


def _kernel():
    """The kernel, jitted for the mode in force (``_triton.jit``)."""
    return jit(_langevin_kernel)


def _pad(terms: tuple[Tensor, Tensor, Tensor], dp: int, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    means, prec, const = terms
    k, d = means.shape
    m = torch.zeros(k, dp, dtype=like.dtype, device=like.device)
    p = torch.zeros(k, dp, dp, dtype=like.dtype, device=like.device)
    m[:, :d] = means.to(like.dtype)
    p[:, :d, :d] = prec.to(like.dtype)
    return m.contiguous(), p.contiguous(), const.to(like.dtype).contiguous()


def _block_config(d: int) -> tuple[int, int, bool, int]:
    """``(BLOCK_N, DP, USE_DOT, num_warps)``: D padded to a power of two; ``tl.dot`` (tiles >= 16)
    above D = 8, else a broadcast sum over a ``BLOCK_N x DP x DP`` product of at most 1024 elements.
    Chosen so that ptxas (sm_90, float32) reports no register spills: 64 registers at D = 2,
    96 at D = 16, 158 at D = 32 and 222 at D = 64 with 8 warps (4 warps spill there)."""
    dp = 1 << max(0, (d - 1).bit_length())
    if dp > 8:
        return 64, max(dp, 16), True, (8 if dp >= 32 else 4)
    return max(64, 1024 // (dp * dp)), dp, False, 4


def _triton_steps(x: Tensor, padded, eta: float, key: int, steps: int, noisy: bool) -> None:
    """``steps`` kicks of ``x`` (contiguous float32/64, updated in place) in one launch."""
    import triton

    n, d = x.shape
    block_n, dp, use_dot, warps = _block_config(d)
    means, prec, const = padded
    coef = torch.tensor([eta, math.sqrt(2.0 * eta)], dtype=x.dtype, device=x.device)
    wide = n * max(dp, d) >= 2**31 - 1
    # float32: three tf32 tensor-core products (fp32-level error, no spills at D = 64); float64: FMA
    precision = "tf32x3" if x.dtype == torch.float32 else "ieee"
    grid = (triton.cdiv(n, block_n),)
    _kernel()[grid](
        x, n, d, means, prec, const, coef, means.shape[0], key, steps,
        BLOCK_N=block_n, DP=dp, USE_DOT=use_dot, NOISY=noisy, WIDE=wide, DOT_PRECISION=precision,
        num_warps=warps,
    )  # fmt: skip


def _philox_key(seed: int, step: int) -> int:
    """A distinct 64-bit key per ``(seed, global step)``: the seed in the high word, the step in the low."""
    return ((seed + 1) << 32) + step


# --- the sampler ---------------------------------------------------------------------------------------


def pick_backend(backend: str, device: str | torch.device) -> str:
    """Resolve ``auto``: ``triton`` on CUDA with triton, ``compile`` on CUDA without it, else the
    ``eager`` reference. Checks that an explicit ``triton`` can run on ``device``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    cuda = torch.device(device).type == "cuda"
    if backend == "auto":
        return ("triton" if triton_runs_on(device) else "compile") if cuda else "eager"
    if backend == "triton" and not triton_runs_on(device):
        why = "triton is not installed" if not triton_available() else "the tensor is not on CUDA"
        raise ValueError(f"backend 'triton' cannot run here: {why} (TRITON_INTERPRET=1 runs it on the CPU)")
    return backend


def fused_annealed_langevin(
    target: GaussianMixture,
    process: Process,
    x: Tensor,
    grid: Tensor,
    *,
    steps_per_level: int = 100,
    eta_factor: float = 0.5,
    step_rule: str = "sigma2",
    seed: int = 0,
    noisy: bool = True,
    backend: str = "auto",
    steps_per_launch: int | None = None,
    return_path: bool = False,
) -> SampleResult:
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1) in the exact field of ``target``
    noised by ``process``, fused (see the module doc for the backends).

    The same dynamics, step sizes and checks as ``annealed_langevin(AnalyticField(target,
    process), ...)`` (``score_drift`` when ``noisy=False``): at each level ``t_i`` of ``grid``,

    .. math::
        \\eta_i = \\epsilon\\,\\sigma(t_i)^2, \\qquad
        x \\leftarrow x + \\eta_i\\, s(x, t_i) + \\sqrt{2\\eta_i}\\,\\xi .

    A level with ``sigma = 0`` is skipped. NFE is ``levels * steps_per_level`` (levels with a step).
    The noise depends on ``seed`` and the backend: ``torch``, ``compile`` and ``eager`` draw the
    reference's noise from ``torch.Generator(device).manual_seed(seed)``; ``triton`` draws Philox
    noise in the kernel (the same law, other draws). The triton kernel computes in float32, or
    float64 for a float64 ``x``.

    Args:
        target: the mixture at ``t_min``.
        process: the forward process.
        x: ``(N, D)`` start at ``grid[0]``.
        grid: ``(L,)`` non-increasing times, one per level.
        steps_per_level: Langevin steps ``T`` at each level.
        eta_factor: ``epsilon`` above.
        step_rule: ``sigma2`` or ``ncsn`` (as in ``annealed_langevin``).
        seed: non-negative integer below ``2**31``, the one source of noise.
        noisy: ``False`` drops the noise (the score drift).
        backend: ``auto``, ``triton``, ``compile``, ``torch`` or ``eager`` (``auto``: ``triton`` on
            CUDA, else the ``eager`` reference).
        steps_per_launch: steps per kernel launch (triton; default a whole level): the particles
            stay in registers that long.
        return_path: keep the particles after each level, ``(L + 1, N, D)``.
    """
    if not isinstance(target, GaussianMixture):
        raise ValueError(f"target must be a GaussianMixture, got {type(target).__name__}")
    x = atleast_2d_points(x, target.dim)
    grid = _check_level_grid(grid)
    T = _check_steps(steps_per_level)
    field = AnalyticField(target, process)
    etas = _step_sizes(field, grid, _check_positive(eta_factor, "eta_factor"), step_rule)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ValueError(f"seed must be an integer in [0, 2**31), got {seed!r}")
    launch = T if steps_per_launch is None else _check_steps(steps_per_launch, "steps_per_launch")
    backend = pick_backend(backend, x.device)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    if backend == "eager":
        run = annealed_langevin if noisy else score_drift
        return run(field, x, grid, steps_per_level=T, eta_factor=eta_factor, step_rule=step_rule,
                   generator=generator, return_path=return_path)  # fmt: skip

    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    xw = x.to(work).contiguous().clone() if backend == "triton" else x
    path = [x.clone()] if return_path else None
    nfe, done = 0, 0  # done: global step count, the Philox key's low word
    for t, eta in zip(grid, etas, strict=True):
        if eta > 0:
            terms = tuple(v.to(device=x.device, dtype=xw.dtype) for v in level_terms(target, process, t))
            if backend == "triton":
                padded = _pad(terms, _block_config(target.dim)[1], xw)
                for start in range(0, T, launch):
                    steps = min(launch, T - start)
                    _triton_steps(xw, padded, eta, _philox_key(seed, done), steps, noisy)
                    done += steps
            else:
                xw = _torch_steps(xw, terms, eta, T, generator, noisy, compiled=backend == "compile")
            nfe += T
        if path is not None:
            path.append(xw.to(x.dtype).clone())
    return SampleResult(xw.to(x.dtype), nfe, torch.stack(path) if path is not None else None)
