"""Fast paths, backends only: fused Triton kernels (CUDA, or the interpreter on the CPU), compiled and
tiled torch. Each is chosen underneath one public function of a layer above (the SVGD direction, the
Langevin steps on an exact mixture) and checked there against the plain formula."""

from .backends import PRECISIONS, check_backend, check_precision, interpreting, triton_available, triton_runs_on
from .mixture_density import DENSITY_BACKENDS, mixture_score_log_prob
from .mixture_langevin import mixture_langevin, mixture_score
from .svgd import kernel_sums

__all__ = [
    "PRECISIONS",
    "check_backend",
    "check_precision",
    "interpreting",
    "triton_available",
    "triton_runs_on",
    "kernel_sums",
    "mixture_langevin",
    "mixture_score",
    "mixture_score_log_prob",
    "DENSITY_BACKENDS",
]
