"""Every knob of every sampler, a step or two at a time, against the step written here from the paper.

Each test runs a sampler for one to three steps in float64 on the exact field of a two-component
Gaussian mixture and repeats the same steps with the paper's update written out below: the score,
``x0hat`` and the process coefficients are computed here in closed form (not through the package),
and the noise is the same because the reference draws ``torch.randn`` from a generator seeded alike,
in the order the sampler documents. Both sides are float64 arithmetic on O(1) numbers, so they agree
to rounding (measured <= 1e-13); the tolerance 1e-10 leaves room for the different grouping of terms,
while every knob checked moves the particles by 1e-3 or (usually) far more.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from scoredyn.core.fields import AnalyticField
from scoredyn.core.processes import EDM, VE, VP, DDPMSchedule, Linear
from scoredyn.core.targets import GaussianMixture
from scoredyn.samplers import (
    annealed_langevin,
    constant_grid,
    ddim,
    ddpm,
    ddpm_grid,
    edm_heun,
    geometric_sigma_grid,
    karras_grid,
    langevin,
    log_snr_grid,
    ode,
    predictor_corrector,
    reverse_sde,
    score_drift,
    svgd,
    uniform_grid,
)

F64 = torch.float64
TOL = {"rtol": 1e-10, "atol": 1e-10}  # float64 rounding of O(1) numbers, see the module docstring

# the target: two anisotropic components, unequal weights
W = torch.tensor([0.3, 0.7], dtype=F64)
MU = torch.tensor([[-1.5, 0.5], [1.0, -0.8]], dtype=F64)
COV = torch.tensor([[[0.5, 0.2], [0.2, 0.3]], [[0.2, -0.05], [-0.05, 0.6]]], dtype=F64)
TARGET = GaussianMixture(W, MU, COV, name="two")
EYE = torch.eye(2, dtype=F64)


# --- the exact field and the processes, written here ------------------------------------------------


def _score(x, a, s):
    """``grad log p_t`` of ``p_t = sum_k w_k N(a mu_k, a^2 C_k + s^2 I)``: ``-sum_k r_k S_k^{-1}(x - a mu_k)``."""
    S = a**2 * COV + s**2 * EYE
    log_r = torch.log(W) + MultivariateNormal(a * MU, covariance_matrix=S).log_prob(x[:, None, :])
    r = torch.softmax(log_r, dim=1)  # (N, K)
    prec_diff = torch.linalg.solve(S, (x[:, None, :] - a * MU)[..., None])[..., 0]  # (N, K, D)
    return -(r[..., None] * prec_diff).sum(1)


def _x0(x, a, s):
    """Tweedie: ``E[x_0 | x_t = x] = (x + s^2 grad log p_t) / a``."""
    return (x + s**2 * _score(x, a, s)) / a


def _edm(t):
    """EDM (Karras et al. 2022, Table 1): ``alpha = 1``, ``sigma = t``, ``f = 0``, ``g^2 = 2t``."""
    t = float(t)
    return 1.0, t, 0.0, 2.0 * t


def _vp(t):
    """VP-linear (Song et al. 2021, eq. 11): ``beta = 0.1 + 19.9 t``, ``alpha = exp(-1/2 int beta)``,
    ``sigma = sqrt(1 - alpha^2)``, ``f = -beta / 2``, ``g^2 = beta``."""
    t = float(t)
    beta = 0.1 + 19.9 * t
    a = math.exp(-0.5 * (0.1 * t + 9.95 * t**2))
    return a, math.sqrt(-math.expm1(-(0.1 * t + 9.95 * t**2))), -0.5 * beta, beta


def _vp_t_of_sigma_hat(sigma_hat):
    """The VP-linear time where ``sigma / alpha = sigma_hat``: ``1 / alpha^2 = 1 + sigma_hat^2`` solves
    ``9.95 t^2 + 0.1 t = log(1 + sigma_hat^2)``."""
    c = math.log1p(sigma_hat**2)
    return (-0.1 + math.sqrt(0.01 + 4 * 9.95 * c)) / (2 * 9.95)


def _velocity(x, coef):
    """The probability-flow velocity (Song et al. 2021, eq. 13): ``f x - g^2 s / 2``."""
    a, s, f, g2 = coef
    return f * x - 0.5 * g2 * _score(x, a, s)


def _start(seed, sigma, n=64):
    """``n`` points at noise level ``sigma`` around the data (the start needs no exact law here)."""
    g = torch.Generator().manual_seed(seed)
    return TARGET.sample(n, g) + sigma * torch.randn(n, 2, generator=g, dtype=F64)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randn(g, like):
    """A standard normal draw as the samplers make it (``torch.randn`` of ``x``'s shape and dtype)."""
    return torch.randn(like.shape, generator=g, dtype=like.dtype)


# --- EDM: Karras et al. (2022), Algorithm 2 ---------------------------------------------------------


def _edm_algorithm_2(x, grid, g, S_churn=0.0, S_tmin=0.0, S_tmax=math.inf, S_noise=1.0):
    """Algorithm 2 line by line for ``sigma(t) = t``, with ``D`` the exact denoiser."""
    N = len(grid) - 1
    for i in range(N):
        t_i, t_next = float(grid[i]), float(grid[i + 1])
        # line 4: gamma_i = min(S_churn / N, sqrt 2 - 1) if t_i in [S_tmin, S_tmax] else 0
        gamma = min(S_churn / N, math.sqrt(2.0) - 1.0) if S_tmin <= t_i <= S_tmax else 0.0
        # lines 5-6: eps ~ N(0, S_noise^2 I), t_hat = t_i + gamma t_i, x_hat = x + sqrt(t_hat^2 - t_i^2) eps
        t_hat = t_i + gamma * t_i
        if gamma > 0.0:
            x = x + math.sqrt(t_hat**2 - t_i**2) * S_noise * _randn(g, x)
        # lines 7-8: Euler step, d = (x_hat - D(x_hat; t_hat)) / t_hat
        d = (x - _x0(x, 1.0, t_hat)) / t_hat
        x_next = x + (t_next - t_hat) * d
        # lines 9-11: the second-order correction, only if t_{i+1} != 0
        if t_next != 0.0:
            d_next = (x_next - _x0(x_next, 1.0, t_next)) / t_next
            x_next = x + (t_next - t_hat) * (0.5 * d + 0.5 * d_next)
        x = x_next
    return x


_EDM_CASES = {
    # gamma = 0.5 / 2 = 0.25 < sqrt 2 - 1: S_churn / N itself (S_churn / (N - 1) = 0.5 would be capped)
    "below-cap": ([2.0, 0.6, 0.0], {"S_churn": 0.5}),
    # gamma = min(2 / 2, sqrt 2 - 1): the cap (sqrt 2 would give gamma = 1)
    "capped": ([2.0, 0.6, 0.0], {"S_churn": 2.0}),
    "S_noise": ([2.0, 0.6, 0.0], {"S_churn": 0.5, "S_noise": 1.3}),
    # churn at t_0 = 2 only: 0.6 and 0.15 lie below S_tmin
    "window-low": ([2.0, 0.6, 0.15, 0.0], {"S_churn": 0.6, "S_tmin": 1.0, "S_tmax": 3.0}),
    # churn at 0.6 and 0.15 only: t_0 = 2 lies above S_tmax
    "window-high": ([2.0, 0.6, 0.15, 0.0], {"S_churn": 0.6, "S_tmin": 0.1, "S_tmax": 1.0}),
    # the interval is closed: t_i = S_tmin and t_i = S_tmax churn, 0.15 does not
    "window-edges": ([2.0, 0.6, 0.15, 0.0], {"S_churn": 0.6, "S_tmin": 0.6, "S_tmax": 2.0}),
    "no-churn": ([2.0, 0.6, 0.0], {}),
    # a last step to sigma > 0 keeps its Heun correction
    "heun-last": ([2.0, 0.6, 0.15], {"S_churn": 0.5}),
    "one-step-to-zero": ([1.5, 0.0], {"S_churn": 1.0}),
}


@pytest.mark.parametrize("case", list(_EDM_CASES))
def test_edm_heun_is_algorithm_2(case):
    times, knobs = _EDM_CASES[case]
    grid = torch.tensor(times, dtype=F64)
    x = _start(1, times[0])
    field = AnalyticField(TARGET, EDM())
    ours = edm_heun(field, x, grid, generator=_gen(2), **knobs)
    ref = _edm_algorithm_2(x, grid, _gen(2), **knobs)
    torch.testing.assert_close(ours.x, ref, **TOL)
    steps = len(times) - 1
    assert ours.nfe == 2 * steps - (times[-1] == 0.0)  # no correction into sigma = 0


def test_edm_heun_churn_on_vp_is_the_forward_kernel_in_sigma_hat():
    # On a process with alpha < 1 the algorithm runs in sigma_hat = sigma / alpha: gamma from sigma_hat(t_i)
    # and the window, t_hat where sigma_hat = (1 + gamma) sigma_hat(t_i), x_hat ~ q(x_{t_hat} | x_{t_i}) =
    # N(alpha_{t_hat|t_i} x, sigma_{t_hat|t_i}^2 S_noise^2 I) (Kingma et al. 2021, eq. 2), then Heun on the
    # PF-ODE (Euler into sigma = 0). Window [0.5, 3]: sigma_hat is 1.9 at t = 0.4, 0.67 at 0.25, 0.23 at 0.1.
    grid = torch.tensor([0.4, 0.25, 0.1, 0.0], dtype=F64)
    knobs = {"S_churn": 0.9, "S_tmin": 0.5, "S_tmax": 3.0, "S_noise": 1.1}
    x0 = _start(3, 1.0)
    g = _gen(4)
    x, n = x0, 3
    for i in range(n):
        t, t_next = float(grid[i]), float(grid[i + 1])
        a, s, _, _ = _vp(t)
        gamma = min(0.9 / n, math.sqrt(2) - 1) if 0.5 <= s / a <= 3.0 else 0.0
        if gamma > 0:
            t = _vp_t_of_sigma_hat((1 + gamma) * s / a)
            a_hat, s_hat, _, _ = _vp(t)
            x = (a_hat / a) * x + math.sqrt(s_hat**2 - (a_hat / a) ** 2 * s**2) * 1.1 * _randn(g, x)
        h = t_next - t
        d = _velocity(x, _vp(t))
        x_euler = x + h * d
        x = x_euler if t_next == 0.0 else x + 0.5 * h * (d + _velocity(x_euler, _vp(t_next)))
    ours = edm_heun(AnalyticField(TARGET, VP()), x0, grid, generator=_gen(4), **knobs)
    torch.testing.assert_close(ours.x, x, **TOL)


# --- the reverse-SDE family: Song et al. (2021), eqs. 6 and 13; Karras et al. (2022), eq. 6 ----------


def _em_family(x, grid, g, lam, coef):
    """Euler–Maruyama on ``dx = [f x - (1 + lam^2)/2 g^2 s] dt + lam g dw``, noise-free last step."""
    n = len(grid) - 1
    for i in range(n):
        t, h = float(grid[i]), float(grid[i + 1] - grid[i])
        a, s, f, g2 = coef(t)
        x_next = x + h * (f * x - 0.5 * (1.0 + lam**2) * g2 * _score(x, a, s))
        if i < n - 1 and lam > 0:
            x_next = x_next + lam * math.sqrt(g2 * -h) * _randn(g, x)
        x = x_next
    return x


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0, 2.0])  # 0.5 and 2 tell lam, lam^2 and lam^4 apart
@pytest.mark.parametrize(
    "process, coef, times",
    [
        (VP(), _vp, [0.8, 0.45, 0.2, 0.0]),  # f != 0; the last step starts at t = 0.2 and ends at sigma = 0
        (EDM(), _edm, [3.0, 1.2, 0.4]),
    ],
    ids=["vp", "edm"],
)
def test_reverse_sde_is_euler_maruyama_on_the_lambda_family(process, coef, times, lam):
    grid = torch.tensor(times, dtype=F64)
    x = _start(5, 1.0)
    ours = reverse_sde(AnalyticField(TARGET, process), x, grid, lam=lam, generator=_gen(6))
    ref = _em_family(x, grid, _gen(6), lam, coef)
    torch.testing.assert_close(ours.x, ref, **TOL)
    assert ours.nfe == len(times) - 1
    if lam == 0.0:  # the probability-flow ODE by Euler, x + h (f x - g^2 s / 2)
        pf = x
        for i in range(len(times) - 1):
            pf = pf + (times[i + 1] - times[i]) * _velocity(pf, coef(times[i]))
        torch.testing.assert_close(ours.x, pf, **TOL)


