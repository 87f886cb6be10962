"""Figures: each test renders one function on a small input and checks what was drawn against
numbers computed independently (arrow directions, colour limits, point positions, frame counts)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.quiver import Quiver
from matplotlib.text import Text
from PIL import Image, ImageSequence

from scoredyn.app.sampling import sample
from scoredyn.app.viz import (
    accuracy_vs_nfe,
    animate,
    animation,
    digits_grid,
    forward_noising,
    likelihood_plot,
    noise_compass,
    reverse_paths,
    sample_clouds,
    sampler_frames,
    save_figure,
    schedules,
    score_error_field,
    score_field,
    training_curves,
    trajectories,
)
from scoredyn.app.viz.common import OKABE_ITO, TOL_MUTED, label_line_ends, new_figure
from scoredyn.app.viz.compass import ARROWS
from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import EDM, VP
from scoredyn.core.registry import PROCESSES
from scoredyn.core.targets import GaussianMixture, mog6
from scoredyn.samplers import karras_grid, ode, start_distribution

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def target() -> GaussianMixture:
    return mog6()


def panels(fig: Figure) -> list:
    """The data axes (colour bars excluded)."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def of_type(ax, kind) -> list:
    return [c for c in ax.collections if isinstance(c, kind)]


def labelled(ax) -> bool:
    return bool(ax.get_xlabel()) and bool(ax.get_title())


def exact_score(target, process, sigma_hat: float, pts: np.ndarray) -> np.ndarray:
    t = process.sigma_hat_to_t(torch.tensor([sigma_hat], dtype=torch.float64))[0]
    return AnalyticField(target, process).score(torch.from_numpy(pts), t).numpy()


# --- saving ------------------------------------------------------------------------------------------


