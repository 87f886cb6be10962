"""Grids tuned for a field, a sampler and a budget: the axis, the teacher, the local steps, GITS's
dynamic program against brute force, the continuous stage, and what a tuned grid buys on held-out
starts of an exact mixture."""

import itertools
import math

import numpy as np
import pytest
import torch

from scoredyn import AnalyticField
from scoredyn.core.processes import EDM, VE, VP
from scoredyn.core.targets import GaussianMixture, mog6
from scoredyn.samplers import ddim, edm_heun, start_distribution, unipc
from scoredyn.samplers._steps import heun_step
from scoredyn.samplers.grid_tuning import (
    SIGMA_HAT_MIN,
    GridAxis,
    _local_steps,
    _logits_from_points,
    _points_from_logits,
    cheapest_path,
    energy_gap,
    mean_distance,
    refine_grid,
    teacher,
    tune_grid,
)

F64 = torch.float64


def exact_starts(target, process, n, seed):
    law = start_distribution("exact", process, torch.tensor(float(process.t_max), dtype=F64), target=target)
    return law.sample(n, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("process", [VP(), EDM(), VE()], ids=["vp", "edm", "ve"])
def test_axis_ends_and_round_trip(process):
    """rho = 0 is t_max, rho = 1 the smallest level (sigma_hat_min, or the process's floor), linear in
    log-SNR in between; the grid ends at sigma = 0 where the process reaches it."""
    axis = GridAxis(process)
    assert float(axis.times(torch.zeros(1, dtype=F64))) == float(process.t_max)
    one = axis.times(torch.ones(1, dtype=F64))
    floor = float(process.sigma_hat(torch.tensor(float(process.t_min), dtype=F64)))
    assert float(process.sigma_hat(one)) == pytest.approx(max(SIGMA_HAT_MIN, floor), rel=1e-6)
    rho = torch.tensor([0.1, 0.35, 0.8], dtype=F64)
    assert torch.allclose(axis.rho(axis.times(rho)), rho, atol=1e-9)
    lam = process.log_snr(axis.times(rho))
    assert float((lam[2] - lam[1]) / (lam[1] - lam[0])) == pytest.approx(0.45 / 0.25, rel=1e-6)
    grid = axis.grid(rho)
    if axis.to_zero:
        assert len(grid) == 4 and float(process.sigma(grid[-1])) == 0.0
    else:
        assert len(grid) == 4 and float(grid[-1]) == pytest.approx(float(process.t_min), abs=1e-9)
    assert len(axis.grid(rho, end=0.9)) == 4 and float(axis.rho(axis.grid(rho, end=0.9)[-1:])) == pytest.approx(0.9)


@pytest.mark.parametrize("free_start", [True, False])
def test_free_coordinates_always_give_an_increasing_grid(free_start):
    """Any coordinates map to strictly increasing points in (0, 1) (the first 0 without a free start),
    and the map inverts."""
    g = np.random.default_rng(0)
    for _ in range(50):
        z = g.normal(scale=3.0, size=5)
        p = _points_from_logits(z, free_start, False)
        assert len(p) == (5 if free_start else 6)
        assert (p[1:] > p[:-1]).all() and float(p[-1]) < 1.0 and float(p[0]) >= 0.0
        assert (float(p[0]) > 0.0) == free_start
        assert np.allclose(_logits_from_points(p, free_start), z, atol=1e-8)


def test_teacher_is_the_exact_flow_of_a_gaussian():
    """For one Gaussian N(m, s^2) the PF-ODE is affine: x_0 = m + s / sqrt(alpha^2 s^2 + sigma^2)
    (x_T - alpha m) per coordinate; the teacher (dopri5 at 1e-7) matches it to 1e-5 on every
    candidate level, where x_t = alpha m + sqrt(alpha^2 s^2 + sigma^2) / s (x_0 - m)."""
    m, s = torch.tensor([1.5, -0.5], dtype=F64), torch.tensor([0.7, 1.3], dtype=F64)
    target = GaussianMixture(torch.ones(1, dtype=F64), m[None], torch.diag(s**2)[None])
    process = VP()
    field = AnalyticField(target, process)
    x = exact_starts(target, process, 200, 0)
    times = GridAxis(process).grid(torch.linspace(0, 1, 9, dtype=F64))
    teach = teacher(field, x, times)
    T = torch.tensor(float(process.t_max), dtype=F64)
    aT, sT = process.alpha(T), process.sigma(T)
    x0 = m + s / torch.sqrt(aT**2 * s**2 + sT**2) * (x - aT * m)
    assert torch.allclose(teach.end, x0, atol=1e-5)
    for k, t in enumerate(times):
        a, sg = process.alpha(t), process.sigma(t)
        assert torch.allclose(teach.path[k], a * m + torch.sqrt(a**2 * s**2 + sg**2) / s * (x0 - m), atol=1e-5)


def test_local_steps_are_the_samplers_steps():
    """The dynamic program's 'data' step is one DDIM step (eta = 0), its 'heun' step one Heun step of
    the PF-ODE (Euler into sigma = 0), to every target time at once."""
    target = mog6()
    for process, rule in ((VP(), "data"), (EDM(), "heun")):
        field = AnalyticField(target, process)
        x = exact_starts(target, process, 64, 1)
        t = process.sigma_hat_to_t(torch.tensor(3.0, dtype=F64))
        targets = torch.cat([process.sigma_hat_to_t(torch.tensor([1.0, 0.3], dtype=F64)),
                             torch.tensor([float(process.t_min)], dtype=F64)])  # fmt: skip
        got = _local_steps(field, x, t, targets, rule)
        for k, s in enumerate(targets):
            grid = torch.stack([t, s])
            want = ddim(field, x, grid).x if rule == "data" else heun_step(field, x, t, s)
            assert torch.allclose(got[k], want, atol=1e-12, rtol=1e-12)
    with pytest.raises(ValueError, match="rule"):
        _local_steps(field, x, t, targets, "rk4")


def test_dynamic_program_is_the_cheapest_path_by_brute_force():
    """``cheapest_path`` returns the path of least summed cost among all increasing paths of the given
    length ending at the last node, with any start level of ``first``: checked by enumeration."""
    g = np.random.default_rng(3)
    C = 9
    for trial in range(20):
        cost = np.triu(g.exponential(size=(C, C)), 1)
        cost[np.tril_indices(C)] = math.inf
        first = np.triu(g.exponential(size=(C, C)), 1)
        first[np.tril_indices(C)] = math.inf
        if trial % 2:
            first[1:] = math.inf  # the start fixed at level 0
        for steps in (1, 2, 4):
            best, best_path = math.inf, None
            for levels in itertools.combinations(range(C - 1), steps):
                nodes = levels + (C - 1,)
                total = first[nodes[0], nodes[1]] + sum(cost[a, b] for a, b in zip(nodes[1:], nodes[2:], strict=False))
                if total < best:
                    best, best_path = total, list(levels)
            path, value = cheapest_path(cost, first, steps)
            assert value == pytest.approx(best, rel=1e-12) and path == best_path


def test_objectives():
    """The per-particle distance is the mean Euclidean norm; the energy gap is the V-statistic energy
    distance, zero for the same set and the same for matched or shuffled sets."""
    a = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=F64)
    b = torch.zeros(2, 2, dtype=F64)
    assert mean_distance(a, b) == pytest.approx(2.5)
    x = torch.randn(300, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    y = x + 0.5
    assert energy_gap(x, x) == pytest.approx(0.0, abs=1e-12)
    assert energy_gap(x, y) == pytest.approx(energy_gap(x, y[torch.randperm(300)]), rel=1e-12)
    # V-statistic: 2 E|x - y| - E|x - x'| - E|y - y'|
    want = 2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()
    assert energy_gap(x, y) == pytest.approx(float(want), rel=1e-12) and energy_gap(x, y) > 0


def test_refinement_never_returns_worse_than_its_start():
    """The continuous stage returns its start when nothing is better (a run that ignores the grid), and
    otherwise levels whose objective, re-measured, is the lower value it reports."""
    target, process = mog6(), VP()
    field = AnalyticField(target, process)
    x = exact_starts(target, process, 300, 0)
    axis = GridAxis(process)
    teach = teacher(field, x, axis.grid(torch.linspace(0, 1, 5, dtype=F64)))
    rho = torch.linspace(0, 1, 4, dtype=F64)
    run = lambda grid: unipc(field, x, grid).x  # noqa: E731
    start = mean_distance(run(axis.grid(rho)), teach.end)
    flat = lambda grid: x  # noqa: E731
    same, end, value, spent = refine_grid(flat, teach.end, axis, rho, evaluations=20)
    assert torch.equal(same, rho) and end is None and value == mean_distance(x, teach.end) and spent >= 20
    better, end, value, spent = refine_grid(run, teach.end, axis, rho, evaluations=150, optimize_end=True)
    assert value < 0.9 * start and spent <= 150 + 1 and end is not None and end > float(better[-1])
    assert mean_distance(run(axis.grid(better, end)), teach.end) == pytest.approx(value, rel=1e-12)


@pytest.fixture(scope="module")
def tuned_mog6():
    """unipc at 6 evaluations on mog6, tuned on 800 starts of seed 0 (a few seconds)."""
    target, process = mog6(), VP()
    field = AnalyticField(target, process)
    x = exact_starts(target, process, 800, 0)
    found = tune_grid(field, lambda x, g: unipc(field, x, g).x, x, 6, optimize_end=True, evaluations=300)
    return target, process, field, found


def test_each_stage_lowers_the_teacher_error(tuned_mog6):
    """On the tuning starts: uniform log-SNR > GITS's DP > DP + Nelder-Mead (factors seen: 1.7-2.8 each)."""
    _, process, _, found = tuned_mog6
    e = found.errors
    assert e["gits"] < 0.7 * e["initial"] and e["continuous"] < 0.7 * e["gits"]
    assert found.error == e["continuous"] and found.start_time == float(process.t_max)
    t = found.times
    assert len(t) == 7 and (t[1:] < t[:-1]).all() and float(t[0]) <= float(process.t_max)


def test_a_tuned_grid_generalizes_to_other_starts(tuned_mog6):
    """Judged on 4000 starts of another seed against the teacher and against the law: the tuned grid's
    mean distance to the teacher is at most half the uniform-t and the Karras grid's, and its mode
    weights and energy distance to the exact mixture are smaller. Deterministic (fixed seeds)."""
    from scoredyn.metrics import evaluate
    from scoredyn.samplers import karras_grid, uniform_grid

    target, process, field, found = tuned_mog6
    x = exact_starts(target, process, 4000, 7)
    teach = teacher(field, x, torch.tensor([float(process.t_max), float(process.t_min)], dtype=F64))
    scores = {}
    for name, grid in (("uniform", uniform_grid(process, 6)), ("karras", karras_grid(process, 6)),
                       ("tuned", found.times)):  # fmt: skip
        out = unipc(field, x, grid).x
        energy = evaluate(out, target, metrics=("energy_exact",))["energy_exact"]["value"]
        scores[name] = (mean_distance(out, teach.end), energy)
    for name in ("uniform", "karras"):
        assert scores["tuned"][0] < 0.5 * scores[name][0], scores
        assert scores["tuned"][1] < scores[name][1], scores


def test_heun_grids_end_at_zero_and_beat_karras():
    """For EDM Heun the DP uses Heun's own step and the grid keeps its Euler step into sigma = 0 (a free
    end would cost an evaluation); 3 steps tuned on 500 starts halve Karras's teacher error on others."""
    from scoredyn.samplers import karras_grid

    target, process = mog6(), EDM()
    field = AnalyticField(target, process)
    x = exact_starts(target, process, 500, 0)
    found = tune_grid(field, lambda x, g: edm_heun(field, x, g).x, x, 3, rule="heun", candidates=48, evaluations=150)
    assert float(found.times[-1]) == float(process.t_min) and len(found.times) == 4
    y = exact_starts(target, process, 2000, 5)
    teach = teacher(field, y, torch.tensor([float(process.t_max), float(process.t_min)], dtype=F64))
    tuned = mean_distance(edm_heun(field, y, found.times).x, teach.end)
    karras = mean_distance(edm_heun(field, y, karras_grid(process, 3)).x, teach.end)
    assert tuned < 0.5 * karras, (tuned, karras)


def test_bad_arguments():
    target, process = mog6(), VP()
    field = AnalyticField(target, process)
    x = exact_starts(target, process, 20, 0)
    run = lambda x, g: unipc(field, x, g).x  # noqa: E731
    with pytest.raises(ValueError, match="method"):
        tune_grid(field, run, x, 3, method="bisection")
    with pytest.raises(ValueError, match="objective"):
        tune_grid(field, run, x, 3, method="continuous", objective="kl")
    with pytest.raises(ValueError, match="steps"):
        tune_grid(field, run, x, 0)
    with pytest.raises(ValueError, match="initial grid has 2 steps"):
        tune_grid(field, run, x, 3, initial=torch.tensor([1.0, 0.5, 0.0], dtype=F64))
