"""A small U-Net for ``side x side`` images (8x8 digits), flattened in and out."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .embeddings import Conditioning, check_inputs

__all__ = ["UNet", "build_unet"]


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class _ResBlock(nn.Module):
    """``x + conv(drop(silu(AdaGN(conv(silu(GN x)), e))))``, with adaptive group norm
    ``GN(h) (1 + scale(e)) + shift(e)`` (Dhariwal & Nichol 2021, sec. 3; Nichol & Dhariwal 2021)."""

    def __init__(self, c_in: int, c_out: int, emb_out: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = _group_norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_out, 2 * c_out)
        self.norm2 = _group_norm(c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        scale, shift = self.emb(e)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.drop(nn.functional.silu(h)))
        return self.skip(x) + h


class UNet(nn.Module):
    """A small U-Net for ``side x side`` images (8x8 digits), flattened in and out.

    Ronneberger et al. 2015 (U-Net), in the form used for diffusion by Ho et al. 2020 (DDPM) with
    the scale/shift conditioning of Dhariwal & Nichol 2021: one residual block per resolution on the
    way down (``side -> side/2 [-> side/4]`` by average pooling), a middle block, and on the way up
    one residual block per resolution fed the matching down-path activation (skip connection).

    Args:
        side: image side; the input has ``D = side * side * in_channels`` entries.
        channels: base channel count.
        channel_mult: channels per resolution, relative to ``channels``; 2 or 3 entries (8 -> 4 -> 2).
        emb_dim: width of the noise / class embedding.
        num_classes: ``C``; ``0`` for an unconditional net.
        in_channels: image channels.
        dropout: dropout inside residual blocks.
        embedding: ``"fourier"`` or ``"sinusoidal"``.
    """

    def __init__(
        self,
        side: int = 8,
        channels: int = 32,
        channel_mult: tuple[int, ...] = (1, 2),
        emb_dim: int = 128,
        num_classes: int = 0,
        in_channels: int = 1,
        dropout: float = 0.0,
        embedding: str = "fourier",
    ) -> None:
        super().__init__()
        levels = len(channel_mult)
        if levels < 1 or side % 2 ** (levels - 1):
            raise ValueError(f"side {side} must be divisible by 2^(len(channel_mult) - 1) = {2 ** (levels - 1)}")
        if channels < 1 or in_channels < 1 or min(channel_mult) < 1:
            raise ValueError("channels, in_channels and channel_mult entries must be >= 1")
        self.side, self.in_channels, self.num_classes = side, in_channels, num_classes
        self.dim = side * side * in_channels
        width = [channels * m for m in channel_mult]
        e_out = 4 * channels
        self.cond = Conditioning(emb_dim, e_out, num_classes, embedding)
        self.inp = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.down = nn.ModuleList()
        c = channels
        for w in width:
            self.down.append(_ResBlock(c, w, e_out, dropout))
            c = w
        self.mid = _ResBlock(c, c, e_out, dropout)
        self.up = nn.ModuleList()
        for w in reversed(width):
            self.up.append(_ResBlock(c + w, w, e_out, dropout))
            c = w
        self.out_norm = _group_norm(c)
        self.out = nn.Conv2d(c, in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, c_noise: Tensor, y: Tensor | None = None) -> Tensor:
        """``x`` ``(N, D)``, ``c_noise`` ``(N,)``, ``y`` ``(N,)`` or ``None`` -> ``(N, D)``."""
        check_inputs(x, c_noise, y, self.dim)
        e = self.cond(c_noise, y)
        h = self.inp(x.reshape(-1, self.in_channels, self.side, self.side))
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                h = nn.functional.avg_pool2d(h, 2)
            h = block(h, e)
            skips.append(h)
        h = self.mid(h, e)
        for i, block in enumerate(self.up):
            if i > 0:
                h = nn.functional.interpolate(h, scale_factor=2.0, mode="nearest")
            h = block(torch.cat([h, skips.pop()], dim=1), e)
        h = self.out(nn.functional.silu(self.out_norm(h)))
        return h.reshape(x.shape[0], self.dim)


def build_unet(dim: int, num_classes: int = 0, **kwargs) -> UNet:
    """A ``UNet`` for images of ``dim = side^2 * in_channels`` entries; ``side`` is inferred from ``dim``
    and ``in_channels`` (default 1) unless given; ``kwargs`` go to the constructor."""
    c = kwargs.get("in_channels", 1)
    side = kwargs.pop("side", None)
    if side is None:
        side = math.isqrt(dim // c) if dim > 0 and c > 0 and dim % c == 0 else 0
    if side < 1 or side * side * c != dim:
        raise ValueError(f"unet needs dim = side * side * in_channels, got dim={dim}, side={side}, in_channels={c}")
    return UNet(side=side, num_classes=num_classes, **kwargs)
