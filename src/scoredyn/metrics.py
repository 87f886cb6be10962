"""Sample-quality metrics, each with its Monte-Carlo floor.

Every distance here is an estimate from finitely many samples, so even exact samples score
above zero. The *floor* of a metric at sample size ``n`` is its value between two independent
exact sample sets of that size (``mc_floor``); a sampler is judged by ``value / floor``
(``evaluate``), where 1 means "as good as exact sampling can show at this ``n``".

All pairwise sums are computed in row blocks of at most ``_BLOCK`` kernel entries, so ``N = 20,000``
never builds an ``N x N`` matrix (and nothing here builds ``N x N x D``). Everything is float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .core.targets import GaussianMixture

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
    "evaluate",
]

_BLOCK = 2**20  # entries per pairwise block (8 MiB in float64)
W2_MAX_POINTS = 3000  # exact optimal transport is O(N^3): above this, use sliced_wasserstein
METRICS = ("mode_tv", "energy", "sliced_w1", "mmd", "ksd", "w2")


# --- helpers -------------------------------------------------------------------------------------


def _points(x, name: str, dim: int | None = None) -> Tensor:
    """``x`` as a float64 ``(N, D)`` tensor of finite points (``ValueError`` otherwise)."""
    x = torch.as_tensor(x).to(torch.float64)
    if x.ndim != 2 or x.shape[0] == 0 or (dim is not None and x.shape[1] != dim):
        want = f"(N, {dim})" if dim is not None else "(N, D)"
        raise ValueError(f"{name} must have shape {want} with N >= 1, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def _row_blocks(n_rows: int, n_cols: int) -> Iterable[slice]:
    """Row slices such that each ``rows x n_cols`` block holds at most ``_BLOCK`` entries."""
    step = max(1, _BLOCK // max(n_cols, 1))
    return (slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step))


def _sq_dist(a: Tensor, b: Tensor) -> Tensor:
    """Squared Euclidean distances ``|a_i - b_j|^2``, shape ``(len(a), len(b))``."""
    d2 = (a @ b.T).mul_(-2.0).add_((a * a).sum(1)[:, None]).add_((b * b).sum(1)[None, :])
    return d2.clamp_min_(0.0)


def _pair_mean(
    n: int, m: int, block: Callable[[slice, slice], Tensor], same: bool = False
) -> float:
    """``1/(n m) sum_{i<n, j<m} f(i, j)`` where ``block(rows, cols)`` returns the values ``f`` on a
    block. With ``same`` (one sample against itself, ``f`` symmetric) only the blocks on and above
    the diagonal are computed; those strictly above count twice."""
    total = 0.0
    for rows in _row_blocks(n, m):
        if same:
            values = block(rows, slice(rows.start, m))
            width = rows.stop - rows.start
            total += float(values[:, :width].sum()) + 2.0 * float(values[:, width:].sum())
        else:
            total += float(block(rows, slice(0, m)).sum())
    return total / (n * m)


# --- mode weights --------------------------------------------------------------------------------


def mode_weights(x: Tensor, mixture: GaussianMixture) -> Tensor:
    """Fraction of samples assigned to each component (largest posterior responsibility)."""
    labels = mixture.component_log_prob(x).argmax(dim=1)
    return torch.bincount(labels, minlength=mixture.n_components).to(torch.float64) / x.shape[0]


def mode_tv(x: Tensor, y: Tensor, mixture: GaussianMixture) -> float:
    """Total variation ``1/2 sum_k |w_k(x) - w_k(y)|`` between the mode-weight histograms of two
    sample sets (``y`` usually fresh exact samples, so assignment errors cancel)."""
    return 0.5 * float((mode_weights(x, mixture) - mode_weights(y, mixture)).abs().sum())


# --- distances between two sample sets -----------------------------------------------------------


def energy_distance(x: Tensor, y: Tensor) -> float:
    """Energy distance (Székely & Rizzo 2013), V-statistic.

    .. math::
        \\mathcal{E}(X, Y) = 2\\,\\mathbb{E}|X - Y| - \\mathbb{E}|X - X'| - \\mathbb{E}|Y - Y'|

    with every expectation replaced by the mean over all pairs (diagonals included), so it is
    ``>= 0`` and zero iff the two empirical measures agree. Between two independent exact sets of
    sizes ``n, m`` its mean is ``(1/n + 1/m) E|X - X'|``.

    Args:
        x: ``(N, D)`` samples.
        y: ``(M, D)`` samples.
    """
    x = _points(x, "x")
    y = _points(y, "y", x.shape[1])
    n, m = x.shape[0], y.shape[0]
    e_xy = _pair_mean(n, m, lambda i, j: torch.cdist(x[i], y[j]))
    e_xx = _pair_mean(n, n, lambda i, j: torch.cdist(x[i], x[j]), same=True)
    e_yy = _pair_mean(m, m, lambda i, j: torch.cdist(y[i], y[j]), same=True)
    return 2 * e_xy - e_xx - e_yy


def median_heuristic(x: Tensor, max_points: int = 1000) -> float:
    """Median pairwise distance ``median_{i<j} |x_i - x_j|`` (Gretton et al. 2012, Sec. 8), over
    a fixed random subset of at most ``max_points`` points (permutation seeded 0: deterministic)."""
    x = _points(x, "x")
    if x.shape[0] > max_points:
        keep = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))[:max_points]
        x = x[keep.to(x.device)]
    if x.shape[0] < 2:
        raise ValueError("x needs at least 2 points for the median heuristic")
    return float(torch.pdist(x).median())


def mmd(x: Tensor, y: Tensor, bandwidth: float | None = None) -> float:
    """Squared maximum mean discrepancy with the Gaussian RBF kernel (Gretton et al. 2012), as
    their biased estimate ``MMD_b^2``, i.e. the V-statistic (not the unbiased ``MMD_u^2``).

    .. math::
        \\mathrm{MMD}_b^2 = \\frac{1}{n^2}\\sum_{i,j} k(x_i, x_j)
            + \\frac{1}{m^2}\\sum_{i,j} k(y_i, y_j) - \\frac{2}{nm}\\sum_{i,j} k(x_i, y_j),
        \\qquad k(x, y) = \\exp\\!\\big(-|x - y|^2 / (2h^2)\\big)

    It is ``>= 0`` (a squared RKHS norm); between two independent exact sets its mean is
    ``(1/n + 1/m)(1 - E k(X, X'))``.

    Args:
        x: ``(N, D)`` samples.
        y: ``(M, D)`` samples.
        bandwidth: ``h``; default: ``median_heuristic`` of the pooled sample.
    """
    x = _points(x, "x")
    y = _points(y, "y", x.shape[1])
    h = median_heuristic(torch.cat([x, y])) if bandwidth is None else float(bandwidth)
    if not h > 0 or not math.isfinite(h):
        raise ValueError(f"bandwidth must be positive and finite, got {h} (all points equal?)")

    def k(a: Tensor, b: Tensor) -> Tensor:
        return _sq_dist(a, b).mul_(-0.5 / h**2).exp_()

    n, m = x.shape[0], y.shape[0]
    k_xx = _pair_mean(n, n, lambda i, j: k(x[i], x[j]), same=True)
    k_yy = _pair_mean(m, m, lambda i, j: k(y[i], y[j]), same=True)
    k_xy = _pair_mean(n, m, lambda i, j: k(x[i], y[j]))
    return k_xx + k_yy - 2.0 * k_xy


def _sort_columns(a: Tensor) -> Tensor:
    """Each column of ``a`` sorted. On the CPU through NumPy's (SIMD) sort, several times faster
    than ``torch.sort`` here; sorting is exact, so the values are the same."""
    if a.device.type != "cpu":
        return a.sort(0).values
    return torch.from_numpy(np.sort(a.detach().numpy(), axis=0))


def _w1_1d(u: Tensor, v: Tensor) -> Tensor:
    """Exact 1-D W1 between the empirical measures in each column of ``u (n, P)`` and ``v (m, P)``:
    ``int |F_u - F_v| dt``; for ``n = m`` this is the mean gap between sorted values."""
    u, v = _sort_columns(u), _sort_columns(v)
    if u.shape[0] == v.shape[0]:
        return (u - v).abs().mean(0)
    # the CDFs are step functions: integrate |F_u - F_v| between consecutive pooled points
    z = _sort_columns(torch.cat([u, v])).T.contiguous()  # (P, n + m)
    f_u = torch.searchsorted(u.T.contiguous(), z, right=True).to(z.dtype) / u.shape[0]
    f_v = torch.searchsorted(v.T.contiguous(), z, right=True).to(z.dtype) / v.shape[0]
    return ((f_u - f_v).abs()[:, :-1] * z.diff(dim=1)).sum(1)


def sliced_wasserstein(x: Tensor, y: Tensor, n_projections: int = 256, seed: int = 0) -> float:
    """Sliced 1-Wasserstein distance (Bonneel, Rabin, Peyré & Pfister 2015, ``SW_p`` with p = 1),
    Monte Carlo over ``n_projections`` directions drawn uniformly on the sphere from ``seed``.

    .. math:: SW_1(\\mu, \\nu) = \\int_{S^{D-1}} W_1(\\theta_\\#\\mu, \\theta_\\#\\nu)\\, d\\theta
              \\approx \\frac{1}{P}\\sum_{p=1}^{P} W_1(\\theta_p^\\top x, \\theta_p^\\top y)

    Each 1-D ``W_1`` is exact: for equal sizes the mean of ``|u_(i) - v_(i)|`` over sorted
    projections; for unequal sizes ``int |F_u - F_v| dt`` over the pooled sorted projections.

    Args:
        x: ``(N, D)`` samples.
        y: ``(M, D)`` samples.
        n_projections: number of directions ``P``.
        seed: seeds the directions (the same seed gives the same directions).
    """
    x = _points(x, "x")
    y = _points(y, "y", x.shape[1])
    if n_projections < 1:
        raise ValueError(f"n_projections must be >= 1, got {n_projections}")
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(n_projections, x.shape[1], generator=g, dtype=torch.float64)
    theta = (theta / theta.norm(dim=1, keepdim=True)).to(x.device)  # (P, D) uniform on the sphere
    total = 0.0
    for block in _row_blocks(n_projections, x.shape[0] + y.shape[0]):
        total += float(_w1_1d(x @ theta[block].T, y @ theta[block].T).sum())
    return total / n_projections


def wasserstein2(x: Tensor, y: Tensor) -> float:
    """Exact 2-Wasserstein distance between two empirical measures (uniform weights), solved as a
    linear program by POT's network simplex (``ot.emd2``; Flamary et al. 2021).

    .. math:: W_2(\\hat\\mu, \\hat\\nu) = \\Big(\\min_{\\gamma \\in \\Pi(1/n, 1/m)}
              \\sum_{i,j} \\gamma_{ij} |x_i - y_j|^2\\Big)^{1/2}

    Cost is ``O(N^3)``: sets above ``W2_MAX_POINTS`` points raise ``ValueError``.

    Args:
        x: ``(N, D)`` samples.
        y: ``(M, D)`` samples.
    """
    x = _points(x, "x")
    y = _points(y, "y", x.shape[1])
    n, m = x.shape[0], y.shape[0]
    if max(n, m) > W2_MAX_POINTS:
        raise ValueError(
            f"wasserstein2 is exact and O(N^3): got {n} and {m} points, above "
            f"W2_MAX_POINTS = {W2_MAX_POINTS}; use sliced_wasserstein for larger sets"
        )
    import ot  # POT: imported here because it is slow to import and only this function needs it

    a = torch.full((n,), 1.0 / n, dtype=torch.float64).numpy()
    b = torch.full((m,), 1.0 / m, dtype=torch.float64).numpy()
    cost_matrix = _sq_dist(x, y).cpu().numpy()
    cost, log = ot.emd2(a, b, cost_matrix, numItermax=100 * (n + m) ** 2, log=True)
    if log["warning"] is not None:
        raise RuntimeError(f"ot.emd2 did not converge: {log['warning']}")
    return math.sqrt(max(float(cost), 0.0))


# --- goodness of fit from the score alone --------------------------------------------------------


def kernel_stein_discrepancy(
    x: Tensor,
    score: Tensor | Callable[[Tensor], Tensor],
    *,
    kernel: str = "imq",
    c: float = 1.0,
    beta: float = -0.5,
    bandwidth: float | None = None,
) -> float:
    """Squared kernel Stein discrepancy of samples ``x`` from the law whose score is given
    (Gorham & Mackey 2017, the Langevin Stein kernel; Liu, Lee & Jordan 2016), V-statistic.

    .. math::
        \\mathrm{KSD}^2 = \\frac{1}{N^2} \\sum_{i,j} k_0(x_i, x_j), \\quad
        k_0(x, y) = s(x)^\\top s(y)\\, k + s(x)^\\top \\nabla_y k + s(y)^\\top \\nabla_x k
            + \\operatorname{tr} \\nabla_x \\nabla_y k

    with ``s = grad log p`` and base kernel IMQ ``k = (c^2 + |x - y|^2)^beta`` (``beta = -1/2``,
    ``c = 1`` as recommended there) or RBF ``k = exp(-|x - y|^2 / (2h^2))``. Only the score is
    needed, so it judges samples of a density known up to its normaliser. For exact samples its
    mean is ``E k_0(x, x) / N`` (the off-diagonal terms have mean zero): ``2D/N`` for ``N(0, I)``
    with the default IMQ kernel.

    Args:
        x: ``(N, D)`` samples.
        score: ``(N, D)`` scores at ``x``, or a function returning them.
        kernel: ``"imq"`` or ``"rbf"``.
        c, beta: IMQ parameters (``c > 0``, ``-1 < beta < 0``).
        bandwidth: RBF ``h``; default ``median_heuristic(x)``.
    """
    x = _points(x, "x")
    s = _points(score(x) if callable(score) else score, "score", x.shape[1]).to(x.device)
    if s.shape[0] != x.shape[0]:
        raise ValueError(f"score must have shape {tuple(x.shape)}, got {tuple(s.shape)}")
    d = x.shape[1]
    if kernel == "imq":
        if not (c > 0 and -1 < beta < 0):
            raise ValueError(f"IMQ needs c > 0 and -1 < beta < 0, got c={c}, beta={beta}")
    elif kernel == "rbf":
        h = median_heuristic(x) if bandwidth is None else float(bandwidth)
        if not h > 0:
            raise ValueError(f"bandwidth must be positive, got {h}")
    else:
        raise ValueError(f"kernel must be 'imq' or 'rbf', got {kernel!r}")
    s_dot_x = (s * x).sum(1)
    xs, sx = torch.cat([x, s], 1), torch.cat([s, x], 1)

    def k0(i: slice, j: slice) -> Tensor:
        r2 = _sq_dist(x[i], x[j])  # |x_i - x_j|^2
        ss = s[i] @ s[j].T  # s_i . s_j
        # sr = (s_j - s_i) . (x_i - x_j), expanded so that no (rows, N, D) tensor is formed
        sr = (xs[i] @ sx[j].T).sub_(s_dot_x[j][None, :]).sub_(s_dot_x[i][:, None])
        if kernel == "imq":
            q = r2.add_(c * c)
            k = q.pow(beta)
            dk = (k / q).mul_(2 * beta)  # grad_x k = dk (x - y) = -grad_y k
            # tr grad_x grad_y k = -dk (D + 2 (beta - 1) r2 / q), with r2 / q = 1 - c^2 / q
            trace_over_dk = q.reciprocal_().mul_(2 * (beta - 1) * c * c).sub_(d + 2 * (beta - 1))
            return ss.mul_(k).add_(dk.mul_(sr.add_(trace_over_dk)))
        k = (r2 * (-0.5 / h**2)).exp_()
        # grad_x k = -k (x - y) / h^2;  tr grad_x grad_y k = k (D / h^2 - r2 / h^4)
        return ss.sub_(sr, alpha=1 / h**2).add_(d / h**2).sub_(r2, alpha=1 / h**4).mul_(k)

    return _pair_mean(x.shape[0], x.shape[0], k0, same=True)


# --- Monte-Carlo floors and the evaluation report -------------------------------------------------


class Floor(NamedTuple):
    """A metric's Monte-Carlo floor: mean and sample standard deviation over the repeats."""

    mean: float
    std: float
    values: tuple[float, ...]


def mc_floor(
    metric: Callable[..., float],
    sampler: Callable[[int, torch.Generator], Tensor],
    n: int,
    *,
    m: int | None = None,
    repeats: int = 3,
    generator: torch.Generator | None = None,
    two_sample: bool = True,
) -> Floor:
    """The Monte-Carlo floor of ``metric`` at sample size ``n``: its value between two independent
    exact sample sets of sizes ``n`` and ``m`` (default ``n``), over ``repeats`` draws.

    With ``two_sample=False`` the metric takes one set (e.g. KSD): the floor is its value on one
    exact set of size ``n``.

    Args:
        metric: ``metric(x, y) -> float`` (or ``metric(x)`` when ``two_sample`` is False).
        sampler: exact sampler ``sampler(n, generator) -> (n, D)``, e.g. ``GaussianMixture.sample``.
        n, m: sample sizes.
        repeats: number of independent draws.
        generator: the source of the exact samples.
    """
    if n < 1 or (m is not None and m < 1) or repeats < 1:
        raise ValueError(f"n, m and repeats must be >= 1, got n={n}, m={m}, repeats={repeats}")
    values = []
    for _ in range(repeats):
        x = sampler(n, generator)
        values.append(float(metric(x, sampler(m or n, generator)) if two_sample else metric(x)))
    v = torch.tensor(values, dtype=torch.float64)
    std = float(v.std()) if repeats > 1 else 0.0
    return Floor(float(v.mean()), std, tuple(values))


def expected_null_floor(
    name: str,
    target: GaussianMixture,
    n: int,
    m: int,
    *,
    bandwidth: float | None = None,
    pairs: int = 200_000,
    generator: torch.Generator | None = None,
) -> Floor:
    r"""The exact expectation of the energy or MMD V-statistic between independent exact sets of
    sizes ``n`` and ``m``: with the diagonal of each self-term included,

    .. math::
        E[\mathrm{ED}_V] = (1/n + 1/m)\, E|X - X'|, \qquad
        E[\mathrm{MMD}^2_V] = (1/n + 1/m)\,(1 - E\, k(X, X')),

    where the single expectation is estimated from ``pairs`` independent exact pairs (relative
    error about ``1 / sqrt(pairs)``, far below the spread of a few Monte-Carlo repeats). ``std``
    is the standard error of that estimate, scaled alike.
    """
    a, b = target.sample(pairs, generator), target.sample(pairs, generator)
    r = (a - b).norm(dim=1)
    if name == "energy":
        terms = r
    elif name == "mmd":
        if bandwidth is None:
            raise ValueError("the MMD floor needs the bandwidth")
        terms = 1.0 - torch.exp(-(r**2) / (2 * bandwidth**2))
    else:
        raise ValueError(f"no closed-form floor for {name!r}")
    scale = 1.0 / n + 1.0 / m
    mean, se = float(terms.mean()) * scale, float(terms.std()) / math.sqrt(pairs) * scale
    return Floor(mean, se, (mean,))


_FLOORS: dict[tuple, Floor] = {}  # evaluate's floors by everything they depend on
_FLOORS_MAX = 256


def _fingerprint(target: GaussianMixture) -> tuple:
    """The mixture's numbers as bytes: a key equal for equal mixtures (its floors are equal)."""
    parts = (target.weights, target.means, target.covs)
    return tuple((tuple(t.shape), str(t.dtype), t.detach().cpu().numpy().tobytes()) for t in parts)


def evaluate(
    samples: Tensor,
    target: GaussianMixture,
    *,
    reference: Tensor | None = None,
    seed: int = 0,
    metrics: Iterable[str] = METRICS,
    repeats: int = 3,
) -> dict:
    """Score ``samples`` against the exact ``target``: every metric beside its Monte-Carlo floor.

    Two-sample metrics compare ``samples`` with ``reference`` (default: fresh exact samples of
    the same size, drawn with ``seed``); KSD uses the exact score. Each floor is ``mc_floor`` at
    the same sizes with ``repeats`` draws (20 at least for the cheap mode TV) from a generator
    derived from ``seed``; for energy distance and MMD the floor is the exact expectation of the
    V-statistic under equal laws (``expected_null_floor``), which does not fluctuate. The MMD
    bandwidth is the median heuristic of the reference (a property of the target, shared by
    value and floor); ``w2`` is skipped above ``W2_MAX_POINTS`` points.

    Returns a JSON-able dict: ``{"n", "dim", "seed", <metric>: {"value", "floor", "floor_std",
    "ratio"}, "mode_weights", "target_weights"}`` with ``ratio = value / floor`` (``None`` when the
    floor is 0, e.g. ``mode_tv`` of a one-component target).

    Args:
        samples: ``(N, D)`` samples to judge.
        target: the exact mixture.
        reference: ``(M, D)`` exact samples to compare with, instead of fresh ones.
        seed: seeds the reference, the floors and the sliced directions.
        metrics: names from ``METRICS``.
        repeats: draws per floor.
    """
    metrics = tuple(metrics)
    unknown = [name for name in metrics if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {', '.join(METRICS)}")
    x = _points(samples, "samples", target.dim).cpu()  # the target's tensors live on the CPU
    if x.shape[0] < 2:
        raise ValueError(f"samples must hold at least 2 points, got {x.shape[0]}")
    g = torch.Generator().manual_seed(seed)
    if reference is None:
        y = target.sample(x.shape[0], g)
    else:
        y = _points(reference, "reference", target.dim).cpu()
    floor_seed = int(torch.randint(2**62, (1,), generator=g))
    h = median_heuristic(y)
    two_sample = {
        "mode_tv": lambda a, b: mode_tv(a, b, target),
        "energy": energy_distance,
        "sliced_w1": lambda a, b: sliced_wasserstein(a, b, seed=seed),
        "mmd": lambda a, b: mmd(a, b, bandwidth=h),
        "w2": wasserstein2,
    }

    def ksd(a: Tensor) -> float:
        return kernel_stein_discrepancy(a, target.score)

    n, m = x.shape[0], y.shape[0]
    out: dict = {"n": n, "dim": target.dim, "seed": seed}
    for name in metrics:
        if name == "w2" and max(n, m) > W2_MAX_POINTS:
            continue
        value = ksd(x) if name == "ksd" else two_sample[name](x, y)
        # the floor depends on the target, the sizes and the seeds only (never on the samples):
        # rows scored with the same ones (a study's rows) share it
        key = (name, _fingerprint(target), n, m, floor_seed, repeats, seed, h if name == "mmd" else None)
        floor = _FLOORS.get(key)
        if floor is None:
            floor_gen = torch.Generator().manual_seed(floor_seed)
            if name in ("energy", "mmd"):
                floor = expected_null_floor(name, target, n, m, bandwidth=h, generator=floor_gen)
            elif name == "ksd":
                floor = mc_floor(ksd, target.sample, n, repeats=repeats, generator=floor_gen, two_sample=False)
            else:
                # mode TV costs one assignment per set: many repeats make its floor steady
                reps = max(repeats, 20) if name == "mode_tv" else repeats
                floor = mc_floor(two_sample[name], target.sample, n, m=m, repeats=reps, generator=floor_gen)
            if len(_FLOORS) >= _FLOORS_MAX:
                _FLOORS.pop(next(iter(_FLOORS)))  # the oldest
            _FLOORS[key] = floor
        ratio = value / floor.mean if floor.mean > 0 else None
        out[name] = {"value": value, "floor": floor.mean, "floor_std": floor.std, "ratio": ratio}
    out["mode_weights"] = mode_weights(x, target).tolist()
    out["target_weights"] = target.weights.tolist()
    return out
