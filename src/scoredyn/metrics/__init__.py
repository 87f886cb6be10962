"""Sample-quality metrics, each with its Monte-Carlo floor.

Every distance here is an estimate from finitely many samples, so even exact samples score
above zero. The *floor* of a metric at sample size ``n`` is its value between two independent
exact sample sets of that size (``mc_floor``); a sampler is judged by ``value / floor``
(``evaluate``), where 1 means "as good as exact sampling can show at this ``n``".

- ``modes``: mode weights of a mixture and the total variation between two mode histograms;
- ``distances``: energy distance, MMD, sliced W1, exact W2 between two sample sets;
- ``stein``: the kernel Stein discrepancy of one sample set from a score;
- ``floors``: Monte-Carlo floors and the exact null expectations of energy distance and MMD;
- ``evaluation``: the metric table ``METRICS`` and ``evaluate``.

All pairwise sums are computed in row blocks of bounded size, so ``N = 20,000`` never builds an
``N x N`` matrix (and nothing here builds ``N x N x D``). Everything is float64.
"""

from .distances import W2_MAX_POINTS, energy_distance, median_heuristic, mmd, sliced_wasserstein, wasserstein2
from .evaluation import METRICS, Metric, MetricContext, evaluate
from .floors import Floor, expected_null_floor, mc_floor
from .modes import mode_tv, mode_weights
from .stein import kernel_stein_discrepancy

__all__ = [
    "mode_weights",
    "mode_tv",
    "energy_distance",
    "median_heuristic",
    "mmd",
    "sliced_wasserstein",
    "wasserstein2",
    "W2_MAX_POINTS",
    "kernel_stein_discrepancy",
    "Floor",
    "mc_floor",
    "expected_null_floor",
    "METRICS",
    "Metric",
    "MetricContext",
    "evaluate",
]
