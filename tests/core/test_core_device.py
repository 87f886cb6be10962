"""The core follows the particles' device: targets, processes and fields evaluated at points on a second
device (``_foreign``: another device's tensors with the CPU's values, checked as CUDA checks them) give the
CPU's results bit for bit, on that device. One check runs on torch's own ``meta`` device as well, where
torch itself refuses a CPU tensor beside the particles."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from _foreign import FOREIGN, assert_same_on_foreign, foreign_device, on_both, to_foreign
from scoredyn.core.fields import (
    AnalyticField,
    ClassifierFreeGuidance,
    ClassifierGuidance,
    CountingField,
    mixture_classifier,
    network_field,
    on_process,
)
from scoredyn.core.processes import EDM, VP, simulate_forward
from scoredyn.core.registry import EXACT_TARGETS, PROCESSES, resolve_process
from scoredyn.core.targets import POINT_CLOUDS, mog6
from scoredyn.learning.nets import build_net

F64 = torch.float64
N = 8


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _points(target, seed: int = 0) -> torch.Tensor:
    return target.sample(N, _gen(seed))


# --- the emulated device itself -------------------------------------------------------------------


def test_the_foreign_device_refuses_what_cuda_refuses_and_keeps_the_values():
    x = torch.randn(4, 2, dtype=F64, generator=_gen())
    with foreign_device():
        xf = to_foreign(x)
        assert xf.device == FOREIGN
        assert torch.equal((xf * 2 + torch.tensor(1.0)).cpu(), x * 2 + 1)  # a 0-dim CPU tensor is a scalar
        assert torch.equal(xf[torch.tensor([1, 0])].cpu(), x[[1, 0]])  # CPU indices of a foreign tensor
        with pytest.raises(RuntimeError, match="same device"):
            xf + torch.ones(2, dtype=F64)
        with pytest.raises(RuntimeError, match="same device"):
            torch.ones(2, dtype=F64)[torch.tensor([1, 0], device=FOREIGN)]
        with pytest.raises(RuntimeError, match="generator"):
            torch.randn(3, generator=_gen(), device=xf.device)
        with pytest.raises(TypeError, match="numpy"):
            xf.numpy()
        out = torch.empty(4, 2, dtype=F64, device=xf.device)
        out[1:3] = xf[1:3]
        assert torch.equal(out[1:3].cpu(), x[1:3])


def test_on_torch_meta_device_the_exact_field_keeps_nothing_on_the_cpu():
    """torch's own check: a non-scalar CPU tensor beside ``meta`` particles raises (no values needed)."""
    field = AnalyticField(mog6(), EDM())
    x = torch.zeros(5, 2, dtype=F64, device="meta")
    for t in (1.0, torch.full((5,), 1.0, dtype=F64, device="meta")):
        assert field.score(x, t).device.type == "meta"
        assert field.denoise(x, t).device.type == "meta"
        assert field.log_prob(x, t).device.type == "meta"
        assert field.velocity(x, t).device.type == "meta"


# --- targets ----------------------------------------------------------------------------------------

TARGETS = {**{name: make for name, make in EXACT_TARGETS.items()}, "moons-kde": POINT_CLOUDS["moons"].as_mixture}


@pytest.mark.parametrize("name", list(TARGETS))
def test_mixtures_evaluate_and_sample_on_the_points_device(name):
    target = TARGETS[name]()
    x = _points(target)

    def run(move):
        y = move(x)
        drawn = target.sample(N, _gen(1), device=y.device)
        return (target.log_prob(y), target.score(y), target.responsibilities(y), target.component_log_prob(y), drawn)

    assert_same_on_foreign(*on_both(run), name)


@pytest.mark.parametrize("name", list(POINT_CLOUDS))
def test_point_clouds_draw_on_the_generator_and_land_on_the_device(name):
    cloud = POINT_CLOUDS[name]
    here, far = on_both(lambda move: cloud.sample(N, _gen(4), device=move(torch.zeros(1)).device))
    assert_same_on_foreign(here, far, name)


def test_a_mixture_is_moved_once_per_device():
    target = mog6()
    with foreign_device():
        assert target.to(FOREIGN) is target.to(FOREIGN)
        assert target.to(FOREIGN).to("cpu") is target
        assert target.to(FOREIGN).means.device == FOREIGN


