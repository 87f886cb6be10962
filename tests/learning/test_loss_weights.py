"""Each objective's weight lambda(t), its time distribution and EDM's preconditioning, against the papers.

The losses are computed at FIXED times, noise and probes (the ``draws`` a step hands to ``loss``), for
fields whose prediction is known in closed form, and compared with the paper's formula written out
here: a changed weight cannot hide behind importance sampling or Monte-Carlo error. Every regression
objective is a weighted denoising score matching loss (Vincent 2011; Song et al. 2021, eq. 7),

    loss = lambda(t) || s_hat(x_t, t) + eps / sigma_t ||^2,     x_t = alpha_t x_0 + sigma_t eps,

exactly, per sample, for any prediction that satisfies ``x_t = alpha x0hat + sigma eps_hat``; the table
``PAPER_LAMBDA`` gives each objective's ``lambda`` from its paper. Everything is float64, so the
comparisons hold to rounding: 1e-10 relative (the losses are sums of a few squares of O(1) numbers,
each a handful of float64 operations from the inputs).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import torch
from torch import nn

from scoredyn.core.fields import Field, NetworkField
from scoredyn.core.processes import EDM, VE, VP, DDPMSchedule, Linear
from scoredyn.learning.losses import (
    EDM_SIGMA_DATA,
    OBJECTIVE_NAMES,
    OBJECTIVES,
    DiscreteTime,
    EDMObjective,
    ImportanceTime,
    LogNormalTime,
    UniformTime,
    make_objective,
    time_sampler,
)

TOL = dict(rtol=1e-10, atol=1e-12)  # module docstring


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- a field with a known score: s(x) = -A x + b (the score of a Gaussian; any fixed affine map will do) ---

A = torch.tensor([[1.3, 0.4], [-0.2, 0.7]], dtype=torch.float64)  # not symmetric: div s = -tr A = -2.0
B = torch.tensor([0.25, -0.6], dtype=torch.float64)


class AffineScore(Field):
    """``s(x, t) = -A x + b`` at every time: ``eps_hat = -sigma s``, ``x0hat = (x + sigma^2 s) / alpha``."""

    def __init__(self, process) -> None:
        self.process = process

    def score(self, x, t):
        return -x @ A.T + B


def affine_score(x: torch.Tensor) -> torch.Tensor:
    return -x @ A.T + B


X0 = torch.tensor([[0.9, -1.4], [-0.3, 0.2], [2.1, 0.75], [-1.7, -0.4], [0.05, 1.6], [1.1, -0.9]], dtype=torch.float64)
EPS = torch.tensor([[0.3, 1.2], [-1.1, 0.4], [0.7, -0.8], [1.5, 0.1], [-0.6, -1.3], [0.2, 0.9]], dtype=torch.float64)
W = torch.tensor([1.0, 0.5, 2.0, 1.25, 0.8, 3.0], dtype=torch.float64)  # the draws' importance weights

# fixed, non-round times per process (one per sample)
TIMES = {
    "vp": (VP(), torch.tensor([0.0123, 0.087, 0.2718, 0.5, 0.7321, 0.9876], dtype=torch.float64)),
    "edm": (EDM(), torch.tensor([0.002, 0.0371, 0.37, 1.3, 11.0, 80.0], dtype=torch.float64)),
    "linear": (Linear(), torch.tensor([0.0123, 0.087, 0.2718, 0.5, 0.7321, 0.9876], dtype=torch.float64)),
    "ve": (VE(), torch.tensor([0.0123, 0.087, 0.2718, 0.5, 0.7321, 0.9876], dtype=torch.float64)),
}


def coefficients_of(process, t):
    return process.alpha(t), process.sigma(t), process.d_alpha(t), process.d_sigma(t)


def sigma_data_of(options: dict) -> float:
    return options.get("sigma_data", 0.5)


# lambda(t) of every objective, from its paper, as a function of (alpha, sigma, alpha', sigma', sigma_data)
PAPER_LAMBDA = {
    # Ho et al. 2020, eq. 14 (L_simple): ||eps_hat - eps||^2 = sigma^2 ||s_hat - s||^2
    "eps": lambda a, s, da, ds, sd: s**2,
    # Song & Ermon 2019, sec. 4.2; Song et al. 2021, eq. 7: lambda(sigma) = sigma^2
    "dsm": lambda a, s, da, ds, sd: s**2,
    # x0 prediction (Karras et al. 2022, eq. 2): x0hat - x0 = (sigma^2 / alpha) (s_hat - s)
    "x0": lambda a, s, da, ds, sd: s**4 / a**2,
    # Salimans & Ho 2022, sec. 4: v = alpha eps - sigma x0, v_hat - v = -sigma (alpha^2 + sigma^2) / alpha (s_hat - s)
    "v": lambda a, s, da, ds, sd: s**2 * (a**2 + s**2) ** 2 / a**2,
    # Karras et al. 2022, eq. 8, Table 1: lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2 on ||D - x0||^2,
    # read in sigma_hat = sigma / alpha, times the x0 factor sigma^4 / alpha^2
    "edm": lambda a, s, da, ds, sd: ((s / a) ** 2 + sd**2) / ((s / a) * sd) ** 2 * s**4 / a**2,
    # Lipman et al. 2023, eq. 9: u = alpha' x0 + sigma' eps,
    # u_hat - u = sigma (alpha' sigma / alpha - sigma') (s_hat - s)
    "cfm": lambda a, s, da, ds, sd: s**2 * (da * s / a - ds) ** 2,
    # Hyvarinen 2005, Theorem 1, scaled by sigma^2: (sigma^2 / 2) E||s_hat - grad log p_t||^2
    "ssm": lambda a, s, da, ds, sd: s**2 / 2,
    "ism": lambda a, s, da, ds, sd: s**2 / 2,
    "ism-hutchinson": lambda a, s, da, ds, sd: s**2 / 2,
}

# (objective, process key, options) for the regression objectives
REGRESSION_CASES = [
    ("eps", "vp", {}),
    ("eps", "edm", {}),
    ("dsm", "vp", {}),
    ("dsm", "ve", {}),
    ("x0", "vp", {}),
    ("x0", "edm", {}),
    ("v", "vp", {}),
    ("v", "linear", {}),
    ("edm", "vp", {}),
    ("edm", "edm", {}),
    ("edm", "edm", {"sigma_data": 1.7}),
    ("edm", "vp", {"sigma_data": 0.3}),
    ("cfm", "linear", {"t_min": 0.0}),
    ("cfm", "vp", {}),
]


def test_every_objective_has_a_paper_weight():
    assert set(PAPER_LAMBDA) | {"vlb"} == set(OBJECTIVE_NAMES)


@pytest.mark.parametrize("name, key, options", REGRESSION_CASES, ids=[f"{n}-{k}-{o}" for n, k, o in REGRESSION_CASES])
def test_regression_loss_is_its_paper_weight_times_the_score_error(name, key, options):
    process, t = TIMES[key]
    obj = make_objective(name, process, **options)
    a, s, da, ds = coefficients_of(process, t)
    x_t = a[:, None] * X0 + s[:, None] * EPS
    lam = PAPER_LAMBDA[name](a, s, da, ds, sigma_data_of(options))
    want = W * lam * ((affine_score(x_t) + EPS / s[:, None]) ** 2).sum(1)
    loss = obj.loss(AffineScore(process), X0, None, {"t": t, "w": W, "eps": EPS})
    torch.testing.assert_close(loss, want, **TOL)
    # and the weight the objective states (what importance sampling draws from) is the same lambda
    torch.testing.assert_close(obj.lam(t), lam, **TOL)


def _paper_loss(name: str, process, t: torch.Tensor, sd: float) -> torch.Tensor:
    """Each loss in its paper's own variables, from x0hat and eps_hat of the affine score."""
    a, s, da, ds = (c[:, None] for c in coefficients_of(process, t))
    x_t = a * X0 + s * EPS
    score = affine_score(x_t)
    eps_hat, x0hat = -s * score, (x_t + s**2 * score) / a
    if name == "eps":  # Ho et al. 2020, eq. 14
        return ((eps_hat - EPS) ** 2).sum(1)
    if name == "dsm":  # Song et al. 2021, eq. 7 with lambda = sigma^2
        return (s[:, 0] ** 2) * ((score + EPS / s) ** 2).sum(1)
    if name == "x0":
        return ((x0hat - X0) ** 2).sum(1)
    if name == "v":  # Salimans & Ho 2022, sec. 4: on VP, ||v_hat - v||^2 = (1 + alpha^2 / sigma^2) ||x0hat - x0||^2
        assert isinstance(process, VP)
        return (1 + a[:, 0] ** 2 / s[:, 0] ** 2) * ((x0hat - X0) ** 2).sum(1)
    if name == "edm":  # Karras et al. 2022, eq. 8 and Table 1, on the EDM process (sigma = t)
        assert isinstance(process, EDM)
        sigma = t
        return (sigma**2 + sd**2) / (sigma * sd) ** 2 * ((x0hat - X0) ** 2).sum(1)
    # cfm on Linear: x_t = (1 - t) x0 + t eps, conditional velocity eps - x0 (Lipman et al. 2023, eq. 23
    # with sigma_min = 0; Liu et al. 2023, eq. 1)
    assert isinstance(process, Linear)
    u_hat = -x0hat + eps_hat
    return ((u_hat - (EPS - X0)) ** 2).sum(1)


