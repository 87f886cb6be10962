"""Noise schedules side by side: ``alpha^2`` (DDPM's ``abar``), ``sigma`` and the log-SNR
``lambda = log(alpha / sigma)`` of each process against normalised time.

For ``x_t = alpha(t) x_0 + sigma(t) eps`` (DESIGN.md), ``alpha^2`` is the fraction of signal power
left, ``sigma`` the noise scale, and ``lambda`` (the *half* log-SNR, ``log SNR = 2 lambda``;
Kingma et al. 2021) the one number a sampler's grid is laid out in. The linear VP schedule
(Ho et al. 2020) spends its signal early; the cosine one (Nichol & Dhariwal 2021, eq. 17) keeps
``alpha^2`` near 1 longer and falls linearly in the middle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

from ...core.processes import Process
from ...core.registry import PROCESSES
from .common import new_figure

__all__ = ["schedules"]

# the pair that Nichol & Dhariwal (2021) compare, linear and cosine, is drawn heavier
HIGHLIGHT = ("vp", "vp-cosine")


def schedules(
    processes: Mapping[str, Process] | Sequence[str] | None = None,
    *,
    points: int = 400,
    eps: float = 1e-3,
) -> Figure:
    """Three panels against ``u = (t - t_min) / (t_max - t_min)``: ``alpha^2``, ``sigma`` (log
    scale) and ``lambda = log(alpha / sigma)``, one line per process.

    Args:
        processes: name -> process, or names from ``registry.PROCESSES``; default all of them.
        points: points per line.
        eps: the line starts at ``u = eps`` (``sigma = 0``, ``lambda = inf`` at ``u = 0`` for all but VE).
    """
    procs = _resolve(processes)
    fig, axes = new_figure(1, 3, panel=(4.0, 3.3))
    u = np.linspace(eps, 1.0, points)
    colours = _colours(len(procs))
    dashes = ["-", "--", "-.", ":"]  # coinciding schedules (vp and ddpm, say) stay apart
    for i, ((name, p), colour) in enumerate(zip(procs.items(), colours, strict=True)):
        t = torch.from_numpy(p.t_min + u * (p.t_max - p.t_min))
        alpha, sigma = p.alpha(t).numpy(), p.sigma(t).numpy()
        lam = p.log_snr(t).numpy()
        heavy = name in HIGHLIGHT
        style = {"color": colour, "lw": 2.6 if heavy else 1.4, "ls": "-" if heavy else dashes[i % len(dashes)]}
        label = f"{name}  ($t \\in [{p.t_min:g}, {p.t_max:g}]$)"
        axes[0, 0].plot(u, alpha**2, label=label, **style)
        axes[0, 1].plot(u, sigma, **style)
        axes[0, 2].plot(u, lam, **style)
    axes[0, 0].set_ylabel(r"$\alpha(t)^2$  ($\bar\alpha$)")
    axes[0, 0].set_title("signal power left", fontsize=10)
    axes[0, 1].set_ylabel(r"$\sigma(t)$")
    axes[0, 1].set_yscale("log")
    axes[0, 1].set_title("noise scale", fontsize=10)
    axes[0, 2].set_ylabel(r"$\lambda(t) = \log(\alpha / \sigma)$")
    axes[0, 2].set_title("half log-SNR", fontsize=10)
    for ax in axes[0]:
        ax.set_xlabel(r"normalised time $(t - t_{\min}) / (t_{\max} - t_{\min})$")
        ax.grid(alpha=0.3)
        ax.set_xlim(0, 1)
    fig.legend(loc="outside right center", fontsize=8.5, frameon=False)
    fig.suptitle(r"Noise schedules of $x_t = \alpha(t)\,x_0 + \sigma(t)\,\epsilon$")
    return fig


def _resolve(processes) -> dict[str, Process]:
    if processes is None:
        return {name: make() for name, make in PROCESSES.items()}
    if isinstance(processes, Mapping):
        return dict(processes)
    out = {}
    for name in processes:
        if name not in PROCESSES:
            raise ValueError(f"unknown process {name!r}: use one of {', '.join(PROCESSES)}")
        out[name] = PROCESSES[name]()
    if not out:
        raise ValueError("processes must name at least one process")
    return out


def _colours(n: int) -> list:
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
