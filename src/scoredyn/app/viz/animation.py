"""Animations of particles moving: any ``(T, N, 2)`` array of frames as a GIF (Pillow) or an MP4
(ffmpeg, where installed), and the frames of a named sampler's run (``sampling.sample`` with
``return_path=True``): annealed Langevin, SVGD, the probability-flow ODE, ...
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.animation import FFMpegWriter, FuncAnimation, PillowWriter

from ...core.registry import resolve_process
from ...core.targets import GaussianMixture
from ..sampling import sample
from .common import NAVY, as_numpy, density_on, hdr_levels, limits, marginal, mixture_box, new_figure, plane_grid
from .io import atomic_path

__all__ = ["animate", "sampler_frames", "Frames"]


@dataclass(frozen=True)
class Frames:
    """Particles over a run: ``x`` ``(T, N, D)``, the noise level ``sigma_hat`` of each frame
    (``NaN`` for the start, which sits before the first level), what produced them, and where known
    the time ``t`` of each frame (``NaN`` for the start) on the named ``process``."""

    x: np.ndarray
    sigma_hat: np.ndarray
    label: str
    times: np.ndarray | None = None
    process: str | None = None


def sampler_frames(
    target, sampler: str, *, steps: int, n: int = 300, seed: int = 0, levels: int = 10, **options
) -> Frames:
    """The path of a named sampler (``registry.SAMPLERS``) as frames: one per grid point (per noise
    level for the annealed particle samplers, so ``levels + 1`` frames; raise ``levels`` for a
    smoother film).

    Args:
        target: an exact mixture or a trained model (as ``sampling.sample`` takes).
        sampler: the sampler's name (``annealed-langevin``, ``svgd``, ``ode-heun``, ...).
        steps, n, seed, levels, options: passed to ``sampling.sample``.
    """
    times: list[float] = []
    result, settings = sample(
        target, sampler, steps=steps, n=n, seed=seed, levels=levels, return_path=True,
        callback=lambda info: times.append(info.t), **options,
    )  # fmt: skip
    process = resolve_process(settings["process"])
    t = torch.tensor(times, dtype=torch.float64)
    sh = (process.sigma(t) / process.alpha(t)).numpy()
    path = as_numpy(result.path)
    pad = np.full(path.shape[0] - sh.size, np.nan)  # the start has no callback
    label = f"{sampler} ({steps} steps{' per level' if settings['levels'] else ''})"
    return Frames(path, np.concatenate([pad, sh]), label, np.concatenate([pad, t.numpy()]), settings["process"])


def _noised_laws(law: GaussianMixture, frames: Frames) -> list[GaussianMixture]:
    """``law`` noised to each frame's time on the frames' process (the start: the first level's)."""
    process = resolve_process(frames.process)
    times = np.asarray(frames.times, dtype=np.float64)
    first = times[np.isfinite(times)][0] if np.isfinite(times).any() else process.t_max
    return [law.noised(process, float(t if np.isfinite(t) else first)) for t in times]


def animate(
    frames: np.ndarray | torch.Tensor | Frames,
    path: str | os.PathLike,
    *,
    fps: int = 8,
    density: GaussianMixture | None = None,
    lim: float | Sequence[float] | None = None,
    title: str | None = None,
    labels: Sequence[str] | None = None,
    dpi: int = 90,
    noised: bool = False,
) -> Path:
    """Write particles moving as a GIF (Pillow) or MP4 (ffmpeg), atomically.

    Each frame shows the particles over the 50%/90% mass contours of ``density`` (the data, fixed)
    and a caption naming the frame (``labels``, or the noise level of a ``Frames``), so every
    frame differs and the file holds exactly ``T`` frames.

    Args:
        frames: ``(T, N, 2)`` positions, or ``Frames`` from ``sampler_frames``.
        path: ``.gif`` or ``.mp4`` (MP4 needs ``ffmpeg`` on the PATH).
        fps: frames per second.
        density: a mixture whose contours are drawn behind the particles (2-D marginal if ``D > 2``).
        lim: the window (default: the particles of every frame and the density).
        title: the title above the film.
        labels: one caption per frame.
        dpi: resolution.
        noised: also shade, under each frame, the density the particles should follow at that
            frame's time: ``density`` noised by the run's process, ``p_t = sum_k pi_k N(alpha mu_k,
            alpha^2 Sigma_k + sigma^2 I)`` (needs ``Frames`` with times, as ``sampler_frames`` makes;
            the start shows the first level's).

    Returns:
        the path written.
    """
    path = Path(path)
    fmt = path.suffix.lower()
    if fmt not in (".gif", ".mp4"):
        raise ValueError(f"path must end in .gif or .mp4, got {str(path)!r}")
    if fmt == ".mp4" and shutil.which("ffmpeg") is None:
        raise ValueError("writing .mp4 needs ffmpeg on the PATH; write a .gif instead")
    if not isinstance(fps, int) or fps < 1:
        raise ValueError(f"fps must be a positive integer, got {fps!r}")
    captions, default_title, laws_t = None, None, None
    if noised:
        if density is None or not isinstance(frames, Frames) or frames.times is None or frames.process is None:
            raise ValueError("noised needs a density and Frames with times and a process (from sampler_frames)")
        laws_t = _noised_laws(marginal(density), frames)
    if isinstance(frames, Frames):
        # plain text, not mathtext: a film re-lays its caption out at every frame
        captions = ["start" if np.isnan(s) else f"σ/α = {s:.3g}" for s in frames.sigma_hat]
        default_title, frames = frames.label, frames.x
    x = as_numpy(frames)
    if x.ndim != 3 or x.shape[2] < 2 or x.shape[0] < 1:
        raise ValueError(f"frames must have shape (T, N, 2), got {x.shape}")
    x = x[:, :, :2]
    T = x.shape[0]
    if labels is not None:
        if len(labels) != T:
            raise ValueError(f"labels must have one entry per frame ({T}), got {len(labels)}")
        captions = list(labels)
    captions = [f"frame {k + 1}/{T}" + (f": {c}" if c else "") for k, c in enumerate(captions or [""] * T)]
    law = marginal(density) if density is not None else None
    if lim is not None:
        lims = limits(lim)
    else:
        lims = limits(None, x.reshape(-1, 2), pad=0.05)
        if law is not None:
            box = mixture_box([law])
            lims = (min(lims[0], box[0]), max(lims[1], box[1]), min(lims[2], box[2]), max(lims[3], box[3]))

    fig, axes = new_figure(1, 1, panel=(4.6, 4.4), plane=True)
    ax = axes[0, 0]
    shade = None
    if laws_t is not None:  # each frame's own p_t, scaled to its own peak (the levels span 200x in sigma)
        X, Y, _ = plane_grid(lims, 90)
        shades = [density_on(law_t, X, Y) for law_t in laws_t]
        shades = [d / max(float(d.max()), 1e-300) for d in shades]
        shade = ax.imshow(shades[0], origin="lower", extent=lims, cmap="Blues", vmin=0.0, vmax=1.6, aspect="auto",
                          interpolation="bilinear")  # fmt: skip
    if law is not None:
        X, Y, _ = plane_grid(lims, 120)
        p = density_on(law, X, Y)
        levels = hdr_levels(p, (X[0, 1] - X[0, 0]) * (Y[1, 0] - Y[0, 0]))
        if levels.size:
            ax.contour(X, Y, p, levels=levels, colors="0.5", linewidths=1.0, linestyles=["--", "-"][: levels.size])
    dots = ax.scatter(x[0, :, 0], x[0, :, 1], s=6, color=NAVY, alpha=0.7, linewidths=0)
    ax.set_xlim(lims[0], lims[1])
    ax.set_ylim(lims[2], lims[3])
    ax.set_aspect("equal")
    ax.set_xlabel("x₁")  # plain text: every frame draws its labels again, and mathtext is slow to lay out
    ax.set_ylabel("x₂")
    caption = ax.set_title(captions[0], fontsize=10)
    fig.suptitle(title or default_title or f"{x.shape[1]} particles")

    def draw(k: int):
        dots.set_offsets(x[k])
        caption.set_text(captions[k])
        if shade is not None:
            shade.set_data(shades[k])
        return dots, caption

    fig.draw_without_rendering()  # lay the figure out once: the frames change no size, so each frame
    fig.set_layout_engine("none")  # is drawn without running the (costly) constrained layout again
    film = FuncAnimation(fig, draw, frames=T, interval=1000 / fps, blit=False, repeat=False)
    writer = PillowWriter(fps=fps) if fmt == ".gif" else FFMpegWriter(fps=fps)
    with atomic_path(path) as tmp:
        film.save(tmp, writer=writer, dpi=dpi)
    return path
