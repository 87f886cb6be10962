"""Sequential Monte Carlo over the noise levels: annealed importance sampling with resampling and
Metropolis-adjusted Langevin moves, which reaches the exact law where annealed Langevin cannot.

Annealed Langevin and annealed MALA keep the mode weights each mode had when the modes of ``p_t`` split
(``mala``): a local move cannot carry mass across a barrier. SMC carries it by weights. Between levels
``t -> t'`` each particle's weight is multiplied by ``p_{t'}(x) / p_t(x)`` (Neal 2001, eq. 3; Del Moral,
Doucet & Jasra 2006, eq. 31 with the MCMC backward kernel), so the weighted population targets each
``p_t`` exactly whatever the moves did; resampling replaces weights by copies when they grow uneven, and
MALA moves, which leave ``p_{t'}`` invariant, spread the copies out. The same weights estimate the
normalizing constant of the last level, ``Z = prod_levels mean(incremental weights)``, unbiasedly.

The pieces: ``next_time`` (adaptive levels, by a conditional effective sample size; Zhou, Johansen &
Aston 2016), the weights and resampling of ``resampling`` (systematic, along a Hilbert curve), and the
run, ``smc``, which
keeps ``groups`` independent populations (islands; Vergé et al. 2015) so that one run reports the
standard error of its own ``log Z``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import Field, denoise_from_score
from ..core.targets import GaussianMixture
from ..core.tensors import atleast_2d_points, positive_float, positive_int
from ._steps import (
    ACCEPT_TARGET,
    SampleResult,
    StepInfo,
    Tracker,
    check_grid,
    density_evaluator,
    generator_device,
    mala_moves,
    noise,
    require_density,
)
from .mala import check_accept_target
from .resampling import (
    ORDERS,
    RESAMPLING,
    conditional_ess,
    effective_sample_size,
    hilbert_index,
    resample_groups,
)
from .smc_kernels import flow_kernel, reverse_kernel

__all__ = ["MOVES", "SEARCH_POINTS", "SEARCH_ITERATIONS", "SEARCH_TOLERANCE", "group_count", "next_time", "smc"]

MOVES = ("mala", "langevin")
#: How the particles go from one level to the next (``smc_kernels``): they stay, take the ancestral
#: step, or follow the probability-flow ODE.
KERNELS = ("stay", "reverse", "flow")

#: Particles the adaptive search evaluates (a fixed stride through the population): enough to read a
#: conditional ESS to a few per cent, and a small fraction of an evaluation per particle at large N.
SEARCH_POINTS = 2048

#: Trials of the adaptive search at most (``next_time``), and how far from the target deficit ``1 - CESS``
#: a step may be (a fraction of it): a 25 % deficit error is a 12 % step error.
SEARCH_ITERATIONS = 8
SEARCH_TOLERANCE = 0.25


def _check_fraction(value: float, name: str) -> float:
    if not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return float(value)


def group_count(n: int, groups: int) -> int:
    """The number of equal groups ``n`` particles are split into: the divisor of ``n`` nearest ``groups``
    (the larger on a tie) with at least 2 groups of at least 2 particles."""
    divisors = [d for d in range(2, n // 2 + 1) if n % d == 0]
    if not divisors:
        raise ValueError(
            f"smc splits the particles into equal groups of at least 2 (the spread of their log Z is its "
            f"standard error): {n} particles cannot be; use a number with a divisor, e.g. {n + 1 if n > 3 else 4}"
        )
    return min(divisors, key=lambda d: (abs(d - groups), -d))


def next_time(
    log_increment: Callable[[float], Tensor],
    log_w: Tensor,
    t: float,
    t_stop: float,
    target: float,
    guess: float,
    iterations: int = SEARCH_ITERATIONS,
) -> float:
    """The next level of an adaptive ladder: a time ``t' in [t_stop, t)`` whose incremental weights
    (``p_{t'}(x) / p_t(x)``, or a kernel's, ``smc_kernels``) have a conditional ESS (``conditional_ess``)
    of about ``target`` (Jasra et al. 2011; Zhou, Johansen & Aston 2016, sec. 3.3), ``t_stop`` itself when
    it qualifies.

    Between nearby levels ``1 - CESS`` is the chi-square divergence of the increment, quadratic in the
    step to leading order, so from a trial step ``h`` (first ``guess``, the last level's step) the next is
    ``h sqrt((1 - target) / (1 - CESS(h)))``, within a factor of 4; the search stops at a step whose
    ``1 - CESS`` is within ``SEARCH_TOLERANCE`` of ``1 - target`` (one or two trials, usually). A step
    never falls below the target by more than that tolerance. ``log_increment(t')`` is the log incremental
    weight of a step to ``t'`` at the searched particles, whose current log-weights are ``log_w``."""
    budget, span = 1.0 - target, t - t_stop
    step, best = min(guess, span), None
    for _ in range(iterations):
        deficit = 1.0 - conditional_ess(log_w, log_increment(t - step))
        if deficit <= (1 + SEARCH_TOLERANCE) * budget:
            best = step
            if deficit >= (1 - SEARCH_TOLERANCE) * budget or step == span:
                break
        scale = math.sqrt(budget / deficit) if deficit > 0 else 4.0
        step = min(span, step * min(4.0, max(0.25, scale)))
    return t - (best if best is not None else step)


def _reaches(log_increment: Callable[[float], Tensor], log_w: Tensor, t_new: float, target: float) -> bool:
    """Whether the step to ``t_new`` keeps the conditional ESS within the search's tolerance of ``target``."""
    return 1.0 - conditional_ess(log_w, log_increment(t_new)) <= (1 + SEARCH_TOLERANCE) * (1.0 - target)


def smc(
    field: Field,
    x: Tensor,
    grid: Tensor,
    *,
    start: GaussianMixture,
    steps_per_level: int = 10,
    final_steps: int = 100,
    move: str = "mala",
    kernel: str = "flow",
    adaptive: bool = True,
    target_ess: float = 0.9,
    resample_below: float = 0.5,
    resampling: str = "systematic",
    order: str = "hilbert",
    groups: int = 20,
    eta_factor: float = 0.5,
    accept_target: float = ACCEPT_TARGET,
    adapt: bool = True,
    backend: str = "auto",
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    return_path: bool = False,
) -> SampleResult:
    """Sequential Monte Carlo sampler over noise levels (Del Moral, Doucet & Jasra 2006; annealed
    importance sampling, Neal 2001, with resampling), targeting ``p_t`` at every level and ending at
    ``grid[-1]``.

    With particles ``x ~ start`` and log-weights ``log w = log p_{t_0}(x) - log start(x)``, at each level
    ``t -> t'``:

    1. ``t'``: the next time of ``grid``, or with ``adaptive`` the farthest time before it whose
       incremental weights keep the conditional ESS at ``target_ess`` (``next_time``, on at most
       ``SEARCH_POINTS`` particles);
    2. move by ``kernel`` and reweight by its incremental weight (``smc_kernels``): ``stay`` keeps ``x`` and
       ``log w += log p_{t'}(x) - log p_t(x)``; ``reverse`` takes the ancestral step; ``flow`` follows the
       probability-flow ODE one DDIM step, ``log w += log p_{t'}(T x) + log|det grad T(x)| - log p_t(x)``,
       whose error is second order in the step: the weights stay nearly even, so the ladder takes few
       levels and the mode weights' error does not pile up over them;
    3. where a group's ESS falls below ``resample_below`` of its size: ``log Z_g += log mean w``, resample
       (``systematic`` along a Hilbert curve, or ``multinomial``) and set ``w = 1``;
    4. ``steps_per_level`` MALA moves at ``t'`` (``move="langevin"``: the unadjusted kick, which leaves
       ``p_{t'}`` invariant only approximately), their step adapted to ``accept_target``.

    At the end ``Z_g = exp(log Z_g) mean w`` estimates the normalizing constant of ``p_{t_end}`` relative
    to ``start``'s (1 for the exact, normalized mixture) without bias for a fixed ladder; the groups are
    independent populations, so ``log Z = log mean_g Z_g`` comes with a standard error from their spread
    (delta method). The groups are pooled by one systematic resampling (Hilbert order) with weights
    ``Z_g W_i`` and ``final_steps`` MALA moves at ``t_end`` spread the copies. The field needs a log-density.

    NFE (per particle): ``levels * (steps_per_level + 1) + final_steps``, plus the adaptive search's
    evaluations of its ``SEARCH_POINTS`` particles spread over all ``N`` (``info["search_nfe"]``), plus with
    ``flow`` one score Jacobian for each step between levels (``Field.score_jacobian``: one evaluation of an
    exact mixture's closed form, ``D`` by automatic differentiation).

    Args:
        field: a field with a log-density (``Field.has_density``).
        x: ``(N, D)`` particles drawn from ``start``.
        grid: times from ``t_0`` down to ``t_end``; with ``adaptive`` only its ends are needed, and every
            time in it is a level the ladder stops at.
        start: the law ``x`` was drawn from (a density the first weight divides by).
        steps_per_level: MALA moves at each level.
        final_steps: MALA moves after the final pooling.
        move: ``mala`` or ``langevin``.
        kernel: how the particles go from one level to the next: ``flow`` (the default), ``stay`` or ``reverse``
            (``KERNELS``, ``smc_kernels``).
        adaptive: choose the levels by ``target_ess``.
        target_ess: the conditional ESS fraction each adaptive step keeps.
        resample_below: resample a group when its ESS fraction falls below this.
        resampling: ``systematic`` or ``multinomial``.
        order: ``hilbert`` reads the particles along a Hilbert curve when resampling (``resampling``:
            a mode's mass then passes through almost unchanged), ``none`` in their stored order.
        groups: independent populations (at least 2: the standard error needs a spread); the divisor
            of ``N`` nearest it (``group_count``).
        eta_factor: the first move's step, ``eta_factor sigma(t_0)^2``.
        accept_target: the acceptance rate the step size is adapted to.
        adapt: adapt the step size (``False``: ``eta_factor sigma(t_0)^2`` throughout; with a fixed ladder
            the groups are then independent runs, and ``Z`` is exactly unbiased).
        backend: how an exact mixture's score and density are evaluated (``_steps.density_evaluator``).
        generator: the one source of randomness.
        callback: called with ``StepInfo`` after each level.
        return_path: keep the particles after each level.

    Returns:
        the result, with ``info``: ``log_z``, ``log_z_se``, ``times`` and ``sigma`` of the levels, ``ess``
        (each level's mean ESS fraction over the groups, after reweighting), ``resampled`` (per level),
        ``acceptance`` (per level), ``search_nfe``.
    """
    require_density(field, "smc")
    x = atleast_2d_points(x, start.dim)
    grid = check_grid(grid)
    n = x.shape[0]
    T, final = positive_int(steps_per_level, "steps_per_level"), int(final_steps)
    if final < 0:
        raise ValueError(f"final_steps must be >= 0, got {final_steps!r}")
    if move not in MOVES:
        raise ValueError(f"move must be one of {', '.join(MOVES)}, got {move!r}")
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    if resampling not in RESAMPLING:
        raise ValueError(f"resampling must be one of {', '.join(RESAMPLING)}, got {resampling!r}")
    target, threshold = _check_fraction(target_ess, "target_ess"), _check_fraction(resample_below, "resample_below")
    target_rate = check_accept_target(accept_target)
    G = group_count(n, positive_int(groups, "groups"))
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    adjust = move == "mala"
    x0 = xi = jacobian = x  # the kernel's terms at the current level, set before each step

    tracker = Tracker(field, x, callback, return_path)
    search_rows = torch.arange(0, n, max(1, n // SEARCH_POINTS), device=x.device)[:SEARCH_POINTS]
    search_evaluations = 0

    def step_to(t_new: float, rows: Tensor | None, evaluate_new) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The particles (``rows`` of them) after the kernel's step to ``t_new``, their score and
        ``log p_{t_new}`` (by ``evaluate_new``, at ``t_new``), and the log incremental weight
        (``smc_kernels``)."""
        pick = (lambda v: v) if rows is None else (lambda v: v[rows])
        y, correction = pick(x), 0.0
        if kernel == "reverse":
            y, correction = reverse_kernel(field.process, float(t), t_new, y, pick(x0), pick(xi))
        elif kernel == "flow":
            y, correction = flow_kernel(field.process, float(t), t_new, y, pick(s), pick(jacobian))
        score, log_p_new = evaluate_new(y)
        return y, score, log_p_new, (log_p_new - pick(log_p)).double() + correction

    def log_increment_of_search(t_new: float) -> Tensor:
        nonlocal search_evaluations
        search_evaluations += 1
        evaluate_new = density_evaluator(tracker, torch.tensor(t_new, dtype=torch.float64), backend,
                                         device=x.device, count=False)  # fmt: skip
        return step_to(t_new, search_rows, evaluate_new)[3]

    # level t_0: weights against the start law, then the ladder
    t = grid[0]
    evaluate = density_evaluator(tracker, t, backend, device=x.device)
    s, log_p = evaluate(x)
    log_w = (log_p - start.log_prob(x).to(log_p)).double()
    log_z = torch.zeros(G, dtype=torch.float64, device=x.device)
    h = eta_factor * float(field.process.sigma(t)) ** 2
    if not h > 0:
        raise ValueError("smc needs sigma > 0 at the first level")
    h = positive_float(h, "the first step size")
    times, ess, resampled, acceptance = [], [], [], []
    anchors = grid[1:].tolist()
    last_step = float(grid[0] - grid[-1])  # the first trial: the whole way
    level = 0
    while True:
        # resample the groups whose weights have grown uneven (log Z_g takes their mean first)
        lw = log_w.view(G, -1)
        ess_fraction = effective_sample_size(lw) / lw.shape[1]
        low = ess_fraction < threshold
        times.append(float(t))
        ess.append(float(ess_fraction.mean()))
        resampled.append(bool(low.any()))
        if low.any():
            log_z = log_z + torch.where(low, torch.logsumexp(lw, 1) - math.log(lw.shape[1]), 0.0)
            key = hilbert_index(x).view(G, -1) if order == "hilbert" else None
            idx = resample_groups(lw, generator, scheme=resampling, key=key)
            keep = torch.arange(lw.shape[1], device=x.device).expand_as(idx)
            idx = torch.where(low[:, None], idx, keep)
            rows = (idx + torch.arange(G, device=x.device)[:, None] * lw.shape[1]).reshape(-1)
            x, s, log_p = x[rows], s[rows], log_p[rows]
            log_w = torch.where(low[:, None], torch.zeros_like(lw), lw).reshape(-1)
        # moves that leave p_t invariant spread the copies
        x, s, log_p, h, rate = mala_moves(evaluate, x, s, log_p, h, T, generator, adjust=adjust, adapt=adapt,
                                          target=target_rate)  # fmt: skip
        acceptance.append(rate)
        if tracker.callback is not None:  # the weights of the whole population: Z_g W_i, normalized
            pooled = log_z[:, None] + log_w.view(G, -1) - torch.logsumexp(log_w.view(G, -1), 1, keepdim=True)
            tracker.step(level, t, x, (pooled - torch.logsumexp(pooled.reshape(-1), 0)).reshape(-1))
        else:
            tracker.step(level, t, x)
        level += 1
        if not anchors:
            break
        # the kernel's terms at x, then the next level and the incremental weights
        if kernel == "reverse":
            x0 = denoise_from_score(x.double(), s.double(), field.process.alpha(t), field.process.sigma(t))
            xi = noise(x, generator)
        elif kernel == "flow":
            jacobian = tracker.field.score_jacobian(x, t)
        t_next = anchors[0]
        if adaptive and not (kernel == "reverse" and _reaches(log_increment_of_search, log_w[search_rows], t_next,
                                                              target)):
            # the reverse kernel's error is set by the ratio sigma_t / sigma_t', so its steps shrink with
            # sigma and never reach sigma = 0: each level first tries the last stretch by reweighting alone
            t_next = next_time(log_increment_of_search, log_w[search_rows], float(t), t_next, target,
                               guess=last_step)  # fmt: skip
        last_step = float(t) - t_next
        if t_next == anchors[0]:
            anchors.pop(0)
        evaluate = density_evaluator(tracker, torch.tensor(t_next, dtype=torch.float64), backend, device=x.device)
        x, s, log_p, increment = step_to(t_next, None, evaluate)
        log_w = log_w + increment
        t = torch.tensor(t_next, dtype=torch.float64)

    # pool the groups: one systematic resampling with weights Z_g W_i, then moves at t_end
    lw = log_w.view(G, -1)
    log_z = log_z + torch.logsumexp(lw, 1) - math.log(lw.shape[1])
    log_z_all = float(torch.logsumexp(log_z, 0) - math.log(G))
    ratio = torch.exp(log_z - log_z_all)  # Z_g / Z, mean 1
    log_z_se = float(ratio.std() / math.sqrt(G))
    pooled = (log_z[:, None] + lw - torch.logsumexp(lw, 1, keepdim=True)).reshape(1, -1)
    key = hilbert_index(x)[None] if order == "hilbert" else None
    rows = resample_groups(pooled, generator, scheme="systematic", key=key)[0]
    # systematic resampling lists the copies in the order it read them: shuffled, the rows are exchangeable
    rows = rows[torch.randperm(n, generator=generator, device=generator_device(generator)).to(rows.device)]
    x, s, log_p = x[rows], s[rows], log_p[rows]
    x, s, log_p, h, _ = mala_moves(evaluate, x, s, log_p, h, final, generator, adjust=adjust, adapt=adapt,
                                   target=target_rate)  # fmt: skip
    if final:
        tracker.step(level, t, x)
    search_nfe = search_evaluations * len(search_rows) / n
    tracker.field.count(math.ceil(search_nfe))
    sigma = field.process.sigma(torch.tensor(times, dtype=torch.float64)).tolist()
    info = {
        "log_z": log_z_all,
        "log_z_se": log_z_se,
        "levels": len(times),
        "times": times,
        "sigma": sigma,
        "ess": ess,
        "resampled": resampled,
        "acceptance": acceptance,
        "step_size": h,
        "search_nfe": search_nfe,
        "groups": G,
    }
    return tracker.result(x, info)
