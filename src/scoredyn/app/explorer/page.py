"""``build_explorer``: one self-contained HTML page (no network) for a 2-D target or trained model.

The page carries plotly.js gzip-compressed and base64-encoded (the browser inflates it with
``DecompressionStream('gzip')``, then runs it), the data as one packed int16 blob (``encode.py``), and
a small script that wires the controls to ``Plotly.restyle``.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import inspect
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ...util.files import atomic_write_text
from ..registry import resolve_sampler
from .encode import COARSE, QUANT, Packer
from .frames import METRICS_SHOWN, OVERRIDES, SAMPLER_LABELS, SIGMA_HAT_MAX, SIGMA_HAT_MIN, ExplorerData, compute
from .template import HTML, SCRIPT

__all__ = ["build_explorer", "page_html", "plotly_gz_b64", "read_payload"]

# light background, so the red particles and dark arrows stay visible on it
COLORSCALE = [[0.0, "#ffffff"], [0.4, "#e3edf7"], [0.75, "#9ecae1"], [1.0, "#3a7ab8"]]
LOG_DENSITY_FLOOR = 12.0  # the colour scale spans this many nats below the density's maximum on the grid
TRAIL = {"particles": 100, "frames": 10}  # trails: the last 10 frames of the first 100 particles
NOT_KNOBS = ("generator", "callback", "return_path", "backend", "steps_per_level", "start")  # the head, or shown apart
WEBGL = True  # scattergl: see the explorer section of the README for the measured frame times


def build_explorer(
    target_or_model,
    out_path: str | os.PathLike,
    *,
    n: int = 2000,
    frames: int = 100,
    samplers: Mapping[str, Sequence[int]] | None = None,
    counts: Sequence[int] | None = None,
    seed: int = 0,
    levels: int = 16,
    webgl: bool = WEBGL,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Compute and write the interactive explorer page for a 2-D target or trained 2-D model.

    Args:
        target_or_model: an exact 2-D ``GaussianMixture`` (``registry.resolve_target``) or a trained
            model on 2-D data (``learning.load_trained``).
        out_path: the ``.html`` file to write (atomically).
        n: particles per precomputed run.
        frames: most frames per run.
        samplers: sampler name -> step counts to precompute (default ``frames.DEFAULT_SAMPLERS``).
        counts: particle counts the page offers (subsets of each run; default ``n/4, n/2, n``).
        seed: seeds every run.
        levels: noise levels of the density slider.
        webgl: draw particles with ``scattergl`` (else SVG ``scatter``).
        log: called with progress lines.

    Returns:
        ``{"path", "bytes", "bytes_plotly", "bytes_data", "n", "frames", "runs": [{"key", "frames",
        "nfe"}], "seconds"}`` (sizes of the written file and of its two base64 payloads).
    """
    start = time.perf_counter()
    data = compute(target_or_model, n=n, frames=frames, samplers=samplers, counts=counts, seed=seed,
                   levels=levels, log=log)  # fmt: skip
    text, sizes = page_html(data, webgl=webgl)
    out_path = Path(out_path)
    atomic_write_text(out_path, text)
    return {
        "path": str(out_path),
        "bytes": out_path.stat().st_size,
        **sizes,
        "n": n,
        "frames": frames,
        "runs": [{"key": r.key, "frames": int(r.y.shape[0]), "nfe": r.nfe} for r in data.runs],
        "seconds": time.perf_counter() - start,
    }


