"""Every sampler follows the particles' device: run on particles on a second device (``_foreign``: another
device's tensors with the CPU's values, checked as CUDA checks them), each gives the CPU's result bit for
bit, on that device, with the run's random draws made on the generator's device (the CPU) and moved.

The registry's samplers run with their recipes' knobs; plain Langevin, SVGD, MALA and SMC also with the
knobs the recipes leave at their defaults, and MALA with the fused density of ``density_evaluator``
(``torch``). Not covered: the fused backends of ``langevin_steps`` (``torch``, ``compile``, ``triton``:
``kernels.mixture_langevin`` draws its noise on the particles' device from the run's generator, which a
CPU generator cannot do), and ``compile``/``triton`` anywhere (compiled code does not run on the emulated
device); ``auto`` picks them only on CUDA.
"""

from __future__ import annotations

import pytest
import torch

from _foreign import assert_same_on_foreign, on_both
from scoredyn.app.registry import SAMPLERS, make_grid
from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import EDM, VP
from scoredyn.core.registry import resolve_process
from scoredyn.core.targets import mog6
from scoredyn.samplers import (
    annealed_mala,
    hilbert_index,
    langevin,
    multinomial_resample,
    score_drift,
    smc,
    start_distribution,
    svgd,
    systematic_resample,
)
from scoredyn.samplers.grid_tuning import GridAxis, gits_grid, refine_grid, teacher
from scoredyn.samplers.resampling import effective_sample_size, resample_groups

TARGET = mog6()
N = 16  # smc splits the particles into groups of at least 2


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _run(name: str, fn, x, grid, process, start_law, **knobs):
    """The sampler's result as plain values: particles, NFE, path, info, and every callback's particles."""
    seen = []
    kwargs = dict(SAMPLERS[name].kwargs) | knobs if name in SAMPLERS else dict(knobs)
    if name in SAMPLERS and SAMPLERS[name].per_level:
        kwargs["steps_per_level"] = 3
    if name in SAMPLERS and SAMPLERS[name].needs_start:
        kwargs["start"] = start_law
    field = AnalyticField(TARGET, process)
    r = fn(field, x, grid, generator=_gen(1), callback=lambda info: seen.append(info.x), return_path=True, **kwargs)
    return r.x, r.nfe, r.path, r.info, seen


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_registered_sampler_follows_the_particles(name):
    recipe = SAMPLERS[name]
    process = resolve_process(recipe.process)
    grid = make_grid(recipe.grid, process, 3, levels=3, **recipe.grid_kwargs)
    start_law = start_distribution(recipe.start, process, grid[0], target=TARGET)
    x = start_law.sample(N, _gen(0))
    here, far = on_both(lambda move: _run(name, recipe.fn, move(x), grid, process, start_law))
    assert_same_on_foreign(here, far, name)


@pytest.mark.parametrize(
    ("fn", "knobs"),
    [
        (langevin, {"eta": 0.01, "backend": "eager"}),
        (
            svgd,
            {
                "steps_per_level": 2,
                "langevin_noise": True,
                "bandwidth": "median",
                "normalization": "mass",
                "min_neighbours": 2.0,
                "backend": "torch",
            },
        ),
        (annealed_mala, {"steps_per_level": 2, "backend": "eager"}),
        (annealed_mala, {"steps_per_level": 2, "backend": "torch"}),  # the fused density (kernels)
        (
            smc,
            {
                "steps_per_level": 2,
                "final_steps": 2,
                "adaptive": False,
                "resampling": "multinomial",
                "order": "none",
                "groups": 4,
                "move": "langevin",
            },
        ),
        (smc, {"steps_per_level": 2, "final_steps": 2, "groups": 4, "kernel": "reverse"}),
        (smc, {"steps_per_level": 2, "final_steps": 2, "groups": 4, "kernel": "stay"}),
    ],
    ids=["langevin-eager", "svgd-knobs", "mala-eager", "mala-fused-density", "smc-multinomial-flow", "smc-reverse",
         "smc-stay"],
)
def test_particle_samplers_with_their_knobs_follow_the_particles(fn, knobs):
    process = EDM() if fn is not smc else VP()
    grid = torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64) if fn is not smc else torch.tensor([1.0, 0.5, 0.0])
    start_law = start_distribution("ladder" if fn is not smc else "standard", process, grid[0], target=TARGET)
    if fn is smc:
        knobs = knobs | {"start": start_law}
    x = start_law.sample(N, _gen(0))
    here, far = on_both(lambda move: _run(fn.__name__, fn, move(x), grid, process, start_law, **knobs))
    assert_same_on_foreign(here, far, fn.__name__)


def test_resampling_follows_the_particles():
    x = TARGET.sample(N, _gen(0))
    log_w = torch.linspace(-2.0, 1.0, N, dtype=torch.float64).reshape(2, -1)

    def run(move):
        lw, xs = move(log_w), move(x)
        return (
            systematic_resample(lw, _gen(2)),
            multinomial_resample(lw, _gen(3)),
            hilbert_index(xs),
            effective_sample_size(lw),
            resample_groups(lw, _gen(4), key=hilbert_index(xs).view(2, -1)),
        )

    assert_same_on_foreign(*on_both(run), "resampling")


@pytest.mark.parametrize("kind", ["exact", "moments", "standard", "ladder"])
def test_start_laws_sample_and_score_on_the_particles_device(kind):
    process = EDM()
    data = TARGET.sample(64, _gen(5))

    def run(move):
        law = start_distribution(
            kind,
            process,
            2.0,
            data=move(data) if kind == "moments" else None,
            target=TARGET if kind != "moments" else None,
        )
        y = move(law.sample(N, _gen(6)))
        return y, law.log_prob(y), law.score(y)

    assert_same_on_foreign(*on_both(run), kind)


def test_grid_tuning_follows_the_particles():
    process = VP()
    axis = GridAxis(process)
    rho = torch.linspace(0.0, 1.0, 6, dtype=torch.float64)
    field = AnalyticField(TARGET, process)
    x = start_distribution("exact", process, float(process.t_max), target=TARGET).sample(N, _gen(7))

    def run(move):
        teach = teacher(field, move(x), axis.grid(rho), tolerance=1e-5)
        chosen, cost = gits_grid(field, teach, rho, 2, rule="heun")
        found = refine_grid(lambda g: teach.path[-1] + 0.0 * g.sum(), teach.end, axis, chosen, evaluations=3)
        assert chosen.device.type == found[0].device.type == "cpu"  # grids stay on the CPU
        return teach.path, chosen.tolist(), cost, found[0].tolist(), found[2]

    assert_same_on_foreign(*on_both(run), "grid tuning")


def _copies_to_device(fn) -> list[tuple[int, ...]]:
    """The shapes of the tensors of one or more dimensions that ``fn(move)`` copied to the device."""
    copies = []
    on_both(fn, copies)
    return [shape for to_device, shape in copies if to_device and shape]


def test_the_exact_field_reaches_the_device_once_not_at_every_step():
    """At one noise level more steps copy nothing more to the device (no noise: the score drift)."""
    x = TARGET.sample(N, _gen(0))

    def copies(steps: int) -> list[tuple[int, ...]]:
        field, grid = AnalyticField(TARGET, EDM()), torch.tensor([1.0], dtype=torch.float64)
        return _copies_to_device(lambda move: score_drift(field, move(x), grid, steps_per_level=steps).x)

    once = copies(2)
    assert once, "the mixture's tensors must reach the device"
    assert copies(8) == once
