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
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..processes import Process
from ..tensors import as_time
from .coefficients import Coefficients, CoefficientTable, broadcast_coefficient, coefficients, per_sample_time

if TYPE_CHECKING:
    from ..targets import GaussianMixture

__all__ = [
    "Field",
    "NoDensityError",
    "Prediction",
    "PredictingField",
    "score_from_denoise",
    "denoise_from_score",
    "score_from_eps",
    "FIELD_CHUNK_BYTES",
    "CHUNK_BYTES_ENV",
    "field_chunk_bytes",
    "rows_per_chunk",
    "map_row_chunks",
]

#: The memory budget, in bytes, of a field's intermediates on one chunk of rows (64 MiB). A field whose
#: intermediates grow with the number of particles faster than its ``N x D`` output (the exact mixture's
#: ``N x K`` terms per coordinate) evaluates ``x`` in chunks of ``max(1, budget // bytes_per_row)`` rows,
#: so that one evaluation needs ``O(N D)`` for its inputs and outputs plus about this much, for any
#: ``N``. Rows are independent and every chunk is computed by the same operations, so the result does
#: not depend on the budget.
FIELD_CHUNK_BYTES = 64 * 2**20

#: The environment variable that overrides ``FIELD_CHUNK_BYTES`` (a positive integer, in bytes), read at
#: each evaluation: e.g. a very large value evaluates every batch in one piece.
CHUNK_BYTES_ENV = "SCOREDYN_FIELD_CHUNK_BYTES"


def field_chunk_bytes() -> int:
    """The budget in force: ``$SCOREDYN_FIELD_CHUNK_BYTES`` when set, else ``FIELD_CHUNK_BYTES``."""
    raw = os.environ.get(CHUNK_BYTES_ENV)
    if raw is None:
        return FIELD_CHUNK_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{CHUNK_BYTES_ENV} must be a positive integer (bytes), got {raw!r}")
    return value