def test_save_figure_writes_png_and_svg_atomically(tmp_path):
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    png, svg = save_figure(fig, tmp_path / "a.png"), save_figure(fig, tmp_path / "sub" / "a.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert b"<svg" in svg.read_bytes()[:500]
    assert save_figure(fig, tmp_path / "b.svg").read_bytes() == svg.read_bytes()  # no dates, fixed ids
    (tmp_path / "b.svg").unlink()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.png", "a.svg"]  # no temp left
    with pytest.raises(ValueError, match="png, .svg or .pdf"):
        save_figure(fig, tmp_path / "a.jpg")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    fig.savefig = broken
    with pytest.raises(RuntimeError):
        save_figure(fig, tmp_path / "b.png")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.png", "a.svg"]


# --- score fields ------------------------------------------------------------------------------------


def test_score_field_draws_the_exact_score_direction_and_shares_one_colour_scale(target):
    process, levels, n = VP(), (2.0, 0.5), 7
    fig = score_field(AnalyticField(target, process), sigma_hats=levels, grid=n)
    axes = panels(fig)
    assert len(axes) == 2 and len(fig.axes) == 3  # two panels and one colour bar
    mags = []
    for ax, sh in zip(axes, levels, strict=True):
        (q,) = [a for a in ax.get_children() if isinstance(a, Quiver)]
        assert len(q.U) == n * n
        s = exact_score(target, process, sh, q.XY)
        # arrows are unit directions of the exact score (float64 throughout: 1e-10 is rounding)
        drawn = np.stack([q.U, q.V], 1)
        np.testing.assert_allclose(drawn / np.linalg.norm(drawn, axis=1, keepdims=True),
                                   s / np.linalg.norm(s, axis=1, keepdims=True), atol=1e-10)  # fmt: skip
        np.testing.assert_allclose(q.get_array(), np.linalg.norm(s, axis=1), rtol=1e-10)  # colour = |s|
        mags.append(np.linalg.norm(s, axis=1))
        assert len(of_type(ax, ContourSet)) == 1  # the contours of p_t
        assert f"{sh:g}" in ax.get_title() and ax.get_xlabel() == "$x_1$"
    q0 = [a for a in axes[0].get_children() if isinstance(a, Quiver)][0]
    assert q0.norm.vmin == pytest.approx(min(m.min() for m in mags), rel=1e-12)
    assert q0.norm.vmax == pytest.approx(max(m.max() for m in mags), rel=1e-12)
    assert fig.axes[-1].get_ylabel()  # the colour bar says what the colour is

    stream = score_field(AnalyticField(target, process), sigma_hats=(1.0,), grid=9, streamlines=True)
    assert sum(len(c.get_segments()) for c in of_type(panels(stream)[0], LineCollection)) > 20


def test_score_error_field_colour_limit_is_the_largest_error(target):
    process, levels, n = VP(), (1.0, 0.3), 9
    shifted = GaussianMixture(target.weights, target.means + 0.3, target.covs * 1.2, name="shifted")
    learned, exact = AnalyticField(shifted, process), AnalyticField(target, process)
    fig = score_error_field(learned, exact, sigma_hats=levels, grid=n)
    errors = []
    for ax, sh in zip(panels(fig), levels, strict=True):
        (image,) = [a for a in ax.get_children() if isinstance(a, AxesImage)]
        X, Y = np.meshgrid(np.linspace(*ax.get_xlim(), n), np.linspace(*ax.get_ylim(), n))
        pts = np.stack([X.ravel(), Y.ravel()], 1)
        s_hat, s = exact_score(shifted, process, sh, pts), exact_score(target, process, sh, pts)
        err = np.linalg.norm(s_hat - s, axis=1) / np.linalg.norm(s, axis=1)
        assert image.get_array().max() == pytest.approx(err.max(), rel=1e-10)
        errors.append(err.max())
    assert image.get_clim()[1] == pytest.approx(max(errors), rel=1e-12)
    assert max(errors) > 0.1  # the shifted mixture is visibly wrong

    # the exact field of another process, read at equal SNR, is the same field: error ~ 0
    same = score_error_field(AnalyticField(target, EDM()), exact, sigma_hats=(1.0,), grid=5)
    (image,) = [a for a in panels(same)[0].get_children() if isinstance(a, AxesImage)]
    assert image.get_clim()[1] < 1e-8


# --- clouds ----------------------------------------------------------------------------------------


def test_sample_clouds_draws_every_point_and_mass_contours(target):
    g = torch.Generator().manual_seed(0)
    good, bad = target.sample(300, g), target.sample(300, g) * 0.5
    fig = sample_clouds({"exact": good, "shrunk": bad}, target, grid=80)
    axes = panels(fig)
    assert len(axes) == 2 and [ax.get_title() for ax in axes] == ["exact  (N = 300)", "shrunk  (N = 300)"]
    for ax, x in zip(axes, (good, bad), strict=True):
        (dots,) = of_type(ax, PathCollection)
        np.testing.assert_array_equal(dots.get_offsets(), x.numpy())
        truth, kde = of_type(ax, ContourSet)  # the true contours, then the KDE's at the same levels
        np.testing.assert_array_equal(truth.levels, kde.levels)
    # the outer true contour holds 90% of the mass: the fraction of fresh exact samples above its
    # density level is 0.9 up to Monte-Carlo (sd 0.005 at 4000) and grid (80^2 cells) error
    level = truth.levels[0]
    fresh = target.sample(4000, g)
    inside = (torch.exp(target.log_prob(fresh)) > level).double().mean().item()
    assert abs(inside - 0.9) < 0.03

    collapsed = torch.zeros(50, 2) + torch.tensor([1.0, 2.0])
    fig = sample_clouds({"collapsed": collapsed}, reference=good, max_points=20, grid=40)
    (ax,) = panels(fig)
    assert len(of_type(ax, PathCollection)[0].get_offsets()) == 20
    assert len(of_type(ax, ContourSet)) == 1 and "no KDE" in ax.texts[0].get_text()
    with pytest.raises(ValueError, match="samples"):
        sample_clouds({})


def test_small_multiples_label_only_the_outer_panels(target):
    clouds = {f"run {k}": target.sample(60, torch.Generator().manual_seed(k)) for k in range(6)}
    fig = sample_clouds(clouds, target, ncols=3, panel=(2.5, 2.4), grid=30)
    axes = panels(fig)
    assert [ax.get_title().split("  ")[0] for ax in axes] == list(clouds)
    fig.draw_without_rendering()
    shown = [any(t.get_visible() and t.get_text() for t in ax.get_xticklabels()) for ax in axes]
    assert shown == [False, False, False, True, True, True]  # x ticks on the bottom row only
    assert [bool(ax.get_ylabel()) for ax in axes] == [True, False, False, True, False, False]


def test_cloud_kde_is_scipys_gaussian_kde(target):
    """The clouds' KDE (whitened, blocked matrix products) is scipy's gaussian_kde (Scott's rule).
    Both are exact float64 sums of the same kernels in different orders: rounding, about 1e-14 of
    the peak (the bound 1e-11 leaves room for the expansion |u|^2 + |v|^2 - 2 u.v)."""
    from scipy.stats import gaussian_kde

    from scoredyn.app.viz.clouds import kde_on

    x = target.sample(700, torch.Generator().manual_seed(3)).numpy()
    X, Y = np.meshgrid(np.linspace(-12, 12, 61), np.linspace(-11, 11, 53))
    ours = kde_on(x, X, Y)
    ref = gaussian_kde(x.T)(np.stack([X.ravel(), Y.ravel()])).reshape(X.shape)
    assert ours.shape == X.shape and ref.max() > 1e-3
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-11 * ref.max())
    assert kde_on(np.zeros((10, 2)) + 1.0, X, Y) is None  # collapsed onto a point: no KDE


