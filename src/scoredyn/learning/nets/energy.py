"""A scalar-energy MLP: the residual MLP's trunk read out to one number per point, for energy models.

``EnergyMLP(u, c_noise, y) -> E~`` (N,) is the learned part of the energy of ``core.fields.EnergyField``,
``E = 1/2 ||u||^2 + E~``, which the field differentiates in its input. The trunk is ``MLP``'s (the same
blocks, conditioning and sizes, so an energy model and an eps model of the same size compare directly);
its read-out is ``E~ = w^T silu(LayerNorm h)``, zero-initialised (an untrained field is the Gaussian of
the skip term) and without a bias (a constant energy changes nothing). The LayerNorm bounds ``E~``, so
``E`` keeps the Gaussian tails of ``1/2 ||u||^2``. Why a scalar read-out and not ``1/2 ||u - F(u)||^2``:
see ``core.fields.energy``.
"""

from __future__ import annotations

from torch import Tensor, nn

from .embeddings import check_inputs
from .mlp import MLP

__all__ = ["EnergyMLP", "build_energy_mlp"]


class EnergyMLP(nn.Module):
    """The residual ``MLP`` with a scalar read-out: ``(N, D) -> (N,)``.

    Args:
        dim: ``D``, the input width.
        hidden, depth, emb_dim, num_classes, embedding, norm: as for ``MLP`` (``norm`` also bounds the
            read-out).
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
        self.dim, self.num_classes = dim, num_classes
        self.mlp = MLP(dim, hidden, depth, emb_dim, num_classes, embedding, norm)
        self.mlp.out = nn.Linear(hidden, 1, bias=False)  # the scalar read-out w
        nn.init.zeros_(self.mlp.out.weight)

    def forward(self, x: Tensor, c_noise: Tensor, y: Tensor | None = None) -> Tensor:
        """``x`` ``(N, D)``, ``c_noise`` ``(N,)``, ``y`` ``(N,)`` or ``None`` -> ``E~`` ``(N,)``."""
        check_inputs(x, c_noise, y, self.dim)
        return self.mlp(x, c_noise, y)[:, 0]


def build_energy_mlp(dim: int, num_classes: int = 0, **kwargs) -> EnergyMLP:
    """An ``EnergyMLP`` for data of dimension ``dim``; ``kwargs`` go to the constructor."""
    return EnergyMLP(dim, num_classes=num_classes, **kwargs)
