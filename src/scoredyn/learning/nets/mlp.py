"""A residual MLP with noise (and class) conditioning in every block, for points in ``R^D``."""

from __future__ import annotations

from torch import Tensor, nn

from .embeddings import Conditioning, check_inputs

__all__ = ["MLP", "build_mlp"]


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
        self.cond = Conditioning(emb_dim, hidden, num_classes, embedding)
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(_MLPBlock(hidden, hidden, norm) for _ in range(depth))
        self.out_norm = nn.LayerNorm(hidden) if norm else nn.Identity()
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, c_noise: Tensor, y: Tensor | None = None) -> Tensor:
        """``x`` ``(N, D)``, ``c_noise`` ``(N,)``, ``y`` ``(N,)`` or ``None`` -> ``(N, D)``."""
        check_inputs(x, c_noise, y, self.dim)
        e = self.cond(c_noise, y)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, e)
        return self.out(nn.functional.silu(self.out_norm(h)))


def build_mlp(dim: int, num_classes: int = 0, **kwargs) -> MLP:
    """An ``MLP`` for data of dimension ``dim``; ``kwargs`` go to the constructor."""
    return MLP(dim, num_classes=num_classes, **kwargs)
