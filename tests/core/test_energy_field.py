"""EnergyField: the score is minus the gradient of the energy, the log-density is minus the energy up to a
constant per time, the Tweedie conversions follow, no graph is kept while sampling, and the parameters
receive gradients while training.

Two kinds of network are used. An *oracle* energy network inverts the field's input scaling and returns
``-log p_t(x) - |u|^2 / 2`` of an exact mixture (``AnalyticField.log_prob``, differentiated by autograd):
the field built on it must reproduce the exact field and its log-density (an independent answer for the
skip term ``|u|^2 / 2``, the chain rule through ``u = c_in x``, and Tweedie). A random ``EnergyMLP``
in float64 is checked against finite differences and line integrals of its own ``log_prob``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from scoredyn.core.fields import AnalyticField, EnergyField, NetworkField, OnProcess, network_field
from scoredyn.core.processes import EDM, VP, Linear
from scoredyn.core.targets import mog6, random_mixture
from scoredyn.learning import make_objective
from scoredyn.learning.nets import EnergyMLP

F64 = torch.float64


class MixtureEnergy(nn.Module):
    """``E~(u, c_noise) = -log p_t(u / c_in) - |u|^2 / 2`` of an exact mixture: the energy network whose
    field is the exact one. It has no parameters (the field then works in ``x``'s dtype)."""

    def __init__(self, exact: AnalyticField, sigma_data: float) -> None:
        super().__init__()
        self.exact, self.sd = exact, sigma_data

    def forward(self, u, c_noise, y=None):
        proc = self.exact.process
        sigma_hat = torch.exp(4.0 * c_noise.to(F64))
        t = proc.log_snr_to_t(-torch.log(sigma_hat))  # 200 halvings: exact to float64
        a, s = proc.alpha(t)[:, None], proc.sigma(t)[:, None]
        scale = torch.sqrt(a**2 * self.sd**2 + s**2)  # 1 / c_in
        return -self.exact.log_prob(u * scale, t) - 0.5 * (u**2).sum(1)


def _points(target, process, t, n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return target.noised(process, t).sample(n, g)


def _random_energy_mlp(seed=0):
    """A float64 EnergyMLP whose parameters (the zero-initialised read-out included) are all moved."""
    torch.manual_seed(seed)
    net = EnergyMLP(2, hidden=32, depth=2, emb_dim=16).to(F64)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=F64))
    return net


PROCESSES = [VP(), EDM(), Linear()]
IDS = ["vp", "edm", "linear"]


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_the_oracle_energy_gives_the_exact_field_and_log_density(process):
    target, sd = mog6(), 0.7
    exact = AnalyticField(target, process)
    field = EnergyField(MixtureEnergy(exact, sd), process, sigma_data=sd)
    assert field.has_density and not field.normalized
    t = torch.tensor(0.3 * process.t_max, dtype=F64)
    x = _points(target, process, t)
    # float64 throughout; 1e-9 relative absorbs rounding in the scalings and the autograd gradient
    for method in ("score", "denoise", "eps", "velocity"):
        got, want = getattr(field, method)(x, t), getattr(exact, method)(x, t)
        assert torch.allclose(got, want, rtol=1e-9, atol=1e-9 * float(want.abs().max())), method
    got, want = field.predict(x, t), exact.predict(x, t)
    for name in ("x0", "eps", "score", "v", "flow"):
        a, b = getattr(got, name), getattr(want, name)
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-9 * float(b.abs().max())), name
    # log p_t up to a constant in x: the differences between points are the exact ones
    s, log_p = field.score_and_log_prob(x, t)
    s_exact, log_p_exact = exact.score_and_log_prob(x, t)
    assert torch.allclose(s, s_exact, rtol=1e-9, atol=1e-9 * float(s_exact.abs().max()))
    assert torch.allclose(log_p - log_p[0], log_p_exact - log_p_exact[0], rtol=0, atol=1e-9)
    assert torch.allclose(field.log_prob(x, t), log_p, rtol=0, atol=0)


def test_the_oracle_energy_at_one_time_per_sample_and_on_another_process():
    target, process = random_mixture(2, 3, seed=4), VP()
    exact = AnalyticField(target, process)
    field = EnergyField(MixtureEnergy(exact, 1.0), process)
    g = torch.Generator().manual_seed(1)
    t = 0.05 + 0.9 * torch.rand(32, generator=g, dtype=F64)
    x = torch.randn(32, 2, generator=g, dtype=F64) * 2
    assert torch.allclose(field.score(x, t), exact.score(x, t), rtol=1e-9, atol=1e-9)
    # read on EDM at equal SNR (OnProcess): the exact EDM field and log-density differences
    moved, exact_edm = OnProcess(field, EDM()), AnalyticField(target, EDM())
    assert moved.has_density and not moved.normalized
    te = torch.tensor(0.8, dtype=F64)
    s, log_p = moved.score_and_log_prob(x, te)
    s_want, log_p_want = exact_edm.score_and_log_prob(x, te)
    assert torch.allclose(s, s_want, rtol=1e-7, atol=1e-9)  # 1e-7: the sigma_hat -> t bisection of OnProcess
    assert torch.allclose(log_p - log_p[0], log_p_want - log_p_want[0], rtol=0, atol=1e-7)


