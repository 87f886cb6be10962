"""The interactive explorer: its data against exact answers, the page's payload decoded back to that
data, its size, and the server (127.0.0.1 only, no path traversal, quiet, clean Ctrl-C)."""

from __future__ import annotations

import base64
import gzip
import http.client
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import torch

from scoredyn.app.explorer import build_explorer
from scoredyn.app.explorer.encode import COARSE, QUANT, Packer, unpack
from scoredyn.app.explorer.frames import (
    DEFAULT_SAMPLERS,
    OVERRIDES,
    SAMPLER_LABELS,
    TUNED,
    compute,
    display_mixture,
    display_scale,
    frame_energy,
    score_arrows,
)
from scoredyn.app.explorer.page import page_html, read_payload
from scoredyn.app.explorer.serve import make_server
from scoredyn.app.registry import SAMPLERS
from scoredyn.app.sampling import sample
from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import EDM
from scoredyn.core.targets import mog6, mog10
from scoredyn.metrics import energy_distance, mean_pair_distance

SAMPLERS_SHOWN = {"sde": (6,), "ode-heun": (4,), "annealed-langevin": (1,)}
N, FRAMES = 120, 12


@pytest.fixture(scope="module")
def built():
    target = mog6()
    data = compute(target, n=N, frames=FRAMES, samplers=SAMPLERS_SHOWN, seed=3, levels=6, grid=24, arrows=7)
    text, sizes = page_html(data)
    return target, data, text, sizes


def _half_step(data) -> np.ndarray:
    """Half a quantization step per axis: the largest error of rounding to full-resolution codes."""
    half_width = np.array([data.box[1] - data.box[0], data.box[3] - data.box[2]]) / 2
    return half_width / QUANT / 2


# --- the samplers offered ------------------------------------------------------------------------------


def test_every_registry_sampler_is_offered_with_a_label():
    offered = {name.removesuffix(TUNED) for name in DEFAULT_SAMPLERS}
    assert set(SAMPLERS) <= offered, f"not in the explorer: {set(SAMPLERS) - offered}"
    assert all(name in SAMPLER_LABELS for name in DEFAULT_SAMPLERS)
    assert all(steps and all(s >= 1 for s in steps) for steps in DEFAULT_SAMPLERS.values())


def test_the_corrected_svgd_stays_inside_the_data_box_where_the_texts_svgd_does_not():
    # 2000 particles at the explorer's default steps on 11 levels (its default 99 measured the same: 0 and
    # 232 outside, in 36 s): every particle of svgd-median's last frame lies in
    # the plot box; the texts' SVGD (kept as the study's row) leaves hundreds outside, because an isolated
    # particle's step is its own score over N (Liu & Wang 2016, Alg. 1), which the label says
    data = compute(mog6(), n=2000, frames=12, samplers={"svgd-median": (4,), "svgd": (1,)}, seed=3, levels=6,
                   grid=8, arrows=3)  # fmt: skip
    x0, x1, y0, y1 = data.box

    def outside(run):
        y = run.y[-1]
        return int(((y[0] < x0) | (y[0] > x1) | (y[1] < y0) | (y[1] > y1)).sum())

    runs = {run.key: run for run in data.runs}
    assert outside(runs["svgd-median/4"]) == 0
    assert outside(runs["svgd/1"]) > 200
    assert "far from the data" in SAMPLER_LABELS["svgd"]


def test_pf_ode_heun_runs_on_vp_so_it_is_not_edm_heun_again():
    target = mog6()
    # the reason: on the recipe's EDM process and Karras grid, PF-ODE Heun and EDM Heun are one run
    ode, _ = sample(target, "ode-heun", steps=5, n=50, seed=0)
    edm, _ = sample(target, "edm-heun", steps=5, n=50, seed=0)
    torch.testing.assert_close(ode.x, edm.x, rtol=0, atol=1e-9)
    # the explorer moves the PF-ODE samplers to Song et al.'s VP process: two different runs, each shown
    assert OVERRIDES["ode-heun"] == {"process": "vp", "grid": "uniform"}
    data = compute(target, n=50, frames=8, samplers={"ode-heun": (5,), "edm-heun": (5,)}, counts=(50,), levels=2,
                   grid=8, arrows=2)  # fmt: skip
    heun, edm_run = data.runs[1], data.runs[2]
    assert (heun.settings["process"], heun.settings["grid"]) == ("vp", "uniform")
    assert (edm_run.settings["process"], edm_run.settings["grid"]) == ("edm", "karras")
    assert np.abs(heun.y[-1] - edm_run.y[-1]).max() > 1e-3
    meta, _ = read_payload(page_html(data)[0])
    assert [r["settings"]["process"] for r in meta["runs"][1:]] == ["vp", "edm"]


