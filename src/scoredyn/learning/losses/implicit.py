"""Implicit score matching: objectives on ``x_t ~ p_t`` that need derivatives of the field in ``x``
(the exact divergence, Hutchinson's estimate of it, or sliced projections)."""

from __future__ import annotations

import torch
from torch import Tensor

from ...core.fields import coefficients
from ...core.tensors import randn_from
from ._shared import randint_from, sq_norm
from .base import Objective

__all__ = ["SSMObjective", "ISMObjective", "HutchinsonISMObjective"]


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
        """The implicit term (N,) of the score ``s`` (N, D) at ``x`` (N, D), before the ``sigma^2``."""
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
        d["v"] = randn_from(generator, (x0.shape[0], self.probes, x0.shape[1]), x0)
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
        return 0.5 * sq_norm(s) + div


class HutchinsonISMObjective(_ImplicitObjective):
    """Implicit score matching with Hutchinson's divergence (Hutchinson 1989; Song et al. 2019's "SSM-VR").

    .. math::
        \\sigma_t^2 \\Big[ \\tfrac12 \\| s_\\theta \\|^2 + \\frac1M \\sum_m v_m^\\top \\nabla_x s_\\theta\\, v_m \\Big],
        \\quad v_m \\in \\{-1, 1\\}^D \\text{ (Rademacher)}, \\qquad \\lambda(t) = \\sigma_t^2 / 2 .
    """

    name, paper = "ism-hutchinson", "Hutchinson 1989; Song et al. 2019 (SSM-VR)"

    def draw(self, x0, generator=None):
        d = super().draw(x0, generator)
        signs = randint_from(generator, 0, 2, (x0.shape[0], self.probes, x0.shape[1]))
        d["v"] = (2 * signs - 1).to(dtype=x0.dtype, device=x0.device)
        return d

    def implicit(self, s, x, draws, create_graph):
        div = torch.zeros_like(s[:, 0])
        for m in range(draws["v"].shape[1]):
            div = div + _vjv(s, x, draws["v"][:, m], create_graph)[0]
        return 0.5 * sq_norm(s) + div / draws["v"].shape[1]
