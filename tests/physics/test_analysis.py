"""Analysis on known cases: Jensen–Shannon values, the autocorrelation time of AR(1), free-energy errors and
their alignment."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.spatial.distance
import torch

from scoredyn.physics import (
    aligned_difference,
    double_well,
    free_energy_error,
    free_energy_profile,
    free_energy_surface,
    integrated_autocorr_time,
    js_divergence,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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
