"""UniPC (Zhao et al. 2023): the multistep predictor UniP-p and corrector UniC-p of the probability-flow
ODE in data prediction, stepping in the half log-SNR ``lambda = log(alpha / sigma)``.

With ``m_j = x0hat(x_j, t_j)``, ``h = lambda_to - lambda_from``, ``r_k = (lambda_k - lambda_from) / h``
and ``D_k = (m_k - m_from) / r_k``, predictor and corrector both take the form

.. math::
    x_{to} = \\frac{\\sigma_{to}}{\\sigma_{from}} x_{from}
           + \\alpha_{to}(1 - e^{-h})\\, m_{from} + \\alpha_{to} B(h) \\sum_k a_k D_k ,

the first-order (DDIM) step plus a correction; they differ in the points they combine. ``B(h)`` is
``1 - e^{-h}`` (variant ``bh2``) or ``h`` (``bh1``), and ``a`` solves ``R a = g / B(h)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ..core.fields import Field
from ._steps import (
    LogSNRLevel,
    SampleResult,
    StepInfo,
    Tracker,
    check_grid,
    data_prediction_step,
    log_snr_levels,
)

__all__ = ["unipc", "unip_predictor", "unic_corrector", "unipc_weights", "UNIPC_VARIANTS", "ORDERS"]

ORDERS = (1, 2, 3)

History = list[tuple[LogSNRLevel, Tensor]]  # (level, x0hat) at earlier points, newest last


def b_h1(h: float) -> float:
    """UniPC's ``B(h) = h`` (variant ``bh1``; Zhao et al. 2023, sec. 3.3)."""
    return h


def b_h2(h: float) -> float:
    """UniPC's ``B(h) = 1 - e^{-h}`` (variant ``bh2``, the data-prediction default of Zhao et al. 2023)."""
    return -math.expm1(-h)


UNIPC_VARIANTS: dict[str, Callable[[float], float]] = {"bh1": b_h1, "bh2": b_h2}


def unipc_rhs(h: float, p: int) -> list[float]:
    """The right-hand side of UniPC's order conditions before the division by ``B(h)``:
    ``g_i = i! h phi_{i+1}(-h)`` for ``i = 1..p`` (Zhao et al. 2023, Theorem 3.1), with
    ``phi_1(z) = (e^z - 1)/z`` and ``phi_{k+1}(z) = (phi_k(z) - 1/k!)/z``."""
    z, phi, g = -h, math.expm1(-h) / -h, []
    for i in range(1, p + 1):
        phi = (phi - 1.0 / math.factorial(i)) / z  # phi_{i+1}
        g.append(math.factorial(i) * h * phi)
    return g


def unipc_weights(h: float, r: list[float], B: Callable[[float], float]) -> list[float]:
    """The weights ``a`` of the nodes ``r_k`` (``len(r) = p``): the solution of ``R a = g / B(h)`` with
    ``R_{ik} = r_k^{i-1}`` and ``g`` of ``unipc_rhs``, ``i = 1..p``; a single node gets ``1/2`` (UniP-2
    and UniC-1 as the authors' implementation writes them)."""
    if len(r) == 1:
        return [0.5]
    R = np.array([[rk**i for rk in r] for i in range(len(r))], dtype=np.float64)
    g = np.array(unipc_rhs(h, len(r)), dtype=np.float64) / B(h)
    return np.linalg.solve(R, g).tolist()


def _correction(hist: History, frm: LogSNRLevel, h: float, new: Tensor | None, B: Callable[[float], float]) -> Tensor:
    """``sum_k a_k D_k`` over the earlier points of ``hist`` (all but its newest, ``m_from``) and ``new``
    (the prediction at the step's end, ``r = 1``) where given."""
    m0 = hist[-1][1]
    nodes = [((lvl.lam - frm.lam) / h, m) for lvl, m in hist[:-1]] + ([(1.0, new)] if new is not None else [])
    a = unipc_weights(h, [r for r, _ in nodes], B)
    return sum(ak * (m - m0) / r for ak, (r, m) in zip(a, nodes, strict=True))


def unip_predictor(x: Tensor, hist: History, nxt: LogSNRLevel, p: int, B: Callable[[float], float]) -> Tensor:
    """UniP-p (Zhao et al. 2023, Corollary 3.2) from the newest point of ``hist`` to ``nxt``: the
    first-order step, plus for ``p >= 2`` the correction ``alpha_to B(h) sum_k a_k D_k`` over the ``p - 1``
    points before it (``a_1 = 1/2`` for ``p = 2``)."""
    (cur, m0) = hist[-1]
    x_new = data_prediction_step(x, m0, cur, nxt)
    if p >= 2:
        h = nxt.lam - cur.lam
        x_new = x_new + nxt.alpha * B(h) * _correction(hist[-p:], cur, h, None, B)
    return x_new


