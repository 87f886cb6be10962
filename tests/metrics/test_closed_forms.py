"""Closed-form pair expectations of Gaussian mixtures against independent answers: the standard
normal's ``E|X - X'| = 2 Gamma((D+1)/2) / Gamma(D/2)`` and ``E k = (1 + 2/h^2)^{-D/2}``, the folded
normal ``E|Z|`` in 1-D, a polar-coordinate integral of ``E|Z|`` in 2-D, the Gaussian integral of the
RBF kernel written with NumPy, and Monte Carlo.

Statistical checks allow 6 standard errors of a mean of many i.i.d. bounded (or light-tailed) terms:
a false failure has probability about 2e-9 per check (two-sided normal tail; the means are over
at least 2^15 terms, so the normal limit holds far into the tail)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

from scoredyn.core.targets import GaussianMixture, mog6
from scoredyn.metrics.closed_forms import expected_distance, kernel_embedding, mean_pair_distance, mean_pair_kernel

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _standard_normal(dim: int) -> GaussianMixture:
    return GaussianMixture([1.0], torch.zeros(1, dim, dtype=F64), torch.eye(dim, dtype=F64)[None])


def _mean_abs_normal(m: float, s: float) -> float:
    """``E|Z|`` for ``Z ~ N(m, s^2)`` (the folded normal's mean):
    ``s sqrt(2/pi) exp(-m^2 / (2 s^2)) + m (1 - 2 Phi(-m/s))``."""
    return s * math.sqrt(2 / math.pi) * math.exp(-(m**2) / (2 * s**2)) + m * (1 - 2 * scipy.stats.norm.cdf(-m / s))


def _mean_norm_2d(m: np.ndarray, cov: np.ndarray, nodes: int = 2**14) -> float:
    """``E|Z|`` for ``Z ~ N(m, C)`` in 2-D, in polar coordinates ``z = r (cos t, sin t)``.

    The radial integral ``int_0^inf r^2 exp(-(a r^2 - 2 b r + c) / 2) dr`` (``a = u^T P u``,
    ``b = u^T P m``, ``c = m^T P m``, ``P = C^{-1}``) is closed form: completing the square,
    ``exp(-(c - t^2)/2) sqrt(2 pi) a^{-3/2} [(t^2 + 1) Phi(t) + t phi(t)]`` with ``t = b / sqrt(a)``
    (the second moment of a normal truncated to ``r > 0``). The angular integral is of a smooth
    periodic function, so the trapezoid rule converges geometrically: ``nodes`` is far more than
    enough for the angular widths here (checked against 2-D adaptive quadrature to 1e-15 while
    writing this test).
    """
    prec = np.linalg.inv(cov)
    theta = np.arange(nodes) * 2 * math.pi / nodes
    u = np.stack([np.cos(theta), np.sin(theta)], 1)
    a = np.einsum("ti,ij,tj->t", u, prec, u)
    b = u @ prec @ m
    t = b / np.sqrt(a)
    bracket = (t * t + 1) * scipy.special.ndtr(t) + t * np.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    radial = np.exp(-(m @ prec @ m - t * t) / 2) * math.sqrt(2 * math.pi) * a**-1.5 * bracket
    return float(radial.mean() / math.sqrt(np.linalg.det(cov)))  # (2 pi / nodes) sum / (2 pi sqrt det C)


def _mixture_1d() -> GaussianMixture:
    """Two overlapping components of unequal weights and variances."""
    return GaussianMixture([0.3, 0.7], [[-1.0], [2.5]], [[[0.5]], [[2.0]]])


@pytest.mark.parametrize("dim", [1, 2, 10])
def test_standard_normal_pair_expectations(dim):
    # X - X' ~ N(0, 2 I): E|X - X'| = sqrt(2) E|N(0, I)| = 2 Gamma((D+1)/2) / Gamma(D/2) (chi mean);
    # E exp(-|X - X'|^2 / (2h^2)) = det(I + 2 I / h^2)^{-1/2} = (1 + 2/h^2)^{-D/2}.
    # 1e-10: the quadrature is stated to about 1e-12 relative; the kernel is closed form.
    target = _standard_normal(dim)
    exact = 2 * math.exp(math.lgamma((dim + 1) / 2) - math.lgamma(dim / 2))
    assert mean_pair_distance(target) == pytest.approx(exact, rel=1e-10)
    for h in (0.3, 1.0, 2.7):
        assert mean_pair_kernel(target, h) == pytest.approx((1 + 2 / h**2) ** (-dim / 2), rel=1e-12)


def test_one_dimensional_mixture_pair_expectations():
    # E|X - X'| = sum_jk pi_j pi_k E|N(mu_j - mu_k, s_j^2 + s_k^2)| with the folded-normal mean, and
    # E k = sum_jk pi_j pi_k h / sqrt(h^2 + s_j^2 + s_k^2) exp(-(mu_j - mu_k)^2 / (2 (h^2 + s_j^2 + s_k^2)))
    target = _mixture_1d()
    w, mu, var = [0.3, 0.7], [-1.0, 2.5], [0.5, 2.0]
    pairs = [(j, k) for j in range(2) for k in range(2)]
    exact = sum(w[j] * w[k] * _mean_abs_normal(mu[j] - mu[k], math.sqrt(var[j] + var[k])) for j, k in pairs)
    assert mean_pair_distance(target) == pytest.approx(exact, rel=1e-10)
    for h in (0.4, 1.5):
        s2 = [h**2 + var[j] + var[k] for j, k in pairs]
        kernel = sum(
            w[j] * w[k] * h / math.sqrt(v) * math.exp(-((mu[j] - mu[k]) ** 2) / (2 * v))
            for (j, k), v in zip(pairs, s2, strict=True)
        )
        assert mean_pair_kernel(target, h) == pytest.approx(kernel, rel=1e-12)


def test_mog6_pair_expectations_against_polar_integral_and_gaussian_integral():
    # E|X - X'| = sum_jk pi_j pi_k E|N(mu_j - mu_k, S_jk)|, each term by the polar integral above;
    # E k = sum_jk pi_j pi_k det(I + S_jk / h^2)^{-1/2} exp(-d^T (h^2 I + S_jk)^{-1} d / 2) (Gaussian
    # integral, written with NumPy's det and solve).
    target = mog6()
    w, mu, cov = target.weights.numpy(), target.means.numpy(), target.covs.numpy()
    k = len(w)
    distance = sum(w[a] * w[b] * _mean_norm_2d(mu[a] - mu[b], cov[a] + cov[b]) for a in range(k) for b in range(k))
    assert mean_pair_distance(target) == pytest.approx(distance, rel=1e-10)
    for h in (0.8, 3.0):
        kernel = 0.0
        for a in range(k):
            for b in range(k):
                s, d = cov[a] + cov[b], mu[a] - mu[b]
                quad = d @ np.linalg.solve(h**2 * np.eye(2) + s, d)
                kernel += w[a] * w[b] * np.linalg.det(np.eye(2) + s / h**2) ** -0.5 * math.exp(-quad / 2)
        assert mean_pair_kernel(target, h) == pytest.approx(kernel, rel=1e-12)


def test_kernel_embedding_of_one_and_two_dimensional_gaussians_is_closed_form():
    # mu_p(x) = sum_k pi_k det(I + Sigma_k / h^2)^{-1/2} exp(-(x - mu_k)^T (h^2 I + Sigma_k)^{-1} (x - mu_k) / 2)
    target = _mixture_1d()
    x = torch.linspace(-12.0, 15.0, 55, dtype=F64)[:, None]
    for h in (0.5, 2.0):
        exact = sum(
            w * h / math.sqrt(h**2 + v) * torch.exp(-((x[:, 0] - m) ** 2) / (2 * (h**2 + v)))
            for w, m, v in ((0.3, -1.0, 0.5), (0.7, 2.5, 2.0))
        )
        torch.testing.assert_close(kernel_embedding(x, target, h), exact, rtol=1e-12, atol=0.0)
    cov = np.array([[2.0, 0.7], [0.7, 0.5]])
    mean = np.array([1.0, -2.0])
    gauss = GaussianMixture([1.0], mean[None], cov[None])
    pts = torch.randn(40, 2, generator=_gen(0), dtype=F64) * 3
    h = 1.3
    quad = [d @ np.linalg.solve(h**2 * np.eye(2) + cov, d) for d in pts.numpy() - mean]
    exact = np.linalg.det(np.eye(2) + cov / h**2) ** -0.5 * np.exp(-np.array(quad) / 2)
    torch.testing.assert_close(kernel_embedding(pts, gauss, h), torch.from_numpy(exact), rtol=1e-12, atol=0.0)


def test_kernel_embedding_of_mog6_matches_monte_carlo():
    # mu_p(x) = E k(x, Y): the mean of k(x, Y_i) over 2^18 exact draws, within 6 standard errors of
    # that mean (k in [0, 1]; false failure ~2e-9 per point, 12 points)
    target, h = mog6(), 2.0
    y = target.sample(2**18, _gen(1))
    x = torch.cat([target.means, target.means + torch.tensor([1.0, -0.5], dtype=F64)])
    terms = torch.exp(-(torch.cdist(x, y) ** 2) / (2 * h**2))  # (12, M)
    mc, se = terms.mean(1), terms.std(1) / math.sqrt(y.shape[0])
    got = kernel_embedding(x, target, h)
    assert ((got - mc).abs() < 6 * se).all(), ((got - mc) / se).tolist()


def test_expected_distance_matches_folded_normal_in_one_dimension():
    # g(x) = sum_k pi_k E|N(x - mu_k, s_k^2)|, at points near and between the modes, on a mean, and
    # far out (g ~ |x - E X|); the module states 3e-8 relative for its trapezoid rule: 1e-7 here.
    target = _mixture_1d()
    near = torch.linspace(-20.0, 25.0, 181, dtype=F64)
    far = torch.tensor([-1e5, -3e3, -250.0, 400.0, 7e3, 2e5], dtype=F64)
    for x in (near, far, torch.cat([near, far, torch.tensor([-1.0, 2.5], dtype=F64)])):
        exact = torch.tensor(
            [
                sum(
                    w * _mean_abs_normal(float(v) - m, math.sqrt(s2))
                    for w, m, s2 in ((0.3, -1.0, 0.5), (0.7, 2.5, 2.0))
                )
                for v in x
            ],
            dtype=F64,
        )
        torch.testing.assert_close(expected_distance(x[:, None], target), exact, rtol=1e-7, atol=0.0)


def test_expected_distance_of_mog6_matches_polar_integral():
    # g(x) = sum_k pi_k E|N(x - mu_k, Sigma_k)|, each term by the polar integral (1e-7 as above)
    target = mog6()
    x = torch.cat([target.means, torch.randn(20, 2, generator=_gen(2), dtype=F64) * 12])
    w, mu, cov = target.weights.numpy(), target.means.numpy(), target.covs.numpy()
    exact = [sum(w[k] * _mean_norm_2d(p - mu[k], cov[k]) for k in range(len(w))) for p in x.numpy()]
    torch.testing.assert_close(expected_distance(x, target), torch.tensor(exact, dtype=F64), rtol=1e-7, atol=0.0)


def test_mean_over_exact_samples_of_g_and_of_the_embedding():
    # E_X g(X) = E|X - X'| and E_X mu_p(X) = E k(X, X'): means over 2^15 exact draws within 6
    # standard errors (false failure ~2e-9 each; g has Gaussian tails, the embedding lies in [0, 1])
    target, h = mog6(), 1.5
    x = target.sample(2**15, _gen(3))
    for values, exact in (
        (expected_distance(x, target), mean_pair_distance(target)),
        (kernel_embedding(x, target, h), mean_pair_kernel(target, h)),
    ):
        se = float(values.std()) / math.sqrt(x.shape[0])
        assert abs(float(values.mean()) - exact) < 6 * se, (float(values.mean()), exact, se)
