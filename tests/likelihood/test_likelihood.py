"""PF-ODE likelihoods against the exact log-density of Gaussian mixtures, Hutchinson's
unbiasedness, the flow's invertibility, gradients through the solver, and bits/dim."""

from __future__ import annotations

import math

import pytest
import torch

from scoredyn.core.fields import AnalyticField, Field
from scoredyn.core.processes import EDM, VP
from scoredyn.core.targets import GaussianMixture, mog6, random_mixture
from scoredyn.core.tensors import as_time
from scoredyn.likelihood import bits_per_dim, decode, dequantize, encode, interpolate, log_likelihood, slerp
from scoredyn.samplers import start_distribution


def _setup(target, process, n, seed=0):
    x = target.sample(n, torch.Generator().manual_seed(seed))
    prior = start_distribution("exact", process, process.t_max, target=target)
    return AnalyticField(target, process), x, prior


# (a) exact field + exact prior p_{t_max}: the ODE's log p_0 is target.log_prob up to solver error.
# The exact field is finite at t_min (sigma = 0, full-rank covariances), so t0 = t_min.
# Measured at rtol = atol = 1e-5 on 200 points: mean |err| 1.4e-4 / 6.7e-5 / 3.9e-4 nats
# (mog6-VP / mog6-EDM / 10-D VP), max 9.2e-3 / 6.5e-3 / 1.2e-2 (one step size for the batch, so the
# hardest point carries the error). Bound 1e-3 on the mean (2x margin), 0.1 on the max.
@pytest.mark.parametrize(
    "target, process",
    [(mog6(), VP()), (mog6(), EDM()), (random_mixture(10, 4, seed=3), VP())],
    ids=["mog6-vp", "mog6-edm", "random10d-vp"],
)
def test_exact_divergence_matches_log_prob(target, process):
    field, x, prior = _setup(target, process, 200)
    r = log_likelihood(field, x, prior=prior, rtol=1e-5, atol=1e-5)
    err = (r.logp - target.log_prob(x)).abs()
    print(f"{target.name} {process.name}: nfe {r.nfe}, mean |err| {err.mean():.2e}, max {err.max():.2e}")
    assert err.mean() < 1e-3 and err.max() < 0.1
    assert r.logp_per_probe is None and r.z.shape == x.shape
    assert torch.allclose(r.logp, r.prior_logp + r.delta_logp)
    assert torch.allclose(r.prior_logp, prior.log_prob(r.z))


def test_error_falls_with_tolerance():
    # measured: rtol 1e-3 / 1e-5 / 1e-7 -> nfe 74 / 110 / 248, mean |err| 6e-3 / 1.4e-4 / 2.7e-7:
    # each tightening by 100x must cut the error at least 5x and cost more evaluations
    field, x, prior = _setup(mog6(), VP(), 200)
    exact = mog6().log_prob(x)
    errs, nfes = [], []
    for tol in (1e-3, 1e-5, 1e-7):
        r = log_likelihood(field, x, prior=prior, rtol=tol, atol=tol)
        errs.append(float((r.logp - exact).abs().mean()))
        nfes.append(r.nfe)
    print("rtol 1e-3, 1e-5, 1e-7: nfe", nfes, "mean |err|", [f"{e:.1e}" for e in errs])
    assert nfes[0] < nfes[1] < nfes[2]
    assert errs[1] < errs[0] / 5 and errs[2] < errs[1] / 5


# (b) Hutchinson with probes fixed over the solve estimates eps^T (int J dt) eps: unbiased for the
# exact integral. Per point, z = (mean over K=64 probes - exact) / (probe std / 8) is ~ t_63 and the
# 32 points are independent: mean(z) ~ N(0, 1/32) (sd 0.18) -> bound 0.75 (> 4 sd); the sample sd of
# 32 z's has sd ~0.13 around 1 -> bounds [0.6, 1.5] (> 3 sd). Measured (4 seeds each): mean z in
# [-0.36, 0.32], sd in [0.89, 1.09] (seed 7: -0.36 / 0.94 Rademacher,
# -0.30 / 1.01 Gaussian). The probe standard errors (~0.4 nats) dwarf the solver error
# (< 1e-3), so the reference is the exact divergence at rtol 1e-7. A wrong probe scale or sign fails.
@pytest.fixture(scope="module")
def hutchinson_case():
    target, process = random_mixture(10, 4, seed=3), VP()
    field, x, prior = _setup(target, process, 32, seed=1)
    exact = log_likelihood(field, x, prior=prior, rtol=1e-7, atol=1e-7)
    return field, x, prior, exact


