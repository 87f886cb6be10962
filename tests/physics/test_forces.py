"""The score of a diffusion model as a force: ``kT`` times the exact score of the smoothed data, at one
noise level and at several in one call."""

from __future__ import annotations

import pytest
import torch

from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import EDM, VP, Linear
from scoredyn.core.targets import GaussianMixture, mog6
from scoredyn.physics import field_force, multi_sigma_force


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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


@pytest.mark.parametrize("process", [VP(), EDM()], ids=lambda p: type(p).__name__)
def test_multi_sigma_force_is_kT_times_each_smoothed_score(process):
    # K levels in one call: rows k W .. (k+1) W - 1 get kT grad log (p_0 * N(0, sigma_k^2 I)), the mixture
    # with covariances + sigma_k^2 I, written here independently of field_force
    mix, kT, sigmas, w = mog6(), 1.3, (0.05, 0.3, 1.0), 64
    x = 3 * torch.randn(w, 2, generator=_gen(8), dtype=torch.float64)
    force = multi_sigma_force(AnalyticField(mix, process), sigmas, kT, w)(x.repeat(len(sigmas), 1))
    assert force.shape == (len(sigmas) * w, 2)
    eye = torch.eye(2, dtype=torch.float64)
    for k, sigma in enumerate(sigmas):
        smoothed = GaussianMixture(mix.weights, mix.means, mix.covs + sigma**2 * eye)
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(smoothed.log_prob(xg).sum(), xg)
        # float64; the bisection for t is the only approximation (as for field_force)
        assert float((force[k * w : (k + 1) * w] - kT * grad).abs().max()) < 1e-8, sigma
    with pytest.raises(ValueError, match="sigmas"):
        multi_sigma_force(AnalyticField(mix, process), (0.1, 0.0), kT, w)
