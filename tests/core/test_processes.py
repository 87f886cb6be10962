"""Processes: f and g^2 against numerical derivatives, inverses, forward marginals."""

import math

import pytest
import torch

from scoredyn.core.processes import EDM, OU, VE, VP, DDPMSchedule, Linear, SubVP
from scoredyn.core.targets import mog6

PROCESSES = [VP(), VP("cosine"), SubVP(), VE(), EDM(), OU(), Linear(), DDPMSchedule(), DDPMSchedule(schedule="cosine")]
IDS = [p.name for p in PROCESSES]


def interior_times(p, n=9):
    # for the discrete schedule stay off the integer kinks of the piecewise-linear log abar
    lo, hi = p.t_min + 0.02 * (p.t_max - p.t_min), p.t_min + 0.97 * (p.t_max - p.t_min)
    t = torch.linspace(lo, hi, n, dtype=torch.float64)
    return torch.floor(t) + 0.5 if isinstance(p, DDPMSchedule) else t


@pytest.mark.parametrize("p", PROCESSES, ids=IDS)
def test_f_and_g2_match_numerical_derivatives(p):
    t = interior_times(p)
    h = 1e-5 * (p.t_max - p.t_min) if not isinstance(p, DDPMSchedule) else 1e-3
    dlog_alpha = (torch.log(p.alpha(t + h)) - torch.log(p.alpha(t - h))) / (2 * h)
    dsigma2 = (p.sigma(t + h) ** 2 - p.sigma(t - h) ** 2) / (2 * h)
    # central differences: error O(h^2 f''') ~ 1e-9 relative here; 1e-6 leaves room for rounding
    torch.testing.assert_close(p.f(t), dlog_alpha, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(p.g2(t), dsigma2 - 2 * p.f(t) * p.sigma(t) ** 2, rtol=1e-6, atol=1e-8)
    assert (p.g2(t) > 0).all()


@pytest.mark.parametrize("p", PROCESSES, ids=IDS)
def test_sigma_and_log_snr_invert(p):
    t = interior_times(p)
    torch.testing.assert_close(p.sigma_to_t(p.sigma(t)), t, rtol=1e-9, atol=1e-9 * p.t_max)
    torch.testing.assert_close(p.log_snr_to_t(p.log_snr(t)), t, rtol=1e-9, atol=1e-9 * p.t_max)
    assert (p.log_snr(t)[1:] < p.log_snr(t)[:-1]).all()  # lambda strictly decreasing
    # sigma_hat = sigma / alpha = exp(-lambda): its inverse lands on the same times
    torch.testing.assert_close(p.sigma_hat_to_t(p.sigma(t) / p.alpha(t)), t, rtol=1e-9, atol=1e-9 * p.t_max)


@pytest.mark.parametrize("p", [q for q in PROCESSES if q.name != "ve"], ids=[i for i in IDS if i != "ve"])
def test_clean_end(p):
    assert float(p.sigma(p.t_min)) == 0.0 and float(p.alpha(p.t_min)) == 1.0


def test_known_values():
    vp = VP()
    # int_0^1 beta = 0.1 + 19.9 / 2 = 10.05
    assert math.isclose(float(vp.alpha(1.0)), math.exp(-0.5 * 10.05), rel_tol=1e-12)
    ddpm = DDPMSchedule()
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    torch.testing.assert_close(ddpm.alpha(torch.arange(1, 1001, dtype=torch.float64)) ** 2, abar, rtol=1e-12, atol=0)
    assert math.isclose(float(VE(0.01, 50).sigma(1.0)), 50.0, rel_tol=1e-12)
    assert math.isclose(float(OU().g2(3.0)), 1.0) and math.isclose(float(Linear().alpha(0.25)), 0.75)


@pytest.mark.parametrize("p", [VP(), VE(), Linear(), DDPMSchedule()], ids=["vp", "ve", "linear", "ddpm"])
def test_forward_samples_match_exact_marginal(p):
    """x_t = alpha x0 + sigma eps from exact x0 has the mean and covariance of target.noised."""
    target = mog6()
    g = torch.Generator().manual_seed(0)
    t = torch.tensor(0.3 * p.t_max, dtype=torch.float64)
    n = 200_000
    xt = p.marginal_sample(target.sample(n, g), t, torch.randn(n, 2, generator=g, dtype=torch.float64))
    exact = target.noised(p, t)
    cov = exact.covariance()
    # standard error of a mean is sqrt(var / n); 5 standard errors
    se = torch.sqrt(torch.diagonal(cov) / n)
    assert ((xt.mean(0) - exact.mean()).abs() < 5 * se).all()
    torch.testing.assert_close(torch.cov(xt.T), cov, rtol=0.02, atol=0.02 * float(cov.abs().max()))
    # and the exact log density scores them better than a shifted copy
    assert exact.log_prob(xt[:2000]).mean() > exact.log_prob(xt[:2000] + 1.0).mean()


def test_closed_form_log_snr_inverses_match_bisection():
    """EDM and Linear invert lambda in closed form; they must agree with the base class's bisection
    (200 halvings: exact to float64) everywhere, including beyond the ends (clamped)."""
    import torch

    from scoredyn.core.processes import EDM, Linear, Process

    lam = torch.linspace(-15.0, 15.0, 301, dtype=torch.float64)
    for process in (EDM(), Linear()):
        closed, bisected = process.log_snr_to_t(lam), Process.log_snr_to_t(process, lam)
        assert torch.allclose(closed, bisected, rtol=1e-12, atol=1e-12 * process.t_max)


@pytest.mark.parametrize("p", PROCESSES, ids=IDS)
def test_transition_composes_with_the_marginal(p):
    # x_t = alpha_{t|s} x_s + sigma_{t|s} eps applied to x_s = alpha_s x0 + sigma_s eps' must give the
    # marginal at t (Kingma et al. 2021, eq. 2): alpha_t = alpha_{t|s} alpha_s and
    # sigma_t^2 = alpha_{t|s}^2 sigma_s^2 + sigma_{t|s}^2, for s < t, elementwise over a grid
    t = interior_times(p)
    s, t = t[:-1], t[1:]
    q = p.transition(t, s)
    torch.testing.assert_close(q.alpha_ts * p.alpha(s), p.alpha(t), rtol=1e-12, atol=0.0)
    torch.testing.assert_close(q.alpha_ts**2 * p.sigma(s) ** 2 + q.var_ts, p.sigma(t) ** 2, rtol=1e-12, atol=1e-15)
    assert (q.var_ts > 0).all()
    # the same pair one at a time gives the same numbers
    one = p.transition(float(t[2]), float(s[2]))
    assert float(one.var_ts) == pytest.approx(float(q.var_ts[2]), rel=1e-14)


def test_posterior_coefficients_are_ddpm_betas():
    # On consecutive integer times sigma_{t|s}^2 is beta_t, the posterior variance beta-tilde_t, and the
    # posterior mean's coefficients those of Ho et al. 2020, eq. 7: sqrt(abar_{t-1}) beta_t / (1 - abar_t)
    # on x_0 and sqrt(1 - beta_t) (1 - abar_{t-1}) / (1 - abar_t) on x_t; written here from the betas
    process = DDPMSchedule()
    betas = process.betas
    abar = torch.cumprod(1 - betas, 0)
    tilde = process.betas_tilde()
    for t in (2, 10, 500, 1000):
        q = process.transition(float(t), float(t - 1))
        beta, abar_t, abar_s = float(betas[t - 1]), float(abar[t - 1]), float(abar[t - 2])
        assert float(q.var_ts) == pytest.approx(beta, rel=1e-9)
        assert float(q.posterior_var) == pytest.approx(float(tilde[t - 1]), rel=1e-9, abs=1e-300)
        assert float(q.posterior_var) == pytest.approx((1 - abar_s) / (1 - abar_t) * beta, rel=1e-9)
        assert float(q.posterior_x0) == pytest.approx(math.sqrt(abar_s) * beta / (1 - abar_t), rel=1e-9)
        assert float(q.posterior_x) == pytest.approx(math.sqrt(1 - beta) * (1 - abar_s) / (1 - abar_t), rel=1e-9)
    # t = 1 into x_0: the posterior is the point x_0 (variance 0) with weight 1 on x_0
    q = process.transition(1.0, 0.0)
    assert float(q.posterior_var) == 0.0 and float(q.posterior_x0) == pytest.approx(1.0, rel=1e-12)


def test_transition_forward_draws_the_two_time_kernel():
    # x_t | x_s ~ N(alpha_{t|s} x_s, sigma_{t|s}^2 I): mean and variance of many draws from one x_s
    # (N = 200,000: the mean's standard error is 2e-3 sigma_{t|s}, the variance's 3e-3 relative;
    # bounds of 6 standard errors fail with probability below 1e-8)
    p = VP()
    q = p.transition(0.3, 0.1)  # sigma_{t|s}^2 = 0.56: far from 1, so the standard deviation is not the variance
    x_s = torch.full((200_000, 1), 1.5, dtype=torch.float64)
    x_t = q.forward(x_s, torch.randn(x_s.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    sd = math.sqrt(float(q.var_ts))
    assert abs(float(x_t.mean()) - 1.5 * float(q.alpha_ts)) < 6 * sd / math.sqrt(2e5)
    assert abs(float(x_t.var()) / sd**2 - 1) < 6 * math.sqrt(2 / 2e5)
