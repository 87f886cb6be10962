"""``scoredyn figures``: the four interactive figures as one self-contained page.

The payload is what the library computes (reverse-family paths, schedules, forward-SDE particles);
in headless Chromium the page starts with no console error and no request beyond ``data:``/``blob:``,
each panel's controls redraw it, and the numbers it computes in closed form (the compass's noise
prediction, the schedules' alpha-bar) agree with the library's. Screenshots go to ``test-artifacts/``.
Everything here is deterministic (fixed seeds); no test is statistical.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from _browser import browser, missing, screenshot
from scoredyn.app.cli import main as cli_main
from scoredyn.app.explorer.figures import (
    LAMBDAS,
    PATH_COPIES,
    PATH_EVERY,
    PATH_SETS,
    PATH_STEPS,
    build_figures,
    read_figures_payload,
    standardized,
)
from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import simulate_forward
from scoredyn.core.registry import resolve_process
from scoredyn.core.targets import mog6
from scoredyn.samplers import karras_grid, reverse_sde

READY = "window.figures && window.figures.ready"
STILL = "window.figures.state.busy === 0"
SEED = 0
ROUNDING = 5e-4 + 1e-12  # positions are stored to 3 decimals
TARGET = standardized(mog6())[0]  # the page's mixture: mog6 centred and scaled to unit variance

needs_browser = pytest.mark.skipif(missing() is not None, reason=f"browser tests need Chromium: {missing()}")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path = tmp_path_factory.mktemp("figures") / "figures.html"
    info = build_figures(mog6(), path, seed=SEED)
    return path, info, read_figures_payload(path.read_text())


# --- the payload: the library's numbers -----------------------------------------------------------------


def test_paths_are_the_reverse_family_on_the_exact_field(built):
    _, _, data = built
    paths = data["paths"]
    xy = np.array(paths["xy"])  # (lambda, set, path, point, 2)
    assert xy.shape == (len(LAMBDAS), PATH_SETS, 24, PATH_STEPS // PATH_EVERY + 1, 2)
    assert paths["t"][0] == 1.0 and paths["t"][-1] == 0.0 and np.all(np.diff(paths["t"]) < 0)
    # every lambda starts from the same points; the ODE's two copies of a start coincide, the SDE's branch
    assert np.array_equal(xy[:, :, :, 0], np.broadcast_to(xy[0, :, :, 0], xy[:, :, :, 0].shape))
    ode, sde = xy[0].reshape(-1, PATH_COPIES, *xy.shape[3:]), xy[-1].reshape(-1, PATH_COPIES, *xy.shape[3:])
    assert np.array_equal(ode[:, 0], ode[:, 1])
    gap = np.linalg.norm(sde[:, 0] - sde[:, 1], axis=-1)  # (start, point): the SDE copies' distance
    assert (gap[:, 1:] > 2e-3).all() and np.median(gap[:, -1]) > 0.3  # they part at once, and end far apart
    # lambda = 1 recomputed with the library (the seeds of figures._paths): the same paths
    vp = resolve_process("vp")
    grid = karras_grid(vp, PATH_STEPS)
    starts = torch.from_numpy(xy[0, :, ::PATH_COPIES, 0].reshape(-1, 2))
    starts_exact = TARGET.noised(vp, grid[0]).sample(starts.shape[0], torch.Generator().manual_seed(SEED))
    assert (starts - starts_exact).abs().max() <= ROUNDING
    path = reverse_sde(AnalyticField(TARGET, vp), starts_exact.repeat_interleave(PATH_COPIES, 0), grid, lam=1.0,
                       generator=torch.Generator().manual_seed(SEED + 1), return_path=True).path  # fmt: skip
    want = path[::PATH_EVERY].permute(1, 0, 2).reshape(xy.shape[1:]).numpy()
    assert np.abs(xy[-1] - want).max() <= ROUNDING


def test_schedules_give_the_texts_alpha_bar(built):
    """alpha-bar(0.2): discrete linear DDPM 0.6590, cosine 0.8987; the texts' 0.658 is the continuous
    VP-SDE (0.6584); the page's curves are the library's."""
    _, _, data = built
    sched = data["schedules"]
    i = 200
    assert sched["u"][i] == pytest.approx(0.2, abs=1e-15)
    linear, cosine = (resolve_process(n) for n in ("ddpm", "ddpm-cosine"))
    assert sched["ddpm"]["alpha"][i] ** 2 == pytest.approx(float(linear.alpha(200.0) ** 2), rel=1e-12)
    assert sched["ddpm-cosine"]["alpha"][i] ** 2 == pytest.approx(float(cosine.alpha(200.0) ** 2), rel=1e-12)
    assert round(sched["ddpm"]["alpha"][i] ** 2, 4) == 0.6590
    assert round(sched["ddpm-cosine"]["alpha"][i] ** 2, 4) == 0.8987
    assert round(sched["vp_abar"][i], 3) == 0.658  # the texts' number
    for name in ("ddpm", "ddpm-cosine"):
        a, s = np.array(sched[name]["alpha"]), np.array(sched[name]["sigma"])
        np.testing.assert_allclose(a**2 + s**2, 1.0, rtol=1e-12)
    x0 = np.array(sched["x0"])
    assert x0.shape == (500, 2) and np.abs(x0.mean(0)).max() < 0.2 and 0.7 < (x0**2).mean() < 1.3  # standardized


def test_forward_particles_are_simulate_forward(built):
    _, _, data = built
    fp = data["fp"]
    vp = resolve_process("vp")
    t = torch.tensor(fp["t"], dtype=torch.float64)
    g = torch.Generator().manual_seed(SEED + 3)
    want = simulate_forward(vp, TARGET.sample(600, g), t, generator=g, substeps=fp["substeps"]).numpy()
    assert np.abs(np.array(fp["xy"]) - want).max() <= ROUNDING
    np.testing.assert_allclose(fp["alpha"], vp.alpha(t).numpy(), rtol=1e-15)
    np.testing.assert_allclose(fp["sigma"], vp.sigma(t).numpy(), rtol=1e-15)


def test_page_is_self_contained_and_small(built):
    path, info, _ = built
    text = path.read_text()
    assert info["bytes"] == path.stat().st_size < 3_000_000
    assert info["bytes_plotly"] > 1_000_000  # plotly.js is inlined
    refs = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert all(r.startswith("data:") for r in refs), refs
    assert "http://" not in text.split('id="plotly-gz"')[0] and "https://" not in text.split('id="plotly-gz"')[0]
    assert "@@" not in text  # every slot filled


def test_bad_targets_are_refused():
    from scoredyn.app.explorer.figures import compute_figures
    from scoredyn.core.targets import random_mixture

    with pytest.raises(ValueError, match="2-D"):
        compute_figures(random_mixture(3, 3, seed=0))
    with pytest.raises(ValueError, match="seed"):
        compute_figures(mog6(), seed=-1)


# --- the command line -------------------------------------------------------------------------------------


def _cli_in_process(monkeypatch, capsys, *args) -> tuple[int, str]:
    """``scoredyn figures ARGS`` through the real entry point (``cli.main``), in this process."""
    monkeypatch.setattr(sys, "argv", ["scoredyn", "figures", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        cli_main()
    return exit_info.value.code, capsys.readouterr().err


def test_cli_writes_the_page(tmp_path):
    out = tmp_path / "f.html"
    proc = subprocess.run([sys.executable, "-m", "scoredyn", "figures", "--target", "mog6", "--seed", "3",
                           "--out", str(out)], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stderr and out.stat().st_size > 1_000_000
    assert read_figures_payload(out.read_text())["seed"] == 3


def test_cli_refuses_bad_input_with_one_line(tmp_path, monkeypatch, capsys):
    out = tmp_path / "x.html"
    cases = [
        (["--target", "nope", "--out", out], "unknown target 'nope'"),
        (["--target", "mog10", "--out", out], "2-D"),
        (["--target", "mog6", "--out", tmp_path / "x.png"], "--out must end in .html"),
        (["--target", "mog6", "--checkpoint", tmp_path, "--out", out], "at most one of"),
        (["--checkpoint", tmp_path, "--out", out], "not a scoredyn run folder"),
        (["--seed", "-1", "--out", out], "--seed"),
    ]
    for args, msg in cases:
        code, err = _cli_in_process(monkeypatch, capsys, *args)
        assert code == 2 and msg in err, (args, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert not out.exists() and not (tmp_path / "x.png").exists()


def test_cli_checkpoint_uses_the_exact_mixture_of_its_data(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"config": {"data": {"name": "offcentre"}}}')
    out = tmp_path / "c.html"
    code, err = _cli_in_process(monkeypatch, capsys, "--checkpoint", run, "--out", out)
    assert code == 0, err
    text = out.read_text()
    assert "training data of checkpoint" in text and "offcentre" in text
    from scoredyn.core.targets import offcentre

    mixture = read_figures_payload(text)["mixture"]
    assert np.allclose(mixture["means"], standardized(offcentre())[0].means.numpy(), rtol=1e-12, atol=0)
    assert np.allclose(mixture["centre"], offcentre().mean().numpy(), rtol=1e-12, atol=0)


# --- the page in Chromium ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def opened(built):
    """The built page in one headless Chromium: ``(page, errors, requests)``; ``requests`` lists every
    URL the page asked for after its own document."""
    if missing() is not None:
        pytest.skip(f"browser tests need Chromium: {missing()}")
    path = built[0]
    with browser() as b:
        page = b.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.resolve().as_uri(), wait_until="load")
        page.wait_for_function(READY, timeout=30_000)
        page.wait_for_function(STILL)
        yield page, errors, [u for u in requests if u != path.resolve().as_uri()]
        page.close()


def _trace(page, div: str, k: int, key: str = "x") -> np.ndarray:
    return np.array(page.evaluate(f"Array.from(document.getElementById('{div}').data[{k}].{key}, (v) => v ?? NaN)"),
                    dtype=np.float64)  # fmt: skip


def _press(page, slider: str, key: str, times: int = 1) -> None:
    page.focus(slider)
    for _ in range(times):
        page.keyboard.press(key)
    page.wait_for_function(STILL)


@needs_browser
def test_page_starts_offline_without_errors(opened):
    page, errors, requests = opened
    assert all(u.startswith(("data:", "blob:")) for u in requests), requests
    assert page.inner_text("#status") == ""
    assert page.evaluate("['compass-plot', 'paths-plot', 'sched-curve', 'sched-linear', 'sched-cosine', 'fp-plot', "
                         "'fp-hist'].every((id) => document.getElementById(id).data.length > 0)")  # fmt: skip
    screenshot(page, "figures-start")
    assert errors == []


@needs_browser
def test_compass_click_matches_the_exact_field(opened, built):
    page, errors, _ = opened
    assert page.input_value("#compass-t") == "300"
    area = page.locator("#compass-plot .nsewdrag").bounding_box()
    fx, fy = 0.5, 0.15  # above the components, where the noise prediction is long
    page.mouse.click(area["x"] + fx * area["width"], area["y"] + fy * area["height"])
    page.wait_for_function(STILL)
    r = page.evaluate("figures.state.compass.r")
    # the click landed where it was aimed, within a pixel
    (x0, x1), (y0, y1) = page.evaluate("[document.getElementById('compass-plot').layout.xaxis.range, "
                                       "document.getElementById('compass-plot').layout.yaxis.range]")  # fmt: skip
    pixel = (x1 - x0) / area["width"]
    assert abs(r["x"][0] - (x0 + fx * (x1 - x0))) < pixel and abs(r["x"][1] - (y1 - fy * (y1 - y0))) < pixel
    # eps_hat and E[x0 | x_t] of the page against the library's exact field at the same (x_t, t)
    field = AnalyticField(TARGET, resolve_process("vp"))
    x = torch.tensor([r["x"]], dtype=torch.float64)
    eps, mean = field.eps(x, r["t"])[0].numpy(), field.denoise(x, r["t"])[0].numpy()
    assert np.linalg.norm(np.array(r["epsHat"]) - eps) <= 1e-6 * np.linalg.norm(eps)
    assert np.linalg.norm(np.array(r["mean"]) - mean) <= 1e-6 * np.linalg.norm(mean)
    # at 100% accuracy the reconstruction is Tweedie's posterior mean; the table shows the numbers
    assert np.allclose(r["x0Hat"], r["mean"], rtol=1e-9, atol=1e-9)
    table = page.inner_text("#compass-numbers")
    assert f"({eps[0]:.4f}, {eps[1]:.4f})" in table and f"({mean[0]:.4f}, {mean[1]:.4f})" in table
    annotations = page.evaluate("document.getElementById('compass-plot').layout.annotations")
    assert len(annotations) == 2 and all(a["arrowhead"] > 0 and a["arrowwidth"] >= 4 for a in annotations)
    assert annotations[0]["x"] == pytest.approx(r["x"][0]) and annotations[1]["x"] == pytest.approx(r["x0Hat"][0])

    # the time slider: a new density and a new prediction at the same x_t
    z_before = _trace(page, "compass-plot", 0, "z[45]")
    _press(page, "#compass-t", "ArrowRight", 5)
    r2 = page.evaluate("figures.state.compass.r")
    assert r2["t"] == built[2]["vp"]["t"][305] == pytest.approx(0.305**2) and r2["x"] == r["x"]
    assert np.abs(_trace(page, "compass-plot", 0, "z[45]") - z_before).max() > 1e-3
    eps2 = field.eps(x, r2["t"])[0].numpy()
    assert np.linalg.norm(np.array(r2["epsHat"]) - eps2) <= 1e-6 * np.linalg.norm(eps2)

    # the accuracy slider: at 0% eps_theta is eps_hat turned by 90 degrees and the reconstruction misses
    _press(page, "#compass-acc", "Home")
    r0 = page.evaluate("figures.state.compass.r")
    assert np.allclose(r0["epsTheta"], [-r0["epsHat"][1], r0["epsHat"][0]], rtol=1e-12, atol=1e-12)
    assert r0["miss"] == pytest.approx(r0["sigma"] * np.hypot(*r0["epsHat"]) * np.sqrt(2) / r0["alpha"], rel=1e-9)
    assert r0["miss"] > 0.3 and "0%" in page.inner_text("#compass-acc-label")
    assert len(page.evaluate("document.getElementById('compass-plot').layout.annotations")) == 3  # + the exact step
    screenshot(page, "figures-compass-0pct")
    _press(page, "#compass-acc", "End")
    assert errors == []


@needs_browser
def test_paths_slider_and_new_starts_replay_the_precomputed_paths(opened, built):
    page, errors, _ = opened
    xy = built[2]["paths"]["xy"]
    per = (len(built[2]["paths"]["t"]) - 1) // 8

    def first_segment(lam, s):  # the first path's points in the first time band, as drawn
        return np.array(xy[lam][s][0][: per + 1])

    band = lambda: np.stack([_trace(page, "paths-plot", 1, "x"), _trace(page, "paths-plot", 1, "y")], 1)  # noqa: E731
    assert np.array_equal(band()[: per + 1], first_segment(0, 0))
    _press(page, "#paths-lam", "End")
    assert page.evaluate("figures.state.paths.lam") == len(LAMBDAS) - 1 and "reverse SDE" in page.inner_text(
        "#paths-lam-label"
    )
    assert np.array_equal(band()[: per + 1], first_segment(len(LAMBDAS) - 1, 0))
    page.click("#paths-new")
    page.wait_for_function(STILL)
    assert page.evaluate("figures.state.paths.set") == 1 and "start set 2" in page.inner_text("#paths-set-label")
    assert np.array_equal(band()[: per + 1], first_segment(len(LAMBDAS) - 1, 1))
    screenshot(page, "figures-paths-sde")
    assert errors == []


@needs_browser
def test_schedule_slider_shows_the_librarys_alpha_bar(opened, built):
    page, errors, _ = opened
    sched = built[2]["schedules"]
    assert page.input_value("#sched-t") == "200"
    linear = float(resolve_process("ddpm").alpha(200.0) ** 2)
    cosine = float(resolve_process("ddpm-cosine").alpha(200.0) ** 2)
    assert page.inner_text("#abar-linear") == f"{linear:.4f}" == "0.6590"
    assert page.inner_text("#abar-cosine") == f"{cosine:.4f}" == "0.8987"
    r = page.evaluate("figures.state.sched.r")
    assert r["linear"] == pytest.approx(linear, rel=1e-12) and r["cosine"] == pytest.approx(cosine, rel=1e-12)
    # the noised data is alpha x0 + sigma eps with the stored x0, eps
    x0, eps = np.array(sched["x0"]), np.array(sched["eps"])
    a, s = sched["ddpm"]["alpha"][200], sched["ddpm"]["sigma"][200]
    assert np.allclose(_trace(page, "sched-linear", 0, "x"), a * x0[:, 0] + s * eps[:, 0], atol=1e-12)
    before = _trace(page, "sched-cosine", 0, "x")
    _press(page, "#sched-t", "ArrowRight", 100)
    assert page.evaluate("figures.state.sched.r.t") == pytest.approx(0.3)
    assert _trace(page, "sched-curve", 3, "x")[0] == pytest.approx(0.3)
    assert np.abs(_trace(page, "sched-cosine", 0, "x") - before).max() > 0.01
    assert page.inner_text("#abar-linear") == f"{float(resolve_process('ddpm').alpha(300.0) ** 2):.4f}"
    screenshot(page, "figures-schedules")
    assert errors == []


@needs_browser
def test_fokker_planck_slider_shows_particles_over_the_exact_density(opened, built):
    page, errors, _ = opened
    fp = built[2]["fp"]
    _press(page, "#fp-t", "End")
    f = len(fp["t"]) - 1
    assert np.array_equal(_trace(page, "fp-plot", 1, "x"), np.array(fp["xy"][f])[:, 0])
    assert np.array_equal(_trace(page, "fp-hist", 0, "x"), np.array(fp["xy"][f])[:, 0])
    # the exact marginal of x_1 at t = 1: a mixture of N(alpha mu_k1, alpha^2 Sigma_k11 + sigma^2)
    target, a, s = TARGET, fp["alpha"][f], fp["sigma"][f]
    xs, dens = _trace(page, "fp-hist", 1, "x"), _trace(page, "fp-hist", 1, "y")
    var = a**2 * target.covs[:, 0, 0].numpy() + s**2
    want = (target.weights.numpy() * np.exp(-0.5 * (xs[:, None] - a * target.means[:, 0].numpy()) ** 2 / var)
            / np.sqrt(2 * np.pi * var)).sum(1)  # fmt: skip
    np.testing.assert_allclose(dens, want, rtol=1e-9, atol=1e-15)
    z_end = _trace(page, "fp-plot", 0, "z[45]")
    _press(page, "#fp-t", "Home")
    assert np.array_equal(_trace(page, "fp-plot", 1, "y"), np.array(fp["xy"][0])[:, 1])
    assert np.abs(_trace(page, "fp-plot", 0, "z[45]") - z_end).max() > 1.0
    assert "t = 0.000" in page.inner_text("#fp-t-label")
    screenshot(page, "figures-fokker-planck")
    assert errors == []
