"""Grids at their edges, against independent answers: the annealing ladder with one and two levels,
the VE noise-level grids that end on ``t_min`` (where bisection lands within rounding of it), the
DDPM timestep spacings against diffusers' own schedulers, and what a callback of the Langevin
samplers is told after each level (the step index, the time and the particles, each hand-computed).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import EDM, VE, VP, DDPMSchedule
from scoredyn.core.targets import GaussianMixture
from scoredyn.samplers import (
    LADDER_SIGMA_MAX,
    LADDER_SIGMA_MIN,
    StepInfo,
    annealed_langevin,
    ddpm_grid,
    geometric_sigma_grid,
    karras_grid,
    langevin,
    log_snr_grid,
)

F64 = torch.float64


# --- the annealing ladder (Song & Ermon 2019): sigma_i = sigma_max (sigma_min / sigma_max)^(i / (L - 1)) -------


def vp_t_of_sigma_hat(sigma_hat: float) -> float:
    """VP-linear: ``sigma_hat^2 = 1 / alpha^2 - 1 = exp(B(t)) - 1`` with ``B(t) = 0.1 t + 19.9 t^2 / 2``
    (Song et al. 2021, eq. 33 with beta_min = 0.1, beta_max = 20): the positive root of a quadratic."""
    a, b, c = 19.9 / 2, 0.1, -math.log1p(sigma_hat**2)
    return (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)


def test_ladder_defaults_are_10_and_0_05():
    assert (LADDER_SIGMA_MAX, LADDER_SIGMA_MIN) == (10.0, 0.05)


def test_a_ladder_of_one_level_is_its_top():
    """``L = 1``: the one level is ``sigma_max`` (the exponent ``i / max(L - 1, 1)`` is 0, not 0 / 0)."""
    # EDM: t = sigma_hat; 1e-15 relative: EDM's closed-form inverse, exp(-log(10)) rounds by an ulp or two
    np.testing.assert_allclose(geometric_sigma_grid(EDM(), 1).numpy(), [10.0], rtol=1e-15)
    np.testing.assert_allclose(geometric_sigma_grid(EDM(), 1, sigma_max=3.0, sigma_min=0.2).numpy(), [3.0],
                               rtol=1e-15)  # fmt: skip
    # VP: bisection of lambda(t) to float64 resolution; 1e-12 relative covers it
    np.testing.assert_allclose(geometric_sigma_grid(VP(), 1).numpy(), [vp_t_of_sigma_hat(10.0)], rtol=1e-12)


def test_a_ladder_of_two_levels_is_its_two_ends():
    np.testing.assert_allclose(geometric_sigma_grid(EDM(), 2).numpy(), [10.0, 0.05], rtol=1e-15)
    grid = geometric_sigma_grid(VP(), 2, sigma_max=4.0, sigma_min=0.3)
    np.testing.assert_allclose(grid.numpy(), [vp_t_of_sigma_hat(4.0), vp_t_of_sigma_hat(0.3)], rtol=1e-12)
    # three levels: the geometric middle sqrt(sigma_max sigma_min)
    np.testing.assert_allclose(geometric_sigma_grid(EDM(), 3, sigma_max=8.0, sigma_min=0.5).numpy(),
                               [8.0, 2.0, 0.5], rtol=1e-15)  # fmt: skip


# --- VE's noise-level grids end on t_min ------------------------------------------------------------------


def ve_t(sigma: np.ndarray, sigma_min: float = 0.01, sigma_max: float = 50.0) -> np.ndarray:
    """VE: ``sigma = sigma_min (sigma_max / sigma_min)^t`` (Song et al. 2021, eq. 30), inverted."""
    return np.log(sigma / sigma_min) / math.log(sigma_max / sigma_min)


def karras_sigmas(smin: float, smax: float, n: int, rho: float = 7.0) -> np.ndarray:
    """Karras et al. 2022, eq. 5: ``(smax^(1/rho) + i/(n-1) (smin^(1/rho) - smax^(1/rho)))^rho``."""
    i = np.arange(n) / (n - 1)
    return (smax ** (1 / rho) + i * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho


def test_ve_grids_end_exactly_on_t_min():
    """VE never reaches ``sigma = 0``, so its grids hold ``steps + 1`` positive levels from ``sigma_max``
    down to ``sigma(t_min) = sigma_min``, with no zero appended. The time of that floor comes out of a
    bisection a few ulp above ``t_min``; the grid puts it on ``t_min`` itself, so the last step ends
    exactly on ``sigma_min``. The other times match the closed-form inverse to bisection accuracy
    (float64 resolution of ``t`` in [0, 1]: 1e-13 absolute is ample)."""
    ve = VE()
    assert float(ve.sigma_hat_to_t(torch.tensor(0.01, dtype=F64))) != 0.0  # the bisection's floor: not t_min
    steps = 6
    grid = karras_grid(ve, steps)
    assert grid.shape == (steps + 1,)
    assert float(grid[-1]) == 0.0 and float(ve.sigma(grid[-1])) == 0.01
    assert float(grid[0]) == 1.0  # t_start is t_max itself
    np.testing.assert_allclose(grid.numpy(), ve_t(karras_sigmas(0.01, 50.0, steps + 1)), rtol=0, atol=1e-13)
    grid = log_snr_grid(ve, 4)
    assert float(grid[-1]) == 0.0 and float(grid[0]) == 1.0
    np.testing.assert_allclose(grid.numpy(), ve_t(np.geomspace(50.0, 0.01, 5)), rtol=0, atol=1e-13)
    # only the floor is moved: a level above it keeps its time (sigma_min = 0.02 here)
    grid = karras_grid(ve, 3, sigma_min=0.02)
    assert float(grid[-1]) > 0.0
    np.testing.assert_allclose(grid.numpy(), ve_t(karras_sigmas(0.02, 50.0, 4)), rtol=0, atol=1e-13)
    # where sigma(t_min) = 0 (EDM: t = sigma) the zero end is appended after the smallest positive level
    edm = karras_grid(EDM(), 3)
    assert edm.shape == (4,) and float(edm[-1]) == 0.0
    np.testing.assert_allclose(edm[:-1].numpy(), karras_sigmas(0.002, 80.0, 3), rtol=1e-13)


# --- DDPM spacings against diffusers (Lin et al. 2024, Table 2) --------------------------------------------

# paper indexing: our time t is diffusers' timestep index t - 1, and the grid ends on t = 0 (clean data)
SPACINGS = ["leading", "trailing", "linspace"]


def diffusers_times(scheduler_cls, num_train: int, steps: int, spacing: str) -> np.ndarray:
    scheduler = scheduler_cls(num_train_timesteps=num_train, timestep_spacing=spacing)
    scheduler.set_timesteps(steps)
    return np.concatenate([scheduler.timesteps.numpy().astype(np.float64) + 1, [0.0]])


@pytest.mark.parametrize("spacing", SPACINGS)
def test_ddpm_grid_is_diffusers_timesteps(spacing):
    """At these step counts no spaced time falls on a rounding tie, so the spacings agree with
    diffusers' DDPM and DDIM schedulers whatever the floating-point path to ``x.5``."""
    diffusers = pytest.importorskip("diffusers")
    cases = [(1000, s) for s in (1, 2, 3, 7, 10, 20, 25, 50, 100, 250, 999, 1000)] + [(10, s) for s in range(1, 11)]
    for num_train, steps in cases:
        ours = ddpm_grid(DDPMSchedule(num_steps=num_train), steps, spacing).numpy()
        for cls in (diffusers.DDPMScheduler, diffusers.DDIMScheduler):
            np.testing.assert_array_equal(ours, diffusers_times(cls, num_train, steps, spacing),
                                          err_msg=f"{spacing} T={num_train} S={steps} {cls.__name__}")  # fmt: skip


