"""The constants of the likelihood, against hand-written formulas at fixed inputs.

- The instantaneous change of variables (Chen et al. 2018, thm. 1) on a linear ODE whose flow and
  divergence integral are known exactly: the exact divergence, the Hutchinson–Skilling estimate at the
  generator's probes (Hutchinson 1989), and the prior's Gaussian log-density with its ``2 pi``.
- The mixture's log-density, score and component probabilities written out by hand.
- Bits per dimension (Theis et al. 2016; Ho et al. 2020, sec. 4) and the dequantization offset.
- The terms of DDPM's variational bound (Ho et al. 2020, eqs. 5-7): ``L_T``, ``L_{t-1}``, the decoder.

Float64 throughout; tolerances are stated where they are not rounding (1e-12 relative).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from scoredyn.core.fields import Field
from scoredyn.core.processes import VP, DDPMSchedule
from scoredyn.core.targets import GaussianMixture
from scoredyn.likelihood import (
    bits_per_dim,
    dequantize,
    log_likelihood,
    vlb_kernel,
    vlb_prior_term,
    vlb_step_term,
    vlb_terms,
)

ROUND = dict(rtol=1e-12, atol=1e-12)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- the change of variables on a linear ODE ------------------------------------------------------------

M = np.array([[-0.7, 0.4, 0.1], [0.2, -0.3, -0.5], [0.0, 0.6, 0.25]])  # tr M = -0.75
T0, T1 = 0.2, 0.7
TAU = (T1 - T0) + 0.5 * (T1**2 - T0**2)  # int_{T0}^{T1} (1 + t) dt = 0.725


class LinearVelocity(Field):
    """``dx/dt = (1 + t) M x``: the flow is ``x(t1) = expm(M tau) x(t0)`` with ``tau = int (1 + t) dt``,
    and ``div v = (1 + t) tr M``, so ``int div v dt = tau tr M``."""

    def __init__(self) -> None:
        self.process = VP()  # only its time interval [0, 1] is used
        self.m = torch.as_tensor(M)

    def velocity(self, x, t):
        return (1.0 + torch.as_tensor(t, dtype=x.dtype)) * x @ self.m.T.to(x.dtype)


PRIOR = GaussianMixture(
    [0.3, 0.7],
    [[0.5, -1.0, 0.2], [-0.4, 0.3, 1.1]],
    [np.diag([1.5, 0.8, 2.0]).tolist(), [[1.0, 0.3, 0.0], [0.3, 0.9, 0.2], [0.0, 0.2, 0.6]]],
)
X = torch.tensor([[0.3, -1.2, 0.8], [1.5, 0.4, -0.6], [-0.9, 2.0, 0.1], [0.0, 0.0, 0.0]], dtype=torch.float64)


def gaussian_log_density(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``-1/2 (x - m)^T S^-1 (x - m) - 1/2 log det S - D/2 log(2 pi)``, row by row."""
    d = x - mean
    quad = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
    return -0.5 * quad - 0.5 * np.log(np.linalg.det(cov)) - 0.5 * x.shape[1] * np.log(2 * np.pi)


def mixture_log_density(mix: GaussianMixture, x: np.ndarray) -> np.ndarray:
    parts = [
        np.log(w) + gaussian_log_density(x, m, c)
        for w, m, c in zip(mix.weights.numpy(), mix.means.numpy(), mix.covs.numpy(), strict=True)
    ]
    return np.logaddexp.reduce(np.stack(parts, 1), axis=1)


