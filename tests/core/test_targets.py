"""Gaussian mixtures: densities, sampling, JSON round-trip and validation."""

import json
import math

import pytest
import torch
from scipy.stats import multivariate_normal

from scoredyn.core.targets import POINT_CLOUDS, GaussianMixture, mog6, mog10, offcentre, random_mixture, rings


def test_log_prob_matches_scipy():
    for tg in (mog6(), mog10(), rings()):
        x = tg.sample(50, torch.Generator().manual_seed(1))
        ref = torch.logsumexp(
            torch.stack(
                [
                    torch.from_numpy(multivariate_normal(m.numpy(), c.numpy()).logpdf(x.numpy())) + math.log(w)
                    for w, m, c in zip(tg.weights.tolist(), tg.means, tg.covs, strict=True)
                ]
            ),
            dim=0,
        )
        torch.testing.assert_close(tg.log_prob(x), ref, rtol=1e-10, atol=1e-10)


def test_score_is_gradient_of_log_prob():
    tg = mog10()
    x = tg.sample(40, torch.Generator().manual_seed(2)).requires_grad_(True)
    (g,) = torch.autograd.grad(tg.log_prob(x).sum(), x)
    torch.testing.assert_close(tg.score(x.detach()), g, rtol=1e-8, atol=1e-12)


def test_mog6_is_as_documented():
    tg = mog6()
    assert tg.dim == 2 and tg.n_components == 6
    assert math.isclose(float(tg.weights.max()), 0.55)
    assert (tg.means.abs() <= 10).all()
    eig = torch.linalg.eigvalsh(tg.covs)
    assert (eig[:, 1] / eig[:, 0] > 2).all()  # every component anisotropic
    assert (tg.covs[:, 0, 1].abs() > 1e-3).all()  # and rotated (full covariance)


def test_sampling_moments_and_labels():
    tg = mog6()
    x, k = tg.sample(100_000, torch.Generator().manual_seed(3), return_labels=True)
    freq = torch.bincount(k, minlength=6).double() / k.numel()
    # multinomial standard error sqrt(p(1-p)/n) <= 0.0016; 5 s.e.
    assert (freq - tg.weights).abs().max() < 0.008
    torch.testing.assert_close(x.mean(0), tg.mean(), atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), tg.covariance(), atol=0.25, rtol=0.02)


def test_same_seed_same_samples():
    a = mog6().sample(100, torch.Generator().manual_seed(5))
    b = mog6().sample(100, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_json_round_trip(tmp_path):
    tg = random_mixture(3, 4, seed=7)
    path = tmp_path / "m.json"
    tg.save(path)
    back = GaussianMixture.load(path)
    assert torch.equal(back.weights, tg.weights) and torch.equal(back.covs, tg.covs)
    assert back.name == tg.name
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed away


BAD = [
    ({"weights": [0.5, 0.6], "means": [[0, 0], [1, 1]], "covs": [[[1, 0], [0, 1]]] * 2}, "sum to 1"),
    ({"weights": [-0.5, 1.5], "means": [[0, 0], [1, 1]], "covs": [[[1, 0], [0, 1]]] * 2}, "positive"),
    ({"weights": [1.0], "means": [[0, 0]], "covs": [[[1, 0.5], [0.4, 1]]]}, "symmetric"),
    ({"weights": [1.0], "means": [[0, 0]], "covs": [[[1, 2], [2, 1]]]}, "positive definite"),
    ({"weights": [1.0], "means": [[0, 0, 0]], "covs": [[[1, 0], [0, 1]]]}, "covs must have shape"),
    ({"weights": [0.5, 0.5], "means": [[0, 0]], "covs": [[[1, 0], [0, 1]]]}, "means must have shape"),
    ({"weights": [1.0], "means": [[0, float("nan")]], "covs": [[[1, 0], [0, 1]]]}, "NaN"),
    ({"weights": [1.0], "means": [[0, 0], [1]], "covs": [[[1, 0], [0, 1]]]}, "ragged"),
    ({"weights": [1.0], "means": [[0, 0]]}, "missing covs"),
]


@pytest.mark.parametrize("d,msg", BAD, ids=[m for _, m in BAD])
def test_validation(tmp_path, d, msg):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=msg):
        GaussianMixture.load(path)


def test_malformed_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        GaussianMixture.load(path)


def test_noised_mixture_is_the_convolution():
    from scoredyn.core.processes import VP

    tg, p = offcentre(), VP()
    t = torch.tensor(0.4, dtype=torch.float64)
    nm = tg.noised(p, t)
    a, s = float(p.alpha(t)), float(p.sigma(t))
    torch.testing.assert_close(nm.means, a * tg.means)
    torch.testing.assert_close(nm.covs, a**2 * tg.covs + s**2 * torch.eye(2, dtype=torch.float64))


@pytest.mark.parametrize("name", sorted(POINT_CLOUDS))
def test_point_clouds(name):
    pc = POINT_CLOUDS[name]
    x = pc.sample(2000, torch.Generator().manual_seed(0))
    assert x.shape == (2000, 2) and torch.isfinite(x).all()
    assert x.abs().max() < 8  # all toys live in about [-6, 6]^2
    mix = pc.as_mixture(64)
    assert mix.n_components == 64 and mix.dim == 2
    # the KDE mixture puts more density on the cloud than on a far point
    assert mix.log_prob(x[:100]).mean() > mix.log_prob(torch.full((1, 2), 20.0, dtype=torch.float64))[0]
