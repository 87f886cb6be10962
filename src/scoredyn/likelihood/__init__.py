"""Likelihoods: exact ``log p`` through the probability-flow ODE (exact or Hutchinson divergence),
bits per dimension, the DDPM variational bound, and the ODE's latent space (encode, decode, slerp)."""

from .discrete import bits_per_dim, dequantize
from .latent import decode, encode, interpolate, slerp
from .ode import DIVERGENCES, PROBE_DISTS, LikelihoodResult, log_likelihood
from .vlb import VLB_VARIANCES, variational_bound, vlb_kernel, vlb_prior_term, vlb_step_term, vlb_terms

__all__ = [
    "LikelihoodResult",
    "log_likelihood",
    "DIVERGENCES",
    "PROBE_DISTS",
    "bits_per_dim",
    "dequantize",
    "encode",
    "decode",
    "slerp",
    "interpolate",
    "variational_bound",
    "vlb_terms",
    "vlb_kernel",
    "vlb_step_term",
    "vlb_prior_term",
    "VLB_VARIANCES",
]
