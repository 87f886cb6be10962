"""The conditioning every net shares: fixed embeddings of the noise level (random Fourier features,
sinusoids), the class embedding with its null class, the mapping network, and the input checks."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["EMBEDDINGS", "FourierEmbedding", "SinusoidalEmbedding", "noise_embedding", "Conditioning", "check_inputs"]

EMBEDDINGS: tuple[str, ...] = ("fourier", "sinusoidal")


class FourierEmbedding(nn.Module):
    """Random Fourier features of a scalar: the Gaussian Fourier projection.

    Tancik et al. 2020, "Fourier Features Let Networks Learn High Frequency Functions"; Song et al.
    2021, "Score-Based Generative Modeling through SDEs" (``GaussianFourierProjection``):

    .. math:: \\gamma(c) = [\\cos(2\\pi b c), \\sin(2\\pi b c)], \\quad b_i \\sim N(0, s^2).

    The frequencies ``b`` are a buffer (saved with the weights, never trained), drawn from a local
    ``torch.Generator`` seeded with ``seed``, so they do not depend on (or advance) the global RNG.

    Args:
        dim: output width (even).
        scale: the frequency standard deviation ``s``. The default suits ``c_noise`` in ``[-2, 2]``:
            ``2 pi s |c|`` spans a few to a few tens of radians, so features separate noise levels
            without turning into a hash of ``c``.
        seed: seed of the frequencies.
    """

    def __init__(self, dim: int, scale: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"dim must be a positive even number, got {dim}")
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("freqs", torch.randn(dim // 2, generator=g) * scale)

    def forward(self, c: Tensor) -> Tensor:
        """``c``: ``(N,)`` -> ``(N, dim)``."""
        phase = 2 * math.pi * c.to(self.freqs.dtype)[:, None] * self.freqs[None, :]
        return torch.cat([phase.cos(), phase.sin()], dim=1)


class SinusoidalEmbedding(nn.Module):
    """Transformer sinusoids of a scalar (Vaswani et al. 2017, sec. 3.5; Ho et al. 2020, DDPM):

    .. math:: \\gamma(c) = [\\cos(a c\\, \\omega_i), \\sin(a c\\, \\omega_i)], \\quad
        \\omega_i = P^{-i / (d/2)}, \\ i = 0, \\dots, d/2 - 1.

    DDPM feeds integer steps in ``[0, 1000)``; ``c_noise`` lives in ``[-2, 2]``, so ``c`` is first
    multiplied by ``input_scale`` ``a`` (default 1000/4: the ``[-2, 2]`` range then covers about as
    many periods of the fastest sinusoid as DDPM's step range does).

    Args:
        dim: output width (even).
        max_period: ``P``, the slowest period (in units of ``a c``).
        input_scale: ``a``.
    """

    def __init__(self, dim: int, max_period: float = 10000.0, input_scale: float = 250.0) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"dim must be a positive even number, got {dim}")
        half = dim // 2
        omega = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", omega * input_scale)

    def forward(self, c: Tensor) -> Tensor:
        """``c``: ``(N,)`` -> ``(N, dim)``."""
        phase = c.to(self.freqs.dtype)[:, None] * self.freqs[None, :]
        return torch.cat([phase.cos(), phase.sin()], dim=1)


def noise_embedding(kind: str, dim: int) -> nn.Module:
    """The noise-level embedding ``kind`` (one of ``EMBEDDINGS``) of width ``dim``, with its defaults."""
    if kind == "fourier":
        return FourierEmbedding(dim)
    if kind == "sinusoidal":
        return SinusoidalEmbedding(dim)
    raise ValueError(f"embedding must be one of {', '.join(EMBEDDINGS)}, got {kind!r}")


class Conditioning(nn.Module):
    """``e = map(gamma(c_noise) + E[y])``: the noise embedding plus the class embedding (summed), then
    a two-layer SiLU mapping network, as in DDPM's time embedding and EDM's ``map_layer0/1``
    (Ho et al. 2020; Karras et al. 2022).

    Args:
        emb_dim: width of the noise / class embedding.
        out_dim: width of ``e``.
        num_classes: ``C``; ``C + 1`` label embeddings, row ``C`` the null class; ``0`` for none.
        embedding: ``"fourier"`` or ``"sinusoidal"``.
    """

    def __init__(self, emb_dim: int, out_dim: int, num_classes: int, embedding: str) -> None:
        super().__init__()
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.num_classes = num_classes
        self.noise = noise_embedding(embedding, emb_dim)
        # row num_classes is the null class (y=None or dropped labels)
        self.label = nn.Embedding(num_classes + 1, emb_dim) if num_classes > 0 else None
        self.map = nn.Sequential(nn.Linear(emb_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim), nn.SiLU())

    def forward(self, c_noise: Tensor, y: Tensor | None) -> Tensor:
        """``c_noise`` ``(N,)``, ``y`` ``(N,)`` or ``None`` (the null class) -> ``e`` ``(N, out_dim)``."""
        e = self.noise(c_noise)
        if self.label is not None:
            if y is None:
                y = torch.full((c_noise.shape[0],), self.num_classes, dtype=torch.long, device=c_noise.device)
            e = e + self.label(y)
        return self.map(e)


def check_inputs(x: Tensor, c_noise: Tensor, y: Tensor | None, dim: int) -> None:
    """Raise ``ValueError`` naming the argument unless ``x`` is ``(N, dim)``, ``c_noise`` ``(N,)`` and
    ``y`` ``(N,)`` or ``None``."""
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"x must have shape (N, {dim}), got {tuple(x.shape)}")
    if c_noise.shape != (x.shape[0],):
        raise ValueError(f"c_noise must have shape ({x.shape[0]},), got {tuple(c_noise.shape)}")
    if y is not None and y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},) or be None, got {tuple(y.shape)}")