def unic_corrector(
    x: Tensor, hist: History, cur: LogSNRLevel, m: Tensor, p: int, B: Callable[[float], float]
) -> Tensor:
    """UniC-p (Zhao et al. 2023, Theorem 3.1): the step from the newest point of ``hist`` to ``cur``
    again, corrected with the data prediction ``m`` already evaluated at the predicted point
    (``r = 1``) and the ``p - 1`` points before (UniC-1: ``a_1 = 1/2``)."""
    (prev, m0) = hist[-1]
    h = cur.lam - prev.lam
    return data_prediction_step(x, m0, prev, cur) + cur.alpha * B(h) * _correction(hist[-p:], prev, h, m, B)


def unipc(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    order: int = 2,
    variant: str = "bh2",
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """UniPC: multistep predictor UniP-p with the corrector UniC-p, data prediction.

    Zhao et al. (2023), sec. 3: UniC-p (Theorem 3.1) after UniP-p (Corollary 3.2), multistep,
    data prediction. With ``m_j = x0hat(x_j, t_j)``,
    ``h = lambda_to - lambda_from``, ``r_k = (lambda_k - lambda_from) / h`` and
    ``D_k = (m_k - m_from) / r_k``, both halves have the form

    .. math::
        x_{to} = \\frac{\\sigma_{to}}{\\sigma_{from}} x_{from}
               + \\alpha_{to}(1 - e^{-h})\\, m_{from} + \\alpha_{to} B(h) \\sum_k a_k D_k ,

    the predictor over earlier points, the corrector also over the new point (``r = 1``), with
    ``B(h) = 1 - e^{-h}`` (``bh2``) or ``h`` (``bh1``) and ``a`` from ``R a = g / B(h)``
    (``a = 1/2`` for UniP-2 and UniC-1). The corrector reuses the evaluation at the predicted
    point, so ``nfe = S``. Orders warm up from 1 and the last step is first order (as diffusers'
    ``lower_order_final``); the step into ``sigma = 0`` lands on ``alpha x0hat``, where correcting
    the point it starts from would change nothing. Deterministic; ``generator`` is unused.

    Args:
        field: the score field; ``field.denoise`` gives ``x0hat``.
        x: start particles at ``grid[0]``, ``(N, D)``.
        grid: descending times ``(S + 1,)``.
        order: ``p``, 1, 2 or 3 (3: the authors' choice for unconditional sampling).
        variant: ``"bh2"`` or ``"bh1"``.
        callback: called with ``StepInfo`` after each step (``x`` is the predictor's output).
        return_path: record the particles at every grid time (predictor outputs).

    Returns:
        ``SampleResult`` with ``nfe = S``.
    """
    grid = check_grid(grid)
    if order not in ORDERS:
        raise ValueError(f"order must be 1, 2 or 3, got {order!r}")
    if variant not in UNIPC_VARIANTS:
        raise ValueError(f"variant must be one of {tuple(UNIPC_VARIANTS)}, got {variant!r}")
    B = UNIPC_VARIANTS[variant]
    tracker = Tracker(field, x, callback, return_path, grid)
    levels = log_snr_levels(field.process, grid)
    steps = len(grid) - 1
    hist: list[tuple[LogSNRLevel, Tensor]] = []  # (level, x0hat) at earlier points, newest last
    x_from, p = x, 0
    for i in range(steps):
        cur, nxt = levels[i], levels[i + 1]
        # the step's one evaluation, at the predicted point
        m = tracker.field.denoise(x, grid[i])
        if nxt.sigma == 0.0:
            # final step into sigma = 0: lambda = inf, the step lands on alpha x0hat
            x = nxt.alpha * m
        else:
            if hist:
                # UniC-p: correct the point just predicted, reusing m
                x = unic_corrector(x_from, hist, cur, m, p, B)
            hist = (hist + [(cur, m)])[-order:]
            # UniP-p: warm-up at the start, first order on the last step
            p = min(order, len(hist), steps - i)
            x_from = x
            x = unip_predictor(x, hist, nxt, p, B)
        tracker.step(i, grid[i + 1], x)
    return tracker.result(x)