@pytest.mark.parametrize(
    "name, key, sd",
    [("eps", "vp", 0.5), ("dsm", "vp", 0.5), ("x0", "vp", 0.5), ("v", "vp", 0.5), ("edm", "edm", 0.5),
     ("edm", "edm", 2.0), ("cfm", "linear", 0.5)],
)  # fmt: skip
def test_regression_loss_in_its_papers_variables(name, key, sd):
    process, t = TIMES[key]
    obj = make_objective(name, process, sigma_data=sd, t_min=0.0)
    loss = obj.loss(AffineScore(process), X0, None, {"t": t, "w": torch.ones_like(t), "eps": EPS})
    torch.testing.assert_close(loss, _paper_loss(name, process, t, sd), **TOL)


def test_stated_weights_in_closed_form():
    """``lam(t)`` written with the schedules' closed forms: on VP ``alpha^2 + sigma^2 = 1``, on EDM
    ``sigma = t``, on Linear ``lambda_cfm = t^2 / (1 - t)^2`` (the CFM docstring's special case)."""
    t = TIMES["vp"][1]
    beta = 0.1 + 19.9 * t
    a2 = torch.exp(-(0.1 * t + 0.5 * 19.9 * t**2))
    s2 = 1 - a2
    vp = VP()
    torch.testing.assert_close(make_objective("v", vp).lam(t), s2 / a2, **TOL)
    torch.testing.assert_close(make_objective("x0", vp).lam(t), s2**2 / a2, **TOL)
    torch.testing.assert_close(make_objective("edm", vp).lam(t), s2 * (s2 / a2 + 0.25) / 0.25, **TOL)
    # cfm on VP: (alpha' sigma / alpha - sigma')^2 sigma^2 = beta^2 / 4
    # (alpha' = -beta alpha / 2, sigma' = beta alpha^2 / (2 sigma))
    torch.testing.assert_close(make_objective("cfm", vp).lam(t), beta**2 / 4, **TOL)
    for name in ("eps", "dsm"):
        torch.testing.assert_close(make_objective(name, vp).lam(t), s2, **TOL)
    for name in ("ssm", "ism", "ism-hutchinson"):
        torch.testing.assert_close(make_objective(name, vp).lam(t), s2 / 2, **TOL)
    te = TIMES["edm"][1]
    torch.testing.assert_close(make_objective("edm", EDM()).lam(te), te**2 * (te**2 + 0.25) / 0.25, **TOL)
    torch.testing.assert_close(make_objective("x0", EDM()).lam(te), te**4, **TOL)
    tl = TIMES["linear"][1]
    torch.testing.assert_close(make_objective("cfm", Linear()).lam(tl), tl**2 / (1 - tl) ** 2, **TOL)
    with pytest.raises(ValueError, match="no continuous time weight"):
        make_objective("vlb", DDPMSchedule(num_steps=10)).lam(torch.tensor([3.0], dtype=torch.float64))


