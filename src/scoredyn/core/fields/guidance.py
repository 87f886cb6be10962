"""Guidance: fields built from fields, that steer samples towards a class.

Classifier guidance (Song et al. 2021, sec. 5 and app. I; Dhariwal & Nichol 2021, Alg. 1-2) adds
the gradient of a noise-conditional classifier to the score,

.. math:: \\tilde s(x, t) = s(x, t) + w \\nabla_x \\log p_t(y \\mid x),

which at ``w = 1`` is exactly the score of ``p_t(x | y)`` (Bayes: ``log p(x|y) = log p(x) + log p(y|x)
- log p(y)``) and for ``w > 1`` sharpens it towards ``p(x|y) p(y|x)^{w-1}``.

Classifier-free guidance (Ho & Salimans 2021, eq. 6) mixes the conditional and unconditional
predictions of one network trained with label dropout,

.. math:: \\tilde s = s(x, t \\mid \\varnothing) + w \\,[\\, s(x, t \\mid y) - s(x, t \\mid \\varnothing) \\,],

the same combination for ``eps`` and for ``x0hat`` (both are affine in the score at fixed ``x, t``),
so the guided denoiser stays finite where ``alpha = 0``.

For a Gaussian mixture whose components are the classes, the exact noisy classifier is the
posterior responsibility of the noised mixture, ``p_t(y | x) = pi_y N_y(x) / p_t(x)``:
``mixture_classifier`` gives its logits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..processes import Process
from ..targets import GaussianMixture
from ..tensors import as_time
from .base import Field

__all__ = ["ClassifierGuidance", "ClassifierFreeGuidance", "mixture_classifier"]

Classifier = Callable[[Tensor, Tensor], Tensor]  # (x (N, D), t 0-dim) -> logits (N, K)


def mixture_classifier(target: GaussianMixture, process: Process) -> Classifier:
    """The exact noise-conditional classifier of a mixture's components: logits
    ``log pi_k + log N(x; alpha mu_k, alpha^2 Sigma_k + sigma^2 I)`` of the noised mixture, noised on
    ``x``'s device (the target is moved there once)."""

    def logits(x: Tensor, t: Tensor) -> Tensor:
        return target.to(x.device).noised(process, t).component_log_prob(x)

    return logits


class ClassifierGuidance(Field):
    """``s + w grad_x log p_t(y | x)`` (module docstring), the gradient by autograd of the
    classifier's log-softmax at the asked labels.

    Args:
        field: the unconditional field.
        classifier: ``(x, t) -> logits (N, K)``, differentiable in ``x``.
        labels: the class asked for: an int, or one per particle ``(N,)``.
        weight: the guidance weight ``w`` (``0``: unguided, ``1``: the exact conditional).
    """

    def __init__(self, field: Field, classifier: Classifier, labels: int | Tensor, weight: float = 1.0) -> None:
        if not weight >= 0:
            raise ValueError(f"guidance weight must be >= 0, got {weight}")
        self.inner, self.process, self.classifier = field, field.process, classifier
        self.labels, self.weight = labels, float(weight)

    def classifier_grad(self, x: Tensor, t: float | Tensor) -> Tensor:
        """``grad_x log p_t(y | x)``, shape (N, D)."""
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            log_post = torch.log_softmax(self.classifier(xr, as_time(t)), dim=1)
            y = torch.as_tensor(self.labels, device=x.device).expand(x.shape[0])
            chosen = log_post.gather(1, y[:, None]).sum()
            (grad,) = torch.autograd.grad(chosen, xr)
        return grad.to(x.dtype)

    def at_times(self, times: Tensor) -> ClassifierGuidance:
        new = super().at_times(times)
        new.inner = self.inner.at_times(times)  # the wrapped field reads its coefficients from the table too
        return new

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        return self.inner.score(x, t) + self.weight * self.classifier_grad(x, t)


class ClassifierFreeGuidance(Field):
    """``pred(x | null) + w [pred(x | y) - pred(x | null)]`` for the score and the denoiser.

    Args:
        conditional: the field with the asked labels (e.g. ``NetworkField(net, ..., labels=y)``).
        unconditional: the same network with the null class (``labels=None``).
        weight: ``w`` (``1``: the conditional model; ``0``: the unconditional one).
    """

    def __init__(self, conditional: Field, unconditional: Field, weight: float = 1.0) -> None:
        if not weight >= 0:
            raise ValueError(f"guidance weight must be >= 0, got {weight}")
        self.cond, self.uncond, self.weight = conditional, unconditional, float(weight)
        self.process = conditional.process

    def at_times(self, times: Tensor) -> ClassifierFreeGuidance:
        new = super().at_times(times)
        new.cond, new.uncond = self.cond.at_times(times), self.uncond.at_times(times)
        return new

    def _mix(self, a: Tensor, b: Tensor) -> Tensor:
        return b + self.weight * (a - b)

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        return self._mix(self.cond.score(x, t), self.uncond.score(x, t))

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        return self._mix(self.cond.denoise(x, t), self.uncond.denoise(x, t))

    def score_and_denoise(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        sc, dc = self.cond.score_and_denoise(x, t)
        su, du = self.uncond.score_and_denoise(x, t)
        return self._mix(sc, su), self._mix(dc, du)
