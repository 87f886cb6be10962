"""Boltzmann targets ``p(x) = exp(-U(x) / kT) / Z``, and their exact 2-D references by quadrature.

A ``Boltzmann`` answers what the core asks of a target (``dim``, ``name``, ``score``) plus its energy
and force; it has no ``sample`` (equilibrium samples come from MD, :mod:`.integrators`). For the
two-dimensional potentials, which carry a ``box`` holding all but a negligible part of the mass,
``Z``, the density on a grid, marginal free energies ``F(xi) = -kT log p(xi)`` along a projection
``xi = u . x`` and 2-D cell masses are computed by the trapezoid rule on a fine grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .analysis import Profile, Surface, bin_edges
from .potentials import Box, DoubleWell2D, DoubleWellPairs, MullerBrown, Potential

__all__ = ["Boltzmann", "DensityGrid", "double_well", "muller_brown", "dw4"]


def _trapz_weights(n: int, h: float) -> Tensor:
    w = torch.full((n,), h, dtype=torch.float64)
    w[0] = w[-1] = 0.5 * h
    return w


@dataclass(frozen=True)
class DensityGrid:
    """The exact, normalised density ``p(x, y)`` on the nodes ``xs`` (Nx,) x ``ys`` (Ny,) (``density``
    is (Nx, Ny), indexed ``[i, j] = (xs[i], ys[j])``), with ``log Z`` of ``exp(-U / kT)`` over the box."""

    xs: Tensor
    ys: Tensor
    density: Tensor
    log_z: float
    kT: float

    @property
    def free_energy(self) -> Tensor:
        """``F(x, y) = -kT log p(x, y)``, shifted to minimum 0."""
        f = -self.kT * torch.log(self.density)
        return f - f.min()

    def sample(self, n: int, generator: torch.Generator | None = None, stratified: bool = False) -> Tensor:
        """``n`` draws (n, 2) from the gridded density: a node with probability ``p_ij h_x h_y``, then a
        uniform offset within its cell. Exact up to the grid resolution (``O(h^2)`` in expectations);
        the reference "i.i.d." route and a way to start MD walkers in equilibrium.

        ``stratified=True`` picks the nodes by systematic resampling (``u_k = (k + U) / n`` through the
        CDF; Kitagawa 1996): every region of mass ``P`` then gets ``nP +- 1`` draws, far less noisy
        than multinomial draws (for a low-variance start of MD, not for i.i.d. statistics)."""
        hx, hy = float(self.xs[1] - self.xs[0]), float(self.ys[1] - self.ys[0])
        w = self.density.reshape(-1)
        if stratified:
            u = (torch.arange(n, dtype=torch.float64) + torch.rand(1, generator=generator, dtype=torch.float64)) / n
            cdf = torch.cumsum(w, 0)
            k = torch.searchsorted(cdf / cdf[-1], u).clamp_max(w.numel() - 1)
            k = k[torch.randperm(n, generator=generator)]
        else:
            k = torch.multinomial(w, n, replacement=True, generator=generator)
        i, j = k // self.ys.numel(), k % self.ys.numel()
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64) - 0.5
        return torch.stack([self.xs[i] + hx * u[:, 0], self.ys[j] + hy * u[:, 1]], dim=1)


class Boltzmann:
    """The Boltzmann density of a potential at temperature ``kT``:

    .. math::
        \\log p(x) = -\\frac{U(x)}{kT} - \\log Z, \\qquad s(x) = \\nabla \\log p(x) = \\frac{F(x)}{kT}.

    Args:
        potential: the ``Potential``.
        kT: thermal energy, in the potential's energy units.
        name: label (default: the potential's name).
    """

    def __init__(self, potential: Potential, kT: float = 1.0, name: str | None = None) -> None:
        if not kT > 0:
            raise ValueError(f"kT must be positive, got {kT}")
        self.potential, self.kT = potential, float(kT)
        self.dim = potential.dim
        self.name = name or potential.name
        self._log_z: float | None = None

    def energy(self, x: Tensor) -> Tensor:
        return self.potential.energy(x)

    def force(self, x: Tensor) -> Tensor:
        return self.potential.force(x)

    def unnormalized_log_prob(self, x: Tensor) -> Tensor:
        """``-U(x) / kT``, shape (N,)."""
        return -self.potential.energy(x) / self.kT

    def score(self, x: Tensor) -> Tensor:
        """``grad log p = F / kT``, shape (N, D)."""
        return self.potential.force(x) / self.kT

    # --- exact references for the 2-D potentials --------------------------------------------------
    def _box(self, box: Box | None) -> Box:
        box = box or self.potential.box
        if self.dim != 2 or box is None:
            raise ValueError(f"exact quadrature needs a 2-D potential with a box; {self.name} has dim {self.dim}")
        return box

    def density_grid(self, n: int = 801, box: Box | None = None) -> DensityGrid:
        """The normalised density on an ``n x n`` grid of nodes spanning the box (trapezoid rule for ``Z``)."""
        if n < 3:
            raise ValueError(f"n must be at least 3, got {n}")
        (x0, x1), (y0, y1) = self._box(box)
        xs = torch.linspace(x0, x1, n, dtype=torch.float64)
        ys = torch.linspace(y0, y1, n, dtype=torch.float64)
        pts = torch.cartesian_prod(xs, ys)
        log_q = self.unnormalized_log_prob(pts).reshape(n, n)
        shift = float(log_q.max())
        q = torch.exp(log_q - shift)
        wx, wy = _trapz_weights(n, float(xs[1] - xs[0])), _trapz_weights(n, float(ys[1] - ys[0]))
        z = float(wx @ q @ wy)
        return DensityGrid(xs, ys, q / z, math.log(z) + shift, self.kT)

    def log_normalizer(self) -> float:
        """``log Z = log int exp(-U / kT)`` over the box (trapezoid rule on 1001 x 1001 nodes; cached)."""
        if self._log_z is None:
            self._log_z = self.density_grid(1001).log_z
        return self._log_z

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact normalised ``log p(x)`` (2-D potentials only), shape (N,)."""
        return self.unnormalized_log_prob(x) - self.log_normalizer()

    def marginal(self, edges, direction: int | Tensor | list[float] = 0, n: int = 1001) -> Profile:
        """The exact marginal free-energy profile along ``xi = u . x`` over the bins ``edges``.

        .. math::
            p(\\xi) = \\int p(\\xi u + \\eta v)\\, d\\eta, \\qquad P_b = \\int_{e_b}^{e_{b+1}} p(\\xi)\\, d\\xi,

        with ``v`` the unit normal to ``u``; both integrals by the trapezoid rule over the rotated
        rectangle that covers the box: ``n`` nodes across in ``eta``, and in ``xi`` ``n`` nodes plus
        the bin edges themselves, so that each bin mass is a sum of whole trapezoids.
        ``direction``: coordinate index or a vector (normalised here).
        """
        e = bin_edges(edges)
        (x0, x1), (y0, y1) = self._box(None)
        if isinstance(direction, int):
            u = torch.eye(2, dtype=torch.float64)[direction]
        else:
            u = torch.as_tensor(direction, dtype=torch.float64)
            u = u / u.norm()
        v = torch.stack([-u[1], u[0]])
        corners = torch.tensor([[x0, y0], [x0, y1], [x1, y0], [x1, y1]], dtype=torch.float64)
        lo, hi = float((corners @ u).min()), float((corners @ u).max())
        e_in = e.clamp(lo, hi)
        xi = torch.unique(torch.cat([torch.linspace(lo, hi, n, dtype=torch.float64), e_in]))  # sorted
        eta = torch.linspace(float((corners @ v).min()), float((corners @ v).max()), n, dtype=torch.float64)
        pts = xi[:, None, None] * u + eta[None, :, None] * v  # (n_xi, n, 2)
        log_q = self.unnormalized_log_prob(pts.reshape(-1, 2)).reshape(xi.numel(), n)
        q = torch.exp(log_q - log_q.max())
        m = q @ _trapz_weights(n, float(eta[1] - eta[0]))  # p(xi) up to Z
        cdf = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(0.5 * (m[1:] + m[:-1]) * xi.diff(), 0)])
        at_edges = (cdf / cdf[-1])[torch.searchsorted(xi, e_in)]
        return Profile(e, at_edges.diff().clamp_min(0.0), self.kT)

    def surface(self, xedges, yedges, refine: int = 8) -> Surface:
        """Exact cell masses of the 2-D density on ``xedges`` x ``yedges``: the midpoint rule on
        ``refine x refine`` sub-cells per cell, normalised by ``Z`` (cells may extend past the box)."""
        xe, ye = bin_edges(xedges, "xedges"), bin_edges(yedges, "yedges")

        def midpoints(edges: Tensor) -> tuple[Tensor, Tensor]:
            t = (torch.arange(refine, dtype=torch.float64) + 0.5) / refine
            lo, w = edges[:-1, None], edges.diff()[:, None]
            return (lo + w * t).reshape(-1), (w / refine).expand(-1, refine).reshape(-1)

        (xm, wx), (ym, wy) = midpoints(xe), midpoints(ye)
        log_q = self.unnormalized_log_prob(torch.cartesian_prod(xm, ym)).reshape(xm.numel(), ym.numel())
        mass = torch.exp(log_q - self.log_normalizer()) * torch.outer(wx, wy)
        cells = mass.reshape(xe.numel() - 1, refine, ye.numel() - 1, refine).sum(dim=(1, 3))
        return Surface(xe, ye, cells, self.kT)

    def __repr__(self) -> str:
        return f"Boltzmann({self.potential!r}, kT={self.kT})"


def double_well(kT: float = 1.0) -> Boltzmann:
    """The tilted 2-D double well (``DoubleWell2D`` defaults) at ``kT = 1``."""
    return Boltzmann(DoubleWell2D(), kT)


def muller_brown(kT: float = 1.0) -> Boltzmann:
    """Müller–Brown scaled by 0.05 at ``kT = 1`` (the unscaled potential at ``kT = 20``)."""
    return Boltzmann(MullerBrown(), kT)


def dw4(kT: float = 1.0) -> Boltzmann:
    """DW-4 (Köhler et al. 2020) at its ``tau = 1``: four particles in 2-D, ``D = 8``."""
    return Boltzmann(DoubleWellPairs(), kT)
