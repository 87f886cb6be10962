"""Sequential Monte Carlo over noise levels: Z unbiased for 1 on the exact (normalized) mixture, log Z
shifted exactly by a constant added to the log-density, any start law corrected by the first weight, the
adaptive ladder's step at its target, and the final samples at the exact mode weights."""

import math
import sys

import pytest
import torch

from scoredyn.core.fields import AnalyticField, Field, NoDensityError
from scoredyn.core.processes import VP
from scoredyn.core.targets import GaussianMixture, mog6
from scoredyn.metrics import evaluate
from scoredyn.samplers import end_points_grid, smc, start_distribution, uniform_grid
from scoredyn.samplers.resampling import conditional_ess
from scoredyn.samplers.smc import SEARCH_TOLERANCE, group_count, next_time
from scoredyn.samplers.smc_kernels import flow_kernel


def run(target, n, seed=0, start=None, field=None, grid=None, **knobs):
    proc = VP()
    grid = end_points_grid(proc) if grid is None else grid
    start = start or start_distribution("standard", proc, grid[0], dim=target.dim)
    g = torch.Generator().manual_seed(seed)
    x = start.sample(n, generator=g)
    return smc(field or AnalyticField(target, proc), x, grid, start=start, generator=g, **knobs)


TWO = GaussianMixture([0.3, 0.7], [[-2.0, 0.0], [2.0, 1.0]], [[[0.5, 0.0], [0.0, 0.5]], [[0.8, 0.2], [0.2, 0.4]]])


@pytest.mark.parametrize("kernel", ["stay", "reverse", "flow"])
@pytest.mark.parametrize("seed", [0, 1])
def test_z_is_unbiased_for_the_normalized_mixture(seed, kernel):
    # a fixed ladder and a fixed step: the 400 groups are independent SMC runs, each Z_g unbiased for 1
    # (Del Moral 2004, thm 7.4.2) whatever the kernel, as long as its weight is right. |Z - 1| <= 5 se: a
    # false failure has probability below 1e-6 (t, 399 dof)
    r = run(TWO, 400 * 25, seed=seed, grid=uniform_grid(VP(), 10), adaptive=False, adapt=False, groups=400,
            steps_per_level=2, final_steps=0, eta_factor=0.1, kernel=kernel)  # fmt: skip
    z, se = math.exp(r.info["log_z"]), r.info["log_z_se"]
    assert r.info["groups"] == 400 and r.info["levels"] == 11
    assert 0.002 < se < 0.1  # the weights do vary (the test has power), and not wildly
    assert abs(z - 1.0) <= 5 * se * z


def test_a_wrong_kernel_weight_shows_in_log_z(monkeypatch):
    # the same test has the power to see a flow step without its Jacobian on mog6, whose flow spreads
    # the particles from N(0, I) over [-10, 10]^2: log Z then drifts by many se
    smc_module = sys.modules["scoredyn.samplers.smc"]  # the module (the package's ``smc`` is the function)

    def no_jacobian(*args):
        y, _ = flow_kernel(*args)
        return y, torch.zeros(y.shape[0], dtype=torch.float64)

    monkeypatch.setattr(smc_module, "flow_kernel", no_jacobian)
    r = run(mog6(), 400 * 25, seed=0, grid=uniform_grid(VP(), 10), adaptive=False, adapt=False, groups=400,
            steps_per_level=2, final_steps=0, eta_factor=0.1, kernel="flow")  # fmt: skip
    assert abs(r.info["log_z"]) > 10 * r.info["log_z_se"]


def test_any_start_law_is_corrected_by_the_first_weight():
    # particles from N(0, 3^2 I) instead of N(0, I): the first weight divides by the law they came from,
    # so log Z is still 0 (5 se; false failure below 1e-6 for a normal estimate)
    target = mog6()
    wide = GaussianMixture([1.0], [[0.0, 0.0]], [[[9.0, 0.0], [0.0, 9.0]]])
    r = run(target, 4000, start=wide, steps_per_level=3, final_steps=0)
    assert abs(r.info["log_z"]) <= 5 * r.info["log_z_se"]
    assert r.info["ess"][0] < 0.9  # the first weights were uneven: the correction did something


class Shifted(Field):
    """The exact field with ``log p_t`` shifted by ``3 + 2 t``: the same law, an unnormalized density."""

    has_density = True

    def __init__(self, field):
        self.inner, self.process = field, field.process

    def score(self, x, t):
        return self.inner.score(x, t)

    def score_and_log_prob(self, x, t):
        s, lp = self.inner.score_and_log_prob(x, t)
        return s, lp + 3.0 + 2.0 * float(t)


def test_a_constant_in_the_density_moves_log_z_by_the_constant_at_the_end():
    # the weights telescope: log Z picks up shift(t_end) = 3 (t_end = 0) and the normalized weights are
    # unchanged; a fixed ladder with no resampling keeps the two runs' random draws in step
    knobs = {"adaptive": False, "resample_below": 1e-12, "steps_per_level": 2, "final_steps": 5, "backend": "eager"}
    grid = uniform_grid(VP(), 8)
    shifted = run(TWO, 2000, seed=4, grid=grid, field=Shifted(AnalyticField(TWO, VP())), **knobs)
    exact = run(TWO, 2000, seed=4, grid=grid, **knobs)
    assert shifted.info["log_z"] - exact.info["log_z"] == pytest.approx(3.0, abs=1e-9)
    assert torch.allclose(shifted.x, exact.x, atol=1e-9)
    assert not any(exact.info["resampled"])


