"""Metropolis-adjusted Langevin: the acceptance ratio against a hand computation, exact invariance of a
Gaussian where the unadjusted kick is biased, the step-size adaptation, and annealed MALA's contract."""

import math

import pytest
import torch

from scoredyn.core.fields import AnalyticField, Field, NoDensityError
from scoredyn.core.processes import EDM
from scoredyn.core.targets import GaussianMixture, mog6
from scoredyn.samplers import annealed_mala, geometric_sigma_grid
from scoredyn.samplers._steps import ACCEPT_TARGET, adapt_step_size, mala_move


def gaussian_evaluate(var: float):
    """score and log-density of N(0, var I)."""

    def evaluate(y):
        return -y / var, -0.5 * (y**2).sum(1) / var - 0.5 * y.shape[1] * math.log(2 * math.pi * var)

    return evaluate


def test_acceptance_ratio_is_the_metropolis_hastings_ratio_of_the_langevin_proposal():
    evaluate = gaussian_evaluate(2.0)
    x = torch.tensor([[0.3, -1.2], [2.0, 0.5]], dtype=torch.float64)
    s, lp = evaluate(x)
    h = 0.7
    g = torch.Generator().manual_seed(3)
    move = mala_move(evaluate, x, s, lp, h, g)
    g = torch.Generator().manual_seed(3)  # the same draws, by hand
    xi = torch.randn(x.shape, generator=g, dtype=torch.float64)
    u = torch.rand(2, generator=g, dtype=torch.float64)
    y = x + h * s + math.sqrt(2 * h) * xi
    sy, lpy = evaluate(y)

    def log_q(b, a, sa):  # N(b; a + h s(a), 2h I)
        return -((b - a - h * sa) ** 2).sum(1) / (4 * h)

    log_a = lpy - lp + log_q(x, y, sy) - log_q(y, x, s)
    expected = torch.log(u) < log_a
    assert move.accepted.tolist() == expected.tolist()
    assert torch.equal(move.x, torch.where(expected[:, None], y, x))
    assert torch.equal(move.log_p, torch.where(expected, lpy, lp))


def test_mala_keeps_a_gaussian_exactly_where_the_unadjusted_kick_does_not():
    # N(0, 1) in 1-D, h = 1.5: the unadjusted kick x(1 - h) + sqrt(2h) xi maps variance 1 to
    # (1 - h)^2 + 2h = 3.25; MALA keeps 1. With 200000 exact draws the sample variance has sd
    # sqrt(2 / 200000) = 0.0032 per move; after 5 moves the bound 0.03 is over 9 sd (false failure < 1e-15)
    evaluate = gaussian_evaluate(1.0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200_000, 1, generator=g, dtype=torch.float64)
    s, lp = evaluate(x)
    for _ in range(5):
        x, s, lp, accepted = mala_move(evaluate, x, s, lp, 1.5, g)
    assert abs(float(x.var()) - 1.0) < 0.03
    assert 0.05 < float(accepted.double().mean()) < 0.95  # some moves are refused: the test does work
    y = torch.randn(200_000, 1, generator=g, dtype=torch.float64)
    ys, ylp = evaluate(y)
    unadjusted = mala_move(evaluate, y, ys, ylp, 1.5, g, adjust=False)
    assert bool(unadjusted.accepted.all())
    assert abs(float(unadjusted.x.var()) - 3.25) < 0.1


def test_step_size_adaptation():
    assert adapt_step_size(0.5, ACCEPT_TARGET) == 0.5
    assert adapt_step_size(0.5, 0.0) == pytest.approx(0.5 * math.exp(-2 * 0.574), rel=1e-12)
    assert adapt_step_size(0.5, 1.0) == pytest.approx(0.5 * math.exp(2 * 0.426), rel=1e-12)
    assert ACCEPT_TARGET == 0.574  # Roberts & Rosenthal 1998


class ScoreOnly(Field):
    def __init__(self, field):
        self.inner, self.process = field, field.process

    def score(self, x, t):
        return self.inner.score(x, t)


def test_annealed_mala_needs_a_density():
    field = ScoreOnly(AnalyticField(mog6(), EDM()))
    with pytest.raises(NoDensityError, match="log-density"):
        annealed_mala(field, torch.zeros(4, 2, dtype=torch.float64), geometric_sigma_grid(EDM(), 3))


def test_annealed_mala_is_exact_at_each_level_and_reports_its_acceptance():
    # one Gaussian, sigma ladder 10 -> 0.05 under EDM: p_t = N(0, (1 + sigma^2) I); the particles start at
    # the first level's law, so every level is an exactly invariant MALA chain on a moving target and the
    # last level's variance is 1.0025. 40000 draws in 2-D: sd of the variance sqrt(2/80000) = 0.005, and the
    # chain lags the ladder by little with 30 moves a level; the bound 0.03 is 6 sd
    target = GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 0.0], [0.0, 1.0]]])
    grid = geometric_sigma_grid(EDM(), 6)
    g = torch.Generator().manual_seed(0)
    x = target.noised(EDM(), grid[0]).sample(40_000, generator=g)
    r = annealed_mala(AnalyticField(target, EDM()), x, grid, steps_per_level=30, generator=g)
    assert abs(float(r.x.var(0).mean()) - (1 + 0.05**2)) < 0.03
    assert r.nfe == 6 * 31
    assert len(r.info["acceptance"]) == 6
    assert all(0.45 < a < 0.7 for a in r.info["acceptance"])  # adapted to 0.574 within a few moves
