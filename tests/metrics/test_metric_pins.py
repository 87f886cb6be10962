"""The constants and draws behind the exact-law metrics, pinned: how many draws the mode probabilities
and the Fisher information take and in what order, the seed of the two-sample mode-TV floor, the
documented defaults of ``mc_floor`` and ``random_mixture``."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from scoredyn.core.targets import GaussianMixture, mog6, random_mixture
from scoredyn.metrics import evaluate, mc_floor
from scoredyn.metrics.exact import (
    MODE_POINTS_PER_COMPONENT,
    fisher_information,
    mode_counts,
    mode_probabilities,
    mode_tv_two_sample_floor,
)

F64 = torch.float64


@pytest.mark.parametrize("per, chunks", [(100_000, (65_536, 100_000 - 65_536)), (1000, (1000,))])
def test_mode_probabilities_draw_each_component_in_chunks_from_one_stream(per, chunks):
    # 100,000 draws per component cross one chunk boundary (65,536), 1000 fill less than one chunk;
    # the same stream by hand
    target, seed = mog6(), 5
    g = torch.Generator().manual_seed(seed)
    confusion = torch.zeros(6, 6, dtype=F64)
    for j in range(6):
        for n in chunks:
            x = target.means[j] + torch.randn(n, 2, generator=g, dtype=F64) @ target.chol[j].T
            confusion[j] += mode_counts(x, target)
    confusion /= per
    got = mode_probabilities(target, per, seed)
    torch.testing.assert_close(got.p, target.weights.double() @ confusion, rtol=1e-14, atol=0)


def test_mode_probabilities_are_accurate_by_default():
    # 2^18 draws per component: on mog6 the standard error of every p_k is below 1e-5 (3e-6 measured),
    # a tenth of the mode-TV floor's per-component scale at N = 10^6 (sqrt(p (1 - p) / N) >= 2e-4)
    assert MODE_POINTS_PER_COMPONENT == 2**18
    assert float(mode_probabilities(mog6()).se.max()) < 1e-5


def test_fisher_information_is_the_mean_squared_score_of_its_draws():
    # 100,000 points: one full chunk of 65,536 and the rest, from one stream
    target = GaussianMixture(torch.ones(1, dtype=F64), torch.zeros(1, 3, dtype=F64), torch.eye(3, dtype=F64)[None])
    g = torch.Generator().manual_seed(3)
    x = torch.cat([target.sample(65_536, g), target.sample(100_000 - 65_536, g)])
    values = (target.score(x) ** 2).sum(1)
    mean, se = fisher_information(target, points=100_000, seed=3)
    assert mean == pytest.approx(float(values.mean()), rel=1e-13)
    assert se == pytest.approx(float(values.std()) / math.sqrt(100_000), rel=1e-12)


def test_two_sample_mode_tv_floor_is_drawn_with_the_seed_after_evaluates():
    target, n, seed = mog6(), 400, 9
    x = target.sample(n, torch.Generator().manual_seed(1))
    report = evaluate(x, target, seed=seed, metrics=("mode_tv",))
    mean, std = mode_tv_two_sample_floor(target, n, n, seed=seed + 1)
    assert report["mode_tv"]["floor"] == mean and report["mode_tv"]["floor_std"] == std


def test_documented_defaults():
    assert inspect.signature(mc_floor).parameters["repeats"].default == 3
    params = inspect.signature(random_mixture).parameters
    assert params["mean_scale"].default == 5.0 and params["cov_scale"].default == 1.0
    # cov_scale multiplies the covariance: (A A^T / D + 0.05 I) doubles with cov_scale = 2
    torch.testing.assert_close(random_mixture(3, 2, seed=4, cov_scale=2.0).covs, 2 * random_mixture(3, 2, seed=4).covs)
