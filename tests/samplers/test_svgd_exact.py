"""The knobs that make annealed SVGD reach the law in 10-D, each against a computation written here.

- ``median_bandwidth``: Liu & Wang's (2016, Sec. 5) ``h_LW = med^2 / log N`` for ``exp(-r^2 / h_LW)``,
  i.e. ``h = med / sqrt(log N)`` for ``exp(-r^2 / h^2)``, from pairwise distances listed by hand;
- ``neighbour_bandwidth``: closed forms (two points, an equilateral triangle) and the defining sum;
- ``svgd_direction(normalization="mass")``: the ``O(N^2)`` sums written term by term, its invariances,
  and the lone particle that the ``1/N`` of eq. 8 freezes;
- ``svgd(bandwidth="median", normalization="mass", min_neighbours=m)``: two levels of two steps
  replayed here with the bandwidth, the capped step ``eta_factor min(sigma^2, h^2)`` and the direction
  computed from scratch, on the exact score of a two-component mixture (``torch.distributions``);
- one small run on the 10-D mixture ``mog10`` where the old recipe stays far from the law and the new
  knobs come close (deterministic: fixed start, no noise).

Float64 throughout; replayed runs agree to rounding (measured <= 5e-15), so ``TOL = 1e-10`` leaves
room for the different grouping of terms, while each knob moves the particles by far more.
"""

from __future__ import annotations

import itertools
import math
import statistics

import pytest
import torch
from torch.distributions import MultivariateNormal

from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import EDM
from scoredyn.core.targets import GaussianMixture, mog10
from scoredyn.metrics import evaluate
from scoredyn.samplers import geometric_sigma_grid, start_distribution
from scoredyn.samplers.svgd import median_bandwidth, neighbour_bandwidth, svgd, svgd_direction

F64 = torch.float64
TOL = {"rtol": 1e-10, "atol": 1e-10}  # float64 rounding of O(1) numbers (module docstring)