@pytest.mark.parametrize("probe_dist", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased(hutchinson_case, probe_dist):
    field, x, prior, exact = hutchinson_case
    g = torch.Generator().manual_seed(7)
    r = log_likelihood(field, x, prior=prior, divergence="hutchinson", probes=64, probe_dist=probe_dist, generator=g)
    assert r.logp_per_probe.shape == (32, 64)
    assert torch.allclose(r.logp, r.logp_per_probe.mean(1))
    se = r.logp_per_probe.std(1) / math.sqrt(64)
    z = (r.logp - exact.logp) / se
    print(f"{probe_dist}: nfe {r.nfe}, median se {se.median():.3f}, z mean {z.mean():.2f} sd {z.std():.2f}")
    assert abs(float(z.mean())) < 0.75
    assert 0.6 < float(z.std()) < 1.5


def test_single_probe_has_no_per_probe_result(hutchinson_case):
    field, x, prior, _ = hutchinson_case
    r = log_likelihood(field, x[:4], prior=prior, divergence="hutchinson", generator=torch.Generator().manual_seed(0))
    assert r.logp_per_probe is None and r.logp.shape == (4,)


# (c) the flow map is invertible and orientation-preserving
def test_encode_decode_round_trip():
    # measured: max relative error 2.7e-6 at rtol = atol = 1e-7 (4.8e-4 at 1e-5); bound 1e-4
    target = mog6()
    field, x, _ = _setup(target, VP(), 100)
    z = encode(field, x, rtol=1e-7, atol=1e-7)
    back = decode(field, z, rtol=1e-7, atol=1e-7)
    assert float(((back - x).norm(dim=1) / x.norm(dim=1)).max()) < 1e-4


def test_flow_map_is_injective_on_a_grid():
    # An 18 x 18 grid over the data, kept where log p_0 > -10 (129 points): decode(encode(x)) returns
    # every start to 1e-3 (measured 4.5e-5), far below half the grid spacing (0.5), so no two starts
    # share a latent. In the far tails the map contracts so hard (det ~ p_0 / p_1 ~ e^-60) that
    # float64 cannot invert it: at log p_0 > -20 the round trip is already off by 2.6 (measured).
    target = mog6()
    field = AnalyticField(target, VP())
    s = torch.linspace(-9.0, 8.0, 18, dtype=torch.float64)
    gx, gy = torch.meshgrid(s, s, indexing="xy")
    x = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    x = x[target.log_prob(x) > -10]
    back = decode(field, encode(field, x, rtol=1e-7, atol=1e-7), rtol=1e-7, atol=1e-7)
    assert float((back - x).norm(dim=1).max()) < 1e-3


def test_jacobian_determinant_is_the_divergence_integral():
    # At 20 target samples det(dz/dx) by central differences (h = 1e-4: O(h^2) ~ 1e-8, solver noise
    # 1e-9 / h ~ 1e-5) is positive and equals exp(int div v dt) from the ODE. Measured max relative
    # difference 2.3e-8 (det >= 0.07); bound 1e-4. A sign or time-direction error fails by O(1).
    target, process = mog6(), VP()
    field = AnalyticField(target, process)
    pts = target.sample(20, torch.Generator().manual_seed(5))
    r = log_likelihood(field, pts, prior=target.noised(process, process.t_max), rtol=1e-9, atol=1e-9)
    h = 1e-4
    shifts = torch.tensor([[h, 0], [-h, 0], [0, h], [0, -h]], dtype=torch.float64)
    zz = encode(field, (pts[:, None, :] + shifts).reshape(-1, 2), rtol=1e-9, atol=1e-9).reshape(20, 4, 2)
    det = torch.linalg.det(torch.stack([zz[:, 0] - zz[:, 1], zz[:, 2] - zz[:, 3]], 2) / (2 * h))
    assert bool((det > 0).all())
    assert float((det / torch.exp(r.delta_logp) - 1).abs().max()) < 1e-4


def test_slerp_and_interpolate():
    z0 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    z1 = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    path = slerp(z0, z1, 5)
    assert torch.allclose(path[0], z0) and torch.allclose(path[-1], z1)
    # unit vectors stay on the unit circle, in equal angular steps of pi/8
    assert torch.allclose(path.norm(dim=1), torch.ones(5, dtype=torch.float64))
    cos = (path[1:] * path[:-1]).sum(1) / (path[1:].norm(dim=1) * path[:-1].norm(dim=1))
    assert torch.allclose(cos, torch.full((4,), math.cos(math.pi / 8), dtype=torch.float64))
    field, x, _ = _setup(mog6(), VP(), 2)
    line = interpolate(field, x[0], x[1], 4, rtol=1e-7, atol=1e-7)
    assert line.shape == (4, 2)
    assert torch.allclose(line[0], x[0], atol=1e-4) and torch.allclose(line[-1], x[1], atol=1e-4)


# (d) gradients through the solver
class _GaussianField(Field):
    """Exact field of N(mu, theta^2 I) under ``process``; ``theta`` a scalar parameter."""

    def __init__(self, process, mu, theta):
        self.process, self.mu, self.theta = process, mu, theta

    def score(self, x, t):
        t = as_time(t)
        a, s = self.process.alpha(t), self.process.sigma(t)
        return -(x - a * self.mu) / (a**2 * self.theta**2 + s**2)


def test_gradient_through_solver_matches_finite_difference():
    # d sum(logp) / d theta vs a central difference, h = 1e-4: truncation O(h^2) ~ 1e-8, solver
    # noise 1e-8 / h ~ 1e-4 at worst. Measured relative difference 1.7e-8; bound 1e-4.
    process = VP()
    mu = torch.tensor([0.5, -1.0], dtype=torch.float64)
    x = 1.5 * torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    prior = start_distribution("standard", process, process.t_max, dim=2)

    def total(theta, differentiable=False):
        f = _GaussianField(process, mu, theta)
        return log_likelihood(f, x, prior=prior, differentiable=differentiable, rtol=1e-8, atol=1e-8).logp.sum()

    theta = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(total(theta, differentiable=True), theta)
    h = 1e-4
    plus, minus = (total(torch.tensor(1.3 + d, dtype=torch.float64)) for d in (h, -h))
    fd = (plus - minus) / (2 * h)
    assert abs(float(grad / fd) - 1) < 1e-4
    assert not total(theta).requires_grad  # no graph unless asked


# (e) bits/dim: a uniform density on the dequantized cube [-r/2 - D/2, r/2 + D/2]^D (side
# levels * Delta) has log p = -D log(levels Delta), so bpd = log2(levels) exactly.
@pytest.mark.parametrize("levels, dim, data_range", [(17, 64, 2.0), (256, 3072, 2.0), (2, 1, 1.0)])
def test_bits_per_dim_of_uniform_is_log2_levels(levels, dim, data_range):
    delta = data_range / (levels - 1)
    logp = torch.tensor([-dim * math.log(levels * delta)], dtype=torch.float64)
    bpd = bits_per_dim(logp, dim, data_range=data_range, levels=levels)
    assert abs(float(bpd) - math.log2(levels)) < 1e-12


def test_dequantize_stays_in_cells():
    levels, g = 17, torch.Generator().manual_seed(0)
    k = torch.randint(0, levels, (500, 64), generator=g)
    x = (k / 8.0 - 1.0).to(torch.float64)  # 17 levels on [-1, 1], spacing 1/8
    u = dequantize(x, levels, g)
    assert torch.equal(((u + 1.0) * 8.0).round().long(), k)
    off = (u - x) * 8.0  # uniform on [-1/2, 1/2]: mean 0 +- 0.0016, var 1/12
    assert float(off.abs().max()) <= 0.5 and abs(float(off.mean())) < 0.01 and abs(float(off.var()) - 1 / 12) < 0.003


def test_bad_arguments_raise():
    field, x, prior = _setup(mog6(), VP(), 4)
    bad = [
        dict(divergence="trace"),
        dict(probe_dist="uniform"),
        dict(probes=0),
        dict(t0=0.5, t1=0.5),
        dict(t1=2.0),
        dict(rtol=0.0),
        dict(method="euler"),
    ]
    for kw in bad:
        with pytest.raises(ValueError):
            log_likelihood(field, x, prior=prior, **kw)
    with pytest.raises(ValueError):
        log_likelihood(field, x[:, :1], prior=prior)
    lp = torch.zeros(3)
    for kw in (dict(levels=1), dict(data_range=0.0), dict(levels=2.5)):
        with pytest.raises(ValueError):
            bits_per_dim(lp, 2, **kw)
    with pytest.raises(ValueError):
        bits_per_dim(lp, 0)
    with pytest.raises(ValueError):
        dequantize(torch.tensor([[0.05]]), 17)  # off the lattice
    with pytest.raises(ValueError):
        dequantize(torch.tensor([[1.125]]), 17)  # beyond the last level
    with pytest.raises(ValueError):
        slerp(torch.zeros(3), torch.zeros(2), 4)


# --- the DDPM bound as a second estimate -----------------------------------------------------------


def test_variational_bound_is_a_tight_lower_bound_for_the_exact_field():
    """-L_vlb <= log p(x) in expectation. With the exact field on DDPM's 1000-step schedule and the
    reverse variance beta the gap is small: measured 0.077 +- 0.033 nats on 2000 mog6 points read from
    VP, -0.010 +- 0.031 on the schedule itself. Here 400 points on a 200-step schedule (beta_end 0.1,
    same abar_T ~ 0): the bound must sit below log p within 3 standard errors and within 0.3 nats of it."""
    from scoredyn.core.processes import DDPMSchedule
    from scoredyn.likelihood import variational_bound

    target = mog6()
    schedule = DDPMSchedule(num_steps=200, beta_end=0.1)
    x = target.sample(400, torch.Generator().manual_seed(5))
    bound = variational_bound(
        AnalyticField(target, VP()), x, schedule=schedule, generator=torch.Generator().manual_seed(6)
    )
    gap = target.log_prob(x) - bound
    se = float(gap.std() / math.sqrt(gap.numel()))
    print(f"log p - bound: {float(gap.mean()):.4f} +- {se:.4f}")
    assert float(gap.mean()) > -3 * se
    assert float(gap.mean()) < 0.3
    tilde = variational_bound(
        AnalyticField(target, schedule),
        x,
        schedule=schedule,
        variance="beta_tilde",
        generator=torch.Generator().manual_seed(6),
    )
    assert float((target.log_prob(x) - tilde).mean()) > float(gap.mean())  # beta_tilde's L_0 is looser


# --- estimate_likelihood and the CLI -------------------------------------------------------------------


def test_estimate_is_batched_and_matches_the_exact_density():
    from scoredyn.app.estimate import estimate_likelihood

    target = mog6()
    x = target.sample(120, torch.Generator().manual_seed(8))
    one = estimate_likelihood(target, x, batch=120)
    three = estimate_likelihood(target, x, batch=40)
    err = (one.logp - target.log_prob(x)).abs()
    assert float(err.mean()) < 1e-3  # the bound of the exact-divergence test above
    assert torch.allclose(one.logp, three.logp, atol=2e-2)  # each batch adapts its own steps
    assert three.nfe > one.nfe
    assert abs(one.stderr - float(one.logp.std()) / math.sqrt(120)) < 1e-12


def test_estimate_reports_bits_per_dim_of_dequantized_data():
    """Data on a 5-level lattice in [-1, 1]^2: bits/dim = -(log p(u) + D log Delta) / (D ln 2) per row."""
    from scoredyn.app.estimate import estimate_likelihood

    target = GaussianMixture([1.0], torch.zeros(1, 2), 0.5 * torch.eye(2)[None])
    x = torch.tensor([[-1.0, 0.0], [0.5, 0.5], [1.0, -0.5], [0.0, 0.0]])
    res = estimate_likelihood(target, x, dequantize_levels=5, seed=1)
    from scoredyn.util.seeds import block_seed

    u = dequantize(x.double(), 5, torch.Generator().manual_seed(block_seed(1, 0)))  # one batch: block 0's noise
    assert torch.allclose(res.logp, target.log_prob(u), atol=5e-3)
    want = -(res.logp + 2 * math.log(0.5)) / (2 * math.log(2))
    assert torch.allclose(res.bits_per_dim, want)
    assert res.to_dict()["bits_per_dim"]["mean"] == pytest.approx(float(want.mean()))


def _cli(*args):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "scoredyn", *map(str, args)], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def test_cli_likelihood_json_contract(tmp_path):
    import json

    import numpy as np

    target = mog6()
    x = target.sample(50, torch.Generator().manual_seed(2))
    np.savez(tmp_path / "x.npz", samples=x.numpy())
    rc, out, err = _cli("likelihood", "--target", "mog6", "--data", tmp_path / "x.npz", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert {"logp", "mean", "stderr", "nfe"} <= doc.keys()
    logp = torch.tensor(doc["logp"], dtype=torch.float64)
    assert logp.shape == (50,)
    assert float((logp - target.log_prob(x)).abs().mean()) < 1e-3
    assert doc["mean"] == pytest.approx(float(logp.mean()))
    assert doc["nfe"] > 0 and doc["estimator"] == "ode-exact"
    rc, out, _ = _cli("likelihood", "--target", "mog6", "--data", tmp_path / "x.npz", "--hutchinson", "2", "--json")
    assert rc == 0 and json.loads(out)["estimator"] == "ode-hutchinson"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--target", "mog6", "--data", "missing.npz"], "no such file"),
        (["--target", "mog6", "--data", "held-out", "--hutchinson", "-1"], "--hutchinson"),
        (["--target", "mog6", "--data", "held-out", "--estimator", "nope"], "--estimator"),
        (["--target", "mog10", "--data", "X2"], "are 2-D, but the model is 10-D"),
        (["--data", "held-out"], "exactly one of"),
    ],
)
def test_cli_likelihood_bad_input_is_one_line(tmp_path, args, message):
    import numpy as np

    np.save(tmp_path / "X2.npy", np.zeros((3, 2)))
    args = [str(tmp_path / "X2.npy") if a == "X2" else a for a in args]
    rc, out, err = _cli("likelihood", *args)
    assert rc == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_interpolate_writes_a_path_between_the_two_points(tmp_path):
    import numpy as np

    target = mog6()
    x = target.sample(10, torch.Generator().manual_seed(4))
    np.save(tmp_path / "x.npy", x.numpy())
    rc, _, err = _cli(
        "interpolate",
        "--target",
        "mog6",
        "--data",
        tmp_path / "x.npy",
        "--pair",
        2,
        7,
        "--n",
        5,
        "--out",
        tmp_path / "path.npz",
    )
    assert rc == 0, err
    with np.load(tmp_path / "path.npz") as f:
        path, latents = torch.from_numpy(f["samples"]), torch.from_numpy(f["latents"])
    assert path.shape == (5, 2) and latents.shape == (5, 2)
    # the ends decode back to the chosen rows (encode -> decode round trip, 1e-4 relative as above)
    assert torch.allclose(path[0], x[2], rtol=1e-4, atol=1e-4) and torch.allclose(path[-1], x[7], rtol=1e-4, atol=1e-4)
    # the latents are the slerp of the ends' PF-ODE latents
    assert torch.allclose(latents, slerp(latents[0], latents[-1], 5), atol=1e-12)
    z = encode(AnalyticField(target, VP()), x[[2, 7]])
    assert torch.allclose(latents[[0, -1]], z, atol=1e-6)
    rc, _, err = _cli(
        "interpolate", "--target", "mog6", "--data", tmp_path / "x.npy", "--pair", 2, 2, "--out", tmp_path / "bad.npz"
    )
    assert rc == 2 and "--pair" in err and not (tmp_path / "bad.npz").exists()