def test_exact_divergence_on_a_linear_flow():
    """``log p(x) = log pi(expm(M tau) x) + tau tr M``; dopri5 at rtol = atol = 1e-10 on a smooth linear
    ODE over a unit interval is accurate to ~1e-9, so 1e-7 is asserted."""
    r = log_likelihood(LinearVelocity(), X, prior=PRIOR, t0=T0, t1=T1, rtol=1e-10, atol=1e-10)
    z = X.numpy() @ scipy.linalg.expm(M * TAU).T
    np.testing.assert_allclose(r.z.numpy(), z, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(r.delta_logp.numpy(), np.full(4, TAU * np.trace(M)), rtol=1e-7)
    np.testing.assert_allclose(r.prior_logp.numpy(), mixture_log_density(PRIOR, r.z.numpy()), **ROUND)
    np.testing.assert_allclose(r.logp.numpy(), mixture_log_density(PRIOR, z) + TAU * np.trace(M), rtol=1e-7)


@pytest.mark.parametrize("probe_dist", ["rademacher", "gaussian"])
def test_hutchinson_estimate_at_the_generators_probes(probe_dist):
    """Each probe ``e`` (fixed for the solve) gives ``e^T (int J dt) e = tau e^T M e``: Rademacher probes are
    ``2 b - 1`` for the generator's bits ``b``, Gaussian ones its normal draws, both ``(K, N, D)``."""
    k = 3
    r = log_likelihood(LinearVelocity(), X, prior=PRIOR, t0=T0, t1=T1, divergence="hutchinson", probes=k,
                       probe_dist=probe_dist, generator=gen(41), rtol=1e-10, atol=1e-10)  # fmt: skip
    if probe_dist == "rademacher":
        e = (2 * torch.randint(0, 2, (k, 4, 3), generator=gen(41)) - 1).to(torch.float64)
    else:
        e = torch.randn((k, 4, 3), generator=gen(41), dtype=torch.float64)
    quad = TAU * torch.einsum("kni,ij,knj->nk", e, torch.as_tensor(M), e)  # (N, K)
    z = X.numpy() @ scipy.linalg.expm(M * TAU).T
    per_probe = torch.as_tensor(mixture_log_density(PRIOR, z))[:, None] + quad
    torch.testing.assert_close(r.logp_per_probe, per_probe, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(r.logp, per_probe.mean(1), rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(r.delta_logp, quad.mean(1), rtol=1e-7, atol=1e-8)


# --- the mixture: log-density, score, component probabilities ---------------------------------------------


def test_mixture_density_score_and_responsibilities_by_hand():
    """``log p = logsumexp_k [log pi_k + log N(x; mu_k, S_k)]``, ``w_k = pi_k N_k / p``,
    ``grad log p = -sum_k w_k S_k^-1 (x - mu_k)`` (Bishop 2006, eqs. 9.7, 9.13)."""
    x = X.numpy()
    parts = np.stack(
        [np.log(w) + gaussian_log_density(x, m, c)
         for w, m, c in zip(PRIOR.weights.numpy(), PRIOR.means.numpy(), PRIOR.covs.numpy(), strict=True)], 1
    )  # fmt: skip
    log_p = np.logaddexp.reduce(parts, axis=1)
    resp = np.exp(parts - log_p[:, None])
    score = -sum(
        resp[:, k : k + 1] * (x - PRIOR.means.numpy()[k]) @ np.linalg.inv(PRIOR.covs.numpy()[k]).T for k in range(2)
    )
    np.testing.assert_allclose(PRIOR.log_prob(X).numpy(), log_p, **ROUND)
    np.testing.assert_allclose(PRIOR.component_log_prob(X).numpy(), parts, **ROUND)
    np.testing.assert_allclose(PRIOR.responsibilities(X).numpy(), resp, **ROUND)
    np.testing.assert_allclose(PRIOR.score(X).numpy(), score, **ROUND)
    # one standard normal, by hand: log N(0; 0, I_3) = -3/2 log(2 pi)
    std = GaussianMixture([1.0], [[0.0, 0.0, 0.0]], [np.eye(3).tolist()])
    assert float(std.log_prob(torch.zeros(1, 3, dtype=torch.float64))) == pytest.approx(-1.5 * math.log(2 * math.pi))


def test_noised_mixture_is_alpha_mu_and_alpha2_sigma_plus_sigma2():
    """``p_t = sum_k pi_k N(alpha mu_k, alpha^2 Sigma_k + sigma^2 I)`` (Bishop 2006, eq. 2.115), VP at t = 0.37."""
    t = 0.37
    integral = 0.1 * t + 0.5 * 19.9 * t**2
    a2, s2 = math.exp(-integral), -math.expm1(-integral)
    noised = PRIOR.noised(VP(), t)
    np.testing.assert_allclose(noised.means.numpy(), math.sqrt(a2) * PRIOR.means.numpy(), **ROUND)
    np.testing.assert_allclose(noised.covs.numpy(), a2 * PRIOR.covs.numpy() + s2 * np.eye(3), **ROUND)
    np.testing.assert_allclose(noised.weights.numpy(), PRIOR.weights.numpy(), rtol=0, atol=0)


# --- bits per dimension and dequantization --------------------------------------------------------------


def test_bits_per_dim_constants():
    """``bpd = -log p(u) / (D ln 2) - log2 Delta`` with ``Delta = r / (levels - 1)``: for 8-bit data on
    [-1, 1] (Ho et al. 2020) ``-log2(2/255) = log2(127.5) = 6.99435``; on [0, 1] ``log2(255) = 7.99435``
    (Song et al. 2021's ``+ 8`` with 256 bins of width 1/256 differs by ``log2(256/255)``)."""
    logp = torch.tensor([-5000.0, -12345.6, 250.0], dtype=torch.float64)
    d = 3072
    want = -logp.numpy() / (d * math.log(2)) + math.log2(127.5)
    np.testing.assert_allclose(bits_per_dim(logp, d).numpy(), want, **ROUND)
    want01 = -logp.numpy() / (d * math.log(2)) + math.log2(255.0)
    np.testing.assert_allclose(bits_per_dim(logp, d, data_range=1.0).numpy(), want01, **ROUND)
    # 17 levels on [-1, 1]: Delta = 1/8, so -log2 Delta = 3 exactly
    np.testing.assert_allclose(bits_per_dim(logp, 5, levels=17).numpy(), -logp.numpy() / (5 * math.log(2)) + 3.0,
                               **ROUND)  # fmt: skip
    assert math.log2(127.5) == pytest.approx(6.994353436858858, rel=1e-15)


def test_dequantize_adds_delta_times_centred_uniform():
    """``u = x + Delta (U - 1/2)``: ``U`` the generator's uniform stream in ``x``'s dtype,
    ``Delta = r / (levels - 1)``."""
    k = torch.tensor([[0, 255, 128], [17, 3, 200]])
    x = (k / 127.5 - 1.0).to(torch.float64)
    u = dequantize(x, 256, gen(42))
    noise = torch.rand(x.shape, generator=gen(42), dtype=torch.float64)
    torch.testing.assert_close(u, x + (2.0 / 255.0) * (noise - 0.5), rtol=0, atol=1e-15)
    x01 = (k / 255.0).to(torch.float64) - 0.5  # data range 1, centred: the lattice -1/2 + k / 255
    u01 = dequantize(x01, 256, gen(42), data_range=1.0)
    torch.testing.assert_close(u01, x01 + (1.0 / 255.0) * (noise - 0.5), rtol=0, atol=1e-15)


# --- DDPM's variational bound, term by term ---------------------------------------------------------------

STEPS, BETA_END = 15, 0.25


def betas_and_abar() -> tuple[np.ndarray, np.ndarray]:
    betas = np.linspace(1e-4, BETA_END, STEPS)
    return betas, np.concatenate([[1.0], np.cumprod(1 - betas)])  # abar_0 = 1 .. abar_T


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_vlb_kernel_by_hand(variance):
    """``factor_t = c_t^2 / (2 varsigma_t^2)`` with ``c_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t)`` (eq. 7),
    ``rest_t = 1/2 (r - 1 - log r)``, ``r = beta_tilde_t / varsigma_t^2`` (the KL's variance part);
    ``t = 1`` is the decoder ``N(x0; x0hat, beta_1 I)``: ``factor_1 = 1 / (2 beta_1)``,
    ``rest_1 = 1/2 log(2 pi beta_1)``."""
    betas, abar = betas_and_abar()
    factor, rest = vlb_kernel(DDPMSchedule(num_steps=STEPS, beta_end=BETA_END), variance)
    assert factor.shape == rest.shape == (STEPS + 1,)
    t = np.arange(2, STEPS + 1)
    beta = betas[t - 1]
    beta_tilde = (1 - abar[t - 1]) / (1 - abar[t]) * beta
    var = beta if variance == "beta" else beta_tilde
    c = np.sqrt(abar[t - 1]) * beta / (1 - abar[t])
    r = beta_tilde / var
    np.testing.assert_allclose(factor[2:].numpy(), c**2 / (2 * var), rtol=1e-10)
    np.testing.assert_allclose(rest[2:].numpy(), 0.5 * (r - 1 - np.log(r)), rtol=1e-9, atol=1e-14)
    assert float(factor[1]) == pytest.approx(1 / (2 * 1e-4), rel=1e-10)
    assert float(rest[1]) == pytest.approx(0.5 * math.log(2 * math.pi * 1e-4), rel=1e-12)


def test_vlb_step_and_prior_terms_by_hand():
    """``L_{t-1} = factor_t ||x0 - x0hat||^2 + D rest_t`` and ``L_T = 1/2 (abar_T ||x0||^2 - D abar_T -
    D log(1 - abar_T))``, the KL of ``N(sqrt(abar_T) x0, (1 - abar_T) I)`` to ``N(0, I)``."""
    process = DDPMSchedule(num_steps=STEPS, beta_end=BETA_END)
    betas, abar = betas_and_abar()
    x0 = torch.tensor([[0.4, -1.1, 2.0], [0.0, 0.3, -0.7]], dtype=torch.float64)
    x0hat = torch.tensor([[0.5, -0.9, 1.7], [0.1, 0.25, -0.7]], dtype=torch.float64)
    err = ((x0 - x0hat) ** 2).sum(1).numpy()
    d = 3
    t = torch.tensor([1, 9])
    got = vlb_step_term(vlb_kernel(process), t, x0, x0hat).numpy()
    decoder = err[0] / (2 * betas[0]) + d / 2 * math.log(2 * math.pi * betas[0])
    beta9, c9 = betas[8], math.sqrt(abar[8]) * betas[8] / (1 - abar[9])
    r9 = (1 - abar[8]) / (1 - abar[9])
    step9 = c9**2 / (2 * beta9) * err[1] + d / 2 * (r9 - 1 - math.log(r9))
    np.testing.assert_allclose(got, [decoder, step9], rtol=1e-10)
    # the decoder is the Gaussian density of x0: the same as -log N(x0; x0hat, beta_1 I) written out
    gauss = -gaussian_log_density(x0[:1].numpy(), x0hat[0].numpy(), betas[0] * np.eye(3))
    np.testing.assert_allclose(got[0], gauss[0], rtol=1e-10)
    ab = abar[-1]
    prior = 0.5 * (ab * (x0.numpy() ** 2).sum(1) - d * ab - d * np.log1p(-ab))
    np.testing.assert_allclose(vlb_prior_term(process, x0).numpy(), prior, rtol=1e-10, atol=1e-14)


def test_vlb_terms_columns_are_the_terms_at_the_generators_noise():
    """``vlb_terms``' column ``t - 1`` is ``L_{t-1}`` at ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps_t``,
    one normal draw per step in order ``t = 1..T``, and its last column ``L_T``."""
    process = DDPMSchedule(num_steps=STEPS, beta_end=BETA_END)
    betas, abar = betas_and_abar()

    class Affine(Field):
        def __init__(self) -> None:
            self.process = process

        def score(self, x, t):
            return -0.8 * x + 0.1

    x0 = torch.tensor([[0.4, -1.1], [0.9, 0.3]], dtype=torch.float64)
    cols = vlb_terms(Affine(), x0, process, gen(43)).numpy()
    g = gen(43)
    for t in range(1, STEPS + 1):
        eps = torch.randn(x0.shape, generator=g, dtype=torch.float64).numpy()
        x_t = math.sqrt(abar[t]) * x0.numpy() + math.sqrt(1 - abar[t]) * eps
        x0hat = (x_t + (1 - abar[t]) * (-0.8 * x_t + 0.1)) / math.sqrt(abar[t])
        err = ((x0.numpy() - x0hat) ** 2).sum(1)
        beta = betas[t - 1]
        if t == 1:
            want = err / (2 * beta) + math.log(2 * math.pi * beta)  # D/2 = 1
        else:
            c = math.sqrt(abar[t - 1]) * beta / (1 - abar[t])
            r = (1 - abar[t - 1]) / (1 - abar[t])
            want = c**2 / (2 * beta) * err + (r - 1 - math.log(r))
        np.testing.assert_allclose(cols[:, t - 1], want, rtol=1e-10, err_msg=f"t = {t}")
    ab = abar[-1]
    prior = 0.5 * (ab * (x0.numpy() ** 2).sum(1) - 2 * ab - 2 * math.log1p(-ab))
    np.testing.assert_allclose(cols[:, -1], prior, rtol=1e-10)
