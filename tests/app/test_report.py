"""report.html: one self-contained page per run kind (demo, training, benchmarks) with the run's
tables, its numbered and captioned figures embedded as PNG (and GIF) data, its settings and versions;
the demo's page explains the study and marks the rows within the floor."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scoredyn.app.report import TRAJECTORY_CAPTION, build_report, run_kind
from scoredyn.app.study import (
    SWEEP_METRICS,
    StudyRun,
    accuracy_sweep,
    ratio_text,
    row_within_floor,
    run_study,
    significant,
    sweep_points,
)
from scoredyn.core.targets import mog6
from scoredyn.learning import TrainConfig, Trainer, apply_overrides

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def images(page: str) -> list[Image.Image]:
    """The embedded PNGs of a page, decoded."""
    return [
        Image.open(io.BytesIO(base64.b64decode(m))) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    ]


def assert_self_contained(page: str) -> None:
    """No resource is fetched: no src/href to anything but embedded data."""
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert all(r.startswith("data:") for r in refs), [r[:40] for r in refs if not r.startswith("data:")]
    assert "<script" not in page


def gifs(page: str) -> list[bytes]:
    """The embedded GIFs of a page, as bytes."""
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/gif;base64,([^"]+)"', page)]


def make_demo_dir(out: Path, n: int = 200) -> Path:
    """A small demo folder as `scoredyn demo` writes it: three runs (one far from the floor) and a
    two-sampler, two-budget accuracy sweep."""
    target = mog6()
    runs = [
        StudyRun("(A) score-only drift", "score-drift", 5, short="(A) drift"),
        StudyRun("(B) annealed Langevin", "annealed-langevin", 20, short="(B) Langevin"),
        StudyRun("UniPC (bh2)", "unipc", 10, short="UniPC"),
    ]
    rows, samples = run_study(target, runs, n, seed=0)
    sweep = [r for r in accuracy_sweep(budgets=(5, 10), n=100) if r.sampler in ("ddim", "unipc")]
    sweep_rows, _ = run_study(target, sweep, 100, seed=0, metrics=SWEEP_METRICS)
    doc = {
        "target": target.to_dict(),
        "n": n,
        "seed": 0,
        "wall_s": 1.0,
        "versions": {"scoredyn": "x"},
        "tables": {"main": rows},
        "accuracy_vs_nfe": {
            "n": 100,
            "seed": 0,
            "budgets": [5, 10],
            "metrics": list(SWEEP_METRICS),
            "points": sweep_points(sweep_rows, (5, 10)),
        },
    }
    (out / "table.json").write_text(json.dumps(doc))
    np.savez(out / "samples.npz", **{f"main/{k}": v.numpy() for k, v in samples.items()})
    return out


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return make_demo_dir(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def demo_page(demo_dir) -> str:
    """The demo folder's report, built from its files (the figures rendered here)."""
    path = build_report(demo_dir)
    assert path == demo_dir / "report.html"
    return path.read_text()


def test_demo_report_has_the_table_figures_settings_and_versions(demo_dir, demo_page):
    assert run_kind(demo_dir) == "demo"
    page = demo_page
    assert_self_contained(page)
    # the study table: one row per run, with its numbers as table.json has them, in 3 significant figures
    rows = json.loads((demo_dir / "table.json").read_text())["tables"]["main"]
    for r in rows:
        assert f'<td class="text run">{html.escape(r["label"])}</td>' in page
        for m in ("mode_tv_exact", "energy", "sliced_w1"):
            assert f'<td class="first">{significant(r[m]["value"])}</td><td>{significant(r[m]["floor"])}</td>' in page
            assert f">{ratio_text(r[m]['ratio'])}</td>" in page
    figs = images(page)
    assert len(figs) == 6  # sample clouds, accuracy against NFE, score field, SDE/ODE paths, noise compass, schedules
    assert all(im.width > 400 and im.height > 250 for im in figs)
    (film,) = gifs(page)  # the film of (B): an animated GIF, small enough to embed
    with Image.open(io.BytesIO(film)) as im:
        assert im.n_frames == 11 and im.width > 300  # the start and the 10 noise levels
    assert len(film) < 1_500_000
    assert "<td>seed</td>" in page and "<td>target.name</td><td>mog6</td>" in page
    assert "Versions" in page and "<td>report.torch</td>" in page


