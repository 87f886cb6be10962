"""Our DDPM, DDIM, DPM-Solver++(2M) and UniPC against diffusers' schedulers, step for step.

diffusers is a test-only extra. Both run from the same start on the same timesteps with an exact
noise predictor built from ``AnalyticField(target, DDPMSchedule())``: diffusers' timestep index
``k`` is our time ``t = k + 1`` (paper indexing, ``abar_0 = 1``), so our grid is
``[k + 1 for k in scheduler.timesteps] + [0]``: every scheduler here ends at ``abar = 1``
(``set_alpha_to_one=True``, ``prev_t = -1``, ``final_sigmas_type="zero"``).

Two tiers:

- *exact schedule*: diffusers' float32 ``alphas_cumprod`` (DDPM, DDIM) or ``sigmas`` (DPM-Solver,
  UniPC) replaced by ours in float64, so any difference is in the algorithm. Tolerance 1e-9,
  except DPM-Solver, whose ``step`` casts the sample to float32 (1e-4: float32 rounding of
  O(10) particles, ~1e-6 per step, over up to 25 steps).
- *as shipped*: diffusers' own float32 schedule. Its ``abar`` differs from ours by up to 4e-7
  relative (``1 - abar`` by 1.7e-4 near t = 0; asserted below); pushed through ``x0hat = (x -
  sigma eps) / alpha`` (``alpha_T = 6e-3``) that moves particles of size ~10 by up to 1.1e-4
  over 25 steps (measured, DDIM and DDPM "trailing"). Tolerance 3e-4 absolute.
"""

from __future__ import annotations

import pytest
import torch

from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import DDPMSchedule
from scoredyn.core.targets import mog6, mog10
from scoredyn.samplers import ddim, ddpm, dpm_solver_2m, start_distribution, unipc
from scoredyn.samplers._steps import noise

diffusers = pytest.importorskip("diffusers")

PROCESS = DDPMSchedule()  # linear betas 1e-4 .. 0.02, T = 1000: diffusers' default schedule
N = 256
STEPS = [5, 10, 25]
TARGETS = {"mog6": mog6, "mog10": mog10}
TOL_EXACT = 1e-9
TOL_DPM_EXACT = 1e-4
TOL_SHIPPED = 3e-4


def _setup(target_name: str, scheduler, exact_schedule: bool):
    """Field, our grid, and the exact start at grid[0]; in the exact tier diffusers' float32
    schedule is replaced by ours (float64)."""
    field = AnalyticField(TARGETS[target_name](), PROCESS)
    ks = scheduler.timesteps.long()
    # the end: abar = 1 (t = 0), or abar_1 (t = 1) under final_sigmas_type="sigma_min"
    t_end = 1.0 if getattr(scheduler.config, "final_sigmas_type", "zero") == "sigma_min" else 0.0
    if exact_schedule:
        abar = PROCESS.alphas_cumprod
        if hasattr(scheduler, "sigmas"):  # DPM-Solver / UniPC step on sigma = sqrt((1 - abar) / abar)
            end = float(PROCESS.sigma_hat(t_end))
            sigmas = ((1 - abar[ks]) / abar[ks]).sqrt()
            scheduler.sigmas = torch.cat([sigmas, torch.tensor([end], dtype=torch.float64)])
        else:
            scheduler.alphas_cumprod = abar.clone()
    grid = torch.cat([ks.to(torch.float64) + 1, torch.tensor([t_end], dtype=torch.float64)])
    x = start_distribution("exact", PROCESS, grid[0], target=field.target)
    return field, grid, x.sample(N, torch.Generator().manual_seed(0))


def _drive(scheduler, field, x, step_kwargs=lambda i: {}):
    """diffusers' sampling loop with the exact eps-predictor (timestep k -> our t = k + 1)."""
    for i, k in enumerate(scheduler.timesteps):
        eps = field.eps(x, float(k) + 1.0)
        x = scheduler.step(eps, k, x, **step_kwargs(i)).prev_sample
    return x


def _assert_agree(theirs, ours, tol):
    assert theirs.dtype == ours.dtype == torch.float64
    torch.testing.assert_close(theirs, ours, rtol=0.0, atol=tol)


