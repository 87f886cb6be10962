"""The names of the samplers and the grids: explicit tables, the only place a sampler or grid name is
resolved (targets and processes are named in ``core.registry``).

A sampler name maps to a ``Recipe``: the sampler function, the process and grid it runs on by
default, the start it uses, and the keyword knobs it is given. ``--steps`` means the sampler's own
step count; for the annealed particle samplers it is steps per noise level. Adding a sampler is one
function with the common head ``(field, x, grid, *, generator=None, callback=None, return_path=False)``
plus one line here, ``SAMPLERS["name"] = Recipe(fn, "process", "grid")``; the command line, the demo's
tables and ``sample`` then know it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor

from ..core.processes import Process
from ..core.tensors import positive_int
from ..samplers import (
    LADDER_SIGMA_MIN,
    annealed_langevin,
    annealed_mala,
    constant_grid,
    ddim,
    ddpm,
    ddpm_grid,
    dpm_solver_2m,
    edm_heun,
    end_points_grid,
    geometric_sigma_grid,
    karras_grid,
    langevin,
    log_snr_grid,
    multistep,
    ode,
    predictor_corrector,
    reverse_sde,
    score_drift,
    smc,
    svgd,
    uniform_grid,
    unipc,
)

__all__ = ["GRIDS", "LEVEL_GRIDS", "SAMPLERS", "Recipe", "make_grid", "nfe_for_steps", "resolve_sampler",
           "steps_for_nfe"]  # fmt: skip

# --- grids -------------------------------------------------------------------------------------

GRIDS: dict[str, Callable[..., Tensor]] = {
    "karras": karras_grid,
    "logsnr": log_snr_grid,
    "uniform": uniform_grid,
    "ddpm": ddpm_grid,
    "geometric": geometric_sigma_grid,
    "constant": constant_grid,
    "ends": end_points_grid,
}

#: Grids of noise levels whose length is the ladder's ``levels`` (not the step count).
LEVEL_GRIDS: tuple[str, ...] = ("geometric",)


def make_grid(name: str, process: Process, steps: int, levels: int = 10, **grid_kwargs) -> Tensor:
    """The named grid of ``process``: ``steps`` intervals, or ``levels`` levels for the ladders of
    ``LEVEL_GRIDS``; ``grid_kwargs`` (e.g. ``sigma_min``) go to the grid function."""
    if name not in GRIDS:
        raise ValueError(f"unknown grid {name!r}: use one of {', '.join(GRIDS)}")
    return GRIDS[name](process, levels if name in LEVEL_GRIDS else steps, **grid_kwargs)


# --- samplers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How a named sampler runs by default.

    Attributes:
        fn: the sampler function.
        process: default process name.
        grid: default grid name.
        start: default start kind (``samplers.start_distribution``); ``ladder`` is ``N(0, 10^2 I)``,
            the top of the annealing ladder.
        per_level: ``--steps`` counts steps per noise level (annealed particle samplers).
        kwargs: knobs passed to ``fn``.
        grid_kwargs: passed to the default grid function (dropped when the grid is overridden).
        stochastic: whether the sampler draws noise after the start.
        paper: the reference shown in tables.
        needs_start: the sampler is given the start law (``start=``): it weighs particles by it (SMC).
        adaptive: the sampler places its own levels between the grid's ends (progress is shown in time).
        evals_per_step: field evaluations per step (Heun's two, the predictor and its corrector; one
            fewer on the step into ``sigma = 0``, which is an Euler step).
    """

    fn: Callable
    process: str
    grid: str
    start: str = "exact"
    per_level: bool = False
    kwargs: dict = field(default_factory=dict)
    grid_kwargs: dict = field(default_factory=dict)
    stochastic: bool = False
    paper: str = ""
    needs_start: bool = False
    adaptive: bool = False
    evals_per_step: int = 1