def _mismatches(spacing: str, diffusers) -> list[tuple[int, int]]:
    bad = []
    for num_train in (37, 64, 100):
        process = DDPMSchedule(num_steps=num_train)
        for steps in range(1, num_train + 1):
            ours = ddpm_grid(process, steps, spacing).numpy()
            if not np.array_equal(ours, diffusers_times(diffusers.DDPMScheduler, num_train, steps, spacing)):
                bad.append((num_train, steps))
    for steps in (27, 31, 47, 48, 96, 112):  # T = 1000: ties of linspace (27, 31, 47) and trailing (48, 96, 112)
        if not np.array_equal(ddpm_grid(DDPMSchedule(), steps, spacing).numpy(),
                              diffusers_times(diffusers.DDPMScheduler, 1000, steps, spacing)):  # fmt: skip
            bad.append((1000, steps))
    return bad


@pytest.mark.parametrize(
    "spacing",
    [
        "leading",
        "trailing",
        "linspace",
    ],
)
def test_ddpm_grid_is_diffusers_timesteps_at_every_step_count(spacing):
    """Every step count of three small schedules and the tie cases of T = 1000. Where the exact value
    is a tie ``k + 1/2`` (e.g. ``999 * 13 / 26 = 499.5``, ``1000 - 3 * 1000 / 48 = 937.5``) diffusers
    rounds numpy's ``linspace`` / ``arange``, whose float64 values lie an ulp below the tie
    (499.49999999999994 -> 499), while ``torch.linspace`` / ``torch.arange`` give 499.50000000000006 /
    937.5 and round up: one timestep off. Matching diffusers there means computing these two spacings
    with numpy's ``linspace`` and ``arange`` as diffusers does."""
    diffusers = pytest.importorskip("diffusers")
    assert _mismatches(spacing, diffusers) == []


# --- what a Langevin callback is told after each level ----------------------------------------------------

MU = torch.tensor([0.4, -0.3], dtype=F64)
COV = torch.tensor([[0.5, 0.1], [0.1, 0.3]], dtype=F64)
X_START = torch.tensor([[1.0, 2.0], [-0.5, 0.25], [3.0, -1.0]], dtype=F64)