# --- the computed data, against exact answers ---------------------------------------------------------


def test_runs_end_where_the_sampler_ends(built):
    target, data, _, _ = built
    runs = {r.key: r for r in data.runs}
    assert [r.key for r in data.runs] == ["forward", "sde/6", "ode-heun/4", "annealed-langevin/1"]
    result, _ = sample(target, "sde", steps=6, n=N, seed=3)
    sde = runs["sde/6"]
    # the last frame is at sigma = 0, where c = 1: the display coordinates are the samples themselves
    assert sde.sigma_hat[-1] == 0 and sde.scale[-1] == 1 and sde.t[-1] == 0
    np.testing.assert_array_equal(sde.y[-1], result.x.numpy().T)
    # 7 path entries on EDM's Karras grid from 80; a stochastic run keeps FRAMES // 2 of them
    assert sde.y.shape == (FRAMES // 2, 2, N) and sde.sigma_hat[0] == 80.0 and sde.t[0] == 80.0
    # first frame: the exact start p_T scaled by c = s / sqrt(s^2 + 80^2)
    assert sde.scale[0] == pytest.approx(data.s_data / math.sqrt(data.s_data**2 + 80.0**2), rel=1e-12)
    # the deterministic PF-ODE keeps every entry: 4 steps on VP from t = 1
    heun = runs["ode-heun/4"]
    assert heun.y.shape[0] == 5 and heun.t[0] == 1.0 and heun.sigma_hat[-1] == 0
    # the annealed run on FRAMES - 1 levels from 10 to 0.05, subsampled as a stochastic run
    ladder = runs["annealed-langevin/1"]
    assert ladder.y.shape[0] == FRAMES // 2 and ladder.settings["levels"] == FRAMES - 1
    assert ladder.sigma_hat[0] == pytest.approx(10.0) and ladder.sigma_hat[-1] == pytest.approx(0.05)
    assert all(set(r.metrics) == {30, 60, 120} for r in data.runs[1:])
    assert runs["ode-heun/4"].metrics[120]["mode_tv"]["value"] <= 1.0
    # the table's exact samples are not the ones an exact start drew with the run's seed 3
    assert all(r.metrics[120]["seed"] == 4 for r in data.runs[1:])


def test_forward_run_is_the_scaled_vp_process(built):
    target, data, _, _ = built
    fwd = data.runs[0]
    # alpha^2 s^2 + sigma^2 = s^2 at every frame: the variance-preserving process scaled to the data
    np.testing.assert_allclose(fwd.alpha**2 + (fwd.sigma / data.s_data) ** 2, 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fwd.sigma / fwd.alpha, fwd.sigma_hat, rtol=1e-12)
    np.testing.assert_allclose(fwd.y, fwd.alpha[:, None, None] * fwd.x0 + fwd.sigma[:, None, None] * fwd.eps,
                               rtol=0, atol=1e-12)  # fmt: skip
    assert fwd.sigma_hat[0] == 0 and np.array_equal(fwd.y[0], fwd.x0)


def test_display_mixture_is_the_exact_noised_law_and_arrows_its_score(built):
    target, data, _, _ = built
    edm = EDM(sigma_max=200.0)
    pts = torch.from_numpy(np.stack(np.meshgrid(data.grid_x, data.grid_y), -1).reshape(-1, 2))
    tails = torch.from_numpy(np.stack([data.arrow_x, data.arrow_y], 1)).requires_grad_(True)
    assert data.arrows is None and data.arrow_levels is None  # an exact score is drawn by the page
    cell = data.arrow_x[1] - data.arrow_x[0]
    for sh in (0.05, 0.7, 3.1, 10.0, 80.0):
        # y = c x with x = x0 + sh eps ~ target.noised(EDM, sh): log p_y(y) = log p_x(y / c) - 2 log c
        c = float(
            display_scale(torch.tensor(1.0, dtype=torch.float64), torch.tensor(sh, dtype=torch.float64), data.s_data)
        )
        law = target.noised(edm, torch.tensor(sh, dtype=torch.float64))
        expected = law.log_prob(pts / c) - 2 * math.log(c)
        torch.testing.assert_close(display_mixture(target, sh, data.s_data).log_prob(pts), expected, rtol=0, atol=1e-9)
        # arrows point along grad_y log p_y (autograd of the exact density), cosine 1 to 1e-9, never overlapping
        (grad,) = torch.autograd.grad(law.log_prob(tails / c).sum(), tails)
        arrow = torch.from_numpy(score_arrows(AnalyticField(target, edm), torch.tensor([sh], dtype=torch.float64),
                                              data.s_data, data.arrow_x, data.arrow_y, cell)[0].T)  # fmt: skip
        cosine = (arrow * grad).sum(1) / (arrow.norm(dim=1) * grad.norm(dim=1))
        assert float(cosine.min()) > 1 - 1e-9
        assert float(arrow.norm(dim=1).max()) <= 0.9 * cell + 1e-12
    # the limits: sigma_hat = 0 is the data itself, sigma_hat = inf is N(0, s^2 I)
    torch.testing.assert_close(display_mixture(target, 0.0, data.s_data).log_prob(pts), target.log_prob(pts))
    blob = display_mixture(target, math.inf, data.s_data)
    assert torch.all(blob.means == 0)
    torch.testing.assert_close(blob.covs, data.s_data**2 * torch.eye(2, dtype=torch.float64).expand(6, 2, 2))


def test_frame_energy_is_at_its_floor_for_exact_frames_and_above_it_otherwise(built):
    target, data, _, _ = built
    fwd = data.runs[0]  # the forward frames are exact samples of the noised law
    m = data.metric_particles
    assert m == N and fwd.energy.shape == fwd.energy_floor.shape == (fwd.y.shape[0],)
    ratio = fwd.energy / fwd.energy_floor
    assert 0.3 < float(np.median(ratio)) < 2.0 and float(ratio.max()) < 5.0
    # the same number by hand: energy distance to m exact samples of that frame's law, drawn with seed + 1
    f = 6
    law = display_mixture(target, float(fwd.sigma_hat[f]), data.s_data)
    exact = law.sample(m, torch.Generator().manual_seed(3 + 1))
    assert fwd.energy[f] == pytest.approx(energy_distance(torch.from_numpy(fwd.y[f].T.copy()), exact), rel=1e-12)
    # the floor is (1/m + 1/m) E|Y - Y'|, within the Monte-Carlo error of its pairs
    assert fwd.energy_floor[f] == pytest.approx(2 / m * mean_pair_distance(law), rel=0.05)
    # particles off the law: the data spread 3 times too wide is far above the floor
    values, floors = frame_energy(3 * fwd.y[:1], np.array([0.0]), target, data.s_data, seed=3)
    assert values[0] > 10 * floors[0]
    # every sampler run's curve ends on its last frame, the samples the metric table judges
    for run in data.runs[1:]:
        assert run.energy.shape == (run.y.shape[0],) and np.isfinite(run.energy).all()


# --- the page's payload decodes to the computed data ----------------------------------------------------


def test_packer_rounds_each_frame_against_the_decoded_one():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(0, 0.03, size=(40, 2, 300)), axis=0)  # a noisy path: errors could add up
    walk[5, 0, 0] = 3000.0  # a jump far beyond one byte: the escape stream
    packer = Packer()
    mult = [COARSE] * 39 + [1]
    packer.add("walk", walk, 0.0, 1e-3, mult=mult)
    decoded = unpack(packer.base64(), packer.index)["walk"]
    err = np.abs(decoded - walk).max(axis=(1, 2))
    # each frame within COARSE / 2 codes of its code, itself within half a code: no drift over 40 frames
    assert (err[:-1] <= (COARSE + 1) / 2 * 1e-3 + 1e-9).all() and err[-1] <= 0.5e-3 + 1e-9
    assert packer.index["walk"]["escapes"] > 0
    with pytest.raises(ValueError, match="mult"):
        packer.add("bad", walk, 0.0, 1e-3, mult=[0] * 40)


