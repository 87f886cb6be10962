"""The kernel Stein discrepancy against exact answers: the Stein kernel by autodiff, closed forms for
Gaussians, and exact mixture samples against their floor.

Statistical checks average R independent replicates and allow 4 standard errors estimated from
those replicates (a false alarm has probability ~1e-4 per check under normality)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from scipy import integrate

from scoredyn.core.targets import mog6
from scoredyn.metrics import kernel_stein_discrepancy, mc_floor

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mean_se(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v)))


@pytest.fixture
def small_blocks(monkeypatch):
    """Force many tiny pairwise blocks (and the symmetric split) so chunking is exercised."""
    monkeypatch.setattr("scoredyn.metrics._blocks.BLOCK", 37)


def _stein_kernel_autograd(a, b, sa, sb, k):
    """k_0(a, b) = s_a.s_b k + s_a.grad_b k + s_b.grad_a k + tr grad_a grad_b k, by autodiff."""
    gx = torch.func.grad(k, argnums=0)(a, b)
    gy = torch.func.grad(k, argnums=1)(a, b)
    mixed = torch.func.jacrev(torch.func.grad(k, argnums=1), argnums=0)(a, b)
    return sa @ sb * k(a, b) + sa @ gy + sb @ gx + torch.diagonal(mixed).sum()


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_ksd_matches_autograd_stein_kernel(kernel, small_blocks):
    g = _gen(1)
    x = torch.randn(9, 3, generator=g, dtype=F64)
    s = torch.randn(9, 3, generator=g, dtype=F64)  # any vector field: the identity is algebraic
    c, beta, h = 1.5, -0.3, 0.8
    if kernel == "imq":
        k = lambda a, b: (c**2 + ((a - b) ** 2).sum()) ** beta  # noqa: E731
        got = kernel_stein_discrepancy(x, s, kernel="imq", c=c, beta=beta)
    else:
        k = lambda a, b: torch.exp(-((a - b) ** 2).sum() / (2 * h**2))  # noqa: E731
        got = kernel_stein_discrepancy(x, s, kernel="rbf", bandwidth=h)
    k0 = [_stein_kernel_autograd(x[i], x[j], s[i], s[j], k) for i in range(9) for j in range(9)]
    assert got == pytest.approx(float(torch.stack(k0).mean()), rel=1e-10)


def test_ksd_standard_normal_exact_mean():
    # exact samples: off-diagonal k_0 terms have mean 0; the diagonal with IMQ (c = 1, beta = -1/2)
    # is |s(x)|^2 + D, so E KSD_V^2 = (E|x|^2 + D) / N = 2D / N.
    n, dim, reps = 800, 3, 12
    g = _gen(10)
    vals = []
    for _ in range(reps):
        x = torch.randn(n, dim, generator=g, dtype=F64)
        vals.append(kernel_stein_discrepancy(x, lambda z: -z))
    mean, se = _mean_se(vals)
    assert abs(mean - 2 * dim / n) < 4 * se


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_ksd_shifted_gaussian_closed_form(kernel):
    # samples q = N(mu, 1) judged against p = N(0, 1): s_p - s_q = -mu is constant, so the
    # population KSD^2 = mu^2 E_{q x q} k(x, x') with x - x' ~ N(0, 2) (Liu, Lee & Jordan 2016).
    # V-statistic mean: (1 - 1/N) KSD^2 + E k_0(x, x) / N with E k_0(x, x) = E x^2 k(0) - tr term.
    mu, n, reps, h = 1.0, 1000, 8, 1.0
    if kernel == "imq":
        e_k = integrate.quad(
            lambda r: (1 + r**2) ** -0.5 * scipy.stats.norm.pdf(r, scale=math.sqrt(2)), -40, 40
        )[0]
        diag = (1 + mu**2) + 1  # c = 1, beta = -1/2: |s|^2 + D
    else:
        e_k = math.sqrt(h**2 / (h**2 + 2))
        diag = (1 + mu**2) + 1 / h**2
    expected = (1 - 1 / n) * mu**2 * e_k + diag / n
    g = _gen(11)
    vals = []
    for _ in range(reps):
        x = torch.randn(n, 1, generator=g, dtype=F64) + mu
        vals.append(kernel_stein_discrepancy(x, -x, kernel=kernel, bandwidth=h))
    mean, se = _mean_se(vals)
    assert abs(mean - expected) < 4 * se


def test_ksd_mixture_exact_near_floor_and_shift_far_above():
    target = mog6()
    n = 1000
    floor = mc_floor(
        lambda x: kernel_stein_discrepancy(x, target.score),
        target.sample,
        n,
        repeats=6,
        generator=_gen(12),
        two_sample=False,
    )
    exact = target.sample(n, _gen(13))
    value = kernel_stein_discrepancy(exact, target.score)
    assert abs(value - floor.mean) < 4 * floor.std * math.sqrt(1 + 1 / 6)
    shifted = exact + torch.tensor([0.5, 0.0], dtype=F64)
    assert kernel_stein_discrepancy(shifted, target.score) > 20 * floor.mean