# --- dynamics ---------------------------------------------------------------------------------------


def test_trajectories_segments_coloured_by_time_and_the_ode_ends_where_the_solver_does(target):
    starts = torch.tensor([[0.5, -0.2], [-1.0, 0.3], [0.1, 1.2], [1.5, 1.0], [-0.4, -1.6], [0.0, 0.0]])
    steps = 8
    fig = trajectories(target, starts, steps=steps, seed=3)
    sde_ax, ode_ax = panels(fig)
    grid = karras_grid(VP(), steps)
    for ax in (sde_ax, ode_ax):
        (lines,) = of_type(ax, LineCollection)
        segs = lines.get_segments()
        assert len(segs) == steps * len(starts)
        np.testing.assert_allclose([s[0] for s in segs[: len(starts)]], starts.double().numpy())
        np.testing.assert_allclose(lines.get_array(), np.repeat(grid[:-1].numpy(), len(starts)))
        assert lines.norm.vmin == 0.0 and lines.norm.vmax == pytest.approx(float(grid[0]))
        assert labelled(ax)
    end = ode(AnalyticField(target, VP()), starts.double(), grid, method="heun").x.numpy()
    np.testing.assert_allclose(of_type(ode_ax, PathCollection)[1].get_offsets(), end, atol=1e-10)
    sde_end = of_type(sde_ax, PathCollection)[1].get_offsets()
    assert np.abs(sde_end - end).max() > 1e-3  # the SDE's noise took it elsewhere
    assert fig.axes[-1].get_ylabel().startswith("time")