def rows_per_chunk(bytes_per_row: int, budget: int | None = None) -> int:
    """Rows per chunk: ``budget // bytes_per_row``, at least 1 (``budget``: ``field_chunk_bytes()``)."""
    budget = field_chunk_bytes() if budget is None else budget
    if budget < 1:
        raise ValueError(f"the chunk budget must be a positive number of bytes, got {budget!r}")
    return max(1, budget // max(1, bytes_per_row))


def map_row_chunks(
    fn: Callable[[Tensor, Tensor], tuple[Tensor, ...]], x: Tensor, t: Tensor, rows: int, dtype: torch.dtype
) -> tuple[Tensor, ...]:
    """``fn(x, t)`` evaluated on chunks of at most ``rows`` rows of ``x`` (N, D) and of ``t`` (a 0-dim
    time, passed whole, or one per row, (N,), split with ``x``), for a ``fn`` whose outputs are
    ``(N, ...)`` with row ``i`` depending on row ``i`` alone. The outputs come back in ``dtype``, written
    chunk by chunk into tensors allocated once (no list of pieces, no ``torch.cat``); they are
    differentiable like ``fn``'s (autograd records the copies into them)."""
    n = x.shape[0]
    if n <= rows:
        return tuple(out.to(dtype) for out in fn(x, t))
    outs: tuple[Tensor, ...] = ()
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        pieces = fn(x[start:stop], t if t.ndim == 0 else t[start:stop])
        if not outs:
            outs = tuple(p.new_empty((n, *p.shape[1:]), dtype=dtype) for p in pieces)
        for out, piece in zip(outs, pieces, strict=True):
            out[start:stop] = piece
    return outs


def score_from_denoise(x: Tensor, x0: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Tweedie's formula solved for the score: ``s = (alpha x0hat - x) / sigma^2``."""
    return (broadcast_coefficient(alpha, x) * x0 - x) / broadcast_coefficient(sigma, x) ** 2


def denoise_from_score(x: Tensor, s: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Tweedie's formula (Robbins 1956; Efron 2011): ``x0hat = (x + sigma^2 s) / alpha``."""
    return (x + broadcast_coefficient(sigma, x) ** 2 * s) / broadcast_coefficient(alpha, x)


def score_from_eps(eps: Tensor, sigma: Tensor) -> Tensor:
    """Noise prediction to score: ``s = -eps / sigma`` (Vincent 2011; Song et al. 2021, eq. 8)."""
    return -eps / broadcast_coefficient(sigma, eps)


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


class NoDensityError(ValueError):
    """Raised when a log-density is asked of a field that has none (a score network: only gradients)."""


class Field:
    """A score field of one process. Subclasses implement ``score``; they may override
    ``denoise`` where they have a form that is better conditioned than Tweedie's, and ``log_prob``
    (with ``has_density = True``) where they know the density itself, not only its gradient."""

    process: Process
    _table: CoefficientTable | None = None

    #: Whether ``log_prob`` is known: the exact mixture's (normalized) and an energy model's (up to a
    #: constant per time). Samplers that accept or reweight (MALA, SMC) need it.
    has_density: bool = False

    #: Whether ``log_prob`` is normalized (``int exp(log_prob) dx = 1`` at every time).
    normalized: bool = False

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        raise NotImplementedError

    def log_prob(self, x: Tensor, t: float | Tensor) -> Tensor:
        """``log p_t(x)`` (N,), exact or up to a constant in ``x`` (``normalized``); only where
        ``has_density``. A score field alone determines the density only up to that constant, and
        only along paths: a network of scores has none to give."""
        raise NoDensityError(
            f"{type(self).__name__} has no log-density (only its gradient, the score); "
            "use an exact target or an energy model"
        )

    def score_and_log_prob(self, x: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor]:
        """The score (N, D) and ``log_prob`` (N,) at once; a field with a shared computation (the
        exact mixture's one pass over its components, an energy network's one backward pass) does it
        once."""
        return self.score(x, t), self.log_prob(x, t)

    def score_jacobian(self, x: Tensor, t: float | Tensor) -> Tensor:
        """The Jacobian of the score in ``x``, ``grad_x s(x, t)`` (the Hessian of ``log p_t`` where there
        is a density), shape ``(N, D, D)``, row ``i`` the gradient of ``s_i``: by automatic differentiation,
        one backward pass per dimension (fields with a closed form override it)."""
        with torch.enable_grad():
            y = x.detach().requires_grad_(True)
            s = self.score(y, t)
            d = s.shape[1]
            rows = [torch.autograd.grad(s[:, i].sum(), y, retain_graph=i + 1 < d)[0] for i in range(d)]
        return torch.stack(rows, dim=1).detach()

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
        return -broadcast_coefficient(c.sigma, x) * self.score(x, c.t)

    def velocity(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Probability-flow ODE velocity (Song et al. 2021, eq. 13): ``dx/dt = f x - g^2 s / 2``,
        evaluated as ``alpha' x0hat - (d sigma^2/dt) s / 2``: the same quantity, finite where
        ``alpha = 0`` (``f`` diverges) and where ``sigma = 0`` (``sigma'`` may diverge)."""
        c = self.coefficients_at(t)
        s, x0 = self.score_and_denoise(x, c.t)
        return broadcast_coefficient(c.d_alpha, x) * x0 - broadcast_coefficient(0.5 * c.d_sigma2, x) * s

    def predict(self, x: Tensor, t: float | Tensor, y: Tensor | None = None) -> Prediction:
        """``x0hat`` and ``eps_hat`` at ``x`` (N, D) and times ``t`` (a scalar or one per sample, (N,)),
        what the training objectives read. ``y`` (class labels) is used by conditional fields only."""
        t = per_sample_time(t, x.shape[0])
        a, s, da, ds = coefficients(self.process, t, x)
        score, x0 = self.score_and_denoise(x, t)
        return Prediction(x, a, s, da, ds, x0, -s * score)

    def score_and_denoise(self, x: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor]:
        """The score and ``x0hat`` at once; a subclass with a shared computation overrides this to do
        it once (the exact mixture's posterior, a network's one call)."""
        s = self.score(x, t)
        if type(self).denoise is Field.denoise:
            c = self.coefficients_at(t)
            return s, denoise_from_score(x, s, c.alpha, c.sigma)
        return s, self.denoise(x, t)

    def exact_mixture(self, t: float | Tensor) -> GaussianMixture | None:
        """``p_t`` as a Gaussian mixture where this field is the exact field of one, else ``None``.

        A sampler may then move particles with the mixture's closed form (a fused kernel) instead of
        calling ``score``: the same dynamics, fewer passes over memory."""
        return None


class PredictingField(Field):
    """A field whose one evaluation is ``predict`` (a network's or a model's call): the score,
    ``x0hat`` and ``eps_hat`` all read from that one ``Prediction``."""

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        return self.predict(x, t).score

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        return self.predict(x, t).x0

    def eps(self, x: Tensor, t: float | Tensor) -> Tensor:
        return self.predict(x, t).eps

    def score_and_denoise(self, x: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor]:
        p = self.predict(x, t)
        return p.score, p.x0