# --- predictor-corrector: Song et al. (2021), Algorithms 2 and 4 -------------------------------------


def _pc(x, grid, g, snr, M, coef):
    """The reverse-diffusion (Euler–Maruyama, lam = 1) predictor to t_{i+1}, noise-free on the last step,
    then M Langevin corrector steps that read the score at t_{i+1} with the step size of Algorithm 4,
    ``eps = 2 (r ||z|| / ||s||)^2`` (``||.||`` per sample, averaged over the batch, as in Song et al.'s
    code; ``alpha_i = 1``), and none where ``sigma(t_{i+1}) = 0``."""
    n = len(grid) - 1
    for i in range(n):
        t, t_next = float(grid[i]), float(grid[i + 1])
        a, s, f, g2 = coef(t)
        h = t_next - t
        x_next = x + h * (f * x - g2 * _score(x, a, s))
        if i < n - 1:
            x_next = x_next + math.sqrt(g2 * -h) * _randn(g, x)
        x = x_next
        a1, s1, _, _ = coef(t_next)
        for _ in range(M if s1 > 0 else 0):
            z = _randn(g, x)
            score = _score(x, a1, s1)
            eps = 2.0 * (snr * z.norm(dim=1).mean() / score.norm(dim=1).mean()) ** 2
            x = x + eps * score + torch.sqrt(2.0 * eps) * z
    return x


