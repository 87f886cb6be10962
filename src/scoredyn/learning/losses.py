"""Training objectives: which times to train at, what to regress, and with which weight.

Every objective here is a weighted score-matching loss in disguise (Vincent 2011; Song et al. 2021,
eq. 7): with ``x_t = alpha_t x_0 + sigma_t eps`` it equals, up to a constant in ``theta``,

.. math::
    \\mathbb E_t\\, \\lambda(t)\\, \\mathbb E_{x_0, \\epsilon}
    \\big\\| s_\\theta(x_t, t) - \\nabla_{x_t} \\log p(x_t \\mid x_0) \\big\\|^2,
    \\qquad \\nabla_{x_t} \\log p(x_t \\mid x_0) = -\\epsilon / \\sigma_t,

and each class states its ``lambda(t)``. A step is split in two: ``draw(x0, generator)`` takes ALL
its randomness (times ``"t"``, importance weights ``"w"``, noise ``"eps"``, probes ``"v"``), each with
leading dimension N, so a trainer can draw for a global batch and hand every rank a slice;
``loss(field, x0, y, draws)`` is then deterministic and returns the per-sample loss (N,), already
weighted, summed over dimensions (so ``vlb`` is in nats). Losses are computed in ``x0``'s dtype;
times and weights are float64 on the CPU, like every process coefficient.

Times (the seed text's ``pi(t)``): uniform with a cut-off ``t_min``, importance sampling, EDM's
log-normal, or the integers ``1..T`` of ``DDPMSchedule``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import PARAMETERIZATIONS, Field, Prediction, coefficients
from ..core.processes import Process
from ..likelihood import vlb_kernel, vlb_prior_term, vlb_step_term, vlb_terms

__all__ = [
    "TimeSampler",
    "UniformTime",
    "ImportanceTime",
    "LogNormalTime",
    "DiscreteTime",
    "Objective",
    "OBJECTIVES",
    "OBJECTIVE_NAMES",
    "TIME_CHOICES",
    "check",
    "make_objective",
    "vlb_terms",
]

TIME_CHOICES: tuple[str, ...] = ("default", "uniform", "importance", "lognormal")


# --- randomness: drawn on the generator's device, times kept in float64 on the CPU ------------------


def _device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _rand(n: int, generator: torch.Generator | None) -> Tensor:
    return torch.rand(n, generator=generator, dtype=torch.float64, device=_device(generator)).cpu()


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    z = torch.randn(shape, generator=generator, dtype=like.dtype, device=_device(generator))
    return z.to(like.device)


def _num_steps(process: Process) -> int | None:
    """``T`` of a discrete schedule (DDPMSchedule), ``None`` for a continuous process."""
    return getattr(process, "num_steps", None)


# --- time samplers -------------------------------------------------------------------------------


class TimeSampler:
    """Draws ``n`` training times and per-sample weights, both ``(n,)`` float64."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


def _continuous_range(process: Process, t_min: float, who: str) -> tuple[float, float]:
    steps = _num_steps(process)
    if steps is not None:
        raise ValueError(f"{who} draws continuous times, but {process.name} is discrete: use DiscreteTime")
    if not process.t_min <= t_min < process.t_max:
        raise ValueError(f"t_min must be in [{process.t_min}, {process.t_max}), got {t_min}")
    return float(t_min), float(process.t_max)


class UniformTime(TimeSampler):
    """``t ~ U[t_min, t_max]``: the seed text's time cut-off ``pi = Unif([eta, T])``; weight 1."""

    def __init__(self, process: Process, t_min: float = 1e-3) -> None:
        self.t_min, self.t_max = _continuous_range(process, t_min, "UniformTime")

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        t = self.t_min + (self.t_max - self.t_min) * _rand(n, generator)
        return t, torch.ones_like(t)


