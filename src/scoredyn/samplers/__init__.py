"""Samplers: one function per algorithm, all with the head ``(field, x, grid, *, generator=None,
callback=None, return_path=False, ...)`` and one return type, ``SampleResult``."""

from ._steps import SampleResult, StepInfo
from .ddim import ddim
from .ddpm import ddpm
from .dpm import dpm_solver_2m, unipc
from .edm import edm_heun
from .grids import ddpm_grid, geometric_sigma_grid, karras_grid, log_snr_grid, uniform_grid
from .langevin import annealed_langevin, langevin, score_drift
from .ode import ode
from .pc import predictor_corrector
from .sde import reverse_sde
from .starts import START_KINDS, start_distribution
from .svgd import svgd, svgd_direction

__all__ = [
    "SampleResult",
    "StepInfo",
    "langevin",
    "annealed_langevin",
    "score_drift",
    "svgd",
    "ddpm",
    "ddim",
    "reverse_sde",
    "ode",
    "edm_heun",
    "predictor_corrector",
    "dpm_solver_2m",
    "unipc",
    "karras_grid",
    "log_snr_grid",
    "uniform_grid",
    "geometric_sigma_grid",
    "ddpm_grid",
    "START_KINDS",
    "start_distribution",
    "svgd_direction",
]