def test_demo_report_says_what_the_study_is_and_marks_the_rows_within_the_floor(demo_dir, demo_page):
    page = demo_page
    intro = page.split("<h2>What this study is</h2>")[1].split("<h2>")[0]
    for words in ("mog6", "(A)", "(B)", "(C)", "MALA", "SMC", "every diffusion sampler", "Monte-Carlo floor",
                  "value / floor", "1.96", "sliced W1 has no standard error"):  # fmt: skip
        assert words in intro, words
    assert "<h3>All samplers, N = 200</h3>" in page and "<h3>main</h3>" not in page
    head = page.split('<table class="study">')[1].split("</thead>")[0]
    for column in ("process", "grid", "steps", "NFE", "within floor", "value", "floor", "value / floor"):
        assert f">{column}</th>" in head, column
    rows = json.loads((demo_dir / "table.json").read_text())["tables"]["main"]
    found = re.findall(r'<tr( class=.within.)?><td class="text run">([^<]+)</td>', page)
    shaded = {label: bool(m) for m, label in found}
    assert shaded == {r["label"]: row_within_floor(r) for r in rows}
    assert not row_within_floor(rows[0]) and any(row_within_floor(r) for r in rows)  # both kinds are shown
    assert '<td class="text">edm</td><td class="text wrap">geometric</td><td>20 × 10 levels</td>' in page


def test_every_figure_is_numbered_and_captioned_truly(demo_page):
    found = re.findall(r'<figure id="figure-(\d+)"><img alt="[^"]*" src="data:image/(?:png|gif);base64,[^"]+">'
                       r"<figcaption><b>Figure (\d+)\.</b> ([^<]+)</figcaption></figure>", demo_page)  # fmt: skip
    assert [(int(a), int(b)) for a, b, _ in found] == [(k, k) for k in range(1, 8)]
    assert all(len(caption) > 80 for _, _, caption in found)
    captions = [html.unescape(c) for _, _, c in found]
    # the trajectory caption claims what holds (test_viz checks it numerically), not that drawn paths never cross
    assert TRAJECTORY_CAPTION in captions and "never cross" not in demo_page
    assert "never meet as curves in (x, t)" in TRAJECTORY_CAPTION and "may cross" in TRAJECTORY_CAPTION
    assert captions[1].startswith("Error against cost") and captions[2].startswith("(B) annealed Langevin as a film")


def test_settings_print_floats_to_six_significant_figures(demo_page):
    settings = demo_page.split("<h2>Settings</h2>")[1].split("<h2>")[0]
    assert "2.0425000000000004" not in demo_page and "[[2.0425, 0.896336], [0.896336, 1.0075]]" in settings
    for number in re.findall(r"\d+\.\d+", settings):
        assert len(number.replace(".", "").lstrip("0")) <= 6, number


def test_demo_report_takes_figures_rendered_beforehand(demo_dir, tmp_path):
    """`scoredyn demo` renders the figures while its study runs and hands them over as HTML; the page
    numbers them in order."""
    given = ["<figure><figcaption>clouds</figcaption></figure>", "", "<figure><figcaption>field</figcaption></figure>"]
    page = build_report(demo_dir, out=tmp_path / "r.html", figures=given).read_text()
    assert ('<figure id="figure-1"><figcaption><b>Figure 1.</b> clouds</figcaption></figure>'
            '<figure id="figure-2"><figcaption><b>Figure 2.</b> field</figcaption></figure>') in page  # fmt: skip
    assert not images(page)
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "r.json").write_text(json.dumps([{"name": "x", "value": 1.0}]))
    with pytest.raises(ValueError, match="demo folder only"):
        build_report(bench, figures=given)


def test_training_report_shows_curves_and_samples(tmp_path):
    out = tmp_path / "run"
    cfg = apply_overrides(
        TrainConfig(),
        [
            f"run.out={out}",
            "data.name=mog6",
            "data.n=500",
            "optim.steps=20",
            "optim.batch_size=64",
            "model.hidden=32",
            "model.depth=1",
            "run.log_every=5",
            "run.ckpt_every=20",
            "run.progress=false",
        ],
    )
    Trainer(cfg, resume=False).fit()
    assert run_kind(out) == "training"
    page = build_report(out).read_text()
    assert_self_contained(page)
    assert len(images(page)) == 2  # training curves, samples beside held-out data
    assert "<td>config.optim.steps</td><td>20</td>" in page
    # a title that says what was trained, not "training run — run"
    title = re.search(r"<title>([^<]+)</title>", page).group(1)
    assert html.unescape(title) == 'Training run "run": mog6, objective dsm (predicts score) on vp, mlp 32×1, step 20'
    assert "Figure 1.</b> Logged scalars" in page and "Figure 2.</b> Samples" in page


