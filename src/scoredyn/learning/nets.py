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

The noise level enters through a fixed embedding of ``c_noise`` (random Fourier features or
sinusoids), a small mapping MLP, and a per-block projection (Ho et al. 2020; Karras et al. 2022).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["NETS", "FourierEmbedding", "SinusoidalEmbedding", "MLP", "UNet", "EGNN", "build_net"]

NETS: tuple[str, ...] = ("mlp", "unet", "egnn")
EMBEDDINGS: tuple[str, ...] = ("fourier", "sinusoidal")


# --- noise-level embeddings ----------------------------------------------------------------------


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
            without turning into a hash of ``c`` (see the module tests and the issue report).
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


def _noise_embedding(kind: str, dim: int) -> nn.Module:
    if kind == "fourier":
        return FourierEmbedding(dim)
    if kind == "sinusoidal":
        return SinusoidalEmbedding(dim)
    raise ValueError(f"embedding must be one of {', '.join(EMBEDDINGS)}, got {kind!r}")


class _Conditioning(nn.Module):
    """``e = map(gamma(c_noise) + E[y])``: the noise embedding plus the class embedding (summed), then
    a two-layer SiLU mapping network, as in DDPM's time embedding and EDM's ``map_layer0/1``."""

    def __init__(self, emb_dim: int, out_dim: int, num_classes: int, embedding: str) -> None:
        super().__init__()
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.num_classes = num_classes
        self.noise = _noise_embedding(embedding, emb_dim)
        # row num_classes is the null class (y=None or dropped labels)
        self.label = nn.Embedding(num_classes + 1, emb_dim) if num_classes > 0 else None
        self.map = nn.Sequential(nn.Linear(emb_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim), nn.SiLU())

    def forward(self, c_noise: Tensor, y: Tensor | None) -> Tensor:
        e = self.noise(c_noise)
        if self.label is not None:
            if y is None:
                y = torch.full((c_noise.shape[0],), self.num_classes, dtype=torch.long, device=c_noise.device)
            e = e + self.label(y)
        return self.map(e)


def _check_inputs(x: Tensor, c_noise: Tensor, y: Tensor | None, dim: int) -> None:
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"x must have shape (N, {dim}), got {tuple(x.shape)}")
    if c_noise.shape != (x.shape[0],):
        raise ValueError(f"c_noise must have shape ({x.shape[0]},), got {tuple(c_noise.shape)}")
    if y is not None and y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},) or be None, got {tuple(y.shape)}")


# --- MLP ---------------------------------------------------------------------------------------------


class _MLPBlock(nn.Module):
    """Pre-norm residual block ``h + W_2 silu(W_1 silu(norm h) + P e)``."""

    def __init__(self, hidden: int, emb_out: int, norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden) if norm else nn.Identity()
        self.fc1 = nn.Linear(hidden, hidden)
        self.emb = nn.Linear(emb_out, hidden)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        r = self.fc1(nn.functional.silu(self.norm(h))) + self.emb(e)
        return h + self.fc2(nn.functional.silu(r))


