"""The probability-flow ODE (Song et al. 2021, eq. 13), solved with Euler, Heun, classical RK4
or adaptive Dormand–Prince.

The ODE is written through the field's velocity ``dx/dt = v(x, t)``, so one solver serves every
process (and every parameterization: the field converts). The Euler increment and the Heun step
are ``_steps.euler`` and ``_steps.heun_step``, shared with ``sde.py``, ``edm.py`` and ``pc.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.tensors import as_time, atleast_2d_points
from ._steps import SampleResult, StepInfo, Tracker, check_grid, euler, heun_step

__all__ = ["ode", "ODE_METHODS"]

ODE_METHODS = ("euler", "heun", "rk4", "adaptive")


def _euler_step(field: Field, x: Tensor, t: Tensor, t_next: Tensor) -> Tensor:
    """One Euler step of the PF-ODE from ``t`` to ``t_next``."""
    return euler(x, t_next - t, field.velocity(x, t))


def _rk4_step(field: Field, x: Tensor, t: Tensor, t_next: Tensor) -> Tensor:
    """One classical Runge–Kutta step (Kutta 1901). Its last stage sits at ``t_next``; on the
    interval into ``sigma = 0`` that is the data-score velocity (``Field.velocity`` is finite there)."""
    h = t_next - t
    t_mid = 0.5 * (t + t_next)
    k1 = field.velocity(x, t)
    k2 = field.velocity(euler(x, 0.5 * h, k1), t_mid)
    k3 = field.velocity(euler(x, 0.5 * h, k2), t_mid)
    k4 = field.velocity(euler(x, h, k3), t_next)
    return euler(x, h / 6.0, k1 + 2.0 * k2 + 2.0 * k3 + k4)


_FIXED_STEPS = {"euler": _euler_step, "heun": heun_step, "rk4": _rk4_step}


def _dopri5(field: Field, x: Tensor, grid: Tensor, rtol: float, atol: float) -> Tensor:
    """Dormand–Prince 5(4) through ``torchdiffeq.odeint``; the solution at every grid time,
    ``(len(grid), N, D)``. The end time is a forced step point, so no stage is evaluated past it
    (beyond ``t_min``, ``sigma`` of a VP process is NaN)."""

    def rhs(t: Tensor, y: Tensor) -> Tensor:
        return field.velocity(y, as_time(t))

    from torchdiffeq import odeint  # here, not at import: it pulls in scipy.integrate (~1 s)

    return odeint(
        rhs,
        x,
        grid.to(x.device),
        rtol=rtol,
        atol=atol,
        method="dopri5",
        options={"step_t": grid[-1:].to(x.device)},
    )


def ode(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    method: str = "heun",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """Solve the probability-flow ODE from ``grid[0]`` to ``grid[-1]``.

    Song et al. (2021), eq. 13, with ``v = f x - g^2 s / 2`` from the field:

    .. math::
        \\frac{dx}{dt} = v(x, t), \\qquad
        \\text{Euler: } x_{i+1} = x_i + h_i v(x_i, t_i), \\quad h_i = t_{i+1} - t_i .

    ``heun`` averages the slopes at both ends (2nd order; Euler on a final step into
    ``sigma = 0``, as EDM does); ``rk4`` is the classical 4th-order method (4 evaluations per
    step, the last one at ``sigma = 0`` through the data score); ``adaptive`` is dopri5 with
    ``rtol``/``atol``, reporting the solution at the grid times.

    Args:
        field: the score field (``field.velocity``).
        x: start particles at ``grid[0]``, ``(N, D)``.
        grid: descending times ``(S + 1,)``.
        method: ``euler``, ``heun``, ``rk4`` or ``adaptive``.
        rtol, atol: tolerances of ``adaptive`` (ignored otherwise).
        generator: unused (the ODE is deterministic); part of the common head.
        callback: called with ``StepInfo`` after each grid time.
        return_path: record the particles at every grid time.

    Returns:
        ``SampleResult``; ``nfe`` is ``S`` (euler), ``2S`` less one per final step into
        ``sigma = 0`` (heun), ``4S`` (rk4), or the evaluations dopri5 made (adaptive).
    """
    grid = check_grid(grid)
    atleast_2d_points(x)
    if method not in ODE_METHODS:
        raise ValueError(f"method must be one of {', '.join(ODE_METHODS)}, got {method!r}")
    if method == "adaptive" and not (rtol > 0 and atol > 0):
        raise ValueError(f"rtol and atol must be positive, got rtol={rtol!r}, atol={atol!r}")
    tracker = Tracker(field, x, callback, return_path, grid)
    n = len(grid) - 1
    if method == "adaptive":
        xs = _dopri5(tracker.field, x, grid, rtol, atol) if n > 0 else x[None]
        for i in range(n):
            tracker.step(i, grid[i + 1], xs[i + 1])
        return tracker.result(xs[-1])
    step = _FIXED_STEPS[method]
    for i in range(n):
        # one step of the chosen method from t_i to t_{i+1}
        x = step(tracker.field, x, grid[i], grid[i + 1])
        tracker.step(i, grid[i + 1], x)
    return tracker.result(x)