class ImportanceTime(TimeSampler):
    """``t ~ q(t) ∝ density(t)`` on ``[t_min, t_max]``, weighted so the uniform-time objective is unbiased.

    .. math::
        \\frac{1}{t_{max} - t_{min}} \\int l(t)\\, dt = \\mathbb E_{t \\sim q}\\big[w(t)\\, l(t)\\big],
        \\qquad w(t) = \\frac{1}{(t_{max} - t_{min})\\, q(t)}.

    ``q`` is tabulated on ``grid_size`` points (trapezoid masses) and drawn by inverting the
    piecewise-linear CDF; the density so drawn is constant on each cell, and ``w`` uses that density,
    so the estimator is exactly unbiased (the tabulation only shapes its variance).

    Args:
        process: the process (its ``t_max``).
        density: ``t (M,) float64 -> (M,)``, finite, ``>= 0``, zero at isolated points at most;
            need not be normalized.
        t_min: the cut-off.
        grid_size: tabulation points.
    """

    def __init__(
        self, process: Process, density: Callable[[Tensor], Tensor], t_min: float = 1e-3, grid_size: int = 4096
    ) -> None:
        self.t_min, self.t_max = _continuous_range(process, t_min, "ImportanceTime")
        t = torch.linspace(self.t_min, self.t_max, grid_size, dtype=torch.float64)
        q = torch.as_tensor(density(t), dtype=torch.float64)
        dt = torch.diff(t)
        mass = 0.5 * (q[1:] + q[:-1]) * dt  # trapezoid rule, one cell at a time
        if not (torch.isfinite(q).all() and (q >= 0).all() and (mass > 0).all()):
            span = f"[{self.t_min}, {self.t_max}]"
            raise ValueError(f"density must be finite, >= 0, and not vanish on an interval of {span}")
        cdf = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(mass, 0)])
        self._grid, self._cdf = t, cdf / cdf[-1]
        self._q = mass / cdf[-1] / dt  # the density actually drawn, per cell

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        u = _rand(n, generator)
        i = (torch.searchsorted(self._cdf, u, right=True) - 1).clamp(0, len(self._q) - 1)  # cell of u
        frac = (u - self._cdf[i]) / (self._cdf[i + 1] - self._cdf[i])
        t = self._grid[i] + frac * (self._grid[i + 1] - self._grid[i])
        return t, 1.0 / ((self.t_max - self.t_min) * self._q[i])


EDM_SIGMA_DATA = 0.5  # the data scale for which Karras et al. 2022 chose P_mean = -1.2, P_std = 1.2


class LogNormalTime(TimeSampler):
    """EDM's noise distribution (Karras et al. 2022, sec. 5, Table 1): ``ln sigma_hat ~ N(P_mean, P_std^2)``.

    ``sigma_hat = sigma / alpha`` is EDM's ``sigma`` of the scaled process; the time is the one with
    ``lambda(t) = log(alpha / sigma) = -ln sigma_hat``, clamped to ``[t_min, t_max]``; weight 1.
    """

    def __init__(self, process: Process, p_mean: float = -1.2, p_std: float = 1.2) -> None:
        _continuous_range(process, process.t_min, "LogNormalTime")
        if not p_std > 0:
            raise ValueError(f"p_std must be positive, got {p_std}")
        self.process, self.P_mean, self.P_std = process, float(p_mean), float(p_std)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        z = torch.randn(n, generator=generator, dtype=torch.float64, device=_device(generator)).cpu()
        ln_sigma_hat = self.P_mean + self.P_std * z
        t = self.process.log_snr_to_t(-ln_sigma_hat).clamp(self.process.t_min, self.process.t_max)
        return t, torch.ones_like(t)


class DiscreteTime(TimeSampler):
    """``t`` uniform on the integers ``1..T`` of ``DDPMSchedule`` (Ho et al. 2020, Algorithm 1); weight 1."""

    def __init__(self, process: Process) -> None:
        steps = _num_steps(process)
        if steps is None:
            raise ValueError(f"DiscreteTime needs the discrete DDPMSchedule process, got {process!r}")
        self.T = int(steps)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        t = torch.randint(1, self.T + 1, (n,), generator=generator, device=_device(generator))
        t = t.cpu().to(torch.float64)
        return t, torch.ones_like(t)


# --- objectives ----------------------------------------------------------------------------------


def _sq(r: Tensor) -> Tensor:
    """``||r||^2`` per sample (a sum over dimensions)."""
    return (r**2).sum(1)