@pytest.mark.parametrize("snr, M", [(0.16, 1), (0.3, 2)])
@pytest.mark.parametrize(
    "process, coef, times",
    [(EDM(), _edm, [2.0, 0.7, 0.25]), (VP(), _vp, [0.6, 0.3, 0.0])],  # a corrector at both / at 0.3 only
    ids=["edm", "vp-to-zero"],
)
def test_predictor_corrector_is_algorithms_2_and_4(process, coef, times, snr, M):
    grid = torch.tensor(times, dtype=F64)
    x = _start(7, 1.0)
    ours = predictor_corrector(AnalyticField(TARGET, process), x, grid, snr=snr, corrector_steps=M, generator=_gen(8))
    ref = _pc(x, grid, _gen(8), snr, M, coef)
    torch.testing.assert_close(ours.x, ref, **TOL)
    correctors = sum(coef(t)[1] > 0 for t in times[1:])
    assert ours.nfe == len(times) - 1 + M * correctors


def test_predictor_corrector_without_corrector_is_the_reverse_sde():
    grid = torch.tensor([0.6, 0.3, 0.1, 0.0], dtype=F64)
    field, x = AnalyticField(TARGET, VP()), _start(9, 1.0)
    pc = predictor_corrector(field, x, grid, corrector_steps=0, generator=_gen(10))
    torch.testing.assert_close(pc.x, _em_family(x, grid, _gen(10), 1.0, _vp), **TOL)


