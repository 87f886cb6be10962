"""``build_figures``: four interactive figures of diffusion as particle dynamics, on one exact 2-D
Gaussian mixture, as one self-contained HTML page (plotly.js and the data inlined, no network).

1. *Noise compass* (Ho et al. 2020; Tweedie): the page evaluates the exact noised mixture's score in
   closed form at a clicked point; nothing is precomputed but the VP coefficients.
2. *SDE vs ODE paths*: the reverse family ``dx = [f x - (1 + lam^2)/2 g^2 s] dt + lam g dw``
   (``samplers.reverse_sde``; Song et al. 2021, eqs. 6 and 13) on the exact field, precomputed.
3. *Linear vs cosine schedule*: ``alpha^2`` of the discrete DDPM schedules (Ho et al. 2020;
   Nichol & Dhariwal 2021), precomputed at 1001 times; the page forms ``alpha x0 + sigma eps``.
4. *Fokker–Planck*: forward-SDE particles (``core.processes.simulate_forward``; Song et al. 2021,
   eq. 5) over the exact ``p_t``, which the page evaluates in closed form.

The page's script only evaluates closed forms of the mixture and replays the arrays computed here
(``figures_template.py``); it never integrates anything.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ...core.fields import AnalyticField
from ...core.processes import simulate_forward
from ...core.registry import resolve_process
from ...core.targets import GaussianMixture
from ...samplers import karras_grid, reverse_sde
from ...util.files import atomic_write_text
from .figures_template import FIGURES_HTML, FIGURES_SCRIPT
from .page import plotly_gz_b64

__all__ = [
    "FiguresData",
    "build_figures",
    "compute_figures",
    "figures_html",
    "read_figures_payload",
    "standardized",
]

PROCESS = "vp"  # panels 1, 2 and 4: the VP SDE, beta from 0.1 to 20 (Song et al. 2021, eq. 11)
SCHEDULES = ("ddpm", "ddpm-cosine")  # panel 3, against the continuous PROCESS for reference
TIME_POINTS = 1001  # slider positions of panels 1 and 3, which step through the stored times exactly
LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)
PATH_SETS, PATH_STARTS, PATH_COPIES = 6, 12, 2  # each start runs twice: SDE copies branch, ODE copies coincide
PATH_STEPS, PATH_EVERY = 256, 4  # Euler–Maruyama steps on a Karras grid; every 4th point kept (65 per path)
SCHEDULE_SAMPLES = 500
FP_FRAMES, FP_PARTICLES, FP_SUBSTEPS = 61, 600, 20
DECIMALS = 3  # stored positions: 1e-3 of a box about 6 units wide is a tenth of a pixel


@dataclass
class FiguresData:
    """What the page draws (JSON-able lists, float64 before rounding).

    Attributes:
        title, source: the mixture's name and one line on where the data comes from.
        seed: seeds every precomputed run.
        mixture: ``{"weights", "means", "covs", "centre", "scale"}``: the exact target standardized
            (``standardized``), whose closed forms the page evaluates, and the ``m``, ``s`` it was
            standardized with.
        box: ``[x0, x1, y0, y1]`` the square plot box of panels 1, 2 and 4.
        vp: ``{"t", "alpha", "sigma"}`` of ``PROCESS`` at the compass's ``TIME_POINTS`` times
            ``t = u^2``, ``u`` uniform in ``[0, 1]``.
        paths: ``{"lambdas", "t", "xy"}``: ``xy[l][s]`` the ``(P, M, 2)`` paths of the reverse family
            with ``lam = lambdas[l]`` from start set ``s``, at the ``M`` descending times ``t``.
        schedules: ``{"u", "<name>": {"alpha", "sigma", "T"}, "vp_abar", "x0", "eps"}``: coefficients at
            ``t = u T`` and the data and noise the page combines.
        fp: ``{"t", "alpha", "sigma", "xy"}``: forward-SDE particles ``xy`` ``(F, N, 2)`` at times ``t``.
    """

    title: str
    source: str
    seed: int
    mixture: dict
    box: list[float]
    vp: dict
    paths: dict
    schedules: dict
    fp: dict


def build_figures(target: GaussianMixture, out_path: str | os.PathLike, *, seed: int = 0,
                  source: str | None = None) -> dict:  # fmt: skip
    """Compute the four figures on a 2-D mixture and write the page (atomically).

    Returns:
        ``{"path", "bytes", "bytes_plotly", "bytes_data", "seconds"}``.
    """
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a few hundred 2-D particles: a thread pool costs more than it saves
    try:
        text, sizes = figures_html(compute_figures(target, seed=seed, source=source))
    finally:
        torch.set_num_threads(threads)
    out_path = Path(out_path)
    atomic_write_text(out_path, text)
    return {"path": str(out_path), "bytes": out_path.stat().st_size, **sizes, "seconds": time.perf_counter() - start}


def compute_figures(target: GaussianMixture, *, seed: int = 0, source: str | None = None) -> FiguresData:
    """The figures' data for an exact 2-D mixture (see ``FiguresData``); ``seed`` seeds every run."""
    if not isinstance(target, GaussianMixture):
        raise ValueError(f"the figures need an exact GaussianMixture, got {type(target).__name__}")
    if target.dim != 2:
        raise ValueError(f"the figures page draws 2-D data: target {target.name!r} has dimension {target.dim}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    mixture, centre, scale = standardized(target)
    process = resolve_process(PROCESS)
    # the compass's times: t = u^2, fine steps at small t, where the noised components are still apart
    t = torch.linspace(0.0, 1.0, TIME_POINTS, dtype=torch.float64) ** 2
    where = source or f"exact target {target.name}"
    return FiguresData(
        title=target.name,
        source=f"{where}, centred and scaled to unit variance, (x − m) / s with s = {scale:.4g}",
        seed=seed,
        mixture={
            "weights": mixture.weights.tolist(),
            "means": mixture.means.tolist(),
            "covs": mixture.covs.tolist(),
            "centre": centre,
            "scale": scale,
        },
        box=_box(mixture),
        vp={"t": t.tolist(), "alpha": process.alpha(t).tolist(), "sigma": process.sigma(t).tolist()},
        paths=_paths(mixture, seed),
        schedules=_schedules(mixture, seed),
        fp=_forward_particles(mixture, seed),
    )


def standardized(target: GaussianMixture) -> tuple[GaussianMixture, list[float], float]:
    """The target in the coordinates ``(x - m) / s`` (``m`` its mean, ``s`` the root of the mean of its
    covariance's diagonal), with ``m`` and ``s``: still an exact mixture, means ``(mu_k - m) / s`` and
    covariances ``Sigma_k / s^2``. Diffusion models standardize their data so that the VP process keeps
    its variance near 1 and the noise is on the data's scale."""
    centre = target.mean()
    scale = math.sqrt(float(torch.diagonal(target.covariance()).mean()))
    mixture = GaussianMixture(target.weights, (target.means - centre) / scale, target.covs / scale**2, target.name)
    return mixture, centre.tolist(), scale


def _box(target: GaussianMixture) -> list[float]:
    """A square box holding every component to 3 standard deviations and the ``N(0, I)`` end of VP."""
    sd = torch.sqrt(torch.diagonal(target.covs, dim1=1, dim2=2))
    lo = torch.minimum((target.means - 3 * sd).min(0).values, torch.full((2,), -3.0, dtype=torch.float64))
    hi = torch.maximum((target.means + 3 * sd).max(0).values, torch.full((2,), 3.0, dtype=torch.float64))
    centre, half = (lo + hi) / 2, 1.02 * float((hi - lo).max()) / 2
    return [float(centre[0]) - half, float(centre[0]) + half, float(centre[1]) - half, float(centre[1]) + half]


def _paths(target: GaussianMixture, seed: int) -> dict:
    """The reverse family on the exact field, every lambda from the same starts (exact ``p_1``) and
    the same noise draws, so that the slider deforms one set of paths (module docstring, 2)."""
    process = resolve_process(PROCESS)
    field = AnalyticField(target, process)
    # Karras et al. (2022, eq. 5): small steps where the components separate, large ones in the noise
    grid = karras_grid(process, PATH_STEPS)
    n = PATH_SETS * PATH_STARTS
    starts = target.noised(process, grid[0]).sample(n, torch.Generator().manual_seed(seed))
    starts = starts.repeat_interleave(PATH_COPIES, dim=0)  # (S * P, 2): copies of a start are neighbours
    xy = []
    for lam in LAMBDAS:
        g = torch.Generator().manual_seed(seed + 1)  # the same xi for every lambda
        path = reverse_sde(field, starts, grid, lam=lam, generator=g, return_path=True).path[::PATH_EVERY]
        per_set = path.permute(1, 0, 2).reshape(PATH_SETS, PATH_STARTS * PATH_COPIES, -1, 2)  # (S, P, M, 2)
        xy.append(_rounded(per_set))
    return {"lambdas": list(LAMBDAS), "t": grid[::PATH_EVERY].tolist(), "xy": xy}


def _schedules(target: GaussianMixture, seed: int) -> dict:
    """``alpha``, ``sigma`` of the discrete schedules at ``t = u T``, data and noise."""
    u = torch.linspace(0.0, 1.0, TIME_POINTS, dtype=torch.float64)
    out: dict = {"u": u.tolist()}
    for name in SCHEDULES:
        p = resolve_process(name)
        t = p.t_min + u * (p.t_max - p.t_min)
        out[name] = {"alpha": p.alpha(t).tolist(), "sigma": p.sigma(t).tolist(), "T": p.t_max}
    out["vp_abar"] = (resolve_process(PROCESS).alpha(u) ** 2).tolist()
    g = torch.Generator().manual_seed(seed + 2)
    x0 = target.sample(SCHEDULE_SAMPLES, g)
    eps = torch.randn(SCHEDULE_SAMPLES, 2, generator=g, dtype=torch.float64)
    out.update(x0=_rounded(x0), eps=_rounded(eps))
    return out


def _forward_particles(target: GaussianMixture, seed: int) -> dict:
    """Data particles moved by the forward SDE (Euler–Maruyama, ``FP_SUBSTEPS`` steps per frame), at
    frames ``t = u^2`` (``u`` uniform): the shape of standardized data is gone by ``t`` of about 0.3."""
    process = resolve_process(PROCESS)
    t = process.t_min + (process.t_max - process.t_min) * torch.linspace(0.0, 1.0, FP_FRAMES, dtype=torch.float64) ** 2
    g = torch.Generator().manual_seed(seed + 3)
    xy = simulate_forward(process, target.sample(FP_PARTICLES, g), t, generator=g, substeps=FP_SUBSTEPS)
    return {"t": t.tolist(), "alpha": process.alpha(t).tolist(), "sigma": process.sigma(t).tolist(),
            "xy": _rounded(xy), "substeps": FP_SUBSTEPS}  # fmt: skip


def _rounded(x: torch.Tensor, decimals: int = DECIMALS) -> list:
    return np.round(x.to(torch.float64).numpy(), decimals).tolist()


# --- the page ------------------------------------------------------------------------------------------


def figures_html(data: FiguresData) -> tuple[str, dict]:
    """The page's text and the sizes of its two base64 payloads (``bytes_plotly``, ``bytes_data``)."""
    payload = json.dumps(asdict(data), separators=(",", ":"), allow_nan=False).encode()
    blob = base64.b64encode(gzip.compress(payload, compresslevel=9, mtime=0)).decode("ascii")
    plotly = plotly_gz_b64()
    text = (
        FIGURES_HTML.replace("@@TITLE@@", html.escape(data.title))
        .replace("@@SOURCE@@", html.escape(data.source))
        .replace("@@SUBSTEPS@@", str(data.fp["substeps"]))
        .replace("@@DATA@@", blob)
        .replace("@@PLOTLY@@", plotly)
        .replace("@@SCRIPT@@", FIGURES_SCRIPT)
    )
    return text, {"bytes_plotly": len(plotly), "bytes_data": len(blob)}


def read_figures_payload(text: str) -> dict:
    """The data embedded in a figures page, decoded (for tests and tools)."""
    head = 'id="data-gz">'
    i = text.index(head) + len(head)
    return json.loads(gzip.decompress(base64.b64decode(text[i : text.index("</script>", i)])))
