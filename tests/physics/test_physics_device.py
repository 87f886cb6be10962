"""Molecular dynamics follows the walkers' device: potentials, forces read from a field, and BAOAB run on
walkers on a second device (``_foreign``: another device's tensors with the CPU's values, checked as
CUDA checks them) give the CPU's trajectories bit for bit, there, with the noise drawn on the generator's
device and each potential's constants moved once."""

from __future__ import annotations

import pytest
import torch

from _foreign import assert_same_on_foreign, on_both
from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import VP
from scoredyn.core.targets import mog6
from scoredyn.physics import (
    DoubleWell2D,
    DoubleWellPairs,
    LennardJones,
    MullerBrown,
    baoab,
    field_force,
    multi_sigma_force,
)

POTENTIALS = {"double-well": DoubleWell2D, "muller-brown": MullerBrown, "dw4": DoubleWellPairs, "lj13": LennardJones}


@pytest.mark.parametrize("name", list(POTENTIALS))
def test_potentials_and_md_follow_the_walkers(name):
    potential = POTENTIALS[name]()
    x0 = 0.3 * torch.randn(4, potential.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x0 = x0 + torch.arange(potential.dim, dtype=torch.float64)  # pairs apart
    com = getattr(potential, "n_particles", None)

    def run(move):
        x = move(x0)
        md = baoab(
            potential.force,
            x,
            dt=1e-3,
            friction=1.0,
            kT=1.0,
            n_steps=3,
            remove_com=com,
            generator=torch.Generator().manual_seed(1),
        )
        return potential.energy(x), potential.force(x), md.x, md.final.v

    assert_same_on_foreign(*on_both(run), name)


def test_forces_read_from_a_field_follow_the_walkers():
    field = AnalyticField(mog6(), VP())
    x0 = mog6().sample(6, torch.Generator().manual_seed(2))

    def run(move):
        x = move(x0)
        one, many = field_force(field, 0.1, kT=1.0), multi_sigma_force(field, [0.1, 0.3], kT=1.0, walkers=3)
        md = baoab(many, x, dt=1e-3, friction=1.0, kT=1.0, n_steps=2, generator=torch.Generator().manual_seed(3))
        return one(x), many(x), md.x

    assert_same_on_foreign(*on_both(run), "field forces")


@pytest.mark.parametrize("name", ["muller-brown", "dw4"])
def test_a_potentials_constants_reach_the_device_once(name):
    dim = POTENTIALS[name]().dim
    x0 = torch.randn(4, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(4))

    def copies(calls: int) -> list:
        made, potential = [], POTENTIALS[name]()

        def run(move):
            x = move(x0)
            return [potential.force(x) for _ in range(calls)]

        on_both(run, made)
        return [shape for to_device, shape in made if to_device]

    assert copies(5) == copies(1)