# --- DDIM (Song, Meng & Ermon 2021, eqs. 12 and 16) and DDPM (Ho et al. 2020, eqs. 6-7, Alg. 2) -------


def _ddim_vp(x, times, g, eta):
    """Eq. 12 in ``abar = alpha^2``: ``x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s - sigma^2) eps + sigma xi``,
    ``sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s)`` (eq. 16)."""
    for t, s in zip(times[:-1], times[1:], strict=True):
        (a_t, sig_t, _, _), (a_s, _, _, _) = _vp(t), _vp(s)
        abar_t, abar_s = a_t**2, a_s**2
        x0 = _x0(x, a_t, sig_t)
        eps = (x - math.sqrt(abar_t) * x0) / math.sqrt(1 - abar_t)
        sig = eta * math.sqrt((1 - abar_s) / (1 - abar_t)) * math.sqrt(1 - abar_t / abar_s)
        x = math.sqrt(abar_s) * x0 + math.sqrt(max(1 - abar_s - sig**2, 0.0)) * eps
        if sig > 0:
            x = x + sig * _randn(g, x)
    return x


@pytest.mark.parametrize("eta", [0.0, 0.3, 1.0])  # 0.3 tells eta from eta^2 and sqrt(eta)
@pytest.mark.parametrize("times", [[0.7, 0.3, 0.0], [0.9, 0.5, 0.2, 0.05]], ids=["to-zero", "to-positive"])
def test_ddim_eta_is_song_meng_ermon_eq_12_16(times, eta):
    x = _start(11, 1.0)
    grid = torch.tensor(times, dtype=F64)
    ours = ddim(AnalyticField(TARGET, VP()), x, grid, eta=eta, generator=_gen(12))
    torch.testing.assert_close(ours.x, _ddim_vp(x, times, _gen(12), eta), **TOL)


