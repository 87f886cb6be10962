"""The pieces the samplers share, each written once: the result and the callback payload, the
bookkeeping (NFE, path, callback), the grid checks, and the steps more than one sampler takes (the
Euler and Heun steps of the probability-flow ODE, the Euler–Maruyama step of the reverse family,
the Langevin kick and a level of Langevin steps, the data-prediction step of the multistep solvers)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from ..core.fields import CountingField, Field, NoDensityError
from ..core.processes import Process
from ..core.tensors import atleast_2d_points, generator_device, rand_from, randn_like
from ..kernels import check_backend, mixture_langevin, mixture_score_log_prob, triton_runs_on

__all__ = [
    "SampleResult",
    "StepInfo",
    "Tracker",
    "check_grid",
    "check_level_grid",
    "noise",
    "euler",
    "heun_step",
    "em_step",
    "STEP_RULES",
    "LANGEVIN_BACKENDS",
    "langevin_kick",
    "langevin_step_sizes",
    "langevin_backend",
    "langevin_steps",
    "ACCEPT_TARGET",
    "MALAMove",
    "mala_move",
    "MALARun",
    "mala_moves",
    "generator_device",
    "DENSITY_BACKENDS",
    "density_evaluator",
    "adapt_step_size",
    "require_density",
    "LogSNRLevel",
    "log_snr_levels",
    "data_prediction_step",
]


# --- what a sampler returns, and its bookkeeping ----------------------------------------------------


@dataclass
class SampleResult:
    """What every sampler returns.

    Attributes:
        x: final particles, ``(N, D)``.
        nfe: field evaluations per particle path.
        path: particles after each grid point, ``(len(path), N, D)``, only when asked for.
        kernel: the fused backend that moved the particles with the exact mixture's closed form in
            place of the field's ``score`` (``"triton"``, ``"compile"``, ``"torch"``), or ``None``.
        info: what a sampler reports about its run beyond the particles (JSON-able: MALA's acceptance
            rates, SMC's effective sample sizes and ``log Z``), or ``None``.
    """

    x: Tensor
    nfe: int
    path: Tensor | None = None
    kernel: str | None = None
    info: dict | None = None


@dataclass
class StepInfo:
    """Callback payload after step ``i``: the particles ``x`` now at time ``t``, with their normalized
    log-weights where the sampler weighs them (SMC; ``None``: equal weights)."""

    i: int
    t: float
    x: Tensor
    log_w: Tensor | None = None


class Tracker:
    """Counts NFE, records the path when asked, and calls the callback: the bookkeeping every
    sampler shares, kept out of the algorithm's body. Given the ``grid``, the field it hands out
    has the process's coefficients at every grid time precomputed (``Field.at_times``)."""

    def __init__(
        self,
        field: Field,
        x: Tensor,
        callback: Callable[[StepInfo], None] | None,
        record: bool,
        grid: Tensor | None = None,
    ):
        self.field = CountingField(field.at_times(grid) if grid is not None else field)
        self.callback = callback
        self.kernel: str | None = None
        self._path = [x.clone()] if record else None

    def step(self, i: int, t: float | Tensor, x: Tensor, log_w: Tensor | None = None) -> None:
        if self._path is not None:
            self._path.append(x.clone())
        if self.callback is not None:
            self.callback(StepInfo(i, float(t), x, log_w))

    def result(self, x: Tensor, info: dict | None = None) -> SampleResult:
        path = torch.stack(self._path) if self._path is not None else None
        return SampleResult(x, self.field.nfe, path, self.kernel, info)


def check_grid(grid: Tensor, name: str = "grid", *, levels: bool = False) -> Tensor:
    """Validate a grid: 1-D, at least one time, finite, and strictly descending, or non-increasing for
    a grid of ``levels`` (Langevin repeats a time). Returns float64."""
    grid = torch.as_tensor(grid, dtype=torch.float64)
    if grid.ndim != 1 or grid.numel() < 1:
        what = "a non-empty 1-D tensor of times" if levels else "a 1-D tensor of times"
        raise ValueError(f"{name} must be {what}, got shape {tuple(grid.shape)}")
    if not torch.isfinite(grid).all():
        raise ValueError(f"{name} contains NaN or inf")
    if levels and (grid[1:] > grid[:-1]).any():
        raise ValueError(f"{name} must be non-increasing")
    if not levels and grid.numel() > 1 and not (grid[1:] < grid[:-1]).all():
        raise ValueError(f"{name} must be strictly descending")
    return grid


def check_level_grid(grid: Tensor, name: str = "grid") -> Tensor:
    """``check_grid`` for a grid of levels (non-increasing)."""
    return check_grid(grid, name, levels=True)


def noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Gaussian noise like ``x`` from the one generator of the run, drawn on its device and moved to ``x``'s."""
    return randn_like(x, generator)


# --- steps of the probability-flow ODE and of the reverse family ---------------------------------------


def euler(x: Tensor, h: Tensor, d: Tensor) -> Tensor:
    """The Euler increment ``x + h d`` (``h`` a float64 time step, cast only here)."""
    return x + h.to(x.dtype) * d


def heun_step(field: Field, x: Tensor, t: Tensor, t_next: Tensor, d: Tensor | None = None) -> Tensor:
    """One Heun step of the PF-ODE (explicit trapezoid; Karras et al. 2022, Alg. 1 lines 4-8):

    .. math::
        d = v(x, t), \\quad \\tilde x = x + h d, \\quad x' = x + \\tfrac h2 \\big(d + v(\\tilde x, t')\\big).

    Into ``sigma = 0`` the corrector is skipped, as in EDM: it would cost one more evaluation for a
    last step whose Euler error is already ``O(h^2)``, and a learned field is undefined there. ``d``: the
    velocity at ``(x, t)`` where the caller has it already (steps from one point to several times)."""
    h = t_next - t
    d = field.velocity(x, t) if d is None else d
    x_next = euler(x, h, d)
    if float(field.coefficients_at(t_next).sigma) == 0.0:
        return x_next
    d_next = field.velocity(x_next, t_next)
    return euler(x, h, 0.5 * d + 0.5 * d_next)


def em_step(field: Field, x: Tensor, t: Tensor, t_next: Tensor, lam: float, xi: Tensor | None) -> Tensor:
    """One Euler–Maruyama step of the reverse family (Song et al. 2021, eq. 6) from ``t`` down to ``t_next``:

    .. math::
        x' = x + h \\Big[f x - \\tfrac{1 + \\lambda^2}{2} g^2 s\\Big] + \\lambda\\, g \\sqrt{|h|}\\, \\xi .

    The drift is written through the velocity ``v = f x - g^2 s / 2`` (one evaluation):
    ``f x - (1 + lam^2)/2 g^2 s = v + lam^2 (v - f x)``; with ``lam = 0`` this is the Euler step of the
    PF-ODE, bit for bit. ``xi`` is the step's standard normal draw, or ``None`` for no noise.
    """
    c = field.coefficients_at(t)
    h = t_next - t  # negative: reverse time
    v = field.velocity(x, t)
    x_next = euler(x, h, v + lam**2 * (v - c.f.to(x.dtype) * x))
    if xi is None:
        return x_next
    return x_next + (lam * torch.sqrt(c.g2 * -h)).to(x.dtype) * xi


# --- Langevin: the kick, the step sizes of a ladder, a level of steps -------------------------------

STEP_RULES = ("sigma2", "ncsn")
LANGEVIN_BACKENDS = ("auto", "eager", "torch", "compile", "triton")


def langevin_kick(x: Tensor, drift: Tensor, eta: float, xi: Tensor | None) -> Tensor:
    """One unadjusted Langevin step ``x + eta drift + sqrt(2 eta) xi`` (``xi = None``: no noise).

    The one kick behind plain and annealed Langevin, SVGD with noise, and the PC corrector.
    """
    eta = float(eta)
    x = x + eta * drift
    return x + math.sqrt(2.0 * eta) * xi if xi is not None else x


def langevin_step_sizes(process: Process, grid: Tensor, eta_factor: float, step_rule: str) -> list[float]:
    """``eta_i = eta_factor sigma(t_i)^2`` (``sigma2``) or, with ``ncsn``, divided by the last
    level's ``sigma^2``: the schedule of Song & Ermon 2019, Alg. 1, ``alpha_i = epsilon sigma_i^2 /
    sigma_L^2``. The kick ``x + eta s + sqrt(2 eta) z`` is their ``x + (alpha_i / 2) s + sqrt(alpha_i) z``
    with ``alpha_i = 2 eta_i``, so ``eta_factor`` is their ``epsilon / 2``."""
    if step_rule not in STEP_RULES:
        raise ValueError(f"step_rule must be one of {', '.join(STEP_RULES)}, got {step_rule!r}")
    sigma2 = process.sigma(grid) ** 2  # float64
    if step_rule == "ncsn":
        if float(sigma2[-1]) == 0.0:
            raise ValueError("step_rule 'ncsn' needs the last level's sigma > 0")
        sigma2 = sigma2 / sigma2[-1]
    return (eta_factor * sigma2).tolist()


def langevin_backend(backend: str, exact: bool, device: torch.device) -> str:
    """The backend of ``langevin_steps``: ``eager`` calls the field's ``score``; ``torch``, ``compile``
    and ``triton`` run the exact mixture's closed form (``kernels.mixture_langevin``) and need a field
    that is one (``exact``). ``auto``: ``triton`` on CUDA where it runs, else ``compile`` on CUDA, else
    ``eager``; always ``eager`` for a field that is not an exact mixture."""
    auto = ("triton" if triton_runs_on(device) else "compile") if exact and device.type == "cuda" else "eager"
    chosen = check_backend(backend, LANGEVIN_BACKENDS, device, auto)
    if chosen != "eager" and not exact:
        raise ValueError(f"backend {chosen!r} needs the exact field of a Gaussian mixture; use 'eager' or 'auto'")
    return chosen


def langevin_steps(
    tracker: Tracker,
    x: Tensor,
    t: Tensor,
    eta: float,
    steps: int,
    *,
    noise: bool = True,
    generator: torch.Generator | None = None,
    backend: str = "auto",
) -> Tensor:
    """``steps`` unadjusted Langevin kicks at the one time ``t`` (Roberts & Tweedie 1996, eq. 1.3):

    .. math::
        x \\leftarrow x + \\eta\\, s(x, t) + \\sqrt{2\\eta}\\,\\xi, \\qquad \\xi \\sim \\mathcal N(0, I)

    (``noise=False``: no ``xi``). The field is ``tracker.field``; where it is the exact field of a
    Gaussian mixture (``Field.exact_mixture``), ``langevin_backend`` may pick a fused kernel that runs
    the kicks with the mixture's closed form (the same dynamics; the evaluations are counted alike).
    """
    field = tracker.field
    # the mixture is needed only where a fused backend may run: asked for, or auto on CUDA
    may_fuse = backend not in ("eager", "auto") or (backend == "auto" and x.device.type == "cuda")
    p_t = field.exact_mixture(t) if may_fuse else None
    chosen = langevin_backend(backend, p_t is not None, x.device)
    if chosen == "eager":
        for _ in range(steps):
            xi = randn_like(x, generator) if noise else None
            x = langevin_kick(x, field.score(x, t), eta, xi)
        return x
    atleast_2d_points(x, p_t.dim)
    field.count(steps)
    tracker.kernel = chosen
    out = mixture_langevin(x, p_t.precision_terms(), eta, steps, noise=noise, generator=generator, backend=chosen)
    return out.to(x.dtype)


# --- Metropolis-adjusted Langevin: one move, its step size ---------------------------------------------

#: The acceptance rate MALA's step size is adapted to: the asymptotically optimal 0.574 of Roberts &
#: Rosenthal (1998, sec. 2), for targets that are products of many similar coordinates.
ACCEPT_TARGET = 0.574


def require_density(field: Field, sampler: str) -> None:
    """Stop, before any work, when ``field`` has no log-density: a Metropolis test and an importance
    weight are ratios of densities, which a score alone does not give."""
    if not field.has_density:
        inner = field
        while hasattr(inner, "inner"):  # wrappers (counting, another process) name the field they wrap
            inner = inner.inner
        raise NoDensityError(
            f"{sampler} needs a log-density, and this field ({type(inner).__name__}) has only a score; "
            "use an exact target or an energy model (--parameterization energy)"
        )


class MALAMove(NamedTuple):
    """The particles after one MALA move, with their score and log-density at the move's time (what the
    next move or weight reuses, so a move costs one evaluation), and which proposals were accepted."""

    x: Tensor
    score: Tensor
    log_p: Tensor
    accepted: Tensor


def mala_move(
    evaluate: Callable[[Tensor], tuple[Tensor, Tensor]],
    x: Tensor,
    score: Tensor,
    log_p: Tensor,
    h: float,
    generator: torch.Generator | None,
    *,
    adjust: bool = True,
) -> MALAMove:
    """One Metropolis-adjusted Langevin move (Roberts & Tweedie 1996, sec. 1.4.2; Besag 1994):

    .. math::
        y = x + h\\, s(x) + \\sqrt{2h}\\,\\xi, \\qquad
        \\log a = \\log p(y) - \\log p(x) - \\frac{|x - y - h\\, s(y)|^2}{4h} + \\frac{|\\xi|^2}{2},

    accepted where ``log u < log a`` (``u ~ U(0, 1)``): the Langevin kick of ``langevin_kick`` with the
    Metropolis–Hastings test that makes ``p`` exactly invariant for any ``h``; the two Gaussian terms are
    ``log q(x | y) - log q(y | x)`` for ``q(b | a) = N(b; a + h s(a), 2h I)``. ``adjust=False`` accepts
    every proposal (the unadjusted kick, one evaluation as well). ``score`` and ``log_p`` are ``x``'s;
    the proposal's come from one call of ``evaluate`` (``density_evaluator``). The test is in float64.
    """
    xi = randn_like(x, generator)
    y = langevin_kick(x, score, h, xi)
    s_y, lp_y = evaluate(y)
    if not adjust:
        return MALAMove(y, s_y, lp_y, torch.ones(x.shape[0], dtype=torch.bool, device=x.device))
    back = (x - y - h * s_y).to(torch.float64)
    log_a = (lp_y - log_p).to(torch.float64) - back.square().sum(1) / (4.0 * h) + 0.5 * xi.double().square().sum(1)
    u = rand_from(generator, (x.shape[0],), log_a)
    accepted = torch.log(u) < log_a  # NaN log a (an overflowing proposal) is rejected
    keep = accepted[:, None]
    x, score, log_p = torch.where(keep, y, x), torch.where(keep, s_y, score), torch.where(accepted, lp_y, log_p)
    return MALAMove(x, score, log_p, accepted)


class MALARun(NamedTuple):
    """The particles after a run of MALA moves at one level, their score and log-density, the step size
    the adaptation ended with, and the mean acceptance rate of the moves (NaN for no move)."""

    x: Tensor
    score: Tensor
    log_p: Tensor
    h: float
    acceptance: float


def mala_moves(
    evaluate: Callable[[Tensor], tuple[Tensor, Tensor]],
    x: Tensor,
    score: Tensor,
    log_p: Tensor,
    h: float,
    steps: int,
    generator: torch.Generator | None,
    *,
    adjust: bool = True,
    adapt: bool = True,
    target: float = ACCEPT_TARGET,
) -> MALARun:
    """``steps`` moves of ``mala_move`` at one level, the step size adapted after each to the population's
    acceptance rate (``adapt_step_size``; only for adjusted moves, which have one)."""
    total = 0.0
    for _ in range(steps):
        move = mala_move(evaluate, x, score, log_p, h, generator, adjust=adjust)
        x, score, log_p = move.x, move.score, move.log_p
        rate = float(move.accepted.double().mean())
        total += rate
        if adjust and adapt:
            h = adapt_step_size(h, rate, target)
    return MALARun(x, score, log_p, h, total / steps if steps else float("nan"))


DENSITY_BACKENDS = ("auto", "eager", "torch", "compile")


def density_evaluator(
    tracker: Tracker, t: Tensor, backend: str = "auto", *, device: torch.device | None = None, count: bool = True
) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """``y -> (score, log p_t(y))`` at the one time ``t``, each call one counted evaluation (none with
    ``count=False``). ``eager`` calls the field's ``score_and_log_prob``; ``torch`` and ``compile`` run the
    exact mixture's closed form (``kernels.mixture_score_log_prob``: the density from the score's own
    log-sum-exp) and need a field that is one. ``auto``: ``compile`` on CUDA for an exact mixture (on the
    particles' ``device``), else ``eager``: on the CPU the exact field's own pass (one triangular solve
    per component, the density from the same log-sum-exp) was 1.5-2x faster than the batched products
    of ``torch`` (20,000 particles, 2-D and 10-D)."""
    field = tracker.field
    if backend not in DENSITY_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(DENSITY_BACKENDS)}, got {backend!r}")
    on_cuda = device is not None and torch.device(device).type == "cuda"
    fuse = backend in ("torch", "compile") or (backend == "auto" and on_cuda)
    p_t = field.exact_mixture(t) if fuse else None
    if p_t is None:
        if backend in ("torch", "compile"):
            raise ValueError(f"backend {backend!r} needs the exact field of a Gaussian mixture; use 'eager' or 'auto'")
        inner = field if count else field.inner
        return lambda y: inner.score_and_log_prob(y, t)
    chosen = backend if backend != "auto" else "compile"
    terms = tuple(v.to(device) for v in p_t.precision_terms()) if device is not None else p_t.precision_terms()
    tracker.kernel = chosen

    def evaluate(y: Tensor) -> tuple[Tensor, Tensor]:
        if count:
            field.count(1)
        return mixture_score_log_prob(y, terms, backend=chosen)

    return evaluate