# --- the implicit objectives at fixed probes -------------------------------------------------------------


def test_implicit_objectives_at_fixed_probes():
    """``sigma^2 [1/2 ||s||^2 + div s]`` (Hyvarinen 2005, eq. 4) with ``div s = -tr A`` exactly; the sliced
    form ``sigma^2 mean_m [v^T J v + 1/2 (v^T s)^2]`` (Song et al. 2019, eq. 7) and Hutchinson's
    ``sigma^2 [1/2 ||s||^2 + mean_m v^T J v]`` with ``J = -A``, at the probes given."""
    process, t = TIMES["vp"]
    a, s = process.alpha(t), process.sigma(t)
    x_t = a[:, None] * X0 + s[:, None] * EPS
    score = affine_score(x_t)
    probes = torch.tensor([[[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]], dtype=torch.float64).expand(6, 3, 2).clone()
    probes[::2] *= torch.tensor([[1.0, 1.3], [-0.4, 2.0], [0.7, 0.1]], dtype=torch.float64)  # not all Rademacher
    draws = {"t": t, "w": W, "eps": EPS, "v": probes}
    field = AffineScore(process)
    vjv = torch.einsum("nmi,ij,nmj->nm", probes, -A, probes)  # v^T J v
    vs = torch.einsum("nmi,ni->nm", probes, score)  # v^T s
    ism = W * s**2 * (0.5 * (score**2).sum(1) - A.trace())
    ssm = W * s**2 * (vjv + 0.5 * vs**2).mean(1)
    hutch = W * s**2 * (0.5 * (score**2).sum(1) + vjv.mean(1))
    torch.testing.assert_close(make_objective("ism", process).loss(field, X0, None, draws), ism, **TOL)
    torch.testing.assert_close(make_objective("ssm", process, probes=3).loss(field, X0, None, draws), ssm, **TOL)
    got = make_objective("ism-hutchinson", process, probes=3).loss(field, X0, None, draws)
    torch.testing.assert_close(got, hutch, **TOL)


# --- EDM's preconditioning (Karras et al. 2022, eq. 7 and Table 1) ------------------------------------------


class Recorder(nn.Module):
    """A fixed linear network that remembers its inputs: ``F = M x_in + c_noise u``."""

    M = torch.tensor([[0.8, -0.35], [0.15, 1.1]], dtype=torch.float64)
    u = torch.tensor([0.4, -0.9], dtype=torch.float64)

    def __init__(self) -> None:
        super().__init__()
        self.seen: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x_in, c_noise, y=None):
        self.seen = (x_in.detach().clone(), c_noise.detach().clone())
        return x_in @ self.M.T + c_noise[:, None] * self.u


