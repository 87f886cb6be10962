"""The samplers' precomputed coefficients (``Field.at_times``) against the per-step formulation,
and the compiled network against eager (network samplers)."""

from __future__ import annotations

import pytest
import torch

from scoredyn.app.bench.samplers import PerStep, measure, small_field
from scoredyn.core.fields import AnalyticField, CoefficientTable, CountingField, NetworkField, OnProcess
from scoredyn.core.processes import EDM, VP, DDPMSchedule
from scoredyn.core.targets import mog6
from scoredyn.learning import build_net
from scoredyn.samplers import (
    ddim,
    ddpm_grid,
    dpm_solver_2m,
    edm_heun,
    karras_grid,
    ode,
    reverse_sde,
    uniform_grid,
    unipc,
)

RUNS = {
    "unipc": (unipc, {}),
    "dpm-solver-2m": (dpm_solver_2m, {}),
    "ode-heun": (ode, {"method": "heun"}),
    "ode-rk4": (ode, {"method": "rk4"}),
    "ddim-eta1": (ddim, {"eta": 1.0}),
    "edm-heun-churn": (edm_heun, {"S_churn": 2.0}),
    "sde": (reverse_sde, {"lam": 1.0}),
}


def _net(dtype=torch.float64, seed=0) -> torch.nn.Module:
    """A small MLP with random weights everywhere (the zero-initialised last layer would make
    every prediction 0 and the comparison empty)."""
    g = torch.Generator().manual_seed(seed)
    net = build_net("mlp", 2, 0, hidden=32, depth=2)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return net.to(dtype).eval().requires_grad_(False)


def _grid(process, steps):
    if isinstance(process, DDPMSchedule):
        return ddpm_grid(process, steps)
    return karras_grid(process, steps) if isinstance(process, EDM) else uniform_grid(process, steps)


def _run(name, field, x, grid):
    fn, kw = RUNS[name]
    with torch.no_grad():
        return fn(field, x, grid, generator=torch.Generator().manual_seed(3), **kw)


FIELDS = {
    # own process; a VP model read on EDM and on the discrete DDPM schedule (the time map)
    "network-vp": lambda: (NetworkField(_net(), VP(), "v"), VP()),
    "network-on-edm": lambda: (OnProcess(NetworkField(_net(), VP(), "eps"), EDM()), EDM()),
    "network-on-ddpm": lambda: (OnProcess(NetworkField(_net(), VP(), "x0"), DDPMSchedule()), DDPMSchedule()),
    "exact-edm": lambda: (AnalyticField(mog6(), EDM()), EDM()),
}


@pytest.mark.parametrize("field_name", list(FIELDS))
@pytest.mark.parametrize("name", list(RUNS))
def test_precomputed_coefficients_take_the_per_step_path(name, field_name):
    # same float64 operations on the same numbers: equal to rounding (observed bit-identical);
    # 1e-12 relative to the particles' scale leaves room for a different vector math library only
    field, process = FIELDS[field_name]()
    grid = _grid(process, 8)
    if name == "ode-rk4" and field_name.startswith("network"):
        grid = grid[:-1]  # rk4's last stage at sigma = 0 needs the score there: a network has none
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3.0
    fast, plain = _run(name, field, x, grid), _run(name, PerStep(field), x, grid)
    assert fast.nfe == plain.nfe
    assert torch.isfinite(fast.x).all()
    scale = float(plain.x.abs().max())
    assert (fast.x - plain.x).abs().max() <= 1e-12 * scale, (fast.x - plain.x).abs().max()


def test_float32_network_is_unchanged_bit_for_bit():
    # a float32 net: a coefficient one ulp off would flip float32 roundings of the net's input
    field = OnProcess(NetworkField(_net(torch.float32), VP(), "v"), EDM())
    grid = karras_grid(EDM(), 10)
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(2)) * 5.0
    assert torch.equal(_run("ode-heun", field, x, grid).x, _run("ode-heun", PerStep(field), x, grid).x)


def test_coefficient_table_rows_are_the_process_values():
    process = VP()
    grid = uniform_grid(process, 20)
    table = CoefficientTable(process, grid)
    for t in grid[[0, 7, 19, 20]]:
        row = table(t)
        for name in ("alpha", "sigma", "d_alpha", "d_sigma", "d_sigma2", "f", "g2"):
            want = getattr(process, name)(t)
            assert torch.allclose(getattr(row, name), want, rtol=1e-15, atol=0.0), name
    # a time off the grid is computed on the spot, and kept
    t = torch.tensor(0.123456, dtype=torch.float64)
    assert torch.equal(table(t).alpha, process.alpha(t))
    assert table(t) is table(t)


def test_at_times_leaves_the_field_alone_and_counts_into_the_caller():
    field = NetworkField(_net(), VP(), "v")
    outer = CountingField(field)
    grid = uniform_grid(VP(), 6)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    result = _run("unipc", outer, x, grid)
    assert field._table is None  # the sampler prepared a copy
    assert result.nfe == outer.nfe == 6


def test_compiled_network_matches_eager():
    # one torch.compile (~10-30 s on 2 cores); float32 net: Inductor's fused kernels reorder
    # float32 sums, so agreement is to float32 rounding amplified over 6 steps (1e-5 of the scale)
    net = _net(torch.float32, seed=5)
    eager = NetworkField(net, VP(), "v")
    compiled = NetworkField(net, VP(), "v", compile=True)
    grid = uniform_grid(VP(), 6)
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(6))
    a, b = _run("unipc", eager, x, grid).x, _run("unipc", compiled, x, grid).x
    assert (a - b).abs().max() <= 1e-5 * float(a.abs().max()), (a - b).abs().max()


def test_compile_argument_is_checked():
    with pytest.raises(ValueError, match="compile"):
        NetworkField(_net(), VP(), "v", compile=1)


def test_overhead_benchmark_measures_one_sampler():
    m = measure("dpm-solver-2m", small_field(), 4, 3, "cpu", repeats=1)
    assert m["nfe"] == 3
    assert all(m[k] > 0 for k in ("fast", "plain", "net"))
