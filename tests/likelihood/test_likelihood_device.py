"""Likelihoods follow the data's device: the PF-ODE likelihood (exact divergence and Hutchinson), the
latent map, the DDPM bound and dequantization, run on data on a second device (``_foreign``: another
device's tensors with the CPU's values, checked as CUDA checks them), give the CPU's results bit for bit
there, with the probes and the noise drawn on the generator's device."""

from __future__ import annotations

import pytest
import torch

from _foreign import assert_same_on_foreign, on_both
from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import VP, DDPMSchedule
from scoredyn.core.targets import mog6
from scoredyn.likelihood import bits_per_dim, decode, dequantize, encode, interpolate, log_likelihood, variational_bound
from scoredyn.samplers import start_distribution

TARGET = mog6()


def _x(n: int = 6) -> torch.Tensor:
    return TARGET.sample(n, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_ode_likelihood_follows_the_data(divergence):
    process = VP()
    field = AnalyticField(TARGET, process)
    prior = start_distribution("exact", process, process.t_max, target=TARGET)
    x = _x()

    def run(move):
        r = log_likelihood(
            field,
            move(x),
            prior=prior,
            divergence=divergence,
            probes=2,
            rtol=1e-3,
            atol=1e-3,
            generator=torch.Generator().manual_seed(1),
        )
        return r.logp, r.logp_per_probe, r.nfe, r.prior_logp, r.delta_logp, r.z, bits_per_dim(r.logp, 2)

    assert_same_on_foreign(*on_both(run), divergence)


def test_latent_map_follows_the_data():
    field = AnalyticField(TARGET, VP())
    x = _x(3)

    def run(move):
        z = encode(field, move(x), rtol=1e-3, atol=1e-3)
        return (
            z,
            decode(field, z, rtol=1e-3, atol=1e-3),
            interpolate(field, move(x)[0], move(x)[1], 3, rtol=1e-3, atol=1e-3),
        )

    assert_same_on_foreign(*on_both(run), "latent map")


def test_the_ddpm_bound_and_dequantization_follow_the_data():
    schedule = DDPMSchedule(num_steps=8)
    field = AnalyticField(TARGET, VP())
    x = _x()
    lattice = torch.round(x.clamp(-1, 1) * 127.5 + 127.5) / 127.5 - 1.0

    def run(move):
        bound = variational_bound(field, move(x), schedule=schedule, generator=torch.Generator().manual_seed(2))
        return bound, dequantize(move(lattice), 256, torch.Generator().manual_seed(3))

    assert_same_on_foreign(*on_both(run), "vlb")