def test_float32_schedule_error_is_what_the_tolerance_assumes():
    abar32 = diffusers.DDPMScheduler().alphas_cumprod.to(torch.float64)
    abar = PROCESS.alphas_cumprod
    assert float((abar32 / abar - 1).abs().max()) < 1e-6  # measured 3.6e-7
    assert float(((1 - abar32) / (1 - abar) - 1).abs().max()) < 3e-4  # measured 1.7e-4


@pytest.mark.parametrize("target_name", list(TARGETS))
@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("exact_schedule", [True, False], ids=["exact", "shipped"])
def test_ddim(target_name, steps, spacing, eta, exact_schedule):
    # Not "linspace": there diffusers' DDIM steps to k - T // S, not to the next timestep of its
    # own list (e.g. 999 -> 899, then evaluates at 888), which is no descending grid.
    scheduler = diffusers.DDIMScheduler(set_alpha_to_one=True, clip_sample=False, timestep_spacing=spacing)
    scheduler.set_timesteps(steps)
    field, grid, x = _setup(target_name, scheduler, exact_schedule)
    ours = ddim(field, x, grid, eta=eta, generator=torch.Generator().manual_seed(1)).x
    # the same draws through variance_noise: ours draws one per step into sigma > 0 (not the last)
    draws = torch.Generator().manual_seed(1)
    feed = [noise(x, draws) for _ in range(steps - 1)] + [torch.zeros_like(x)]
    theirs = _drive(scheduler, field, x, lambda i: {"eta": eta, "variance_noise": feed[i]})
    _assert_agree(theirs, ours, TOL_EXACT if exact_schedule else TOL_SHIPPED)


@pytest.mark.parametrize("target_name", list(TARGETS))
@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("spacing", ["leading", "linspace", "trailing"])
@pytest.mark.parametrize("variance_type, variance", [("fixed_small", "beta_tilde"), ("fixed_large", "beta")])
@pytest.mark.parametrize("exact_schedule", [True, False], ids=["exact", "shipped"])
def test_ddpm(target_name, steps, spacing, variance_type, variance, exact_schedule):
    scheduler = diffusers.DDPMScheduler(clip_sample=False, variance_type=variance_type, timestep_spacing=spacing)
    scheduler.set_timesteps(steps)
    field, grid, x = _setup(target_name, scheduler, exact_schedule)
    # identical draws by seeding both: each takes one randn(x.shape) per noisy step, in order
    gen, gen_theirs = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    ours = ddpm(field, x, grid, variance=variance, generator=gen).x
    theirs = _drive(scheduler, field, x, lambda i: {"generator": gen_theirs})
    # diffusers adds noise whenever the timestep index k > 0, so on "trailing" (last k = T/S - 1)
    # it also noises the final step into abar = 1, where we add none: with variance 1 - abar_k
    # (fixed_large) or its 1e-20 clamp of the zero posterior variance (fixed_small). That draw is
    # the next one of our generator.
    k_last = int(scheduler.timesteps[-1])
    if k_last > 0:
        abar = scheduler.alphas_cumprod.to(torch.float64)
        var = float(1 - abar[k_last]) if variance_type == "fixed_large" else 1e-20
        ours = ours + var**0.5 * noise(x, gen)
    _assert_agree(theirs, ours, TOL_EXACT if exact_schedule else TOL_SHIPPED)


@pytest.mark.parametrize("target_name", list(TARGETS))
@pytest.mark.parametrize("steps", [1, 2, *STEPS])
@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
@pytest.mark.parametrize("exact_schedule", [True, False], ids=["exact", "shipped"])
def test_dpm_solver_2m(target_name, steps, spacing, exact_schedule):
    # solver_type "midpoint" (the default) is Lu et al.'s Algorithm 2; lower_order_final=True and
    # final_sigmas_type="zero" (defaults) make the last step first order, landing on x0hat.
    scheduler = diffusers.DPMSolverMultistepScheduler(
        algorithm_type="dpmsolver++", solver_order=2, timestep_spacing=spacing
    )
    scheduler.set_timesteps(steps)
    field, grid, x = _setup(target_name, scheduler, exact_schedule)
    theirs = _drive(scheduler, field, x)
    _assert_agree(theirs, dpm_solver_2m(field, x, grid).x, TOL_DPM_EXACT if exact_schedule else TOL_SHIPPED)


