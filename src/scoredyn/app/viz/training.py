"""Training runs and image samples: the trainer's logged scalars against step, and a grid of
8x8 digits."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from .common import NAVY, as_numpy, new_figure

__all__ = ["training_curves", "digits_grid", "read_metrics"]

# what train.Trainer logs, with axis labels; other numeric keys are drawn under their own name
LABELS = {
    "loss": "loss (mean over the logging window)",
    "lr": "learning rate",
    "grad_norm": "gradient norm (before clipping)",
    "samples_per_s": "throughput (samples / s)",
}
LOG_SCALE = {"loss", "grad_norm"}


def read_metrics(source: str | os.PathLike | Iterable[dict]) -> list[dict]:
    """The records of a trainer's ``metrics.jsonl`` (a file, or a run folder holding one), or the
    given records; each must have a ``step``. Blank lines are skipped."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_dir():
            path = path / "metrics.jsonl"
        if not path.is_file():
            raise ValueError(f"no metrics file at {path}")
        records = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}, line {n}: not JSON ({e.msg})") from None
    else:
        records = list(source)
    if not records:
        raise ValueError("no metric records to draw")
    for r in records:
        if not isinstance(r, dict) or "step" not in r:
            raise ValueError(f"every metric record needs a 'step', got {r!r}")
    return sorted(records, key=lambda r: r["step"])


def training_curves(
    source: str | os.PathLike | Iterable[dict],
    *,
    keys: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Logged scalars against the optimiser step, one panel each (``loss`` first).

    ``train.Trainer`` writes one JSON line per logging interval with ``step``, ``loss`` (the mean
    over the interval), ``lr``, ``grad_norm`` and ``samples_per_s``; any other numeric key is drawn
    too. The loss and gradient norm use a log scale when they are positive and span more than a
    factor of 20.

    Args:
        source: a ``metrics.jsonl`` path, a run folder, or the records themselves.
        keys: which scalars to draw (default: every numeric key but ``step``).
        title: the figure title (default: the run folder's name, if known).
    """
    records = read_metrics(source)
    numeric = [k for k in records[0] if k != "step" and _is_number(records[0][k])]
    for r in records[1:]:
        numeric += [k for k in r if k != "step" and k not in numeric and _is_number(r[k])]
    if keys is None:
        keys = sorted(numeric, key=lambda k: (k != "loss", list(LABELS).index(k) if k in LABELS else len(LABELS)))
    else:
        missing = [k for k in keys if k not in numeric]
        if missing:
            raise ValueError(f"keys not in the records: {', '.join(missing)} (there are: {', '.join(numeric)})")
    if not keys:
        raise ValueError("the records hold no numeric scalar besides 'step'")
    ncols = min(len(keys), 2)
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = new_figure(nrows, ncols, panel=(4.6, 2.9))
    for ax, key in zip(axes.ravel(), keys, strict=False):
        pairs = [(r["step"], r[key]) for r in records if _is_number(r.get(key))]
        steps, values = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs], dtype=np.float64)
        ax.plot(steps, values, color=NAVY, lw=1.5, marker="o" if len(steps) <= 30 else None, ms=3)
        if key in LOG_SCALE and (values > 0).all() and values.max() > 20 * values.min():
            ax.set_yscale("log")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(LABELS.get(key, key))
        ax.grid(alpha=0.3)
        ax.set_title(f"{key}: last {values[-1]:.4g}", fontsize=10)
    for ax in axes.ravel()[len(keys) :]:
        ax.set_visible(False)
    default = f"Training run {Path(source).name}" if isinstance(source, str | os.PathLike) else "Training run"
    fig.suptitle(title or default)
    return fig


def digits_grid(
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray | None = None,
    *,
    ncol: int = 10,
    shape: tuple[int, int] = (8, 8),
    title: str | None = None,
) -> Figure:
    """Images in a grid (ink dark on white), with their labels above them when given.

    The tiles are laid into one mosaic (one ``imshow``; NaN gutters between them, drawn grey).

    Args:
        images: ``(N, H*W)`` in ``[-1, 1]`` (the digits' data scale; values outside are clipped).
        labels: ``(N,)`` class labels, or ``None``.
        ncol: tiles per row.
        shape: ``(H, W)`` of one image.
        title: the figure title.
    """
    x = as_numpy(images)
    h, w = shape
    if x.ndim != 2 or x.shape[1] != h * w or x.shape[0] == 0:
        raise ValueError(f"images must have shape (N, {h * w}), got {x.shape}")
    if not isinstance(ncol, int) or ncol < 1:
        raise ValueError(f"ncol must be a positive integer, got {ncol!r}")
    if labels is not None and len(labels) != x.shape[0]:
        raise ValueError(f"labels must have one entry per image ({x.shape[0]}), got {len(labels)}")
    n = x.shape[0]
    cols = min(ncol, n)
    rows = math.ceil(n / cols)
    top = 3 if labels is not None else 0  # pixel rows above each tile for its label
    sy, sx = h + 1 + top, w + 1  # tile strides, one pixel of gutter
    mosaic = np.full((rows * sy - 1, cols * sx - 1), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        mosaic[r * sy + top : r * sy + top + h, c * sx : c * sx + w] = np.clip(x[i].reshape(h, w), -1, 1)
    if n % cols:  # the empty end of the last row is blank paper, not gutter
        mosaic[(rows - 1) * sy :, (n % cols) * sx - 1 :] = -1.0
    fig = new_figure(1, 1, panel=(cols * 0.55, rows * 0.55 * sy / sx))[0]
    ax = fig.axes[0]
    cmap = colormaps["gray_r"].with_extremes(bad="white" if labels is not None else "0.85")
    ax.imshow(mosaic, cmap=cmap, vmin=-1.0, vmax=1.0, interpolation="nearest")
    if labels is not None:
        for i, lab in enumerate(np.asarray(labels).tolist()):
            r, c = divmod(i, cols)
            ax.text(c * sx + (w - 1) / 2, r * sy + top - 0.7, str(lab), ha="center", va="bottom", fontsize=7)
    ax.set_axis_off()
    ax.set_title(title or f"{n} images", fontsize=10)
    return fig


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
