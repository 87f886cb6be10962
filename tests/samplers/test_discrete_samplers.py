"""DDPM, DDIM, DPM-Solver++(2M) and UniPC against exact answers from the analytic mixture field.

- Statistics: each sampler, from the exact start, reaches the Monte-Carlo floor (mode TV and energy
  distance within 2x of the distance between two independent exact sample sets of the same size).
- Exact ODE solution: for a Gaussian target the probability-flow ODE is solved in closed form, so
  the deterministic samplers show their order (DDIM 1, DPM-Solver++(2M) 2, UniPC-2 3).
- Guardrails: finite at 1, 2, 5, 10 steps on several processes; error falls as steps grow;
  determinism; DDIM(eta=1) == DDPM(beta_tilde) with the same noise; NFE; validation.
"""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import EDM, VP, DDPMSchedule, Linear
from scoredyn.core.targets import GaussianMixture, mog6, mog10
from scoredyn.metrics import energy_distance, expected_null_floor, mc_floor, mode_tv
from scoredyn.samplers import (
    SampleResult,
    ddim,
    ddpm,
    ddpm_grid,
    dpm_solver_2m,
    karras_grid,
    log_snr_grid,
    start_distribution,
    uniform_grid,
    unipc,
)

N_STAT = 5000  # particles for the statistical checks
DETERMINISTIC = {"ddim": ddim, "dpm_solver_2m": dpm_solver_2m, "unipc": unipc}
_PROCESSES = {  # name -> (process, grid maker(process, steps))
    "ddpm": (DDPMSchedule, ddpm_grid),
    "edm": (EDM, karras_grid),
    "vp-cosine": (lambda: VP("cosine"), log_snr_grid),
    "linear": (Linear, uniform_grid),
}


def _start(process, grid, target, n, seed):
    """Exact samples of p_t at grid[0] (a mixture, sampled exactly)."""
    dist = start_distribution("exact", process, grid[0], target=target)
    return dist.sample(n, torch.Generator().manual_seed(seed))


def _run(name, field, x, grid, seed=0):
    if name.startswith("ddpm"):
        variance = "beta" if name.endswith("beta") else "beta_tilde"
        return ddpm(field, x, grid, variance=variance, generator=torch.Generator().manual_seed(seed))
    return DETERMINISTIC[name](field, x, grid)


# --- statistics: the Monte-Carlo floor -----------------------------------------------------------


_TARGETS = {"mog6": mog6, "mog10": mog10}


@pytest.fixture(scope="module")
def reference_sets():
    """Per target: three exact sets of N_STAT to compare with, and the two floors.

    The energy floor is the exact mean of the energy distance between two independent exact sets
    of N_STAT (``expected_null_floor``; what an average over many pairs converges to): single
    pairs scatter from 0.3x to 2.2x of it on mog6, so an average of three pairs is too noisy to
    serve as the yardstick. The mode-TV floor is the mean over eight independent pairs.
    """
    out = {}
    for name, make in _TARGETS.items():
        target = make()
        gen = torch.Generator().manual_seed(1000)
        refs = [target.sample(N_STAT, gen) for _ in range(3)]
        ed_floor = expected_null_floor("energy", target, N_STAT, N_STAT, generator=gen).mean
        tv_floor = mc_floor(partial(mode_tv, mixture=target), target.sample, N_STAT, repeats=8, generator=gen).mean
        out[name] = (target, refs, ed_floor, tv_floor)
    return out


_STAT_CASES = [
    ("mog6", "ddpm", "ddpm", 1000),
    ("mog6", "ddpm", "ddim", 100),
    ("mog6", "ddpm", "dpm_solver_2m", 25),
    ("mog6", "ddpm", "unipc", 25),
    ("mog10", "ddpm", "ddpm", 1000),
    ("mog10", "ddpm", "ddim", 100),
    ("mog10", "ddpm", "dpm_solver_2m", 25),
    ("mog10", "ddpm", "unipc", 25),
    ("mog6", "edm", "ddpm", 250),
    ("mog6", "edm", "ddim", 100),
    ("mog6", "edm", "dpm_solver_2m", 25),
    ("mog6", "edm", "unipc", 25),
]


@pytest.mark.parametrize("target_name, proc_name, sampler, steps", _STAT_CASES)
def test_reaches_monte_carlo_floor(reference_sets, target_name, proc_name, sampler, steps):
    # An exact sampler's output is one more independent exact set, so its distance to fresh exact
    # sets (averaged over three) is itself a floor draw; 2x the floor is the allowance for the
    # spread of that draw, and a biased sampler (wrong weights, blurred modes) exceeds it.
    target, refs, ed_floor, tv_floor = reference_sets[target_name]
    make_process, make_grid = _PROCESSES[proc_name]
    process = make_process()
    grid = make_grid(process, steps)
    x = _start(process, grid, target, N_STAT, seed=7)
    y = _run(sampler, AnalyticField(target, process), x, grid, seed=11).x
    assert torch.isfinite(y).all()
    ed = sum(energy_distance(y, r) for r in refs) / len(refs)
    tv = sum(mode_tv(y, r, target) for r in refs) / len(refs)
    assert ed < 2 * ed_floor, f"energy distance {ed:.2e} vs floor {ed_floor:.2e}"
    assert tv < 2 * tv_floor, f"mode TV {tv:.3f} vs floor {tv_floor:.3f}"