def test_payload_decodes_to_the_frames_within_quantization(built):
    target, data, text, _ = built
    meta, blob = read_payload(text)
    arrays = unpack(blob, meta["index"])
    half = _half_step(data)
    assert "arrows" not in arrays and "density" not in arrays  # both are computed by the page
    for run in data.runs[1:]:
        err = np.abs(arrays[f"run:{run.key}"] - run.y).max(axis=2)  # (F, 2)
        assert (err[:-1] <= (COARSE + 1) * half * (1 + 1e-6)).all(), (run.key, err)  # frames on the coarse grid
        assert (err[-1] <= half * (1 + 1e-6)).all(), (run.key, err[-1])  # the samples at full resolution
    # forward: the page forms alpha x0 + (sigma / s) (s eps) from two stored frames
    fwd, stored = data.runs[0], arrays["run:forward"]
    m = meta["runs"][0]
    y = np.array(m["alpha"])[:, None, None] * stored[0] + np.array(m["sigma_over_s"])[:, None, None] * stored[1]
    bound = (fwd.alpha + fwd.sigma / data.s_data)[:, None] * half[None, :]  # each stored value off by <= half
    assert (np.abs(y - fwd.y).max(axis=2) <= bound * (1 + 1e-6)).all()
    # the mixture the page evaluates the density from, and the per-frame facts it reads
    assert np.array_equal(meta["mixture"]["means"], target.means.numpy())
    assert np.array_equal(meta["mixture"]["covs"], target.covs.numpy())
    for run, rm in zip(data.runs, meta["runs"], strict=True):
        assert rm["frames"] == run.y.shape[0] and rm["n"] == N
        np.testing.assert_allclose(rm["scale"], run.scale, rtol=1e-6)
        np.testing.assert_allclose(rm["energy"], run.energy, rtol=1e-3)
        np.testing.assert_allclose([math.inf if v == "inf" else v for v in rm["sigma_hat"]], run.sigma_hat, rtol=1e-5)
        for count, m in rm["metrics"].items():
            assert m["mode_tv"]["value"] == run.metrics[int(count)]["mode_tv"]["value"]
    sde = meta["runs"][1]
    assert sde["settings"]["process"] == "edm" and sde["paper"] and sde["nfe"] == 6
    assert meta["runs"][2]["settings"]["process"] == "vp" and meta["runs"][3]["knobs"]["eta_factor"] == 0.5


