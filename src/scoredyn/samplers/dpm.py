"""Multistep exponential integrators of the probability-flow ODE in data prediction:
DPM-Solver++(2M) (Lu et al. 2022b) and UniPC (Zhao et al. 2023).

Both step in the half log-SNR ``lambda = log(alpha / sigma)``. With ``h = lambda_to - lambda_from``
the ODE's exact solution, for a data prediction ``x0hat`` held constant over the step, is the
first-order step (DDIM; Lu et al. 2022b, eq. 9)

.. math::
    x_{to} = \\frac{\\sigma_{to}}{\\sigma_{from}} x_{from} + \\alpha_{to} (1 - e^{-h})\\, D,

and the multistep methods differ only in the ``D`` they feed it and in a correction term.
At ``sigma = 0`` the log-SNR is ``+inf``: the step into it is taken explicitly and lands on
``alpha x0hat``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.processes import Process
from ._steps import SampleResult, StepInfo, Tracker, check_grid

__all__ = ["dpm_solver_2m", "unipc"]

_VARIANTS = ("bh1", "bh2")


class _Level(NamedTuple):
    """Coefficients at one grid time, as Python floats (computed in float64)."""

    alpha: float
    sigma: float
    lam: float  # log(alpha / sigma); +inf where sigma = 0


def _levels(process: Process, grid: Tensor) -> list[_Level]:
    alpha, sigma = process.alpha(grid), process.sigma(grid)
    lam = torch.log(alpha) - torch.log(sigma)  # log(0) = -inf gives +inf at sigma = 0
    return [_Level(float(a), float(s), float(l)) for a, s, l in zip(alpha, sigma, lam, strict=True)]


def _data_step(x: Tensor, d: Tensor, a: _Level, b: _Level) -> Tensor:
    """First-order data-prediction step from level ``a`` to ``b`` (``b.sigma > 0``)."""
    h = b.lam - a.lam
    return (b.sigma / a.sigma) * x - (b.alpha * math.expm1(-h)) * d


def dpm_solver_2m(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """DPM-Solver++(2M): second-order multistep solver of the probability-flow ODE.

    Lu et al. (2022b), Algorithm 2. With ``h_i = lambda_{i+1} - lambda_i`` and
    ``r_i = h_{i-1} / h_i``:

    .. math::
        D_i = \\Big(1 + \\frac{1}{2 r_i}\\Big) \\hat x_0(x_i, t_i)
            - \\frac{1}{2 r_i} \\hat x_0(x_{i-1}, t_{i-1}),
        \\qquad
        x_{i+1} = \\frac{\\sigma_{i+1}}{\\sigma_i} x_i + \\alpha_{i+1} (1 - e^{-h_i}) D_i .

    The first step is first order (``D_0 = x0hat``); the step into ``sigma = 0`` (``h = inf``)
    is first order too and lands on ``alpha x0hat`` (as diffusers' ``final_sigmas_type="zero"``).
    Deterministic: ``generator`` is accepted for the common head and unused.

    Args:
        field: the score field; ``field.denoise`` gives ``x0hat``.
        x: start particles at ``grid[0]``, ``(N, D)``.
        grid: descending times ``(S + 1,)``.
        callback: called with ``StepInfo`` after each step.
        return_path: record the particles at every grid time.

    Returns:
        ``SampleResult`` with ``nfe = S``.
    """
    grid = check_grid(grid)
    tracker = Tracker(field, x, callback, return_path, grid)
    levels = _levels(field.process, grid)
    x0_prev, h_prev = None, 0.0
    for i in range(len(grid) - 1):
        cur, nxt = levels[i], levels[i + 1]
        # data prediction at the current point (one evaluation per step)
        x0 = tracker.field.denoise(x, grid[i])
        if nxt.sigma == 0.0:
            # final step into sigma = 0: lambda = inf, the step lands on alpha x0hat
            x = nxt.alpha * x0
        else:
            h = nxt.lam - cur.lam
            if x0_prev is None:
                # first step: first order (DDIM)
                D = x0
            else:
                # second-order multistep combination (Algorithm 2, line 5)
                r = h_prev / h
                D = (1.0 + 0.5 / r) * x0 - (0.5 / r) * x0_prev
            x = _data_step(x, D, cur, nxt)
            x0_prev, h_prev = x0, h
        tracker.step(i, grid[i + 1], x)
    return tracker.result(x)


def _B(h: float, variant: str) -> float:
    """UniPC's ``B(h)`` for data prediction: ``h`` (``bh1``) or ``1 - e^{-h}`` (``bh2``)."""
    return h if variant == "bh1" else -math.expm1(-h)


def _unic2_weights(h: float, r: float, variant: str) -> tuple[float, float]:
    """Solve UniC-2's ``R a = g / B(h)`` for nodes ``(r, 1)``: ``R = [[1, 1], [r, 1]]``,
    ``g_k = k! h phi_{k+1}(-h)``, ``phi_1(z) = (e^z - 1)/z``, ``phi_{k+1} = (phi_k - 1/k!)/z``."""
    z = -h
    phi2 = (math.expm1(z) / z - 1.0) / z
    phi3 = (phi2 - 0.5) / z
    b1, b2 = h * phi2 / _B(h, variant), 2.0 * h * phi3 / _B(h, variant)
    a1 = (b1 - b2) / (1.0 - r)
    return a1, b1 - a1


def _unip(x: Tensor, hist: list[tuple[_Level, Tensor]], nxt: _Level, p: int, variant: str) -> Tensor:
    """UniP-p predictor from the newest point of ``hist`` to ``nxt`` (p = 1 or 2; ``a_1 = 1/2``)."""
    (cur, m0) = hist[-1]
    x_new = _data_step(x, m0, cur, nxt)
    if p == 2:
        (old, m1) = hist[-2]
        h = nxt.lam - cur.lam
        r = (old.lam - cur.lam) / h
        x_new = x_new + nxt.alpha * _B(h, variant) * 0.5 * (m1 - m0) / r
    return x_new


def _unic(x: Tensor, hist: list[tuple[_Level, Tensor]], cur: _Level, m: Tensor, p: int, variant: str) -> Tensor:
    """UniC-p corrector of the step from the newest point of ``hist`` to ``cur``, with the data
    prediction ``m`` already evaluated at the predicted point (UniC-1 uses ``a_1 = 1/2``)."""
    (prev, m0) = hist[-1]
    h = cur.lam - prev.lam
    if p == 1:
        corr = 0.5 * (m - m0)
    else:
        (old, m1) = hist[-2]
        r = (old.lam - prev.lam) / h
        a1, a2 = _unic2_weights(h, r, variant)
        corr = a1 * (m1 - m0) / r + a2 * (m - m0)
    return _data_step(x, m0, prev, cur) + cur.alpha * _B(h, variant) * corr


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
        order: ``p``, 1 or 2.
        variant: ``"bh2"`` or ``"bh1"``.
        callback: called with ``StepInfo`` after each step (``x`` is the predictor's output).
        return_path: record the particles at every grid time (predictor outputs).

    Returns:
        ``SampleResult`` with ``nfe = S``.
    """
    grid = check_grid(grid)
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}")
    tracker = Tracker(field, x, callback, return_path, grid)
    levels = _levels(field.process, grid)
    steps = len(grid) - 1
    hist: list[tuple[_Level, Tensor]] = []  # (level, x0hat) at earlier points, newest last
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
                x = _unic(x_from, hist, cur, m, p, variant)
            hist = (hist + [(cur, m)])[-order:]
            # UniP-p: warm-up at the start, first order on the last step
            p = min(order, len(hist), steps - i)
            x_from = x
            x = _unip(x, hist, nxt, p, variant)
        tracker.step(i, grid[i + 1], x)
    return tracker.result(x)
