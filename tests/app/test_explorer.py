"""The interactive explorer: its data against exact answers, the page's payload decoded back to that
data, its size, and the server (127.0.0.1 only, no path traversal, clean Ctrl-C)."""

from __future__ import annotations

import base64
import gzip
import http.client
import math
import os
import re
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import torch

from scoredyn.app.explorer import build_explorer
from scoredyn.app.explorer.encode import QUANT, unpack
from scoredyn.app.explorer.frames import compute, display_scale
from scoredyn.app.explorer.page import page_html, read_payload
from scoredyn.app.explorer.serve import make_server
from scoredyn.app.sampling import sample
from scoredyn.core.processes import EDM
from scoredyn.core.targets import mog6, mog10

SAMPLERS = {"sde": (6,), "ode-heun": (4,), "annealed-langevin": (1,)}
N, FRAMES = 120, 12


@pytest.fixture(scope="module")
def built():
    target = mog6()
    data = compute(target, n=N, frames=FRAMES, samplers=SAMPLERS, seed=3, levels=6, grid=24, arrows=7)
    text, sizes = page_html(data)
    return target, data, text, sizes


def _half_step(data) -> np.ndarray:
    """Half a quantization step per axis: the largest error of rounding to int16 codes."""
    half_width = np.array([data.box[1] - data.box[0], data.box[3] - data.box[2]]) / 2
    return half_width / QUANT / 2


# --- the computed data, against exact answers ---------------------------------------------------------


def test_runs_end_where_the_sampler_ends(built):
    target, data, _, _ = built
    runs = {r.key: r for r in data.runs}
    assert [r.key for r in data.runs] == ["forward", "sde/6", "ode-heun/4", "annealed-langevin/1"]
    result, _ = sample(target, "sde", steps=6, n=N, seed=3)
    sde = runs["sde/6"]
    # the last frame is at sigma = 0, where c = 1: the display coordinates are the samples themselves
    assert sde.sigma_hat[-1] == 0 and sde.scale[-1] == 1
    np.testing.assert_array_equal(sde.y[-1], result.x.numpy().T)
    assert sde.y.shape == (7, 2, N) and sde.sigma_hat[0] == 80.0  # 6 steps on EDM's Karras grid from 80
    # first frame: the exact start p_T scaled by c = s / sqrt(s^2 + 80^2)
    assert sde.scale[0] == pytest.approx(data.s_data / math.sqrt(data.s_data**2 + 80.0**2), rel=1e-12)
    # the annealed run is subsampled to FRAMES frames over FRAMES - 1 levels from 10 to 0.05
    ladder = runs["annealed-langevin/1"]
    assert ladder.y.shape[0] == FRAMES and ladder.settings["levels"] == FRAMES - 1
    assert ladder.sigma_hat[0] == pytest.approx(10.0) and ladder.sigma_hat[-1] == pytest.approx(0.05)
    assert all(set(r.metrics) == {30, 60, 120} for r in data.runs[1:])
    assert runs["ode-heun/4"].metrics[120]["mode_tv"]["value"] <= 1.0


def test_forward_run_is_the_scaled_vp_process(built):
    target, data, _, _ = built
    fwd = data.runs[0]
    # alpha^2 s^2 + sigma^2 = s^2 at every frame: the variance-preserving process scaled to the data
    np.testing.assert_allclose(fwd.alpha**2 + (fwd.sigma / data.s_data) ** 2, 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fwd.sigma / fwd.alpha, fwd.sigma_hat, rtol=1e-12)
    np.testing.assert_allclose(fwd.y, fwd.alpha[:, None, None] * fwd.x0 + fwd.sigma[:, None, None] * fwd.eps,
                               rtol=0, atol=1e-12)  # fmt: skip
    assert fwd.sigma_hat[0] == 0 and np.array_equal(fwd.y[0], fwd.x0)


def test_density_and_arrows_are_the_exact_noised_law(built):
    target, data, _, _ = built
    edm = EDM(sigma_max=200.0)
    gx, gy = np.meshgrid(data.grid_x, data.grid_y)
    pts = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))
    tails = torch.from_numpy(np.stack([data.arrow_x, data.arrow_y], 1)).requires_grad_(True)
    for k, sh in enumerate(data.levels):
        # y = c x with x = x0 + sh eps ~ target.noised(EDM, sh): log p_y(y) = log p_x(y / c) - 2 log c
        c = float(display_scale(torch.tensor(1.0), torch.tensor(sh), data.s_data))
        law = target.noised(edm, torch.tensor(sh, dtype=torch.float64))
        logp = (law.log_prob(pts / c) - 2 * math.log(c)).reshape(gx.shape).numpy()
        expected = np.maximum(logp - logp.max(), -12.0)
        np.testing.assert_allclose(data.log_density[k], expected, rtol=0, atol=1e-9)
        # arrows point along grad_y log p_y (autograd of the exact density), cosine 1 to 1e-9
        (grad,) = torch.autograd.grad(law.log_prob(tails / c).sum(), tails)
        arrow = torch.from_numpy(data.arrows[k].T)
        cosine = (arrow * grad).sum(1) / (arrow.norm(dim=1) * grad.norm(dim=1))
        assert float(cosine.min()) > 1 - 1e-9
        # drawn length below 0.9 of the arrow spacing: arrows never overlap
        spacing = data.arrow_x[1] - data.arrow_x[0]
        assert float(arrow.norm(dim=1).max()) <= 0.9 * spacing + 1e-12