# --- exact ODE solution for a Gaussian: orders of convergence ------------------------------------

_VAR = torch.tensor([1.0, 0.25], dtype=torch.float64)
_MU = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
_GAUSS = GaussianMixture([1.0], _MU, torch.diag(_VAR)[None], name="gauss")


def _exact_ode_end(process, t0, x):
    """Probability-flow ODE from (x, t0) to sigma = 0 for N(mu, diag(c)): in the scaled variable
    x / alpha and sigma_hat = sigma / alpha each coordinate obeys the EDM ODE, whose solution is
    mu + sqrt(c / (c + sigma_hat^2)) (x / alpha - mu)."""
    a, s = float(process.alpha(t0)), float(process.sigma(t0))
    return _MU + torch.sqrt(_VAR / (_VAR + (s / a) ** 2)) * (x / a - _MU)


_ORDER_CASES = [
    ("ddim", {}, 1),
    ("dpm_solver_2m", {}, 2),
    ("unipc", {}, 3),  # UniC-p raises UniP-p's order p by one (Zhao et al. 2023, Theorem 3.1)
    ("unipc", {"variant": "bh1"}, 3),
    ("unipc", {"order": 1}, 2),
]


@pytest.mark.parametrize("sampler, knobs, order", _ORDER_CASES)
@pytest.mark.parametrize("make_process", [EDM, VP], ids=["edm", "vp"])
def test_order_of_convergence_on_exact_ode(sampler, knobs, order, make_process):
    # Uniform steps in lambda (log_snr_grid) at 32, 64, 128 steps: the observed rate
    # log2(e_S / e_2S) is within 0.25 of the method's order (measured: DDIM 0.99-1.00,
    # DPM-Solver++(2M) 1.99-2.02, UniPC-2 3.00-3.07 (bh2) and 3.11-3.17 (bh1), UniPC-1 2.01 (bh2)
    # and 2.10-2.20 (bh1)). The last step, from sigma_hat = 0.002 to 0, adds an S-independent
    # error ~ sigma_hat^2 / (2c) ~ 1e-5, below the smallest error used here (~1e-4).
    process = make_process()
    field = AnalyticField(_GAUSS, process)
    errors = []
    for steps in (32, 64, 128):
        grid = log_snr_grid(process, steps)
        x = _start(process, grid, _GAUSS, 200, seed=0)
        y = DETERMINISTIC[sampler](field, x, grid, **knobs).x
        errors.append(float((y - _exact_ode_end(process, grid[0], x)).abs().max()))
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(abs(r - order) < 0.25 for r in rates), (errors, rates)


# --- guardrails ----------------------------------------------------------------------------------

_ALL = ["ddpm", "ddpm_beta", "ddim", "dpm_solver_2m", "unipc"]


@pytest.mark.parametrize("proc_name", list(_PROCESSES))
@pytest.mark.parametrize("sampler", _ALL)
def test_few_steps_finite_and_nfe(proc_name, sampler):
    make_process, make_grid = _PROCESSES[proc_name]
    process = make_process()
    field = AnalyticField(mog6(), process)
    for steps in (1, 2, 5, 10):
        grid = make_grid(process, steps)
        x = _start(process, grid, field.target, 64, seed=steps)
        result = _run(sampler, field, x, grid)
        assert isinstance(result, SampleResult)
        assert torch.isfinite(result.x).all(), (steps, result.x)
        assert result.nfe == len(grid) - 1  # one field evaluation per step, correctors included


@pytest.mark.parametrize("knobs", [{"variant": "bh1"}, {"order": 1}, {"order": 1, "variant": "bh1"}])
def test_unipc_variants_finite_into_sigma_zero(knobs):
    # B(h) = h is infinite on the step into sigma = 0; ours lands on x0hat there instead
    process = DDPMSchedule()
    field = AnalyticField(mog6(), process)
    for steps in (1, 2, 5, 10):
        grid = ddpm_grid(process, steps)
        result = unipc(field, _start(process, grid, field.target, 64, seed=0), grid, **knobs)
        assert torch.isfinite(result.x).all() and result.nfe == steps


@pytest.mark.parametrize("proc_name", ["ddpm", "edm"])
@pytest.mark.parametrize("sampler", list(DETERMINISTIC))
def test_deterministic_error_falls_with_steps(proc_name, sampler):
    # Reference: UniPC with 1000 steps (it agrees with DPM-Solver++(2M) at 1000 steps to 1e-3 in
    # the worst particle). The error is the mean particle distance (the worst particle may switch
    # modes between step counts).
    make_process, make_grid = _PROCESSES[proc_name]
    process = make_process()
    field = AnalyticField(mog6(), process)
    x = _start(process, make_grid(process, 1), field.target, 300, seed=0)
    reference = unipc(field, x, make_grid(process, 1000)).x
    errors = [
        float((DETERMINISTIC[sampler](field, x, make_grid(process, s)).x - reference).norm(dim=1).mean())
        for s in (2, 5, 10, 25, 100)
    ]
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False)), errors
    # at 100 steps the orders show (measured ddpm / edm: ddim 0.08 / 0.12, dpm 2e-3 / 1.1e-2,
    # unipc 2e-4 / 1.1e-3); bounds at ~2x the worse of the two
    assert errors[-1] < {"ddim": 0.25, "dpm_solver_2m": 0.025, "unipc": 2.5e-3}[sampler], errors