def test_ddim_on_edm_uses_the_two_time_variance():
    # alpha = 1, sigma = t: eq. 16 in Kingma et al.'s two-time form, c = eta (s / t) sqrt(t^2 - s^2),
    # x_s = x0 + sqrt(s^2 - c^2) (x - x0) / t + c xi
    times, eta = [3.0, 1.0, 0.3], 0.6
    x0_pts = _start(13, 3.0)
    x, g = x0_pts, _gen(14)
    for t, s in zip(times[:-1], times[1:], strict=True):
        x0 = _x0(x, 1.0, t)
        c = eta * (s / t) * math.sqrt(t**2 - s**2)
        x = x0 + math.sqrt(s**2 - c**2) * (x - x0) / t + c * _randn(g, x)
    ours = ddim(AnalyticField(TARGET, EDM()), x0_pts, torch.tensor(times, dtype=F64), eta=eta, generator=_gen(14))
    torch.testing.assert_close(ours.x, x, **TOL)


@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
@pytest.mark.parametrize("times", [[0.7, 0.3, 0.0], [0.9, 0.5, 0.2]], ids=["to-zero", "to-positive"])
def test_ddpm_posterior_step_and_variances(times, variance):
    # Ho et al. (2020), eqs. 6-7 on a strided grid (beta_{t|s} = 1 - abar_t / abar_s):
    # mu = sqrt(abar_s) beta / (1 - abar_t) x0 + sqrt(abar_t / abar_s) (1 - abar_s) / (1 - abar_t) x_t,
    # variance beta_tilde = (1 - abar_s) / (1 - abar_t) beta, or beta; no noise into abar_s = 1
    x_start = _start(15, 1.0)
    x, g = x_start, _gen(16)
    for t, s in zip(times[:-1], times[1:], strict=True):
        (a_t, sig_t, _, _), (a_s, _, _, _) = _vp(t), _vp(s)
        abar_t, abar_s = a_t**2, a_s**2
        beta = 1 - abar_t / abar_s
        mu = math.sqrt(abar_s) * beta / (1 - abar_t) * _x0(x, a_t, sig_t)
        mu = mu + math.sqrt(abar_t / abar_s) * (1 - abar_s) / (1 - abar_t) * x
        var = (1 - abar_s) / (1 - abar_t) * beta if variance == "beta_tilde" else beta
        x = mu + math.sqrt(var) * _randn(g, x) if s > 0 else mu
    grid = torch.tensor(times, dtype=F64)
    ours = ddpm(AnalyticField(TARGET, VP()), x_start, grid, variance=variance, generator=_gen(16))
    torch.testing.assert_close(ours.x, x, **TOL)


@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
def test_ddpm_on_the_discrete_schedule_uses_beta_t(variance):
    # consecutive integer times of the 1000-step linear schedule: beta_t = linspace(1e-4, 0.02)[t - 1],
    # abar_t = prod_{j <= t} (1 - beta_j) (Ho et al. 2020, sec. 2 and 4)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=F64)
    abar = torch.cumprod(1 - betas, 0)
    t = 500
    b, ab_t, ab_s = float(betas[t - 1]), float(abar[t - 1]), float(abar[t - 2])
    x = _start(17, 1.0)
    x0 = _x0(x, math.sqrt(ab_t), math.sqrt(1 - ab_t))
    mu = math.sqrt(ab_s) * b / (1 - ab_t) * x0 + math.sqrt(1 - b) * (1 - ab_s) / (1 - ab_t) * x
    var = (1 - ab_s) / (1 - ab_t) * b if variance == "beta_tilde" else b
    ref = mu + math.sqrt(var) * _randn(_gen(18), x)
    grid = torch.tensor([t, t - 1], dtype=F64)
    ours = ddpm(AnalyticField(TARGET, DDPMSchedule()), x, grid, variance=variance, generator=_gen(18))
    torch.testing.assert_close(ours.x, ref, **TOL)


