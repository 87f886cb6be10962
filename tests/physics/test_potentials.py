"""Potentials: analytic forces against autograd, the published minima, and the symmetries of pair potentials."""

from __future__ import annotations

import math

import pytest
import torch

from scoredyn.physics import DoubleWell2D, DoubleWellPairs, LennardJones, MullerBrown


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _configs(pot, n: int, seed: int) -> torch.Tensor:
    """Test points: spread over the 2-D box, or particle clouds with no near-overlaps (LJ is singular at 0)."""
    g = _gen(seed)
    if pot.dim == 2:
        (x0, x1), (y0, y1) = pot.box
        u = torch.rand(n, 2, generator=g, dtype=torch.float64)
        return torch.stack([x0 + (x1 - x0) * u[:, 0], y0 + (y1 - y0) * u[:, 1]], dim=1)
    lattice = torch.cartesian_prod(*[torch.arange(3, dtype=torch.float64)] * pot.spatial_dim)[: pot.n_particles]
    spacing = 1.1 if isinstance(pot, LennardJones) else 3.5
    base = spacing * lattice.reshape(1, -1)
    return base + 0.2 * spacing * torch.randn(n, pot.dim, generator=g, dtype=torch.float64)


POTENTIALS = [DoubleWell2D(), MullerBrown(), DoubleWellPairs(), LennardJones()]


@pytest.mark.parametrize("pot", POTENTIALS, ids=lambda p: p.name)
def test_force_is_minus_autograd_gradient(pot):
    x = _configs(pot, 256, seed=0).requires_grad_(True)
    (grad,) = torch.autograd.grad(pot.energy(x).sum(), x)
    force = pot.force(x.detach())
    # float64 rounding: both sides sum O(10) terms of size |grad|, so agree to ~1e-15 relative
    scale = 1.0 + grad.abs().max()
    assert float((force + grad).abs().max() / scale) < 1e-10
    assert force.dtype == torch.float64 and force.shape == x.shape


def test_potential_parameters_and_minima():
    mb = MullerBrown(scale=1.0)
    # the standard Muller-Brown minima (Muller & Brown 1979)
    minima = torch.tensor([[-0.55822, 1.44173], [0.62350, 0.02804], [-0.05001, 0.46669]], dtype=torch.float64)
    values = torch.tensor([-146.6995, -108.1667, -80.7678], dtype=torch.float64)
    assert torch.allclose(mb.energy(minima), values, atol=1e-3)
    assert float(mb.force(minima).abs().max()) < 1e-2  # gradient ~ 0 at 5-digit minima
    # DW-4 pair energy: minima at d0 +- sqrt(-b/2c), barrier b^2/4c above them (a = 0)
    p = DoubleWellPairs()
    d = torch.tensor([4.0 - math.sqrt(4 / 1.8), 4.0, 4.0 + math.sqrt(4 / 1.8)], dtype=torch.float64)
    assert torch.allclose(p.dphi(d), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    assert math.isclose(float(p.phi(d[1]) - p.phi(d[0])), 16 / 3.6, rel_tol=1e-12)


@pytest.mark.parametrize("pot", [DoubleWellPairs(), LennardJones()], ids=lambda p: p.name)
def test_particle_potential_invariances(pot):
    x = _configs(pot, 32, seed=1)
    n, d = pot.n_particles, pot.spatial_dim
    u = pot.energy(x)
    pos = x.reshape(-1, n, d)
    perm = torch.randperm(n, generator=_gen(2))
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=_gen(3), dtype=torch.float64))  # rotation or reflection
    shift = torch.randn(1, 1, d, generator=_gen(4), dtype=torch.float64) * 10
    for moved in (pos[:, perm], pos @ q.T, pos + shift):
        assert torch.allclose(pot.energy(moved.reshape(x.shape)), u, rtol=1e-12, atol=1e-9)
    # forces are equivariant: F(R x) = R F(x), and permute with the particles
    f = pot.force(x).reshape(-1, n, d)
    assert torch.allclose(pot.force((pos @ q.T).reshape(x.shape)).reshape(-1, n, d), f @ q.T, atol=1e-9)
    assert torch.allclose(pot.force(pos[:, perm].reshape(x.shape)).reshape(-1, n, d), f[:, perm], atol=1e-9)
    # and sum to zero (translation invariance; LJ's tether is to the centre of mass)
    assert float(f.sum(dim=1).abs().max()) < 1e-12 * (1 + float(f.abs().max()) * n)
