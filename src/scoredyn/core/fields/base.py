"""Score fields: a denoiser is a score (Tweedie), and every parameterization converts here, once.

A ``Field`` answers, at ``(x, t)`` for one process ``x_t = alpha x_0 + sigma eps``:

.. math::
    s = \\nabla_x \\log p_t(x), \\quad \\hat\\epsilon = -\\sigma s, \\quad
    \\hat x_0 = \\frac{x + \\sigma^2 s}{\\alpha} \\;\\text{(Tweedie)}, \\quad
    v = f x - \\tfrac12 g^2 s = \\dot\\alpha \\hat x_0 - \\tfrac12 \\tfrac{d\\sigma^2}{dt} s .

The velocity is evaluated in its last form: it is the same quantity, but stays finite where
``alpha -> 0`` (the Linear process at ``t = 1``) and where ``sigma = 0`` (VP and OU at
``t = 0``, where ``sigma'`` diverges), whenever the denoiser does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from ..processes import Process
from ..targets import GaussianMixture, component_terms, precision_times
from ..tensors import LOG_2PI, as_time

__all__ = [
    "Field",
    "Coefficients",
    "CoefficientTable",
    "Prediction",
    "AnalyticField",
    "CountingField",
    "score_from_denoise",
    "denoise_from_score",
    "score_from_eps",
]


def _coef(c: Tensor, x: Tensor) -> Tensor:
    """A coefficient (0-dim, or one per sample) shaped to broadcast against ``x`` of shape (N, D)."""
    c = c.to(dtype=x.dtype, device=x.device)
    return c[:, None] if c.ndim == 1 else c


def score_from_denoise(x: Tensor, x0: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Tweedie's formula solved for the score: ``s = (alpha x0hat - x) / sigma^2``."""
    return (_coef(alpha, x) * x0 - x) / _coef(sigma, x) ** 2


def denoise_from_score(x: Tensor, s: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Tweedie's formula (Robbins 1956; Efron 2011): ``x0hat = (x + sigma^2 s) / alpha``."""
    return (x + _coef(sigma, x) ** 2 * s) / _coef(alpha, x)


def score_from_eps(eps: Tensor, sigma: Tensor) -> Tensor:
    """Noise prediction to score: ``s = -eps / sigma`` (Vincent 2011; Song et al. 2021, eq. 8)."""
    return -eps / _coef(sigma, eps)


def per_sample_time(t: float | Tensor, n: int) -> Tensor:
    """Times as a float64 tensor of shape ``(n,)`` (a scalar ``t`` is broadcast)."""
    t = as_time(t)
    if t.ndim == 0:
        return t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"t must be a scalar or have shape ({n},), got {tuple(t.shape)}")
    return t


@dataclass
class Prediction:
    """What a field predicts at ``(x, t)``: ``x0hat`` and ``eps_hat``, with the coefficients of ``t``.

    ``alpha``, ``sigma``, ``d_alpha``, ``d_sigma`` are ``(N, 1)`` tensors in ``x``'s dtype. Every
    other target of a training objective follows from these (and is computed here, once).
    """

    x: Tensor
    alpha: Tensor
    sigma: Tensor
    d_alpha: Tensor
    d_sigma: Tensor
    x0: Tensor
    eps: Tensor

    @property
    def score(self) -> Tensor:
        """``s = -eps / sigma`` (Vincent 2011)."""
        return -self.eps / self.sigma

    @property
    def v(self) -> Tensor:
        """``v = alpha eps - sigma x0`` (Salimans & Ho 2022)."""
        return self.alpha * self.eps - self.sigma * self.x0

    @property
    def flow(self) -> Tensor:
        """The probability-flow velocity ``E[alpha' x0 + sigma' eps | x]`` (Lipman et al. 2023)."""
        return self.d_alpha * self.x0 + self.d_sigma * self.eps