def test_page_is_self_contained_and_its_size_is_reported(tmp_path):
    from plotly.offline import get_plotlyjs

    out = tmp_path / "explore.html"
    info = build_explorer(mog6(), out, n=40, frames=6, samplers={"ode-heun": (3,)}, seed=0, levels=4)
    assert info["bytes"] == out.stat().st_size
    text = out.read_text()
    # plotly.js is embedded whole (gzip + base64); the rest (template, meta, script) is small
    plotly_b64 = text.split('id="plotly-gz">', 1)[1].split("</script>", 1)[0]
    assert gzip.decompress(base64.b64decode(plotly_b64)).decode() == get_plotlyjs()
    assert info["bytes_plotly"] == len(plotly_b64) < 2_000_000
    assert 0 < info["bytes"] - info["bytes_plotly"] - info["bytes_data"] < 60_000
    # nothing is fetched: no external script, stylesheet or URL in the readable part of the page
    readable = text.replace(plotly_b64, "")
    assert "http" not in readable
    assert all(ref.startswith("data:") for ref in re.findall(r'(?:src|href)="([^"]*)"', readable))
    assert [r["key"] for r in info["runs"]] == ["forward", "ode-heun/3"]


def test_bad_input_is_refused_before_writing(tmp_path):
    out = tmp_path / "x.html"
    with pytest.raises(ValueError, match="2-D"):
        build_explorer(mog10(), out, n=10, frames=3)
    with pytest.raises(ValueError, match="unknown sampler"):
        build_explorer(mog6(), out, n=10, frames=3, samplers={"nope": (3,)})
    with pytest.raises(ValueError, match="at least one sampler"):
        build_explorer(mog6(), out, n=10, frames=3, samplers={})
    with pytest.raises(ValueError, match="counts"):
        build_explorer(mog6(), out, n=10, frames=3, counts=(5, 20))
    assert not out.exists()