# --- Langevin: the kick, annealed step sizes (Song & Ermon 2019, Alg. 1), SVGD (Liu & Wang 2016) ------


@pytest.mark.parametrize("backend", ["eager", "torch"])
def test_langevin_is_ula_at_each_time(backend):
    # x <- x + eta s(x, t) + sqrt(2 eta) xi (Roberts & Tweedie 1996, eq. 1.3): two steps at t = 0.5, one at 0.3
    times, eta = [0.5, 0.5, 0.3], 0.04
    x_start = _start(19, 0.5)
    x, g = x_start, _gen(20)
    for t in times:
        x = x + eta * _score(x, 1.0, t) + math.sqrt(2 * eta) * _randn(g, x)
    grid = torch.tensor(times, dtype=F64)
    ours = langevin(AnalyticField(TARGET, EDM()), x_start, grid, eta=eta, backend=backend, generator=_gen(20))
    torch.testing.assert_close(ours.x, x, **TOL)
    assert ours.nfe == 3


def _annealed(x, times, g, T, eps, rule, noise, coef):
    """Annealed Langevin (Song & Ermon 2019, Alg. 1): at each level ``T`` steps of ``x + a s + sqrt(2 a) z`` with
    ``a = eps sigma_i^2 / sigma_L^2`` (``ncsn``) or ``eps sigma_i^2`` (``sigma2``), ``sigma_i = sigma(t_i)``.
    Alg. 1 writes the step ``x + (alpha_i / 2) s + sqrt(alpha_i) z``: ``a`` is its ``alpha_i / 2``, so the
    paper's ``epsilon`` is ``2 eps`` here."""
    sig_L = coef(times[-1])[1]
    for t in times:
        a, s, _, _ = coef(t)
        step = eps * s**2 / (sig_L**2 if rule == "ncsn" else 1.0)
        for _ in range(T if s > 0 else 0):
            x = x + step * _score(x, a, s)
            if noise:
                x = x + math.sqrt(2 * step) * _randn(g, x)
    return x


@pytest.mark.parametrize("backend", ["eager", "torch"])
@pytest.mark.parametrize("noise", [True, False], ids=["langevin", "score-drift"])
@pytest.mark.parametrize("rule", ["sigma2", "ncsn"])
@pytest.mark.parametrize(
    "process, coef, times",
    [(EDM(), _edm, [1.0, 0.4]), (VP(), _vp, [0.5, 0.2])],  # VP: the rule reads sigma(t), not sigma / alpha
    ids=["edm", "vp"],
)
def test_annealed_langevin_step_sizes(process, coef, times, rule, noise, backend):
    x = _start(21, 1.0)
    T, eps = 2, 0.05
    field, grid = AnalyticField(TARGET, process), torch.tensor(times, dtype=F64)
    kw = {"steps_per_level": T, "eta_factor": eps, "step_rule": rule, "backend": backend, "generator": _gen(22)}
    ours = annealed_langevin(field, x, grid, noise=noise, **kw) if noise else score_drift(field, x, grid, **kw)
    torch.testing.assert_close(ours.x, _annealed(x, times, _gen(22), T, eps, rule, noise, coef), **TOL)
    assert ours.nfe == T * len(times)


def test_annealed_langevin_skips_a_level_at_sigma_zero():
    x = _start(23, 1.0)
    grid = torch.tensor([0.5, 0.0], dtype=F64)
    ours = annealed_langevin(
        AnalyticField(TARGET, EDM()), x, grid, steps_per_level=3, eta_factor=0.1, generator=_gen(24)
    )
    torch.testing.assert_close(ours.x, _annealed(x, [0.5, 0.0], _gen(24), 3, 0.1, "sigma2", True, _edm), **TOL)
    assert ours.nfe == 3