W = torch.tensor([0.3, 0.7], dtype=F64)
MU = torch.tensor([[-1.5, 0.5], [1.0, -0.8]], dtype=F64)
COV = torch.tensor([[[0.5, 0.2], [0.2, 0.3]], [[0.2, -0.05], [-0.05, 0.6]]], dtype=F64)
TARGET = GaussianMixture(W, MU, COV, name="two")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _points(seed: int, n: int, d: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(n, d, generator=_gen(seed), dtype=F64)


def _score(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``grad log p_sigma`` of ``sum_k w_k N(mu_k, C_k + sigma^2 I)`` by autograd (EDM: ``alpha = 1``)."""
    x = x.detach().requires_grad_(True)
    comps = MultivariateNormal(MU, covariance_matrix=COV + sigma**2 * torch.eye(2, dtype=F64))
    logp = torch.logsumexp(torch.log(W) + comps.log_prob(x[:, None, :]), dim=1)
    (grad,) = torch.autograd.grad(logp.sum(), x)
    return grad


def _median_by_hand(x: torch.Tensor) -> float:
    """``med / sqrt(log N)`` with the distances listed pair by pair."""
    rows = x.tolist()
    dists = [math.dist(a, b) for a, b in itertools.combinations(rows, 2)]
    return statistics.median(dists) / math.sqrt(math.log(len(rows)))


def _direction_by_hand(x, s, h, lam, normalization):
    """``phi_i = (1 / Z_i) sum_j [k_ij s_j + lam (2 / h^2) k_ij (x_i - x_j)]``, ``Z_i = N`` or ``sum_j k_ij``."""
    n = x.shape[0]
    phi = torch.zeros_like(x)
    for i in range(n):
        z, acc = 0.0, torch.zeros(x.shape[1], dtype=F64)
        for j in range(n):
            k = math.exp(-float(((x[i] - x[j]) ** 2).sum()) / h**2)
            acc += k * s[j] + lam * (2.0 / h**2) * k * (x[i] - x[j])
            z += k
        phi[i] = acc / (n if normalization == "n" else z)
    return phi


# --- the bandwidth rules ----------------------------------------------------------------------------


def test_median_bandwidth_on_a_line():
    # points 0, 1, 2, 3: distances 1, 1, 1, 2, 2, 3, median (1 + 2) / 2 = 1.5; N = 4
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=F64)
    assert median_bandwidth(x) == pytest.approx(1.5 / math.sqrt(math.log(4.0)), rel=1e-14)


@pytest.mark.parametrize(("n", "d"), [(7, 2), (30, 10)])
def test_median_bandwidth_is_the_pairwise_median_over_sqrt_log_n(n, d):
    x = _points(n + d, n, d, 3.0)
    assert median_bandwidth(x) == pytest.approx(_median_by_hand(x), rel=1e-12)


def test_median_bandwidth_looks_at_the_first_points_but_counts_all():
    # the median of the first 12 points' distances, over sqrt(log 40) (N counts every particle)
    x = _points(3, 40, 3)
    first = x[:12].tolist()
    med = statistics.median(math.dist(a, b) for a, b in itertools.combinations(first, 2))
    assert median_bandwidth(x, max_points=12) == pytest.approx(med / math.sqrt(math.log(40)), rel=1e-12)


def test_neighbour_bandwidth_closed_forms():
    # two points at distance 2, mass m = exp(-4 / h^2): h = 2 / sqrt(log(1 / m))
    two = torch.tensor([[0.0, 0.0], [2.0, 0.0]], dtype=F64)
    assert neighbour_bandwidth(two, 0.5) == pytest.approx(2.0 / math.sqrt(math.log(2.0)), rel=1e-12)
    # equilateral triangle of side 3: each point has mass 2 exp(-9 / h^2) = m
    tri = torch.tensor([[0.0, 0.0], [3.0, 0.0], [1.5, 1.5 * math.sqrt(3.0)]], dtype=F64)
    assert neighbour_bandwidth(tri, 0.8) == pytest.approx(3.0 / math.sqrt(math.log(2.0 / 0.8)), rel=1e-12)


@pytest.mark.parametrize(("m", "max_points"), [(3.0, 1000), (10.0, 1000), (3.0, 25)])
def test_neighbour_bandwidth_gives_the_asked_mass(m, max_points):
    # mean over the first M points of sum_{j != i, j <= M} k_ij is (M - 1) / (N - 1) m
    x = _points(5, 60, 10, 2.0)
    h = neighbour_bandwidth(x, m, max_points=max_points)
    sub = x[:max_points]
    M = sub.shape[0]
    k = torch.exp(-torch.cdist(sub, sub).square() / h**2)
    mass = float((k.sum(1) - 1.0).mean())  # minus the particle's own k_ii = 1
    assert mass == pytest.approx((M - 1) / (60 - 1) * m, rel=1e-9)


def test_bandwidth_rules_refuse_what_they_cannot_do():
    same = torch.ones(5, 2, dtype=F64)
    with pytest.raises(ValueError, match="distinct"):
        median_bandwidth(same)
    with pytest.raises(ValueError, match="at least 2"):
        median_bandwidth(torch.zeros(1, 2, dtype=F64))
    with pytest.raises(ValueError, match="neighbours"):
        neighbour_bandwidth(_points(1, 5, 2), 4.0)  # a point has only N - 1 = 4 others


# --- the kernel-mass direction --------------------------------------------------------------------------


@pytest.mark.parametrize("normalization", ["n", "mass"])
@pytest.mark.parametrize(("h", "lam"), [(0.7, 1.0), (2.5, 0.3)])
def test_direction_is_the_double_sum(normalization, h, lam):
    x, s = _points(11, 25, 3, 1.5), _points(12, 25, 3)
    ours = svgd_direction(x, s, h, lam, normalization=normalization, backend="torch", chunk_size=7)
    torch.testing.assert_close(ours, _direction_by_hand(x, s, h, lam, normalization), **TOL)


def test_mass_direction_invariances():
    x, s, h = _points(13, 40, 3, 2.0), _points(14, 40, 3), 1.3
    phi = svgd_direction(x, s, h, normalization="mass")
    # a shift of the particles changes nothing
    torch.testing.assert_close(svgd_direction(x + 7.0, s, h, normalization="mass"), phi, **TOL)
    # a rotation turns the direction with it
    q = torch.linalg.qr(_points(15, 3, 3))[0]
    torch.testing.assert_close(svgd_direction(x @ q.T, s @ q.T, h, normalization="mass"), phi @ q.T, **TOL)
    # x -> a x, s -> s / a, h -> a h: phi -> phi / a (a score has units 1 / length)
    torch.testing.assert_close(svgd_direction(3.0 * x, s / 3.0, 3.0 * h, normalization="mass"), phi / 3.0, **TOL)
    # the two normalisations differ by the positive factor sum_j k_ij / N, so they vanish together
    k_sum = torch.exp(-torch.cdist(x, x).square() / h**2).sum(1, keepdim=True)
    torch.testing.assert_close(svgd_direction(x, s, h) * len(x) / k_sum, phi, **TOL)


def test_a_lone_particle_follows_its_own_score():
    # 50 particles near 0 and one at distance 40 (h = 1): its kernel mass from the others is e^-1500.
    # With 1/N it moves at s / N (frozen in the tail); with the kernel mass it moves at its full score.
    x = torch.cat([_points(16, 50, 2, 0.5), torch.tensor([[40.0, 0.0]], dtype=F64)])
    s = -x / 4.0
    lone_n = svgd_direction(x, s, 1.0)[-1]
    lone_mass = svgd_direction(x, s, 1.0, normalization="mass")[-1]
    torch.testing.assert_close(lone_n, s[-1] / len(x), **TOL)
    torch.testing.assert_close(lone_mass, s[-1], **TOL)


# --- the annealed sampler with the new knobs ---------------------------------------------------------


def _replay(x, sigmas, steps, eta_factor, b, m, lam=1.0):
    """Two levels of ``svgd(bandwidth="median", normalization="mass", min_neighbours=m)``, by hand."""
    for sigma in sigmas:
        # the level's bandwidth, from the particles entering it: b * med / sqrt(log N), widened to the
        # root h of mean_i sum_{j != i} k_ij = m (the mass rises with h: bisection to float precision)
        h = b * _median_by_hand(x)
        if m > 0:
            lo, hi = 1e-3, 1e3
            for _ in range(200):
                mid = math.sqrt(lo * hi)
                mass = float((torch.exp(-torch.cdist(x, x).square() / mid**2).sum(1) - 1.0).mean())
                lo, hi = (mid, hi) if mass < m else (lo, mid)
            h = max(h, math.sqrt(lo * hi))
        eta = eta_factor * min(sigma**2, h**2)  # the capped step
        for _ in range(steps):
            x = x + eta * _direction_by_hand(x, _score(x, sigma), h, lam, "mass")
    return x


@pytest.mark.parametrize(
    ("sigmas", "b", "m"),
    [
        ([3.0, 0.4], 0.7, 0.0),  # level 1 capped by h^2 (h < sigma = 3), level 2 by sigma^2
        ([1.0, 0.5], 0.3, 8.0),  # the neighbour floor widens the narrow median bandwidth
    ],
    ids=["median-capped", "neighbour-floor"],
)
def test_svgd_median_mass_is_the_replayed_algorithm(sigmas, b, m):
    x0, T, eps = _points(17, 20, 2, 1.5), 2, 0.3
    grid = torch.tensor(sigmas, dtype=F64)  # EDM: t = sigma
    ours = svgd(AnalyticField(TARGET, EDM()), x0, grid, steps_per_level=T, eta_factor=eps, bandwidth="median",
                bandwidth_factor=b, normalization="mass", min_neighbours=m, backend="torch")  # fmt: skip
    torch.testing.assert_close(ours.x, _replay(x0, sigmas, T, eps, b, m), **TOL)
    assert ours.nfe == T * len(sigmas)


def test_the_floor_is_active_in_the_floor_case():
    # guard for the case above: there the neighbour bandwidth is wider than 0.3 x the median one
    x0 = _points(17, 20, 2, 1.5)
    assert neighbour_bandwidth(x0, 8.0) > 1.5 * 0.3 * median_bandwidth(x0)


def test_new_knobs_are_validated():
    field, x = AnalyticField(TARGET, EDM()), _points(18, 10, 2)
    grid = torch.tensor([1.0], dtype=F64)
    for kwargs, name in (
        ({"bandwidth": "silverman"}, "bandwidth"),
        ({"normalization": "sum"}, "normalization"),
        ({"min_neighbours": -1.0}, "min_neighbours"),
        ({"min_neighbours": 9.0}, "min_neighbours"),  # N - 1 = 9 others at most
    ):
        with pytest.raises(ValueError, match=name):
            svgd(field, x, grid, steps_per_level=1, **kwargs)
    with pytest.raises(ValueError, match="normalization"):
        svgd_direction(x, x, 1.0, normalization="sum")


# --- a small run in 10-D ------------------------------------------------------------------------------


def test_median_mass_svgd_reaches_mog10_where_the_old_recipe_does_not():
    # N = 400 on the 10-D mixture mog10, 10 levels x 30 steps from the ladder start N(0, 10^2 I), fixed
    # seed, no noise: a deterministic check (about 4 s). Ratios to the floors at N = 400 (mode TV,
    # energy), measured over the start seeds 0-9: the old recipe (h = 2 sigma, 1/N) 3.2-4.4 and
    # 221-231 (seed 0: 3.58, 228), the new knobs 0.83-1.35 and 0.40-0.88 (seed 0: 1.28, 0.62). The
    # bounds sit a factor 1.5-2.3 away from every one of those ten runs.
    target, n = mog10(), 400
    process = EDM()
    grid = geometric_sigma_grid(process, 10)
    x0 = start_distribution("ladder", process, grid[0], target=target).sample(n, generator=_gen(0))
    field = AnalyticField(target, process)
    old = svgd(field, x0, grid, steps_per_level=30, bandwidth_factor=2.0)
    new = svgd(field, x0, grid, steps_per_level=30, eta_factor=1.0, bandwidth="median", bandwidth_factor=0.7,
               normalization="mass", min_neighbours=10.0)  # fmt: skip
    metrics = ("mode_tv_exact", "energy_exact")
    r_old, r_new = (evaluate(out.x, target, metrics=metrics, seed=0) for out in (old, new))
    assert r_old["mode_tv_exact"]["ratio"] > 2.0 and r_old["energy_exact"]["ratio"] > 100.0
    assert r_new["mode_tv_exact"]["ratio"] < 2.0 and r_new["energy_exact"]["ratio"] < 2.0
