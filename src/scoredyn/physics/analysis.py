"""What MD and sampling runs are judged by: free energies, histogram divergences, correlation times.

Conventions. A free-energy profile along a reaction coordinate ``xi`` is built from bin masses
``P_b`` (the fraction of ALL samples, or of the exact density, that falls in bin ``b``):
``F_b = -kT log(P_b / w_b)`` with ``w_b`` the bin width, shifted so that ``min_b F_b = 0``; a bin
with no mass has ``F_b = +inf``. Histograms of samples and exact references are compared bin by
bin, so both carry the same discretisation and only sampling (or model) error remains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "Profile",
    "Surface",
    "project",
    "free_energy_profile",
    "free_energy_surface",
    "aligned_difference",
    "free_energy_error",
    "js_divergence",
    "interatomic_distances",
    "distance_histogram",
    "integrated_autocorr_time",
    "bin_edges",
    "POPULATED_THRESHOLD",
]

POPULATED_THRESHOLD = 1e-3
"""Default for "populated": a bin whose reference mass exceeds 1e-3 (with ~50-100 bins across the
range, bins within roughly 4-5 kT of the minimum). Below it the Monte-Carlo error of a bin's free
energy from ``n`` independent samples, ``~ 1/sqrt(n P_b)`` kT, is not small for practical ``n``."""


@dataclass(frozen=True)
class Profile:
    """A free-energy profile along one coordinate: bin ``edges`` (B+1,), bin masses ``prob`` (B,), ``kT``."""

    edges: Tensor
    prob: Tensor
    kT: float

    @property
    def centres(self) -> Tensor:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def widths(self) -> Tensor:
        return self.edges[1:] - self.edges[:-1]

    @property
    def density(self) -> Tensor:
        """Bin-averaged probability density ``P_b / w_b``."""
        return self.prob / self.widths

    @property
    def free_energy(self) -> Tensor:
        """``F_b = -kT log(P_b / w_b)``, shifted to ``min F = 0`` (energy units; ``inf`` where empty)."""
        f = -self.kT * torch.log(self.density)
        return f - f[torch.isfinite(f)].min()


@dataclass(frozen=True)
class Surface:
    """A 2-D free-energy surface: cell masses ``prob`` (Bx, By) on ``xedges`` x ``yedges``, at ``kT``."""

    xedges: Tensor
    yedges: Tensor
    prob: Tensor
    kT: float

    @property
    def free_energy(self) -> Tensor:
        """``F = -kT log(P / area)`` per cell, shifted to ``min F = 0`` (``inf`` where empty)."""
        area = torch.outer(self.xedges.diff(), self.yedges.diff())
        f = -self.kT * torch.log(self.prob / area)
        return f - f[torch.isfinite(f)].min()


def bin_edges(edges: Tensor | np.ndarray | list[float], name: str = "edges") -> Tensor:
    """Histogram bin edges as a float64 tensor (B+1,), checked to be strictly increasing.

    Args:
        edges: (B+1,) bin edges, B >= 1.
        name: the argument's name in the error message.
    """
    e = torch.as_tensor(edges, dtype=torch.float64)
    if e.ndim != 1 or e.numel() < 2 or not bool((e.diff() > 0).all()):
        raise ValueError(f"{name} must be a strictly increasing 1-D sequence of at least 2 values")
    return e


def project(x: Tensor, direction: int | Tensor | list[float]) -> Tensor:
    """The reaction coordinate ``xi = u . x`` of points ``x`` (N, D): ``direction`` is a coordinate
    index, or a vector (D,) that is normalised to unit length. Returns (N,) float64."""
    x = x.to(torch.float64)
    if isinstance(direction, int):
        if not 0 <= direction < x.shape[1]:
            raise ValueError(f"direction {direction} is not a coordinate of {x.shape[1]}-D points")
        return x[:, direction]
    u = torch.as_tensor(direction, dtype=torch.float64)
    if u.shape != (x.shape[1],) or float(u.norm()) == 0.0:
        raise ValueError(f"direction must be an int or a nonzero vector of length {x.shape[1]}")
    return x @ (u / u.norm())


def _histogram(values: Tensor, edges: Tensor) -> Tensor:
    """Counts of ``values`` per bin, right edge included in the last bin (as numpy does)."""
    counts, _ = np.histogram(values.detach().cpu().numpy(), bins=edges.numpy())
    return torch.as_tensor(counts, dtype=torch.float64)


def free_energy_profile(values: Tensor, edges, kT: float) -> Profile:
    """Free-energy profile ``F(xi) = -kT log p(xi)`` from samples of a reaction coordinate.

    Args:
        values: (N,) reaction-coordinate values (e.g. ``project(x, 0)``), all counted in the
            normalisation, also those outside ``edges``.
        edges: (B+1,) increasing bin edges.
        kT: thermal energy.
    """
    e = bin_edges(edges)
    values = values.reshape(-1)
    if values.numel() == 0:
        raise ValueError("values is empty")
    return Profile(e, _histogram(values, e) / values.numel(), float(kT))


def free_energy_surface(x: Tensor, xedges, yedges, kT: float) -> Surface:
    """2-D free-energy surface ``F(x, y) = -kT log p(x, y)`` from samples ``x`` (N, 2)."""
    xe, ye = bin_edges(xedges, "xedges"), bin_edges(yedges, "yedges")
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must be (N, 2), got {tuple(x.shape)}")
    counts, _, _ = np.histogram2d(*x.detach().to(torch.float64).cpu().numpy().T, bins=(xe.numpy(), ye.numpy()))
    return Surface(xe, ye, torch.as_tensor(counts, dtype=torch.float64) / x.shape[0], float(kT))


def aligned_difference(profile: Profile, reference: Profile, populated: Tensor | float = POPULATED_THRESHOLD) -> Tensor:
    """``(F_b - F_b^ref - c) / kT`` on the populated bins, with the shift ``c`` the reference-mass-weighted
    mean of ``F_b - F_b^ref`` there (free energies are defined up to a constant; this constant is the
    least-squares one, weighted by where the system actually is).

    ``populated`` is a boolean mask (B,) or a threshold on the reference bin mass (default 1e-3).
    Bins of the populated range that hold no samples give ``inf``.
    """
    if not torch.equal(profile.edges, reference.edges):
        raise ValueError("profile and reference must have the same bin edges")
    mask = reference.prob > populated if not isinstance(populated, Tensor) else populated.to(torch.bool)
    if not bool(mask.any()):
        raise ValueError("no populated bins: lower the threshold or widen the range")
    delta = (profile.free_energy - reference.free_energy)[mask]
    if not bool(torch.isfinite(delta).all()):
        return torch.full_like(delta, math.inf)
    w = reference.prob[mask]
    return (delta - (w * delta).sum() / w.sum()) / reference.kT


def free_energy_error(profile: Profile, reference: Profile, populated: Tensor | float = POPULATED_THRESHOLD) -> float:
    """Mean absolute free-energy error in units of kT over the populated range (see ``aligned_difference``):

    .. math::
        \\epsilon = \\frac{1}{|B_{pop}|} \\sum_{b \\in B_{pop}} \\frac{|F_b - F_b^{ref} - c|}{kT}.

    ``inf`` if a populated bin is empty.
    """
    return float(aligned_difference(profile, reference, populated).abs().mean())


def js_divergence(p: Tensor | np.ndarray, q: Tensor | np.ndarray, base: float = 2.0) -> float:
    """Jensen–Shannon divergence of two histograms (any shape; counts or masses, each normalised here):

    .. math::
        JS(p, q) = \\tfrac12 KL(p \\| m) + \\tfrac12 KL(q \\| m), \\quad m = \\tfrac12 (p + q),

    in log base ``base`` (default 2: 0 for equal histograms, 1 for disjoint supports). This is the
    square of ``scipy.spatial.distance.jensenshannon``.
    """
    p = torch.as_tensor(p, dtype=torch.float64).reshape(-1)
    q = torch.as_tensor(q, dtype=torch.float64).reshape(-1)
    if p.shape != q.shape or bool((p < 0).any() or (q < 0).any()) or float(p.sum()) == 0 or float(q.sum()) == 0:
        raise ValueError("p and q must be nonnegative histograms of the same shape with positive mass")
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: Tensor) -> Tensor:
        nz = a > 0
        return (a[nz] * torch.log(a[nz] / m[nz])).sum()

    return float(0.5 * (kl(p) + kl(q)) / math.log(base))


def interatomic_distances(x: Tensor, n_particles: int) -> Tensor:
    """All pair distances ``d_ij``, ``i < j``, of particle configurations ``x`` (N, n_particles * d):
    shape (N, n_particles (n_particles - 1) / 2)."""
    from .potentials import pair_distances

    if x.ndim != 2 or x.shape[1] % n_particles:
        raise ValueError(f"x must be (N, {n_particles} * d), got {tuple(x.shape)}")
    return pair_distances(x, n_particles)


def distance_histogram(x: Tensor, n_particles: int, edges) -> Tensor:
    """Normalised histogram (bin masses, (B,)) of all interatomic distances of ``x`` (N, n_particles * d)."""
    d = interatomic_distances(x, n_particles).reshape(-1)
    return _histogram(d, bin_edges(edges)) / d.numel()


def integrated_autocorr_time(series: Tensor | np.ndarray, c: float = 5.0) -> float:
    """Integrated autocorrelation time with Sokal's automatic window (Sokal 1997, "Monte Carlo methods in
    statistical mechanics", sec. 3; the windowing of Madras & Sokal 1988):

    .. math::
        \\tau(M) = 1 + 2 \\sum_{t=1}^{M} \\rho(t), \\qquad M = \\min\\{M : M \\ge c\\, \\tau(M)\\}.

    With this convention ``tau = 1`` for independent draws and ``N / tau`` is the effective sample size;
    an AR(1) series with coefficient ``phi`` has ``tau = (1 + phi) / (1 - phi)``.

    Args:
        series: (T,) one chain, or (T, W) W independent chains of the same process (their
            autocovariances are averaged, each about its own mean).
        c: window constant (Sokal suggests 4-10; 5 here).
    """
    x = torch.as_tensor(series, dtype=torch.float64)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[0] < 4:
        raise ValueError(f"series must be (T,) or (T, W) with T >= 4, got {tuple(x.shape)}")
    n = x.shape[0]
    y = x - x.mean(dim=0)
    # autocovariance of each chain by FFT (zero-padded to avoid wrap-around), averaged over chains
    f = torch.fft.rfft(y, n=2 * n, dim=0)
    acov = torch.fft.irfft(f * f.conj(), n=2 * n, dim=0)[:n].mean(dim=1) / n
    if float(acov[0]) == 0.0:
        raise ValueError("series is constant: its autocorrelation time is undefined")
    tau = 2.0 * torch.cumsum(acov / acov[0], dim=0) - 1.0  # tau(M) = 1 + 2 sum_{t=1}^M rho(t)
    ok = torch.arange(n, dtype=torch.float64) >= c * tau
    m = int(torch.argmax(ok.to(torch.int8))) if bool(ok.any()) else n - 1
    return float(tau[m])