@pytest.mark.parametrize("target_name", list(TARGETS))
@pytest.mark.parametrize("steps", [1, 2, 3, *STEPS])
@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
@pytest.mark.parametrize("variant, final", [("bh2", "zero"), ("bh2", "sigma_min"), ("bh1", "sigma_min")])
@pytest.mark.parametrize("exact_schedule", [True, False], ids=["exact", "shipped"])
def test_unipc(target_name, steps, spacing, variant, final, exact_schedule):
    # Not bh1 with a final sigma of zero: diffusers' last step then multiplies B(h) = h = inf by a
    # zero correction and returns NaN (ours lands on x0hat there).
    scheduler = diffusers.UniPCMultistepScheduler(
        solver_type=variant,
        predict_x0=True,
        lower_order_final=True,
        final_sigmas_type=final,
        timestep_spacing=spacing,
    )
    scheduler.set_timesteps(steps)
    field, grid, x = _setup(target_name, scheduler, exact_schedule)
    theirs = _drive(scheduler, field, x)
    ours = unipc(field, x, grid, variant=variant).x
    _assert_agree(theirs, ours, TOL_EXACT if exact_schedule else TOL_SHIPPED)


@pytest.mark.parametrize("target_name", list(TARGETS))
@pytest.mark.parametrize("steps", [3, 4, 6, 10])
@pytest.mark.parametrize("variant", ["bh1", "bh2"])
def test_unipc_third_order(target_name, steps, variant):
    # UniPC-3 (the authors' choice for unconditional sampling), warm-up and lower_order_final as diffusers
    scheduler = diffusers.UniPCMultistepScheduler(
        solver_order=3, solver_type=variant, predict_x0=True, lower_order_final=True, final_sigmas_type="sigma_min"
    )
    scheduler.set_timesteps(steps)
    field, grid, x = _setup(target_name, scheduler, True)
    _assert_agree(_drive(scheduler, field, x), unipc(field, x, grid, order=3, variant=variant).x, TOL_EXACT)


@pytest.mark.parametrize("target_name", list(TARGETS))
@pytest.mark.parametrize("steps", [15, 25])
@pytest.mark.parametrize("exact_schedule", [True, False], ids=["exact", "shipped"])
def test_dpm_solver_2m_to_sigma_min(target_name, steps, exact_schedule):
    # Ending above sigma = 0 every step after the first is second order, as in diffusers from 15
    # steps on (below 15 its lower_order_final makes the last step first order; ours does not).
    scheduler = diffusers.DPMSolverMultistepScheduler(
        algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="sigma_min"
    )
    scheduler.set_timesteps(steps)
    field, grid, x = _setup(target_name, scheduler, exact_schedule)
    theirs = _drive(scheduler, field, x)
    tol = TOL_DPM_EXACT if exact_schedule else TOL_SHIPPED
    _assert_agree(theirs, dpm_solver_2m(field, x, grid).x, tol)


@pytest.mark.parametrize("target_name", list(TARGETS))
@pytest.mark.parametrize("steps", STEPS)
def test_dpm_solver_2m_is_unipc_predictor_alone(target_name, steps):
    # UniP-2 with B(h) = 1 - e^{-h} is DPM-Solver++(2M). diffusers' UniPC steps in float64 (its
    # DPM-Solver casts to float32), so with the corrector switched off it pins our DPM-Solver++(2M)
    # to float64 rounding.
    scheduler = diffusers.UniPCMultistepScheduler(
        solver_type="bh2", predict_x0=True, disable_corrector=list(range(steps))
    )
    scheduler.set_timesteps(steps)
    field, grid, x = _setup(target_name, scheduler, exact_schedule=True)
    _assert_agree(_drive(scheduler, field, x), dpm_solver_2m(field, x, grid).x, TOL_EXACT)