SAMPLERS: dict[str, Recipe] = {
    "langevin": Recipe(
        langevin, "edm", "constant", start="ladder", stochastic=True, kwargs={"eta": 0.5 * LADDER_SIGMA_MIN**2},
        paper="Langevin MCMC at the smallest noise level (Roberts & Tweedie 1996)",
    ),
    "annealed-langevin": Recipe(
        annealed_langevin, "edm", "geometric", start="ladder", per_level=True, stochastic=True,
        paper="Song & Ermon 2019, Alg. 1",
    ),
    # the texts' ladder with a Metropolis test at every step: exact at each level, mode weights still
    # those of the level where the modes split (samplers/mala.py)
    "annealed-mala": Recipe(
        annealed_mala, "edm", "geometric", start="ladder", per_level=True, stochastic=True,
        paper="annealed Langevin with a Metropolis test (Roberts & Tweedie 1996, MALA)",
    ),
    # SMC on the VP path from N(0, I): nothing changes where the noise dominates, so no level is spent
    # there (on EDM's path p_sigma rescales with sigma in every dimension). The particles follow the
    # probability-flow ODE between levels, weighted by its Jacobian: the weights stay nearly even, so
    # the mode weights' error does not pile up over the levels as it does when the particles stay
    # (docs/algorithms.md). Adaptive levels at a conditional ESS of 0.999; moves per level is --steps.
    "smc": Recipe(
        smc, "vp", "ends", start="standard", per_level=True, stochastic=True, needs_start=True, adaptive=True,
        kwargs={"kernel": "flow", "target_ess": 0.999, "final_steps": 50},
        paper="SMC over noise levels (Del Moral, Doucet & Jasra 2006; Neal 2001), MALA moves",
    ),
    "score-drift": Recipe(
        score_drift, "edm", "geometric", start="ladder", per_level=True,
        paper="annealed score ascent, no noise: gradient ascent on log p_t, not a sampler",
    ),
    "svgd": Recipe(
        svgd, "edm", "geometric", start="ladder", per_level=True,
        kwargs={"bandwidth_factor": 2.0, "repulsion": 1.0},  # the best of the mog6 sweep
        paper="annealed SVGD (Liu & Wang 2016, Alg. 1)",
    ),
    # SVGD that reaches the law in 10-D: the bandwidth from the particles' median distance at each level
    # and each particle's step over the kernel mass around it (samplers/svgd.py, benchmarks/svgd_exact.py)
    "svgd-median": Recipe(
        svgd, "edm", "geometric", start="ladder", per_level=True,
        kwargs={"bandwidth": "median", "bandwidth_factor": 0.7, "normalization": "mass", "eta_factor": 0.5},
        paper="annealed SVGD, median-heuristic bandwidth (Liu & Wang 2016, sec. 5), step over the kernel mass",
    ),
    "ddpm": Recipe(ddpm, "ddpm", "ddpm", stochastic=True, paper="Ho et al. 2020, Alg. 2"),
    "ddim": Recipe(ddim, "ddpm", "ddpm", paper="Song, Meng & Ermon 2021, eq. 12"),
    "sde": Recipe(reverse_sde, "edm", "karras", stochastic=True, paper="Song et al. 2021, eq. 6 (Euler–Maruyama)"),
    "ode-euler": Recipe(ode, "edm", "karras", kwargs={"method": "euler"}, paper="Song et al. 2021, eq. 13 (Euler)"),
    "ode-heun": Recipe(
        ode, "edm", "karras", kwargs={"method": "heun"}, evals_per_step=2, paper="Song et al. 2021, eq. 13 (Heun)"
    ),
    "ode-adaptive": Recipe(
        ode, "edm", "karras", kwargs={"method": "adaptive"}, paper="Song et al. 2021, eq. 13 (dopri5, torchdiffeq)"
    ),
    "edm-heun": Recipe(edm_heun, "edm", "karras", evals_per_step=2, paper="Karras et al. 2022, Alg. 2"),
    "pc": Recipe(
        predictor_corrector, "edm", "logsnr", stochastic=True, evals_per_step=2, paper="Song et al. 2021, Alg. 2/3"
    ),
    # multistep solvers: the VP process, uniform in t. On the exact mixtures this beat uniform
    # log-SNR and Karras grids at NFE 5 and 10 (benchmarks/accuracy_vs_nfe.py, README).
    "dpm-solver-2m": Recipe(dpm_solver_2m, "vp", "uniform", paper="Lu et al. 2022, DPM-Solver++(2M)"),
    "unipc": Recipe(unipc, "vp", "uniform", paper="Zhao et al. 2023, UniPC (bh2)"),
    # DPM-Solver++(2M)'s update with free coefficients: fitted to the converged flow by tune-grid
    "multistep": Recipe(
        multistep, "vp", "uniform",
        paper="linear multistep in data prediction, coefficients fitted with the grid (S4S, Frankel et al. 2025)",
    ),
}


def resolve_sampler(name: str) -> Recipe:
    """The recipe of the named sampler (one of ``SAMPLERS``)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}: use one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def steps_for_nfe(sampler: str, nfe: int) -> int:
    """The most steps of ``sampler`` that spend at most ``nfe`` field evaluations, and at least one: a
    two-evaluation sampler spends ``2 S - 1`` on a grid into ``sigma = 0``."""
    per = resolve_sampler(sampler).evals_per_step
    return max(1, (positive_int(nfe, "nfe") + per - 1) // per)


def nfe_for_steps(sampler: str, steps: int) -> int:
    """The field evaluations ``steps`` steps of ``sampler`` spend on a grid into ``sigma = 0`` (the
    inverse of ``steps_for_nfe``)."""
    per = resolve_sampler(sampler).evals_per_step
    return positive_int(steps, "steps") * per - (per - 1)