@pytest.mark.parametrize("process", [VP(), EDM()], ids=["vp", "edm"])
def test_score_is_minus_the_gradient_of_the_energy(process):
    """Central differences of ``log_prob``: truncation ``h^2 |E'''| / 6 ~ 1e-10`` and rounding
    ``1e-16 |E| / h ~ 1e-11 |E|`` at ``h = 1e-5``, far below the 1e-6 tolerance."""
    field = EnergyField(_random_energy_mlp(), process, sigma_data=0.8)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(16, 2, generator=g, dtype=F64) * 1.5
    for t in (torch.tensor(0.3 * process.t_max, dtype=F64), 0.1 + 0.8 * torch.rand(16, generator=g, dtype=F64)):
        with torch.no_grad():
            s = field.score(x, t)
            h = 1e-5
            fd = torch.stack(
                [
                    (field.log_prob(x + h * e, t) - field.log_prob(x - h * e, t)) / (2 * h)
                    for e in torch.eye(2, dtype=F64)
                ],
                dim=1,
            )
        assert float(s.abs().max()) > 1e-2  # a non-trivial field
        assert torch.allclose(s, fd, rtol=1e-6, atol=1e-6), (s - fd).abs().max()


def test_log_prob_differences_are_line_integrals_of_the_score():
    """``log p(x1) - log p(x0) = int_0^1 s(x0 + tau (x1 - x0)) . (x1 - x0) dtau``, by 40-point Gauss-Legendre
    quadrature (exact to float64 rounding for this smooth, analytic integrand over a segment of length ~3)."""
    process = VP()
    field = EnergyField(_random_energy_mlp(seed=3), process, sigma_data=1.0)
    g = torch.Generator().manual_seed(3)
    x0, x1 = torch.randn(8, 2, generator=g, dtype=F64), torch.randn(8, 2, generator=g, dtype=F64)
    t = torch.tensor(0.4, dtype=F64)
    nodes, weights = (torch.from_numpy(a) for a in np.polynomial.legendre.leggauss(40))
    tau, w = (nodes + 1) / 2, weights / 2
    with torch.no_grad():
        integral = sum(
            wi * (field.score(x0 + ti * (x1 - x0), t) * (x1 - x0)).sum(1) for ti, wi in zip(tau, w, strict=True)
        )
        diff = field.log_prob(x1, t) - field.log_prob(x0, t)
    assert float(diff.abs().max()) > 1e-2
    assert torch.allclose(diff, integral, rtol=1e-9, atol=1e-10)


def test_tweedie_conversions_from_the_score():
    """``eps = -sigma s``, ``x0hat = (x + sigma^2 s) / alpha``, ``v = f x - g^2 s / 2``, from the process's
    coefficients (Efron 2011; Song et al. 2021, eq. 13)."""
    process = VP()
    field = EnergyField(_random_energy_mlp(seed=5), process, sigma_data=1.0)
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(5), dtype=F64)
    t = torch.tensor(0.35, dtype=F64)
    a, s_, f, g2 = (float(c(t)) for c in (process.alpha, process.sigma, process.f, process.g2))
    with torch.no_grad():
        s = field.score(x, t)
        tol = {"rtol": 1e-10, "atol": 1e-12}  # float64 rounding of the same products
        assert torch.allclose(field.eps(x, t), -s_ * s, **tol)
        assert torch.allclose(field.denoise(x, t), (x + s_**2 * s) / a, **tol)
        assert torch.allclose(field.velocity(x, t), f * x - 0.5 * g2 * s, rtol=1e-9, atol=1e-10)
        pred = field.predict(x, t)
        assert torch.allclose(pred.score, s, **tol) and torch.allclose(pred.v, a * pred.eps - s_ * pred.x0, **tol)


