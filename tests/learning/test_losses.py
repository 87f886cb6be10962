"""Training objectives checked against exact answers from the analytic mixture.

Monte-Carlo comparisons are paired where possible (the loss and its exact value at the same x_t), and
pass within 4 standard errors: a correct estimator fails such a check with probability ~6e-5, and the
seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch
from torch import nn

from scoredyn.core.fields import AnalyticField, Field, NetworkField, Prediction
from scoredyn.core.processes import EDM, VP, DDPMSchedule, Linear
from scoredyn.core.targets import mog6
from scoredyn.learning.losses import (
    OBJECTIVE_NAMES,
    OBJECTIVES,
    DiscreteTime,
    ImportanceTime,
    LogNormalTime,
    UniformTime,
    check,
    make_objective,
)
from scoredyn.likelihood import vlb_terms

Z = 4.0  # standard errors allowed in a Monte-Carlo comparison


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mean_se(x: torch.Tensor) -> tuple[float, float]:
    return float(x.mean()), float(x.std() / math.sqrt(x.numel()))


# --- the mixture's posterior, written out independently of fields.py ------------------------------------


def posterior(target, alpha: torch.Tensor, sigma: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``tr Cov[x0 | x_t = x]`` (N,) and the score ``grad log p_t(x)`` (N, D) at per-sample ``alpha, sigma``.

    With ``S_k = alpha^2 Sigma_k + sigma^2 I``: ``C_k = Sigma_k - alpha^2 Sigma_k S_k^-1 Sigma_k``,
    ``m_k = mu_k + alpha Sigma_k S_k^-1 (x - alpha mu_k)``,
    ``Cov = sum_k w_k (C_k + m_k m_k^T) - m m^T``, ``score = -sum_k w_k S_k^-1 (x - alpha mu_k)``.
    """
    a, s = alpha[:, None, None, None], sigma[:, None, None, None]
    sig, mu = target.covs[None], target.means[None]  # (1, K, D, D), (1, K, D)
    S = a**2 * sig + s**2 * torch.eye(target.dim, dtype=torch.float64)
    S_inv = torch.linalg.inv(S)
    dist = torch.distributions.MultivariateNormal(a[..., 0] * mu, covariance_matrix=S)
    w = torch.softmax(torch.log(target.weights) + dist.log_prob(x[:, None, :]), dim=1)  # (N, K)
    r = x[:, None, :, None] - a * mu[..., None]  # (N, K, D, 1)
    gain = sig @ S_inv
    C = sig - a**2 * gain @ sig
    m = (mu[..., None] + a * gain @ r)[..., 0]  # (N, K, D)
    second = torch.einsum("nk,nkij->nij", w, C + m[..., :, None] * m[..., None, :])
    mean = torch.einsum("nk,nki->ni", w, m)
    tr_cov = torch.diagonal(second, dim1=-2, dim2=-1).sum(-1) - (mean**2).sum(-1)
    score = -torch.einsum("nk,nki->ni", w, (S_inv @ r)[..., 0])
    return tr_cov, score


class Shifted(Field):
    """The exact field with the objective's own target moved by a fixed smooth vector field ``delta(x)``:
    ``x0hat`` moves by ``delta / sqrt(factor)`` (``eps_hat`` to match), so the error rises by ``||delta||^2``
    plus a cross term of mean 0."""

    def __init__(self, inner: Field, factor) -> None:
        self.inner, self.process, self.factor = inner, inner.process, factor

    @staticmethod
    def delta(x: torch.Tensor) -> torch.Tensor:
        return 0.3 * torch.stack([torch.sin(0.5 * x[:, 1]), torch.cos(0.5 * x[:, 0])], 1)

    def predict(self, x, t, y=None):
        p = self.inner.predict(x, t, y)
        d = self.delta(x) / self.factor(p.alpha, p.sigma, p.d_alpha, p.d_sigma).sqrt()
        return Prediction(x, p.alpha, p.sigma, p.d_alpha, p.d_sigma, p.x0 + d, p.eps - p.alpha * d / p.sigma)


# (objective, process, options, the factor turning E||x0hat - x0||^2 into the objective's error)
SD = 5.0  # sigma_data of mog6 (its overall std is about 5)
REGRESSIONS = {
    "eps": (VP(), {}, lambda a, s, da, ds: a**2 / s**2),
    "dsm": (VP(), {}, lambda a, s, da, ds: a**2 / s**2),
    "x0": (VP(), {}, lambda a, s, da, ds: torch.ones_like(a)),
    "v": (VP(), {}, lambda a, s, da, ds: ((a**2 + s**2) / s) ** 2),
    "edm": (VP(), {"sigma_data": SD}, lambda a, s, da, ds: ((s / a) ** 2 + SD**2) / ((s / a) * SD) ** 2),
    "cfm": (Linear(), {"t_min": 0.0}, lambda a, s, da, ds: (da - ds * a / s) ** 2),
}


