"""Score fields: the exact field of a mixture, a network's field in any parameterization (an energy
network's with its log-density), a field read on another process, guided fields and an evaluation
counter; every conversion written once."""

from .analytic import AnalyticField
from .base import Field, NoDensityError, Prediction, denoise_from_score, score_from_denoise, score_from_eps
from .coefficients import Coefficients, CoefficientTable, broadcast_coefficient, coefficients, per_sample_time
from .counting import CountingField
from .energy import EnergyField, network_field
from .external import (
    CALLABLE_PARAMETERIZATIONS,
    CallableField,
    DenoiserField,
    DiffusersField,
    from_callable,
    from_denoiser,
    from_diffusers,
)
from .guidance import ClassifierFreeGuidance, ClassifierGuidance, mixture_classifier
from .network import PARAMETERIZATIONS, NetworkField
from .on_process import OnProcess, on_process

__all__ = [
    "Field",
    "NoDensityError",
    "Prediction",
    "AnalyticField",
    "CountingField",
    "NetworkField",
    "EnergyField",
    "network_field",
    "DenoiserField",
    "CallableField",
    "DiffusersField",
    "CALLABLE_PARAMETERIZATIONS",
    "from_denoiser",
    "from_callable",
    "from_diffusers",
    "PARAMETERIZATIONS",
    "OnProcess",
    "on_process",
    "ClassifierGuidance",
    "ClassifierFreeGuidance",
    "mixture_classifier",
    "Coefficients",
    "CoefficientTable",
    "coefficients",
    "per_sample_time",
    "broadcast_coefficient",
    "score_from_denoise",
    "denoise_from_score",
    "score_from_eps",
]
