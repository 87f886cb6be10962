"""The explorer page in headless Chromium: it starts without console errors or network requests, its
controls redraw the plot, and what plotly draws is the computed data (read back from the graph divs):
particles, the exact density and score at each frame's noise level, trails, the per-frame metric.
Screenshots go to ``test-artifacts/``. The ``browser_page`` fixture opens any HTML file or URL (the
report page too)."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from _browser import browser, missing, open_in, screenshot
from scoredyn.app.explorer.encode import COARSE, QUANT
from scoredyn.app.explorer.frames import compute, display_scale, score_arrows
from scoredyn.app.explorer.page import page_html, read_payload
from scoredyn.app.explorer.serve import make_server
from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import EDM
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
    data = compute(mog6(), n=400, frames=15, samplers={"sde": (20, 6), "ode-heun": (5,), "annealed-langevin": (1,)},
                   seed=1, levels=8, grid=48, arrows=15)  # fmt: skip
    path = tmp_path_factory.mktemp("explorer") / "explore.html"
    path.write_text(page_html(data)[0])
    return path, data


def _drawn(page, trace: int, div: str = "plot") -> np.ndarray:
    """``(2, M)`` the x and y that plotly holds for a trace of a graph div (``null`` -> nan)."""
    xy = page.evaluate(f"() => {{ const t = document.getElementById('{div}').data[{trace}]; "
                       "return [Array.from(t.x), Array.from(t.y)]; }")  # fmt: skip
    return np.array(xy, dtype=np.float64)


def _layout(page, path: str):
    return page.evaluate(f"() => document.getElementById('plot').layout.{path}")


def _tolerance(data, coarse: bool = True) -> np.ndarray:
    """Half a quantization step per axis (of the coarse grid of intermediate frames, or full resolution),
    plus float32 rounding in the page."""
    half_width = np.array([data.box[1] - data.box[0], data.box[3] - data.box[2]]) / 2
    return (half_width / QUANT / 2 * (COARSE + 1 if coarse else 1) + 1e-5 * np.abs(data.box).max())[:, None]


def _expected_density(data, meta, sigma_hat: float) -> np.ndarray:
    """``log p(y) - max`` on the page's heatmap grid, clipped at -12, by an independent route: ``y = c x``
    with ``x ~ target.noised(EDM, sigma_hat)``, so ``log p_y(y) = log p_x(y / c) - 2 log c``."""
    pts = torch.tensor(np.stack(np.meshgrid(meta["grid_x"], meta["grid_y"]), -1).reshape(-1, 2))
    c = float(
        display_scale(torch.tensor(1.0, dtype=torch.float64), torch.tensor(sigma_hat, dtype=torch.float64), data.s_data)
    )
    law = data.reference.noised(EDM(sigma_max=200.0), torch.tensor(sigma_hat, dtype=torch.float64))
    logp = (law.log_prob(pts / c) - 2 * math.log(c)).reshape(len(data.grid_y), len(data.grid_x)).numpy()
    return np.maximum(logp - logp.max(), -12.0)


def _heatmap(page) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, z = page.evaluate("() => { const t = document.getElementById('plot').data[0]; "
                            "return [Array.from(t.x), Array.from(t.y), t.z.map((r) => Array.from(r))]; }")  # fmt: skip
    return np.array(x), np.array(y), np.array(z)


def test_explorer_controls_redraw_the_computed_data(browser_page, explorer):
    path, data = explorer
    runs = {r.key: r for r in data.runs}
    page, errors = browser_page(path, wait_for=READY)
    meta, _ = read_payload(path.read_text())
    metas = {r["key"]: r for r in meta["runs"]}
    tol, fine = _tolerance(data), _tolerance(data, coarse=False)
    state = lambda: page.evaluate("({...explorer.state})")  # noqa: E731
    ready_ms = page.evaluate("explorer.readyMs")
    print(f"explorer page of {path.stat().st_size / 1e6:.2f} MB ready in {ready_ms:.0f} ms (headless Chromium)")
    # every byte came inline: no resource was fetched (a network request would be listed here)
    assert page.evaluate("performance.getEntriesByType('resource').map((e) => e.name)") == []

    # it opens on the first sampler's samples, titled with the run, its noise level and time
    sde, sde_meta = runs["sde/20"], metas["sde/20"]
    last = sde.y.shape[0] - 1
    assert state()["direction"] == "reverse" and state()["sampler"] == "sde" and state()["frame"] == last
    assert (np.abs(_drawn(page, 2) - sde.y[last]) <= fine).all()  # the samples, at full resolution
    title = _layout(page, "title.text")
    assert title.startswith("reverse SDE, 20 steps") and f"frame {last + 1}/{last + 1}: σ/α = 0, t = 0" in title
    screenshot(page, "explorer-start")

    # the density is drawn at the frame's own sigma_hat (no ladder of levels): the exact law within 1e-6 nats
    page.focus("#frame")
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"explorer.state.frame === {last - 4}")
    f = last - 4
    sh = sde_meta["sigma_hat"][f]  # what the page states (6 significant digits of sde.sigma_hat[f])
    assert sh == pytest.approx(sde.sigma_hat[f], rel=1e-5) and page.evaluate("explorer.state.sigmaHat") == sh
    _, _, z = _heatmap(page)
    assert np.abs(z - _expected_density(data, meta, sh)).max() <= 1e-6
    assert np.abs(z - _expected_density(data, meta, float(sde.sigma_hat[f]))).max() <= 1e-3  # the unrounded level
    assert f"σ/α = {sh:.3f}" in page.inner_text("#level-label") and f"σ/α = {sh:.3f}" in _layout(page, "title.text")
    # ... and so are the exact score arrows: frames.score_arrows of the exact field, computed in the page
    arrows = _drawn(page, 1).reshape(2, -1, 7)  # per arrow: tail, tip, null, barb, tip, barb, null
    expected = score_arrows(AnalyticField(data.reference, EDM(sigma_max=200.0)),
                            torch.tensor([sh], dtype=torch.float64), data.s_data, np.array(meta["arrow_x"]),
                            np.array(meta["arrow_y"]), meta["cell"])[0]  # fmt: skip
    np.testing.assert_allclose(arrows[:, :, 1] - arrows[:, :, 0], expected, rtol=0, atol=1e-9)
    assert (np.abs(_drawn(page, 2) - sde.y[f]) <= tol).all()
    # the metric plot's marker is on this frame: its energy distance to the exact law at this sigma_hat
    marker = _drawn(page, 2, div="metric")
    assert marker[0, 0] == f + 1 and marker[1, 0] == pytest.approx(sde.energy[f], rel=1e-3)
    assert _drawn(page, 0, div="metric")[1] == pytest.approx(sde.energy, rel=1e-3)
    assert _drawn(page, 1, div="metric")[1] == pytest.approx(sde.energy_floor, rel=1e-3)

    # the noise slider: the density and arrows of the chosen level, the frame unchanged
    page.uncheck("#follow")
    arrows_before = _drawn(page, 1)
    page.focus("#level")
    page.keyboard.press("Home")
    page.wait_for_function("explorer.state.sigmaHat === 0.05")
    assert np.abs(_heatmap(page)[2] - _expected_density(data, meta, 0.05)).max() <= 1e-6
    assert np.nanmax(np.abs(_drawn(page, 1) - arrows_before)) > 0.1 and state()["frame"] == f
    page.check("#follow")

    # play: from the start to the last frame, where it stops; the marker follows
    page.focus("#frame")
    page.keyboard.press("Home")
    page.wait_for_function("explorer.state.frame === 0")
    page.click("#play")
    page.wait_for_function("explorer.state.frame >= 1")
    page.wait_for_function("!explorer.state.playing", timeout=30_000)
    page.wait_for_timeout(100)  # let the last redraw land
    assert state()["frame"] == last and page.input_value("#frame") == str(last)
    assert (np.abs(_drawn(page, 2) - sde.y[last]) <= fine).all()
    assert _drawn(page, 2, div="metric")[0, 0] == last + 1

    # trails: the last 10 frames of the first 100 particles, one line each
    page.check("#trails")
    page.wait_for_timeout(100)
    trails = _drawn(page, 3).reshape(2, 100, -1)  # per particle: frames f0..last, then null
    f0 = max(0, last - 9)
    assert trails.shape[2] == last - f0 + 2 and np.isnan(trails[:, :, -1]).all()
    expected = np.moveaxis(sde.y[f0:, :, :100], 0, 2)  # (2, 100, frames)
    assert (np.abs(trails[:, :, :-1] - expected) <= tol[:, :, None]).all()
    page.uncheck("#trails")
    page.uncheck("#arrows")
    page.wait_for_timeout(100)
    shown = page.evaluate("document.getElementById('plot').data.map((t) => t.visible !== false)")
    assert shown == [True, False, True, False]  # density, arrows, particles, trails
    page.check("#arrows")
    screenshot(page, "explorer-sde-end")

    # the steps menu: the 6-step run of the same sampler, at its samples, with its own metric curve
    page.select_option("#steps", "6")
    page.wait_for_function("explorer.state.steps === 6")
    short = runs["sde/6"]
    assert (np.abs(_drawn(page, 2) - short.y[-1]) <= fine).all()
    assert _drawn(page, 0, div="metric")[1] == pytest.approx(short.energy, rel=1e-3)
    assert "6 steps; NFE 6" in page.inner_text("#run-info")
    page.select_option("#steps", "20")

    # the sampler's own coordinates at an early frame: x = y / c, axes x1, x2 around them, the field with them
    page.evaluate("explorer.state.frame = 1; explorer.render()")
    page.check("#raw")
    page.wait_for_timeout(100)
    c = sde_meta["scale"][1]
    assert [_layout(page, "xaxis.title.text"), _layout(page, "yaxis.title.text")] == ["x₁", "x₂"]
    xr, yr = np.array(_layout(page, "xaxis.range")), np.array(_layout(page, "yaxis.range"))
    drawn = _drawn(page, 2)
    assert (np.abs(drawn - sde.y[1] / c) <= tol / c).all() and np.abs(drawn).max() > 3 * np.abs(data.box).max()
    # the axes hold the box in x and every particle
    box = np.array(data.box) / c
    assert xr[0] <= min(box[0], drawn[0].min()) and xr[1] >= max(box[1], drawn[0].max())
    assert yr[0] <= min(box[2], drawn[1].min()) and yr[1] >= max(box[3], drawn[1].max())
    assert xr[1] - xr[0] < 1.2 * (max(box[1], drawn[0].max()) - min(box[0], drawn[0].min()))
    np.testing.assert_allclose(_heatmap(page)[0], np.array(meta["grid_x"]) / c, rtol=1e-9)
    assert "x = y / c" in _layout(page, "title.text")
    screenshot(page, "explorer-own-coordinates")
    page.uncheck("#raw")
    page.wait_for_timeout(100)
    assert _layout(page, "xaxis.title.text") == "y₁" and _layout(page, "xaxis.range") == pytest.approx(data.box[:2])

    # the annealed sampler, one step per level: its settings, spelled right
    page.select_option("#sampler", "annealed-langevin")
    page.wait_for_function("explorer.state.sampler === 'annealed-langevin'")
    info = page.inner_text("#run-info")
    assert "1 step per level, 14 noise levels" in info and "1 steps" not in info and "Song & Ermon" in info

    # switch sampler: the PF-ODE on the VP process, its samples, its label, process and metrics
    page.select_option("#sampler", "ode-heun")
    page.wait_for_function("explorer.state.sampler === 'ode-heun'")
    heun = runs["ode-heun/5"]
    assert state()["frame"] == heun.y.shape[0] - 1 and (np.abs(_drawn(page, 2) - heun.y[-1]) <= fine).all()
    info = page.inner_text("#run-info")
    assert "PF-ODE (Heun)" in info and "process vp, grid uniform" in info and "NFE 9" in info
    page.select_option("#count", "100")
    assert _drawn(page, 2).shape == (2, 100)
    assert "100 particles" in page.inner_text("#metrics")
    page.evaluate("explorer.state.frame = 2; explorer.drawFrame()")
    page.wait_for_timeout(100)
    assert (np.abs(_drawn(page, 2) - heun.y[2][:, :100]) <= tol).all()
    screenshot(page, "explorer-ode")

    # forward: the data noised, alpha x0 + sigma eps formed in the page, the particle count in the text
    page.check("input[value=forward]")
    assert page.is_disabled("#sampler") and state()["frame"] == 0
    assert "forward noising of 100 data points" in page.inner_text("#run-info")
    page.evaluate("explorer.state.frame = 10; explorer.drawFrame()")
    page.wait_for_timeout(100)
    fwd = runs["forward"]
    assert (np.abs(_drawn(page, 2) - fwd.y[10][:, :100]) <= 2 * fine).all()  # two stored values, each within half
    assert _layout(page, "title.text").startswith("forward noising — frame 11/15")
    screenshot(page, "explorer-forward")
    assert errors == []


def test_explorer_served_over_http(browser_page, explorer):
    path, _ = explorer
    server, url = make_server(path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page, errors = browser_page(url, wait_for=READY)
        assert page.evaluate("document.getElementById('plot').data.length") == 4
        assert errors == []
    finally:
        server.shutdown()
        server.server_close()


def test_learned_arrows_name_their_level_when_it_is_not_the_densitys(browser_page, tmp_path):
    from scoredyn.learning import TrainConfig, Trainer, apply_overrides, load_trained

    cfg = apply_overrides(TrainConfig(), ["data.name=mog6", "data.n=500", "model.hidden=16", "model.depth=2",
                                          "model.emb_dim=8", "optim.batch_size=64", "optim.steps=3",
                                          "optim.warmup=1", "run.progress=false", f"run.out={tmp_path / 'run'}",
                                          "run.ckpt_every=3"])  # fmt: skip
    Trainer(cfg).fit()
    data = compute(load_trained(tmp_path / "run"), n=40, frames=4, samplers={"ode-euler": (3,)}, levels=3, grid=12,
                   arrows=5)  # fmt: skip
    path = tmp_path / "checkpoint.html"
    path.write_text(page_html(data)[0])
    page, errors = browser_page(path, wait_for=READY)
    # the last frame is at sigma_hat = 0; the nearest learned level is the lowest, 0.05: said, and drawn
    label = page.inner_text("#level-label")
    assert label.startswith("σ/α = 0 ") and "learned score at σ/α = 0.050" in label
    arrows = _drawn(page, 1).reshape(2, -1, 7)
    reach = np.abs(data.arrows).max()
    np.testing.assert_allclose(arrows[:, :, 1] - arrows[:, :, 0], data.arrows[0], rtol=0, atol=reach / 1000 + 1e-6)
    # at a stored level the density and the arrows agree: nothing to say
    page.uncheck("#follow")
    page.focus("#level")
    page.keyboard.press("End")
    page.wait_for_function("explorer.state.sigmaHat > 79")
    assert "learned score" not in page.inner_text("#level-label")
    np.testing.assert_allclose(_drawn(page, 1).reshape(2, -1, 7)[:, :, 1] - _drawn(page, 1).reshape(2, -1, 7)[:, :, 0],
                               data.arrows[-1], rtol=0, atol=reach / 1000 + 1e-6)  # fmt: skip
    assert errors == []


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
    # clouds, score field, paths, compass, schedules (PNG) and the film (GIF); no sweep in this table
    assert len(sizes) == 6 and all(ok and w > 250 and h > 250 for ok, w, h in sizes), sizes
    row_counts = page.evaluate("() => Array.from(document.querySelectorAll('table')).map(t => t.rows.length)")
    assert row_counts[0] == 2 + len(runs) and all(c > 1 for c in row_counts)  # two header rows
    screenshot(page, "report-demo")
    assert errors == []