@pytest.mark.parametrize(
    "knobs",
    [
        {"repulsion": 1.0, "bandwidth_factor": 0.8, "langevin_noise": False},
        {"repulsion": 0.4, "bandwidth_factor": 1.5, "langevin_noise": True},
    ],
)
@pytest.mark.parametrize("process, coef, times", [(EDM(), _edm, [1.0, 0.5]), (VP(), _vp, [0.4])], ids=["edm", "vp"])
def test_svgd_is_liu_wang_algorithm_1(process, coef, times, knobs):
    # phi_i = (1/N) sum_j [k(x_j, x_i) s_j + lambda grad_{x_j} k(x_j, x_i)], k = exp(-|x - y|^2 / h^2),
    # h = bandwidth_factor sigma(t), eta = eta_factor sigma(t)^2, x <- x + eta phi [+ sqrt(2 eta) xi]
    x_start, T, eps = _start(25, 1.0, n=24), 2, 0.05
    x, g = x_start, _gen(26)
    for t in times:
        a, s, _, _ = coef(t)
        h, eta = knobs["bandwidth_factor"] * s, eps * s**2
        for _ in range(T):
            diff = x[:, None, :] - x[None, :, :]  # x_i - x_j
            k = torch.exp(-(diff**2).sum(-1) / h**2)
            phi = (k @ _score(x, a, s) + knobs["repulsion"] * (2 / h**2) * (k[..., None] * diff).sum(1)) / len(x)
            x = x + eta * phi
            if knobs["langevin_noise"]:
                x = x + math.sqrt(2 * eta) * _randn(g, x)
    grid = torch.tensor(times, dtype=F64)
    ours = svgd(AnalyticField(TARGET, process), x_start, grid, steps_per_level=T, eta_factor=eps,
                generator=_gen(26), backend="torch", **knobs)  # fmt: skip
    torch.testing.assert_close(ours.x, x, **TOL)


# --- the probability-flow ODE solvers, one step each --------------------------------------------------


@pytest.mark.parametrize("times", [[0.6, 0.35], [0.3, 0.0]], ids=["to-positive", "to-zero"])
@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
def test_ode_one_step_is_the_butcher_tableau(method, times):
    # Euler; Heun's trapezoid (Euler alone into sigma = 0, as EDM's Alg. 1); classical RK4 (Kutta 1901),
    # whose last stage sits at t_1 (the data score's velocity at sigma = 0)
    (t0, t1), x = times, _start(27, 0.5)
    h, v = t1 - t0, (lambda y, t: _velocity(y, _vp(t)))
    k1 = v(x, t0)
    if method == "euler":
        ref = x + h * k1
    elif method == "heun":
        ref = x + h * k1 if t1 == 0.0 else x + 0.5 * h * (k1 + v(x + h * k1, t1))
    else:
        k2 = v(x + 0.5 * h * k1, t0 + 0.5 * h)
        k3 = v(x + 0.5 * h * k2, t0 + 0.5 * h)
        k4 = v(x + h * k3, t1)
        ref = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    ours = ode(AnalyticField(TARGET, VP()), x, torch.tensor(times, dtype=F64), method=method)
    torch.testing.assert_close(ours.x, ref, **TOL)
    assert ours.nfe == {"euler": 1, "heun": 2 - (t1 == 0.0), "rk4": 4}[method]


# --- grids: their formulas and their end points ----------------------------------------------------------


