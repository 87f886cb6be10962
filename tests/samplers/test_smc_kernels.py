"""SMC's kernels between levels: the flow kernel is the DDIM step with the exact log-determinant of its
Jacobian, and its log-weights are second order in the step where staying is first order; the reverse
kernel is the ancestral step with its exact forward/backward density ratio; the score Jacobian of the
exact mixture is the autograd Hessian of its log-density, and a counted field charges for it."""

import math

import pytest
import torch

from scoredyn.core.fields import AnalyticField, Field
from scoredyn.core.fields.counting import CountingField
from scoredyn.core.processes import EDM, VP
from scoredyn.core.targets import GaussianMixture, mog6, mog10
from scoredyn.samplers.smc_kernels import flow_kernel, gaussian_log_density, reverse_kernel

TWO = GaussianMixture([0.3, 0.7], [[-2.0, 0.0], [2.0, 1.0]], [[[0.5, 0.0], [0.0, 0.5]], [[0.8, 0.2], [0.2, 0.4]]])


@pytest.mark.parametrize("target", [TWO, mog6(), mog10()], ids=["two", "mog6", "mog10"])
@pytest.mark.parametrize("t", [0.0, 0.2, 0.6, 0.95])
def test_the_mixture_score_jacobian_is_the_hessian_of_its_log_density(target, t):
    # the closed form against one backward pass per dimension through the exact score (float64: 1e-9 of
    # the largest entry)
    field = AnalyticField(target, VP())
    x = 3.0 * torch.randn(64, target.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    closed = field.score_jacobian(x, t)
    by_autograd = Field.score_jacobian(field, x, t)
    assert closed.shape == (64, target.dim, target.dim)
    assert torch.allclose(closed, by_autograd, rtol=0, atol=1e-9 * float(closed.abs().max()))
    assert torch.allclose(closed, closed.transpose(1, 2), atol=1e-12 * float(closed.abs().max()))


def test_a_counted_score_jacobian_costs_one_evaluation_in_closed_form_and_d_by_autograd():
    class ScoreOnly(Field):
        def __init__(self, inner):
            self.inner, self.process = inner, inner.process

        def score(self, x, t):
            return self.inner.score(x, t)

    exact = AnalyticField(mog10(), VP())
    x = torch.randn(8, 10, dtype=torch.float64)
    counted, autograd = CountingField(exact), CountingField(ScoreOnly(exact))
    a, b = counted.score_jacobian(x, 0.3), autograd.score_jacobian(x, 0.3)
    assert counted.nfe == 1 and autograd.nfe == 10
    assert torch.allclose(a, b, atol=1e-9 * float(a.abs().max()))


@pytest.mark.parametrize("process", [VP(), EDM()], ids=["vp", "edm"])
def test_the_flow_kernel_is_the_ddim_step_with_the_log_determinant_of_its_jacobian(process):
    field = AnalyticField(mog6(), process)
    t, t_new = (0.5, 0.3) if isinstance(process, VP) else (2.0, 0.7)
    tt, tn = torch.tensor(t, dtype=torch.float64), torch.tensor(t_new, dtype=torch.float64)
    a, s, a_new, s_new = (float(f(u)) for f, u in ((process.alpha, tt), (process.sigma, tt),
                                                    (process.alpha, tn), (process.sigma, tn)))  # fmt: skip
    x = 2.0 * torch.randn(32, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)

    def ddim(v):  # Song, Meng & Ermon 2021, eq. 12 with eta = 0, from the field's own denoiser
        x0 = field.denoise(v, t)
        return a_new * x0 + s_new * (v - a * x0) / s

    y, log_det = flow_kernel(process, t, t_new, x, field.score(x, t), field.score_jacobian(x, t))
    assert torch.allclose(y, ddim(x), atol=1e-12)
    jac = torch.func.vmap(torch.func.jacrev(lambda v: ddim(v[None])[0]))(x)
    assert torch.allclose(log_det, torch.linalg.slogdet(jac)[1], atol=1e-10)
    assert bool((torch.linalg.slogdet(jac)[0] > 0).all())  # one to one: no fold, no sign flip


def _log_weight_spread(kernel, h, x, field, t=0.45):
    """The spread of the log incremental weights of one step ``t -> t - h`` from exact samples of p_t."""
    process = field.process
    s, log_p = field.score_and_log_prob(x, t)
    if kernel == "stay":
        y, correction = x, 0.0
    else:
        y, correction = flow_kernel(process, t, t - h, x, s, field.score_jacobian(x, t))
    return float((field.log_prob(y, t - h) - log_p + correction).std())


def test_the_flow_kernels_log_weights_are_second_order_in_the_step_where_staying_is_first():
    # halving the step halves the spread of the log-weights when the particles stay (the density
    # changes under them) and quarters it when they follow the flow (only the DDIM step's error is
    # left): observed orders 1 and 2 within 0.25 on common draws. A wrong coefficient in the map or
    # its Jacobian leaves a first-order error and an order near 1.
    target, process = TWO, VP()
    field = AnalyticField(target, process)
    t = 0.45
    p_t = target.noised(process, t)
    x = p_t.sample(20_000, generator=torch.Generator().manual_seed(3))
    for kernel, order in (("stay", 1.0), ("flow", 2.0)):
        spreads = [_log_weight_spread(kernel, h, x, field, t) for h in (0.02, 0.01, 0.005)]
        observed = [math.log2(a / b) for a, b in zip(spreads[:-1], spreads[1:], strict=True)]
        assert all(abs(o - order) < 0.25 for o in observed), (kernel, observed)
    # and at one step the flow's weights are far more even
    assert _log_weight_spread("flow", 0.02, x, field, t) < 0.1 * _log_weight_spread("stay", 0.02, x, field, t)


def test_the_reverse_kernel_is_the_ancestral_step_with_its_density_ratio():
    process = VP()
    field = AnalyticField(TWO, process)
    t, t_new = 0.4, 0.3
    g = torch.Generator().manual_seed(4)
    x = torch.randn(16, 2, generator=g, dtype=torch.float64)
    xi = torch.randn(16, 2, generator=g, dtype=torch.float64)
    x0 = field.denoise(x, t)
    y, correction = reverse_kernel(process, t, t_new, x, x0, xi)
    q = process.transition(torch.tensor(t, dtype=torch.float64), torch.tensor(t_new, dtype=torch.float64))
    mean = float(q.posterior_x) * x + float(q.posterior_x0) * x0
    assert torch.allclose(y, mean + math.sqrt(float(q.posterior_var)) * xi, atol=1e-12)
    normal = torch.distributions.Normal
    forward = normal(float(q.alpha_ts) * y, math.sqrt(float(q.var_ts))).log_prob(x).sum(-1)
    backward = normal(mean, math.sqrt(float(q.posterior_var))).log_prob(y).sum(-1)
    assert torch.allclose(correction, forward - backward, atol=1e-10)
    # into sigma = 0 there is nothing to draw: the particle stays, with no correction
    y0, c0 = reverse_kernel(process, t, 0.0, x, x0, xi)
    assert torch.equal(y0, x) and torch.equal(c0, torch.zeros(16, dtype=torch.float64))


def test_gaussian_log_density():
    y, mean = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, 1.0]])
    expected = torch.distributions.Normal(mean, math.sqrt(0.3)).log_prob(y).sum(-1).double()
    assert torch.allclose(gaussian_log_density(y, mean, 0.3), expected, atol=1e-6)