@pytest.mark.parametrize("key", ["edm", "vp"])
@pytest.mark.parametrize("sd", [0.5, 1.3])
def test_edm_preconditioning_and_its_unit_effective_weight(key, sd):
    """Table 1: ``c_skip = sd^2 / (sigma^2 + sd^2)``, ``c_out = sigma sd / sqrt(sigma^2 + sd^2)``,
    ``c_in = 1 / sqrt(sigma^2 + sd^2)``, ``c_noise = ln(sigma) / 4``, ``D = c_skip x + c_out F(c_in x, c_noise)``,
    all in ``sigma_hat = sigma / alpha`` of the scaled input ``x / alpha`` (sec. 4 of the paper, "scaling");
    and eq. 8: ``lambda(sigma) c_out(sigma)^2 = 1``, so the loss is ``||F - (x0 - c_skip x) / c_out||^2``."""
    process, t = TIMES[key]
    a, s = process.alpha(t)[:, None], process.sigma(t)[:, None]
    sh = s / a
    x = a * X0 + s * EPS
    net = Recorder()
    field = NetworkField(net, process, "edm", sigma_data=sd)
    pred = field.predict(x, t)
    x_in, c_noise = net.seen
    c_in = 1 / torch.sqrt(sh**2 + sd**2)
    torch.testing.assert_close(x_in, c_in * (x / a), **TOL)
    torch.testing.assert_close(c_noise, 0.25 * torch.log(sh[:, 0]), **TOL)
    c_skip, c_out = sd**2 / (sh**2 + sd**2), sh * sd / torch.sqrt(sh**2 + sd**2)
    big_f = x_in @ Recorder.M.T + c_noise[:, None] * Recorder.u
    torch.testing.assert_close(pred.x0, c_skip * (x / a) + c_out * big_f, **TOL)

    obj = make_objective("edm", process, sigma_data=sd)
    loss = obj.loss(field, X0, None, {"t": t, "w": W, "eps": EPS})
    f_target = (X0 - c_skip * (x / a)) / c_out  # the effective training target of eq. 8
    torch.testing.assert_close(loss, W * ((big_f - f_target) ** 2).sum(1), **TOL)


