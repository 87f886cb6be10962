"""Score fields in the plane: one panel per noise level, and the error of a learned field.

The score of the noised density ``p_t`` (Song et al. 2021, eq. 1; Tweedie: ``s = -eps / sigma``)

.. math::
    s(x, t) = \\nabla_x \\log p_t(x), \\qquad
    p_t = \\textstyle\\sum_k \\pi_k\\, \\mathcal N(\\alpha \\mu_k,\\ \\alpha^2 \\Sigma_k + \\sigma^2 I),

drawn at the times where the noise-to-signal ratio ``sigma_hat = sigma / alpha`` takes the given
values (``Process.sigma_hat_to_t``), so one call means the same noise under every
process.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ...core.fields import Field, OnProcess
from ...core.targets import GaussianMixture
from .common import (
    as_numpy,
    check_2d,
    density_on,
    evaluate,
    exact_target,
    hdr_levels,
    limits,
    mixture_box,
    new_figure,
    plane_grid,
    time_of,
)

__all__ = ["score_field", "score_error_field"]

DEFAULT_SIGMA_HATS = (3.0, 1.0, 0.3)
DEFAULT_LIM = 4.0  # window of a learned field with no target to fit it to


def score_field(
    field: Field,
    *,
    sigma_hats: Sequence[float] = DEFAULT_SIGMA_HATS,
    lim: float | Sequence[float] | None = None,
    grid: int = 21,
    density: bool = True,
    target: GaussianMixture | None = None,
    streamlines: bool = False,
    cmap: str = "viridis",
) -> Figure:
    """The score ``s(x, t) = grad log p_t(x)`` of a 2-D field, one panel per noise level.

    Arrows have one length and show the direction of the score; their colour is ``|s|`` on a log
    scale shared by all panels (one colour bar), so the sharpening of the field as the noise
    falls reads off the colour. Grey lines are the contours of the exact ``p_t`` holding 50% and
    90% of its mass: for an exact field its own mixture, for a learned one ``target`` if given.

    Args:
        field: any 2-D field (``AnalyticField``, a trained ``NetworkField``, ...).
        sigma_hats: noise levels ``sigma / alpha`` of the panels.
        lim: half-width of the square window, or ``(xmin, xmax, ymin, ymax)``; by default the
            window holding the noised target's components to 3 standard deviations.
        grid: arrows per side (``grid**2`` arrows per panel).
        density: draw the contours of ``p_t`` (needs an exact field or ``target``).
        target: the exact data mixture, for the contours behind a learned field.
        streamlines: draw streamlines (``streamplot``) instead of arrows.
        cmap: colour map of ``|s|``.
    """
    sigma_hats = _check_levels(sigma_hats)
    target = target if target is not None else exact_target(field)
    times = [time_of(field.process, sh) for sh in sigma_hats]
    lims = _window(lim, target, field.process, times)
    fig, axes = new_figure(1, len(sigma_hats), plane=True)
    X, Y, pts = plane_grid(lims, grid)
    panels = []
    for sh, t in zip(sigma_hats, times, strict=True):
        s = evaluate(field, "score", pts, t)
        panels.append((sh, t, s, np.linalg.norm(s, axis=1)))
    mags = np.concatenate([p[3] for p in panels])
    positive = mags[mags > 0]
    lo, hi = (positive.min(), positive.max()) if positive.size else (1e-3, 1.0)
    norm = LogNorm(vmin=lo, vmax=max(hi, lo * (1 + 1e-9)))
    spacing = min(lims[1] - lims[0], lims[3] - lims[2]) / (grid - 1)
    mappable = None
    for ax, (sh, t, s, mag) in zip(axes[0], panels, strict=True):
        if density and target is not None:
            _density_contours(ax, target.noised(field.process, t), lims)
        if streamlines:
            stream = ax.streamplot(
                X, Y, s[:, 0].reshape(X.shape), s[:, 1].reshape(X.shape),
                color=np.clip(mag, lo, None).reshape(X.shape), cmap=cmap, norm=norm, density=1.1, linewidth=1.0,
            )  # fmt: skip
            mappable = stream.lines
        else:
            unit = s / np.maximum(mag, 1e-300)[:, None] * 0.8 * spacing
            mappable = ax.quiver(
                pts[:, 0].numpy(), pts[:, 1].numpy(), unit[:, 0], unit[:, 1], np.clip(mag, lo, None),
                cmap=cmap, norm=norm, angles="xy", scale_units="xy", scale=1.0, width=0.006, pivot="mid",
            )  # fmt: skip
        _frame(ax, lims, rf"$\hat\sigma = {sh:g}$  ($t = {t:.3g}$)")
    axes[0, 0].set_ylabel(r"$x_2$")
    if density and target is not None:
        fig.legend(handles=[_contour_handle()], loc="outside lower center", fontsize=9, frameon=False)
    fig.colorbar(mappable, ax=axes[0, :].tolist(), label=r"$|\nabla_x \log p_t(x)|$")
    fig.suptitle(f"Score field of {field.process.name}" + (f" ({target.name})" if target is not None else ""))
    return fig


def score_error_field(
    field: Field,
    exact_field: Field,
    *,
    sigma_hats: Sequence[float] = DEFAULT_SIGMA_HATS,
    lim: float | Sequence[float] | None = None,
    grid: int = 81,
    vmax: float | None = None,
    cmap: str = "magma",
) -> Figure:
    """The relative error of a learned score, ``|s_theta - s| / |s|``, one panel per noise level.

    Both fields are read on ``exact_field``'s process at the time of each ``sigma_hat``; a learned
    field of another process is read through ``parameterizations.OnProcess`` (equal SNR). The
    colour scale is logarithmic (the error spans decades and peaks where the exact score vanishes)
    and ends at the largest error in any panel (or ``vmax``), with one colour bar; lines are the
    50%/90% mass contours of the exact ``p_t``.

    Args:
        field: the learned 2-D field.
        exact_field: the reference (an ``AnalyticField``).
        sigma_hats, lim: as in ``score_field``.
        grid: pixels per side of each error map.
        vmax: upper end of the colour scale (default: the largest error drawn).
        cmap: colour map of the error.
    """
    sigma_hats = _check_levels(sigma_hats)
    target = exact_target(exact_field)
    lims = _window(lim, target, exact_field.process, [time_of(exact_field.process, sh) for sh in sigma_hats])
    X, _, pts = plane_grid(lims, grid)
    if field.process.name != exact_field.process.name:
        field = OnProcess(field, exact_field.process)  # read at equal SNR, on the exact field's x
    errors = []
    for sh in sigma_hats:
        t = time_of(exact_field.process, sh)
        s_hat = evaluate(field, "score", pts, t)
        s = evaluate(exact_field, "score", pts, t)
        err = np.linalg.norm(s_hat - s, axis=1) / np.maximum(np.linalg.norm(s, axis=1), 1e-12)
        errors.append((sh, t, err.reshape(X.shape)))
    top = float(vmax) if vmax is not None else max(float(e.max()) for _, _, e in errors)
    # log colour: the error spans decades (it peaks where the exact score vanishes)
    floor = max(min(float(e[e > 0].min()) if (e > 0).any() else top for _, _, e in errors), top * 1e-4)
    norm = LogNorm(vmin=min(floor, top * 0.5), vmax=max(top, 1e-12))
    fig, axes = new_figure(1, len(sigma_hats), plane=True)
    image = None
    for ax, (sh, t, err) in zip(axes[0], errors, strict=True):
        shown = np.clip(err, norm.vmin, None)
        image = ax.imshow(shown, origin="lower", extent=lims, cmap=cmap, norm=norm, interpolation="nearest")
        if target is not None:
            _density_contours(ax, target.noised(exact_field.process, t), lims, color="white")
        _frame(ax, lims, rf"$\hat\sigma = {sh:g}$: median {np.median(err):.2g}, max {err.max():.2g}")
    axes[0, 0].set_ylabel(r"$x_2$")
    fig.colorbar(image, ax=axes[0, :].tolist(), label=r"$|s_\theta - s|\,/\,|s|$")
    fig.suptitle("Relative error of the learned score")
    return fig


def _window(lim, target: GaussianMixture | None, process, times: Sequence[float]):
    if lim is not None:
        return limits(lim)
    if target is None:
        return limits(DEFAULT_LIM)
    check_2d(target.dim, "target")
    return mixture_box([target.noised(process, t) for t in times])


def _check_levels(sigma_hats: Sequence[float]) -> list[float]:
    levels = [float(v) for v in as_numpy(sigma_hats).ravel()]
    if not levels or any(not v > 0 for v in levels):
        raise ValueError(f"sigma_hats must be positive noise levels, got {sigma_hats!r}")
    return levels


def _density_contours(ax, law: GaussianMixture, lims, color: str = "0.45", n: int = 160) -> None:
    X, Y, _ = plane_grid(lims, n)
    p = density_on(law, X, Y)
    area = (X[0, 1] - X[0, 0]) * (Y[1, 0] - Y[0, 0])
    levels = hdr_levels(p, area)
    if levels.size:
        ax.contour(X, Y, p, levels=levels, colors=color, linewidths=1.0, linestyles=["--", "-"][: levels.size])


def _contour_handle() -> Line2D:
    return Line2D([], [], color="0.45", lw=1.0, label=r"$p_t$: 90% / 50% mass")


def _frame(ax, lims, title: str) -> None:
    ax.set_xlim(lims[0], lims[1])
    ax.set_ylim(lims[2], lims[3])
    ax.set_aspect("equal")
    ax.set_xlabel(r"$x_1$")
    ax.set_title(title, fontsize=10)
