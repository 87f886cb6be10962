"""Distributions to sample or learn: exact Gaussian mixtures and the built-in toys."""

from .mixture import GaussianMixture, component_terms, precision_times, random_mixture
from .toy2d import POINT_CLOUDS, PointCloud, mog6, mog10, offcentre, rings

__all__ = [
    "GaussianMixture",
    "random_mixture",
    "component_terms",
    "precision_times",
    "PointCloud",
    "POINT_CLOUDS",
    "mog6",
    "mog10",
    "rings",
    "offcentre",
]
