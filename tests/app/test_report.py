"""report.html: one self-contained page per run kind (demo, training, benchmarks) with the run's
tables, its figures embedded as PNG data, its settings and versions."""

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

from scoredyn.app.report import build_report, run_kind
from scoredyn.app.study import StudyRun, run_study
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


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """A small demo folder as `scoredyn demo` writes it (two runs, 200 particles)."""
    out = tmp_path_factory.mktemp("demo")
    target = mog6()
    runs = [StudyRun("(B) annealed Langevin", "annealed-langevin", 20), StudyRun("UniPC (bh2)", "unipc", 10)]
    rows, samples = run_study(target, runs, 200, seed=0)
    doc = {
        "target": target.to_dict(),
        "n": 200,
        "seed": 0,
        "wall_s": 1.0,
        "versions": {"scoredyn": "x"},
        "tables": {"main": rows},
    }
    (out / "table.json").write_text(json.dumps(doc))
    np.savez(out / "samples.npz", **{f"main/{k}": v.numpy() for k, v in samples.items()})
    return out


def test_demo_report_has_the_table_figures_settings_and_versions(demo_dir):
    assert run_kind(demo_dir) == "demo"
    path = build_report(demo_dir)
    assert path == demo_dir / "report.html"
    page = path.read_text()
    assert_self_contained(page)
    # the study table: one row per run, with its numbers as table.json has them
    rows = json.loads((demo_dir / "table.json").read_text())["tables"]["main"]
    for r in rows:
        assert f"<td>{html.escape(r['label'])}</td>" in page
        assert f"{r['energy']['value']:.4g} ({r['energy']['floor']:.2g})" in page
    figs = images(page)
    assert len(figs) == 5  # sample clouds, score field, SDE/ODE paths, noise compass, schedules
    assert all(im.width > 400 and im.height > 250 for im in figs)
    assert "<td>seed</td>" in page and "<td>target.name</td><td>mog6</td>" in page
    assert "Versions" in page and "<td>report.torch</td>" in page


def test_demo_report_takes_figures_rendered_beforehand(demo_dir, tmp_path):
    """`scoredyn demo` renders the figures while its study runs and hands them over as HTML."""
    given = ["<figure>clouds</figure>", "", "<figure>field</figure>"]
    page = build_report(demo_dir, out=tmp_path / "r.html", figures=given).read_text()
    assert "<figure>clouds</figure><figure>field</figure>" in page and not images(page)
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
    assert len(images(page)) == 2 and "Samples of the trained model." in page