@pytest.mark.parametrize("rho", [7.0, 3.0])
@pytest.mark.parametrize("steps", [1, 2, 6])
def test_karras_grid_is_eq_5_with_a_zero_end(steps, rho):
    # sigma_i = (smax^(1/rho) + i/(N-1) (smin^(1/rho) - smax^(1/rho)))^rho, i < N, then sigma_N = 0 (eq. 5);
    # defaults sigma in [0.002, 80] under EDM (t = sigma) and rho = 7
    grid = karras_grid(EDM(), steps) if rho == 7.0 else karras_grid(EDM(), steps, rho=rho)
    smax, smin = 80.0, 0.002
    n = steps  # positive levels
    expected = [
        (smax ** (1 / rho) + (i / (n - 1) if n > 1 else 0.0) * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
        for i in range(n)
    ] + [0.0]
    assert grid.dtype == F64 and len(grid) == steps + 1
    torch.testing.assert_close(grid, torch.tensor(expected, dtype=F64), rtol=1e-13, atol=0.0)
    assert float(grid[0]) == 80.0 and float(grid[-1]) == 0.0
    if steps > 1:
        assert abs(float(grid[-2]) - smin) < 1e-15


def test_karras_grid_on_vp_and_ve_ends():
    # VP: the positive levels are eq. 5 in sigma_hat = sigma / alpha, from sigma_hat(t_max = 1) to 0.002,
    # then t = 0; VE (sigma > 0 everywhere) has N + 1 positive levels from sigma_max = 50 to sigma_min = 0.01
    rho, steps = 7.0, 5
    grid = karras_grid(VP(), steps, sigma_max=30.0, sigma_min=0.01)
    s_hat = [(30.0 ** (1 / rho) + i / 4 * (0.01 ** (1 / rho) - 30.0 ** (1 / rho))) ** rho for i in range(5)]
    expected = [_vp_t_of_sigma_hat(s) for s in s_hat] + [0.0]
    torch.testing.assert_close(grid, torch.tensor(expected, dtype=F64), rtol=1e-10, atol=1e-13)
    ve = karras_grid(VE(), steps)
    sig = [(50.0 ** (1 / rho) + i / 5 * (0.01 ** (1 / rho) - 50.0 ** (1 / rho))) ** rho for i in range(6)]
    torch.testing.assert_close(VE().sigma(ve), torch.tensor(sig, dtype=F64), rtol=1e-10, atol=0.0)
    assert float(ve[0]) == 1.0 and abs(float(ve[-1])) < 1e-12  # VE's t runs over [0, 1]


def test_log_snr_grid_is_uniform_in_lambda():
    # lambda = log(alpha / sigma) = -log sigma_hat in equal steps from -log 80 to -log 0.002, then sigma = 0
    grid = log_snr_grid(EDM(), 6)
    lam = -torch.log(grid[:-1])
    expected = torch.linspace(-math.log(80.0), -math.log(0.002), 6, dtype=F64)
    torch.testing.assert_close(lam, expected, rtol=0.0, atol=1e-12)
    assert float(grid[-1]) == 0.0
    vp = log_snr_grid(VP(), 4, sigma_min=0.05, sigma_max=5.0)
    expected = [
        _vp_t_of_sigma_hat(math.exp(-lam))
        for lam in torch.linspace(-math.log(5.0), -math.log(0.05), 4, dtype=F64).tolist()
    ]
    torch.testing.assert_close(vp, torch.tensor(expected + [0.0], dtype=F64), rtol=1e-10, atol=1e-13)


def test_uniform_constant_geometric_and_ddpm_grids():
    torch.testing.assert_close(uniform_grid(VP(), 4), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0], dtype=F64))
    lin = Linear()
    torch.testing.assert_close(uniform_grid(lin, 2), torch.tensor([lin.t_max, lin.t_max / 2, 0.0], dtype=F64))
    torch.testing.assert_close(uniform_grid(EDM(), 2, t_start=3.0, t_end=1.0), torch.tensor([3.0, 2.0, 1.0], dtype=F64))
    # constant: `steps` repeats of the time where sigma_hat is given (EDM: t = sigma_hat)
    torch.testing.assert_close(constant_grid(EDM(), 3, sigma_hat=0.7), torch.full((3,), 0.7, dtype=F64))
    vp = constant_grid(VP(), 2, sigma_hat=0.5)
    torch.testing.assert_close(vp, torch.full((2,), _vp_t_of_sigma_hat(0.5), dtype=F64), rtol=1e-10, atol=0.0)
    # geometric ladder sigma_max (sigma_min / sigma_max)^(i / (L - 1)) (Song & Ermon 2019), 10 -> 0.05 by default
    expected = [10.0 * (0.05 / 10.0) ** (i / 4) for i in range(5)]
    torch.testing.assert_close(geometric_sigma_grid(EDM(), 5), torch.tensor(expected, dtype=F64), rtol=1e-13, atol=0.0)
    # DDPM spacings, T = 1000, 10 steps (Lin et al. 2024, Table 2, in paper indexing t = index + 1), then t = 0
    ddpm_process = DDPMSchedule()
    cases = {
        "leading": [901, 801, 701, 601, 501, 401, 301, 201, 101, 1, 0],
        "trailing": [1000, 900, 800, 700, 600, 500, 400, 300, 200, 100, 0],
        "linspace": [1000, 889, 778, 667, 556, 445, 334, 223, 112, 1, 0],
    }
    for spacing, times in cases.items():
        torch.testing.assert_close(ddpm_grid(ddpm_process, 10, spacing), torch.tensor(times, dtype=F64))
