"""Physics core: exact forces, exact Boltzmann references, BAOAB against them, analysis on known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.spatial.distance
import torch

from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import EDM, VP, Linear
from scoredyn.core.targets import GaussianMixture, mog6
from scoredyn.physics import (
    DoubleWell2D,
    DoubleWellPairs,
    LennardJones,
    MullerBrown,
    ReferenceSettings,
    aligned_difference,
    baoab,
    double_well,
    dw4,
    dw4_reference_samples,
    field_force,
    free_energy_error,
    free_energy_profile,
    free_energy_surface,
    integrated_autocorr_time,
    interatomic_distances,
    js_divergence,
    muller_brown,
    project,
)


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


# --- forces ----------------------------------------------------------------------------------------


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


# --- exact references ------------------------------------------------------------------------------


def test_double_well_normalisation_against_scipy_quad():
    target = double_well()
    pot = target.potential
    # separable: Z = int exp(-(h (x^2-1)^2 + s x)) dx * sqrt(2 pi / k), on the whole line by QUADPACK
    zx, _ = scipy.integrate.quad(lambda q: math.exp(-(pot.h * (q * q - 1) ** 2 + pot.s * q)), -np.inf, np.inf)
    exact = math.log(zx) + 0.5 * math.log(2 * math.pi / pot.k)
    # the trapezoid rule on a smooth, decaying integrand converges geometrically; the box drops < 1e-18
    assert abs(target.log_normalizer() - exact) < 1e-9
    g = target.density_grid(401)
    assert abs(g.log_z - exact) < 1e-9
    # the marginal's bin masses sum to the mass inside the bins, which is everything here
    ref = target.marginal(torch.linspace(-2.2, 2.2, 45))
    assert abs(float(ref.prob.sum()) - 1.0) < 1e-9
    left, _ = scipy.integrate.quad(lambda q: math.exp(-(pot.h * (q * q - 1) ** 2 + pot.s * q)), -np.inf, 0.0)
    edges = torch.tensor([-3.0, 0.0, 3.0], dtype=torch.float64)
    assert abs(float(target.marginal(edges).prob[0]) - left / zx) < 1e-7  # CDF interpolation: O(h^2)


def test_muller_brown_normalisation_and_marginal():
    target = muller_brown()
    # grid refinement: log Z and the normalised density agree between 601 and 2001 nodes
    coarse = target.density_grid(601)
    assert abs(coarse.log_z - target.log_normalizer()) < 1e-8
    # the x-marginal density at a few points against scipy.quad over y on the whole line
    pot = target.potential
    log_z = target.log_normalizer()
    for xq in (-0.56, 0.0, 0.62):

        def p_xy(y: float, xq: float = xq) -> float:
            return math.exp(-float(pot.energy(torch.tensor([[xq, y]], dtype=torch.float64))) - log_z)

        py, _ = scipy.integrate.quad(p_xy, -np.inf, np.inf, limit=200)
        edges = torch.tensor([xq - 1e-3, xq + 1e-3], dtype=torch.float64)
        binned = float(target.marginal(edges, n=401).density[0])
        assert abs(binned - py) < 2e-3 * py  # bin of width 2e-3 around xq: O(w^2 p'') and grid error
    # 2-D cells sum to 1 up to the mass outside them (the box leaves ~1e-7)
    surf = target.surface(torch.linspace(-3, 2, 26), torch.linspace(-1.5, 3.5, 26))
    assert abs(float(surf.prob.sum()) - 1.0) < 1e-6


# --- BAOAB against the exact Boltzmann marginal ---------------------------------------------------

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


# --- the score of a diffusion model as a force ---------------------------------------------------


def test_mixture_score_is_the_gradient_of_its_log_density():
    mix = mog6()
    x = 3 * torch.randn(128, 2, generator=_gen(6), dtype=torch.float64)
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(mix.log_prob(x).sum(), x)
    assert float((mix.score(x.detach()) - grad).abs().max()) < 1e-10


@pytest.mark.parametrize("process", [VP(), EDM(), Linear()], ids=lambda p: type(p).__name__)
def test_field_force_is_kT_times_the_smoothed_score(process):
    mix, kT, sigma_hat = mog6(), 0.8, 0.3
    x = 3 * torch.randn(128, 2, generator=_gen(7), dtype=torch.float64)
    force = field_force(AnalyticField(mix, process), sigma_hat, kT)(x)
    # exact: the data smoothed by N(0, sigma_hat^2 I) is the mixture with covariances + sigma_hat^2 I
    smoothed = GaussianMixture(mix.weights, mix.means, mix.covs + sigma_hat**2 * torch.eye(2, dtype=torch.float64))
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(smoothed.log_prob(xg).sum(), xg)
    # float64 throughout; the only approximation is the bisection for t (200 halvings): ~1e-12
    assert float((force - kT * grad).abs().max()) < 1e-8
    # at sigma_hat -> 0 it is kT times the data score, up to the O(sigma_hat^2) smoothing
    tiny = field_force(AnalyticField(mix, process), 1e-4, kT)(x)
    assert float((tiny - kT * mix.score(x)).abs().max() / (1 + (kT * mix.score(x)).abs().max())) < 1e-5


# --- analysis on known cases -----------------------------------------------------------------------


def test_js_divergence_known_values():
    assert js_divergence([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0, abs=1e-15)  # normalised first
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0, abs=1e-15)  # disjoint: log 2 in base 2
    # p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4); JS = 1/2 log2(4/3) + 1/4 log2(2/3) + 1/4 log2(2)
    exact = 0.5 * math.log2(4 / 3) + 0.25 * math.log2(2 / 3) + 0.25
    assert js_divergence([1, 0], [0.5, 0.5]) == pytest.approx(exact, rel=1e-13)
    p, q = np.random.default_rng(0).random((2, 50))
    assert js_divergence(p, q) == pytest.approx(scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2, rel=1e-10)
    assert js_divergence(p, q, base=math.e) == pytest.approx(js_divergence(p, q) * math.log(2), rel=1e-12)


def test_integrated_autocorr_time_of_ar1():
    # AR(1) x_t = phi x_{t-1} + e_t has rho(t) = phi^t and tau = (1 + phi) / (1 - phi) = 19 at phi = 0.9
    phi, n, chains = 0.9, 50000, 8
    rng = np.random.default_rng(1)
    e = rng.standard_normal((n, chains))
    x = np.empty_like(e)
    x[0] = e[0] / math.sqrt(1 - phi**2)  # stationary start
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    tau = integrated_autocorr_time(x)
    # Sokal's estimate has relative s.e. ~ sqrt(2 (2M + 1) / (n chains)) ~ 2% with M ~ 5 tau
    assert abs(tau / 19.0 - 1.0) < 0.1, tau
    assert abs(integrated_autocorr_time(rng.standard_normal(100000)) - 1.0) < 0.05  # white noise: 1


def test_free_energy_error_alignment_and_populated_range():
    target = double_well()
    edges = torch.linspace(-2.0, 2.0, 41)
    ref = target.marginal(edges)
    x = target.density_grid(801).sample(400000, _gen(8))
    prof = free_energy_profile(x[:, 0], edges, 1.0)
    err = free_energy_error(prof, ref)
    assert err < 0.03, err  # i.i.d. exact samples: the Monte-Carlo floor (measured 0.012)
    # a constant offset is aligned away; a tilt is not
    mask = ref.prob > 1e-3
    d = aligned_difference(prof, ref)
    assert float((d * ref.prob[mask]).sum()) == pytest.approx(0.0, abs=1e-12)
    tilted = type(prof)(edges.double(), prof.prob * torch.exp(-0.3 * ref.centres), 1.0)  # F + 0.3 xi
    assert free_energy_error(tilted, ref) > 0.15
    # a populated bin with no samples is an infinite error
    holed = type(prof)(prof.edges, torch.where(ref.centres.abs() < 0.05, 0.0, prof.prob), 1.0)
    assert free_energy_error(holed, ref) == math.inf
    # 2-D surfaces of the same samples against the exact cell masses: JS near 0, far from a wrong kT
    xe, ye = torch.linspace(-2, 2, 21), torch.linspace(-3, 3, 21)
    exact = target.surface(xe, ye)
    hot = type(target)(target.potential, 2.0).surface(xe, ye)
    sampled = free_energy_surface(x, xe, ye, 1.0)
    assert js_divergence(sampled.prob, exact.prob) < 1e-3 < js_divergence(hot.prob, exact.prob)