def test_network_field_sigma_data_default_is_one():
    process, t = TIMES["edm"]
    net = Recorder()
    NetworkField(net, process, "edm").predict(X0, t)
    torch.testing.assert_close(net.seen[0], X0 / torch.sqrt(t[:, None] ** 2 + 1.0), **TOL)


# --- time distributions, pinned to the generator's stream -------------------------------------------------


def test_uniform_time_default_cut_off_is_1e_3():
    """``t ~ U[1e-3, t_max]`` (Song et al. 2021 train on ``U[epsilon, 1]``): ``t = 1e-3 + (t_max - 1e-3) U``
    with ``U`` the generator's float64 stream."""
    n = 500
    x0 = torch.zeros(n, 2, dtype=torch.float64)
    for process in (VP(), Linear(), EDM()):
        u = torch.rand(n, generator=gen(31), dtype=torch.float64)
        want = 1e-3 + (process.t_max - 1e-3) * u
        draws = make_objective("eps", process).draw(x0, gen(31))
        torch.testing.assert_close(draws["t"], want, rtol=1e-15, atol=0.0)
        assert (draws["w"] == 1).all()
        torch.testing.assert_close(UniformTime(process).sample(n, gen(31))[0], want, rtol=1e-15, atol=0.0)
        other = make_objective("eps", process, t_min=0.25).draw(x0, gen(31))["t"]
        torch.testing.assert_close(other, 0.25 + (process.t_max - 0.25) * u, rtol=1e-15, atol=0.0)


def test_lognormal_time_is_edm_p_mean_p_std():
    """Karras et al. 2022, Table 1: ``ln sigma ~ N(P_mean, P_std^2)``, ``P_mean = -1.2``, ``P_std = 1.2``
    for ``sigma_data = 0.5``; for other data scales the mean moves by ``ln(sigma_data / 0.5)``. On EDM
    ``t = sigma``, so ``t = exp(P_mean + P_std z)`` with ``z`` the generator's float64 normal stream
    (clamped to [0, 80], which these draws never reach)."""
    assert EDM_SIGMA_DATA == 0.5
    n = 400
    x0 = torch.zeros(n, 2, dtype=torch.float64)
    z = torch.randn(n, generator=gen(32), dtype=torch.float64)
    edm = EDM()
    want = torch.exp(-1.2 + 1.2 * z)
    assert float(want.max()) < 80.0
    for got in (
        make_objective("edm", edm).draw(x0, gen(32))["t"],
        EDMObjective(edm).draw(x0, gen(32))["t"],
        LogNormalTime(edm).sample(n, gen(32))[0],
        time_sampler("lognormal", edm, None).sample(n, gen(32))[0],
        make_objective("x0", edm, time="lognormal").draw(x0, gen(32))["t"],
    ):
        torch.testing.assert_close(got, want, rtol=1e-14, atol=0.0)
    # other knobs: P_mean, P_std, and sigma_data's shift of the mean
    got = make_objective("edm", edm, p_mean=0.3, p_std=0.7, sigma_data=2.0).draw(x0, gen(32))["t"]
    torch.testing.assert_close(got, torch.exp(0.3 + math.log(2.0 / 0.5) + 0.7 * z), rtol=1e-14, atol=0.0)
    # on VP the draw is the time whose sigma_hat = sigma / alpha is that log-normal sigma
    t = make_objective("edm", VP()).draw(x0, gen(32))["t"]
    inside = (t > 0) & (t < 1)
    torch.testing.assert_close(VP().sigma_hat(t)[inside], want[inside], rtol=1e-9, atol=0.0)


