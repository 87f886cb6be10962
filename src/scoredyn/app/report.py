"""``report.html``: one self-contained page (images embedded as PNG data, no network) for a run's
outputs — a demo folder, a training run, or a benchmark results folder — with its tables, figures,
settings and versions. ``scoredyn demo`` writes it; ``scoredyn report DIR`` rebuilds it."""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path

import numpy as np
import torch

from ..core.targets import GaussianMixture
from ..util.files import atomic_write_text
from ..util.versions import versions

__all__ = ["REPORT_FILE", "build_report", "run_kind", "clouds_figure", "target_figures", "is_cloud_run"]

REPORT_FILE = "report.html"
CLOUD_RUNS = ("(A)", "(B)", "(C) SVGD, broad", "(C) SVGD, h = sigma", "UniPC")  # the demo's comparison

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
table.settings td { text-align: left; font-family: ui-monospace, monospace; font-size: 0.85em; word-break: break-all; }
table.settings td:first-child { word-break: normal; white-space: nowrap; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; } figcaption { color: #555; font-size: 0.92em; }
"""


def run_kind(run_dir: str | os.PathLike) -> str:
    """``demo`` (has ``table.json``), ``training`` (has ``run.json``) or ``benchmarks`` (JSON records)."""
    d = Path(run_dir)
    if not d.is_dir():
        raise ValueError(f"no such folder: {d}")
    if (d / "table.json").is_file():
        return "demo"
    if (d / "run.json").is_file():
        return "training"
    if any(_records(p) for p in sorted(d.glob("*.json"))):
        return "benchmarks"
    raise ValueError(f"{d} holds no run outputs: expected table.json (demo), run.json (training) or benchmark JSON")


def build_report(
    run_dir: str | os.PathLike, *, out: str | os.PathLike | None = None, figures: list[str] | None = None
) -> Path:
    """Write ``report.html`` for the run in ``run_dir`` (or to ``out``) and return its path.

    ``figures``: a demo's figures as HTML, already rendered (``clouds_figure`` then
    ``target_figures``; ``scoredyn demo`` renders them while its study runs); by default they are
    rendered here from ``table.json`` and ``samples.npz``."""
    d = Path(run_dir)
    kind = run_kind(d)
    if figures is not None and kind != "demo":
        raise ValueError(f"figures are given for a demo folder only; {d} is a {kind} run")
    if kind == "demo":
        title, sections = _demo(d, figures)
    else:
        title, sections = {"training": _training, "benchmarks": _benchmarks}[kind](d)
    path = Path(out) if out is not None else d / REPORT_FILE
    atomic_write_text(path, _page(title, sections))
    return path


# --- the three kinds of run ----------------------------------------------------------------------


def _demo(d: Path, figures: list[str] | None = None) -> tuple[str, list[str]]:
    doc = json.loads((d / "table.json").read_text())
    target = GaussianMixture.from_dict(doc["target"])
    sections = [_section("Results", "".join(_study_table(name, rows) for name, rows in doc["tables"].items()))]
    if figures is None:
        clouds = {}
        if (d / "samples.npz").is_file():
            with np.load(d / "samples.npz", allow_pickle=False) as f:
                clouds = {k.split("/", 1)[1]: f[k] for k in f.files if k.startswith("main/")}
        figures = [clouds_figure(target, clouds)] + target_figures(target)
    sections.append(_section("Figures", "".join(f for f in figures if f)))
    settings = {k: doc[k] for k in ("n", "seed", "wall_s") if k in doc} | {"target": doc["target"]}
    sections.append(_section("Settings", _settings_table(settings)))
    sections.append(_section("Versions", _settings_table({"run": doc.get("versions", {}), "report": versions()})))
    return f"scoredyn demo — {target.name}", sections


def is_cloud_run(label: str) -> bool:
    """Whether the demo's sample-clouds figure shows the row with this label (``CLOUD_RUNS``)."""
    return any(label.startswith(p) for p in CLOUD_RUNS)


def clouds_figure(target: GaussianMixture, samples: dict) -> str:
    """The demo's sample-clouds figure (HTML) from its rows' samples by label (those of
    ``CLOUD_RUNS``; the others are ignored); ``""`` when none of them is there."""
    from . import viz

    clouds = {_short(label): x for label, x in samples.items() if is_cloud_run(label)}
    if not clouds:
        return ""
    fig = viz.sample_clouds(clouds, target, ncols=3, title=f"{target.name}: samples of the compared dynamics")
    return _figure(
        fig, "Each sampler's particles with their KDE contours, over the exact density's 50% and 90% mass contours."
    )


def target_figures(target: GaussianMixture) -> list[str]:
    """The demo's figures that depend on the target only (HTML): score field, SDE/ODE paths, noise
    compass, schedules. ``scoredyn demo`` renders them while the study runs."""
    from ..core.fields import AnalyticField
    from ..core.processes import VP
    from . import viz

    field = AnalyticField(target, VP())
    figures = [
        _figure(
            viz.score_field(field, target=target),
            "The exact score of the noised target at several noise levels: it sharpens as the noise falls.",
        ),
        _figure(
            viz.trajectories(target, 24),
            "Reverse SDE and probability-flow ODE paths from the same starts, coloured by time: ODE paths never cross.",
        ),
    ]
    x_t = target.noised(field.process, 0.5).sample(6, torch.Generator().manual_seed(0))
    figures.append(
        _figure(
            viz.noise_compass(field, x_t, 0.5, target=target),
            "The noise compass at t = 0.5: the predicted noise and the reconstruction x_t -> x0hat (Tweedie).",
        )
    )
    figures.append(_figure(viz.schedules(), "alpha^2, sigma and the log-SNR of every process."))
    return figures