def page_html(data: ExplorerData, *, webgl: bool = WEBGL) -> tuple[str, dict]:
    """The page's text and the sizes of its payloads (``bytes_plotly``, ``bytes_data``)."""
    packer = Packer()
    if data.arrows is not None:  # a learned score's arrows: 1/1000 of the longest arrow, far below what the eye sees
        packer.add("arrows", data.arrows, 0.0, (float(np.abs(data.arrows).max()) or 1.0) / 1000)
    centre = [(data.box[0] + data.box[1]) / 2, (data.box[2] + data.box[3]) / 2]
    step = [(data.box[1] - data.box[0]) / 2 / QUANT, (data.box[3] - data.box[2]) / 2 / QUANT]
    for run in data.runs:
        if run.x0 is not None:  # forward: x0 and s eps, two frames; the page forms alpha x0 + sigma eps
            packer.add(f"run:{run.key}", np.stack([run.x0, data.s_data * run.eps]), centre, step)
        else:  # frames on the coarse grid, the last (the samples) at full resolution
            frames = run.y.shape[0]
            packer.add(f"run:{run.key}", run.y, centre, step, mult=[COARSE] * (frames - 1) + [1])
    blob = packer.base64()
    plotly = plotly_gz_b64()
    ref = data.reference
    meta = {
        "title": data.title,
        "box": list(data.box),
        "s_data": data.s_data,
        "mixture": {"weights": ref.weights.tolist(), "means": ref.means.tolist(), "covs": ref.covs.tolist()},
        "sigma_hat_range": [SIGMA_HAT_MIN, SIGMA_HAT_MAX],
        "grid_x": _rounded(data.grid_x),
        "grid_y": _rounded(data.grid_y),
        "arrow_x": _rounded(data.arrow_x),
        "arrow_y": _rounded(data.arrow_y),
        "cell": float(min(np.diff(np.unique(data.arrow_x)).min(), np.diff(np.unique(data.arrow_y)).min())),
        "arrow_levels": None if data.arrow_levels is None else data.arrow_levels.tolist(),
        "log_density_floor": LOG_DENSITY_FLOOR,
        "colorscale": COLORSCALE,
        "counts": list(data.counts),
        "metrics": list(METRICS_SHOWN),
        "metric_particles": data.metric_particles,
        "trail": TRAIL,
        "webgl": webgl,
        "index": packer.index,
        "runs": [_run_meta(run, data.s_data) for run in data.runs],
    }
    text = (
        HTML.replace("@@TITLE@@", html.escape(data.title))
        .replace("@@SOURCE@@", html.escape(data.source))
        .replace("@@NOTES@@", _notes(data))
        .replace("@@META@@", _script_json(meta))
        .replace("@@BLOB@@", blob)
        .replace("@@PLOTLY@@", plotly)
        .replace("@@SCRIPT@@", SCRIPT)
    )
    return text, {"bytes_plotly": len(plotly), "bytes_data": len(blob)}


def read_payload(text: str) -> tuple[dict, str]:
    """The ``meta`` JSON and the base64 data blob embedded in a page (for tests and tools)."""

    def between(tag_id: str) -> str:
        head = f'id="{tag_id}">'
        i = text.index(head) + len(head)
        return text[i : text.index("</script>", i)]

    return json.loads(between("meta")), between("blob")


@functools.lru_cache(maxsize=1)
def plotly_gz_b64() -> str:
    """plotly.js, gzip-compressed and base64-encoded: the page inflates it with ``DecompressionStream``."""
    from plotly.offline import get_plotlyjs

    return base64.b64encode(gzip.compress(get_plotlyjs().encode(), compresslevel=9, mtime=0)).decode("ascii")


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 5) for v in values]


def _sig(values, digits: int = 6) -> list:
    """Numbers to ``digits`` significant digits for the page's JSON (infinity as ``"inf"``)."""
    return [float(f"{float(v):.{digits}g}") if math.isfinite(v) else "inf" for v in values]


def _run_meta(run, s_data: float) -> dict:
    paper = resolve_sampler(run.sampler.removesuffix("-tuned")).paper if run.sampler != "forward" else ""
    s = run.settings
    out = {
        "key": run.key,
        "sampler": run.sampler,
        "label": SAMPLER_LABELS.get(run.sampler, run.sampler),
        "paper": paper,
        "steps": run.steps,
        "n": int(run.y.shape[2]),
        "frames": int(run.y.shape[0]),
        "nfe": run.nfe,
        "sigma_hat": _sig(run.sigma_hat),
        "scale": _sig(run.scale, 7),
        "t": None if run.t is None else _sig(run.t),
        "energy": _sig(run.energy, 4),
        "energy_floor": _sig(run.energy_floor, 4),
        "settings": {k: v for k, v in s.items() if isinstance(v, str | int | float | bool) or v is None},
        "knobs": _knobs(run),
        "metrics": {str(c): _metric_row(m) for c, m in run.metrics.items()},
    }
    if run.x0 is not None:
        out["alpha"] = [float(a) for a in run.alpha]
        out["sigma_over_s"] = [float(v) / s_data for v in run.sigma]
    return out