def gaussian_score(x: torch.Tensor, t: float) -> torch.Tensor:
    """EDM (alpha = 1, sigma = t): ``p_t = N(mu, Sigma + t^2 I)``, score ``-(Sigma + t^2 I)^{-1} (x - mu)``."""
    precision = torch.linalg.inv(COV + t * t * torch.eye(2, dtype=F64))
    return -(x - MU) @ precision.T


def hand_langevin(x: torch.Tensor, levels: list[tuple[float, float, int]], seed: int) -> list[torch.Tensor]:
    """``x <- x + eta s(x, t) + sqrt(2 eta) xi`` (Roberts & Tweedie 1996, eq. 1.3), ``xi`` the generator's
    float64 normals of x's shape in order; the particles after each ``(t, eta, steps)`` level."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for t, eta, steps in levels:
        for _ in range(steps):
            xi = torch.randn(x.shape, generator=g, dtype=F64)
            x = x + eta * gaussian_score(x, t) + math.sqrt(2 * eta) * xi
        out.append(x)
    return out


# float64: a few dozen operations of order-one numbers per particle; 1e-12 is far above their rounding
TOL = dict(rtol=1e-12, atol=1e-12)


def recorder():
    seen: list[tuple[int, float, torch.Tensor]] = []

    def callback(info: StepInfo) -> None:
        seen.append((info.i, info.t, info.x.clone()))

    return seen, callback


def test_annealed_langevin_tells_the_callback_each_level_index_time_and_particles():
    """Two levels of three steps (Song & Ermon 2019, Alg. 1, rule ``sigma2``: ``eta_i = 0.5 sigma_i^2``
    by default): after level ``i`` the callback gets ``StepInfo(i, t_i, x)`` with ``x`` the particles
    after ``3 (i + 1)`` kicks, and the path holds the start and the same particles."""
    target = GaussianMixture([1.0], MU[None], COV[None])
    field = AnalyticField(target, EDM())
    grid = torch.tensor([1.5, 0.4], dtype=F64)
    seen, callback = recorder()
    result = annealed_langevin(field, X_START, grid, steps_per_level=3, backend="eager",
                               generator=torch.Generator().manual_seed(11), callback=callback,
                               return_path=True)  # fmt: skip
    want = hand_langevin(X_START, [(1.5, 0.5 * 1.5**2, 3), (0.4, 0.5 * 0.4**2, 3)], seed=11)
    assert [(i, t) for i, t, _ in seen] == [(0, 1.5), (1, 0.4)]
    for (_, _, x), expected in zip(seen, want, strict=True):
        torch.testing.assert_close(x, expected, **TOL)
    torch.testing.assert_close(result.x, want[-1], **TOL)
    assert result.nfe == 6 and result.path.shape == (3, 3, 2)
    torch.testing.assert_close(result.path, torch.stack([X_START, *want]), **TOL)
    # a level at sigma = 0 has step size 0: skipped, no evaluations and no draws, but still reported
    seen, callback = recorder()
    to_zero = torch.tensor([1.5, 0.0], dtype=F64)
    result = annealed_langevin(field, X_START, to_zero, steps_per_level=3, backend="eager",
                               generator=torch.Generator().manual_seed(11), callback=callback)  # fmt: skip
    assert result.nfe == 3 and [(i, t) for i, t, _ in seen] == [(0, 1.5), (1, 0.0)]
    torch.testing.assert_close(result.x, want[0], **TOL)


def test_plain_langevin_tells_the_callback_the_index_of_each_levels_last_step():
    """A grid of two levels of three equal times: one kick per grid time at the fixed step size; the
    callback is called after each level with the grid index of its last step (2, then 5)."""
    target = GaussianMixture([1.0], MU[None], COV[None])
    field = AnalyticField(target, EDM())
    grid = torch.tensor([1.5, 1.5, 1.5, 0.4, 0.4, 0.4], dtype=F64)
    eta = 0.03
    seen, callback = recorder()
    result = langevin(field, X_START, grid, eta=eta, backend="eager", generator=torch.Generator().manual_seed(12),
                      callback=callback, return_path=True)  # fmt: skip
    want = hand_langevin(X_START, [(1.5, eta, 3), (0.4, eta, 3)], seed=12)
    assert [(i, t) for i, t, _ in seen] == [(2, 1.5), (5, 0.4)]
    for (_, _, x), expected in zip(seen, want, strict=True):
        torch.testing.assert_close(x, expected, **TOL)
    assert result.nfe == 6 and result.path.shape == (3, 3, 2)
    torch.testing.assert_close(result.path, torch.stack([X_START, *want]), **TOL)
    # levels of unequal length (2, 1, 3 steps): last-step indices 1, 2, 5
    seen, callback = recorder()
    uneven = torch.tensor([2.0, 2.0, 1.0, 0.5, 0.5, 0.5], dtype=F64)
    langevin(field, X_START, uneven, eta=eta, backend="eager", generator=torch.Generator().manual_seed(12),
             callback=callback)  # fmt: skip
    assert [(i, t) for i, t, _ in seen] == [(1, 2.0), (2, 1.0), (5, 0.5)]
