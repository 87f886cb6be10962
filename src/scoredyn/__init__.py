"""scoredyn: diffusion models as generative particle dynamics.

A denoiser is a score field (Tweedie); generating is moving particles through it — with noise
(Langevin, the reverse SDE), without it (the probability-flow ODE, DDIM, EDM Heun), or coupled to
each other (SVGD). Start with ``AnalyticField(mog6(), EDM())`` and any sampler below.
"""

from .app.estimate import estimate_likelihood
from .app.sampling import sample
from .app.tuning import GridFile, load_grid_file, optimize_grid
from .core import fields
from .core.fields import (
    PARAMETERIZATIONS,
    AnalyticField,
    ClassifierFreeGuidance,
    ClassifierGuidance,
    CountingField,
    EnergyField,
    Field,
    NetworkField,
    NoDensityError,
    OnProcess,
    Prediction,
    from_callable,
    from_denoiser,
    from_diffusers,
    mixture_classifier,
)
from .core.processes import EDM, OU, VE, VP, DDPMSchedule, Linear, Process, SubVP
from .core.targets import POINT_CLOUDS, GaussianMixture, mog6, mog10, offcentre, random_mixture, rings
from .learning import (
    MLP,
    OBJECTIVE_NAMES,
    TrainConfig,
    Trainer,
    UNet,
    apply_overrides,
    build_net,
    load_dataset,
    load_toml,
    load_trained,
    make_objective,
)
from .likelihood import bits_per_dim, decode, dequantize, encode, interpolate, log_likelihood, slerp, variational_bound
from .metrics import energy_distance, evaluate, mode_tv
from .samplers import (
    SampleResult,
    StepInfo,
    annealed_langevin,
    annealed_mala,
    ddim,
    ddpm,
    ddpm_grid,
    dpm_solver_2m,
    edm_heun,
    geometric_sigma_grid,
    karras_grid,
    langevin,
    log_snr_grid,
    ode,
    predictor_corrector,
    reverse_sde,
    score_drift,
    smc,
    start_distribution,
    svgd,
    uniform_grid,
    unipc,
)
from .util.versions import __version__

__all__ = [
    "estimate_likelihood",
    "ClassifierGuidance",
    "ClassifierFreeGuidance",
    "mixture_classifier",
    "fields",
    "from_denoiser",
    "from_diffusers",
    "from_callable",
    "log_likelihood",
    "bits_per_dim",
    "dequantize",
    "encode",
    "decode",
    "slerp",
    "interpolate",
    "variational_bound",
    "__version__",
    # processes
    "Process", "VP", "SubVP", "VE", "EDM", "OU", "Linear", "DDPMSchedule",
    # targets
    "GaussianMixture", "random_mixture", "mog6", "mog10", "rings", "offcentre", "POINT_CLOUDS",
    # fields
    "Field", "AnalyticField", "CountingField", "Prediction", "NetworkField", "OnProcess", "PARAMETERIZATIONS",
    "EnergyField", "NoDensityError",
    # training
    "TrainConfig", "apply_overrides", "load_toml", "load_dataset", "make_objective", "OBJECTIVE_NAMES",
    "MLP", "UNet", "build_net", "Trainer", "load_trained",
    # samplers and grids
    "SampleResult", "StepInfo", "langevin", "annealed_langevin", "annealed_mala", "smc", "score_drift", "svgd",
    "ddpm", "ddim",
    "reverse_sde", "ode", "edm_heun", "predictor_corrector", "dpm_solver_2m", "unipc",
    "karras_grid", "log_snr_grid", "uniform_grid", "geometric_sigma_grid", "ddpm_grid",
    "start_distribution", "sample", "optimize_grid", "GridFile", "load_grid_file",
    # metrics
    "evaluate", "energy_distance", "mode_tv",
]