def test_checkpoint_arrows_are_the_learned_score(tmp_path):
    from scoredyn.learning import TrainConfig, Trainer, apply_overrides, load_trained

    cfg = apply_overrides(TrainConfig(), ["data.name=mog6", "data.n=500", "model.hidden=16", "model.depth=2",
                                          "model.emb_dim=8", "optim.batch_size=64", "optim.steps=5",
                                          "optim.warmup=1", "run.progress=false", f"run.out={tmp_path / 'run'}",
                                          "run.ckpt_every=5"])  # fmt: skip
    Trainer(cfg).fit()
    model = load_trained(tmp_path / "run")
    data = compute(model, n=30, frames=4, samplers={"ode-heun": (2,)}, levels=3, grid=8, arrows=3)
    assert data.title.startswith("checkpoint") and "mog6" in data.source
    assert data.arrows.shape == (3, 2, 9) and len(data.arrow_levels) == 3
    # independent route: the net's own process (VP), at the time u with the same sigma_hat:
    # x_u = alpha_u (x0 + sigma_hat eps) = (alpha_u / c) y, so grad_y log p(y) = (alpha_u / c) s_u((alpha_u / c) y)
    process = model.field.process
    tails = torch.from_numpy(np.stack([data.arrow_x, data.arrow_y], 1))
    for k, sh in enumerate(data.arrow_levels):
        u = process.sigma_hat_to_t(torch.tensor([sh]))[0]
        c = display_scale(torch.tensor(1.0, dtype=torch.float64), torch.tensor(sh), data.s_data)
        a = float(process.alpha(u) / c)
        with torch.no_grad():
            grad = a * model.field.score((a * tails).float(), u).double()
        arrow = torch.from_numpy(data.arrows[k].T)
        cosine = (arrow * grad).sum(1) / (arrow.norm(dim=1) * grad.norm(dim=1))
        assert float(cosine.min()) > 1 - 1e-4  # float32 net, read through two routes
    assert set(data.runs[1].metrics) == {7, 15, 30}
    # the page carries the learned arrows at their levels
    meta, blob = read_payload(page_html(data)[0])
    assert meta["arrow_levels"] == pytest.approx(list(data.arrow_levels))
    reach = np.abs(data.arrows).max()
    assert np.abs(unpack(blob, meta["index"])["arrows"] - data.arrows).max() <= reach / 1000 / 2 * (1 + 1e-6)


# --- the server -----------------------------------------------------------------------------------------


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", path, skip_host=False, skip_accept_encoding=True)  # the path goes out unnormalized
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


@pytest.fixture
def site(tmp_path):
    folder = tmp_path / "site"
    (folder / "sub").mkdir(parents=True)
    page = folder / "explore.html"
    page.write_text("<!DOCTYPE html><title>page</title>")
    (folder / "sub" / "data.txt").write_text("inside")
    (tmp_path / "secret.txt").write_text("root:secret")
    (folder / "link.txt").symlink_to(tmp_path / "secret.txt")
    return page


def test_server_binds_loopback_and_refuses_paths_outside(site):
    server, url = make_server(site)
    assert server.server_address[0] == "127.0.0.1" and url.startswith("http://127.0.0.1:")
    port = server.server_address[1]
    assert port > 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert _get(port, "/") == (200, site.read_bytes())
        assert _get(port, "/explore.html") == (200, site.read_bytes())
        assert _get(port, "/sub/data.txt") == (200, b"inside")
        for path in ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/%2E%2E%2Fsecret.txt",
                     "/sub/../../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt", "/..%5csecret.txt",
                     "/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd",
                     "/link.txt", "/%00", "/%ff"]:  # fmt: skip
            status, body = _get(port, path)
            assert status in (403, 404), (path, status)
            assert b"secret" not in body and b"root:" not in body, path
        assert _get(port, "/sub/")[0] == 404  # no folder listings
    finally:
        server.shutdown()
        server.server_close()