def test_discrete_time_is_uniform_on_1_to_T():
    """Ho et al. 2020, Algorithm 1: ``t ~ Uniform({1, ..., T})``, the generator's integer stream."""
    n, steps = 300, 20
    process = DDPMSchedule(num_steps=steps)
    want = torch.randint(1, steps + 1, (n,), generator=gen(33)).to(torch.float64)
    for name in ("eps", "vlb"):
        draws = make_objective(name, process).draw(torch.zeros(n, 2, dtype=torch.float64), gen(33))
        assert torch.equal(draws["t"], want) and (draws["w"] == 1).all()
    assert torch.equal(DiscreteTime(process).sample(n, gen(33))[0], want)


def _paper_density(name: str, process, sd: float = 0.5):
    """``lambda(t) / sigma(t)^2`` from ``PAPER_LAMBDA``: the density ``time="importance"`` draws from."""

    def q(t):
        t = torch.as_tensor(t, dtype=torch.float64)
        a, s, da, ds = coefficients_of(process, t)
        return PAPER_LAMBDA[name](a, s, da, ds, sd) / s**2

    return q


@pytest.mark.parametrize("name", ["eps", "dsm", "x0", "v", "edm", "cfm", "ism"])
def test_importance_weights_are_the_inverse_paper_density(name):
    """``t ~ q ∝ lambda / sigma^2`` on ``[1e-3, 1]`` with ``w = 1 / ((t_max - t_min) q(t))``, ``q``
    normalised by the integral of the paper's density (scipy quad, 1e-10 relative). The sampler draws
    from a tabulation on 4096 points (density constant per cell), so ``w`` matches the point density to
    ``max |d log q / dt| * dt``: on ``t > 0.1`` of VP that is below 40 * 2.4e-4 = 1% for every weight
    here; 3% is asserted. A weight with a changed power is off by a factor of ``sigma`` or ``alpha``."""
    process, t_min = VP(), 1e-3
    q = _paper_density(name, process)
    z = scipy.integrate.quad(lambda u: float(q(u)), t_min, 1.0, limit=200, epsrel=1e-10)[0]
    draws = make_objective(name, process, time="importance").draw(torch.zeros(4000, 2, dtype=torch.float64), gen(34))
    t, w = draws["t"], draws["w"]
    keep = t > 0.1
    want = z / ((1.0 - t_min) * q(t[keep]))
    np.testing.assert_allclose(w[keep].numpy(), want.numpy(), rtol=3e-2)
    assert (t >= t_min).all() and (t <= 1.0).all() and keep.sum() > 1000


