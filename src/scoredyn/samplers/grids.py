"""Time grids: descending float64 tensors of times ``t_0 = t_start > ... > t_last``.

Samplers consume a grid and never build one. A grid of ``steps`` intervals has ``steps + 1``
points and includes its end point explicitly. Where the process reaches ``sigma = 0`` at
``t_min`` (every process here but VE) noise-level grids end there, after their smallest
positive noise level, as in Karras et al. (2022, eq. 5, ``sigma_N = 0``).

Noise-level grids are laid out in the noise-to-signal ratio ``sigma_hat = sigma / alpha =
exp(-lambda)`` (the EDM ``sigma`` of the scaled process), so one grid means the same thing
under every process.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..core.processes import DDPMSchedule, Process
from ..core.tensors import positive_int

__all__ = [
    "uniform_grid",
    "karras_grid",
    "log_snr_grid",
    "geometric_sigma_grid",
    "ddpm_grid",
    "constant_grid",
    "end_points_grid",
    "LADDER_SIGMA_MAX",
    "LADDER_SIGMA_MIN",
]


#: The annealed particle samplers' ladder of noise-to-signal ratios, 10 -> 0.05 (after Song & Ermon
#: 2019, whose geometric ladder spans the data's scale down to below its finest feature).
LADDER_SIGMA_MAX, LADDER_SIGMA_MIN = 10.0, 0.05


def _finish(process: Process, sigma_hat: Tensor, t_start: float | None) -> Tensor:
    t = process.sigma_hat_to_t(sigma_hat)
    # bisection lands within rounding of t_min at the floor of a VE ladder: snap it there
    t = torch.where(t - process.t_min < 1e-12 * (process.t_max - process.t_min), process.t_min, t)
    if t_start is not None:
        t[0] = t_start
    if float(process.sigma(process.t_min)) == 0.0:
        t = torch.cat([t, torch.tensor([process.t_min], dtype=torch.float64)])
    return t


def _ends(process: Process, steps: int, sigma_min: float | None, sigma_max: float | None):
    """Resolve the positive noise levels and how many of them the grid holds."""
    positive_int(steps, "steps")
    to_zero = float(process.sigma(process.t_min)) == 0.0
    smax = float(process.sigma_hat(process.t_max)) if sigma_max is None else float(sigma_max)
    floor = float(process.sigma_hat(process.t_min))
    smin = max(floor, 0.002) if sigma_min is None else max(float(sigma_min), floor)
    if not 0 < smin < smax:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {smin}, {smax}")
    n_pos = steps if to_zero else steps + 1  # positive levels; the zero end is appended
    t_start = float(process.t_max) if sigma_max is None else None
    return smin, smax, n_pos, t_start


def karras_grid(
    process: Process,
    steps: int,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    rho: float = 7.0,
) -> Tensor:
    """Karras et al. (2022, eq. 5): ``sigma_i = (smax^(1/rho) + i/(N-1) (smin^(1/rho) - smax^(1/rho)))^rho``.

    Args:
        process: the process whose times are returned.
        steps: number of intervals.
        sigma_min, sigma_max: smallest positive and largest noise-to-signal ratio (defaults:
            0.002, and the process's value at ``t_max``).
        rho: the schedule's curvature (7 in EDM).
    """
    smin, smax, n, t_start = _ends(process, steps, sigma_min, sigma_max)
    if n == 1:
        s = torch.tensor([smax], dtype=torch.float64)
    else:
        i = torch.arange(n, dtype=torch.float64) / (n - 1)
        s = (smax ** (1 / rho) + i * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
    return _finish(process, s, t_start)


def log_snr_grid(
    process: Process, steps: int, sigma_min: float | None = None, sigma_max: float | None = None
) -> Tensor:
    """Uniform in ``lambda = log(alpha / sigma)`` (Lu et al. 2022, DPM-Solver, sec. 3.3)."""
    smin, smax, n, t_start = _ends(process, steps, sigma_min, sigma_max)
    lam = torch.linspace(-math.log(smax), -math.log(smin), n, dtype=torch.float64)
    return _finish(process, torch.exp(-lam), t_start)


def uniform_grid(
    process: Process, steps: int, t_start: float | None = None, t_end: float | None = None
) -> Tensor:
    """Uniform in ``t`` from ``t_start`` (default ``t_max``) to ``t_end`` (default ``t_min``)."""
    positive_int(steps, "steps")
    a = float(process.t_max if t_start is None else t_start)
    b = float(process.t_min if t_end is None else t_end)
    if not a > b:
        raise ValueError(f"need t_start > t_end, got {a}, {b}")
    return torch.linspace(a, b, steps + 1, dtype=torch.float64)


def geometric_sigma_grid(
    process: Process, levels: int, sigma_max: float = LADDER_SIGMA_MAX, sigma_min: float = LADDER_SIGMA_MIN
) -> Tensor:
    """The annealed-Langevin ladder (Song & Ermon 2019): ``levels`` noise-to-signal ratios in
    geometric progression from ``sigma_max`` to ``sigma_min`` (no zero end: the last level is
    where the particles stop)."""
    positive_int(levels, "levels")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(f"need 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
    s = torch.tensor(
        [sigma_max * (sigma_min / sigma_max) ** (i / max(levels - 1, 1)) for i in range(levels)],
        dtype=torch.float64,
    )
    return process.sigma_hat_to_t(s)


def ddpm_grid(process: DDPMSchedule, steps: int, spacing: str = "trailing") -> Tensor:
    """Integer times ``T = t_0 > ... > t_S = 0`` for the discrete schedule (paper indexing, ``x_0``
    clean). Spacings as in Lin et al. (2024, table 2): ``leading`` (DDIM's ``floor(i T / S)``,
    the first noisy time is ``T - T/S + 1``), ``trailing`` (starts at ``T``), ``linspace``."""
    positive_int(steps, "steps")
    T = getattr(process, "num_steps", None)
    if T is None:
        raise ValueError("grid 'ddpm' needs a discrete process (ddpm or ddpm-cosine)")
    if steps > T:
        raise ValueError(f"steps must be <= {T} for this schedule, got {steps}")
    if spacing == "leading":
        k = torch.arange(steps, dtype=torch.float64) * (T // steps) + 1  # diffusers index + 1
    # trailing and linspace through NumPy, as diffusers computes them: where the exact value is a tie
    # k + 1/2, NumPy's arange/linspace land an ulp below it and torch's above, one timestep apart
    elif spacing == "trailing":
        k = torch.from_numpy(np.round(np.arange(T, 0, -T / steps))).flip(0)
    elif spacing == "linspace":
        k = torch.from_numpy(np.round(np.linspace(0, T - 1, steps))) + 1
    else:
        raise ValueError(f"spacing must be leading, trailing or linspace, got {spacing!r}")
    return torch.cat([k.flip(0), torch.zeros(1, dtype=torch.float64)])


def end_points_grid(process: Process, steps: int = 1) -> Tensor:
    """``[t_max, t_min]``: the two ends, for a sampler that places its own levels between them (adaptive
    SMC); ``steps`` is accepted for the common grid head and unused."""
    positive_int(steps, "steps")
    return torch.tensor([float(process.t_max), float(process.t_min)], dtype=torch.float64)


def constant_grid(process: Process, steps: int, sigma_hat: float = LADDER_SIGMA_MIN) -> Tensor:
    """``steps`` repeats of the one time where ``sigma / alpha = sigma_hat``: plain Langevin at a fixed
    noise level (by default the smallest of the annealing ladder)."""
    positive_int(steps, "steps")
    return process.sigma_hat_to_t(torch.tensor([float(sigma_hat)], dtype=torch.float64)).repeat(steps)
