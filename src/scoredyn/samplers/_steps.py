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

from ..core.fields import CountingField, Field
from ..core.processes import Process
from ..core.tensors import atleast_2d_points, randn_like
from ..kernels import check_backend, mixture_langevin, triton_runs_on

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
    """

    x: Tensor
    nfe: int
    path: Tensor | None = None
    kernel: str | None = None


@dataclass
class StepInfo:
    """Callback payload after step ``i``: the particles ``x`` now at time ``t``."""

    i: int
    t: float
    x: Tensor


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

    def step(self, i: int, t: float | Tensor, x: Tensor) -> None:
        if self._path is not None:
            self._path.append(x.clone())
        if self.callback is not None:
            self.callback(StepInfo(i, float(t), x))

    def result(self, x: Tensor) -> SampleResult:
        path = torch.stack(self._path) if self._path is not None else None
        return SampleResult(x, self.field.nfe, path, self.kernel)


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
    """Gaussian noise like ``x`` from the one generator of the run."""
    return randn_like(x, generator)


# --- steps of the probability-flow ODE and of the reverse family ---------------------------------------


def euler(x: Tensor, h: Tensor, d: Tensor) -> Tensor:
    """The Euler increment ``x + h d`` (``h`` a float64 time step, cast only here)."""
    return x + h.to(x.dtype) * d


def heun_step(field: Field, x: Tensor, t: Tensor, t_next: Tensor) -> Tensor:
    """One Heun step of the PF-ODE (explicit trapezoid; Karras et al. 2022, Alg. 1 lines 4-8):

    .. math::
        d = v(x, t), \\quad \\tilde x = x + h d, \\quad x' = x + \\tfrac h2 \\big(d + v(\\tilde x, t')\\big).

    Into ``sigma = 0`` the corrector is skipped, as in EDM: it would cost one more evaluation for a
    last step whose Euler error is already ``O(h^2)``, and a learned field is undefined there."""
    h = t_next - t
    d = field.velocity(x, t)
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
