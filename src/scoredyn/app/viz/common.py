"""Pieces every figure shares: a pyplot-free figure on the Agg canvas, arrays, grids over the
plane, densities of exact mixtures on a grid, and the contour levels that enclose given mass.

Figures are built as ``matplotlib.figure.Figure`` objects with an Agg canvas, never through
``pyplot``: nothing is registered globally, nothing is shown, and no backend is switched.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from torch import Tensor

from ...core.fields import AnalyticField, Field
from ...core.processes import Process
from ...core.targets import GaussianMixture

Limits = tuple[float, float, float, float]

# one palette for the package: data/truth in ink, model in a warm accent
INK = "#222222"
ACCENT = "#d1495b"
TEAL = "#00798c"
GOLD = "#edae49"
NAVY = "#30638e"

# colour-blind-safe qualitative palettes for figures with many lines or arrows
#: Okabe & Ito (2008), "Color Universal Design": eight colours, black first
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
#: Paul Tol's "muted" scheme: nine colours that stay apart under the common colour-vision deficiencies
TOL_MUTED = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499")
#: markers that differ in shape, not only in size, to tell lines apart where colours repeat or blur
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    panel: tuple[float, float] = (3.6, 3.4),
    plane: bool = False,
    fixed: bool = False,
    **subplot_kw,
) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure of ``nrows x ncols`` panels on the Agg canvas, and its axes
    as a 2-D array (always 2-D, whatever the shape). ``plane``: panels of the plane with equal
    aspect (the ``compressed`` layout, which keeps colour bars and labels clear of fixed-aspect axes).
    ``fixed``: no layout engine (the caller places the panels, e.g. with ``subplots_adjust``): for
    dozens of panels, whose constrained layout is slow to draw."""
    size = (panel[0] * ncols + 0.9, panel[1] * nrows + 0.5)
    fig = Figure(figsize=size, layout=None if fixed else "compressed" if plane else "constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def as_numpy(x) -> np.ndarray:
    """A tensor or array-like as a float64 NumPy array (detached, on the CPU)."""
    if isinstance(x, Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def limits(lim: float | Sequence[float] | None, *clouds: np.ndarray, pad: float = 0.08) -> Limits:
    """Plot limits ``(xmin, xmax, ymin, ymax)``: a number ``L`` means the square ``[-L, L]^2``, four
    numbers are taken as given, ``None`` fits the 0.5-99.5 percentiles of the clouds (plus ``pad``)."""
    if lim is None:
        pts = np.concatenate([c.reshape(-1, 2) for c in clouds]) if clouds else np.zeros((1, 2))
        lo, hi = np.percentile(pts, 0.5, axis=0), np.percentile(pts, 99.5, axis=0)
        span = np.maximum(hi - lo, 1e-6)
        lo, hi = lo - pad * span, hi + pad * span
        return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])
    if np.ndim(lim) == 0:
        lim = float(lim)
        if lim <= 0:
            raise ValueError(f"lim must be positive, got {lim}")
        return -lim, lim, -lim, lim
    vals = tuple(float(v) for v in lim)
    if len(vals) != 4 or vals[0] >= vals[1] or vals[2] >= vals[3]:
        raise ValueError(f"lim must be a number or (xmin, xmax, ymin, ymax), got {lim!r}")
    return vals  # type: ignore[return-value]


def mixture_box(laws: Sequence[GaussianMixture], reach: float = 3.0) -> Limits:
    """The smallest window holding every component of every 2-D law to ``reach`` standard
    deviations (along each axis), padded by 5%: where the mass of the densities drawn lies."""
    lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
    for law in laws:
        sd = torch.sqrt(torch.diagonal(law.covs, dim1=1, dim2=2)).numpy()
        m = law.means.numpy()
        lo, hi = np.minimum(lo, (m - reach * sd).min(0)), np.maximum(hi, (m + reach * sd).max(0))
    pad = 0.05 * (hi - lo)
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


