"""BAOAB against exact Boltzmann marginals, its dt^2 bias, its exactness for a harmonic potential, centre-of-mass
removal and seeding, and the DW-4 reference protocol built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scoredyn.physics import (
    ReferenceSettings,
    baoab,
    double_well,
    dw4,
    dw4_reference_samples,
    free_energy_error,
    free_energy_profile,
    interatomic_distances,
    muller_brown,
    project,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# Tolerance for the free-energy tests: 0.1 kT mean absolute error over the populated bins (reference
# bin mass > 1e-3). With the walkers and frames below the Monte-Carlo error, measured as the error of
# the same number of i.i.d. grid samples, is ~0.015-0.02 kT, and BAOAB's O(dt^2) configurational bias
# at these dt is below it (see the dt test), so 0.1 kT fails only for a wrong integrator or reference.
FE_TOL = 0.1


def test_baoab_double_well_equilibrates_to_exact_marginal():
    target = double_well()
    edges = torch.linspace(-2.0, 2.0, 41)
    ref = target.marginal(edges)
    # every walker starts in the upper (minority) well: the right populations must come from crossings
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64).repeat(2000, 1)
    tr = baoab(target.force, x0, dt=0.05, friction=1.0, kT=1.0, n_steps=4000, save_every=20, generator=_gen(0))
    frames = tr.x[101:]  # burn-in t = 100, five times the population relaxation time (~20)
    err = free_energy_error(free_energy_profile(frames[:, :, 0].reshape(-1), edges, 1.0), ref)
    assert err < FE_TOL, err  # measured 0.018
    left = float((frames[:, :, 0] < 0.0417).double().mean())  # exact 0.7122 (the saddle at x = 0.0417)
    assert abs(left - 0.7122) < 0.02, left  # walkers' population noise ~ 0.005
    assert torch.equal(x0, torch.tensor([[1.0, 0.0]], dtype=torch.float64).repeat(2000, 1))  # not mutated


def test_baoab_muller_brown_keeps_exact_marginal():
    # the 5.3 kT barrier makes equilibration from one basin too slow for a unit test: start in
    # equilibrium (stratified draws from the exact grid density) and check that BAOAB stays there
    target = muller_brown()
    edges = torch.linspace(-1.8, 1.3, 32)
    ref = target.marginal(edges)
    g = _gen(1)
    x0 = target.density_grid(801).sample(8000, g, stratified=True)
    tr = baoab(target.force, x0, dt=0.01, friction=1.0, kT=1.0, n_steps=500, save_every=10, generator=g)
    frames = tr.x[21:].reshape(-1, 2)  # after t = 2, several intra-basin relaxation times
    err = free_energy_error(free_energy_profile(project(frames, 0), edges, 1.0), ref)
    assert err < FE_TOL, err  # measured ~0.015
    # also along a diagonal projection (the quadrature in rotated coordinates)
    u = torch.tensor([1.0, -1.0], dtype=torch.float64)
    e2 = torch.linspace(-2.2, 1.2, 35)
    err2 = free_energy_error(free_energy_profile(project(frames, u), e2, 1.0), target.marginal(e2, u))
    assert err2 < FE_TOL, err2


def test_baoab_bias_shrinks_as_dt_squared():
    # equilibrium start, 20k walkers, t = 2..10; the free-energy error is bias + MC noise (~0.01)
    target = double_well()
    edges = torch.linspace(-2.0, 2.0, 41)
    ref = target.marginal(edges)
    grid = target.density_grid(801)
    errs = {}
    for dt in (0.2, 0.1):
        g = _gen(2)
        x0 = grid.sample(20000, g, stratified=True)
        tr = baoab(target.force, x0, dt=dt, friction=1.0, kT=1.0, n_steps=round(10 / dt), save_every=1, generator=g)
        frames = tr.x[round(2 / dt) :].reshape(-1, 2)
        errs[dt] = free_energy_error(free_energy_profile(frames[:, 0], edges, 1.0), ref)
    # measured 0.056 and 0.013: the bias at dt = 0.2 stands clear of the noise, and halving dt
    # divides the error by > 2.5 (second order gives 4, minus the noise left at dt = 0.1)
    assert errs[0.2] > 0.03 and errs[0.2] / errs[0.1] > 2.5, errs


def test_baoab_is_exact_for_a_harmonic_potential():
    # Leimkuhler & Matthews (2013): BAOAB samples x ~ N(0, kT/k) exactly for U = k x^2 / 2, any stable dt
    k, kT, dt = 4.0, 0.7, 0.75  # omega dt = 1.5 (stable below 2)
    x0 = torch.zeros(20000, 1, dtype=torch.float64)
    tr = baoab(lambda x: -k * x, x0, dt=dt, friction=1.0, kT=kT, n_steps=300, save_every=3, generator=_gen(3))
    var = float(tr.x[21:].var())
    # ~2e6 frames, tau ~ a few frames: relative s.e. of the variance ~ 0.3%; a scheme with
    # O(dt^2) bias here would be off by tens of percent (ABOBA: 1 / (1 - (omega dt / 2)^2) = 2.3x)
    assert abs(var / (kT / k) - 1.0) < 0.02, var


def test_baoab_removes_centre_of_mass_and_is_seeded():
    target = dw4()
    x0 = 2.0 * torch.randn(64, 8, generator=_gen(4), dtype=torch.float64) + 5.0
    knobs = dict(dt=0.02, friction=1.0, kT=1.0, n_steps=200, save_every=50, remove_com=4)
    a, b = (baoab(target.force, x0, generator=_gen(5), **knobs) for _ in range(2))
    assert torch.equal(a.x, b.x)
    assert a.x.shape == (5, 64, 8)
    assert torch.allclose(a.times, torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    assert float(a.x.reshape(5, 64, 4, 2).mean(dim=2).abs().max()) < 1e-12
    assert float(a.final.v.reshape(64, 4, 2).sum(dim=1).abs().max()) < 1e-12
    # the pair distances are untouched by the centring
    assert torch.allclose(interatomic_distances(a.x[0], 4), interatomic_distances(x0, 4), atol=1e-12)
    with pytest.raises(ValueError, match="remove_com"):
        baoab(target.force, x0, dt=0.02, friction=1.0, kT=1.0, n_steps=1, remove_com=3)
    with pytest.raises(ValueError, match="dt"):
        baoab(target.force, x0, dt=-0.1, friction=1.0, kT=1.0, n_steps=1)


def test_dw4_reference_samples_small_run():
    # a short, cheap version of the reference protocol: the pair-distance histogram is bimodal with
    # its modes at the pair minima 4 -+ 1.49, and the run is seeded
    s = ReferenceSettings(n_walkers=200, burn_in=20.0, thin=5.0)
    x = dw4_reference_samples(500, seed=0, settings=s)
    assert x.shape == (500, 8) and torch.equal(x, dw4_reference_samples(500, seed=0, settings=s))
    assert float(x.reshape(500, 4, 2).mean(dim=1).abs().max()) < 1e-12
    d = interatomic_distances(x, 4).reshape(-1)
    counts, e = np.histogram(d.numpy(), bins=np.linspace(0, 8, 33))
    mids = 0.5 * (e[1:] + e[:-1])
    assert abs(mids[np.argmax(np.where(mids < 4, counts, 0))] - 2.51) < 0.3
    assert abs(mids[np.argmax(np.where(mids > 4, counts, 0))] - 5.49) < 0.3
    assert counts[(mids > 3.8) & (mids < 4.2)].sum() < 0.25 * counts.max()  # the barrier at d0 = 4
