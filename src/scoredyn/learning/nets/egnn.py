"""An E(n)-equivariant graph network for configurations of ``n`` identical particles."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .embeddings import Conditioning, check_inputs

__all__ = ["EGNN", "build_egnn"]


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
        self.cond = Conditioning(emb_dim, hidden, num_classes, embedding)
        self.layers = nn.ModuleList(_EGCL(hidden, hidden) for _ in range(depth))
        self.register_buffer("off", 1.0 - torch.eye(n_particles)[:, :, None], persistent=False)

    def forward(self, x: Tensor, c_noise: Tensor, y: Tensor | None = None) -> Tensor:
        """``x`` ``(N, n d)``, ``c_noise`` ``(N,)``, ``y`` ``(N,)`` or ``None`` -> ``(N, n d)``."""
        check_inputs(x, c_noise, y, self.dim)
        e = self.cond(c_noise, y)
        x0 = x.reshape(-1, self.n, self.d)
        a = (x0[:, :, None, :] - x0[:, None, :, :]).square().sum(-1, keepdim=True)  # a_ij = |x_i - x_j|^2
        h, pos, off = e[:, None, :].expand(-1, self.n, -1), x0, self.off.to(x.dtype)
        for layer in self.layers:
            h, pos = layer(h, pos, a, e, off)
        dx = pos - x0
        return (dx - dx.mean(dim=1, keepdim=True)).reshape(x.shape[0], self.dim)


def build_egnn(dim: int, num_classes: int = 0, **kwargs) -> EGNN:
    """An ``EGNN`` for ``n_particles`` (a keyword, >= 2) particles with ``dim = n_particles * spatial_dim``;
    ``spatial_dim`` is inferred unless given; the other ``kwargs`` go to the constructor."""
    n = kwargs.pop("n_particles", 0)
    d = kwargs.pop("spatial_dim", dim // n if n >= 2 else 0)
    if n < 2 or d < 1 or n * d != dim:
        raise ValueError(f"egnn needs n_particles >= 2 and dim = n_particles * spatial_dim, got dim={dim}, "
                         f"n_particles={n}, spatial_dim={d}")  # fmt: skip
    return EGNN(n, d, num_classes=num_classes, **kwargs)
