"""NetworkField: every parameterization converts to the same x0hat and eps, and OnProcess moves a
field between processes exactly.

An *oracle* network recovers (x, t) from its inputs and returns, for its parameterization, what the
exact mixture field predicts; the NetworkField built on it must then reproduce the exact field. The
comparisons are in float64, so the tolerance (1e-9 relative) only absorbs rounding in the
conversions and in the bisection that inverts sigma_hat -> t (200 halvings: exact to float64).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scoredyn.core.fields import AnalyticField, NetworkField, OnProcess
from scoredyn.core.processes import EDM, VE, VP, DDPMSchedule, Linear
from scoredyn.core.targets import mog6, random_mixture


class Oracle(nn.Module):
    """Inverts NetworkField's input scaling and answers with the exact field's prediction."""

    def __init__(self, exact: AnalyticField, param: str, sigma_data: float) -> None:
        super().__init__()
        self.exact, self.param, self.sd = exact, param, sigma_data
        self.dummy = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, x_in, c_noise, y=None):
        proc = self.exact.process
        sigma_hat = torch.exp(4.0 * c_noise.to(torch.float64))
        t = proc.log_snr_to_t(-torch.log(sigma_hat))
        a, s = proc.alpha(t)[:, None], proc.sigma(t)[:, None]
        x = x_in * torch.sqrt(a**2 * self.sd**2 + s**2)
        pred = self.exact.predict(x, t)
        if self.param == "eps":
            return pred.eps
        if self.param == "x0":
            return pred.x0
        if self.param == "v":
            return pred.v
        if self.param == "score":
            return -pred.eps
        if self.param == "flow":
            return pred.flow
        sh2, sd2 = sigma_hat[:, None] ** 2, self.sd**2  # edm: invert D = c_skip xhat + c_out F
        c_skip, c_out = sd2 / (sh2 + sd2), sigma_hat[:, None] * self.sd / torch.sqrt(sh2 + sd2)
        return (pred.x0 - c_skip * x / a) / c_out


def _points(target, process, t, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return target.noised(process, t).sample(n, g)


@pytest.mark.parametrize("param", NetworkField.accepts)  # energy: tests/core/test_energy_field.py
@pytest.mark.parametrize("process", [VP(), EDM(), Linear()], ids=["vp", "edm", "linear"])
def test_every_parameterization_reproduces_the_exact_field(param, process):
    target = mog6()
    exact = AnalyticField(target, process)
    field = NetworkField(Oracle(exact, param, 0.7), process, param, sigma_data=0.7)
    t = torch.tensor(0.3 * process.t_max, dtype=torch.float64)
    x = _points(target, process, t)
    got, want = field.predict(x, t), exact.predict(x, t)
    for name in ("x0", "eps", "score", "v", "flow"):
        a, b = getattr(got, name), getattr(want, name)
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-9 * float(b.abs().max())), (name, (a - b).abs().max())
    # the Field methods read the same prediction
    assert torch.allclose(field.velocity(x, t), exact.velocity(x, t), rtol=1e-8, atol=1e-9)


def test_per_sample_times_match_one_time_at_a_time():
    target, process = mog6(), VP()
    exact = AnalyticField(target, process)
    field = NetworkField(Oracle(exact, "v", 1.0), process, "v")
    g = torch.Generator().manual_seed(1)
    x = target.sample(16, g)
    t = torch.rand(16, generator=g, dtype=torch.float64) * 0.9 + 0.05
    batch = field.predict(x, t).x0
    single = torch.cat([field.predict(x[i : i + 1], t[i]).x0 for i in range(16)])
    assert torch.allclose(batch, single, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "source, dest",
    [(VP(), EDM()), (EDM(), VP()), (VP(), VE()), (Linear(), VP()), (VP("cosine"), Linear()), (DDPMSchedule(), EDM())],
    ids=["vp->edm", "edm->vp", "vp->ve", "linear->vp", "cosine->linear", "ddpm->edm"],
)
def test_on_process_is_the_exact_field_of_the_other_process(source, dest):
    """The exact field of p under one process, read on another at equal SNR, is the exact field there."""
    target = random_mixture(3, 4, seed=2)
    moved = OnProcess(AnalyticField(target, source), dest)
    exact = AnalyticField(target, dest)
    # times of the destination whose sigma_hat the source process also reaches
    lo = max(float(source.sigma_hat(source.t_min)), float(dest.sigma_hat(dest.t_min)), 1e-2)
    hi = min(float(source.sigma_hat(source.t_max)), float(dest.sigma_hat(dest.t_max)), 50.0)
    for sh in torch.logspace(torch.log10(torch.tensor(lo)), torch.log10(torch.tensor(hi)), 5, dtype=torch.float64):
        t = dest.log_snr_to_t(-torch.log(sh))
        x = _points(target, dest, t, n=32)
        for method in ("denoise", "eps", "score", "velocity"):
            a, b = getattr(moved, method)(x, t), getattr(exact, method)(x, t)
            scale = float(b.abs().max())
            assert torch.allclose(a, b, rtol=1e-7, atol=1e-7 * scale), (method, float(sh), (a - b).abs().max())


def test_conditional_labels_reach_the_network():
    seen = {}

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def forward(self, x, c, y=None):
            seen["y"] = y
            return x * self.w

    field = NetworkField(Spy(), VP(), "eps", labels=torch.tensor(3))
    field.score(torch.zeros(5, 2), 0.5)
    assert seen["y"].tolist() == [3] * 5
    NetworkField(Spy(), VP(), "eps").score(torch.zeros(5, 2), 0.5)
    assert seen["y"] is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="parameterization must be one of"):
        NetworkField(nn.Linear(2, 2), VP(), "noise")
    with pytest.raises(ValueError, match="sigma_data"):
        NetworkField(nn.Linear(2, 2), VP(), "eps", sigma_data=0.0)