class ScoreOnly(Field):
    def __init__(self, field):
        self.inner, self.process = field, field.process

    def score(self, x, t):
        return self.inner.score(x, t)


def test_smc_needs_a_density():
    with pytest.raises(NoDensityError, match="smc needs a log-density"):
        run(mog6(), 20, field=ScoreOnly(AnalyticField(mog6(), VP())))


def test_next_time_hits_the_target_conditional_ess():
    # p_t = N(0, (1 + 10 t)^2): the increment of a step is a ratio of Gaussians; the returned step's CESS
    # is within the search tolerance of the target
    g = torch.Generator().manual_seed(0)
    x = 11.0 * torch.randn(4000, generator=g, dtype=torch.float64)

    def log_p(t):
        v = (1 + 10 * t) ** 2
        return -0.5 * x**2 / v - 0.5 * math.log(2 * math.pi * v)

    log_w = torch.zeros_like(x)
    for target in (0.9, 0.99):
        t_next = next_time(lambda t: log_p(t) - log_p(1.0), log_w, 1.0, 0.0, target, guess=1.0)
        assert 0.0 < t_next < 1.0
        deficit = 1 - conditional_ess(log_w, log_p(t_next) - log_p(1.0))
        assert (1 - SEARCH_TOLERANCE) * (1 - target) <= deficit <= (1 + SEARCH_TOLERANCE) * (1 - target)
    # the end qualifies at once when the law does not change
    assert next_time(lambda t: 0.0 * log_p(t), log_w, 1.0, 0.0, 0.99, guess=0.1) == 0.0


def test_group_count():
    assert group_count(2000, 20) == 20 and group_count(64, 20) == 16 and group_count(30, 20) == 15
    with pytest.raises(ValueError, match="equal groups"):
        group_count(7, 20)


def _energy_ratio_if_mode_weights_within(x, target, sds: float) -> float:
    """Assert each mode weight of ``x`` within ``sds`` binomial sd of the law's assignment probability;
    return the energy distance to the law over its floor."""
    e = evaluate(x, target, metrics=("mode_tv_exact", "energy_exact"))
    p = torch.tensor(e["target_weights"], dtype=torch.float64)
    sd = torch.sqrt(p * (1 - p) / x.shape[0])
    assert bool(((torch.tensor(e["mode_weights"], dtype=torch.float64) - p).abs() <= sds * sd).all())
    return e["energy_exact"]["ratio"]


def test_smc_reaches_the_mode_weights_and_reports_its_run():
    # N = 20000 on mog6, the particles staying between levels: each mode weight within 9 binomial sd of
    # the exact assignment probability (this SMC's spread is about 1.5x a fresh sample's, so 9 sd is
    # about 6 of its sd: false failure below 1e-8)
    target = mog6()
    r = run(target, 20_000, seed=0, steps_per_level=4, target_ess=0.99, kernel="stay")
    assert _energy_ratio_if_mode_weights_within(r.x, target, sds=9) < 3.0
    info = r.info
    assert len(info["ess"]) == info["levels"] == len(info["acceptance"]) == len(info["times"])
    assert info["times"][0] == 1.0 and info["times"][-1] == 0.0
    assert all(0 < e <= 1 for e in info["ess"]) and min(info["ess"]) >= 0.5 * 0.99 * 0.7  # resampled below 0.5
    expected_nfe = info["levels"] * (4 + 1) + 100 + math.ceil(info["search_nfe"])
    assert r.nfe == expected_nfe <= 1000


def test_smc_with_the_flow_kernel_reaches_the_mode_weights_in_few_levels():
    # the recipe's SMC (flow kernel, conditional ESS 0.999, 8 moves): its mode counts vary like a fresh
    # sample's (benchmarks/smc_mode_variance.py), so each weight within 6 binomial sd (false failure
    # below 1e-8); the near-even weights take the ladder in a few tens of levels, and the NFE counts one
    # score Jacobian a level
    target = mog6()
    r = run(target, 20_000, seed=0, steps_per_level=8, target_ess=0.999, final_steps=50, kernel="flow")
    assert _energy_ratio_if_mode_weights_within(r.x, target, sds=6) < 2.0
    info = r.info
    assert info["times"][-1] == 0.0 and info["levels"] < 60
    assert abs(info["log_z"]) <= 5 * info["log_z_se"]
    expected_nfe = info["levels"] * (8 + 1) + (info["levels"] - 1) + 50 + math.ceil(info["search_nfe"])
    assert r.nfe == expected_nfe <= 1000


def test_smc_with_the_reverse_kernel_reaches_sigma_zero():
    # the reverse kernel's steps shrink with sigma; the last stretch is taken by reweighting alone
    r = run(TWO, 2000, seed=1, steps_per_level=2, target_ess=0.99, final_steps=5, kernel="reverse")
    assert r.info["times"][-1] == 0.0 and r.info["levels"] < 200
    assert abs(r.info["log_z"]) <= 5 * r.info["log_z_se"]


def test_smc_refuses_an_unknown_kernel():
    with pytest.raises(ValueError, match="kernel must be one of stay, reverse, flow"):
        run(TWO, 20, kernel="teleport")
