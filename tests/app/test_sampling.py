"""Sampling by name: the recipes' defaults (process, grid, start, knobs) are the ones the docs state,
checked against formulas written here, and the sources (an exact mixture, a trained model) are
resolved at the boundary."""

from __future__ import annotations

import math

import pytest
import torch

from scoredyn.app.registry import GRIDS, SAMPLERS, make_grid, nfe_for_steps, steps_for_nfe
from scoredyn.app.sampling import sample
from scoredyn.app.sources import ExactSource, as_source
from scoredyn.core.processes import EDM, VP
from scoredyn.core.targets import mog6


def _levels(name: str, steps: int, levels: int) -> list[float]:
    """The times after each level (callback payloads) of one run of ``name`` on mog6."""
    seen: list[float] = []
    sample(mog6(), name, steps=steps, n=20, seed=0, levels=levels, callback=lambda info: seen.append(info.t))
    return seen


def test_the_annealed_ladder_is_geometric_from_10_to_0_05_on_edm():
    # Song & Ermon's ladder as the study uses it: sigma_i = 10 (0.05 / 10)^(i / (L - 1)), and on EDM t = sigma
    for name in ("annealed-langevin", "score-drift", "svgd"):
        assert SAMPLERS[name].process == "edm" and SAMPLERS[name].grid == "geometric" and SAMPLERS[name].per_level
        times = _levels(name, 1, 7)
        expected = [10.0 * (0.05 / 10.0) ** (i / 6) for i in range(7)]
        assert times == pytest.approx(expected, rel=1e-12)


def test_plain_langevin_runs_at_the_smallest_level_with_eta_half_its_variance():
    recipe = SAMPLERS["langevin"]
    assert recipe.grid == "constant" and recipe.kwargs == {"eta": pytest.approx(0.5 * 0.05**2, rel=1e-15)}
    grid = make_grid("constant", EDM(), 4)
    assert grid.tolist() == pytest.approx([0.05] * 4, rel=1e-12)
    result, settings = sample(mog6(), "langevin", steps=30, n=10, seed=1)
    assert result.nfe == 30 and settings["knobs"]["eta"] == pytest.approx(0.00125, rel=1e-15)
    assert settings["grid"] == "constant" and settings["start"] == "ladder"


def test_the_ladder_start_is_the_standard_normal_times_10():
    # N(0, 10^2 I) whatever the process: the sample variance of 4000 draws per coordinate has standard
    # error 100 sqrt(2 / 4000) = 2.2; |var - 100| < 10 (4.5 standard errors) fails with probability
    # below 1e-5 per coordinate, and a scale of 11 (variance 121) or 1 fails it
    for process in ("edm", "vp"):
        result, settings = sample(mog6(), "annealed-langevin", steps=1, n=4000, seed=2, levels=1, process=process,
                                  return_path=True)  # fmt: skip
        start = result.path[0]
        assert settings["start"] == "ladder"
        assert float(start.mean(0).abs().max()) < 4.5 * 10 / math.sqrt(4000)
        assert (start.var(0) - 100.0).abs().max() < 10.0


def test_diffusion_samplers_start_from_the_exact_noised_mixture():
    # the exact p_T of mog6 under VP at t_max = 1: mean alpha(1) m, covariance alpha^2 C + sigma^2 I
    result, settings = sample(mog6(), "unipc", steps=2, n=4000, seed=3, return_path=True)
    assert settings["start"] == "exact" and settings["process"] == "vp" and settings["grid"] == "uniform"
    vp = VP()
    a, s = float(vp.alpha(1.0)), float(vp.sigma(1.0))
    cov = a**2 * mog6().covariance() + s**2 * torch.eye(2, dtype=torch.float64)
    start = result.path[0]
    # 4000 draws of a near-standard normal: the mean's standard error is 0.016, the variance's 0.022
    torch.testing.assert_close(start.mean(0), a * mog6().mean(), rtol=0, atol=0.08)
    torch.testing.assert_close(torch.cov(start.T), cov, rtol=0, atol=0.12)


def test_sources_are_resolved_once_at_the_boundary():
    assert isinstance(as_source(mog6()), ExactSource)
    with pytest.raises(ValueError, match="can sample an exact GaussianMixture or a trained model"):
        as_source("mog6")
    with pytest.raises(ValueError, match="unknown grid"):
        make_grid("nope", EDM(), 3)
    assert set(GRIDS) == {"karras", "logsnr", "uniform", "ddpm", "geometric", "constant", "ends"}


def test_the_registry_counts_the_evaluations_each_sampler_spends():
    """``registry.nfe_for_steps`` (from each recipe's ``evals_per_step``) is the NFE the sampler reports, on
    its own grid into sigma = 0, for every sampler with a fixed step count; ``steps_for_nfe`` inverts it."""
    for name, recipe in SAMPLERS.items():
        if recipe.per_level or recipe.adaptive or name == "ode-adaptive":
            continue
        for steps in (3, 4):
            result, _ = sample(mog6(), name, steps=steps, n=5, seed=0)
            assert result.nfe == nfe_for_steps(name, steps), name
            assert steps_for_nfe(name, result.nfe) == steps, name