def adapt_step_size(h: float, rate: float, target: float = ACCEPT_TARGET) -> float:
    """The next step size from the population's acceptance rate of the last move: a stochastic-
    approximation step on ``log h`` (Andrieu & Thoms 2008, sec. 4.2; the population's rate, not one
    chain's, so no diminishing gain is needed), ``log h <- log h + 2 (rate - target)``: too many
    rejections shrink ``h``, too few grow it, by at most ``e^2`` a move."""
    return h * math.exp(2.0 * (rate - target))


# --- the multistep solvers' exponential-integrator step in log-SNR -----------------------------------


class LogSNRLevel(NamedTuple):
    """A grid time's coefficients as Python floats (computed in float64)."""

    alpha: float
    sigma: float
    lam: float  # log(alpha / sigma); +inf where sigma = 0


def log_snr_levels(process: Process, grid: Tensor) -> list[LogSNRLevel]:
    """``alpha``, ``sigma`` and ``lambda = log(alpha / sigma)`` at every time of ``grid``."""
    alpha, sigma = process.alpha(grid), process.sigma(grid)
    lam = torch.log(alpha) - torch.log(sigma)  # log(0) = -inf gives +inf at sigma = 0
    return [LogSNRLevel(float(a), float(s), float(l)) for a, s, l in zip(alpha, sigma, lam, strict=True)]


def data_prediction_step(x: Tensor, d: Tensor, a: LogSNRLevel, b: LogSNRLevel) -> Tensor:
    """The first-order data-prediction step from level ``a`` to ``b`` (``b.sigma > 0``; Lu et al. 2022b,
    eq. 9): ``x_b = (sigma_b / sigma_a) x_a + alpha_b (1 - e^{-h}) D``, ``h = lambda_b - lambda_a``."""
    h = b.lam - a.lam
    return (b.sigma / a.sigma) * x - (b.alpha * math.expm1(-h)) * d
