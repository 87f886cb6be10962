"""Counting a field's evaluations (NFE)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from .base import Field
from .coefficients import Coefficients

if TYPE_CHECKING:
    from ..targets import GaussianMixture

__all__ = ["CountingField"]


class CountingField(Field):
    """Wraps a field and counts its evaluations (NFE): one per call of any of its methods on a batch.
    Its ``at_times`` copy counts into it too. ``count(k)`` books ``k`` evaluations made another way
    (a fused kernel that evaluates the exact mixture's score itself)."""

    def __init__(self, field: Field, parent: CountingField | None = None) -> None:
        self.inner, self.process, self.nfe, self._parent = field, field.process, 0, parent

    def at_times(self, times: Tensor) -> CountingField:
        return CountingField(self.inner.at_times(times), parent=self)

    def coefficients_at(self, t: float | Tensor) -> Coefficients:
        return self.inner.coefficients_at(t)

    def count(self, evaluations: int = 1) -> None:
        """Add ``evaluations`` to this counter and to the one it was prepared from."""
        self.nfe += evaluations
        if self._parent is not None:
            self._parent.count(evaluations)

    def exact_mixture(self, t: float | Tensor) -> GaussianMixture | None:
        return self.inner.exact_mixture(t)

    @property
    def has_density(self) -> bool:
        return self.inner.has_density

    @property
    def normalized(self) -> bool:
        return self.inner.normalized

    def log_prob(self, x, t):
        self.count()
        return self.inner.log_prob(x, t)

    def score_and_log_prob(self, x, t):
        self.count()  # one evaluation: the score and the density come from one pass
        return self.inner.score_and_log_prob(x, t)

    def score(self, x, t):
        self.count()
        return self.inner.score(x, t)

    def denoise(self, x, t):
        self.count()
        return self.inner.denoise(x, t)

    def eps(self, x, t):
        self.count()
        return self.inner.eps(x, t)

    def velocity(self, x, t):
        self.count()
        return self.inner.velocity(x, t)

    def score_and_denoise(self, x, t):
        self.count()
        return self.inner.score_and_denoise(x, t)

    def score_jacobian(self, x, t):
        # the exact mixture's closed form reads one pass over its components; automatic
        # differentiation takes one backward pass per dimension
        self.count(1 if self.inner.exact_mixture(t) is not None else x.shape[-1])
        return self.inner.score_jacobian(x, t)