def coefficients(process: Process, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``alpha, sigma, alpha', sigma'`` at per-sample times ``t`` (N,), as (N, 1) in ``like``'s dtype."""
    a, s, da, ds = (process.alpha(t), process.sigma(t), process.d_alpha(t), process.d_sigma(t))
    return _coef(a, like), _coef(s, like), _coef(da, like), _coef(ds, like)


class Coefficients:
    """A process's coefficients at one time ``t`` (float64 tensors shaped like ``t``), each computed
    from the process on first use; a row of a ``CoefficientTable`` arrives with all of them.

    ``memo`` holds what a field derives from them (e.g. a network's input scaling), per row.
    """

    def __init__(self, process: Process, t: Tensor, **known: Tensor) -> None:
        self.process, self.t, self.memo = process, t, {}
        self.__dict__.update(known)

    @cached_property
    def alpha(self) -> Tensor:
        return self.process.alpha(self.t)

    @cached_property
    def sigma(self) -> Tensor:
        return self.process.sigma(self.t)

    @cached_property
    def d_alpha(self) -> Tensor:
        return self.process.d_alpha(self.t)

    @cached_property
    def d_sigma(self) -> Tensor:
        return self.process.d_sigma(self.t)

    @cached_property
    def d_sigma2(self) -> Tensor:
        return self.process.d_sigma2(self.t)

    @cached_property
    def f(self) -> Tensor:
        return self.process.f(self.t)

    @cached_property
    def g2(self) -> Tensor:
        return self.process.g2(self.t)


_COEFFICIENTS = ("alpha", "sigma", "d_alpha", "d_sigma", "d_sigma2", "f", "g2")


class CoefficientTable:
    """Every coefficient of a process at the times of a grid, computed in one vectorised pass and
    looked up by the exact float64 time; a time not in it is computed on first use and kept
    (up to ``4 len(times) + 64`` rows, so an adaptive solver's stray times cannot grow it without end).

    The values are those of the per-time calls (the same elementwise float64 operations), so a
    sampler that reads them takes the same steps as one that asks the process at every step.
    """

    def __init__(self, process: Process, times: Tensor) -> None:
        times = as_time(times).reshape(-1)
        self.process, self._limit = process, 4 * times.numel() + 64
        columns = [getattr(process, name)(times).unbind() for name in _COEFFICIENTS]
        self._rows = {
            t: Coefficients(process, time, **dict(zip(_COEFFICIENTS, row, strict=True)))
            for t, time, *row in zip(times.tolist(), times.unbind(), *columns, strict=True)
        }

    def __call__(self, t: Tensor) -> Coefficients:
        """The row of the 0-dim time ``t``."""
        key = float(t)
        row = self._rows.get(key)
        if row is None:
            row = Coefficients(self.process, t)
            if len(self._rows) < self._limit:
                self._rows[key] = row
        return row


class Field:
    """A score field of one process. Subclasses implement ``score``; they may override
    ``denoise`` where they have a form that is better conditioned than Tweedie's."""

    process: Process
    _table: CoefficientTable | None = None

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        raise NotImplementedError

    def at_times(self, times: Tensor) -> Field:
        """This field with its process's coefficients at ``times`` computed once, in one vectorised
        pass: a sampler calls it with its grid before its loop, so no step recomputes them. A
        shallow copy (the field itself is not changed); evaluations at other times still work.
        Wrappers pass the times on to the fields they wrap."""
        new = copy.copy(self)
        new._table = CoefficientTable(self.process, times)
        return new

    def coefficients_at(self, t: float | Tensor) -> Coefficients:
        """The process's coefficients at the one time ``t`` (from the table of ``at_times`` when
        there is one)."""
        t = as_time(t)
        if self._table is not None and t.ndim == 0:
            return self._table(t)
        return Coefficients(self.process, t)

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Posterior mean ``E[x_0 | x_t = x]``."""
        c = self.coefficients_at(t)
        return denoise_from_score(x, self.score(x, c.t), c.alpha, c.sigma)

    def eps(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Predicted noise ``E[eps | x_t = x] = -sigma s``."""
        c = self.coefficients_at(t)
        return -_coef(c.sigma, x) * self.score(x, c.t)

    def velocity(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Probability-flow ODE velocity (Song et al. 2021, eq. 13): ``dx/dt = f x - g^2 s / 2``,
        evaluated as ``alpha' x0hat - (d sigma^2/dt) s / 2``: the same quantity, finite where
        ``alpha = 0`` (``f`` diverges) and where ``sigma = 0`` (``sigma'`` may diverge)."""
        c = self.coefficients_at(t)
        s, x0 = self._score_and_denoise(x, c.t)
        return _coef(c.d_alpha, x) * x0 - _coef(0.5 * c.d_sigma2, x) * s

    def predict(self, x: Tensor, t: float | Tensor, y: Tensor | None = None) -> Prediction:
        """``x0hat`` and ``eps_hat`` at ``x`` (N, D) and times ``t`` (a scalar or one per sample, (N,)),
        what the training objectives read. ``y`` (class labels) is used by conditional fields only."""
        t = per_sample_time(t, x.shape[0])
        a, s, da, ds = coefficients(self.process, t, x)
        score, x0 = self._score_and_denoise(x, t)
        return Prediction(x, a, s, da, ds, x0, -s * score)

    def _score_and_denoise(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Both at once; a subclass with a shared computation overrides this to do it once."""
        s = self.score(x, t)
        if type(self).denoise is Field.denoise:
            c = self.coefficients_at(t)
            return s, denoise_from_score(x, s, c.alpha, c.sigma)
        return s, self.denoise(x, t)


class AnalyticField(Field):
    """The exact field of a Gaussian mixture under any process.

    With ``m_k = alpha mu_k``, ``S_k = alpha^2 Sigma_k + sigma^2 I`` and responsibilities
    ``w_k(x)`` of the noised mixture (log-sum-exp):

    .. math::
        s(x, t) = -\\sum_k w_k S_k^{-1}(x - m_k), \\qquad
        \\hat x_0 = \\sum_k w_k \\left[\\mu_k + \\alpha \\Sigma_k S_k^{-1}(x - m_k)\\right].

    The posterior-mean form of ``x0hat`` is used directly: it is exact also where ``alpha = 0``.
    Computation is in ``dtype`` (float64 by default); results come back in ``x``'s dtype.
    Memory is ``O(N K D)``.

    Args:
        target: the mixture at ``t = t_min`` (data).
        process: the forward process.
        dtype: working precision.
    """

    def __init__(self, target: GaussianMixture, process: Process, dtype: torch.dtype = torch.float64):
        self.target, self.process, self.dtype = target, process, dtype
        self._cache: tuple[float, Tensor, Tensor, float] | None = None

    def _factor(self, t: Tensor) -> tuple[Tensor, Tensor, float]:
        """Cholesky factors of ``S_k`` at ``t`` and the scaled means (cached for the last ``t``)."""
        key = float(t)
        if self._cache is None or self._cache[0] != key:
            c = self.coefficients_at(t)
            a, s = float(c.alpha), float(c.sigma)
            tg = self.target
            eye = torch.eye(tg.dim, dtype=torch.float64)
            chol = torch.linalg.cholesky(a**2 * tg.covs + s**2 * eye)
            self._cache = (key, chol.to(self.dtype), (a * tg.means).to(self.dtype), a)
        return self._cache[1], self._cache[2], self._cache[3]

    def _posterior(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor, float | Tensor]:
        """Responsibilities ``w`` (N, K) and ``S_k^{-1}(x - m_k)`` (K, D, N) of the noised mixture."""
        t = as_time(t)
        if t.ndim == 1:
            return self._posterior_per_sample(x, t)
        chol, m, a = self._factor(t)
        log_w = torch.log(self.target.weights.to(self.dtype))
        log_joint, z = component_terms(x.to(self.dtype), log_w, m, chol)
        return torch.softmax(log_joint, dim=1), precision_times(chol, z), a

    def _posterior_per_sample(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The same with one time per sample (training objectives): ``N x K`` Cholesky factors."""
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},), got {tuple(t.shape)}")
        tg = self.target
        a, s = self.process.alpha(t)[:, None, None, None], self.process.sigma(t)[:, None, None, None]
        eye = torch.eye(tg.dim, dtype=torch.float64)
        chol = torch.linalg.cholesky(a**2 * tg.covs[None] + s**2 * eye).to(self.dtype)  # (N, K, D, D)
        diff = x.to(self.dtype)[:, None, :, None] - (a * tg.means[None, :, :, None]).to(self.dtype)
        z = torch.linalg.solve_triangular(chol, diff, upper=False)  # (N, K, D, 1)
        half_logdet = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # (N, K)
        log_n = -0.5 * (z[..., 0] ** 2).sum(-1) - half_logdet - 0.5 * tg.dim * LOG_2PI
        w = torch.softmax(torch.log(tg.weights.to(self.dtype)) + log_n, dim=1)
        prec_diff = torch.linalg.solve_triangular(chol.transpose(-1, -2), z, upper=True)[..., 0]
        return w, prec_diff.permute(1, 2, 0), a[:, 0, 0].to(self.dtype)

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        w, prec_diff, _ = self._posterior(x, as_time(t))
        return self._score_from(w, prec_diff).to(x.dtype)

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        w, prec_diff, a = self._posterior(x, as_time(t))
        return self._denoise_from(w, prec_diff, a).to(x.dtype)

    def _score_and_denoise(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        w, prec_diff, a = self._posterior(x, t)  # one posterior for both (the PF-ODE velocity)
        return self._score_from(w, prec_diff).to(x.dtype), self._denoise_from(w, prec_diff, a).to(x.dtype)

    @staticmethod
    def _score_from(w: Tensor, prec_diff: Tensor) -> Tensor:
        return -torch.einsum("nk,kdn->nd", w, prec_diff)

    def _denoise_from(self, w: Tensor, prec_diff: Tensor, a: float | Tensor) -> Tensor:
        covs = self.target.covs.to(self.dtype)
        mean_part = w @ self.target.means.to(self.dtype)
        cov_part = torch.einsum("nk,kdn->nd", w, covs @ prec_diff)  # (K,D,D)@(K,D,N) first: fast
        return mean_part + a * cov_part

    def log_prob(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Exact ``log p_t(x)`` of the noised mixture."""
        return self.target.noised(self.process, t).log_prob(x)


class CountingField(Field):
    """Wraps a field and counts its evaluations (NFE): one per call of any of its methods on a batch.
    Its ``at_times`` copy counts into it too."""

    def __init__(self, field: Field, parent: CountingField | None = None) -> None:
        self.inner, self.process, self.nfe, self._parent = field, field.process, 0, parent

    def at_times(self, times: Tensor) -> CountingField:
        return CountingField(self.inner.at_times(times), parent=self)

    def coefficients_at(self, t: float | Tensor) -> Coefficients:
        return self.inner.coefficients_at(t)

    def _count(self) -> None:
        self.nfe += 1
        if self._parent is not None:
            self._parent._count()

    def score(self, x, t):
        self._count()
        return self.inner.score(x, t)

    def denoise(self, x, t):
        self._count()
        return self.inner.denoise(x, t)

    def eps(self, x, t):
        self._count()
        return self.inner.eps(x, t)

    def velocity(self, x, t):
        self._count()
        return self.inner.velocity(x, t)
