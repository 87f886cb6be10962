"""Potential energies ``U(x)`` with exact, analytic forces ``F = -grad U``.

Every potential takes a batch ``x`` of shape ``(N, D)`` and returns ``energy(x)`` of shape ``(N,)``
and ``force(x)`` of shape ``(N, D)`` in ``x``'s dtype (float64 works throughout). The forces are
written out by hand and checked against autograd in the tests.

Particle systems flatten ``n_particles`` positions in ``spatial_dim`` dimensions to
``D = n_particles * spatial_dim`` (particle-major: ``x[:, i*d:(i+1)*d]`` is particle ``i``).

The two-dimensional potentials carry ``box = ((x_lo, x_hi), (y_lo, y_hi))``: the rectangle outside
which their Boltzmann density is negligible at the temperature they are studied at; the exact
quadratures of :mod:`scoredyn.physics.boltzmann` integrate over it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.tensors import PerDevice

__all__ = [
    "Potential",
    "DoubleWell2D",
    "MullerBrown",
    "PairPotential",
    "DoubleWellPairs",
    "LennardJones",
    "pair_distances",
]

Box = tuple[tuple[float, float], tuple[float, float]]


class Potential:
    """A potential energy ``U: R^D -> R`` with its force ``-grad U``."""

    name: str = "potential"
    dim: int
    box: Box | None = None

    def energy(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def force(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _check(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must be an (N, {self.dim}) tensor, got shape {tuple(getattr(x, 'shape', ()))}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class DoubleWell2D(Potential):
    """A tilted double well in ``x`` with a harmonic ``y``:

    .. math::
        U(x, y) = h\\,(x^2 - 1)^2 + s\\,x + \\tfrac{k}{2}\\, y^2 .

    Defaults ``h = 3, s = 0.5, k = 1``, studied at ``kT = 1``: minima ``U = -0.505`` at ``x = -1.020``
    and ``U = +0.495`` at ``x = 0.978``, saddle ``U = 3.010`` at ``x = 0.042``; barriers of 3.5 kT and
    2.5 kT, and the left well holds 0.712 of the mass, so both wells are populated and crossed often.
    """

    name = "double-well"
    dim = 2

    def __init__(self, h: float = 3.0, s: float = 0.5, k: float = 1.0) -> None:
        if h <= 0 or k <= 0:
            raise ValueError(f"h and k must be positive, got h={h}, k={k}")
        self.h, self.s, self.k = float(h), float(s), float(k)
        self.box = ((-2.2, 2.2), (-8.0, 8.0))

    def energy(self, x: Tensor) -> Tensor:
        self._check(x)
        q, y = x[:, 0], x[:, 1]
        return self.h * (q**2 - 1.0) ** 2 + self.s * q + 0.5 * self.k * y**2

    def force(self, x: Tensor) -> Tensor:
        self._check(x)
        q, y = x[:, 0], x[:, 1]
        dU_dq = 4.0 * self.h * q * (q**2 - 1.0) + self.s
        return torch.stack([-dU_dq, -self.k * y], dim=1)


_MB_NAMES = ("A", "a", "b", "c", "x0", "y0")  # the Müller–Brown coefficients, four each


class MullerBrown(Potential):
    """The Müller–Brown potential (Müller & Brown 1979, Theor. Chim. Acta 53, 75), scaled by ``scale``:

    .. math::
        U(x, y) = \\text{scale} \\sum_{k=1}^{4} A_k \\exp\\big(a_k (x - x^0_k)^2
            + b_k (x - x^0_k)(y - y^0_k) + c_k (y - y^0_k)^2\\big)

    with ``A = (-200, -100, -170, 15)``, ``a = (-1, -1, -6.5, 0.7)``, ``b = (0, 0, 11, 0.6)``,
    ``c = (-10, -10, -6.5, 0.7)``, ``x0 = (1, 0, -0.5, -1)``, ``y0 = (0, 0.5, 1.5, 1)``. Unscaled, its
    minima are ``U = -146.70`` at ``(-0.558, 1.442)``, ``-108.17`` at ``(0.623, 0.028)`` and ``-80.77`` at
    ``(-0.050, 0.467)``; saddles ``-40.66`` at ``(-0.822, 0.624)`` and ``-72.25`` at ``(0.212, 0.293)``.
    The default ``scale = 0.05`` is studied at ``kT = 1`` (the unscaled potential at ``kT = 20``):
    the three basins hold about 0.77 / 0.18 / 0.05 of the mass and the barrier out of the deepest
    basin is 5.3 kT. The plateau around the wells keeps some mass at ``kT = 20``: the box
    ``[-3, 2] x [-1.5, 3.5]`` leaves out about 1e-7 of it.
    """

    name = "muller-brown"
    dim = 2
    A = (-200.0, -100.0, -170.0, 15.0)
    a = (-1.0, -1.0, -6.5, 0.7)
    b = (0.0, 0.0, 11.0, 0.6)
    c = (-10.0, -10.0, -6.5, 0.7)
    x0 = (1.0, 0.0, -0.5, -1.0)
    y0 = (0.0, 0.5, 1.5, 1.0)

    def __init__(self, scale: float = 0.05) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.scale = float(scale)
        self.box = ((-3.0, 2.0), (-1.5, 3.5))
        # the coefficients as tensors, moved to the walkers' device once
        self._coefficients = PerDevice(*(torch.tensor(getattr(self, n), dtype=torch.float64) for n in _MB_NAMES))

    def _coefficients_like(self, x: Tensor) -> dict[str, Tensor]:
        """``A, a, b, c, x0, y0`` in ``x``'s dtype and on its device."""
        return {n: v.to(x.dtype) for n, v in zip(_MB_NAMES, self._coefficients.on(x.device), strict=True)}

    def _terms(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        """``A_k exp(...)`` (N, 4), the offsets ``dx, dy`` (N, 4), and the coefficients they used."""
        p = self._coefficients_like(x)
        dx = x[:, :1] - p["x0"]
        dy = x[:, 1:] - p["y0"]
        e = p["A"] * torch.exp(p["a"] * dx**2 + p["b"] * dx * dy + p["c"] * dy**2)
        return e, dx, dy, p

    def energy(self, x: Tensor) -> Tensor:
        self._check(x)
        e = self._terms(x)[0]
        return self.scale * e.sum(dim=1)

    def force(self, x: Tensor) -> Tensor:
        self._check(x)
        e, dx, dy, p = self._terms(x)
        a, b, c = p["a"], p["b"], p["c"]
        dU_dx = (e * (2.0 * a * dx + b * dy)).sum(dim=1)
        dU_dy = (e * (b * dx + 2.0 * c * dy)).sum(dim=1)
        return -self.scale * torch.stack([dU_dx, dU_dy], dim=1)


def pair_distances(x: Tensor, n_particles: int) -> Tensor:
    """All ``n (n - 1) / 2`` interparticle distances ``d_ij`` (``i < j``, row-major), shape ``(N, n(n-1)/2)``."""
    pos = x.reshape(x.shape[0], n_particles, -1)
    i, j = torch.triu_indices(n_particles, n_particles, offset=1, device=x.device)
    return torch.linalg.vector_norm(pos[:, i] - pos[:, j], dim=-1)


class PairPotential(Potential):
    """``U(x) = sum_{i<j} phi(d_ij)`` (+ an optional term of the positions), forces by the chain rule:

    .. math::
        F_i = -\\sum_{j \\ne i} \\phi'(d_{ij}) \\, \\frac{x_i - x_j}{d_{ij}} .

    Invariant under translations, rotations, reflections and permutations of the particles.
    A subclass gives ``phi(d)`` and ``dphi(d)``.
    """

    def __init__(self, n_particles: int, spatial_dim: int) -> None:
        if n_particles < 2 or spatial_dim < 1:
            raise ValueError(f"need n_particles >= 2 and spatial_dim >= 1, got {n_particles}, {spatial_dim}")
        self.n_particles, self.spatial_dim = int(n_particles), int(spatial_dim)
        self.dim = self.n_particles * self.spatial_dim
        self._pairs = PerDevice(torch.triu_indices(self.n_particles, self.n_particles, offset=1))

    def phi(self, d: Tensor) -> Tensor:
        raise NotImplementedError

    def dphi(self, d: Tensor) -> Tensor:
        raise NotImplementedError

    def energy(self, x: Tensor) -> Tensor:
        self._check(x)
        return self.phi(pair_distances(x, self.n_particles)).sum(dim=1)

    def force(self, x: Tensor) -> Tensor:
        self._check(x)
        pos = x.reshape(x.shape[0], self.n_particles, self.spatial_dim)
        i, j = self._pairs.on(x.device)[0]
        r = pos[:, i] - pos[:, j]  # (N, P, d), x_i - x_j
        d = torch.linalg.vector_norm(r, dim=-1, keepdim=True)
        f_ij = -self.dphi(d) * r / d  # force on i from j; j gets the opposite
        f = torch.zeros_like(pos)
        f.index_add_(1, i, f_ij)
        f.index_add_(1, j, -f_ij)
        return f.reshape(x.shape)


class DoubleWellPairs(PairPotential):
    """DW-4: particles in a pairwise double well (Köhler, Klein & Noé 2020, "Equivariant flows", sec. 6):

    .. math::
        U(x) = \\frac{1}{\\tau} \\sum_{i<j} a (d_{ij} - d_0) + b (d_{ij} - d_0)^2 + c (d_{ij} - d_0)^4

    with ``a = 0, b = -4, c = 0.9, d_0 = 4, tau = 1`` and 4 particles in 2-D (their DW-4 benchmark,
    reused by Klein et al. 2023 and Garcia Satorras et al. 2021). The paper writes the sum over ordered
    pairs with ``1/(2 tau)``, which is the same. Each pair has minima at ``d = d_0 +- sqrt(-b / 2c)
    = 4 +- 1.491`` separated by a barrier ``b^2 / 4c = 4.44`` at ``d = d_0``.
    (The reference code of that group, bgflow's ``MultiDoubleWellPotential``, names the quartic
    coefficient ``a`` and the constant ``c``: its ``a=0.9, b=-4, c=0`` is this same potential.)
    """

    name = "dw4"

    def __init__(
        self,
        n_particles: int = 4,
        spatial_dim: int = 2,
        a: float = 0.0,
        b: float = -4.0,
        c: float = 0.9,
        d0: float = 4.0,
        tau: float = 1.0,
    ) -> None:
        super().__init__(n_particles, spatial_dim)
        if tau <= 0 or c <= 0:
            raise ValueError(f"tau and c must be positive, got tau={tau}, c={c}")
        self.a, self.b, self.c, self.d0, self.tau = float(a), float(b), float(c), float(d0), float(tau)

    def phi(self, d: Tensor) -> Tensor:
        r = d - self.d0
        return (self.a * r + self.b * r**2 + self.c * r**4) / self.tau

    def dphi(self, d: Tensor) -> Tensor:
        r = d - self.d0
        return (self.a + 2.0 * self.b * r + 4.0 * self.c * r**3) / self.tau


class LennardJones(PairPotential):
    """LJ-13 as in Köhler et al. (2020): Lennard-Jones pairs plus a harmonic tether to the centre of mass,

    .. math::
        U(x) = \\frac{\\epsilon}{\\tau} \\sum_{i<j} \\Big[\\Big(\\frac{r_m}{d_{ij}}\\Big)^{12}
            - 2 \\Big(\\frac{r_m}{d_{ij}}\\Big)^{6}\\Big] + \\frac{k}{2} \\sum_i \\lVert x_i - \\bar x \\rVert^2

    with ``epsilon = r_m = tau = 1`` and ``k = 1`` (13 particles in 3-D by default). The tether keeps
    the cluster from evaporating; it is translation, rotation and permutation invariant too.
    """

    name = "lj13"

    def __init__(
        self,
        n_particles: int = 13,
        spatial_dim: int = 3,
        eps: float = 1.0,
        rm: float = 1.0,
        tau: float = 1.0,
        k: float = 1.0,
    ) -> None:
        super().__init__(n_particles, spatial_dim)
        self.eps, self.rm, self.tau, self.k = float(eps), float(rm), float(tau), float(k)

    def phi(self, d: Tensor) -> Tensor:
        s6 = (self.rm / d) ** 6
        return self.eps / self.tau * (s6**2 - 2.0 * s6)

    def dphi(self, d: Tensor) -> Tensor:
        s6 = (self.rm / d) ** 6
        return self.eps / self.tau * (-12.0 * s6**2 + 12.0 * s6) / d

    def _centred(self, x: Tensor) -> Tensor:
        pos = x.reshape(x.shape[0], self.n_particles, self.spatial_dim)
        return pos - pos.mean(dim=1, keepdim=True)

    def energy(self, x: Tensor) -> Tensor:
        return super().energy(x) + 0.5 * self.k * (self._centred(x) ** 2).sum(dim=(1, 2))

    def force(self, x: Tensor) -> Tensor:
        # grad of (k/2) sum_i |x_i - xbar|^2 is k (x_i - xbar): the mean-removal's Jacobian drops out
        return super().force(x) - self.k * self._centred(x).reshape(x.shape)