def _training(d: Path) -> tuple[str, list[str]]:
    from ..learning import load_trained
    from . import viz
    from .sampling import sample

    info = json.loads((d / "run.json").read_text())
    sections = []
    if (d / "metrics.jsonl").is_file():
        sections.append(_section("Training curves", _figure(viz.training_curves(d), "Logged scalars against step.")))
    model = load_trained(d)
    result, settings = sample(model, "unipc", steps=20, n=100 if model.field_dim > 2 else 2000, seed=0)
    x = result.x.detach().cpu().double().numpy()
    if model.field_dim == 2:
        from ..learning import load_dataset

        data = model.config.data
        try:
            dataset = load_dataset(data.name, data.n, data.seed)
        except ValueError:  # trained on samples in memory (e.g. physics runs): no data set to draw from
            fig = viz.sample_clouds({"model (UniPC, 20 steps)": x})
            sections.append(_section("Samples", _figure(fig, "Samples of the trained model.")))
        else:
            ref = dataset.reference(2000).double().numpy()
            fig = viz.sample_clouds({"model (UniPC, 20 steps)": x, "data (held out)": ref}, dataset.target)
            sections.append(_section("Samples", _figure(fig, "Samples of the trained model beside held-out data.")))
    elif model.field_dim == 64:
        sections.append(_section("Samples", _figure(viz.digits_grid(x[:100]), "100 samples (UniPC, 20 steps).")))
    sections.append(_section("Settings", _settings_table({"config": info.get("config"), "sampling": settings})))
    sections.append(_section("Versions", _settings_table({"run": info.get("versions", {}), "report": versions()})))
    return f"scoredyn training run — {d.name}", sections


def _benchmarks(d: Path) -> tuple[str, list[str]]:
    from . import viz

    sections = []
    for path in sorted(d.glob("*.json")):
        records = _records(path)
        if not records:
            continue
        body = _records_table(records)
        if path.stem.startswith("accuracy_vs_nfe"):
            body += _figure(viz.accuracy_vs_nfe(records), "Error (as a multiple of the Monte-Carlo floor) against NFE.")
        if path.stem.startswith("likelihood"):
            body += _figure(viz.likelihood_plot(records), "Likelihood error against cost.")
        sections.append(_section(path.name, body))
    for png in sorted(d.glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode()
        sections.append(
            _section(
                png.name, f'<figure><img alt="{html.escape(png.name)}" src="data:image/png;base64,{data}"></figure>'
            )
        )
    sections.append(_section("Versions", _settings_table({"report": versions()})))
    return f"scoredyn benchmarks — {d.name}", sections


# --- HTML pieces ----------------------------------------------------------------------------------------


def _records(path: Path) -> list[dict]:
    """The benchmark records of a JSON file (DESIGN.md's format), or [] for anything else."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return []
    data = [data] if isinstance(data, dict) else data
    ok = isinstance(data, list) and data and all(isinstance(r, dict) and "name" in r and "value" in r for r in data)
    return data if ok else []


def _figure(fig, caption: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode()
    cap = html.escape(caption)
    return f'<figure><img alt="{cap}" src="data:image/png;base64,{data}"><figcaption>{cap}</figcaption></figure>'


def _table(headers: list[str], rows: list[list], css_class: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{css_class}"' if css_class else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _study_table(name: str, rows: list[dict]) -> str:
    metrics = (
        ("mode_tv_exact", "mode TV to p"),
        ("mode_tv", "mode TV"),
        ("energy", "energy distance"),
        ("sliced_w1", "sliced W1"),
    )
    headers = ["run", "N"] + [f"{h} (floor)" for _, h in metrics] + ["NFE", "wall s"]
    body = []
    for r in rows:
        cells = [r["label"], r["n"]]
        for key, _ in metrics:
            if key not in r:  # a table written before the metric existed
                cells.append("")
                continue
            m = r[key]
            cells.append(f"{m['value']:.4g} ({m['floor']:.2g})" if m.get("floor") is not None else m["value"])
        body.append(cells + [r["nfe"], r["wall_s"]])
    return f"<h3>{html.escape(name)}</h3>" + _table(headers, body)


_RECORD_COLUMNS = (("name", "name"), ("value", "value"), ("unit", "unit"), ("baseline", "baseline"),
                   ("baseline_value", "baseline value"), ("ratio", "ratio"), ("device", "device"))  # fmt: skip


def _records_table(records: list[dict]) -> str:
    rows = [[r.get(key) for key, _ in _RECORD_COLUMNS] for r in records]
    return _table([head for _, head in _RECORD_COLUMNS], rows)


def _short(label: str) -> str:
    """A panel title: the run's label up to its first comma ("(C) SVGD, broad kernel ..." -> "(C) SVGD"),
    with the kernel kept to tell the two SVGD runs apart."""
    head, _, rest = label.partition(",")
    return head if not rest else f"{head}, {rest.split(',')[0].strip()}"


def _settings_table(settings: dict) -> str:
    """Settings as a two-column table, nested sections flattened to ``a.b`` keys, values as compact JSON."""
    rows = []

    def walk(d: dict, pre: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict) and v:
                walk(v, f"{pre}{k}.")
            else:
                rows.append([f"{pre}{k}", v if isinstance(v, str | int | float) else json.dumps(v, default=str)])

    walk(settings, "")
    return _table(["setting", "value"], rows, css_class="settings")


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{body}</section>"


def _page(title: str, sections: list[str]) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>\n"
    )