class MLP(nn.Module):
    """Residual MLP with noise (and class) conditioning in every block, for points in ``R^D``.

    The input is lifted to ``hidden`` units, passed through ``depth`` pre-norm residual blocks
    (He et al. 2016, "Identity Mappings in Deep Residual Networks") each adding a projection of the
    conditioning ``e`` (Ho et al. 2020), and read out by a zero-initialised linear layer.

    Args:
        dim: ``D``, input and output width.
        hidden: width of the residual stream.
        depth: number of residual blocks.
        emb_dim: width of the noise / class embedding.
        num_classes: ``C``; ``0`` for an unconditional net.
        embedding: ``"fourier"`` or ``"sinusoidal"``.
        norm: LayerNorm at the head of each block (Ba et al. 2016).
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 256,
        depth: int = 4,
        emb_dim: int = 128,
        num_classes: int = 0,
        embedding: str = "fourier",
        norm: bool = True,
    ) -> None:
        super().__init__()
        for name, v in (("dim", dim), ("hidden", hidden), ("depth", depth)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        self.dim, self.num_classes = dim, num_classes
        self.cond = _Conditioning(emb_dim, hidden, num_classes, embedding)
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(_MLPBlock(hidden, hidden, norm) for _ in range(depth))
        self.out_norm = nn.LayerNorm(hidden) if norm else nn.Identity()
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, c_noise: Tensor, y: Tensor | None = None) -> Tensor:
        """``x`` ``(N, D)``, ``c_noise`` ``(N,)``, ``y`` ``(N,)`` or ``None`` -> ``(N, D)``."""
        _check_inputs(x, c_noise, y, self.dim)
        e = self.cond(c_noise, y)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, e)
        return self.out(nn.functional.silu(self.out_norm(h)))


# --- U-Net -------------------------------------------------------------------------------------------


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
        self.cond = _Conditioning(emb_dim, e_out, num_classes, embedding)
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
        _check_inputs(x, c_noise, y, self.dim)
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


# --- E(n)-equivariant graph network ------------------------------------------------------------------


def _mlp2(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.SiLU(), nn.Linear(hidden, d_out))


class _EGCL(nn.Module):
    """One equivariant graph convolutional layer (Satorras et al. 2021, eqs. 3-6) on the complete graph:

    .. math:: m_{ij} = \\phi_e(h_i, h_j, \\|x_i - x_j\\|^2, a_{ij}, e), \\quad
        x_i \\leftarrow x_i + \\frac{1}{n - 1} \\sum_{j \\ne i}
        \\frac{x_i - x_j}{\\sqrt{1 + \\|x_i - x_j\\|^2}} \\phi_x(m_{ij}), \\quad
        h_i \\leftarrow h_i + \\phi_h(h_i, \\textstyle\\sum_{j \\ne i} m_{ij}).

    The edge attribute ``a_ij`` is the squared distance of the layer stack's input, ``e`` the noise
    embedding. The difference vectors are divided by ``sqrt(1 + d^2)`` (a smooth version of the
    normalisation of Satorras et al. 2021b, E(n) normalizing flows), so a layer moves a particle by at
    most ``|phi_x|`` per neighbour however far apart the particles are.
    """

    def __init__(self, hidden: int, emb_out: int) -> None:
        super().__init__()
        # phi_e's first linear layer on [h_i, h_j, d_ij^2, a_ij, e], applied piecewise (node terms
        # once per node, not once per edge): the same function as one Linear on the concatenation
        self.e_nodes = nn.Linear(hidden, 2 * hidden)
        self.e_pair = nn.Linear(2, hidden, bias=False)
        self.e_noise = nn.Linear(emb_out, hidden, bias=False)
        self.phi_e = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.phi_x = _mlp2(hidden, hidden, 1)
        self.phi_h = _mlp2(2 * hidden, hidden, hidden)
        nn.init.zeros_(self.phi_x[-1].weight)  # an untrained layer leaves the positions in place
        nn.init.zeros_(self.phi_x[-1].bias)

    def forward(self, h: Tensor, x: Tensor, a: Tensor, e: Tensor, off: Tensor) -> tuple[Tensor, Tensor]:
        """``h`` (N, n, H), ``x`` (N, n, d), ``a`` (N, n, n, 1), ``e`` (N, E), ``off`` (n, n, 1) 0 on the diagonal."""
        n = x.shape[1]
        diff = x[:, :, None, :] - x[:, None, :, :]  # x_i - x_j, (N, n, n, d)
        d2 = diff.square().sum(-1, keepdim=True)
        hi, hj = self.e_nodes(h).chunk(2, dim=-1)
        z = hi[:, :, None, :] + hj[:, None, :, :] + self.e_pair(torch.cat([d2, a], -1)) + self.e_noise(e)[:, None, None]
        m = self.phi_e(z) * off  # eq. 3, no self-messages
        x = x + (diff * torch.rsqrt(1.0 + d2) * self.phi_x(m) * off).sum(2) / (n - 1)  # eq. 4
        h = h + self.phi_h(torch.cat([h, m.sum(2)], dim=-1))  # eqs. 5-6, residual
        return h, x


class EGNN(nn.Module):
    """E(n)-equivariant graph network for ``n`` identical particles in ``R^d`` (Satorras, Hoogeboom &
    Welling 2021, "E(n) Equivariant Graph Neural Networks", eqs. 3-6), as a noise-conditioned predictor.

    The node features start as the (noise and class) conditioning ``e``, the same for every particle;
    ``depth`` layers ``_EGCL`` update features and positions; the output is the displacement

    .. math:: F_i = x_i^{(L)} - x_i^{(0)} - \\frac{1}{n} \\sum_k (x_k^{(L)} - x_k^{(0)}),

    which is rotation-, reflection- and permutation-equivariant, translation-invariant and has zero
    centre of mass: an eps, v or x0 - x field of a centred particle density. An untrained net predicts 0.

    Args:
        n_particles: ``n`` (>= 2); the input has ``D = n d`` entries, particle ``i`` at ``[i d, (i+1) d)``.
        spatial_dim: ``d``.
        hidden: width of node features and messages.
        depth: number of layers ``L``.
        emb_dim: width of the noise / class embedding.
        num_classes: ``C``; ``0`` for an unconditional net.
        embedding: ``"fourier"`` or ``"sinusoidal"``.
    """

    def __init__(
        self,
        n_particles: int,
        spatial_dim: int,
        hidden: int = 64,
        depth: int = 4,
        emb_dim: int = 64,
        num_classes: int = 0,
        embedding: str = "fourier",
    ) -> None:
        super().__init__()
        if n_particles < 2:
            raise ValueError(f"n_particles must be >= 2, got {n_particles}")
        for name, v in (("spatial_dim", spatial_dim), ("hidden", hidden), ("depth", depth)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        self.n, self.d, self.num_classes = n_particles, spatial_dim, num_classes
        self.dim = n_particles * spatial_dim
        self.cond = _Conditioning(emb_dim, hidden, num_classes, embedding)
        self.layers = nn.ModuleList(_EGCL(hidden, hidden) for _ in range(depth))
        self.register_buffer("off", 1.0 - torch.eye(n_particles)[:, :, None], persistent=False)

    def forward(self, x: Tensor, c_noise: Tensor, y: Tensor | None = None) -> Tensor:
        """``x`` ``(N, n d)``, ``c_noise`` ``(N,)``, ``y`` ``(N,)`` or ``None`` -> ``(N, n d)``."""
        _check_inputs(x, c_noise, y, self.dim)
        e = self.cond(c_noise, y)
        x0 = x.reshape(-1, self.n, self.d)
        a = (x0[:, :, None, :] - x0[:, None, :, :]).square().sum(-1, keepdim=True)  # a_ij = |x_i - x_j|^2
        h, pos, off = e[:, None, :].expand(-1, self.n, -1), x0, self.off.to(x.dtype)
        for layer in self.layers:
            h, pos = layer(h, pos, a, e, off)
        dx = pos - x0
        return (dx - dx.mean(dim=1, keepdim=True)).reshape(x.shape[0], self.dim)


# --- construction by name ----------------------------------------------------------------------------


def build_net(kind: str, dim: int, num_classes: int = 0, **kwargs) -> nn.Module:
    """The network ``kind`` (one of ``NETS``) for data of dimension ``dim``.

    ``kwargs`` go to the constructor. A ``unet`` needs ``dim = side^2 * in_channels``; ``side`` is
    inferred from ``dim`` and ``in_channels`` (default 1) unless given. An ``egnn`` needs
    ``n_particles`` and ``dim = n_particles * spatial_dim``; ``spatial_dim`` is inferred unless given.
    """
    if kind == "mlp":
        return MLP(dim, num_classes=num_classes, **kwargs)
    if kind == "unet":
        c = kwargs.get("in_channels", 1)
        side = kwargs.pop("side", None)
        if side is None:
            side = math.isqrt(dim // c) if dim > 0 and c > 0 and dim % c == 0 else 0
        if side < 1 or side * side * c != dim:
            raise ValueError(
                f"unet needs dim = side * side * in_channels, got dim={dim}, side={side}, in_channels={c}"
            )
        return UNet(side=side, num_classes=num_classes, **kwargs)
    if kind == "egnn":
        n = kwargs.pop("n_particles", 0)
        d = kwargs.pop("spatial_dim", dim // n if n >= 2 else 0)
        if n < 2 or d < 1 or n * d != dim:
            raise ValueError(f"egnn needs n_particles >= 2 and dim = n_particles * spatial_dim, got dim={dim}, "
                             f"n_particles={n}, spatial_dim={d}")  # fmt: skip
        return EGNN(n, d, num_classes=num_classes, **kwargs)
    raise ValueError(f"unknown net {kind!r}: use one of {', '.join(NETS)}")