@pytest.mark.parametrize("name", list(REGRESSIONS))
def test_exact_field_reaches_the_irreducible_minimum(name):
    process, options, factor = REGRESSIONS[name]
    target = mog6()
    obj = make_objective(name, process, **options)
    x0 = target.sample(20000, gen(1))
    draws = obj.draw(x0, gen(2))
    t, eps = draws["t"], draws["eps"]
    a, s, da, ds = process.alpha(t), process.sigma(t), process.d_alpha(t), process.d_sigma(t)
    x_t = a[:, None] * x0 + s[:, None] * eps
    tr_cov, _ = posterior(target, a, s, x_t)
    minimum = factor(a, s, da, ds) * tr_cov  # E[error | x_t] of the exact field, per sample

    exact = AnalyticField(target, process)
    loss = obj.loss(exact, x0, None, draws)
    gap, se = mean_se(loss - minimum)  # paired: E[loss - minimum] = 0 exactly
    assert abs(gap) < Z * se, (name, float(loss.mean()), float(minimum.mean()), gap, se)

    # the target moved by delta(x): the loss rises by E||delta||^2 (the cross term has mean 0)
    worse = obj.loss(Shifted(exact, factor), x0, None, draws)
    rise, se_rise = mean_se(worse - loss)
    expected = float((Shifted.delta(x_t) ** 2).sum(1).mean())
    assert rise > Z * se_rise
    assert abs(rise - expected) < Z * se_rise, (name, rise, expected, se_rise)


def test_implicit_score_matching_constant_and_unbiased_estimators():
    """Hyvarinen 2005: E[1/2 ||s||^2 + div s] = 1/2 E||s - s*||^2 - 1/2 E||s*||^2; with s = s* the value is
    -1/2 sigma^2 E||s*||^2. Sliced and Hutchinson estimates are unbiased for the exact divergence."""
    target, process = mog6(), VP()
    exact = AnalyticField(target, process)
    x0 = target.sample(8000, gen(3))
    ism = make_objective("ism", process)
    draws = make_objective("ssm", process, probes=2).draw(x0, gen(4))
    t, eps = draws["t"], draws["eps"]
    a, s = process.alpha(t), process.sigma(t)
    _, score = posterior(target, a, s, a[:, None] * x0 + s[:, None] * eps)
    constant = -0.5 * s**2 * (score**2).sum(1)

    value = ism.loss(exact, x0, None, draws).detach()
    gap, se = mean_se(value - constant)
    assert abs(gap) < Z * se, (float(value.mean()), float(constant.mean()), se)

    for name in ("ssm", "ism-hutchinson"):
        obj = make_objective(name, process, probes=2)
        d = dict(draws, v=obj.draw(x0, gen(5))["v"])  # same t, eps; the objective's own probes
        est = obj.loss(exact, x0, None, d).detach()
        gap, se = mean_se(est - value)
        assert abs(gap) < Z * se, (name, float(est.mean()), float(value.mean()), se)


def test_importance_time_is_unbiased_for_the_uniform_objective():
    """x0-prediction with q(t) ∝ lambda / sigma^2 = sigma_hat^2 estimates the same number as uniform t."""
    target, process = mog6(), VP()
    exact = AnalyticField(target, process)
    x0 = target.sample(20000, gen(6))
    means = {}
    for time in ("uniform", "importance"):
        obj = make_objective("x0", process, time=time)
        draws = obj.draw(x0, gen(7))
        means[time] = mean_se(obj.loss(exact, x0, None, draws))
    (mu_u, se_u), (mu_i, se_i) = means["uniform"], means["importance"]
    assert abs(mu_u - mu_i) < Z * math.hypot(se_u, se_i), means


# --- the variational bound ---------------------------------------------------------------------------------