# --- processes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PROCESSES))
def test_processes_follow_their_times(name):
    process = resolve_process(name)
    t = torch.linspace(process.t_min + 0.1 * (process.t_max - process.t_min), 0.9 * process.t_max, 5, dtype=F64)

    def run(move):
        u = move(t)
        q = process.transition(u, 0.5 * u)
        return (
            process.alpha(u),
            process.sigma(u),
            process.f(u),
            process.g2(u),
            process.d_sigma2(u),
            process.sigma_to_t(process.sigma(u)),
            process.log_snr_to_t(process.log_snr(u)),
            q.posterior_var,
        )

    assert_same_on_foreign(*on_both(run), name)


def test_forward_simulation_follows_the_data():
    x0 = _points(mog6())
    times = torch.linspace(0.0, 1.0, 4, dtype=F64)
    here, far = on_both(lambda move: simulate_forward(VP(), move(x0), times, generator=_gen(2), substeps=2))
    assert_same_on_foreign(here, far, "simulate_forward")


# --- fields ---------------------------------------------------------------------------------------------


def _field_values(field, x, t):
    return (
        field.score(x, t),
        field.denoise(x, t),
        field.eps(x, t),
        field.velocity(x, t),
        *field.score_and_denoise(x, t),
    )


@pytest.mark.parametrize("process", ["edm", "vp", "ddpm"])
@pytest.mark.parametrize("times", ["one", "per-row", "per-row-cpu"])
def test_the_exact_field_follows_the_particles(process, times):
    proc = resolve_process(process)
    target = mog6()
    x = _points(target).to(torch.float32)
    t_row = torch.linspace(0.3, 0.7, N, dtype=F64) * proc.t_max

    def run(move):
        field = AnalyticField(target, proc, chunk_bytes=256)  # several chunks
        t = 0.4 * proc.t_max if times == "one" else (t_row if times == "per-row-cpu" else move(t_row))
        y = move(x)
        return (
            *_field_values(field, y, t),
            field.log_prob(y, t),
            *field.score_and_log_prob(y, t),
            field.predict(y, t).x0,
            *_field_values(field.at_times(torch.tensor([0.4 * proc.t_max])), y, t),
        )

    assert_same_on_foreign(*on_both(run), f"{process}, {times}")


def test_wrapped_and_guided_fields_follow_the_particles():
    target = mog6()
    x = _points(target)

    def run(move):
        exact = AnalyticField(target, EDM())
        read_on_vp = on_process(exact, VP())
        guided = ClassifierGuidance(exact, mixture_classifier(target, EDM()), labels=2, weight=2.0)
        counted = CountingField(read_on_vp)
        y = move(x)
        return (
            *_field_values(read_on_vp, y, 0.3),
            *read_on_vp.score_and_log_prob(y, 0.3),
            *_field_values(guided, y, 1.0),
            *_field_values(counted, y, 0.3),
            counted.nfe,
        )

    assert_same_on_foreign(*on_both(run), "wrapped fields")


def _net(energy: bool) -> nn.Module:
    """A small class-conditional MLP of the library (its labels go through ``nn.Embedding``), with a
    read-out that is not zero."""
    torch.manual_seed(3)
    net = build_net("mlp", 2, num_classes=3, energy=energy, hidden=16, depth=1, emb_dim=8).double()
    for p in net.parameters():
        nn.init.normal_(p, std=0.5)
    return net


@pytest.mark.parametrize("parameterization", ["eps", "edm", "energy"])
def test_network_fields_follow_the_particles_and_the_labels(parameterization):
    x = _points(mog6())
    labels = torch.tensor(1)  # on the CPU, as a checkpoint gives them

    def run(move):
        net = _net(parameterization == "energy")
        if move is to_foreign:
            net = net.to(FOREIGN)
        field = network_field(net, EDM(), parameterization)
        cond = field.with_options(labels=labels)
        guided = ClassifierFreeGuidance(cond, field, weight=1.5)
        y = move(x)
        values = (*_field_values(field, y, 1.0), *_field_values(guided, y, 1.0))
        if parameterization == "energy":
            values += field.score_and_log_prob(y, 1.0)
        return values

    assert_same_on_foreign(*on_both(run), parameterization)