class Objective:
    """One training objective on one process (see ``make_objective`` for the options).

    A subclass sets ``name``, ``paper``, ``default_parameterization`` and ``default_time``, gives
    ``lam_over_sigma2`` (its score-matching weight ``lambda(t)`` over ``sigma(t)^2``, the density that
    ``time="importance"`` draws from), and either ``error`` (a regression on the prediction at
    ``x_t``) or its own ``loss``.
    """

    name: str = ""
    paper: str = ""
    default_parameterization: str = "eps"
    default_time: str = "uniform"

    def __init__(
        self,
        process: Process,
        *,
        time: str | TimeSampler = "default",
        t_min: float = 1e-3,
        p_mean: float = -1.2,
        p_std: float = 1.2,
        probes: int = 1,
        sigma_data: float = 0.5,
    ) -> None:
        check(self.name, process, time=time if isinstance(time, str) else "default", probes=probes)
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be positive, got {sigma_data}")
        self.process, self.probes, self.sigma_data = process, int(probes), float(sigma_data)
        self.time = time if isinstance(time, TimeSampler) else self._time_sampler(time, t_min, p_mean, p_std)

    def _time_sampler(self, time: str, t_min: float, p_mean: float, p_std: float) -> TimeSampler:
        if _num_steps(self.process) is not None:
            return DiscreteTime(self.process)
        time = self.default_time if time == "default" else time
        if time == "lognormal":
            # EDM's P_mean is stated for images with sigma_data = 0.5; the noise levels that matter
            # scale with the data, so the log-normal is applied in units of the data's scale.
            return LogNormalTime(self.process, p_mean + math.log(self.sigma_data / EDM_SIGMA_DATA), p_std)
        if time == "importance":
            return ImportanceTime(self.process, self.lam_over_sigma2, t_min)
        return UniformTime(self.process, t_min)

    def lam_over_sigma2(self, t: Tensor) -> Tensor:
        """``lambda(t) / sigma(t)^2`` (float64): the weight over the conditional score's magnitude."""
        raise NotImplementedError

    def lam(self, t: Tensor) -> Tensor:
        """The score-matching weight ``lambda(t)`` of this objective (float64)."""
        return self.process.sigma(t) ** 2 * self.lam_over_sigma2(t)

    def draw(self, x0: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """All the randomness of one step for the batch ``x0`` (N, D): ``t`` (N,), ``w`` (N,), ``eps`` (N, D)."""
        t, w = self.time.sample(x0.shape[0], generator)
        return {"t": t, "w": w, "eps": _randn(tuple(x0.shape), generator, x0)}

    def loss(self, field: Field, x0: Tensor, y: Tensor | None, draws: dict[str, Tensor]) -> Tensor:
        """Per-sample loss (N,): ``w * error(field.predict(x_t, t, y))`` with ``x_t = alpha x0 + sigma eps``."""
        t, eps = draws["t"], draws["eps"]
        alpha, sigma, _, _ = coefficients(self.process, t, x0)
        pred = field.predict(alpha * x0 + sigma * eps, t, y)
        return draws["w"].to(x0) * self.error(pred, x0, eps)

    def error(self, pred: Prediction, x0: Tensor, eps: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(process={self.process!r}, time={type(self.time).__name__})"


class EpsObjective(Objective):
    """DDPM's simple loss (Ho et al. 2020, eq. 14): noise prediction.

    .. math::
        \\| \\hat\\epsilon_\\theta(x_t, t) - \\epsilon \\|^2, \\qquad \\lambda(t) = \\sigma_t^2 .
    """

    name, paper, default_parameterization = "eps", "Ho et al. 2020, eq. 14 (L_simple)", "eps"

    def lam_over_sigma2(self, t):
        return torch.ones_like(t)

    def error(self, pred, x0, eps):
        return _sq(pred.eps - eps)


class DSMObjective(Objective):
    """Denoising score matching (Vincent 2011; Song & Ermon 2019, sec. 4.2, ``lambda(sigma) = sigma^2``).

    .. math::
        \\sigma_t^2 \\Big\\| s_\\theta(x_t, t) + \\frac{\\epsilon}{\\sigma_t} \\Big\\|^2
        = \\| \\sigma_t s_\\theta + \\epsilon \\|^2, \\qquad \\lambda(t) = \\sigma_t^2 .
    """

    name, paper, default_parameterization = "dsm", "Vincent 2011; Song & Ermon 2019, sec. 4.2", "score"

    def lam_over_sigma2(self, t):
        return torch.ones_like(t)

    def error(self, pred, x0, eps):
        return _sq(pred.sigma * pred.score + eps)


class X0Objective(Objective):
    """Data prediction: ``||x0hat - x0||^2``; with ``x0hat = (x + sigma^2 s) / alpha`` (Tweedie),
    ``lambda(t) = sigma_t^4 / alpha_t^2``."""

    name, paper, default_parameterization = "x0", "Karras et al. 2022, eq. 2", "x0"

    def lam_over_sigma2(self, t):
        return self.process.sigma_hat(t) ** 2

    def error(self, pred, x0, eps):
        return _sq(pred.x0 - x0)


class VObjective(Objective):
    """Velocity prediction (Salimans & Ho 2022, sec. 4): ``v = alpha eps - sigma x0``.

    .. math::
        \\| \\hat v_\\theta - v \\|^2, \\qquad
        \\lambda(t) = \\sigma_t^2 \\Big( \\frac{\\alpha_t^2 + \\sigma_t^2}{\\alpha_t} \\Big)^2 .
    """

    name, paper, default_parameterization = "v", "Salimans & Ho 2022, sec. 4", "v"

    def lam_over_sigma2(self, t):
        a, s = self.process.alpha(t), self.process.sigma(t)
        return ((a**2 + s**2) / a) ** 2

    def error(self, pred, x0, eps):
        return _sq(pred.v - (pred.alpha * eps - pred.sigma * x0))


class EDMObjective(Objective):
    """EDM's loss (Karras et al. 2022, eq. 8 and Table 1) in ``sigma_hat = sigma / alpha``.

    .. math::
        \\lambda_{EDM}(\\hat\\sigma) \\| D_\\theta - x_0 \\|^2, \\quad
        \\lambda_{EDM} = \\frac{\\hat\\sigma^2 + \\sigma_{data}^2}{(\\hat\\sigma \\sigma_{data})^2}, \\qquad
        \\lambda(t) = \\lambda_{EDM}\\, \\frac{\\sigma_t^4}{\\alpha_t^2}
        = \\sigma_t^2\\, \\frac{\\hat\\sigma^2 + \\sigma_{data}^2}{\\sigma_{data}^2} ;

    time ``lognormal`` by default (``ln sigma_hat ~ N(P_mean, P_std^2)``).
    """

    name, paper, default_parameterization = "edm", "Karras et al. 2022, eq. 8, Table 1", "edm"
    default_time = "lognormal"

    def lam_over_sigma2(self, t):
        return (self.process.sigma_hat(t) ** 2 + self.sigma_data**2) / self.sigma_data**2

    def error(self, pred, x0, eps):
        sigma_hat, sd = pred.sigma / pred.alpha, self.sigma_data
        lam_edm = (sigma_hat**2 + sd**2) / (sigma_hat * sd) ** 2
        return lam_edm[:, 0] * _sq(pred.x0 - x0)


class CFMObjective(Objective):
    """Conditional flow matching / rectified flow (Lipman et al. 2023, eq. 9; Liu et al. 2023, eq. 1).

    .. math::
        \\| \\hat u_\\theta(x_t, t) - (\\dot\\alpha_t x_0 + \\dot\\sigma_t \\epsilon) \\|^2, \\qquad
        \\lambda(t) = \\sigma_t^2 \\Big( \\frac{\\dot\\alpha_t \\sigma_t}{\\alpha_t} - \\dot\\sigma_t \\Big)^2
        \\;(= t^2 / (1-t)^2 \\text{ on Linear}) .
    """

    name, paper, default_parameterization = "cfm", "Lipman et al. 2023, eq. 9; Liu et al. 2023", "flow"

    def lam_over_sigma2(self, t):
        p = self.process
        return (p.d_alpha(t) * p.sigma_hat(t) - p.d_sigma(t)) ** 2

    def error(self, pred, x0, eps):
        return _sq(pred.flow - (pred.d_alpha * x0 + pred.d_sigma * eps))


# --- implicit score matching: the loss needs derivatives of the field in x ----------------------------


def _vjv(s: Tensor, x: Tensor, v: Tensor, create_graph: bool) -> tuple[Tensor, Tensor]:
    """``v^T (d s / d x) v`` and ``v^T s`` per sample (one backward pass; samples must not interact)."""
    vs = (v * s).sum(1)
    (jv,) = torch.autograd.grad(vs.sum(), x, create_graph=create_graph, retain_graph=True)
    return (jv * v).sum(1), vs


class _ImplicitObjective(Objective):
    """Objectives on ``x_t ~ p_t`` that differentiate the field in ``x``: ``sigma^2 * implicit(s)``.

    All equal ``(sigma^2 / 2) E_{p_t} ||s_theta - grad log p_t||^2`` up to a constant in ``theta``
    (Hyvarinen 2005, Theorem 1), so ``lambda(t) = sigma_t^2 / 2``; with the exact field the value is
    ``-(sigma^2 / 2) E ||grad log p_t||^2``.
    """

    default_parameterization = "score"

    def lam_over_sigma2(self, t):
        return torch.full_like(t, 0.5)

    def loss(self, field, x0, y, draws):
        t, eps = draws["t"], draws["eps"]
        outer_grad = torch.is_grad_enabled()  # evaluation under no_grad keeps no graph of the parameters
        with torch.enable_grad():
            alpha, sigma, _, _ = coefficients(self.process, t, x0)
            x = (alpha * x0 + sigma * eps).detach().requires_grad_(True)
            s = field.predict(x, t, y).score
            value = sigma[:, 0] ** 2 * self.implicit(s, x, draws, create_graph=outer_grad)
        return draws["w"].to(x0) * (value if outer_grad else value.detach())

    def implicit(self, s: Tensor, x: Tensor, draws: dict[str, Tensor], create_graph: bool) -> Tensor:
        raise NotImplementedError


class SSMObjective(_ImplicitObjective):
    """Sliced score matching (Song et al. 2019, eq. 7) on ``x_t ~ p_t``, Gaussian probes ``v``.

    .. math::
        \\sigma_t^2 \\frac{1}{M} \\sum_{m=1}^M \\Big[ v_m^\\top \\nabla_x (v_m^\\top s_\\theta)
        + \\tfrac12 (v_m^\\top s_\\theta)^2 \\Big], \\qquad \\lambda(t) = \\sigma_t^2 / 2 .
    """

    name, paper = "ssm", "Song et al. 2019 (Sliced Score Matching), eq. 7"

    def draw(self, x0, generator=None):
        d = super().draw(x0, generator)
        d["v"] = _randn((x0.shape[0], self.probes, x0.shape[1]), generator, x0)
        return d

    def implicit(self, s, x, draws, create_graph):
        total = torch.zeros_like(s[:, 0])
        for m in range(draws["v"].shape[1]):
            vjv, vs = _vjv(s, x, draws["v"][:, m], create_graph)
            total = total + vjv + 0.5 * vs**2
        return total / draws["v"].shape[1]


class ISMObjective(_ImplicitObjective):
    """Implicit score matching (Hyvarinen 2005, eq. 4) with the exact divergence (D backward passes).

    .. math::
        \\sigma_t^2 \\Big[ \\tfrac12 \\| s_\\theta \\|^2 + \\nabla_x \\cdot s_\\theta \\Big], \\qquad
        \\lambda(t) = \\sigma_t^2 / 2 .
    """

    name, paper = "ism", "Hyvarinen 2005, eq. 4"

    def implicit(self, s, x, draws, create_graph):
        div = torch.zeros_like(s[:, 0])
        for i in range(s.shape[1]):
            (row,) = torch.autograd.grad(s[:, i].sum(), x, create_graph=create_graph, retain_graph=True)
            div = div + row[:, i]
        return 0.5 * _sq(s) + div


class HutchinsonISMObjective(_ImplicitObjective):
    """Implicit score matching with Hutchinson's divergence (Hutchinson 1989; Song et al. 2019's "SSM-VR").

    .. math::
        \\sigma_t^2 \\Big[ \\tfrac12 \\| s_\\theta \\|^2 + \\frac1M \\sum_m v_m^\\top \\nabla_x s_\\theta\\, v_m \\Big],
        \\quad v_m \\in \\{-1, 1\\}^D \\text{ (Rademacher)}, \\qquad \\lambda(t) = \\sigma_t^2 / 2 .
    """

    name, paper = "ism-hutchinson", "Hutchinson 1989; Song et al. 2019 (SSM-VR)"

    def draw(self, x0, generator=None):
        d = super().draw(x0, generator)
        shape = (x0.shape[0], self.probes, x0.shape[1])
        signs = torch.randint(0, 2, shape, generator=generator, device=_device(generator))
        d["v"] = (2 * signs - 1).to(dtype=x0.dtype, device=x0.device)
        return d

    def implicit(self, s, x, draws, create_graph):
        div = torch.zeros_like(s[:, 0])
        for m in range(draws["v"].shape[1]):
            div = div + _vjv(s, x, draws["v"][:, m], create_graph)[0]
        return 0.5 * _sq(s) + div / draws["v"].shape[1]


# --- the DDPM variational bound ----------------------------------------------------------------------


class VLBObjective(Objective):
    """The DDPM variational bound (Ho et al. 2020, eq. 5; Sohl-Dickstein et al. 2015), in nats.

    .. math::
        L_{vlb} = L_T + \\sum_{t=2}^T L_{t-1} + L_0 \\approx L_T + T\\, L_{t-1}, \\quad t \\sim U\\{1..T\\},
        \\\\
        L_{t-1} = KL\\big(q(x_{t-1} | x_t, x_0) \\,\\|\\, N(\\mu_\\theta, \\varsigma_t^2 I)\\big)
        = \\frac{c_t^2}{2 \\varsigma_t^2} \\| x_0 - \\hat x_0 \\|^2
        + \\frac D2 \\big( r_t - 1 - \\log r_t \\big), \\quad r_t = \\tilde\\beta_t / \\varsigma_t^2,
        \\qquad L_0 = -\\log N(x_0; \\hat x_0(x_1, 1), \\beta_1 I),

    with ``L_T = KL(q(x_T | x_0) || N(0, I))``, and ``mu_theta = a_t x_t + c_t x0hat`` the posterior
    mean (Ho et al., eq. 7) with the model's ``x0hat`` for ``x_0``, ``c_t = sqrt(abar_{t-1}) beta_t /
    (1 - abar_t)``. The reverse variance ``varsigma_t^2`` is ``beta_t`` by default (Ho et al.'s
    ``sigma_t^2 = beta_t``; ``variance="beta_tilde"`` for ``beta_tilde_t``, which zeroes the variance
    term). ``beta_t`` is chosen because it is the continuous-time limit (the reverse SDE's ``g^2 dt``)
    and much the tighter bound for data that are smooth at the scale of the first steps: with the
    exact field of ``mog6`` (T = 1000) the bound exceeds the NLL by 0.03 nats with ``beta`` and by
    0.95 nats with ``beta_tilde``. The decoder uses ``beta_1`` either way (``beta_tilde_1 = 0``).
    The score weight at integer ``t >= 2`` is ``lambda(t) = c_t^2 sigma_t^4 / (2 varsigma_t^2 alpha_t^2)``.
    Needs ``DDPMSchedule``; its time sampler is ``DiscreteTime``.
    """

    name, paper, default_parameterization = "vlb", "Ho et al. 2020, eq. 5; Sohl-Dickstein et al. 2015", "eps"

    def __init__(self, process: Process, *, variance: str = "beta", **options) -> None:
        super().__init__(process, **options)
        self.variance = variance
        self._kernel = vlb_kernel(process, variance)

    def lam_over_sigma2(self, t):
        raise ValueError("objective 'vlb' has no continuous time weight (it cannot use time='importance')")

    def loss(self, field, x0, y, draws):
        t, eps = draws["t"], draws["eps"]
        alpha, sigma, _, _ = coefficients(self.process, t, x0)
        pred = field.predict(alpha * x0 + sigma * eps, t, y)
        l_prev = vlb_step_term(self._kernel, t.round().long(), x0, pred.x0)
        return draws["w"].to(x0) * (vlb_prior_term(self.process, x0) + _num_steps(self.process) * l_prev)


# --- the table, and the one check of a combination --------------------------------------------------

OBJECTIVES: dict[str, type[Objective]] = {
    cls.name: cls
    for cls in (
        EpsObjective,
        DSMObjective,
        X0Objective,
        VObjective,
        EDMObjective,
        CFMObjective,
        SSMObjective,
        ISMObjective,
        HutchinsonISMObjective,
        VLBObjective,
    )
}
OBJECTIVE_NAMES: tuple[str, ...] = tuple(OBJECTIVES)


def check(
    name: str, process: Process, parameterization: str | None = None, *, time: str = "default", probes: int = 1
) -> None:
    """Raise ``ValueError`` (one line naming the problem) if the combination cannot train."""
    if name not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVE_NAMES)}, got {name!r}")
    steps = _num_steps(process)
    if name == "vlb" and steps is None:
        raise ValueError(f"objective 'vlb' needs the discrete DDPMSchedule process, got {process!r}")
    if time not in TIME_CHOICES:
        raise ValueError(f"time must be one of {', '.join(TIME_CHOICES)}, got {time!r}")
    if name == "vlb" and time == "importance":
        raise ValueError("time 'importance' is not available for objective 'vlb' (it sums its terms over t)")
    if steps is not None and time != "default":
        raise ValueError(
            f"time {time!r} draws continuous times, but {process.name} is discrete: "
            f"use time='default' (t uniform on the integers 1..{steps})"
        )
    if steps is not None and name == "cfm":
        raise ValueError(f"objective 'cfm' needs a continuous process; {process.name}'s velocity jumps at every step")
    if not (isinstance(probes, int) and probes >= 1):
        raise ValueError(f"probes must be an integer >= 1, got {probes!r}")
    if parameterization is not None:
        if parameterization not in PARAMETERIZATIONS:
            choices = ", ".join(PARAMETERIZATIONS)
            raise ValueError(f"parameterization must be one of {choices}, got {parameterization!r}")
        if parameterization == "flow" and steps is not None:
            raise ValueError(f"parameterization 'flow' needs a continuous process, got {process.name}")


