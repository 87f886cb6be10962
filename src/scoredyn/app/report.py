"""``report.html``: one self-contained page (images embedded as PNG and GIF data, no network) for a
run's outputs — a demo folder, a training run, or a benchmark results folder — with its tables,
numbered and captioned figures, settings and versions. ``scoredyn demo`` writes it; ``scoredyn
report DIR`` rebuilds it."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..core.targets import GaussianMixture
from ..util.files import atomic_write_text, read_json
from ..util.messages import one_line
from ..util.versions import versions
from .study import (
    FLOOR_RULE_METRICS,
    SWEEP_METRICS,
    ratio_text,
    row_within_floor,
    run_setup,
    section_title,
    significant,
    within_floor,
)

__all__ = [
    "REPORT_FILE",
    "TRAJECTORY_CAPTION",
    "build_report",
    "run_kind",
    "clouds_figure",
    "accuracy_figure",
    "animation_figure",
    "target_figures",
    "demo_figures",
]

REPORT_FILE = "report.html"
SWEEP_KEY = "accuracy_vs_nfe"  # the section of table.json that holds the accuracy-against-NFE points

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1400px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; } h3 { margin-top: 1.6em; }
p.note { color: #555; font-size: 0.9em; } .scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.86em; }
th, td { padding: 0.2em 0.55em; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f6f6f6; } thead th { border-bottom: 1px solid #ccc; }
th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; } th.group { text-align: center; border-left: 1px solid #ddd; }
table.study { font-size: 0.8em; } table.study td { white-space: nowrap; }
table.study td.run { white-space: normal; min-width: 15em; } table.study td.wrap { white-space: normal; }
td.mark { text-align: center; color: #1a6b2c; font-weight: 600; }
td.first { border-left: 1px solid #ddd; }
tr.within td { background: #eef7ee; } td.within { font-weight: 600; color: #1a6b2c; }
table.settings td { text-align: left; font-family: ui-monospace, monospace; font-size: 0.85em; word-break: break-all; }
table.settings td:first-child { word-break: normal; white-space: nowrap; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; }
figcaption { color: #444; font-size: 0.92em; max-width: 60em; } small.file { color: #777; font-weight: normal; }
"""

# --- captions of the demo's figures: each says what is drawn, and nothing the figure does not show -----