def _knobs(run) -> dict:
    """The sampler's keyword knobs it ran with: its function's defaults, then what the recipe passed."""
    if run.sampler == "forward":
        return {}
    params = inspect.signature(resolve_sampler(run.sampler.removesuffix("-tuned")).fn).parameters.values()
    knobs = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY and p.name not in NOT_KNOBS}
    knobs.update(run.settings.get("knobs", {}))
    shown = {k: v for k, v in knobs.items() if k not in NOT_KNOBS and isinstance(v, str | int | float | bool)}
    return {k: v if not isinstance(v, float) or math.isfinite(v) else str(v) for k, v in shown.items()}


def _metric_row(result: dict) -> dict:
    keep = {name: {k: result[name][k] for k in ("value", "floor", "ratio")} for name in METRICS_SHOWN if name in result}
    return {"n": result["n"], **keep}


def _script_json(obj) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` or ``<!--`` can appear)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _notes(data: ExplorerData) -> str:
    runs, label = data.runs[1:], SAMPLER_LABELS.get
    steps = lambda k: f"{k} step{'s' * (k != 1)}"  # noqa: E731
    listing = ", ".join(f"{label(r.sampler, r.sampler)} ({steps(r.steps)})" for r in runs)
    n, seed = data.runs[0].y.shape[2], data.runs[0].settings.get("seed", 0)
    per_level = [r for r in runs if r.settings.get("levels")]
    ladder = ""
    if per_level:
        ladder = (f" The annealed samplers run on {per_level[0].settings['levels']} geometric noise levels "
                  "(sigma 10 &rarr; 0.05); their steps are per level.")  # fmt: skip
    overridden = sorted({label(r.sampler, r.sampler) for r in runs if r.sampler in OVERRIDES})
    moved = ""
    if overridden:
        moved = (f" {', '.join(overridden)} run on the VP process with a uniform-t grid (Song et al. 2021): on "
                 "EDM's process and Karras grid, PF-ODE Heun is EDM Heun (Alg. 2 without churn).")  # fmt: skip
    arrows = ("The score arrows are exact (the mixture's score), computed in the page at the same noise level."
              if data.arrows is None else
              f"The arrows are the learned score at {len(data.arrow_levels)} precomputed noise levels (geometric, "
              "0.05 to 80): the nearest one is drawn, and named when it differs from the density's.")  # fmt: skip
    return (
        "<h2>What is shown, and what was precomputed</h2>"
        f"<p>Precomputed runs, {n} particles each (seed {seed}): {listing}.{ladder}{moved} Each run keeps at most "
        f"{max(r.y.shape[0] for r in data.runs)} frames, a stochastic one half as many (its path subsampled evenly). "
        "The <i>Particles</i> menu shows the first N particles of the same run, and the table's metrics are "
        "computed on those N (SVGD's particles interact, so its subset is not an N-particle SVGD run). "
        "The density is the exact noised law, evaluated in the page at each frame's own noise level "
        f"&sigma;&#770; = &sigma;/&alpha; from the mixture's weights, means and covariances. {arrows}</p>"
        "<p>Coordinates: every frame is drawn as y = c x with c = s / &radic;(s&sup2;&alpha;&sup2; + &sigma;&sup2;), "
        f"s = {data.s_data:.3g} the data's standard deviation: the variance-preserving process scaled to the data, "
        "so runs of every process share one box and the density at their &sigma;&#770;. Tick <i>the sampler's own "
        "coordinates</i> to see x itself: the axes become x&#8321;, x&#8322; and span the box divided by c (grown to "
        "hold every particle), and the density and arrows are those of x. The plot under the frames is each "
        f"frame's energy distance between its first {data.metric_particles} particles and as many exact samples "
        "of the noised law at its "
        "&sigma;&#770;, beside that value's Monte-Carlo floor (exact samples against exact samples). The table's "
        "metrics (<span class='mono'>scoredyn.metrics.evaluate</span>) compare the last frame with fresh exact "
        "samples. Positions are stored as integer codes of the box half-width / "
        f"{QUANT // COARSE} (the last frame of each run: / {QUANT}).</p>"
    )
