"""Time grids tuned for one field, one sampler and one budget of evaluations.

A few-step sampler's error depends on where its few steps fall, and the best places depend on the
data, the sampler and the budget: hand-made grids (uniform ``t``, Karras ``rho = 7``, uniform
log-SNR) are compromises. Here the grid is fitted to a *teacher*: the probability-flow ODE solved to
tight tolerance (``ode(method="adaptive")``) from the same starts, whose end is the exact transport of
the start law (exact for an exact mixture; the model's own flow for a trained one). Two published
approaches, and their combination:

- ``gits_grid``: dynamic programming over a fine candidate grid (GITS, Chen et al. ICML 2024, sec. 4;
  the same search as Optimal Stepsize Distillation, 2025). The cost of a step ``t_i -> t_j`` is how far
  one step of the sampler's local rule, taken from the teacher's point at ``t_i``, lands from the
  teacher's point at ``t_j``; the grid of ``S`` steps with the least total cost is exact by DP.
- ``refine_grid``: continuous optimization of the time points against the sampler's *whole run*
  (multistep history, warm-up and final step included), the objective of LD3 (Tong et al. ICLR 2025)
  and of Xue et al. (CVPR 2024): the mean distance of its final samples to the teacher's, minimized by
  Nelder–Mead (Gao & Han 2012's adaptive coefficients) over the free coordinates.

Grids are described on one axis, ``rho in [0, 1]``, linear in the log-SNR ``lambda = log(alpha /
sigma)`` from ``t_max`` (``rho = 0``) to the smallest positive noise level allowed (``rho = 1``,
``sigma / alpha = SIGMA_HAT_MIN`` or the process's floor). The start time is among the things
optimized (``optimize_start``): the particles are drawn at ``t_max`` and the sampler begins with them at
``grid[0] <= t_max``, which skips steps where nothing happens. Where the process reaches ``sigma = 0``
the final step into it is the sampler's own and its origin, the last positive level, is optimized.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..core.fields import Field
from ..core.processes import Process
from ..core.tensors import positive_int
from ._steps import check_grid, data_prediction_step, heun_step, log_snr_levels
from .multistep import multistep_run
from .ode import ode

__all__ = [
    "CANDIDATES",
    "COEFFICIENT_ITERATIONS",
    "COEFFICIENT_LEARNING_RATE",
    "COEFFICIENT_PATIENCE",
    "DP_PARTICLES",
    "LOCAL_RULES",
    "SIGMA_HAT_MIN",
    "TEACHER_TOLERANCE",
    "GridAxis",
    "GridSearch",
    "Teacher",
    "cheapest_path",
    "fit_coefficients",
    "gits_grid",
    "refine_grid",
    "teacher",
    "tune_grid",
]

#: The smallest positive noise-to-signal ratio a tuned grid may hold (Karras et al. 2022's
#: ``sigma_min``): below it the data's finest scale has long been resolved.
SIGMA_HAT_MIN = 0.002

#: Candidate levels of the dynamic program (plus the end), uniform in log-SNR, per local rule: GITS uses a
#: fine grid of this order; the DP's cost grows as its square, and a Heun step costs an evaluation per
#: pair of levels where a data-prediction step costs one per level.
CANDIDATES = {"data": 128, "heun": 48}

#: The tuning starts the dynamic program's costs are averaged over (the first ones; the continuous stage
#: uses them all): a mean distance over 1000 particles is already within a few per cent.
DP_PARTICLES = 1000

#: The teacher's relative and absolute tolerance (dopri5): far below any few-step sampler's error.
TEACHER_TOLERANCE = 1e-7

#: The local rules a step of the dynamic program can take: ``data``, the first-order data-prediction
#: step (DDIM; DPM-Solver-1; the first step of DPM-Solver++ and UniPC), and ``heun``, the PF-ODE's
#: Heun step (EDM), Euler into ``sigma = 0``.
LOCAL_RULES = ("data", "heun")


@dataclass(frozen=True)
class GridAxis:
    """The coordinate ``rho in [0, 1]`` of a process's noise levels: linear in the log-SNR from
    ``t_max`` (``rho = 0``) to the smallest positive level (``rho = 1``), and the time the last step
    ends at (``t_min``: ``sigma = 0`` where the process reaches it, else the smallest level itself)."""

    process: Process
    sigma_hat_min: float = SIGMA_HAT_MIN

    @property
    def lam_max_noise(self) -> float:
        return float(self.process.log_snr(torch.tensor(float(self.process.t_max), dtype=torch.float64)))

    @property
    def to_zero(self) -> bool:
        return float(self.process.sigma(torch.tensor(float(self.process.t_min), dtype=torch.float64))) == 0.0

    @property
    def lam_min_noise(self) -> float:
        floor = self.process.log_snr(torch.tensor(float(self.process.t_min), dtype=torch.float64))
        return min(-math.log(self.sigma_hat_min), float(floor))

    @property
    def end_time(self) -> float:
        return float(self.process.t_min)

    def times(self, rho: Tensor) -> Tensor:
        """The times of the levels ``rho`` (float64)."""
        rho = torch.as_tensor(rho, dtype=torch.float64)
        lam = self.lam_max_noise + rho * (self.lam_min_noise - self.lam_max_noise)
        t = self.process.log_snr_to_t(lam)
        return torch.where(rho <= 0, torch.tensor(float(self.process.t_max), dtype=torch.float64), t)

    def rho(self, t: Tensor) -> Tensor:
        """The coordinate of positive-noise times ``t``."""
        lam = self.process.log_snr(torch.as_tensor(t, dtype=torch.float64))
        return (lam - self.lam_max_noise) / (self.lam_min_noise - self.lam_max_noise)

    def grid(self, rho: Tensor, end: float | None = None) -> Tensor:
        """The grid of the positive levels ``rho`` (ascending in ``rho``), ending at the level ``end``, or
        at ``end_time`` (appended unless the last level is the floor itself)."""
        t = self.times(rho)
        if end is not None:
            t = torch.cat([t, self.times(torch.tensor([end], dtype=torch.float64))])
        elif self.to_zero or float(rho[-1]) < 1.0:
            t = torch.cat([t, torch.tensor([self.end_time], dtype=torch.float64)])
        return t


@dataclass(frozen=True)
class Teacher:
    """The converged probability-flow ODE from the tuning starts: its points at the candidate levels
    ``times`` (``path[k]``, the start ``x`` first, the end last)."""

    x: Tensor
    times: Tensor
    path: Tensor

    @property
    def end(self) -> Tensor:
        return self.path[-1]


def teacher(field: Field, x: Tensor, times: Tensor, tolerance: float = TEACHER_TOLERANCE) -> Teacher:
    """Solve the PF-ODE from ``x`` at ``times[0]`` through every time of ``times`` (dopri5 at
    ``tolerance``, relative and absolute).

    Into ``sigma = 0`` (a last time there) the ODE is solved only on an exact field; a learned field is
    undefined at ``sigma = 0`` and stiff just above it, so its teacher stops at the last positive time and
    lands on ``alpha x0hat`` there, the step every solver here takes into ``sigma = 0``."""
    times = check_grid(times, "the teacher's times")
    t_last = times[-1:]
    into_zero = len(times) > 2 and float(field.process.sigma(t_last)) == 0.0
    learned = into_zero and field.exact_mixture(times[-2]) is None
    solve = times[:-1] if learned else times
    path = ode(field, x, solve, method="adaptive", rtol=tolerance, atol=tolerance, return_path=True).path
    if path.shape[0] == len(solve) - 1:  # the path holds the points after the start
        path = torch.cat([x[None], path])
    if learned:
        end = field.process.alpha(t_last).to(x) * field.denoise(path[-1], times[-2])
        path = torch.cat([path, end[None]])
    return Teacher(x, times, path)


def mean_distance(a: Tensor, b: Tensor) -> float:
    """The mean Euclidean distance between matched particles (GITS, LD3): the objective ``distance``."""
    return float(torch.linalg.vector_norm(a - b, dim=-1).mean())


def energy_gap(a: Tensor, b: Tensor) -> float:
    """The energy distance between the two sets, matched or not (Székely & Rizzo 2013; V-statistic):
    ``2 E|a - b| - E|a - a'| - E|b - b'|``, the objective ``energy``. It asks the sampler for the
    teacher's law rather than its particles, so it does not reward the shrinkage towards the
    conditional mean that a per-particle distance does at very few steps."""
    return float(2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean())


#: The objectives of the continuous stage.
OBJECTIVES: dict[str, Callable[[Tensor, Tensor], float]] = {"distance": mean_distance, "energy": energy_gap}


def _local_steps(field: Field, x: Tensor, t: Tensor, targets: Tensor, rule: str) -> Tensor:
    """One step of ``rule`` from ``x`` at time ``t`` to every time of ``targets``: ``(len(targets), M, D)``."""
    if rule == "data":
        # DDIM's step (data_prediction_step), landing on alpha x0hat into sigma = 0
        x0 = field.denoise(x, t)
        cur = log_snr_levels(field.process, t.reshape(1))[0]
        return torch.stack([nxt.alpha * x0 if nxt.sigma == 0.0 else data_prediction_step(x, x0, cur, nxt)
                            for nxt in log_snr_levels(field.process, targets)])  # fmt: skip
    if rule == "heun":
        # Heun (Karras et al. 2022, Alg. 1), the evaluation at the start shared by every target
        d = field.velocity(x, t)
        return torch.stack([heun_step(field, x, t, s, d) for s in targets])
    raise ValueError(f"rule must be one of {', '.join(LOCAL_RULES)}, got {rule!r}")


def gits_grid(
    field: Field,
    teach: Teacher,
    axis_rho: Tensor,
    steps: int,
    *,
    rule: str = "data",
    optimize_start: bool = True,
) -> tuple[Tensor, float]:
    """The grid of ``steps`` steps through the teacher's candidate levels with the least summed local
    error (GITS, Chen et al. 2024, eq. 9 and Alg. 1).

    ``cost(i, j)`` is the mean distance between one ``rule`` step from the teacher's point at candidate
    ``i`` to candidate ``j`` and the teacher's point at ``j``; a step *from the start* instead begins at the
    tuning starts themselves read at candidate ``i`` (``optimize_start``: any candidate may be the start
    time; else only ``t_max``). With ``E_k(j)`` the least cost of reaching ``j`` in ``k`` steps,
    ``E_1(j) = min_i cost_0(i, j)`` and ``E_k(j) = min_{i < j} E_{k-1}(i) + cost(i, j)``; the grid is the
    path of ``E_steps(end)``.

    Args:
        field: the field (its process is the grid's).
        teach: the teacher on the candidate times; ``teach.times[:-1]`` are the levels ``axis_rho`` and the
            last is the end.
        axis_rho: the candidates' coordinates (``GridAxis``), ascending, the first 0.
        steps: the number of steps.
        rule: the local step (``LOCAL_RULES``).
        optimize_start: whether the start time is chosen too.

    Returns:
        the chosen levels' coordinates (``steps`` of them) and the least total cost.
    """
    steps = positive_int(steps, "steps")
    if rule not in LOCAL_RULES:
        raise ValueError(f"rule must be one of {', '.join(LOCAL_RULES)}, got {rule!r}")
    times, path, x = teach.times, teach.path[:, :DP_PARTICLES], teach.x[:DP_PARTICLES]
    C = len(times)  # candidates, the end last
    if steps > C - 1:
        raise ValueError(f"{steps} steps need at least {steps} candidate levels, got {C - 1}")
    inf = math.inf
    cost = np.full((C, C), inf)  # cost[i, j]: one step from the teacher's point i to j
    first = np.full((C, C), inf)  # first[i, j]: the first step, from the starts read at level i
    starts = range(C - 1) if optimize_start else range(1)
    for i in range(C - 1):
        landed = _local_steps(field, path[i], times[i], times[i + 1 :], rule)
        cost[i, i + 1 :] = torch.linalg.vector_norm(landed - path[i + 1 :], dim=-1).mean(1).cpu().numpy()
        if i in starts:
            if i == 0:
                first[0] = cost[0]
            else:
                landed = _local_steps(field, x, times[i], times[i + 1 :], rule)
                first[i, i + 1 :] = torch.linalg.vector_norm(landed - path[i + 1 :], dim=-1).mean(1).cpu().numpy()
    chosen, best = cheapest_path(cost, first, steps)
    return axis_rho[torch.tensor(chosen)], best


def cheapest_path(cost: np.ndarray, first: np.ndarray, steps: int) -> tuple[list[int], float]:
    """The dynamic program of GITS (Alg. 1): the ``steps``-step path from a start level to the last
    node with the least summed cost. ``first[i, j]`` is the cost of the first step (from the start, read
    at level ``i``) and ``cost[i, j]`` of a later one (``inf`` where not allowed). With ``E_k(j)`` the
    least cost of reaching ``j`` in ``k`` steps, ``E_1 = min_i first[i, .]`` and
    ``E_k(j) = min_i E_{k-1}(i) + cost[i, j]``. Returns the levels the steps start from, and the cost."""
    C = cost.shape[0]
    E = np.full((steps + 1, C), math.inf)
    back = np.zeros((steps + 1, C), dtype=np.int64)
    E[1], back[1] = first.min(0), first.argmin(0)
    for k in range(2, steps + 1):
        total = E[k - 1][:, None] + cost  # via i, to j
        back[k], E[k] = total.argmin(0), total.min(0)
    best = float(E[steps, C - 1])
    if not math.isfinite(best):
        raise ValueError(f"no path of {steps} steps reaches the end")
    chosen, j = [], C - 1
    for k in range(steps, 0, -1):
        j = int(back[k, j])
        chosen.append(j)
    return chosen[::-1], best


def _points_from_logits(z: np.ndarray, free_start: bool, free_end: bool) -> Tensor:
    """Ascending points in ``(0, 1)`` from unconstrained coordinates: the gaps between 0, the points and
    1 are a softmax (the last gap's logit fixed at 0), so any ``z`` is a valid, strictly increasing grid.
    Without ``free_start`` the first point is 0 (``t_max``)."""
    logits = np.concatenate([z, [0.0]]) if free_start else np.concatenate([[-np.inf], z, [0.0]])
    gaps = np.exp(logits - logits.max())
    gaps /= gaps.sum()
    return torch.from_numpy(np.cumsum(gaps)[:-1].copy())


def _logits_from_points(points: Tensor, free_start: bool) -> np.ndarray:
    """The inverse of ``_points_from_logits`` (gaps clamped away from 0)."""
    edges = np.concatenate([[0.0], points.numpy(), [1.0]])
    gaps = np.maximum(np.diff(edges), 1e-6)
    z = np.log(gaps[:-1]) - np.log(gaps[-1])
    return z if free_start else z[1:]


def _split(points: Tensor, free_end: bool) -> tuple[Tensor, float | None]:
    return (points[:-1], float(points[-1])) if free_end else (points, None)


def refine_grid(
    run: Callable[[Tensor], Tensor],
    target: Tensor,
    axis: GridAxis,
    rho: Tensor,
    *,
    end: float | None = None,
    optimize_start: bool = True,
    optimize_end: bool = False,
    objective: str = "distance",
    evaluations: int = 600,
) -> tuple[Tensor, float | None, float, int]:
    """Continuous optimization of the levels against the sampler's whole run (LD3, Tong et al. 2025;
    Xue et al. 2024): minimize ``OBJECTIVES[objective](run(grid), target)`` over the free coordinates
    (``_points_from_logits``) by Nelder–Mead with dimension-adapted coefficients (Gao & Han 2012), from
    the levels ``rho``.

    With ``optimize_end`` the last step ends at a free level ``end`` (a coordinate above the last of
    ``rho``) instead of the process's end: the step then keeps ``sigma_end / sigma_last`` of its start
    where a step into ``sigma = 0`` lands on the denoiser's mean, which is narrower than the law.

    Args:
        run: the sampler on the tuning starts: a grid to its final particles.
        target: the teacher's end for the same starts.
        axis: the coordinate of the levels.
        rho: the initial levels (ascending).
        end: the initial end level (``None``: the process's end; with ``optimize_end``, halfway between
            the last level and 1).
        optimize_start: whether the first level moves (else it stays at ``t_max``).
        optimize_end: whether the end moves.
        objective: ``distance`` (per particle) or ``energy`` (between the sets; ``OBJECTIVES``).
        evaluations: the most runs of the sampler.

    Returns:
        the best levels, their end (``None``: the process's), their objective, and the runs spent.
    """
    from scipy.optimize import minimize  # here: scipy.optimize costs ~0.5 s to import

    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    measure = OBJECTIVES[objective]
    spent = 0
    if optimize_end and end is None:
        end = 0.5 * (float(rho[-1]) + 1.0)

    def objective(z: np.ndarray) -> float:
        nonlocal spent
        spent += 1
        levels, last = _split(_points_from_logits(z, optimize_start, optimize_end), optimize_end)
        value = measure(run(axis.grid(levels, last)), target)
        return value if math.isfinite(value) else 1e30

    points = torch.cat([rho, torch.tensor([end], dtype=torch.float64)]) if optimize_end else rho
    z0 = _logits_from_points(points, optimize_start)
    start_value = objective(z0)
    if z0.size == 0:
        return rho, end, start_value, spent
    fit = minimize(objective, z0, method="Nelder-Mead",
                   options={"maxfev": evaluations, "xatol": 1e-4, "fatol": 1e-9, "adaptive": True})  # fmt: skip
    if fit.fun >= start_value:
        return rho, end, start_value, spent
    levels, last = _split(_points_from_logits(fit.x, optimize_start, optimize_end), optimize_end)
    return levels, last, float(fit.fun), spent


@dataclass(frozen=True)
class GridSearch:
    """A tuned grid and how it was found.

    Attributes:
        times: the grid (descending, ending at the process's ``t_min``).
        start_time: the time the starts are drawn at (``t_max``); the sampler begins at ``times[0]``.
        method: ``gits``, ``continuous`` or ``gits+continuous``.
        error: the mean distance to the teacher on the tuning starts.
        errors: the mean distance after each stage (``initial``, ``gits``, ``continuous``), the continuous
            stage's own objective under its name, and the grid it started from (``continuous_start``).
        evaluations: runs of the sampler spent by the continuous stage.
        seconds: the wall time of the search, teacher included.
        teacher_times: the teacher's levels (the candidate levels and the axis's end time).
        teacher_end: the teacher's end points from the tuning starts, at ``teacher_times[-1]``.
    """

    times: Tensor
    start_time: float
    method: str
    error: float
    errors: dict
    evaluations: int
    seconds: float
    teacher_times: Tensor | None = None
    teacher_end: Tensor | None = None


METHODS = ("gits", "continuous", "gits+continuous")


def tune_grid(
    field: Field,
    run: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    steps: int,
    *,
    method: str = "gits+continuous",
    rule: str = "data",
    optimize_start: bool = True,
    optimize_end: bool = False,
    objective: str = "distance",
    initial: Tensor | None = None,
    candidates: int | None = None,
    evaluations: int = 600,
    sigma_hat_min: float = SIGMA_HAT_MIN,
    tolerance: float = TEACHER_TOLERANCE,
) -> GridSearch:
    """Tune a grid of ``steps`` steps for the sampler ``run(x, grid) -> final particles`` on ``field``.

    The teacher solves the PF-ODE from the tuning starts ``x`` (drawn at ``t_max``) through the
    ``candidates`` levels (uniform on ``GridAxis``); ``gits`` is the dynamic program on them
    (``gits_grid``), ``continuous`` Nelder–Mead on the sampler's final error (``refine_grid``) from
    the best under its objective of ``initial`` (a grid; default uniform in log-SNR) and the uniform-in-t
    grid, ``gits+continuous`` the same with the DP's grid among the starts (Nelder–Mead is local, and no
    one start is best everywhere). Judge a tuned grid on other starts than ``x``: it is fitted to them.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    steps = positive_int(steps, "steps")
    clock = time.perf_counter()
    axis = GridAxis(field.process, sigma_hat_min)
    if rule not in LOCAL_RULES:
        raise ValueError(f"rule must be one of {', '.join(LOCAL_RULES)}, got {rule!r}")
    C = max(positive_int(CANDIDATES[rule] if candidates is None else candidates, "candidates"), steps + 1)
    axis_rho = torch.linspace(0.0, 1.0, C, dtype=torch.float64)
    teach = teacher(field, x, axis.grid(axis_rho), tolerance)

    def run_on(grid: Tensor) -> Tensor:
        return run(x, grid)

    errors: dict[str, float | str] = {}
    if initial is not None:
        initial = check_grid(initial, "initial")
        if len(initial) - 1 != steps:
            raise ValueError(f"the initial grid has {len(initial) - 1} steps, not {steps}")
        rho = axis.rho(initial[:-1]).clamp(0.0, 1.0)  # the positive levels; the end is the axis's
    elif axis.to_zero:  # uniform in log-SNR, the last positive level at the floor
        rho = torch.linspace(0.0, 1.0, steps, dtype=torch.float64) if steps > 1 else torch.zeros(1, dtype=torch.float64)
    else:  # uniform in log-SNR, the floor the end
        rho = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)[:steps]
    errors["initial"] = mean_distance(run_on(axis.grid(rho)), teach.end)
    starts = {"initial": rho}
    # uniform in t: often the best hand-made grid of a VP process at few steps (README, accuracy vs NFE)
    uniform_t = axis.rho(torch.linspace(float(field.process.t_max), float(field.process.t_min), steps + 1,
                                        dtype=torch.float64)[:steps]).clamp(0.0, 1.0)  # fmt: skip
    if (uniform_t[1:] > uniform_t[:-1]).all() and float(uniform_t[-1]) < 1.0:
        starts["uniform-t"] = uniform_t
    spent = 0
    if method.startswith("gits"):
        rho, _ = gits_grid(field, teach, axis_rho, steps, rule=rule, optimize_start=optimize_start)
        errors["gits"] = mean_distance(run_on(axis.grid(rho)), teach.end)
        starts["gits"] = rho
    end = None
    if method.endswith("continuous"):
        # Nelder-Mead is local and no one start is best everywhere: a quarter of the budget from each
        # start, then the rest from the best point found (successive halving; a restart renews the simplex)
        share = max(1, evaluations // 4)
        best = None
        for name, r in starts.items():
            found = refine_grid(run_on, teach.end, axis, r, optimize_start=optimize_start,
                                optimize_end=optimize_end, objective=objective, evaluations=share)  # fmt: skip
            spent += found[3]
            if best is None or found[2] < best[1][2]:
                best = (name, found)
        errors["continuous_start"] = best[0]
        rho, end = best[1][0], best[1][1]
        rest = max(1, evaluations - spent)
        rho, end, errors[objective], used = refine_grid(run_on, teach.end, axis, rho, end=end,
                                                        optimize_start=optimize_start, optimize_end=optimize_end,
                                                        objective=objective, evaluations=rest)  # fmt: skip
        spent += used
        errors["continuous"] = mean_distance(run_on(axis.grid(rho, end)), teach.end)
    error = errors[method.split("+")[-1]]
    return GridSearch(axis.grid(rho, end), float(field.process.t_max), method, error, errors, spent,
                      time.perf_counter() - clock, teach.times, teach.end)  # fmt: skip


# --- the coefficients of a multistep solver on a tuned grid ----------------------------------------------

#: Adam's iterations and learning rate for the coefficients (``fit_coefficients``): on the exact mixtures
#: the teacher distance stops falling by 400 (5 and 10 evaluations; benchmarks/grid_tuning.py).
COEFFICIENT_ITERATIONS = 400
COEFFICIENT_LEARNING_RATE = 0.02
#: The fit stops early once its best mean distance has not fallen by a relative ``1e-3`` in this many
#: iterations (at 10 evaluations UniPC's coefficients are often already the best found).
COEFFICIENT_PATIENCE = 50


def fit_coefficients(
    field: Field,
    x: Tensor,
    grid: Tensor,
    end: Tensor,
    initial: list[list[float]],
    *,
    iterations: int = COEFFICIENT_ITERATIONS,
    learning_rate: float = COEFFICIENT_LEARNING_RATE,
) -> tuple[list[list[float]], float]:
    """The coefficients of ``multistep`` on ``grid`` that bring its final particles from the tuning starts
    ``x`` closest to the teacher's ``end`` (S4S, Frankel et al. 2025; BNS solvers, Shaul et al. 2024):
    the mean distance of the grid's own objective (``mean_distance``; a mean squared distance follows the
    few particles that land farthest and, at 10 evaluations on mog6, doubled the typical one), minimized by
    Adam (Kingma & Ba 2015) from ``initial`` (the solver is linear in them, the field is not) with
    gradients through the whole run, for ``iterations`` steps or until ``COEFFICIENT_PATIENCE`` steps bring
    no progress. Returns the best coefficients seen, never worse than ``initial`` on these starts, and
    their mean distance. Judge them on other starts than ``x``."""
    grid = check_grid(grid)
    levels = log_snr_levels(field.process, grid)
    rows = [torch.tensor(row, dtype=torch.float64, requires_grad=True) for row in initial]
    free = [row for row in rows if row.numel()]
    x, end = x.detach(), end.detach()
    best = ([list(map(float, row)) for row in initial], math.inf)
    if not free:  # one step: nothing to fit
        with torch.no_grad():
            return best[0], mean_distance(multistep_run(field.denoise, x, grid, levels, initial), end)
    optimizer = torch.optim.Adam(free, lr=learning_rate)
    stalled, mark = 0, math.inf  # iterations since the best fell by a relative 1e-3, and that best
    with torch.enable_grad():
        for _ in range(positive_int(iterations, "iterations") + 1):
            y = multistep_run(field.denoise, x, grid, levels, rows)
            loss = torch.linalg.vector_norm(y - end, dim=-1).mean()  # mean_distance, differentiable
            value = float(loss.detach())
            if value < best[1]:
                best = ([row.detach().tolist() for row in rows], value)
            stalled, mark = (0, value) if value < (1 - 1e-3) * mark else (stalled + 1, mark)
            if stalled >= COEFFICIENT_PATIENCE:
                break
            # gradients of the coefficients alone: a trained field's weights take none
            for row, g in zip(free, torch.autograd.grad(loss, free), strict=True):
                row.grad = g
            optimizer.step()
    with torch.no_grad():
        return best[0], mean_distance(multistep_run(field.denoise, x, grid, levels, best[0]), end)