def test_no_graph_is_kept_while_sampling(monkeypatch):
    """Under ``no_grad`` (and for a frozen net at a constant x) nothing returned carries a graph, and the
    input gradient is taken without ``create_graph`` (no double-backward graph is built, even briefly)."""
    calls = []
    grad = torch.autograd.grad

    def spy(*args, **kwargs):
        calls.append(bool(kwargs.get("create_graph", False)))
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", spy)
    net = _random_energy_mlp(seed=6)  # parameters require grad, as in training
    field = EnergyField(net, VP())
    x, t = torch.randn(8, 2, dtype=F64), torch.tensor(0.5, dtype=F64)
    with torch.no_grad():
        pred = field.predict(x, t)
        outs = [field.score(x, t), field.log_prob(x, t), *field.score_and_log_prob(x, t), field.velocity(x, t),
                field.denoise(x, t), field.eps(x, t), pred.eps, pred.x0]  # fmt: skip
    assert all(o.grad_fn is None and not o.requires_grad for o in outs)
    assert all(p.grad is None for p in net.parameters())
    # a frozen network (as load_trained returns it) in grad mode, at a constant x: no graph either
    net.requires_grad_(False)
    s, log_p = field.score_and_log_prob(x, t)
    assert s.grad_fn is None and log_p.grad_fn is None
    assert len(calls) == 8 and not any(calls)
    # while training, the graph is built (the other tests check that it is right)
    net.requires_grad_(True)
    field.score(x, t)
    assert calls[-1]


def test_parameter_gradients_flow_while_training():
    """The score is differentiable in the parameters (``create_graph``): the autograd gradient of a linear
    functional of the score matches central differences in one parameter (float64; h = 1e-6)."""
    net = _random_energy_mlp(seed=7)
    field = EnergyField(net, VP(), sigma_data=0.9)
    g = torch.Generator().manual_seed(7)
    x, w = torch.randn(16, 2, generator=g, dtype=F64), torch.randn(16, 2, generator=g, dtype=F64)
    t = 0.1 + 0.8 * torch.rand(16, generator=g, dtype=F64)

    def functional() -> torch.Tensor:
        return (field.score(x, t) * w).sum() + field.log_prob(x, t).sum()

    functional().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    for p in (net.mlp.inp.weight, net.mlp.out.weight):
        grad, h = p.grad[0, 0].item(), 1e-6
        with torch.no_grad():
            p[0, 0] += h
            up = functional().item()
            p[0, 0] -= 2 * h
            down = functional().item()
            p[0, 0] += h
        assert abs((up - down) / (2 * h) - grad) <= 1e-6 * max(1.0, abs(grad))


def test_implicit_score_matching_differentiates_the_energy_score_in_x():
    """ISM needs ``div s`` (the score's derivative in x): on the oracle energy it equals ISM on the exact field."""
    target, process = mog6(), VP()
    exact = AnalyticField(target, process)
    field = EnergyField(MixtureEnergy(exact, 1.0), process)
    obj = make_objective("ism", process)
    g = torch.Generator().manual_seed(8)
    x0 = target.sample(32, g)
    draws = obj.draw(x0, g)
    with torch.no_grad():
        got, want = obj.loss(field, x0, None, draws), obj.loss(exact, x0, None, draws)
    assert torch.allclose(got, want, rtol=1e-8, atol=1e-8 * float(want.abs().max()))


def test_construction():
    net = _random_energy_mlp()
    field = network_field(net, VP(), "energy", sigma_data=0.5)
    assert type(field) is EnergyField and field.parameterization == "energy"
    assert type(network_field(nn.Linear(2, 2), VP(), "eps")) is NetworkField
    assert type(field.with_options(labels=None)) is EnergyField
    with pytest.raises(ValueError, match="network_field"):
        NetworkField(net, VP(), "energy")
    with pytest.raises(ValueError, match="network_field"):
        EnergyField(net, VP(), "eps")

    class Vector(nn.Module):
        def forward(self, x, c, y=None):
            return x

    with pytest.raises(ValueError, match="one value per point"):
        EnergyField(Vector(), VP()).score(torch.zeros(3, 2), 0.5)


def test_at_sigma_zero_the_log_density_score_and_denoiser_are_finite():
    """At ``sigma = 0`` (VP's t_min, where ``-eps / sigma`` is 0/0) the score is read directly: minus the
    gradient of ``log_prob`` there (central differences, as above), and Tweedie's ``x0hat = x / alpha = x``."""
    field = EnergyField(_random_energy_mlp(seed=9), VP())
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(9), dtype=F64)
    t0 = torch.tensor(float(VP().t_min), dtype=F64)
    assert float(VP().sigma(t0)) == 0.0
    with torch.no_grad():
        s, log_p = field.score_and_log_prob(x, t0)
        h = 1e-5
        fd = torch.stack(
            [
                (field.log_prob(x + h * e, t0) - field.log_prob(x - h * e, t0)) / (2 * h)
                for e in torch.eye(2, dtype=F64)
            ],
            dim=1,
        )
        assert torch.isfinite(log_p).all() and torch.allclose(s, fd, rtol=1e-6, atol=1e-6)
        assert torch.allclose(field.score(x, t0), s, rtol=0, atol=0)
        assert torch.allclose(field.denoise(x, t0), x, rtol=0, atol=1e-15)
        assert torch.equal(field.eps(x, t0), torch.zeros_like(x))
