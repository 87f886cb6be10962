"""The noise compass: denoising as vector subtraction.

A noisy point is ``x_t = alpha x_0 + sigma eps``. The field predicts the noise
``eps_hat = -sigma s(x_t, t)``; removing it and undoing the scale gives Tweedie's reconstruction
(Robbins 1956; Efron 2011; DESIGN.md):

.. math::
    \\hat x_0 = \\frac{x_t - \\sigma \\hat\\epsilon}{\\alpha} = \\frac{x_t + \\sigma^2 \\nabla \\log p_t(x_t)}{\\alpha}
            = \\mathbb E[x_0 \\mid x_t].

The figure draws, at each noisy point, the predicted noise ``sigma eps_hat`` (ending at ``x_t``,
so it is read as the step that carried ``alpha x0_hat`` to ``x_t``), the true noise
``sigma eps`` when ``x_0`` is known (from ``alpha x_0`` to ``x_t``), and the reconstruction arrow
``x_t -> x0_hat``, over the density ``p_t``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import Tensor

from ...core.fields import Field
from ...core.targets import GaussianMixture
from .common import (
    INK,
    OKABE_ITO,
    TOL_MUTED,
    as_numpy,
    check_2d,
    density_on,
    evaluate,
    exact_target,
    limits,
    new_figure,
    plane_grid,
)

__all__ = ["noise_compass", "ARROWS"]

#: the arrows' colours: Okabe-Ito blue and vermillion and Tol's wine, dark enough (contrast >= 3.8:1
#: against white) to stand out on the light density image, and apart under colour-vision deficiencies
ARROWS = {"predicted": OKABE_ITO[5], "reconstruction": OKABE_ITO[6], "true": TOL_MUTED[7]}
#: the density image stays in the light part of its grey map (at most this far towards black)
BACKGROUND_DEPTH = 0.35


def noise_compass(
    field: Field,
    x_t: Tensor | np.ndarray,
    t: float,
    x0: Tensor | np.ndarray | None = None,
    *,
    target: GaussianMixture | None = None,
    lim: float | Sequence[float] | None = None,
    grid: int = 160,
) -> Figure:
    """Predicted noise and Tweedie reconstructions at noisy points ``x_t`` (one panel).

    Arrows are drawn to scale in data units (``scale_units="xy"``), so the reconstruction arrow's
    tip is ``x0_hat`` itself and the predicted-noise arrow starts at ``alpha x0_hat``.

    Args:
        field: a 2-D field.
        x_t: noisy points ``(N, 2)`` at time ``t``.
        t: the time of ``x_t`` (of ``field.process``).
        x0: the clean points behind ``x_t``, ``(N, 2)``; adds the true noise arrows and ``x_0``.
        target: the exact data mixture, for the density behind a learned field
            (an exact field's own mixture by default).
        lim: the window (default: every point drawn, in a square, padded by a quarter of their span).
        grid: pixels per side of the density image.
    """
    xt = torch.as_tensor(as_numpy(x_t))
    if xt.ndim != 2:
        raise ValueError(f"x_t must have shape (N, 2), got {tuple(xt.shape)}")
    check_2d(xt.shape[1], "x_t")
    p = field.process
    t = float(t)
    if not p.t_min < t <= p.t_max:
        raise ValueError(f"t must lie in ({p.t_min}, {p.t_max}] (sigma > 0), got {t}")
    a, s = float(p.alpha(t)), float(p.sigma(t))
    eps_hat = evaluate(field, "eps", xt, t)
    x0_hat = evaluate(field, "denoise", xt, t)
    xt_np = xt.numpy()
    noise = s * eps_hat  # from alpha * x0_hat to x_t
    x0_np = None
    if x0 is not None:
        x0_np = as_numpy(x0)
        if x0_np.shape != xt_np.shape:
            raise ValueError(f"x0 must have the shape of x_t {xt_np.shape}, got {x0_np.shape}")
    target = target if target is not None else exact_target(field)
    pts = [xt_np, x0_hat, xt_np - noise] + ([x0_np] if x0_np is not None else [])
    lims = _window(pts) if lim is None else limits(lim)

    fig, axes = new_figure(1, 1, panel=(6.0, 5.4), plane=True)
    ax = axes[0, 0]
    if target is not None:
        X, Y, _ = plane_grid(lims, grid)
        density = density_on(target.noised(p, t), X, Y)
        light_greys = ListedColormap(colormaps["Greys"](np.linspace(0.0, BACKGROUND_DEPTH, 256)))
        image = ax.imshow(
            density, origin="lower", extent=lims, cmap=light_greys, aspect="auto", interpolation="bilinear"
        )  # light greys only: the arrows stay in front
        fig.colorbar(image, ax=ax, label=rf"$p_t(x)$ at $t = {t:.3g}$", shrink=0.85)
    # thick arrows with heads, outlined in white so that they stay visible where they cross each other
    arrow = {"angles": "xy", "scale_units": "xy", "scale": 1.0, "width": 0.012, "headwidth": 3.2,
             "headlength": 4.0, "headaxislength": 3.6, "edgecolor": "white", "linewidth": 0.7}  # fmt: skip
    handles = []
    if x0_np is not None:
        true_noise = xt_np - a * x0_np
        ax.quiver(a * x0_np[:, 0], a * x0_np[:, 1], true_noise[:, 0], true_noise[:, 1], color=ARROWS["true"],
                  zorder=3, **arrow)  # fmt: skip
        ax.scatter(x0_np[:, 0], x0_np[:, 1], marker="*", s=90, color=INK, edgecolors="white", linewidths=0.6,
                   zorder=6)  # fmt: skip
        handles += [
            Line2D([], [], color=ARROWS["true"], lw=3, label=r"true noise $\sigma\epsilon$ (from $\alpha x_0$)"),
            Line2D([], [], ls="", marker="*", ms=10, color=INK, label=r"$x_0$"),
        ]
    start = xt_np - noise
    ax.quiver(start[:, 0], start[:, 1], noise[:, 0], noise[:, 1], color=ARROWS["predicted"], zorder=4, **arrow)
    recon = x0_hat - xt_np
    ax.quiver(xt_np[:, 0], xt_np[:, 1], recon[:, 0], recon[:, 1], color=ARROWS["reconstruction"], zorder=4, **arrow)
    ax.scatter(xt_np[:, 0], xt_np[:, 1], s=40, color=INK, edgecolors="white", linewidths=0.8, zorder=5)
    ax.scatter(x0_hat[:, 0], x0_hat[:, 1], marker="X", s=60, color=ARROWS["reconstruction"], edgecolors="white",
               linewidths=0.6, zorder=5)  # fmt: skip
    predicted, tweedie = ARROWS["predicted"], ARROWS["reconstruction"]
    handles += [
        Line2D([], [], color=predicted, lw=3, label=r"predicted noise $\sigma\hat\epsilon$ (from $\alpha\hat x_0$)"),
        Line2D([], [], color=tweedie, lw=3, label=r"reconstruction $x_t \to \hat x_0$"),
        Line2D([], [], ls="", marker="o", color=INK, label=r"$x_t$"),
        Line2D([], [], ls="", marker="X", color=tweedie, label=r"$\hat x_0 = (x_t - \sigma\hat\epsilon)/\alpha$"),
    ]
    ax.set_xlim(lims[0], lims[1])
    ax.set_ylim(lims[2], lims[3])
    ax.set_aspect("equal")
    ax.set_xlabel(r"$x_1$")
    ax.set_ylabel(r"$x_2$")
    ax.set_title(rf"{p.name}, $t = {t:.3g}$: $\alpha = {a:.3g}$, $\sigma = {s:.3g}$", fontsize=10)
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=9, frameon=False)
    fig.suptitle("Noise compass: denoising as vector subtraction")
    return fig


def _window(clouds) -> tuple[float, float, float, float]:
    """A square holding every point drawn, padded by a quarter of their span (at least 1 unit)."""
    pts = np.concatenate([c.reshape(-1, 2) for c in clouds])
    lo, hi = pts.min(0), pts.max(0)
    centre, half = (lo + hi) / 2, ((hi - lo).max() * 1.5 / 2 + 1.0)
    return float(centre[0] - half), float(centre[0] + half), float(centre[1] - half), float(centre[1] + half)