def ho_term(process, field, t: int, x0, eps, variance: str):
    """``L_{t-1}`` (Ho et al. 2020, eqs. 5-7 and 11) with torch.distributions, for integer t: KL of the
    posterior q(x_{t-1} | x_t, x0) to N(mu_theta, varsigma^2 I), or the decoder's -log N(x0; mu_theta, beta_1 I)."""
    normal, kl = torch.distributions.Normal, torch.distributions.kl_divergence
    i = t - 1
    beta, abar = process.betas[i], process.alphas_cumprod[i]
    abar_prev = process.alphas_cumprod[i - 1] if t > 1 else torch.tensor(1.0, dtype=torch.float64)
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    eps_hat = field.eps(x_t, float(t))
    mu_theta = (x_t - beta / (1 - abar).sqrt() * eps_hat) / (1 - beta).sqrt()  # eq. 11
    if t == 1:
        return -normal(mu_theta, beta.sqrt()).log_prob(x0).sum(1)
    beta_tilde = (1 - abar_prev) / (1 - abar) * beta  # eq. 7
    mu_q = (abar_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - abar_prev) * x_t) / (1 - abar)  # eq. 7
    var = beta if variance == "beta" else beta_tilde
    return kl(normal(mu_q, beta_tilde.sqrt()), normal(mu_theta, var.sqrt())).sum(1)