def cover(lims: Limits, clouds: Sequence[np.ndarray], pad: float = 0.04) -> Limits:
    """``lims`` grown to hold every point of ``clouds`` (plus ``pad`` of their span)."""
    pts = np.concatenate([np.asarray(c).reshape(-1, 2) for c in clouds])
    lo, hi = pts.min(0), pts.max(0)
    margin = pad * (hi - lo + 1e-9)
    return (
        min(lims[0], float(lo[0] - margin[0])),
        max(lims[1], float(hi[0] + margin[0])),
        min(lims[2], float(lo[1] - margin[1])),
        max(lims[3], float(hi[1] + margin[1])),
    )


def plane_grid(lims: Limits, n: int) -> tuple[np.ndarray, np.ndarray, Tensor]:
    """An ``n x n`` grid over ``lims``: mesh arrays ``X, Y`` and the points as a float64 ``(n*n, 2)``
    tensor (row-major, matching ``X.ravel()``)."""
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"grid must be an integer >= 2, got {n!r}")
    xs, ys = np.linspace(lims[0], lims[1], n), np.linspace(lims[2], lims[3], n)
    X, Y = np.meshgrid(xs, ys)
    pts = torch.from_numpy(np.stack([X.ravel(), Y.ravel()], axis=1))
    return X, Y, pts


def check_2d(dim: int, what: str) -> None:
    if dim != 2:
        raise ValueError(f"{what} must be 2-D to be drawn in the plane, got dimension {dim}")


def marginal(target: GaussianMixture, dims: tuple[int, int] = (0, 1)) -> GaussianMixture:
    """The exact 2-D marginal of a mixture on coordinates ``dims`` (itself when already 2-D)."""
    if target.dim == 2 and tuple(dims) == (0, 1):
        return target
    d = list(dims)
    return GaussianMixture(target.weights, target.means[:, d], target.covs[:, d][:, :, d], name=target.name)


