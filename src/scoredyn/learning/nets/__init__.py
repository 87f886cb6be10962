"""Networks that learn a score field: a residual MLP for points, a small U-Net for 8x8 digits and an
E(n)-equivariant graph network for configurations of identical particles.

Every net has one calling convention, ``net(x, c_noise, y=None) -> F``:

- ``x``: ``(N, D)`` float, the (preconditioned) noisy input; images flattened;
- ``c_noise``: ``(N,)`` float, the noise conditioning (``NetworkField`` passes ``0.25 log(sigma/alpha)``,
  roughly in ``[-2, 2]``);
- ``y``: ``(N,)`` int64 class labels, or ``None``. A conditional net (``num_classes = C > 0``) has
  ``C + 1`` label embeddings; row ``C`` is the null class ("no label", for classifier-free guidance,
  Ho & Salimans 2022) and ``y=None`` means the null class for every sample.
- output: ``(N, D)``, what the parameterization asks the net to predict (eps, x0, v, score, or
  EDM's ``F``). The last layer is zero-initialised, so an untrained net predicts 0.

An energy net (``ENERGY_NETS``, for the ``energy`` parameterization) has the same inputs and returns
one number per point, ``(N,)``, that ``core.fields.EnergyField`` differentiates in ``x``.

The noise level enters through a fixed embedding of ``c_noise`` (random Fourier features or
sinusoids), a small mapping MLP, and a per-block projection (Ho et al. 2020; Karras et al. 2022):
``embeddings``. Each net is one module with its builder (``dim`` and the table's options -> the net);
adding a net is one module plus one line in ``NETS`` below.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .egnn import EGNN, build_egnn
from .embeddings import EMBEDDINGS, Conditioning, FourierEmbedding, SinusoidalEmbedding, check_inputs, noise_embedding
from .energy import EnergyMLP, build_energy_mlp
from .mlp import MLP, build_mlp
from .unet import UNet, build_unet

__all__ = [
    "NETS",
    "EMBEDDINGS",
    "FourierEmbedding",
    "SinusoidalEmbedding",
    "noise_embedding",
    "Conditioning",
    "check_inputs",
    "MLP",
    "UNet",
    "EGNN",
    "build_mlp",
    "build_unet",
    "build_egnn",
    "build_net",
    "ENERGY_NETS",
    "EnergyMLP",
    "build_energy_mlp",
]

NETS: dict[str, Callable[..., nn.Module]] = {"mlp": build_mlp, "unet": build_unet, "egnn": build_egnn}

#: The scalar-energy version of a net of ``NETS``, by the same name (what ``energy`` models train).
ENERGY_NETS: dict[str, Callable[..., nn.Module]] = {"mlp": build_energy_mlp}


def build_net(kind: str, dim: int, num_classes: int = 0, *, energy: bool = False, **kwargs) -> nn.Module:
    """The network ``kind`` (one of ``NETS``) for data of dimension ``dim``.

    ``kwargs`` go to the constructor. A ``unet`` needs ``dim = side^2 * in_channels``; ``side`` is
    inferred from ``dim`` and ``in_channels`` (default 1) unless given. An ``egnn`` needs
    ``n_particles`` and ``dim = n_particles * spatial_dim``; ``spatial_dim`` is inferred unless given.

    Args:
        kind: the net's name.
        dim: ``D``, the data's dimension.
        num_classes: ``C``; ``0`` for an unconditional net.
        energy: the scalar-energy version of the net (``ENERGY_NETS``), for the ``energy`` parameterization.
    """
    if kind not in NETS:
        raise ValueError(f"unknown net {kind!r}: use one of {', '.join(NETS)}")
    if energy and kind not in ENERGY_NETS:
        raise ValueError(f"net {kind!r} has no energy version: use one of {', '.join(ENERGY_NETS)}")
    return (ENERGY_NETS if energy else NETS)[kind](dim, num_classes, **kwargs)