def test_vlb_terms_match_gaussian_kl_divergences():
    """Every column of vlb_terms, and the objective's one-t estimate L_T + T L_{t-1}, against ho_term
    (exact formulas; float64, so to 1e-9)."""
    target, steps = mog6(), 20
    process = DDPMSchedule(num_steps=steps, beta_end=0.2)
    exact = AnalyticField(target, process)
    x0 = target.sample(50, gen(8))
    abar_T = process.alphas_cumprod[-1]
    normal, kl = torch.distributions.Normal, torch.distributions.kl_divergence
    prior = kl(normal(abar_T.sqrt() * x0, (1 - abar_T).sqrt()), normal(0.0, 1.0)).sum(1)  # L_T
    for variance in ("beta", "beta_tilde"):
        terms = vlb_terms(exact, x0, process, gen(9), variance=variance)
        assert terms.shape == (50, steps + 1)
        g = gen(9)  # the same noise, one draw per term
        for t in range(1, steps + 1):
            eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
            want = ho_term(process, exact, t, x0, eps, variance)
            torch.testing.assert_close(terms[:, t - 1], want, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(terms[:, -1], prior, rtol=1e-9, atol=1e-12)

    obj = make_objective("vlb", process)
    draws = obj.draw(x0, gen(10))
    loss = obj.loss(exact, x0, None, draws)
    t = draws["t"].long()
    assert int(t.min()) >= 1 and int(t.max()) <= steps
    for j in range(0, 50, 7):
        want = prior[j] + steps * ho_term(process, exact, int(t[j]), x0[j : j + 1], draws["eps"][j : j + 1], "beta")
        torch.testing.assert_close(loss[j : j + 1], want, rtol=1e-9, atol=1e-9)


def test_vlb_bounds_the_true_nll_with_a_small_gap():
    """DDPM's bound with the exact field on T = 1000 (linear betas): >= E[-log p_0(x0)] and close to it.

    Measured (N = 3000): gap 0.03 +- 0.03 nats with varsigma^2 = beta_t; 0.95 +- 0.03 with beta_tilde_t
    (the first steps' reverse variance is too small). The one-t Monte-Carlo estimator of ``loss`` agrees
    with the summed terms within its standard error."""
    target, process = mog6(), DDPMSchedule()
    exact = AnalyticField(target, process)
    x0 = target.sample(3000, gen(12))
    nll = -target.log_prob(x0)
    gaps = {}
    for variance in ("beta", "beta_tilde"):
        bound = vlb_terms(exact, x0, process, gen(13), variance=variance).sum(1)
        gaps[variance] = mean_se(bound - nll)  # paired with the same x0
        if variance == "beta":
            summed = mean_se(bound)
    (gap_b, se_b), (gap_bt, se_bt) = gaps["beta"], gaps["beta_tilde"]
    assert -Z * se_b < gap_b < 0.15, gaps  # a bound, tight to 0.15 nats (measured 0.03)
    assert Z * se_bt < gap_bt < 1.2 and gap_bt > gap_b + 0.5, gaps

    obj = make_objective("vlb", process)
    x1 = target.sample(100000, gen(14))
    mc = mean_se(obj.loss(exact, x1, None, obj.draw(x1, gen(15))))
    assert abs(mc[0] - summed[0]) < Z * math.hypot(mc[1], summed[1]), (mc, summed)


# --- time samplers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("process", [VP(), EDM()], ids=["vp", "edm"])
def test_lognormal_time_gives_edm_sigma_distribution(process):
    n, p_mean, p_std = 20000, -1.2, 1.2
    t, w = LogNormalTime(process, p_mean, p_std).sample(n, gen(16))
    ln_sigma_hat = torch.log(process.sigma_hat(t))
    assert abs(float(ln_sigma_hat.mean()) - p_mean) < Z * p_std / math.sqrt(n)
    assert abs(float(ln_sigma_hat.std()) - p_std) < Z * p_std / math.sqrt(2 * n)  # se of a normal std
    assert (w == 1).all() and t.dtype == torch.float64


def test_importance_time_matches_its_density_and_is_unbiased():
    """Times drawn with pi(t) ∝ 1 / sigma^2 on VP, t in [1e-3, 1]."""
    process, t_min = VP(), 1e-3

    def q(t):
        return 1.0 / process.sigma(torch.as_tensor(t, dtype=torch.float64)) ** 2

    n = 20000
    t, w = ImportanceTime(process, q, t_min).sample(n, gen(17))
    # KS test against the CDF of q integrated independently (trapezoid on 2e5 geometric points; its error
    # is far below the KS resolution 1/sqrt(n)); p > 1e-3: a correct sampler fails on 0.1% of seeds
    grid = np.geomspace(t_min, 1.0, 200001)
    cdf = scipy.integrate.cumulative_trapezoid(q(grid).numpy(), grid, initial=0.0)
    cdf /= cdf[-1]
    assert scipy.stats.kstest(t.numpy(), lambda u: np.interp(u, grid, cdf)).pvalue > 1e-3

    # E_q[w fn(t)] equals the uniform average of a test function fn
    def fn(u):
        return 1.0 / process.sigma(u) ** 2 + 3.0 * torch.cos(3.0 * u)

    truth = scipy.integrate.quad(lambda u: float(fn(torch.tensor(u, dtype=torch.float64))), t_min, 1.0, limit=200)[0]
    truth /= 1.0 - t_min
    est, se = mean_se(w * fn(t))
    assert abs(est - truth) < Z * se, (est, truth, se)
    # and with far less variance than uniform times (the point of importance sampling)
    tu, _ = UniformTime(process, t_min).sample(n, gen(18))
    assert float((w * fn(t)).var()) < 0.01 * float(fn(tu).var())


def test_discrete_time_covers_the_steps_uniformly():
    T, n = 1000, 200000
    t, w = DiscreteTime(DDPMSchedule(num_steps=T)).sample(n, gen(19))
    assert (t == t.round()).all() and int(t.min()) == 1 and int(t.max()) == T and (w == 1).all()
    counts = torch.bincount(t.long(), minlength=T + 1)[1:]
    # chi-square goodness of fit to uniform: p-value above 1e-3 (a correct sampler fails 0.1% of seeds)
    assert scipy.stats.chisquare(counts.numpy()).pvalue > 1e-3


def test_uniform_time_range_and_moments():
    n = 20000
    t, w = UniformTime(VP(), 0.1).sample(n, gen(20))
    assert float(t.min()) >= 0.1 and float(t.max()) <= 1.0 and (w == 1).all()
    assert abs(float(t.mean()) - 0.55) < Z * 0.9 / math.sqrt(12 * n)


# --- networks: gradients flow, draws are deterministic -----------------------------------------------------


class TinyNet(nn.Module):
    """``net(x, c_noise, y)`` with a class embedding (index ``classes`` = null class)."""

    def __init__(self, dim: int = 2, hidden: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.classes = classes
        self.embed = nn.Embedding(classes + 1, hidden)
        self.inp = nn.Linear(dim + 1, hidden)
        self.out = nn.Linear(hidden, dim)

    def forward(self, x, c_noise, y):
        if y is None:
            y = torch.full((x.shape[0],), self.classes, dtype=torch.long)
        h = torch.nn.functional.silu(self.inp(torch.cat([x, c_noise[:, None]], 1)) + self.embed(y))
        return self.out(h)


def _process_for(name):
    return {"vlb": DDPMSchedule(num_steps=50, beta_end=0.2), "cfm": Linear()}.get(name, VP())


@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
def test_gradients_flow_and_draws_are_deterministic(name):
    torch.manual_seed(0)
    process = _process_for(name)
    obj = make_objective(name, process, probes=2, sigma_data=1.0)
    field = NetworkField(TinyNet(), process, obj.default_parameterization, sigma_data=1.0)
    x0 = (mog6().sample(64, gen(21)) / 5.0).to(torch.float32)
    y = torch.randint(0, 3, (64,), generator=gen(22))
    draws = obj.draw(x0, gen(23))
    assert all(v.shape[0] == 64 for v in draws.values())
    loss = obj.loss(field, x0, y, draws)
    assert loss.shape == (64,) and loss.dtype == torch.float32
    loss.mean().backward()
    for pname, p in field.net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, (name, pname)

    again = obj.draw(x0, gen(23))
    assert draws.keys() == again.keys() and all(torch.equal(draws[k], again[k]) for k in draws)
    torch.testing.assert_close(obj.loss(field, x0, y, again), loss, rtol=0, atol=0)
    with torch.no_grad():  # evaluation without a graph gives the same numbers
        torch.testing.assert_close(obj.loss(field, x0, y, again), loss.detach(), rtol=1e-6, atol=1e-6)
    # a slice of the draws (one distributed rank's share) gives that slice of the loss
    part = {k: v[16:40] for k, v in draws.items()}
    torch.testing.assert_close(obj.loss(field, x0[16:40], y[16:40], part), loss[16:40], rtol=1e-5, atol=1e-5)


def test_registry_and_defaults():
    assert all(cls.name == name for name, cls in OBJECTIVES.items())  # the table's key is the class's name
    assert (
        set(OBJECTIVE_NAMES)
        == set(OBJECTIVES)
        == {"eps", "dsm", "x0", "v", "edm", "cfm", "ssm", "ism", "ism-hutchinson", "vlb"}
    )
    assert make_objective("edm", VP()).time.__class__ is LogNormalTime
    assert make_objective("eps", DDPMSchedule(num_steps=10)).time.__class__ is DiscreteTime
    assert make_objective("cfm", Linear(), t_min=0.0).time.t_min == 0.0
    # the importance density of dsm/eps (lambda = sigma^2) is flat: weights are 1
    _, w = make_objective("dsm", VP(), time="importance").time.sample(100, gen(24))
    torch.testing.assert_close(w, torch.ones_like(w))


# --- invalid combinations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: make_objective("nope", VP()), "objective must be one of eps, dsm"),
        (lambda: make_objective("vlb", VP()), "needs the discrete DDPMSchedule"),
        (lambda: make_objective("eps", DDPMSchedule(10), time="lognormal"), "is discrete"),
        (lambda: make_objective("eps", DDPMSchedule(10), time="importance"), "is discrete"),
        (lambda: make_objective("eps", DDPMSchedule(10), time="uniform"), "is discrete"),
        (lambda: make_objective("vlb", DDPMSchedule(10), time="importance"), "'importance' is not available"),
        (lambda: make_objective("cfm", DDPMSchedule(10)), "'cfm' needs a continuous process"),
        (lambda: make_objective("eps", VP(), time="sometimes"), "time must be one of"),
        (lambda: make_objective("ssm", VP(), probes=0), "probes must be an integer >= 1"),
        (lambda: make_objective("edm", VP(), sigma_data=0.0), "sigma_data must be positive"),
        (lambda: make_objective("eps", VP(), t_min=1.5), "t_min must be in"),
        (lambda: check("eps", DDPMSchedule(10), "flow"), "parameterization 'flow' needs a continuous process"),
        (lambda: check("eps", VP(), "bogus"), "parameterization must be one of"),
        (lambda: make_objective("eps", DDPMSchedule(10), parameterization="flow"), "'flow' needs a continuous"),
        (lambda: make_objective("eps", VP(), parameterization="bogus"), "parameterization must be one of"),
        # the objective's own rule comes before the parameterization's
        (lambda: make_objective("cfm", DDPMSchedule(10), parameterization="flow"), "'cfm' needs a continuous"),
        (lambda: OBJECTIVES["cfm"](DDPMSchedule(10)), "'cfm' needs a continuous process"),
        (lambda: OBJECTIVES["vlb"](VP()), "needs the discrete DDPMSchedule"),
        (lambda: UniformTime(DDPMSchedule(10)), "use DiscreteTime"),
        (lambda: DiscreteTime(VP()), "DiscreteTime needs the discrete DDPMSchedule"),
        (lambda: LogNormalTime(VP(), p_std=0.0), "p_std must be positive"),
        (lambda: ImportanceTime(VP(), lambda t: -t), "density must be finite, >= 0"),
        (lambda: OBJECTIVES["vlb"](DDPMSchedule(10), variance="large"), "variance must be one of"),
    ],
)
def test_invalid_combinations_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()
