"""The explorer page in headless Chromium: it starts without console errors, its controls redraw the
plot, and what plotly draws is the computed data (read back from the graph div). Screenshots go to
``test-artifacts/``. The ``browser_page`` fixture opens any HTML file or URL (the report page too)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from _browser import browser, missing, open_in, screenshot
from scoredyn.app.explorer.encode import QUANT
from scoredyn.app.explorer.frames import compute
from scoredyn.app.explorer.page import page_html
from scoredyn.app.explorer.serve import make_server
from scoredyn.core.targets import mog6

pytestmark = pytest.mark.skipif(
    missing() is not None, reason=f"browser tests need Chromium and Playwright: {missing()}"
)

READY = "window.explorer && window.explorer.ready"


@pytest.fixture(scope="module")
def browser_page():
    """``open(path_or_url, wait_for=None) -> (page, errors)``: a page in one headless Chromium per module;
    ``errors`` lists console errors and uncaught exceptions."""
    with browser() as b:
        pages = []

        def open_page(target, wait_for=None, **kwargs):
            page, errors = open_in(b, target, wait_for=wait_for, **kwargs)
            pages.append(page)
            return page, errors

        yield open_page
        for page in pages:
            page.close()


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    data = compute(mog6(), n=400, frames=15, samplers={"sde": (20,), "ode-heun": (5,)}, seed=1, levels=8,
                   grid=48, arrows=15)  # fmt: skip
    path = tmp_path_factory.mktemp("explorer") / "explore.html"
    path.write_text(page_html(data)[0])
    return path, data


def _drawn(page, trace: int) -> np.ndarray:
    """``(2, M)`` the x and y that plotly holds for a trace of the graph div."""
    xy = page.evaluate(f"() => {{ const t = document.getElementById('plot').data[{trace}]; "
                       "return [Array.from(t.x), Array.from(t.y)]; }")  # fmt: skip
    return np.array(xy, dtype=np.float64)


def _tolerance(data) -> np.ndarray:
    """Half a quantization step per axis, plus float32 rounding in the page."""
    half_width = np.array([data.box[1] - data.box[0], data.box[3] - data.box[2]]) / 2
    return (half_width / QUANT / 2 + 1e-5 * np.abs(data.box).max())[:, None]


def test_explorer_controls_redraw_the_computed_data(browser_page, explorer):
    path, data = explorer
    runs = {r.key: r for r in data.runs}
    page, errors = browser_page(path, wait_for=READY)
    tol = _tolerance(data)
    state = lambda: page.evaluate("({...explorer.state})")  # noqa: E731

    # the first sampler's first frame, all 400 particles, decoded in the page
    assert state()["direction"] == "reverse" and state()["sampler"] == "sde"
    assert (np.abs(_drawn(page, 2) - runs["sde/20"].y[0]) <= tol).all()
    screenshot(page, "explorer-start")

    # the noise slider: the heatmap becomes the density of the chosen level, the arrows move
    page.uncheck("#follow")
    arrows_before = _drawn(page, 1)
    page.focus("#level")
    page.keyboard.press("Home")
    page.wait_for_function("explorer.state.level === 0")
    z = np.array(page.evaluate("() => document.getElementById('plot').data[0].z.map((r) => Array.from(r))"))
    assert np.abs(z - data.log_density[0]).max() <= 0.005 + 1e-5  # 0.01-nat codes
    arrows_after = _drawn(page, 1)
    assert arrows_after.shape == arrows_before.shape and np.nanmax(np.abs(arrows_after - arrows_before)) > 0.1
    page.check("#follow")

    # play: it runs to the last frame and stops there, showing that frame's particles
    page.click("#play")
    page.wait_for_function("explorer.state.frame >= 1")
    page.wait_for_function("!explorer.state.playing", timeout=30_000)
    page.wait_for_timeout(100)  # let the last restyle land
    last = runs["sde/20"].y.shape[0] - 1
    assert state()["frame"] == last and page.input_value("#frame") == str(last)
    assert (np.abs(_drawn(page, 2) - runs["sde/20"].y[last]) <= tol).all()
    assert np.abs(runs["sde/20"].y[last] - runs["sde/20"].y[0]).max() > 1.0  # they did move
    # scrub back with the frame slider's keys
    page.focus("#frame")
    for _ in range(5):
        page.keyboard.press("ArrowLeft")
    page.wait_for_timeout(100)
    f = state()["frame"]
    assert f == last - 5 and (np.abs(_drawn(page, 2) - runs["sde/20"].y[f]) <= tol).all()
    screenshot(page, "explorer-sde-scrubbed")

    # the sampler's own coordinates: y / c
    page.check("#raw")
    c = runs["sde/20"].scale[f]
    assert (np.abs(_drawn(page, 2) - runs["sde/20"].y[f] / c) <= tol / c).all()
    page.uncheck("#raw")

    # switch sampler: the PF-ODE run from its first frame, and its label and metrics
    page.select_option("#sampler", "ode-heun")
    page.wait_for_function("explorer.state.sampler === 'ode-heun'")
    assert (np.abs(_drawn(page, 2) - runs["ode-heun/5"].y[0]) <= tol).all()
    assert "PF-ODE (Heun)" in page.inner_text("#run-info")
    page.select_option("#count", "100")
    assert _drawn(page, 2).shape == (2, 100)
    assert "100 particles" in page.inner_text("#metrics")
    page.evaluate("explorer.state.frame = 5; explorer.drawFrame()")
    page.wait_for_timeout(100)
    assert (np.abs(_drawn(page, 2) - runs["ode-heun/5"].y[5][:, :100]) <= tol).all()
    screenshot(page, "explorer-ode-end")

    # forward: the data noised, alpha x0 + sigma eps formed in the page
    page.select_option("#count", "400")
    page.check("input[value=forward]")
    assert page.is_disabled("#sampler")
    page.evaluate("explorer.state.frame = 10; explorer.drawFrame()")
    page.wait_for_timeout(100)
    fwd = runs["forward"]
    assert (np.abs(_drawn(page, 2) - fwd.y[10]) <= 2 * tol).all()  # two stored values, each within half a step
    screenshot(page, "explorer-forward")
    assert errors == []


def test_explorer_served_over_http(browser_page, explorer):
    path, _ = explorer
    server, url = make_server(path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page, errors = browser_page(url, wait_for=READY)
        assert page.evaluate("document.getElementById('plot').data.length") == 3
        assert errors == []
    finally:
        server.shutdown()
        server.server_close()


def test_report_page_opens_without_errors_and_shows_every_figure(browser_page, tmp_path):
    """A demo's report.html in Chromium: no console errors, every embedded figure decodes to a real
    image (natural size > 0), every table has rows; a screenshot goes to test-artifacts/."""
    import json

    from scoredyn.app.report import build_report
    from scoredyn.app.study import StudyRun, run_study

    target = mog6()
    runs = [StudyRun("(B) annealed Langevin", "annealed-langevin", 10), StudyRun("UniPC (bh2)", "unipc", 10)]
    rows, samples = run_study(target, runs, 200, seed=0)
    doc = {"target": target.to_dict(), "n": 200, "seed": 0, "wall_s": 1.0, "versions": {}, "tables": {"main": rows}}
    (tmp_path / "table.json").write_text(json.dumps(doc))
    np.savez(tmp_path / "samples.npz", **{f"main/{k}": v.numpy() for k, v in samples.items()})
    page, errors = browser_page(build_report(tmp_path))
    sizes = page.evaluate("() => Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    assert len(sizes) == 5 and all(ok and w > 400 and h > 250 for ok, w, h in sizes), sizes
    row_counts = page.evaluate("() => Array.from(document.querySelectorAll('table')).map(t => t.rows.length)")
    assert row_counts[0] == 1 + len(runs) and all(c > 1 for c in row_counts)
    screenshot(page, "report-demo")
    assert errors == []