def test_importance_time_default_grid_and_cut_off():
    """``ImportanceTime``'s defaults: cut-off 1e-3; a constant density gives ``t`` uniform, ``w = 1``."""
    process = VP()
    t, w = ImportanceTime(process, lambda u: torch.ones_like(u)).sample(300, gen(35))
    u = torch.rand(300, generator=gen(35), dtype=torch.float64)
    torch.testing.assert_close(t, 1e-3 + (1.0 - 1e-3) * u, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(w, torch.ones_like(w), rtol=1e-12, atol=0.0)


# --- the defaults every constructor of an objective shares -------------------------------------------------


def test_objective_defaults():
    vp = VP()
    for name in OBJECTIVE_NAMES:
        if name == "vlb":
            continue
        cls = OBJECTIVES[name]
        obj = cls(vp) if name != "cfm" else cls(Linear())
        assert obj.sigma_data == 0.5 and obj.probes == 1
        expected_time = LogNormalTime if name == "edm" else UniformTime
        assert type(obj.time) is expected_time, name
        if expected_time is UniformTime:
            assert obj.time.t_min == 1e-3
        else:
            assert (obj.time.P_mean, obj.time.P_std) == (-1.2, 1.2)
    assert type(OBJECTIVES["vlb"](DDPMSchedule(num_steps=10)).time) is DiscreteTime
    assert OBJECTIVES["vlb"](DDPMSchedule(num_steps=10)).variance == "beta"
    defaults = {
        "eps": "eps", "dsm": "score", "x0": "x0", "v": "v", "edm": "edm", "cfm": "flow",
        "ssm": "score", "ism": "score", "ism-hutchinson": "score", "vlb": "eps",
    }  # fmt: skip
    assert {n: OBJECTIVES[n].default_parameterization for n in OBJECTIVE_NAMES} == defaults


# --- the DDPM bound as an objective at a fixed time --------------------------------------------------------


def test_vlb_objective_at_fixed_times():
    """``L_T + T L_{t-1}`` (Ho et al. 2020, eq. 5) at given integer times, with every term written out
    from the betas: ``L_{t-1} = c_t^2 / (2 beta_t) ||x0 - x0hat||^2 + D/2 (r - 1 - log r)``,
    ``r = beta_tilde_t / beta_t``, ``c_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t)`` (eq. 7);
    ``L_0 = ||x0 - x0hat||^2 / (2 beta_1) + D/2 log(2 pi beta_1)``; ``L_T = KL(N(sqrt(abar_T) x0,
    (1 - abar_T) I) || N(0, I)) = 1/2 (abar_T ||x0||^2 - D abar_T - D log(1 - abar_T))``."""
    steps, d = 12, 2
    process = DDPMSchedule(num_steps=steps, beta_end=0.3)
    betas = np.linspace(1e-4, 0.3, steps)
    abar = np.concatenate([[1.0], np.cumprod(1 - betas)])  # abar_0 .. abar_T
    t = torch.tensor([1.0, 2.0, 5.0, 7.0, 11.0, 12.0], dtype=torch.float64)
    obj = make_objective("vlb", process)
    field = AffineScore(process)
    loss = obj.loss(field, X0, None, {"t": t, "w": W, "eps": EPS})
    x0_np, eps_np = X0.numpy(), EPS.numpy()
    prior = 0.5 * (abar[-1] * (x0_np**2).sum(1) - d * abar[-1] - d * np.log1p(-abar[-1]))
    want = []
    for j, tj in enumerate(t.long().tolist()):
        x_t = np.sqrt(abar[tj]) * x0_np[j] + np.sqrt(1 - abar[tj]) * eps_np[j]
        s = -A.numpy() @ x_t + B.numpy()
        x0hat = (x_t + (1 - abar[tj]) * s) / np.sqrt(abar[tj])
        err = ((x0_np[j] - x0hat) ** 2).sum()
        beta = betas[tj - 1]
        if tj == 1:
            term = err / (2 * beta) + d / 2 * np.log(2 * np.pi * beta)
        else:
            c = np.sqrt(abar[tj - 1]) * beta / (1 - abar[tj])
            r = (1 - abar[tj - 1]) / (1 - abar[tj])  # beta_tilde / beta
            term = c**2 / (2 * beta) * err + d / 2 * (r - 1 - np.log(r))
        want.append(W[j].item() * (prior[j] + steps * term))
    np.testing.assert_allclose(loss.numpy(), np.array(want), rtol=1e-10)