def test_benchmarks_report_tables_every_record_and_embeds_plots(tmp_path):
    for name in ("accuracy_vs_nfe.json", "quick_svgd_step.json", "digits_samples.png"):
        shutil.copy(RESULTS / name, tmp_path / name)
    (tmp_path / "notes.json").write_text('{"not": "a record"}')  # other JSON is left out
    assert run_kind(tmp_path) == "benchmarks"
    page = build_report(tmp_path, out=tmp_path / "page.html").read_text()
    assert_self_contained(page)
    records = json.loads((tmp_path / "quick_svgd_step.json").read_text())
    for r in records:
        assert f"<td>{html.escape(r['name'])}</td>" in page
    assert "notes.json" not in page
    assert len(images(page)) == 2  # the accuracy-vs-NFE plot and the shipped PNG
    # readable section titles, the file name beside them in small print
    title = "Accuracy against field evaluations, four targets"
    assert f'<h2>{title} <small class="file">accuracy_vs_nfe.json</small></h2>' in page
    assert '<h2>Digits samples <small class="file">digits_samples.png</small></h2>' in page
    assert "<b>Figure 2.</b> digits_samples.png" in page


def test_benchmark_values_and_ratios_say_what_they_mean(tmp_path):
    """A budget record that never reached its goal reads "not reached in 90 s"; each ratio says which
    way it divides; a ratio to a baseline of 0 is no ratio (and never "-0")."""
    for name in ("train_objectives.json", "likelihood.json", "quick_svgd_step.json"):
        shutil.copy(RESULTS / name, tmp_path / name)
    page = build_report(tmp_path, out=tmp_path / "page.html").read_text()
    cell = r"<td[^>]*>([^<]*)</td>"
    rows = {m[0]: (m[1], m[5], m[6]) for m in re.findall(r"<tr>" + cell * 8 + "</tr>", page)}
    train = {r["name"]: r for r in json.loads((tmp_path / "train_objectives.json").read_text())}
    for name, r in train.items():
        reached = r["settings"].get("reached")
        if reached and reached.get("unipc") is None:  # the value is the budget, not a time
            assert rows[name][0] == "not reached in 90 s", name
        elif r["value"] is not None:
            assert rows[name][0] == significant(r["value"], 4)
    assert rows["train-v"][0] == "74.08" and rows["train-eps"][0] == "not reached in 90 s"
    assert rows["likelihood_trained_mog6_gap"][1:] == ("—", "undefined: baseline is 0")
    assert rows["likelihood_cost_d2"][2] == "baseline / ours"  # the records' default ratio
    assert rows["svgd_pairs_per_s_n1000_d2"][2] == "ours / baseline"  # a throughput's own
    assert ">-0<" not in page and "ratio is" in page
    assert "<b>Figure 1.</b> Likelihood error against cost" in page


def test_a_folder_without_outputs_is_refused(tmp_path):
    with pytest.raises(ValueError, match="holds no run outputs"):
        run_kind(tmp_path)
    with pytest.raises(ValueError, match="no such folder"):
        build_report(tmp_path / "missing")
    assert not (tmp_path / "report.html").exists()


def test_training_report_of_a_run_on_samples_in_memory(tmp_path):
    """A run trained on an in-memory Dataset (as the physics runs) has no named data set to compare
    with: the report shows the model's samples alone instead of failing."""
    import torch

    from scoredyn.learning import Dataset

    out = tmp_path / "run"
    cfg = apply_overrides(
        TrainConfig(),
        [f"run.out={out}", "data.name=physics:toy", "data.n=300", "optim.steps=10", "optim.batch_size=32",
         "model.hidden=16", "model.depth=1", "run.ckpt_every=10", "run.progress=false"],
    )  # fmt: skip
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    Trainer(cfg, resume=False, data=Dataset(x, None, 0, "physics:toy")).fit()
    page = build_report(out).read_text()
    assert len(images(page)) == 2 and "Samples of the trained model (UniPC, 20 steps)." in page