def density_on(target: GaussianMixture, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``p(x)`` of a 2-D mixture on the mesh ``X, Y`` (exact, via ``log_prob``)."""
    pts = torch.from_numpy(np.stack([X.ravel(), Y.ravel()], axis=1))
    return torch.exp(target.log_prob(pts)).numpy().reshape(X.shape)


def hdr_levels(density: np.ndarray, cell_area: float, masses: Sequence[float] = (0.9, 0.5)) -> np.ndarray:
    """Density thresholds whose super-level sets hold ``masses`` of the (gridded) probability:
    the highest-density-region contours, ascending as ``contour`` wants them."""
    flat = np.sort(density.ravel())[::-1]
    cum = np.cumsum(flat) * cell_area
    total = cum[-1] if cum[-1] > 0 else 1.0
    levels = [flat[min(np.searchsorted(cum / total, m), flat.size - 1)] for m in masses]
    levels = np.unique(np.asarray(levels, dtype=np.float64))
    return levels[levels > 0]


def exact_target(field: Field) -> GaussianMixture | None:
    """The mixture behind an exact field (``AnalyticField``), else ``None``."""
    return field.target if isinstance(field, AnalyticField) else None


def time_of(process: Process, sigma_hat: float) -> float:
    """The time at which ``sigma / alpha = sigma_hat`` (``lambda = -log sigma_hat``)."""
    if sigma_hat <= 0:
        raise ValueError(f"sigma_hats must be positive, got {sigma_hat}")
    t = float(process.sigma_hat_to_t(torch.tensor([float(sigma_hat)], dtype=torch.float64))[0])
    return min(max(t, process.t_min), process.t_max)


def evaluate(field: Field, method: str, pts: Tensor, t: float) -> np.ndarray:
    """``field.<method>(pts, t)`` (``score``, ``eps`` or ``denoise``) at float64 points and one time,
    in the dtype and on the device of a network field's parameters, returned as NumPy."""
    like = _first_parameter(field)
    x = pts.to(torch.float64) if like is None else pts.to(like.device, like.dtype)
    with torch.no_grad():
        return as_numpy(getattr(field, method)(x, t))


def label_line_ends(ax, ends: Sequence[tuple[str, float, float, object]], *, fontsize: float = 7.5) -> list:
    """Direct labels: each line's name just right of the axes, at the height of its last point, moved
    apart where they would overlap (a short leader joins a moved label to its line). Call it after
    the axes' limits, scales and layout are final (``fig.draw_without_rendering()`` runs a
    constrained layout): the spacing is worked out from the axes' height.

    Args:
        ax: the axes.
        ends: ``(text, x, y, colour)`` of each line's last point, in data coordinates.
        fontsize: the labels' size in points.

    Returns:
        the annotations, in the order of ``ends``.
    """
    if not ends:
        return []
    ax.get_xlim(), ax.get_ylim()  # settle the autoscaled limits before reading positions
    to_axes = ax.transAxes.inverted()
    heights = [float(to_axes.transform(ax.transData.transform((x, y)))[1]) for _, x, y, _ in ends]
    bbox = ax.get_position()  # the axes' height in inches: labels need fontsize * 1.2 points each
    gap = fontsize * 1.25 / 72.0 / max(bbox.height * ax.figure.get_figheight(), 1e-6)
    placed = _spread(heights, gap)
    notes = []
    for (text, x, y, colour), h in zip(ends, placed, strict=True):
        notes.append(
            ax.annotate(
                text, xy=(x, y), xycoords="data", xytext=(1.03, h), textcoords="axes fraction", fontsize=fontsize,
                color=darker(colour), va="center", ha="left", annotation_clip=False,
                arrowprops={"arrowstyle": "-", "color": colour, "lw": 0.6, "shrinkA": 1, "shrinkB": 2},
            )
        )  # fmt: skip
    return notes


def _spread(heights: Sequence[float], gap: float) -> list[float]:
    """Heights moved apart to at least ``gap``, in their own order, each group of crowded labels
    centred on the mean of the heights it labels (so leaders stay short), then kept within [0, 1]
    where they fit."""
    order = np.argsort(heights, kind="stable")
    want = np.asarray(heights, dtype=np.float64)[order]
    clusters: list[list[int]] = []  # runs of labels placed gap apart, each centred on its members' mean
    for i in range(want.size):
        clusters.append([i])
        while len(clusters) > 1 and _bottom(clusters[-1], want, gap) < _top(clusters[-2], want, gap) + gap:
            last = clusters.pop()  # overlapping: merge, and centre the merged run again
            clusters[-1] += last
    ys = np.empty_like(want)
    for c in clusters:
        ys[c] = _bottom(c, want, gap) + gap * np.arange(len(c))
    if ys[-1] - ys[0] > 1.0:  # more labels than the axes' height holds: centre them on it
        ys += 0.5 - (ys[0] + ys[-1]) / 2
    elif ys[0] < 0.0 or ys[-1] > 1.0:  # move the whole stack inside
        ys += -ys[0] if ys[0] < 0.0 else 1.0 - ys[-1]
    out = np.empty_like(ys)
    out[order] = ys
    return out.tolist()


def _bottom(cluster: list[int], want: np.ndarray, gap: float) -> float:
    return float(want[cluster].mean() - gap * (len(cluster) - 1) / 2)


def _top(cluster: list[int], want: np.ndarray, gap: float) -> float:
    return _bottom(cluster, want, gap) + gap * (len(cluster) - 1)


def darker(colour, amount: float = 0.35) -> tuple[float, float, float]:
    """``colour`` mixed with black by ``amount``: text in a line's colour that stays legible on white."""
    r, g, b = to_rgb(colour)
    return (r * (1 - amount), g * (1 - amount), b * (1 - amount))


def _first_parameter(field: Field) -> Tensor | None:
    for obj in (field, getattr(field, "inner", None)):
        net = getattr(obj, "net", None)
        if net is not None:
            return next(net.parameters(), None)
    return None