# --- the page's payload decodes to the computed data ----------------------------------------------------


def test_payload_decodes_to_the_frames_within_quantization(built):
    _, data, text, _ = built
    meta, blob = read_payload(text)
    arrays = unpack(blob, meta["index"])
    half = _half_step(data)
    for run in data.runs[1:]:
        err = np.abs(arrays[f"run:{run.key}"] - run.y).max(axis=(0, 2))
        assert (err <= half * (1 + 1e-6)).all(), (run.key, err, half)
    # forward: the page forms alpha x0 + (sigma / s) (s eps) from two stored frames
    fwd, stored = data.runs[0], arrays["run:forward"]
    m = meta["runs"][0]
    y = np.array(m["alpha"])[:, None, None] * stored[0] + np.array(m["sigma_over_s"])[:, None, None] * stored[1]
    bound = (fwd.alpha + fwd.sigma / data.s_data)[:, None] * half[None, :]  # each stored value off by <= half
    assert (np.abs(y - fwd.y).max(axis=2) <= bound * (1 + 1e-6)).all()
    assert np.abs(arrays["density"] - data.log_density).max() <= 0.005 + 1e-9  # 0.01-nat codes
    reach = np.abs(data.arrows).max()
    assert np.abs(arrays["arrows"] - data.arrows).max() <= reach / 1000 / 2 * (1 + 1e-6)
    # the per-frame facts the page reads
    for run, rm in zip(data.runs, meta["runs"], strict=True):
        assert rm["frames"] == run.y.shape[0] and rm["n"] == N
        np.testing.assert_allclose(rm["scale"], run.scale, rtol=1e-12)
        for count, m in rm["metrics"].items():
            assert m["mode_tv"]["value"] == run.metrics[int(count)]["mode_tv"]["value"]


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
    assert 0 < info["bytes"] - info["bytes_plotly"] - info["bytes_data"] < 40_000
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
    # independent route: the net's own process (VP), at the time u with the same sigma_hat:
    # x_u = alpha_u (x0 + sigma_hat eps) = (alpha_u / c) y, so grad_y log p(y) = (alpha_u / c) s_u((alpha_u / c) y)
    process = model.field.process
    tails = torch.from_numpy(np.stack([data.arrow_x, data.arrow_y], 1))
    for k, sh in enumerate(data.levels):
        u = process.sigma_hat_to_t(torch.tensor([sh]))[0]
        c = display_scale(torch.tensor(1.0, dtype=torch.float64), torch.tensor(sh), data.s_data)
        a = float(process.alpha(u) / c)
        with torch.no_grad():
            grad = a * model.field.score((a * tails).float(), u).double()
        arrow = torch.from_numpy(data.arrows[k].T)
        cosine = (arrow * grad).sum(1) / (arrow.norm(dim=1) * grad.norm(dim=1))
        assert float(cosine.min()) > 1 - 1e-4  # float32 net, read through two routes
    assert set(data.runs[1].metrics) == {7, 15, 30}


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
    import threading

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
    assert "Traceback" not in err and "stopped" in err
    assert Path(site).exists()


def test_cli_explore_writes_the_page_and_refuses_bad_input(tmp_path):
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "scoredyn", "explore", *map(str, args)],
                              capture_output=True, text=True)  # fmt: skip

    proc = cli("--target", "mog6", "--n", 50, "--frames", 4, "--out", tmp_path / "e.html")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "e.html").stat().st_size > 1_000_000 and "wrote" in proc.stderr  # plotly.js is inlined
    for args, msg in (
        (["--target", "mog10", "--out", tmp_path / "x.html"], "2-D"),
        (["--target", "mog6", "--out", tmp_path / "x.png"], "--out must end in .html"),
        (["--out", tmp_path / "x.html"], "exactly one of"),
    ):
        proc = cli(*args)
        assert proc.returncode == 2 and msg in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "x.html").exists()