def _abort_mid_response(port: int, path: str) -> None:
    """GET ``path``, read a little of the answer, then reset the connection (a closed browser tab)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert sock.recv(4096).startswith(b"HTTP/1.0 200")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
    sock.close()


def test_a_client_leaving_mid_response_prints_nothing(tmp_path, capsys):
    page = tmp_path / "big.html"
    page.write_bytes(b"x" * 64_000_000)  # far more than the socket buffers: the server is still writing
    server, _ = make_server(page)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    before = threading.active_count() + 1
    thread.start()
    try:
        for _ in range(3):
            _abort_mid_response(port, "/")
        # every request's thread has met the reset and ended (it raised BrokenPipe or ConnectionReset)
        for _ in range(1000):
            if threading.active_count() <= before:
                break
            threading.Event().wait(0.01)
        assert threading.active_count() <= before
        assert _get(port, "/missing")[0] == 404  # the server still answers
    finally:
        server.shutdown()
        server.server_close()
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_other_errors_are_still_reported(tmp_path, capsys):
    page = tmp_path / "p.html"
    page.write_text("<!DOCTYPE html>")
    server, _ = make_server(page)
    try:
        try:
            raise RuntimeError("a real bug")
        except RuntimeError:
            server.handle_error(None, ("127.0.0.1", 1))
        try:
            raise BrokenPipeError
        except BrokenPipeError:
            server.handle_error(None, ("127.0.0.1", 2))
    finally:
        server.server_close()
    err = capsys.readouterr().err
    assert "a real bug" in err and "BrokenPipeError" not in err


def test_serve_prints_url_and_exits_cleanly_on_sigint(site):
    code = "import sys; from scoredyn.app.explorer import serve; serve(sys.argv[1])"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(site)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        line = proc.stdout.readline()
        url = urllib.parse.urlparse(line.split(" at ", 1)[1].split()[0])
        assert url.hostname == "127.0.0.1" and url.port > 0
        assert _get(url.port, url.path)[0] == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert err == "stopped\n"  # no request log, no traceback
    assert Path(site).exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_explore_writes_the_page(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scoredyn", "explore", "--target", "mog6", "--n", "50", "--frames",
                           "4", "--sampler", "ode-euler:2,3", "--sampler", "unipc", "--out", str(tmp_path / "e.html")],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "e.html").stat().st_size > 1_000_000 and "wrote" in proc.stderr  # plotly.js is inlined
    meta, _ = read_payload((tmp_path / "e.html").read_text())
    assert [r["key"] for r in meta["runs"]] == ["forward", "ode-euler/2", "ode-euler/3", "unipc/5", "unipc/10"]


def test_cli_explore_refuses_bad_input_in_one_line(tmp_path, monkeypatch, capsys):
    from scoredyn.app.cli import main

    x = tmp_path / "x.html"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        for args, msg in (
            (["--target", "mog10", "--out", x], "2-D"),
            (["--target", "mog6", "--out", tmp_path / "x.png"], "--out must end in .html"),
            (["--out", x], "exactly one of"),
            (["--target", "mog6", "--sampler", "nope", "--out", x], "unknown sampler"),
            (["--target", "mog6", "--sampler", "ddim:ten", "--out", x], "steps must be integers"),
            (["--target", "mog6", "--serve", "--port", 70000, "--out", x], "0..65535"),
            (["--target", "mog6", "--serve", "--port", -1, "--out", x], "0..65535"),
            (["--target", "mog6", "--serve", "--port", taken, "--out", x], f"cannot serve on 127.0.0.1:{taken}"),
            (["--target", "mog6", "--port", 8000, "--out", x], "give --serve too"),
        ):
            monkeypatch.setattr(sys, "argv", ["scoredyn", "explore", *map(str, args)])
            with pytest.raises(SystemExit) as exit_:
                main()  # in-process: the console script's entry point, without a torch import each
            err = capsys.readouterr().err
            assert exit_.value.code == 2 and msg in err and "Traceback" not in err, (args, err)
            assert len(err.strip().splitlines()) == 1, err
            assert not x.exists()


def test_cli_serves_on_the_port_asked_for(tmp_path):
    port = _free_port()
    out = tmp_path / "e.html"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "scoredyn", "explore", "--target", "mog6", "--n", "20", "--frames",
                             "3", "--sampler", "ddim:2", "--out", str(out), "--serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert f"at http://127.0.0.1:{port}/e.html" in line, line
        status, body = _get(port, "/e.html")
        assert status == 200 and body == out.read_bytes()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err and err.rstrip().endswith("stopped")