def _crossings(paths: np.ndarray) -> int:
    """Proper crossings between the drawn segments of different particles' paths ``(S + 1, N, 2)``."""
    seg = np.stack([paths[:-1], paths[1:]], axis=2).reshape(-1, 2, 2)
    owner = np.tile(np.arange(paths.shape[1]), paths.shape[0] - 1)

    def side(p, q, r):  # the sign of the turn p -> q -> r
        u, v = q - p, r - p
        return np.sign(u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0])

    a, b, c, d = seg[:, None, 0], seg[:, None, 1], seg[None, :, 0], seg[None, :, 1]
    proper = (side(a, b, c) * side(a, b, d) < 0) & (side(c, d, a) * side(c, d, b) < 0)
    return int((proper & (owner[:, None] != owner[None])).sum() // 2)


def test_ode_paths_never_meet_in_x_and_t_while_their_drawn_shadows_cross(target):
    """What the trajectory figure's caption claims: the PF-ODE's solutions are unique, so at every
    common time no two particles coincide (their distance stays that of distinct starts), while the
    2-D lines drawn, which drop t, do cross; the SDE's cross far more."""
    field = AnalyticField(target, VP())
    p = field.process
    law = start_distribution("exact", p, p.t_max, target=target)
    starts = law.sample(24, generator=torch.Generator().manual_seed(0))
    sde, flow = reverse_paths(field, starts, steps=40, seed=0)
    x = flow.x
    i, j = np.triu_indices(x.shape[1], 1)
    closest = np.linalg.norm(x[:, i] - x[:, j], axis=-1).min(axis=1)  # per time
    assert closest.min() > 0.5 * closest[0] > 0  # never meet: the flow keeps distinct particles apart
    assert _crossings(x) > 0  # yet the shadows in the plane cross
    assert _crossings(sde.x) > 10 * _crossings(x)


def test_forward_noising_uses_one_noise_draw_for_every_time(target):
    x0 = target.sample(50, torch.Generator().manual_seed(1))
    process, times = VP(), [0.0, 0.3, 1.0]
    fig = forward_noising(x0, process, times, seed=7, target=target)
    axes = panels(fig)
    assert len(axes) == 3
    offsets = [of_type(ax, PathCollection)[0].get_offsets().data for ax in axes]
    np.testing.assert_allclose(offsets[0], x0.numpy(), atol=1e-12)  # t = 0 is the data
    eps = torch.randn(50, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64).numpy()
    for t, off in zip(times[1:], offsets[1:], strict=True):
        a, s = float(process.alpha(t)), float(process.sigma(t))
        np.testing.assert_allclose((off - a * x0.numpy()) / s, eps, atol=1e-10)
    with pytest.raises(ValueError, match="times"):
        forward_noising(x0, process, [2.0])


def test_noise_compass_arrows_are_the_predicted_noise_and_tweedie(target):
    process, t = VP(), 0.3
    field = AnalyticField(target, process)
    g = torch.Generator().manual_seed(2)
    x0 = target.sample(4, g)
    xt = process.marginal_sample(x0, t, torch.randn(4, 2, generator=g, dtype=torch.float64))
    fig = noise_compass(field, xt, t, x0)
    (ax,) = panels(fig)
    true_q, noise_q, recon_q = [a for a in ax.get_children() if isinstance(a, Quiver)]
    a, s = float(process.alpha(t)), float(process.sigma(t))
    eps_hat, x0_hat = field.eps(xt, t).numpy(), field.denoise(xt, t).numpy()
    np.testing.assert_allclose(np.stack([true_q.U, true_q.V], 1), xt.numpy() - a * x0.numpy(), atol=1e-12)
    np.testing.assert_allclose(np.stack([noise_q.U, noise_q.V], 1), s * eps_hat, atol=1e-12)
    np.testing.assert_allclose(noise_q.XY + np.stack([noise_q.U, noise_q.V], 1), xt.numpy(), atol=1e-12)
    tips = recon_q.XY + np.stack([recon_q.U, recon_q.V], 1)
    np.testing.assert_allclose(tips, x0_hat, atol=1e-12)
    np.testing.assert_allclose(tips, (xt.numpy() - s * eps_hat) / a, atol=1e-10)  # Tweedie
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel().startswith("$p_t(x)$")
    without = noise_compass(field, xt, t)
    assert len([a for a in panels(without)[0].get_children() if isinstance(a, Quiver)]) == 2
    assert ax.get_legend() is None and len(fig.legends[0].get_texts()) == 6
    with pytest.raises(ValueError, match="t must lie"):
        noise_compass(field, xt, 0.0)


def _contrast(c1, c2) -> float:
    """WCAG 2 contrast ratio of two colours."""
    from matplotlib.colors import to_rgb

    def lum(c):
        v = np.array(to_rgb(c))
        v = np.where(v <= 0.03928, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
        return float(v @ [0.2126, 0.7152, 0.0722])

    hi, lo = sorted((lum(c1), lum(c2)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_noise_compass_arrows_stand_out_from_the_density(target):
    """Thick arrows with heads and a white outline, in colours apart from each other and dark enough to
    read on white, over a density image that stays light."""
    process, t = VP(), 0.5
    field = AnalyticField(target, process)
    g = torch.Generator().manual_seed(0)
    x0 = target.sample(6, g)
    xt = process.marginal_sample(x0, t, torch.randn(6, 2, generator=g, dtype=torch.float64))
    fig = noise_compass(field, xt, t, x0)
    (ax,) = panels(fig)
    quivers = [a for a in ax.get_children() if isinstance(a, Quiver)]
    colours = [tuple(q.get_facecolor()[0][:3]) for q in quivers]
    assert len(set(colours)) == 3 and set(map(str, ARROWS.values())) <= set(OKABE_ITO + TOL_MUTED)
    for q, c in zip(quivers, colours, strict=True):
        assert q.width >= 0.01 and q.headwidth >= 3 and q.headlength >= 3.5  # was 0.005: a hairline
        assert tuple(q.get_edgecolor()[0][:3]) == (1.0, 1.0, 1.0) and q.get_linewidth()[0] > 0
        assert _contrast(c, "white") >= 3.0
    (image,) = [a for a in ax.get_children() if isinstance(a, AxesImage)]
    darkest = image.cmap(1.0)
    assert _contrast(darkest, "white") < 2.0  # the densest region is a light grey, not ink
    assert all(_contrast(c, darkest) > 1.3 for c in colours)


# --- schedules, training, benchmarks -----------------------------------------------------------------


def test_schedules_plot_every_process_from_its_coefficients():
    fig = schedules()
    power, noise, lam = panels(fig)
    for ax in (power, noise, lam):
        assert len(ax.get_lines()) == len(PROCESSES) and ax.get_ylabel() and ax.get_xlabel()
    assert noise.get_yscale() == "log"
    names = list(PROCESSES)
    for name in ("vp", "vp-cosine", "edm"):
        p = PROCESSES[name]()
        i = names.index(name)
        u = power.get_lines()[i].get_xdata()
        t = torch.from_numpy(p.t_min + u * (p.t_max - p.t_min))
        np.testing.assert_allclose(power.get_lines()[i].get_ydata(), (p.alpha(t) ** 2).numpy(), rtol=1e-12)
        np.testing.assert_allclose(lam.get_lines()[i].get_ydata(), torch.log(p.alpha(t) / p.sigma(t)).numpy(),
                                   rtol=1e-9, atol=1e-12)  # fmt: skip
    assert len(fig.legends[0].get_texts()) == len(PROCESSES)
    assert len(panels(schedules(["vp", "vp-cosine"]))[0].get_lines()) == 2


def test_every_schedule_line_can_be_told_apart_and_overlaps_are_named():
    """Lines that lie on each other (ddpm on vp, subvp's alpha on vp's, edm's on ve's, ddpm-cosine on
    vp-cosine) still show: each process has its own (colour, line style, marker), the later of each
    such pair is dashed and thinner over the earlier one, and its legend entry names the line it hides."""
    fig = schedules()
    power, noise, lam = panels(fig)
    names = list(PROCESSES)
    for ax in (power, noise, lam):
        styles = [(ln.get_color(), ln.get_linestyle(), ln.get_marker()) for ln in ax.get_lines()]
        assert len(set(styles)) == len(names)
    legend = dict(zip(names, [t.get_text() for t in fig.legends[0].get_texts()], strict=True))
    lines = dict(zip(names, power.get_lines(), strict=True))
    alpha2 = r"$\alpha^2$"
    pairs = (("ddpm", "vp", "every panel"), ("subvp", "vp", alpha2), ("edm", "ve", alpha2),
             ("ddpm-cosine", "vp-cosine", alpha2))  # fmt: skip
    for later, earlier, where in pairs:
        assert f" {earlier} in " in legend[later] and where in legend[later], legend[later]
        np.testing.assert_allclose(lines[later].get_ydata(), lines[earlier].get_ydata(), atol=0.02)  # they do overlap
        assert lines[later].get_linestyle() == "--" and lines[earlier].get_linestyle() == "-"
        assert lines[later].get_linewidth() < lines[earlier].get_linewidth()
        assert lines[later].get_markevery() != lines[earlier].get_markevery()  # markers interleave
    assert "=" in legend["subvp"] and "≈" in legend["ddpm"]  # equal by definition, or within 2%
    assert ";" not in legend["vp"] and ";" not in legend["ou"]
    with pytest.raises(ValueError, match="unknown process"):
        schedules(["nope"])


def test_training_curves_from_records_and_from_a_real_run(tmp_path):
    records = [{"step": s, "loss": 2.0 / s, "lr": 1e-3, "grad_norm": 1.0 + s, "samples_per_s": 100.0 * s}
               for s in (30, 10, 20, 40)]  # fmt: skip
    fig = training_curves(records)
    axes = [ax for ax in panels(fig) if ax.get_visible()]
    assert [ax.get_title().split(":")[0] for ax in axes] == ["loss", "lr", "grad_norm", "samples_per_s"]
    (line,) = axes[0].get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [10, 20, 30, 40])  # sorted by step
    np.testing.assert_allclose(line.get_ydata(), [0.2, 0.1, 2 / 30, 0.05])
    assert all(ax.get_xlabel() == "optimiser step" and ax.get_ylabel() for ax in axes)
    assert len(panels(training_curves(records, keys=["loss"]))) == 1
    with pytest.raises(ValueError, match="step"):
        training_curves([{"loss": 1.0}])

    from scoredyn.learning import TrainConfig, Trainer, apply_overrides

    small = ["data.name=mog6", "data.n=500", "model.hidden=16", "model.depth=1", "model.emb_dim=8",
             "optim.batch_size=32", "optim.steps=10", "optim.warmup=2", "run.ckpt_every=10", "run.log_every=5",
             "run.progress=false", f"run.out={tmp_path / 'run'}"]  # fmt: skip
    result = Trainer(apply_overrides(TrainConfig(), small)).fit()
    fig = training_curves(tmp_path / "run")  # the folder: its metrics.jsonl
    loss_line = panels(fig)[0].get_lines()[0]
    np.testing.assert_array_equal(loss_line.get_xdata(), [5, 10])
    np.testing.assert_allclose(loss_line.get_ydata(), [r["loss"] for r in result.history])


def test_digits_grid_tiles_every_image_with_its_label():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1.2, 1.2, size=(13, 64))
    fig = digits_grid(images, labels=list(range(13)), ncol=5)
    (ax,) = fig.axes
    (image,) = ax.get_images()
    mosaic = image.get_array()
    assert mosaic.shape == (3 * (8 + 1 + 3) - 1, 5 * 9 - 1)  # 3 rows of 5; 3 label rows + 1 gutter
    np.testing.assert_array_equal(mosaic[3:11, 9:17], np.clip(images[1].reshape(8, 8), -1, 1))
    np.testing.assert_array_equal(mosaic[15:23, 0:8], np.clip(images[5].reshape(8, 8), -1, 1))
    gutter = np.ma.getmaskarray(mosaic)  # NaN pixels come back masked
    assert gutter[:, 8].all() and gutter[11, :26].all()
    assert (mosaic[24:, 26:] == -1).all()  # the two empty slots of the last row are blank
    assert [t.get_text() for t in ax.texts] == [str(i) for i in range(13)]
    assert image.get_clim() == (-1.0, 1.0)
    plain = digits_grid(images[:4]).axes[0].get_images()[0].get_array()
    assert plain.shape == (8, 4 * 9 - 1)
    with pytest.raises(ValueError, match="images"):
        digits_grid(np.zeros((3, 10)))


def test_accuracy_vs_nfe_one_line_per_sampler_per_target():
    samplers = ("heun (ours)", "theirs")
    rows = [{"target": tg, "sampler": s, "nfe_budget": n, "nfe": n - (s == "heun (ours)"), "energy_x_floor": k / n}
            for tg in ("a", "b", "c") for k, s in enumerate(samplers, 1) for n in (5, 10, 20)]  # fmt: skip
    fig = accuracy_vs_nfe([{"name": "accuracy_rows", "settings": {"rows": rows}}])
    axes = [ax for ax in panels(fig) if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["a", "b", "c"]
    ours, theirs, floor = axes[1].get_lines()
    np.testing.assert_array_equal(ours.get_xdata(), [4, 9, 19])
    np.testing.assert_allclose(theirs.get_ydata(), [2 / 5, 2 / 10, 2 / 20])
    assert ours.get_linestyle() == "-" and theirs.get_linestyle() == "--"
    assert list(floor.get_ydata()) == [1.0, 1.0]
    assert not fig.legends  # direct labels at the line ends instead, on the right-hand panels
    for ax, labelled_ in zip(axes, (False, True, True), strict=True):
        assert sorted(t.get_text() for t in ax.texts) == (["heun (ours)", "theirs"] if labelled_ else [])
    notes = {t.get_text(): t for t in axes[1].texts}
    assert notes["theirs"].xy == (20.0, 2 / 20) and notes["heun (ours)"].xy == (19.0, 1 / 20)
    assert axes[0].get_xscale() == "log" and "MC floor" in axes[0].get_ylabel()

    real = REPO / "benchmarks" / "results" / "accuracy_vs_nfe.json"
    if real.exists():  # the shipped result: every row it holds is drawn
        stored = json.loads(real.read_text())[-1]["settings"]["rows"]
        fig = accuracy_vs_nfe(real)
        drawn = sum(len(line.get_xdata()) for ax in panels(fig) for line in ax.get_lines()[:-1])
        assert drawn == len(stored)


def test_accuracy_lines_use_a_colour_blind_safe_palette_with_distinct_markers():
    """Nine samplers on one target, two metrics (as the demo draws them): nine colours of Paul Tol's
    muted scheme, nine markers, one panel per metric, every line named at its end in both panels."""
    names = ["DDPM", "DDIM", "reverse SDE", "predictor–corrector", "PF-ODE Euler", "PF-ODE Heun, VP", "EDM Heun",
             "DPM-Solver++(2M)", "UniPC"]  # fmt: skip
    rows = [{"target": "mog6", "sampler": s, "nfe_budget": b, "nfe": b, "energy_x_floor": (k + 1) * 10 / b,
             "mode_tv_exact_x_floor": 1 + k / b} for k, s in enumerate(names) for b in (5, 10, 20, 50)]  # fmt: skip
    fig = accuracy_vs_nfe(rows, metric=("energy_x_floor", "mode_tv_exact_x_floor"), labels="all")
    axes = [ax for ax in panels(fig) if ax.get_visible()]
    titles = ["mog6: energy distance / MC floor", "mog6: mode TV to the weights / MC floor"]
    assert [ax.get_title() for ax in axes] == titles
    for ax in axes:
        lines = ax.get_lines()[:-1]  # the last: the floor
        assert [ln.get_label() for ln in lines] == names
        assert len({ln.get_color() for ln in lines}) == 9 and {ln.get_color() for ln in lines} <= set(TOL_MUTED)
        assert len({ln.get_marker() for ln in lines}) == 9
        assert all(ln.get_linestyle() == "-" for ln in lines)  # no name says "ours": none is dashed
        assert sorted(t.get_text() for t in ax.texts) == sorted(names)
    fig.draw_without_rendering()
    boxes = [Text.get_window_extent(t) for t in axes[0].texts]  # the text alone, not its leader
    assert not any(a.overlaps(b) for k, a in enumerate(boxes) for b in boxes[k + 1 :])  # labels moved apart


def test_direct_labels_keep_their_order_and_stay_apart():
    fig, axes = new_figure(1, 1, panel=(3.0, 3.0))
    ax = axes[0, 0]
    for k, y in enumerate((1.0, 1.01, 1.02, 5.0)):
        ax.plot([0, 1], [0, y], color=TOL_MUTED[k], label=f"line {k}")
    notes = label_line_ends(ax, [(ln.get_label(), 1.0, ln.get_ydata()[-1], ln.get_color()) for ln in ax.get_lines()])
    heights = [n.xyann[1] for n in notes]
    assert heights == sorted(heights) and min(np.diff(heights)) > 0.03  # the crowded three spread out
    assert abs(np.mean(heights[:3]) - np.mean([ax.transLimits.transform((1, y))[1] for y in (1.0, 1.01, 1.02)])) < 1e-9
    assert all(n.get_color() != ln.get_color() for n, ln in zip(notes, ax.get_lines(), strict=True))  # darkened


def test_likelihood_bars_stay_on_the_log_axis_and_ticks_do_not_collide():
    """A bar whose lower end reaches 0 cannot be drawn on a log axis: it is cut at the axis' bottom and
    marked there (a down triangle); the logarithmic x-axes carry plain, non-overlapping tick labels."""
    rows = [{"estimator": est, "dim": 2, "nfe": nfe, "wall_s_per_sample": nfe * 2e-5, "abs_error": err,
             "abs_error_std": sd} for est, nfe, err, sd in
            (("exact", 30, 1e-2, 5e-3), ("exact", 60, 1e-3, 4e-3), ("exact", 120, 1e-5, 2e-5),
             ("hutchinson", 40, 2e-2, 0.8), ("hutchinson", 80, 3e-3, 0.8))]  # fmt: skip
    fig = likelihood_plot(rows)
    for ax in panels(fig):
        bottom = ax.get_ylim()[0]
        assert ax.get_yscale() == "log" and bottom > 0
        bars = [c for cont in ax.containers for c in cont[2]]
        lows = np.concatenate([np.array(b.get_segments())[:, 0, 1] for b in bars])
        assert (lows > 0).all() and (lows >= bottom * (1 - 1e-9)).all()
        cut = [ln for ln in ax.get_lines() if ln.get_marker() == "v"]
        assert sum(len(ln.get_xdata()) for ln in cut) == 4  # the four bars with err - sd <= 0
        np.testing.assert_allclose(np.concatenate([ln.get_ydata() for ln in cut]), bottom)
    fig.draw_without_rendering()
    for ax in panels(fig):
        labels = [t for t in ax.get_xticklabels() + ax.xaxis.get_minorticklabels() if t.get_visible() and t.get_text()]
        x0, x1 = ax.get_xlim()
        labels = [t for t in labels if x0 <= t.get_position()[0] <= x1]
        boxes = [t.get_window_extent() for t in labels]
        assert len(boxes) >= 2 and not any(a.overlaps(b) for k, a in enumerate(boxes) for b in boxes[k + 1 :])
        assert all("\\times" not in t.get_text() for t in labels)  # plain numbers, no 3x10^-3


def test_likelihood_plot_reads_flat_and_nested_records():
    rows = []
    for est in ("exact", "hutchinson"):
        for dim in (2, 10):
            for nfe in (10, 40):
                err = 1.0 / nfe + (est == "hutchinson")
                rows.append({"name": f"{est}-{dim}-{nfe}", "dim": dim, "estimator": est, "nfe": nfe,
                             "wall_s_per_sample": nfe * 1e-3, "abs_error": err})  # fmt: skip
    nested = [{"name": r["name"], "value": None, "settings": r} for r in rows[:4]] + rows[4:]
    nested.append({"name": "broken", "estimator": "exact", "nfe": 5})  # no abs_error: skipped
    fig = likelihood_plot(nested)
    by_nfe, by_time = panels(fig)
    assert len(by_nfe.get_lines()) == 4 and len(by_time.get_lines()) == 4  # one series per estimator x dim
    first = by_nfe.get_lines()[0]
    np.testing.assert_array_equal(first.get_xdata(), [10, 40])
    np.testing.assert_allclose(first.get_ydata(), [0.1, 0.025])
    assert [t.get_text() for t in fig.legends[0].get_texts()][0] == "exact, D = 2"
    assert "wall time" in by_time.get_xlabel() and by_nfe.get_ylabel()
    untimed = [{k: v for k, v in r.items() if k != "wall_s_per_sample"} for r in rows]
    assert len(panels(likelihood_plot(untimed))) == 1
    with pytest.raises(ValueError, match="estimator, nfe, abs_error"):
        likelihood_plot([{"name": "x", "value": 1.0}])


# --- animation ----------------------------------------------------------------------------------------


def test_animate_writes_one_gif_frame_per_step_atomically(tmp_path, monkeypatch, target):
    rng = np.random.default_rng(0)
    frames = np.cumsum(rng.normal(size=(5, 20, 2)), axis=0)
    frames[3] = frames[2]  # a standing frame still counts (its caption differs)
    path = animate(frames, tmp_path / "film.gif", fps=5, density=target)
    with Image.open(path) as im:
        assert sum(1 for _ in ImageSequence.Iterator(im)) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["film.gif"]

    monkeypatch.setattr(animation.shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="ffmpeg"):
        animate(frames, tmp_path / "film.mp4")
    with pytest.raises(ValueError, match=r"\(T, N, 2\)"):
        animate(frames[0], tmp_path / "x.gif")
    assert [p.name for p in tmp_path.iterdir()] == ["film.gif"]


def test_sampler_frames_follow_the_ladder_and_end_where_sample_does(target):
    fr = sampler_frames(target, "annealed-langevin", steps=2, n=30, levels=4)
    assert fr.x.shape == (5, 30, 2) and math.isnan(fr.sigma_hat[0]) and math.isnan(fr.times[0])
    p = PROCESSES[fr.process]()
    t = torch.from_numpy(fr.times[1:])
    np.testing.assert_allclose((p.sigma(t) / p.alpha(t)).numpy(), fr.sigma_hat[1:], rtol=1e-12)
    ladder = np.geomspace(10.0, 0.05, 4)  # registry's ladder: geometric sigma 10 -> 0.05
    np.testing.assert_allclose(fr.sigma_hat[1:], ladder, rtol=1e-8)
    flow = sampler_frames(target, "ode-heun", steps=3, n=25, seed=4)
    assert flow.x.shape == (4, 25, 2)
    np.testing.assert_array_equal(flow.x[-1], sample(target, "ode-heun", steps=3, n=25, seed=4)[0].x.numpy())


def test_a_film_shades_the_density_of_each_frames_level(target, tmp_path, monkeypatch):
    """With ``noised``, each frame shows ``p_t`` at its own time under the particles: the image data
    drawn for frame k is the noised mixture's density (scaled to its peak), so it broadens with sigma."""
    fr = sampler_frames(target, "annealed-langevin", steps=2, n=20, levels=3)
    drawn = []
    real = animation.FuncAnimation

    def spy(fig, draw, **kwargs):  # record the image after each frame is drawn
        def wrapped(k):
            out = draw(k)
            (image,) = fig.axes[0].get_images()
            drawn.append(np.asarray(image.get_array(), dtype=np.float64).copy())
            return out

        return real(fig, wrapped, **kwargs)

    monkeypatch.setattr(animation, "FuncAnimation", spy)
    path = animate(fr, tmp_path / "film.gif", density=target, noised=True, lim=10.0, dpi=40)
    with Image.open(path) as im:
        assert sum(1 for _ in ImageSequence.Iterator(im)) == 4
    from scoredyn.app.viz.common import density_on, plane_grid

    X, Y, _ = plane_grid((-10.0, 10.0, -10.0, 10.0), 90)
    p = PROCESSES[fr.process]()
    for k, t in ((1, fr.times[1]), (3, fr.times[3]), (0, fr.times[1])):  # the start shows the first level
        want = density_on(target.noised(p, float(t)), X, Y)
        np.testing.assert_allclose(drawn[-4 + k], want / want.max(), atol=1e-12)
    assert (drawn[-4] > 0.5).mean() > 10 * (drawn[-1] > 0.5).mean()  # sigma 10: one broad bump; 0.05: the modes
    with pytest.raises(ValueError, match="noised"):
        animate(fr.x, tmp_path / "x.gif", density=target, noised=True)