def make_objective(
    name: str,
    process: Process,
    *,
    time: str = "default",
    t_min: float = 1e-3,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    probes: int = 1,
    sigma_data: float = 0.5,
) -> Objective:
    """The objective ``name`` (one of ``OBJECTIVE_NAMES``) on ``process``.

    Args:
        name: the objective.
        process: the forward process.
        time: ``"default"`` (the objective's own: uniform, or log-normal for ``edm``; the integers
            ``1..T`` on ``DDPMSchedule``), ``"uniform"`` on ``[t_min, t_max]``, ``"importance"``
            (``q(t) ∝ lambda(t) / sigma(t)^2``), or ``"lognormal"`` (EDM).
        t_min: the time cut-off of ``uniform`` and ``importance``.
        p_mean, p_std: EDM's ``P_mean``, ``P_std`` of ``ln sigma_hat``, for data of scale 0.5 (the
            paper's images): the sampler draws ``ln sigma_hat ~ N(P_mean + ln(sigma_data / 0.5), P_std^2)``,
            the same noise levels relative to the data at any scale.
        probes: random probes per sample (``ssm``, ``ism-hutchinson``).
        sigma_data: EDM's ``sigma_data`` (``edm``).
    """
    check(name, process, time=time, probes=probes)
    return OBJECTIVES[name](
        process, time=time, t_min=t_min, p_mean=p_mean, p_std=p_std, probes=probes, sigma_data=sigma_data
    )
