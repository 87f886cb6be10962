"""Boltzmann targets: normalisers, marginals and cell masses by quadrature against scipy's QUADPACK."""

from __future__ import annotations

import math

import numpy as np
import scipy.integrate
import torch

from scoredyn.physics import double_well, muller_brown


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
