"""The exact field: score = autograd of the exact noised log density, and conversions agree."""

import pytest
import torch

from scoredyn.core.fields import AnalyticField, CountingField, denoise_from_score, score_from_denoise
from scoredyn.core.processes import EDM, OU, VE, VP, DDPMSchedule, Linear, SubVP
from scoredyn.core.targets import mog6, mog10

PROCESSES = [VP(), VP("cosine"), SubVP(), VE(), EDM(), OU(), Linear(), DDPMSchedule()]
IDS = [p.name for p in PROCESSES]


@pytest.mark.parametrize("target", [mog6(), mog10()], ids=["mog6", "mog10"])
@pytest.mark.parametrize("p", PROCESSES, ids=IDS)
@pytest.mark.parametrize("frac", [0.01, 0.3, 0.9])
def test_score_equals_autograd_of_exact_log_density(target, p, frac):
    t = torch.tensor(p.t_min + frac * (p.t_max - p.t_min), dtype=torch.float64)
    pt = target.noised(p, t)
    x = pt.sample(64, torch.Generator().manual_seed(0)).requires_grad_(True)
    (g,) = torch.autograd.grad(pt.log_prob(x).sum(), x)
    s = AnalyticField(target, p).score(x.detach(), t)
    # both are float64 evaluations of the same function: agreement to 1e-8 relative
    torch.testing.assert_close(s, g, rtol=1e-8, atol=1e-8 * float(g.abs().max()))


@pytest.mark.parametrize("p", PROCESSES, ids=IDS)
def test_conversions_are_consistent(p):
    target = mog10()
    f = AnalyticField(target, p)
    t = torch.tensor(p.t_min + 0.4 * (p.t_max - p.t_min), dtype=torch.float64)
    x = target.noised(p, t).sample(64, torch.Generator().manual_seed(1))
    a, s_ = p.alpha(t), p.sigma(t)
    s, x0, eps, v = f.score(x, t), f.denoise(x, t), f.eps(x, t), f.velocity(x, t)
    scale = float(x.abs().max())
    # Tweedie: the posterior-mean denoiser equals (x + sigma^2 s) / alpha
    torch.testing.assert_close(x0, denoise_from_score(x, s, a, s_), rtol=1e-9, atol=1e-9 * scale / float(a))
    torch.testing.assert_close(score_from_denoise(x, x0, a, s_), s, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(eps, -s_ * s)
    torch.testing.assert_close(x, a * x0 + s_ * eps, rtol=1e-9, atol=1e-9 * scale)
    # PF-ODE velocity in DESIGN.md's form f x - g^2 s / 2
    torch.testing.assert_close(v, p.f(t) * x - 0.5 * p.g2(t) * s, rtol=1e-8, atol=1e-8 * float(v.abs().max()))


def test_denoise_is_posterior_mean_by_monte_carlo():
    """E[x0 | xt] checked by importance weighting exact x0 draws (an independent computation)."""
    target, p = mog6(), VP()
    t = torch.tensor(0.3, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x0 = target.sample(400_000, g)
    xt = torch.tensor([[1.0, -2.0]], dtype=torch.float64) * float(p.alpha(t))
    a, s = float(p.alpha(t)), float(p.sigma(t))
    logw = -((xt - a * x0) ** 2).sum(1) / (2 * s**2)
    w = torch.softmax(logw, 0)
    mc = (w[:, None] * x0).sum(0)
    ess = 1 / (w**2).sum()
    assert ess > 1000  # enough effective samples for a 0.1 tolerance
    torch.testing.assert_close(AnalyticField(target, p).denoise(xt, t)[0], mc, atol=0.1, rtol=0)


def test_alpha_zero_is_finite():
    """Linear process at t = 1: alpha = 0, p_1 = N(0, I); the denoiser is the data mean."""
    from scoredyn.core.processes import Linear

    p = Linear(t_max=1.0)
    f = AnalyticField(mog6(), p)
    x = torch.randn(5, 2, dtype=torch.float64)
    torch.testing.assert_close(f.score(x, 1.0), -x)
    torch.testing.assert_close(f.denoise(x, 1.0), mog6().mean().expand(5, 2))
    assert torch.isfinite(f.velocity(x, 1.0)).all()


def test_float32_inputs_come_back_float32():
    f = AnalyticField(mog6(), EDM())
    x = torch.randn(8, 2)
    assert f.score(x, 1.0).dtype == torch.float32 and f.denoise(x, 1.0).dtype == torch.float32


def test_counting_field():
    c = CountingField(AnalyticField(mog6(), EDM()))
    x = torch.zeros(3, 2, dtype=torch.float64)
    c.score(x, 1.0), c.denoise(x, 1.0), c.eps(x, 2.0), c.velocity(x, 3.0)
    assert c.nfe == 4
