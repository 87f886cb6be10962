"""A demo's report.html in headless Chromium: it loads with no console error and no request but for
embedded data, every figure is numbered, captioned and decodes to an image (the film too), and the
study table shows value / floor with the rows within the floor marked, without spilling out of the page.
A screenshot goes to test-artifacts/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from _browser import browser, missing, screenshot
from scoredyn.app.report import build_report
from scoredyn.app.study import SWEEP_METRICS, StudyRun, accuracy_sweep, run_study, sweep_points
from scoredyn.core.targets import mog6

pytestmark = pytest.mark.skipif(
    missing() is not None, reason=f"browser tests need Chromium and Playwright: {missing()}"
)


@pytest.fixture(scope="module")
def browser_page():
    """``open(path) -> (page, errors, requests)``: a page in one headless Chromium per module; ``errors``
    lists console errors and uncaught exceptions, ``requests`` every URL the page asked for."""
    with browser() as b:
        pages = []

        def open_page(path: Path, width: int = 1400, height: int = 900):
            page = b.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            requests: list[str] = []
            page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            pages.append(page)
            return page, errors, requests

        yield open_page
        for page in pages:
            page.close()


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> Path:
    """A small demo folder as `scoredyn demo` writes it (three runs, one far from the floor, and a
    two-sampler accuracy sweep), and its report."""
    out = tmp_path_factory.mktemp("demo")
    target = mog6()
    runs = [
        StudyRun("(A) score-only drift", "score-drift", 5, short="(A) drift"),
        StudyRun("(B) annealed Langevin", "annealed-langevin", 20, short="(B) Langevin"),
        StudyRun("UniPC (bh2)", "unipc", 10, short="UniPC"),
    ]
    rows, samples = run_study(target, runs, 200, seed=0)
    sweep = [r for r in accuracy_sweep(budgets=(5, 10), n=100) if r.sampler in ("ddim", "unipc")]
    sweep_rows, _ = run_study(target, sweep, 100, seed=0, metrics=SWEEP_METRICS)
    points = sweep_points(sweep_rows, (5, 10))
    doc = {"target": target.to_dict(), "n": 200, "seed": 0, "wall_s": 1.0, "versions": {}, "tables": {"main": rows},
           "accuracy_vs_nfe": {"n": 100, "seed": 0, "budgets": [5, 10], "points": points}}  # fmt: skip
    (out / "table.json").write_text(json.dumps(doc))
    np.savez(out / "samples.npz", **{f"main/{k}": v.numpy() for k, v in samples.items()})
    return build_report(out)


def test_demo_report_in_chromium(browser_page, demo_report):
    page, errors, requests = browser_page(demo_report)
    page_url = demo_report.resolve().as_uri()
    assert [u for u in requests if u != page_url and not u.startswith("data:")] == []  # nothing from outside

    # figures: numbered in order, each with a caption and an image that decoded
    figures = page.evaluate(
        """() => Array.from(document.querySelectorAll('figure')).map(f => {
            const img = f.querySelector('img'), cap = f.querySelector('figcaption');
            return {id: f.id, caption: cap ? cap.textContent : '', src: img.src.slice(0, 22),
                    ok: img.complete && img.naturalWidth > 0, width: img.naturalWidth};
        })"""
    )
    assert [f["id"] for f in figures] == [f"figure-{k}" for k in range(1, 8)]
    for k, f in enumerate(figures, 1):
        assert f["caption"].startswith(f"Figure {k}. ") and len(f["caption"]) > 80, f["caption"][:60]
        assert f["ok"] and f["width"] > 300, f
    (film,) = [f for f in figures if f["src"].startswith("data:image/gif")]
    assert "annealed Langevin as a film" in film["caption"]

    # the study table: value / floor per metric, the rows within the floor shaded and ticked
    table = page.evaluate(
        """() => {
            const t = document.querySelector('table.study');
            const rows = Array.from(t.tBodies[0].rows);
            return {heads: Array.from(t.tHead.querySelectorAll('th')).map(h => h.textContent),
                    within: rows.filter(r => r.classList.contains('within')).map(r => r.cells[0].textContent),
                    ticks: rows.map(r => r.cells[1].textContent),
                    shade: rows.map(r => getComputedStyle(r.cells[0]).backgroundColor),
                    spill: t.parentElement.scrollWidth - t.parentElement.clientWidth};
        }"""
    )
    assert table["heads"].count("value / floor") == 4 and "within floor" in table["heads"]
    assert table["within"] and "(A) score-only drift" not in table["within"]
    labels = ("(A) score-only drift", "(B) annealed Langevin", "UniPC (bh2)")
    assert table["ticks"] == ["✓" if label in table["within"] else "" for label in labels]
    assert len(set(table["shade"])) == 2  # marked rows look different
    assert table["spill"] <= 0  # the whole table fits a 1400-pixel window
    headings = page.evaluate("() => Array.from(document.querySelectorAll('h2, h3')).map(h => h.textContent)")
    assert headings[:3] == ["What this study is", "Results", "All samplers, N = 200"]
    screenshot(page, "report-demo-instrument")
    assert errors == []
