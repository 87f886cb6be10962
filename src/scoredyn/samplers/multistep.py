"""A linear multistep solver of the probability-flow ODE in data prediction whose coefficients are free:
DPM-Solver++(2M)'s by default, or fitted to the converged flow for one field, one grid and one budget
(``grid_tuning.fit_coefficients``).

Every multistep solver of the PF-ODE in data prediction (DDIM, DPM-Solver++(2M), UniPC's predictor) takes
the first-order step of ``_steps.data_prediction_step`` and adds a combination of the differences of
earlier data predictions ``m_j = x0hat(x_j, t_j)`` to the newest one ``m_i``:

.. math::
    x_{i+1} = \\frac{\\sigma_{i+1}}{\\sigma_i} x_i + \\alpha_{i+1} (1 - e^{-h_i})\\, m_i
            + \\alpha_{i+1} \\sum_{j < i} c_{ij}\\, (m_j - m_i) ,

and into ``sigma = 0`` (``h = inf``) ``x_S = alpha (m_{S-1} + sum_j c_{S-1, j} (m_j - m_{S-1}))``. The
solvers differ only in ``c``: DDIM has ``c = 0``, DPM-Solver++(2M) ``c_{i,i-1} = -(1 - e^{-h_i}) / (2 r_i)``
with ``r_i = h_{i-1} / h_i`` (Lu et al. 2022b, Algorithm 2). At a few steps no fixed rule is best:
learning the ``S (S - 1) / 2`` coefficients of a grid against the teacher's end points, together with the
grid, is the approach of S4S (Frankel et al. 2025) and of the Bespoke Non-Stationary solvers (Shaul et
al. ICML 2024), here for the data-prediction form above; a coefficient of an earlier prediction in the last step
lets the step into ``sigma = 0`` use the whole history, where the fixed rules land on ``x0hat``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.processes import Process
from ._steps import LogSNRLevel, SampleResult, StepInfo, Tracker, check_grid, data_prediction_step, log_snr_levels

__all__ = ["check_coefficients", "coefficients_of", "dpm_solver_coefficients", "multistep", "multistep_run"]

Coefficients = Sequence[Sequence[float]] | Sequence[Tensor]


def dpm_solver_coefficients(process: Process, grid: Tensor) -> list[list[float]]:
    """DPM-Solver++(2M)'s coefficients on ``grid`` of ``process``: step ``i`` has ``i`` of them, all zero but
    ``c_{i,i-1} = -(1 - e^{-h_i}) / (2 r_i)``, ``r_i = h_{i-1} / h_i``; zero on the first step and on the
    step into ``sigma = 0``, both first order (Lu et al. 2022b, Algorithm 2)."""
    levels = log_snr_levels(process, check_grid(grid))
    rows: list[list[float]] = []
    for i in range(len(levels) - 1):
        row = [0.0] * i
        if i > 0 and levels[i + 1].sigma > 0.0:
            h, h_prev = levels[i + 1].lam - levels[i].lam, levels[i].lam - levels[i - 1].lam
            row[i - 1] = math.expm1(-h) / (2.0 * h_prev / h)
        rows.append(row)
    return rows


def coefficients_of(field: Field, grid: Tensor, path: Tensor) -> list[list[float]]:
    """The coefficients under which ``multistep`` retraces ``path``, the points another data-prediction
    solver evaluated the field at (``path[i]`` at ``grid[i]``; ``path[-1]`` its end): each step's
    remainder after the first-order step, regressed on ``alpha (m_j - m_i)`` by least squares over the
    particles. Exact for the solvers of the family: UniPC's corrector re-combines the same predictions, so
    its run is a ``multistep`` run (the start ``fit_coefficients`` improves on)."""
    grid = check_grid(grid)
    levels = log_snr_levels(field.process, grid)
    m = [field.denoise(path[i], grid[i]) for i in range(len(grid) - 1)]
    rows: list[list[float]] = [[]]
    for i in range(1, len(grid) - 1):
        nxt = levels[i + 1]
        first = nxt.alpha * m[i] if nxt.sigma == 0.0 else data_prediction_step(path[i], m[i], levels[i], nxt)
        A = torch.stack([(nxt.alpha * (m[j] - m[i])).reshape(-1) for j in range(i)], 1).double()
        rows.append(torch.linalg.lstsq(A, (path[i + 1] - first).reshape(-1, 1).double()).solution[:, 0].tolist())
    return rows


def check_coefficients(coefficients: Coefficients, steps: int) -> None:
    """Refuse coefficients that are not ``steps`` rows of ``0, 1, ..., steps - 1`` finite numbers."""
    if len(coefficients) != steps:
        raise ValueError(f"the coefficients have {len(coefficients)} rows for {steps} steps (need {steps})")
    for i, row in enumerate(coefficients):
        values = row.tolist() if isinstance(row, Tensor) else list(row)
        if len(values) != i:
            raise ValueError(f"row {i} of the coefficients has {len(values)} entries (step {i} has {i})")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise ValueError(f"row {i} of the coefficients holds a value that is not a finite number")


def multistep_run(
    denoise: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    grid: Tensor,
    levels: list[LogSNRLevel],
    coefficients: Coefficients,
    on_step: Callable[[int, Tensor], None] | None = None,
) -> Tensor:
    """The solver's steps from ``x`` at ``grid[0]`` (the module's update), one ``denoise`` per step;
    differentiable in ``x`` and in coefficients given as tensors (``grid_tuning.fit_coefficients``)."""
    predictions: list[Tensor] = []
    for i in range(len(levels) - 1):
        m = denoise(x, grid[i])
        terms = (c * (mj - m) for c, mj in zip(coefficients[i], predictions, strict=True))
        correction = sum(terms, torch.zeros_like(m))
        predictions.append(m)
        nxt = levels[i + 1]
        if nxt.sigma == 0.0:
            x = nxt.alpha * (m + correction)
        else:
            x = data_prediction_step(x, m, levels[i], nxt) + nxt.alpha * correction
        if on_step is not None:
            on_step(i, x)
    return x


def multistep(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    coefficients: Coefficients | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """A linear multistep solver in data prediction with the coefficients ``c`` (the module's update).

    Args:
        field: the score field; ``field.denoise`` gives ``x0hat``.
        x: start particles at ``grid[0]``, ``(N, D)``.
        grid: descending times ``(S + 1,)``.
        coefficients: ``S`` rows, row ``i`` with ``i`` numbers (``c_{ij}``, ``j < i``); default
            DPM-Solver++(2M)'s (``dpm_solver_coefficients``), fitted ones come in a tuned grid file.
        generator: unused (deterministic).
        callback: called with ``StepInfo`` after each step.
        return_path: record the particles at every grid time.

    Returns:
        ``SampleResult`` with ``nfe = S``.
    """
    grid = check_grid(grid)
    levels = log_snr_levels(field.process, grid)
    steps = len(grid) - 1
    if coefficients is None:
        coefficients = dpm_solver_coefficients(field.process, grid)
    check_coefficients(coefficients, steps)
    tracker = Tracker(field, x, callback, return_path, grid)
    x = multistep_run(tracker.field.denoise, x, grid, levels, coefficients,
                      on_step=lambda i, y: tracker.step(i, grid[i + 1], y))  # fmt: skip
    return tracker.result(x)
