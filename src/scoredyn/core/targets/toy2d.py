"""Built-in targets: exact mixtures (``mog6``, ``rings``, ``offcentre``, ``mog10``) and 2-D point
clouds (``figure8``, ``moons``, ``swissroll``, ``checkerboard``).

The numbers of every exact target are written here and documented in ``docs/targets.md``.
Point clouds have no closed-form density; ``PointCloud.as_mixture`` gives the exact mixture of
their Gaussian kernel density estimate (a fixed set of points, bandwidth ``h``), whose score is exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .mixture import GaussianMixture, random_mixture, rotated_cov

__all__ = ["mog6", "rings", "offcentre", "mog10", "PointCloud", "POINT_CLOUDS"]

# mog6: (weight, mean, major std, minor std, angle of the major axis in degrees)
_MOG6 = [
    (0.55, (-5.5, 4.0), 1.6, 0.7, 30.0),
    (0.12, (5.5, 6.5), 1.0, 0.4, -45.0),
    (0.10, (7.0, -3.0), 1.3, 0.5, 100.0),
    (0.09, (-2.0, -6.5), 1.2, 0.5, 75.0),
    (0.08, (1.0, 1.5), 0.8, 0.35, 120.0),
    (0.06, (-8.5, -4.0), 0.9, 0.45, -20.0),
]


def mog6() -> GaussianMixture:
    """Six anisotropic Gaussians at irregular positions in ``[-10, 10]^2``, one dominant
    (weight 0.55); no symmetry: the target of the particle-dynamics study (``scoredyn demo``)."""
    w = [c[0] for c in _MOG6]
    mu = [c[1] for c in _MOG6]
    cov = [rotated_cov(c[2], c[3], c[4]) for c in _MOG6]
    return GaussianMixture(w, mu, cov, name="mog6")


def rings() -> GaussianMixture:
    """Two narrow rings (radius 4 with 12 components, radius 8 with 24), each component stretched
    along the ring (tangential std = half the arc between neighbours) and thin across it
    (radial std 0.08); equal weights."""
    w, mu, cov = [], [], []
    for radius, count in ((4.0, 12), (8.0, 24)):
        tangential = 0.5 * 2 * math.pi * radius / count
        for j in range(count):
            th = 2 * math.pi * j / count
            mu.append((radius * math.cos(th), radius * math.sin(th)))
            cov.append(rotated_cov(tangential, 0.08, math.degrees(th) + 90.0))
            w.append(1.0)
    total = sum(w)
    return GaussianMixture([x / total for x in w], mu, cov, name="rings")


def offcentre() -> GaussianMixture:
    """Three components far from the origin (centre near (40, -25)): a start distribution that
    ignores where the data is pays for it here."""
    comps = [
        (0.5, (40.0, -25.0), 1.5, 0.5, 20.0),
        (0.3, (44.0, -21.0), 1.0, 0.6, -50.0),
        (0.2, (37.0, -20.0), 0.7, 0.3, 80.0),
    ]
    return GaussianMixture(
        [c[0] for c in comps],
        [c[1] for c in comps],
        [rotated_cov(c[2], c[3], c[4]) for c in comps],
        name="offcentre",
    )


def mog10() -> GaussianMixture:
    """A 10-D mixture of 8 components with random full covariances (seed 0; see ``random_mixture``)."""
    return random_mixture(dim=10, n_components=8, seed=0, mean_scale=5.0, cov_scale=1.0, name="mog10")


# --- point clouds ------------------------------------------------------------------------------------


def _figure8(n: int, g: torch.Generator) -> Tensor:
    # lemniscate of Gerono, scaled to about [-4, 4] x [-2, 2], with small isotropic noise
    s = torch.rand(n, generator=g, dtype=torch.float64, device=g.device) * 2 * math.pi
    x = torch.stack([4.0 * torch.sin(s), 4.0 * torch.sin(s) * torch.cos(s)], 1)
    return x + 0.15 * torch.randn(n, 2, generator=g, dtype=torch.float64, device=g.device)


def _moons(n: int, g: torch.Generator) -> Tensor:
    upper = torch.rand(n, generator=g, device=g.device) < 0.5
    s = torch.rand(n, generator=g, dtype=torch.float64, device=g.device) * math.pi
    x = torch.where(
        upper[:, None],
        torch.stack([torch.cos(s), torch.sin(s)], 1),
        torch.stack([1.0 - torch.cos(s), 0.5 - torch.sin(s)], 1),
    )
    x = (x - torch.tensor([0.5, 0.25], dtype=torch.float64, device=g.device)) * 2.5
    return x + 0.1 * torch.randn(n, 2, generator=g, dtype=torch.float64, device=g.device)


def _swissroll(n: int, g: torch.Generator) -> Tensor:
    s = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g, dtype=torch.float64, device=g.device))
    x = torch.stack([s * torch.cos(s), s * torch.sin(s)], 1) / 3.0
    return x + 0.15 * torch.randn(n, 2, generator=g, dtype=torch.float64, device=g.device)


def _checkerboard(n: int, g: torch.Generator) -> Tensor:
    # uniform on the 8 dark squares of a 4 x 4 board over [-4, 4]^2
    col = torch.randint(0, 4, (n,), generator=g, device=g.device)
    row = 2 * torch.randint(0, 2, (n,), generator=g, device=g.device) + (col % 2)
    u = torch.rand(n, 2, generator=g, dtype=torch.float64, device=g.device)
    return torch.stack([col + u[:, 0], row + u[:, 1]], 1) * 2.0 - 4.0


@dataclass(frozen=True)
class PointCloud:
    """A 2-D toy given only as a sampler of points."""

    name: str
    draw: Callable[[int, torch.Generator], Tensor]
    bandwidth: float

    dim: int = 2

    def sample(
        self, n: int, generator: torch.Generator | None = None, *, device: torch.device | str | None = None
    ) -> Tensor:
        """``n`` points, shape ``(n, 2)``, float64, drawn on the generator's device (the draw functions
        draw there) and moved to ``device`` when given."""
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        x = self.draw(n, g)
        return x if device is None else x.to(device)

    def as_mixture(self, n_points: int = 512, seed: int = 0) -> GaussianMixture:
        """The Gaussian KDE of ``n_points`` fixed points (bandwidth ``h``) as an exact mixture."""
        pts = self.sample(n_points, torch.Generator().manual_seed(seed))
        cov = (self.bandwidth**2) * torch.eye(2, dtype=torch.float64).expand(n_points, 2, 2)
        w = torch.full((n_points,), 1.0 / n_points, dtype=torch.float64)
        return GaussianMixture(w, pts, cov.clone(), name=f"{self.name}-kde")


POINT_CLOUDS: dict[str, PointCloud] = {
    "figure8": PointCloud("figure8", _figure8, bandwidth=0.2),
    "moons": PointCloud("moons", _moons, bandwidth=0.15),
    "swissroll": PointCloud("swissroll", _swissroll, bandwidth=0.2),
    "checkerboard": PointCloud("checkerboard", _checkerboard, bandwidth=0.15),
}