CLOUDS_CAPTION = (
    "The samples of every run (N = {n}, the SVGD rows at most 1,000; at most 1,500 drawn a panel), each panel "
    "titled by the run: particles (blue dots), the contours of the exact density (black) that enclose 50% "
    "(solid) and 90% (dashed) of its mass, and the contours of the samples' kernel density estimate (red) "
    "at the same two density levels. Where the red contours lie on the black ones the run has the target's "
    "shape; the table says by how much it misses. A run whose particles collapse has no estimate to draw."
)
ACCURACY_CAPTION = (
    "Error against cost for every diffusion sampler on the exact field: energy distance to the exact law "
    "(left) and mode TV to the mixture's weights (right), each as a multiple of its floor at N = {n}, against the "
    "field evaluations per sample (log axes; dotted line: the floor). Budgets of {budgets} evaluations (a "
    "Heun or predictor–corrector step costs two, so these land on 5, 9, 19, ...); one seeded run per point, "
    "so ratios up to about 2 are the Monte-Carlo noise of one draw. Lines are named at their right ends."
)
ANIMATION_CAPTION = (
    "(B) annealed Langevin as a film, one frame per noise level: {n} particles on the table's ladder ({levels} "
    "geometric levels σ = 10 → 0.05, {steps} Langevin steps each), over the density p_σ that each level aims "
    "at (blue, scaled to its own peak) and the target's 50% / 90% mass contours (grey). At the first levels "
    "most particles lie outside the window."
)
SCORE_CAPTION = (
    "The exact score ∇ log p_t of the noised target on the VP process at σ/α = 3, 1 and 0.3: arrows give "
    "its direction, colour its size (log scale), grey lines the 50% / 90% mass contours of p_t. At high "
    "noise it points inward, to a few broad bumps; as the noise falls it splits towards each mode and grows."
)
TRAJECTORY_CAPTION = (
    "Reverse SDE (left) and probability-flow ODE (right) on the VP process: 24 particles from the same "
    "starts, 40 steps of one Karras grid, each path coloured by the time t. The ODE's solutions are unique, "
    "so two particles never sit at the same point at the same time: its paths never meet as curves in "
    "(x, t). The lines drawn are their shadows in the plane, without t, and these may cross (one particle "
    "passes where another was earlier). The SDE's paths wander; both end on the data."
)
COMPASS_CAPTION = (
    "The noise compass at t = 0.5 on the VP process (α = 0.28, σ = 0.96) for 6 noisy points x_t (black): "
    "the predicted noise σε̂ (blue, drawn from α x̂₀ to x_t) and the reconstruction x_t → x̂₀ = (x_t − σε̂)/α "
    "(vermillion; Tweedie's formula, x̂₀ = E[x₀ | x_t]), over the noised density p_t (grey)."
)
SCHEDULES_CAPTION = (
    "α², σ and the half log-SNR λ = log(α/σ) of every process against normalised time. Some coincide by "
    "construction: subvp has vp's α, ve and edm both have α = 1, and the discrete DDPM schedules (T = 1000) "
    "follow vp and vp-cosine to within 1%. The later line of each such pair is drawn dashed and thinner "
    "over the earlier one, with its own marker, and the legend says which line it matches, and in which panel."
)


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

    ``figures``: a demo's figures as HTML, already rendered (``demo_figures``'s order; ``scoredyn
    demo`` renders them while its study runs); by default they are rendered here from
    ``table.json`` and ``samples.npz``. Figures are numbered in the order given."""
    d = Path(run_dir)
    kind = run_kind(d)
    if figures is not None and kind != "demo":
        raise ValueError(f"figures are given for a demo folder only; {d} is a {kind} run")
    if kind == "demo":
        try:
            title, sections = _demo(d, figures)
        except (KeyError, TypeError, IndexError, AttributeError) as e:  # a table.json not of a demo's making
            raise ValueError(f"{d / 'table.json'} is not a table that scoredyn demo writes "
                             f"({type(e).__name__}: {one_line(e, 80)})") from None  # fmt: skip
    else:
        title, sections = {"training": _training, "benchmarks": _benchmarks}[kind](d)
    path = Path(out) if out is not None else d / REPORT_FILE
    atomic_write_text(path, _page(title, _numbered(sections)))
    return path


# --- the demo ------------------------------------------------------------------------------------------


def _demo(d: Path, figures: list[str] | None = None) -> tuple[str, list[str]]:
    doc = read_json(d / "table.json", "demo table")
    target = GaussianMixture.from_dict(doc["target"])
    n = int(doc.get("n", 0))
    sections = [_section("What this study is", _demo_intro(doc, target))]
    tables = "".join(_study_table(section_title(name, n), rows) for name, rows in doc["tables"].items())
    sections.append(_section("Results", _TABLE_KEY + tables))
    if figures is None:
        clouds, titles = {}, {r["label"]: r.get("short") or r["label"] for r in doc["tables"].get("main", [])}
        if (d / "samples.npz").is_file():
            with np.load(d / "samples.npz", allow_pickle=False) as f:
                clouds = {k.split("/", 1)[1]: f[k] for k in f.files if k.startswith("main/")}
        figures = demo_figures(target, clouds, titles, doc.get(SWEEP_KEY), n=n, seed=int(doc.get("seed", 0)))
    sections.append(_section("Figures", "".join(figures)))
    settings = {k: doc[k] for k in ("n", "seed", "wall_s") if k in doc} | {"target": doc["target"]}
    if SWEEP_KEY in doc:
        settings["accuracy sweep"] = {k: v for k, v in doc[SWEEP_KEY].items() if k != "points"}
    sections.append(_section("Settings", _settings_table(settings)))
    sections.append(_section("Versions", _settings_table({"run": doc.get("versions", {}), "report": versions()})))
    return f"scoredyn demo — {target.name}: particle dynamics and every diffusion sampler on the exact score", sections


def _demo_intro(doc: dict, target: GaussianMixture) -> str:
    """What the study runs, what the floor and value / floor are, and the rule of the ✓ marks."""
    n, seed = doc.get("n", "?"), doc.get("seed", "?")
    weights = ", ".join(f"{w:.2f}" for w in target.weights.tolist())
    paragraphs = [
        f"The study samples <b>{html.escape(target.name)}</b>, a mixture of {len(target.weights)} anisotropic "
        f"Gaussians in {target.dim}-D (weights {weights}), with its exact score, so every error below is the "
        "sampler's and none a learned network's. On one budget of Song &amp; Ermon's (2019) annealed ladder "
        "(10 geometric noise levels σ = 10 → 0.05, 100 steps each, step η = 0.5 σ²) it runs:",
        "<ul><li><b>(A)</b> score-only drift: annealed gradient ascent on log p<sub>σ</sub> without noise "
        "(not a sampler: it shows what the noise is for);</li>"
        "<li><b>(B)</b> annealed Langevin dynamics (Song &amp; Ermon 2019, Alg. 1), and its two corrections "
        "that use the density: annealed <b>MALA</b> (a Metropolis test at every step) and <b>SMC</b> over "
        "noise levels (weights and resampling, on its own adaptive ladder within the same budget);</li>"
        "<li><b>(C)</b> annealed SVGD (Liu &amp; Wang 2016) with a broad kernel, a narrow one with weak "
        "repulsion, and the median bandwidth (N = 1000: SVGD costs O(N²) a step);</li>"
        "<li>Langevin without annealing, then every diffusion sampler: DDPM, DDIM, the reverse SDE, "
        "predictor–corrector, the probability-flow ODE (Euler; Heun on VP as in Song et al. 2021; adaptive "
        "dopri5), EDM Heun, DPM-Solver++(2M) and UniPC (at 10 and 5 evaluations, and on a tuned grid).</li></ul>",
        "<b>Metrics.</b> <i>mode TV to p</i>: total variation between the fractions of samples assigned to "
        "each component and the mixture's weights; <i>mode TV</i>: the same against fresh exact samples; "
        "<i>energy distance</i> and <i>sliced W1</i> against fresh exact samples of the same size.",
        "<b>Floor.</b> Every metric is estimated from finitely many samples, so even exact samples score above "
        "0. A metric's <i>floor</i> is its value between two independent exact sample sets of the same size "
        "(the Monte-Carlo floor; exact or in closed form where one exists). <b>value / floor</b> is the error "
        "in units of what exact sampling itself shows at this N: about 1 is as good as exact sampling can "
        "show, 10 is ten times that noise.",
        "<b>Within the floor</b> (✓, row shaded; a ratio in green): a metric is within its floor when the 95% "
        "interval of value / floor reaches 1, i.e. value − 1.96 × its standard error ≤ floor: at this N the "
        "run cannot be told from exact sampling by that metric. A row is marked when "
        f"{', '.join(_METRIC_NAMES[m] for m in FLOOR_RULE_METRICS)} all are; sliced W1 has no standard error, "
        "so it is shown but not tested. A ✓ is no proof of exactness: at larger N the floor shrinks and small "
        "biases show (<code>scoredyn demo --large</code>, <code>scoredyn scaling</code>).",
        f"One seed ({html.escape(str(seed))}), N = {html.escape(str(n))} particles a row unless the row says "
        "otherwise; the figures below show every run's samples, the error of each diffusion sampler against "
        "its number of field evaluations, a film of (B), and the exact field the samplers move in.",
    ]
    return "".join(p if p.startswith("<ul>") else f"<p>{p}</p>" for p in paragraphs)


_METRIC_NAMES = {"mode_tv_exact": "mode TV to p", "mode_tv": "mode TV", "energy": "energy distance",
                 "sliced_w1": "sliced W1"}  # fmt: skip
_TABLE_KEY = (
    '<p class="note">Each metric: its value, its floor and value / floor (3 significant figures, ratios to '
    "2 decimals). ✓ and shading: within the floor (the rule above). NFE: field evaluations per particle. "
    "Steps of the annealed samplers are steps × noise levels.</p>"
)


def _study_table(title: str, rows: list[dict]) -> str:
    """One section of the study as an HTML table: setup columns, then value | floor | value / floor per
    metric (a ratio within the floor in green), the wall time, and a ✓ for rows within the floor."""
    metrics = [m for m in _METRIC_NAMES if any(m in r for r in rows)]
    single = [("run", "text"), ("within floor", ""), ("process", "text"), ("grid", "text"), ("steps", ""),
              ("N", ""), ("NFE", "")]  # fmt: skip
    head1 = "".join(f'<th rowspan="2" class="{css}">{h}</th>' for h, css in single)
    head1 += "".join(f'<th class="group" colspan="3">{_METRIC_NAMES[m]}</th>' for m in metrics)
    head1 += '<th rowspan="2">wall s</th>'
    head2 = '<th class="group">value</th><th>floor</th><th>value / floor</th>' * len(metrics)
    body = []
    for r in rows:
        process, grid, steps = run_setup(r)
        marked = row_within_floor(r)
        cells = [_td(r["label"], "text run"), _td("✓" if marked else "", "mark"), _td(process, "text"),
                 _td(grid, "text wrap"), _td(steps), _td(f"{r['n']:,}"), _td(f"{r['nfe']:,}")]  # fmt: skip
        for m in metrics:
            e = r.get(m)
            if not isinstance(e, dict):  # a table written before the metric existed
                cells += [_td("", "first"), _td(""), _td("")]
                continue
            ok = within_floor(e)
            cells += [_td(significant(e["value"]), "first"), _td(significant(e.get("floor"))),
                      _td(ratio_text(e.get("ratio")), "within" if ok else None)]  # fmt: skip
        cells.append(_td(f"{r['wall_s']:.2f}"))
        body.append(("<tr class='within'>" if marked else "<tr>") + "".join(cells) + "</tr>")
    head = f"<thead><tr>{head1}</tr><tr>{head2}</tr></thead>"
    table = f'<table class="study">{head}<tbody>{"".join(body)}</tbody></table>'
    return f'<h3>{html.escape(title)}</h3><div class="scroll">{table}</div>'


def _td(text: str, css: str | None = None) -> str:
    attr = f' class="{css}"' if css else ""
    return f"<td{attr}>{html.escape(str(text))}</td>"


def demo_figures(
    target: GaussianMixture,
    samples: dict,
    titles: dict[str, str] | None = None,
    sweep: dict | None = None,
    *,
    n: int = 2000,
    seed: int = 0,
) -> list[str]:
    """The demo's figures as HTML, in the report's order: the sample clouds of every run, accuracy
    against NFE (when ``sweep``, ``table.json``'s ``accuracy_vs_nfe``, is given), then
    ``target_figures`` (the film of (B), the score field, the paths, the noise compass, the schedules)."""
    with _one_thread():
        figures = [clouds_figure(target, samples, titles, n=n)]
        figures.append(accuracy_figure(sweep, target.name) if sweep else "")
        return figures + target_figures(target, seed=seed)


@contextmanager
def _one_thread() -> Iterator[None]:
    """torch on one thread for a while: the figures' 2-D computations are many small operations,
    which intra-op threads only slow down (badly so on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def clouds_figure(
    target: GaussianMixture, samples: dict, titles: dict[str, str] | None = None, *, n: int = 2000
) -> str:
    """The sample clouds of every run (HTML), small multiples five to a row, each panel titled by the
    run's short name (``titles``: label -> short name); ``""`` when there are no samples."""
    from . import viz

    if not samples:
        return ""
    titles = titles or {}
    clouds = {titles.get(label, label): x for label, x in samples.items()}
    fig = viz.sample_clouds(
        clouds, target, ncols=min(5, len(clouds)), panel=(2.5, 2.45), grid=72, max_points=1500,
        title=f"{target.name}: the samples of every run",
    )  # fmt: skip
    return _figure(fig, CLOUDS_CAPTION.format(n=f"{n:,}"), dpi=100)


def accuracy_figure(sweep: dict, target_name: str = "mog6") -> str:
    """Accuracy against NFE of every diffusion sampler (HTML) from ``table.json``'s sweep
    (``{"n", "budgets", "metrics", "points"}``, the points of ``study.sweep_points``): each metric
    over its floor; ``""`` when there are no points."""
    from . import viz

    points = sweep.get("points") or []
    metrics = [m for m in sweep.get("metrics", SWEEP_METRICS) if any(m in p for p in points)]
    rows = [
        {"target": target_name, "sampler": p["series"], "nfe_budget": p["nfe_budget"], "nfe": p["nfe"],
         **{f"{m}_x_floor": p[m]["ratio"] for m in metrics if (p.get(m) or {}).get("ratio")}}
        for p in points
    ]  # fmt: skip
    if not rows or not metrics:
        return ""
    fig = viz.accuracy_vs_nfe(rows, metric=[f"{m}_x_floor" for m in metrics], labels="all",
                              title="Every diffusion sampler: error against field evaluations")  # fmt: skip
    budgets = ", ".join(str(b) for b in sweep.get("budgets", sorted({p["nfe_budget"] for p in points})))
    n = sweep.get("n", points[0]["n"])
    return _figure(fig, ACCURACY_CAPTION.format(n=f"{n:,}", budgets=budgets))


#: the film of (B): the table's ladder and steps with fewer particles, small enough to embed (about 0.4 MB)
FILM = {"n": 300, "levels": 10, "steps": 100, "fps": 3, "dpi": 80}


def animation_figure(target: GaussianMixture, seed: int = 0) -> str:
    """(B) annealed Langevin as an embedded GIF (HTML), over the noised density of each level."""
    from . import viz
    from .viz.common import mixture_box

    frames = viz.sampler_frames(target, "annealed-langevin", steps=FILM["steps"], n=FILM["n"], levels=FILM["levels"],
                                seed=seed)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:  # the window of the target, not of the first levels' wide spread
        path = viz.animate(
            frames, Path(tmp) / "film.gif", fps=FILM["fps"], density=target, dpi=FILM["dpi"], noised=True,
            lim=mixture_box([target]), title=f"(B) annealed Langevin on {target.name}",
        )  # fmt: skip
        data = base64.b64encode(path.read_bytes()).decode()
    caption = ANIMATION_CAPTION.format(**FILM)
    return _embedded("image/gif", data, caption)


def target_figures(target: GaussianMixture, seed: int = 0) -> list[str]:
    """The demo's figures that depend on the target only (HTML): the film of (B), the score field,
    SDE/ODE paths, the noise compass, the schedules. ``scoredyn demo`` renders them while the study runs."""
    from ..core.fields import AnalyticField
    from ..core.processes import VP
    from . import viz

    field = AnalyticField(target, VP())
    figures = [
        animation_figure(target, seed),
        _figure(viz.score_field(field, target=target), SCORE_CAPTION),
        _figure(viz.trajectories(target, 24), TRAJECTORY_CAPTION),
    ]
    x_t = target.noised(field.process, 0.5).sample(6, torch.Generator().manual_seed(0))
    figures.append(_figure(viz.noise_compass(field, x_t, 0.5, target=target), COMPASS_CAPTION))
    figures.append(_figure(viz.schedules(), SCHEDULES_CAPTION))
    return figures


# --- a training run ------------------------------------------------------------------------------------


def _training(d: Path) -> tuple[str, list[str]]:
    from ..learning import load_trained
    from . import viz
    from .sampling import sample

    model = load_trained(d)  # checks run.json first
    info = model.info
    sections = []
    title = _training_title(d, info, model)
    sections.append(_section("Run", f"<p>{html.escape(title)}; folder <code>{html.escape(str(d))}</code>.</p>"))
    if (d / "metrics.jsonl").is_file():
        sections.append(_section("Training curves", _figure(viz.training_curves(d), "Logged scalars against step.")))
    result, settings = sample(model, "unipc", steps=20, n=100 if model.field_dim > 2 else 2000, seed=0)
    x = result.x.detach().cpu().double().numpy()
    if model.field_dim == 2:
        from ..learning import load_dataset

        data = model.config.data
        try:
            dataset = load_dataset(data.name, data.n, data.seed)
        except ValueError:  # trained on samples in memory (e.g. physics runs): no data set to draw from
            fig = viz.sample_clouds({"model (UniPC, 20 steps)": x})
            sections.append(_section("Samples", _figure(fig, "Samples of the trained model (UniPC, 20 steps).")))
        else:
            ref = dataset.reference(2000).double().numpy()
            fig = viz.sample_clouds({"model (UniPC, 20 steps)": x, "data (held out)": ref}, dataset.target)
            caption = "Samples of the trained model (UniPC, 20 steps) beside held-out data."
            sections.append(_section("Samples", _figure(fig, caption)))
    elif model.field_dim == 64:
        sections.append(_section("Samples", _figure(viz.digits_grid(x[:100]), "100 samples (UniPC, 20 steps).")))
    sections.append(_section("Settings", _settings_table({"config": info.get("config"), "sampling": settings})))
    sections.append(_section("Versions", _settings_table({"run": info.get("versions", {}), "report": versions()})))
    return title, sections


def _training_title(d: Path, info: dict, model) -> str:
    """``Training run "run": mog6, objective v (predicts v) on vp, mlp 32×1, step 20``."""
    cfg = model.config
    net = cfg.model.net + (f" {cfg.model.hidden}×{cfg.model.depth}" if cfg.model.net in ("mlp", "egnn") else "")
    predicts = info.get("parameterization") or cfg.model.parameterization or cfg.objective.name
    return (f'Training run "{d.name}": {cfg.data.name}, objective {cfg.objective.name} (predicts {predicts}) on '
            f"{cfg.objective.process}, {net}, step {model.step:,}")  # fmt: skip


# --- a benchmark results folder ------------------------------------------------------------------------

#: readable titles of the result files of ``benchmarks/`` (others: their stem, prettified)
BENCHMARK_TITLES = {
    "accuracy_vs_nfe": "Accuracy against field evaluations, four targets",
    "alanine_twoforone": "Alanine dipeptide: free energy from i.i.d. samples and from MD",
    "demo_time": "Wall time of scoredyn demo",
    "quick_demo_time": "Wall time of scoredyn demo (quick run)",
    "energy_smc": "Energy networks and SMC",
    "evaluate_large": "Scoring a million samples",
    "floor_scaling": "The Monte-Carlo floor as N grows",
    "grid_tuning": "Few-step sampling on tuned grids",
    "likelihood": "Log-likelihood through the probability-flow ODE",
    "mode_weights_per_level": "Mode weights level by level",
    "particle_exact": "Annealed Langevin and its corrections at large N",
    "particle_study": "The particle-dynamics study: sweeps",
    "physics_twoforone": "Physics: free energy from i.i.d. samples and from MD",
    "quick_langevin_throughput": "Langevin throughput (quick run)",
    "quick_sampler_overhead": "Sampler overhead (quick run)",
    "quick_svgd_step": "SVGD step throughput (quick run)",
    "quick_train_throughput": "Training throughput (quick run)",
    "sample_memory": "Memory of sampling",
    "svgd_exact": "SVGD that reaches the law",
    "train_digits": "Training on digits",
    "train_objectives": "Training objectives: time until samples pass for exact",
    "train_objectives_diagnose": "Training objectives: diagnosis",
    "train_objectives_throughput": "Training objectives: throughput",
}
_RATIO_NOTE = (
    '<p class="note">ratio: as each record gives it; the "ratio is" column says which way it divides. '
    "baseline / ours (the default): above 1 ours is smaller, i.e. better for times and errors; ours / "
    "baseline (throughputs): above 1 ours is larger, i.e. better for rates. A value reading "
    "“not reached in B s” is a run that never reached its goal within its budget of B seconds.</p>"
)


def _benchmarks(d: Path) -> tuple[str, list[str]]:
    from . import viz

    sections = []
    for path in sorted(d.glob("*.json")):
        records = _records(path)
        if not records:
            continue
        body = _records_table(records)
        if path.stem.startswith("accuracy_vs_nfe"):
            caption = ("Error (as a multiple of the Monte-Carlo floor) against NFE, per target; lines named at "
                       "their right ends, one colour per sampler family, other implementations dashed.")  # fmt: skip
            body += _figure(viz.accuracy_vs_nfe(records), caption)
        if path.stem.startswith("likelihood"):
            caption = ("Likelihood error against cost; bars: one standard deviation over the samples, cut at "
                       "the axis' bottom (▾) where they reach 0.")  # fmt: skip
            body += _figure(viz.likelihood_plot(records), caption)
        sections.append(_section(_benchmark_title(path.stem), body, path.name))
    for png in sorted(d.glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode()
        sections.append(_section(_benchmark_title(png.stem), _embedded("image/png", data, png.name), png.name))
    sections.append(_section("Versions", _settings_table({"report": versions()})))
    return f"scoredyn benchmarks — {d.name}", [_RATIO_NOTE, *sections]


def _benchmark_title(stem: str) -> str:
    return BENCHMARK_TITLES.get(stem) or stem.replace("_", " ").replace("-", " ").strip().capitalize()


def _records_table(records: list[dict]) -> str:
    headers = ["name", "value", "unit", "baseline", "baseline value", "ratio", "ratio is", "device"]
    rows = []
    for r in records:
        ratio, way = _ratio_cells(r)
        rows.append([r.get("name"), _record_value(r), r.get("unit"), r.get("baseline"),
                     _number_text(r.get("baseline_value")), ratio, way, r.get("device")])  # fmt: skip
    return _table(headers, rows)


def _record_value(r: dict) -> str:
    """A record's value in words: ``not reached in 90 s`` for a run that spent its whole budget without
    reaching its goal (``settings.budget_s``, and ``settings.reached`` empty for the sampler the value
    is about: the first), else the number to 4 significant figures."""
    settings = r.get("settings") if isinstance(r.get("settings"), dict) else {}
    reached, budget = settings.get("reached"), settings.get("budget_s")
    if isinstance(reached, dict) and reached and next(iter(reached.values())) is None and _is_number(budget):
        return f"not reached in {budget:g} {r.get('unit') or ''}".rstrip()
    return _number_text(r.get("value"))


def _ratio_cells(r: dict) -> tuple[str, str]:
    """The ratio to 3 significant figures and which way it divides (``baseline / ours`` or
    ``ours / baseline``, read off the record's numbers; ``as recorded`` when it is neither)."""
    ratio, v, b = r.get("ratio"), r.get("value"), r.get("baseline_value")
    if not _is_number(ratio):
        return "", ""
    if _is_number(b) and b == 0:  # a ratio to a zero baseline says nothing (e.g. a gap to the exact value 0)
        return "—", "undefined: baseline is 0"
    if _is_number(v) and _is_number(b) and v != 0 and math.isclose(ratio, b / v, rel_tol=1e-6):
        way = "baseline / ours"
    elif _is_number(v) and _is_number(b) and math.isclose(ratio, v / b, rel_tol=1e-6):
        way = "ours / baseline"
    else:
        way = "as recorded"
    return significant(ratio + 0.0), way  # + 0.0: no "-0"


def _number_text(v) -> str:
    if _is_number(v):
        return significant(v + 0.0, 4)
    return "" if v is None else str(v)


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _records(path: Path) -> list[dict]:
    """The benchmark records of a JSON file (DESIGN.md's format), or [] for anything else."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, RecursionError):
        return []
    data = [data] if isinstance(data, dict) else data
    ok = isinstance(data, list) and data and all(isinstance(r, dict) and "name" in r and "value" in r for r in data)
    return data if ok else []


# --- HTML pieces ----------------------------------------------------------------------------------------


def _figure(fig, caption: str, dpi: int = 110) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return _embedded("image/png", base64.b64encode(buf.getvalue()).decode(), caption)


def _embedded(mime: str, data: str, caption: str) -> str:
    cap = html.escape(caption)
    return f'<figure><img alt="{cap}" src="data:{mime};base64,{data}"><figcaption>{cap}</figcaption></figure>'


def _numbered(sections: list[str]) -> list[str]:
    """The page's figures numbered in order: each gets the id ``figure-k``, and "Figure k." opens its
    caption (captions and alt texts are escaped, so ``<figure>`` marks figures only)."""
    count, out = 0, []
    for section in sections:
        parts = section.split("<figure>")
        for i in range(1, len(parts)):
            count += 1
            caption = parts[i].replace("<figcaption>", f"<figcaption><b>Figure {count}.</b> ", 1)
            parts[i] = f'<figure id="figure-{count}">{caption}'
        out.append("".join(parts))
    return out


def _table(headers: list[str], rows: list[list], css_class: str | None = None) -> str:
    """A plain table: numbers right-aligned, text columns (those whose cells are not all numbers) left
    (a settings table is left-aligned throughout by its class)."""
    cells = [[_fmt(c) for c in row] for row in rows]
    text = [k > 0 and css_class is None and any(r[k] and not _NUMBER.fullmatch(r[k]) for r in cells)
            for k in range(len(headers))]  # fmt: skip
    head = "".join(f"<th{_TEXT if t else ''}>{html.escape(h)}</th>" for h, t in zip(headers, text, strict=True))
    rows_html = ["".join(f"<td{_TEXT if t else ''}>{html.escape(c)}</td>" for c, t in zip(row, text, strict=True))
                 for row in cells]  # fmt: skip
    body = "".join(f"<tr>{r}</tr>" for r in rows_html)
    attr = f' class="{css_class}"' if css_class else ""
    return f'<div class="scroll"><table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


_NUMBER = re.compile(r"[-+]?[\d,]*\.?\d+(e[-+]?\d+)?|—")
_TEXT = ' class="text"'


def _settings_table(settings: dict) -> str:
    """Settings as a two-column table, nested sections flattened to ``a.b`` keys, values as compact JSON
    with every float to 6 significant figures (``2.0425000000000004`` reads ``2.0425``)."""
    rows = []

    def walk(d: dict, pre: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict) and v:
                walk(v, f"{pre}{k}.")
            elif isinstance(v, str | int):
                rows.append([f"{pre}{k}", v])
            else:
                rows.append([f"{pre}{k}", json.dumps(_rounded(v), default=str)])

    walk(settings, "")
    return _table(["setting", "value"], rows, css_class="settings")


def _rounded(v, digits: int = 6):
    """``v`` with every float inside it (lists, tuples, dicts) rounded to ``digits`` significant figures."""
    if isinstance(v, float):
        return float(f"{v:.{digits}g}") if math.isfinite(v) else v
    if isinstance(v, list | tuple):
        return [_rounded(x, digits) for x in v]
    if isinstance(v, dict):
        return {k: _rounded(x, digits) for k, x in v.items()}
    return v


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return significant(v, 4)
    return str(v)


def _section(title: str, body: str, file: str | None = None) -> str:
    small = f' <small class="file">{html.escape(file)}</small>' if file else ""
    return f"<section><h2>{html.escape(title)}{small}</h2>{body}</section>"


def _page(title: str, sections: list[str]) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>\n"
    )