@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
def test_ddpm_energy_distance_falls_with_steps(variance):
    # mog6, N = 2000; measured ED 3.8, 0.7, 0.3, 0.08, 0.015, 0.005 at 1..100 steps (floor 0.007):
    # each step up in the ladder lowers it by far more than its Monte-Carlo spread.
    process = DDPMSchedule()
    field = AnalyticField(mog6(), process)
    fresh = field.target.sample(2000, torch.Generator().manual_seed(9))
    eds = []
    for steps in (1, 2, 10, 100):
        grid = ddpm_grid(process, steps)
        x = _start(process, grid, field.target, 2000, seed=1)
        y = ddpm(field, x, grid, variance=variance, generator=torch.Generator().manual_seed(3)).x
        eds.append(energy_distance(y, fresh))
    assert all(a > b for a, b in zip(eds, eds[1:], strict=False)), eds
    assert eds[-1] < 0.02


@pytest.mark.parametrize("sampler", list(DETERMINISTIC))
def test_deterministic_samplers_need_no_generator(sampler):
    process = DDPMSchedule()
    field = AnalyticField(mog6(), process)
    grid = ddpm_grid(process, 10)
    x = _start(process, grid, field.target, 100, seed=0)
    x_before = x.clone()
    first = DETERMINISTIC[sampler](field, x, grid).x
    torch.manual_seed(12345)  # the global RNG must play no part
    torch.randn(7)
    second = DETERMINISTIC[sampler](field, x, grid).x
    assert torch.equal(first, second)
    assert torch.equal(x, x_before)  # the start is not mutated


@pytest.mark.parametrize("steps", [1000, 50, 7])
def test_ddim_eta_one_equals_ddpm_beta_tilde(steps):
    # eta = 1 makes DDIM's step the posterior draw: sqrt(sigma_s^2 - c^2) eps_hat + alpha_s x0hat is
    # algebraically the posterior mean, and c the posterior std. Same generator seed -> same draws;
    # the two differ only by float64 rounding of two algebraically equal expressions.
    process = DDPMSchedule()
    field = AnalyticField(mog6(), process)
    grid = ddpm_grid(process, steps)  # 1000: consecutive integer steps; 50, 7: strided
    x = _start(process, grid, field.target, 200, seed=0)
    a = ddim(field, x, grid, eta=1.0, generator=torch.Generator().manual_seed(4)).x
    b = ddpm(field, x, grid, variance="beta_tilde", generator=torch.Generator().manual_seed(4)).x
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_stochastic_samplers_repeat_with_the_same_seed():
    process = DDPMSchedule()
    field = AnalyticField(mog6(), process)
    grid = ddpm_grid(process, 20)
    x = _start(process, grid, field.target, 100, seed=0)
    runs = [ddpm(field, x, grid, generator=torch.Generator().manual_seed(s)).x for s in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


@pytest.mark.parametrize("sampler", _ALL)
def test_path_callback_and_dtype(sampler):
    process = EDM()
    field = AnalyticField(mog6(), process)
    grid = karras_grid(process, 6)
    x = _start(process, grid, field.target, 32, seed=0).to(torch.float32)
    seen = []
    if sampler.startswith("ddpm"):
        result = ddpm(
            field,
            x,
            grid,
            variance="beta" if sampler.endswith("beta") else "beta_tilde",
            generator=torch.Generator().manual_seed(0),
            callback=seen.append,
            return_path=True,
        )
    else:
        result = DETERMINISTIC[sampler](field, x, grid, callback=seen.append, return_path=True)
    assert result.x.dtype == torch.float32
    assert result.path.shape == (len(grid), 32, 2)
    assert torch.equal(result.path[0], x) and torch.equal(result.path[-1], result.x)
    assert [info.i for info in seen] == list(range(len(grid) - 1))
    assert [info.t for info in seen] == pytest.approx(grid[1:].tolist())


def test_validation():
    process = DDPMSchedule()
    field = AnalyticField(mog6(), process)
    grid = ddpm_grid(process, 5)
    x = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="eta"):
        ddim(field, x, grid, eta=1.5)
    with pytest.raises(ValueError, match="eta"):
        ddim(field, x, grid, eta=-0.1)
    with pytest.raises(ValueError, match="variance"):
        ddpm(field, x, grid, variance="learned")
    with pytest.raises(ValueError, match="order"):
        unipc(field, x, grid, order=4)
    with pytest.raises(ValueError, match="variant"):
        unipc(field, x, grid, variant="bh3")
    for fn in (ddpm, ddim, dpm_solver_2m, unipc):
        with pytest.raises(ValueError, match="descending"):
            fn(field, x, grid.flip(0))
