"""Sample-quality metrics, each with its Monte-Carlo floor.

Every distance here is an estimate from finitely many samples, so even exact samples score
above zero. The *floor* of a metric at sample size ``n`` is its value between two independent
exact sample sets of that size (``mc_floor``); a sampler is judged by ``value / floor``
(``evaluate``), where 1 means "as good as exact sampling can show at this ``n``".

- ``modes``: mode weights of a mixture and the total variation between two mode histograms;
- ``distances``: energy distance, MMD, sliced W1, exact W2 between two sample sets;
- ``stein``: the kernel Stein discrepancy of one sample set from a score;
- ``floors``: Monte-Carlo floors and the exact null expectations of energy distance and MMD;
- ``closed_forms``: a Gaussian mixture's pair expectations (``E|X - X'|``, ``E k(X, X')``, ``E_Y|x - Y|``,
  the kernel mean embedding);
- ``estimates``: standard errors (delete-a-group jackknife) and the block estimator for large ``N``;
- ``exact``: metrics against the exact law (``mode_tv_exact``, ``energy_exact``, ``mmd_exact``) and
  computed floors;
- ``evaluation``: the metric table ``METRICS`` and ``evaluate``.

All pairwise sums are computed in row blocks of bounded size, so no ``N x N`` matrix is ever built
(and nothing here builds ``N x N x D``); above ``PAIR_BUDGET`` pairs, ``evaluate`` averages the
statistic over blocks, so ``N = 10^6`` costs the same number of pairs as ``N = 16,384``. Everything
is float64.
"""

from .closed_forms import expected_distance, kernel_embedding, mean_pair_distance, mean_pair_kernel
from .distances import W2_MAX_POINTS, energy_distance, median_heuristic, mmd, sliced_wasserstein, wasserstein2
from .estimates import PAIR_BUDGET, Estimate
from .evaluation import METRICS, Metric, MetricContext, evaluate, ratio_interval
from .exact import (
    binomial_mean_abs_deviation,
    energy_exact,
    ksd_floor,
    mmd_exact,
    mode_probabilities,
    mode_tv_exact,
    mode_tv_floor,
)
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
    "ratio_interval",
    "Estimate",
    "PAIR_BUDGET",
    "mean_pair_distance",
    "mean_pair_kernel",
    "kernel_embedding",
    "expected_distance",
    "mode_probabilities",
    "binomial_mean_abs_deviation",
    "mode_tv_floor",
    "mode_tv_exact",
    "energy_exact",
    "mmd_exact",
    "ksd_floor",
]
