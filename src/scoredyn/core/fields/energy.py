"""Energy models: a scalar network whose negative gradient is the score, so the field has a log-density.

The network ``E~(u, c_noise, y)`` sees the inputs of every ``NetworkField`` (``u = c_in x``,
``c_in = 1 / sqrt(alpha^2 sigma_data^2 + sigma^2)``, ``c_noise = log(sigma / alpha) / 4``) and returns one
number per point. The energy of ``p_t`` and what follows from it (chain rule through ``u = c_in x``):

.. math::
    E(x, t) = \\tfrac12 \\|u\\|^2 + \\tilde E(u, c_{noise}), \\qquad
    \\log p_t(x) = -E(x, t) + \\text{const}(t), \\qquad
    s = -\\nabla_x E = -c_{in} (u + \\nabla_u \\tilde E),
    \\\\
    \\hat\\epsilon = -\\sigma s = \\sigma c_{in} (u + \\nabla_u \\tilde E), \\qquad
    \\hat x_0 = \\frac{x - \\sigma \\hat\\epsilon}{\\alpha} \\;\\text{(Tweedie)}.

Why this form (measured on mog6 with the MLP of the eps model, ``benchmarks/energy_smc.py``):

- ``1/2 ||u||^2`` is the energy of ``p_t`` for data ``N(0, sigma_data^2 I)`` at every noise level (a skip
  connection, as EDM's ``c_skip``): an untrained network (zero read-out) starts from it, and a bounded
  ``E~`` (``learning.nets.EnergyMLP``'s read-out of a LayerNorm) keeps Gaussian tails, so ``exp(-E)`` is a
  proper density whose score pulls far particles back.
- No noise-dependent scale on ``E~``. The alternative that makes ``grad_u E~`` the noise prediction
  itself, ``E = E~ / (sigma c_in)`` (the eps parameterization made conservative), trains to the same
  loss but amplifies the network's error by ``1 / (sigma c_in)`` at low noise (x100 at ``sigma / alpha =
  0.05`` on mog6), where denoising score matching barely constrains the energy between separated modes:
  the mode masses of its own law ``exp(-E)`` were off by a total variation of 0.88 there, against 0.13
  in this form (one run each, 3000 steps; 0.09 after 5000). Here the log-ratios between modes, nearly
  constant in ``sigma`` for separated modes, carry over from the noise levels where the data pin them
  down. For densities (2-D mixtures) ``-log p_t`` and its gradient stay bounded as ``sigma -> 0``, so
  this form also has a log-density at ``sigma = 0``; for data on a manifold (images), whose score grows
  like ``1 / sigma``, the scaled form would suit better.
- A scalar read-out rather than ``1/2 ||u - F(u)||^2`` (Salimans & Ho 2021, "Should EBMs model the
  energy or the score?"; Du et al. 2023, "Reduce, Reuse, Recycle", the energy of their 2-D
  experiments): that energy vanishes wherever its gradient ``(I - dF/du)^T (u - F)`` does, so every mode
  has the same peak density and unequal mixture weights cannot be represented by heights (its own
  law's mode masses: TV 0.35 against 0.13).

This form trains to the eps MLP's loss at equal size and steps (held-out eps loss 0.7607 against
0.7624 after 5000 steps; the exact field's 0.7563).

Every score objective trains it, every sampler uses it, and samplers that accept or reweight (MALA,
SMC; Du et al. 2023, sec. 3.2) read ``log_prob``. The score needs one backward pass through the network.
Under ``torch.no_grad`` (sampling) it is taken in a local ``enable_grad`` and nothing is kept; where
gradients are being recorded and the parameters or ``x`` require them (training; implicit score
matching differentiates the score in ``x``), it is taken with ``create_graph=True``, so the loss
differentiates through it (a double backward).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..processes import Process
from .base import Prediction
from .network import NetworkField

__all__ = ["EnergyField", "network_field"]


class EnergyField(NetworkField):
    """The field of a scalar energy network (the module docstring), with ``log_prob = -E`` up to a
    constant per time (``normalized = False``).

    Args:
        net: ``net(u, c_noise, y) -> E~`` with ``u`` (N, D), ``c_noise`` (N,), ``y`` (N,) or None, and
            ``E~`` (N,) (``learning.nets.EnergyMLP``); rows must not interact (one backward pass gives
            every row's gradient).
        process, sigma_data, labels, compile: as for ``NetworkField``; ``parameterization`` is ``"energy"``.
    """

    accepts = ("energy",)
    has_density = True
    normalized = False

    def __init__(
        self,
        net: nn.Module,
        process: Process,
        parameterization: str = "energy",
        *,
        sigma_data: float = 1.0,
        labels: Tensor | None = None,
        compile: bool | str = False,
    ) -> None:
        super().__init__(net, process, parameterization, sigma_data=sigma_data, labels=labels, compile=compile)

    def evaluate(self, x: Tensor, t: float | Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor, Prediction]:
        """``E(x, t)`` (N,), the score (N, D) and the prediction (``eps``, Tweedie's ``x0hat``) at ``x`` (N, D)
        and ``t`` (scalar or (N,)), from one forward and one backward pass of the network."""
        a, sigma, da, ds, c_in, _, c_noise, y = self.network_inputs(x, t, y)
        # keep the graph of the gradient only where someone differentiates the result
        keep = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.net.parameters()))
        param = next(self.net.parameters(), None)
        net_dtype = param.dtype if param is not None else x.dtype
        with torch.enable_grad():
            u = c_in * x
            if not u.requires_grad:  # x is a constant here: u is the leaf to differentiate in
                u = u.detach().requires_grad_(True)
            e_tilde = self.call_network(u.to(net_dtype), c_noise.to(net_dtype), y)
            if e_tilde.shape != (x.shape[0],):
                raise ValueError(
                    f"an energy network returns one value per point, ({x.shape[0]},); got {tuple(e_tilde.shape)}"
                )
            (grad,) = torch.autograd.grad(e_tilde.sum(), u, create_graph=keep)
            grad_u = u + grad.to(x.dtype)  # grad_u E
            energy = 0.5 * (u**2).sum(1) + e_tilde.to(x.dtype)
        if not keep:
            energy, grad_u = energy.detach(), grad_u.detach()
        eps = sigma * c_in * grad_u
        return energy, -c_in * grad_u, self.prediction(x, a, sigma, da, ds, (x - sigma * eps) / a, eps)

    def predict(self, x: Tensor, t: float | Tensor, y: Tensor | None = None) -> Prediction:
        return self.evaluate(x, t, y)[2]

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        """``-grad_x E``, read directly (finite also where ``sigma = 0``, where ``-eps / sigma`` is not)."""
        return self.evaluate(x, t)[1]

    def score_and_denoise(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        _, s, pred = self.evaluate(x, t)
        return s, pred.x0

    def energy(self, x: Tensor, t: float | Tensor) -> Tensor:
        """``E(x, t)`` (N,): ``-log p_t(x)`` up to a constant per time."""
        return self.evaluate(x, t)[0]

    def log_prob(self, x: Tensor, t: float | Tensor) -> Tensor:
        """``log p_t(x) = -E(x, t)`` (N,), up to a constant per time."""
        return -self.evaluate(x, t)[0]

    def score_and_log_prob(self, x: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor]:
        """The score and ``-E`` from one forward and one backward pass."""
        energy, s, _ = self.evaluate(x, t)
        return s, -energy


def network_field(net: nn.Module, process: Process, parameterization: str = "eps", **options) -> NetworkField:
    """The field of a trained network in ``parameterization`` (one of ``PARAMETERIZATIONS``): an
    ``EnergyField`` for ``"energy"``, else a ``NetworkField``; ``options`` go to the constructor."""
    cls = EnergyField if parameterization in EnergyField.accepts else NetworkField
    return cls(net, process, parameterization, **options)
