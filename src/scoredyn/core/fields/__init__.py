"""Score fields: the exact field of a mixture, a network's field in any parameterization, a field
read on another process, guided fields and an evaluation counter; every conversion written once."""

from .base import (
    AnalyticField,
    Coefficients,
    CoefficientTable,
    CountingField,
    Field,
    Prediction,
    coefficients,
    denoise_from_score,
    per_sample_time,
    score_from_denoise,
    score_from_eps,
)
from .guidance import ClassifierFreeGuidance, ClassifierGuidance, mixture_classifier
from .network import PARAMETERIZATIONS, NetworkField, OnProcess

__all__ = [
    "Field",
    "Coefficients",
    "CoefficientTable",
    "Prediction",
    "AnalyticField",
    "CountingField",
    "NetworkField",
    "OnProcess",
    "PARAMETERIZATIONS",
    "ClassifierGuidance",
    "ClassifierFreeGuidance",
    "mixture_classifier",
    "coefficients",
    "per_sample_time",
    "score_from_denoise",
    "denoise_from_score",
    "score_from_eps",
]
