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
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ...util.files import atomic_write_text
from ..registry import resolve_sampler
from .encode import QUANT, Packer
from .frames import LOG_DENSITY_FLOOR, METRICS_SHOWN, SAMPLER_LABELS, ExplorerData, compute
from .template import HTML, SCRIPT

__all__ = ["build_explorer", "page_html", "read_payload"]

# light background, so the red particles and dark arrows stay visible on it
COLORSCALE = [[0.0, "#ffffff"], [0.4, "#e3edf7"], [0.75, "#9ecae1"], [1.0, "#3a7ab8"]]
DENSITY_STEP = 0.01  # nats per code of the stored log density
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
    k, g, _ = data.log_density.shape
    # steps far below what the eye sees: 0.01 nats of log density, 1/1000 of the longest arrow
    packer.add("density", data.log_density, 0.0, DENSITY_STEP)
    reach = float(np.abs(data.arrows).max()) or 1.0
    packer.add("arrows", data.arrows, 0.0, reach / 1000)
    centre = [(data.box[0] + data.box[1]) / 2, (data.box[2] + data.box[3]) / 2]
    half = [(data.box[1] - data.box[0]) / 2, (data.box[3] - data.box[2]) / 2]
    step = [h / QUANT for h in half]
    for run in data.runs:
        if run.x0 is not None:  # forward: x0 and s eps, two frames; the page forms alpha x0 + sigma eps
            packer.add(f"run:{run.key}", np.stack([run.x0, data.s_data * run.eps]), centre, step)
        else:
            packer.add(f"run:{run.key}", run.y, centre, step, delta=True)
    blob = packer.base64()
    plotly = _plotly_gz_b64()
    meta = {
        "title": data.title,
        "box": list(data.box),
        "s_data": data.s_data,
        "levels": data.levels.tolist(),
        "grid_x": _rounded(data.grid_x),
        "grid_y": _rounded(data.grid_y),
        "arrow_x": _rounded(data.arrow_x),
        "arrow_y": _rounded(data.arrow_y),
        "log_density_floor": LOG_DENSITY_FLOOR,
        "colorscale": COLORSCALE,
        "counts": list(data.counts),
        "metrics": list(METRICS_SHOWN),
        "webgl": webgl,
        "index": packer.index,
        "runs": [_run_meta(run, data.s_data) for run in data.runs],
    }
    text = (
        HTML.replace("@@TITLE@@", html.escape(data.title))
        .replace("@@SOURCE@@", html.escape(data.source))
        .replace("@@NOTES@@", _notes(data, k, g))
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
def _plotly_gz_b64() -> str:
    from plotly.offline import get_plotlyjs

    return base64.b64encode(gzip.compress(get_plotlyjs().encode(), compresslevel=9, mtime=0)).decode("ascii")


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 5) for v in values]


def _json_number(v: float):
    return v if math.isfinite(v) else "inf"


def _run_meta(run, s_data: float) -> dict:
    paper = resolve_sampler(run.sampler.removesuffix("-tuned")).paper if run.sampler != "forward" else ""
    out = {
        "key": run.key,
        "sampler": run.sampler,
        "label": SAMPLER_LABELS.get(run.sampler, run.sampler),
        "paper": paper,
        "steps": run.steps,
        "n": int(run.y.shape[2]),
        "frames": int(run.y.shape[0]),
        "nfe": run.nfe,
        "sigma_hat": [_json_number(round(float(s), 6)) for s in run.sigma_hat],
        "scale": [float(c) for c in run.scale],
        "settings": {k: v for k, v in run.settings.items() if isinstance(v, str | int | float | bool) or v is None},
        "metrics": {str(c): _metric_row(m) for c, m in run.metrics.items()},
    }
    if run.x0 is not None:
        out["alpha"] = [float(a) for a in run.alpha]
        out["sigma_over_s"] = [float(s) / s_data for s in run.sigma]
    return out


def _metric_row(result: dict) -> dict:
    keep = {name: {k: result[name][k] for k in ("value", "floor", "ratio")} for name in METRICS_SHOWN if name in result}
    return {"n": result["n"], **keep}


def _script_json(obj) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` or ``<!--`` can appear)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _notes(data: ExplorerData, k: int, g: int) -> str:
    runs = data.runs[1:]
    label = SAMPLER_LABELS.get
    listing = ", ".join(f"{label(r.sampler, r.sampler)} ({r.steps} step{'s' * (r.steps > 1)})" for r in runs)
    n = data.runs[0].y.shape[2]
    per_level = [r for r in runs if r.settings.get("levels")]
    ladder = ""
    if per_level:
        ladder = (f" The annealed samplers run on {per_level[0].settings['levels']} geometric noise levels "
                  "(sigma 10 &rarr; 0.05), one frame per level; their steps are per level.")  # fmt: skip
    return (
        "<h2>What is shown, and what was precomputed</h2>"
        "<p>Everything was computed when the page was built; the page only replays it. "
        f"Precomputed runs, {n} particles each (seed {runs[0].settings.get('seed', 0) if runs else 0}): {listing}."
        f"{ladder} Each run keeps at most {max(r.y.shape[0] for r in data.runs)} frames (its path subsampled "
        "evenly). The <i>Particles</i> menu shows the first N particles of the same run, and the metrics are "
        "computed on those N (SVGD's particles interact, so its subset is not an N-particle SVGD run). "
        f"The density and the score arrows were computed at {k} noise levels &sigma;&#770; = &sigma;/&alpha; "
        f"(geometric, 0.05 to 80) on a {g}&times;{g} grid.</p>"
        "<p>Coordinates: every frame is drawn as y = c x with c = s / &radic;(s&sup2;&alpha;&sup2; + &sigma;&sup2;), "
        f"s = {data.s_data:.3g} the data's standard deviation: the variance-preserving process scaled to the data, "
        "so runs of every process share one box and the density at their &sigma;&#770;. Tick <i>the sampler's own "
        "coordinates</i> to see x itself (zoom out: early frames lie far outside the box). Metrics "
        "(<span class='mono'>scoredyn.metrics.evaluate</span>) compare the last frame with fresh exact samples; "
        "the Monte-Carlo floor is their value between two exact sets of the same size. Positions are stored as "
        f"int16 codes of the box half-width / {QUANT}.</p>"
    )
