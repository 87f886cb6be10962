"""The probability-flow ODE solved between two times with torchdiffeq's adaptive solvers: the
interval, the solver's checks, and the solve itself, shared by the likelihood and the latent map."""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.fields import Field
from ..core.tensors import as_time, atleast_2d_points

__all__ = ["ADAPTIVE_METHODS", "solve_interval", "check_solver", "solve", "flow_map"]

ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "adaptive_heun")


def solve_interval(field: Field, t0: float | None, t1: float | None) -> tuple[float, float]:
    """Default and check the solve interval ``t_min <= t0 < t1 <= t_max``."""
    p = field.process
    t0 = p.t_min if t0 is None else float(t0)
    t1 = p.t_max if t1 is None else float(t1)
    if not p.t_min <= t0 < t1 <= p.t_max:
        raise ValueError(f"need t_min <= t0 < t1 <= t_max = {p.t_max}, got t0={t0!r}, t1={t1!r}")
    return t0, t1


def check_solver(rtol: float, atol: float, method: str) -> None:
    if not (rtol > 0 and atol > 0):
        raise ValueError(f"rtol and atol must be positive, got rtol={rtol!r}, atol={atol!r}")
    if method not in ADAPTIVE_METHODS:
        raise ValueError(f"method must be one of {', '.join(ADAPTIVE_METHODS)}, got {method!r}")


def solve(func, y0, t_a: float, t_b: float, dtype: torch.dtype, rtol: float, atol: float, method: str):
    """``odeint`` from ``t_a`` to ``t_b``; the end is a forced step point, so no stage is
    evaluated beyond it (past ``t_min`` a VP ``sigma`` is NaN). Returns the state at ``t_b``."""
    ref = y0[0] if isinstance(y0, tuple) else y0
    ts = torch.tensor([t_a, t_b], dtype=dtype, device=ref.device)
    from torchdiffeq import odeint  # here, not at import: it pulls in scipy.integrate (~1 s)

    out = odeint(func, y0, ts, rtol=rtol, atol=atol, method=method, options={"step_t": ts[1:]})
    return tuple(o[-1] for o in out) if isinstance(out, tuple) else out[-1]


def flow_map(field: Field, x: Tensor, t_a: float, t_b: float, rtol: float, atol: float, method: str) -> Tensor:
    """The PF-ODE solution map from ``t_a`` to ``t_b`` (float64, no graph)."""
    atleast_2d_points(x)
    check_solver(rtol, atol, method)

    def rhs(t: Tensor, y: Tensor) -> Tensor:
        return field.velocity(y, as_time(t)).to(torch.float64)

    with torch.no_grad():
        return solve(rhs, x.to(torch.float64), t_a, t_b, torch.float64, rtol, atol, method)
