"""Samplers: one function per algorithm, all with the head ``(field, x, grid, *, generator=None,
callback=None, return_path=False, ...)`` and one return type, ``SampleResult``; grids are made by
the small functions of ``grids`` and start distributions by ``start_distribution``."""

from ._steps import LANGEVIN_BACKENDS, SampleResult, StepInfo
from .ddim import ddim
from .ddpm import ddpm
from .dpm_solver import dpm_solver_2m
from .edm import edm_heun
from .grids import (
    LADDER_SIGMA_MAX,
    LADDER_SIGMA_MIN,
    constant_grid,
    ddpm_grid,
    end_points_grid,
    geometric_sigma_grid,
    karras_grid,
    log_snr_grid,
    uniform_grid,
)
from .langevin import annealed_langevin, langevin, score_drift
from .mala import annealed_mala
from .multistep import check_coefficients, coefficients_of, dpm_solver_coefficients, multistep
from .ode import ODE_METHODS, ode
from .pc import predictor_corrector
from .resampling import effective_sample_size, hilbert_index, multinomial_resample, systematic_resample
from .sde import reverse_sde
from .smc import smc
from .starts import START_KINDS, start_distribution
from .svgd import svgd, svgd_direction
from .unipc import UNIPC_VARIANTS, unipc

__all__ = [
    "SampleResult",
    "StepInfo",
    "langevin",
    "annealed_langevin",
    "score_drift",
    "annealed_mala",
    "smc",
    "multistep",
    "check_coefficients",
    "coefficients_of",
    "dpm_solver_coefficients",
    "effective_sample_size",
    "systematic_resample",
    "multinomial_resample",
    "hilbert_index",
    "LANGEVIN_BACKENDS",
    "svgd",
    "svgd_direction",
    "ddpm",
    "ddim",
    "reverse_sde",
    "ode",
    "ODE_METHODS",
    "edm_heun",
    "predictor_corrector",
    "dpm_solver_2m",
    "unipc",
    "UNIPC_VARIANTS",
    "karras_grid",
    "log_snr_grid",
    "uniform_grid",
    "geometric_sigma_grid",
    "ddpm_grid",
    "constant_grid",
    "end_points_grid",
    "LADDER_SIGMA_MAX",
    "LADDER_SIGMA_MIN",
    "START_KINDS",
    "start_distribution",
]
