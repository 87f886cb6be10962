"""Every schedule's constants and coefficient functions against closed forms written out here.

Each process is compared, at non-round times, with its paper's formula evaluated independently in
numpy float64 (so a changed constant, a changed power or a changed default fails), and every time
derivative the process supplies is compared both with its closed form and with a central finite
difference of the process's own ``alpha`` / ``sigma``.

Tolerances: closed forms agree to float64 rounding; 1e-12 relative (about 5000 ulp) covers the
different but equivalent orders of operations (``expm1`` against ``1 - exp``, ``log`` of a product
against a sum of logs). A central difference with step ``h`` has truncation error
``h^2 |x'''| / 6`` and rounding error ``eps |x| / h``. With ``h = min(1e-5, 1e-4 t)`` both stay below
``1e-9`` relative for the coefficients here, including ``sigma ~ sqrt(t)`` near ``t = 0`` (VP, OU),
where ``|sigma''' / sigma'| = 3 / (4 t^2)`` makes the truncation ``h^2 / (8 t^2) = 1.3e-9``; 1e-7
leaves a wide margin.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scoredyn.core.processes import EDM, OU, VE, VP, DDPMSchedule, Linear, Process, SubVP

CLOSED = dict(rtol=1e-12, atol=0.0)  # closed form against closed form (module docstring)
FD = dict(rtol=1e-7, atol=1e-10)  # central difference (module docstring)

# non-round interior times of [0, 1]
UNIT_TIMES = np.array([1.234e-3, 0.0371, 0.1414, 0.2718, 0.5, 0.6931, 0.8660, 0.9871])


def t64(t) -> torch.Tensor:
    return torch.as_tensor(np.asarray(t, dtype=np.float64))


def values(process: Process, name: str, t) -> np.ndarray:
    return getattr(process, name)(t64(t)).numpy()


def central_difference(fn, t: np.ndarray) -> np.ndarray:
    h = np.minimum(1e-5, 1e-4 * t)  # module docstring
    return (fn(t64(t + h)).numpy() - fn(t64(t - h)).numpy()) / (2 * h)


def check_closed_forms(process: Process, t: np.ndarray, want: dict[str, np.ndarray]) -> None:
    for name, expected in want.items():
        np.testing.assert_allclose(values(process, name, t), expected, **CLOSED, err_msg=name)


def check_derivatives_numerically(process: Process, t: np.ndarray) -> None:
    """``d_alpha``, ``d_sigma``, ``d_sigma2``, ``f = (log alpha)'`` and ``g2 = (sigma^2)' - 2 f sigma^2``
    against central differences of the process's own ``alpha`` and ``sigma``."""
    alpha, sigma = values(process, "alpha", t), values(process, "sigma", t)
    d_alpha = central_difference(process.alpha, t)
    d_sigma = central_difference(process.sigma, t)
    d_sigma2 = central_difference(lambda u: process.sigma(u) ** 2, t)
    np.testing.assert_allclose(values(process, "d_alpha", t), d_alpha, **FD, err_msg="d_alpha")
    np.testing.assert_allclose(values(process, "d_sigma", t), d_sigma, **FD, err_msg="d_sigma")
    np.testing.assert_allclose(values(process, "d_sigma2", t), d_sigma2, **FD, err_msg="d_sigma2")
    np.testing.assert_allclose(values(process, "f", t), d_alpha / alpha, **FD, err_msg="f")
    g2 = d_sigma2 - 2 * (d_alpha / alpha) * sigma**2
    np.testing.assert_allclose(values(process, "g2", t), g2, **FD, err_msg="g2")


def check_log_snr(process: Process, t: np.ndarray, alpha: np.ndarray, sigma: np.ndarray) -> None:
    """``lambda = log(alpha / sigma)`` and ``sigma_hat = sigma / alpha`` (Kingma et al. 2021, eq. 3)."""
    np.testing.assert_allclose(values(process, "log_snr", t), np.log(alpha / sigma), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(values(process, "sigma_hat", t), sigma / alpha, **CLOSED)


# --- VP, linear (Song et al. 2021, eq. 11 and app. B; Ho et al. 2020's betas in continuous time) -----------

BETA_MIN, BETA_MAX = 0.1, 20.0  # Song et al. 2021, app. C: beta_min = 0.1, beta_max = 20


def vp_linear(t: np.ndarray, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> dict[str, np.ndarray]:
    """beta(t) = beta_min + t (beta_max - beta_min); alpha = exp(-1/2 int_0^t beta), sigma^2 = 1 - alpha^2;
    f = -beta / 2, g^2 = beta (eq. 11); sigma' = beta alpha^2 / (2 sigma) from 2 sigma sigma' = -(alpha^2)'."""
    beta = beta_min + t * (beta_max - beta_min)
    integral = beta_min * t + 0.5 * (beta_max - beta_min) * t**2
    alpha = np.exp(-0.5 * integral)
    sigma = np.sqrt(-np.expm1(-integral))
    return {
        "alpha": alpha,
        "sigma": sigma,
        "d_alpha": -0.5 * beta * alpha,
        "d_sigma": beta * alpha**2 / (2 * sigma),
        "d_sigma2": beta * alpha**2,
        "f": -0.5 * beta,
        "g2": beta,
    }


def test_vp_linear_defaults_and_closed_forms():
    vp = VP()
    assert (vp.schedule, vp.beta_min, vp.beta_max, vp.s) == ("linear", 0.1, 20.0, 0.008)
    assert (vp.t_min, vp.t_max, vp.name) == (0.0, 1.0, "vp-linear")
    want = vp_linear(UNIT_TIMES)
    check_closed_forms(vp, UNIT_TIMES, want)
    check_derivatives_numerically(vp, UNIT_TIMES)
    check_log_snr(vp, UNIT_TIMES, want["alpha"], want["sigma"])
    # the end of the schedule: log alpha(1) = -(0.1 + 19.9 / 2) / 2 = -5.025
    assert float(vp.alpha(1.0)) == pytest.approx(math.exp(-5.025), rel=1e-13)
    assert float(vp.g2(1.0)) == pytest.approx(20.0, rel=1e-14) and float(vp.g2(0.0)) == pytest.approx(0.1, rel=1e-14)


def test_vp_linear_other_constants_reach_every_coefficient():
    vp = VP(beta_min=0.3, beta_max=7.5)
    check_closed_forms(vp, UNIT_TIMES, vp_linear(UNIT_TIMES, 0.3, 7.5))
    check_derivatives_numerically(vp, UNIT_TIMES)


@pytest.mark.parametrize("beta_min, beta_max", [(BETA_MIN, BETA_MAX), (0.3, 7.5)])
def test_vp_linear_sigma_to_t_solves_the_quadratic(beta_min, beta_max):
    # int_0^t beta = -log(1 - sigma^2): a t^2 + b t - L = 0 with a = (beta_max - beta_min) / 2, b = beta_min
    sigma = np.array([1e-3, 0.05, 0.3, 0.5, 0.77, 0.95, 0.993])
    a, b, big_l = 0.5 * (beta_max - beta_min), beta_min, -np.log1p(-(sigma**2))
    t = (-b + np.sqrt(b * b + 4 * a * big_l)) / (2 * a)
    np.testing.assert_allclose(VP(beta_min=beta_min, beta_max=beta_max).sigma_to_t(t64(sigma)).numpy(), t, **CLOSED)


# --- VP, cosine (Nichol & Dhariwal 2021, eq. 17) -----------------------------------------------------------

COSINE_S = 0.008  # Nichol & Dhariwal 2021, sec. 3.2: the offset s = 0.008
COSINE_T_MAX = 0.9946  # the documented end: alpha(1) = 0 and f diverges there


def vp_cosine(t: np.ndarray, s: float = COSINE_S) -> dict[str, np.ndarray]:
    """abar(t) = cos^2((t + s)/(1 + s) pi/2) / cos^2(s/(1 + s) pi/2) (eq. 17); alpha = sqrt(abar),
    f = (log alpha)' = -(pi/2)/(1 + s) tan((t + s)/(1 + s) pi/2), g^2 = -2 f (VP: g^2 = -(log abar)')."""
    c = np.pi / 2 / (1 + s)
    abar = np.cos((t + s) * c) ** 2 / np.cos(s * c) ** 2
    alpha, sigma = np.sqrt(abar), np.sqrt(1 - abar)
    f = -c * np.tan((t + s) * c)
    return {
        "alpha": alpha,
        "sigma": sigma,
        "d_alpha": f * alpha,
        "d_sigma": -f * abar / sigma,
        "d_sigma2": -2 * f * abar,
        "f": f,
        "g2": -2 * f,
    }


# 1 - abar loses relative precision for small t (cancellation): 1e-10 absolute on sigma there
COSINE_TIMES = np.array([0.0371, 0.1414, 0.2718, 0.5, 0.6931, 0.8660, 0.9871, 0.9945])


def test_vp_cosine_defaults_and_closed_forms():
    vp = VP("cosine")
    assert (vp.schedule, vp.s, vp.t_min, vp.t_max, vp.name) == ("cosine", COSINE_S, 0.0, COSINE_T_MAX, "vp-cosine")
    want = vp_cosine(COSINE_TIMES)
    for name, expected in want.items():
        np.testing.assert_allclose(values(vp, name, COSINE_TIMES), expected, rtol=1e-11, atol=0.0, err_msg=name)
    check_derivatives_numerically(vp, COSINE_TIMES[:-2])  # near t_max tan'' is large: FD step too coarse
    check_log_snr(vp, COSINE_TIMES, want["alpha"], want["sigma"])
    # alpha^2 at the end: cos^2((0.9946 + 0.008) / 1.008 pi/2) / cos^2(0.008 / 1.008 pi/2) = 7.0821e-5
    assert float(vp.alpha(vp.t_max)) ** 2 == pytest.approx(7.082122865223441e-05, rel=1e-10)
    # at t = 0 the schedule starts clean with beta(0) = pi/(1 + s) tan(s/(1 + s) pi/2) (no cut-off)
    assert float(vp.alpha(0.0)) == 1.0 and float(vp.sigma(0.0)) == 0.0
    c = math.pi / 2 / 1.008
    assert float(vp.g2(0.0)) == pytest.approx(2 * c * math.tan(0.008 * c), rel=1e-12)


def test_vp_cosine_offset_reaches_every_coefficient():
    vp = VP("cosine", s=0.02, t_max=0.9)
    assert vp.t_max == 0.9
    want = vp_cosine(COSINE_TIMES[:-2], s=0.02)
    for name, expected in want.items():
        np.testing.assert_allclose(values(vp, name, COSINE_TIMES[:-2]), expected, rtol=1e-11, err_msg=name)


def test_vp_cosine_sigma_to_t_inverts_eq_17():
    # t = (1 + s) (2/pi) arccos(sqrt(1 - sigma^2) cos(s/(1 + s) pi/2)) - s
    sigma = np.array([0.05, 0.3, 0.5, 0.77, 0.95, 0.9999])
    c = np.pi / 2 / (1 + COSINE_S)
    t = np.arccos(np.sqrt(1 - sigma**2) * np.cos(COSINE_S * c)) / c - COSINE_S
    np.testing.assert_allclose(VP("cosine").sigma_to_t(t64(sigma)).numpy(), t, rtol=1e-11)


def test_vp_cosine_is_the_continuous_ddpm_cosine_schedule():
    # Nichol & Dhariwal define the discrete abar_n = abar(n / T): the product of the discrete betas
    # telescopes to it (the last beta is clipped, so stop one short of T)
    steps = 1000
    n = np.arange(1, steps)
    vp = VP("cosine")
    ddpm = DDPMSchedule(num_steps=steps, schedule="cosine")
    np.testing.assert_allclose(ddpm.alphas_cumprod[:-1].numpy(), values(vp, "alpha", n / steps) ** 2, rtol=1e-10)


# --- sub-VP (Song et al. 2021, eq. 29) ---------------------------------------------------------------


def test_subvp_defaults_and_closed_forms():
    sub = SubVP()
    assert (sub.beta_min, sub.beta_max, sub.t_min, sub.t_max, sub.name) == (0.1, 20.0, 0.0, 1.0, "subvp")
    vp = vp_linear(UNIT_TIMES)
    alpha, beta = vp["alpha"], vp["g2"]
    sigma = 1 - alpha**2  # Song et al. 2021, eq. 29: the variance of VP, squared away from 1
    want = {
        "alpha": alpha,
        "sigma": sigma,
        "d_alpha": vp["d_alpha"],
        "d_sigma": beta * alpha**2,
        "d_sigma2": 2 * sigma * beta * alpha**2,
        "f": -0.5 * beta,
        # eq. 29: g^2 = beta(t) (1 - exp(-2 int_0^t beta))
        "g2": beta * (1 - np.exp(-2 * (BETA_MIN * UNIT_TIMES + 0.5 * (BETA_MAX - BETA_MIN) * UNIT_TIMES**2))),
    }
    # 1 - alpha^2 for small t: cancellation costs ~1e-13 absolute, relative up to 1e-10 at t = 1e-3
    for name, expected in want.items():
        np.testing.assert_allclose(values(sub, name, UNIT_TIMES), expected, rtol=1e-10, atol=0.0, err_msg=name)
    check_derivatives_numerically(sub, UNIT_TIMES)
    check_log_snr(sub, UNIT_TIMES, alpha, sigma)
    s = np.array([1e-3, 0.2, 0.5, 0.9])  # int beta = -log(1 - sigma): the same quadratic as VP
    a, b, big_l = 0.5 * (BETA_MAX - BETA_MIN), BETA_MIN, -np.log1p(-s)
    np.testing.assert_allclose(
        sub.sigma_to_t(t64(s)).numpy(), (-b + np.sqrt(b * b + 4 * a * big_l)) / (2 * a), **CLOSED
    )
    other = SubVP(beta_min=0.5, beta_max=5.0, t_max=0.8)
    assert other.t_max == 0.8
    np.testing.assert_allclose(values(other, "alpha", UNIT_TIMES), vp_linear(UNIT_TIMES, 0.5, 5.0)["alpha"], **CLOSED)


# --- VE (Song & Ermon 2019; Song et al. 2021, eqs. 9 and 30) ------------------------------------------------


def test_ve_defaults_and_closed_forms():
    ve = VE()
    assert (ve.sigma_min, ve.sigma_max, ve.t_min, ve.t_max, ve.name) == (0.01, 50.0, 0.0, 1.0, "ve")
    for sigma_min, sigma_max, process in ((0.01, 50.0, ve), (0.002, 80.0, VE(0.002, 80.0))):
        t = UNIT_TIMES
        log_ratio = math.log(sigma_max / sigma_min)
        sigma = sigma_min * (sigma_max / sigma_min) ** t  # geometric (eq. 30)
        want = {
            "alpha": np.ones_like(t),
            "sigma": sigma,
            "d_alpha": np.zeros_like(t),
            "d_sigma": sigma * log_ratio,
            "d_sigma2": 2 * sigma**2 * log_ratio,
            "f": np.zeros_like(t),
            "g2": 2 * sigma**2 * log_ratio,  # eq. 30: g = sigma_min (max/min)^t sqrt(2 log(max/min))
        }
        check_closed_forms(process, t, want)
        check_derivatives_numerically(process, t)
        check_log_snr(process, t, want["alpha"], sigma)
        np.testing.assert_allclose(process.sigma_to_t(t64(sigma)).numpy(), t, rtol=1e-12, atol=1e-15)
        assert float(process.sigma(0.0)) == pytest.approx(sigma_min, rel=1e-14)
        assert float(process.sigma(1.0)) == pytest.approx(sigma_max, rel=1e-14)


# --- EDM (Karras et al. 2022, Table 1: sigma(t) = t, s(t) = 1) --------------------------------------------


def test_edm_defaults_and_closed_forms():
    edm = EDM()
    assert (edm.t_min, edm.t_max, edm.name) == (0.0, 80.0, "edm")  # Table 1 / sec. 5: sigma_max = 80
    assert EDM(sigma_max=3.5).t_max == 3.5
    t = np.array([0.002, 0.0371, 0.5, 1.7, 13.3, 79.5])
    want = {
        "alpha": np.ones_like(t),
        "sigma": t,
        "d_alpha": np.zeros_like(t),
        "d_sigma": np.ones_like(t),
        "d_sigma2": 2 * t,
        "f": np.zeros_like(t),
        "g2": 2 * t,  # Karras et al. 2022, eq. 6 with sigma = t: g^2 = 2 sigma sigma'
    }
    check_closed_forms(edm, t, want)
    check_log_snr(edm, t, want["alpha"], t)
    np.testing.assert_allclose(edm.sigma_to_t(t64(t)).numpy(), t, **CLOSED)
    np.testing.assert_allclose(edm.log_snr_to_t(t64(-np.log(t))).numpy(), t, **CLOSED)


# --- Ornstein–Uhlenbeck: dx = -x/2 dt + dw ------------------------------------------------------------------


def test_ou_defaults_and_closed_forms():
    ou = OU()
    assert (ou.t_min, ou.t_max, ou.name) == (0.0, 12.0, "ou")
    assert OU(t_max=5.0).t_max == 5.0
    t = np.array([1.234e-3, 0.0371, 0.5, 1.7, 4.4, 11.9])
    alpha, sigma = np.exp(-t / 2), np.sqrt(-np.expm1(-t))
    want = {
        "alpha": alpha,
        "sigma": sigma,
        "d_alpha": -alpha / 2,
        "d_sigma": np.exp(-t) / (2 * sigma),
        "d_sigma2": np.exp(-t),
        "f": np.full_like(t, -0.5),
        "g2": np.ones_like(t),
    }
    check_closed_forms(ou, t, want)
    check_derivatives_numerically(ou, t)
    check_log_snr(ou, t, alpha, sigma)
    np.testing.assert_allclose(ou.sigma_to_t(t64(sigma)).numpy(), t, rtol=1e-11)


# --- Linear path of flow matching (Lipman et al. 2023, eq. 20 with sigma_min = 0; Liu et al. 2023) -------


def test_linear_defaults_and_closed_forms():
    lin = Linear()
    assert (lin.t_min, lin.t_max, lin.name) == (0.0, 1.0 - 1e-3, "linear")
    assert Linear(t_max=0.9).t_max == 0.9
    t = UNIT_TIMES
    want = {
        "alpha": 1 - t,
        "sigma": t,
        "d_alpha": -np.ones_like(t),
        "d_sigma": np.ones_like(t),
        "d_sigma2": 2 * t,
        "f": -1 / (1 - t),
        "g2": 2 * t / (1 - t),  # 2 t + 2 t^2 / (1 - t)
    }
    check_closed_forms(lin, t, want)
    check_derivatives_numerically(lin, t)
    check_log_snr(lin, t, 1 - t, t)
    np.testing.assert_allclose(lin.log_snr_to_t(t64(np.log((1 - t) / t))).numpy(), t, rtol=1e-12, atol=1e-15)


def test_base_process_defaults():
    assert (Process.t_min, Process.t_max, Process.name) == (0.0, 1.0, "process")


# --- DDPM's discrete schedules (Ho et al. 2020; Nichol & Dhariwal 2021), against diffusers too -----------


def ddpm_linear_betas(steps: int = 1000, start: float = 1e-4, end: float = 0.02) -> np.ndarray:
    return np.linspace(start, end, steps)  # Ho et al. 2020, sec. 4: beta_1 = 1e-4 .. beta_T = 0.02, T = 1000


def ddpm_cosine_betas(steps: int = 1000, s: float = COSINE_S) -> np.ndarray:
    """beta_n = min(1 - abar(n/T) / abar((n-1)/T), 0.999), abar(u) = cos^2((u + s)/(1 + s) pi/2)
    (Nichol & Dhariwal 2021, eq. 17 and the clipping below it)."""
    u = np.arange(steps + 1) / steps
    abar = np.cos((u + s) / (1 + s) * np.pi / 2) ** 2
    return np.minimum(1 - abar[1:] / abar[:-1], 0.999)


def test_ddpm_defaults_are_ho_et_al():
    ddpm = DDPMSchedule()
    assert (ddpm.num_steps, ddpm.schedule, ddpm.t_min, ddpm.t_max, ddpm.name) == (1000, "linear", 0.0, 1000.0,
                                                                                     "ddpm-linear")  # fmt: skip
    np.testing.assert_allclose(ddpm.betas.numpy(), ddpm_linear_betas(), rtol=1e-14, atol=0.0)
    assert float(ddpm.betas[0]) == 1e-4 and float(ddpm.betas[-1]) == pytest.approx(0.02, rel=1e-15)
    np.testing.assert_allclose(ddpm.alphas_cumprod.numpy(), np.cumprod(1 - ddpm_linear_betas()), rtol=1e-12)
    other = DDPMSchedule(num_steps=37, beta_start=3e-4, beta_end=0.11)
    np.testing.assert_allclose(other.betas.numpy(), ddpm_linear_betas(37, 3e-4, 0.11), rtol=1e-14, atol=0.0)
    assert other.t_max == 37.0


def test_ddpm_cosine_betas_and_clipping():
    for steps in (1000, 50):
        ddpm = DDPMSchedule(num_steps=steps, schedule="cosine")
        assert ddpm.name == "ddpm-cosine" and ddpm.t_max == float(steps)
        np.testing.assert_allclose(ddpm.betas.numpy(), ddpm_cosine_betas(steps), rtol=1e-12, atol=0.0)
        assert float(ddpm.betas[-1]) == 0.999  # abar(1) = cos^2(pi/2) ~ 0: the last beta is clipped
        assert float(ddpm.betas[-2]) < 0.999  # ... and only the last one
    # the first beta, written out: 1 - cos^2((1/1000 + s)/(1 + s) pi/2) / cos^2(s/(1 + s) pi/2)
    c = math.pi / 2 / 1.008
    beta_1 = 1 - math.cos((1e-3 + 0.008) * c) ** 2 / math.cos(0.008 * c) ** 2
    assert float(DDPMSchedule(schedule="cosine").betas[0]) == pytest.approx(beta_1, rel=1e-10)


def test_ddpm_betas_match_diffusers():
    """diffusers computes the same betas (its ``squaredcos_cap_v2`` is Nichol & Dhariwal's cosine with
    s = 0.008 and max_beta = 0.999) and stores them in float32: 3e-7 relative is a few float32 ulp
    (2^-24 = 6e-8; its float32 ``linspace`` is itself off by up to 2 ulp)."""
    diffusers = pytest.importorskip("diffusers")
    from diffusers.schedulers.scheduling_ddpm import betas_for_alpha_bar

    for steps in (1000, 64):
        ours = DDPMSchedule(num_steps=steps, schedule="cosine").betas.numpy()
        ref = betas_for_alpha_bar(steps, max_beta=0.999).double().numpy()
        np.testing.assert_allclose(ours, ref, rtol=3e-7, atol=0.0)
        sched = diffusers.DDPMScheduler(num_train_timesteps=steps, beta_schedule="squaredcos_cap_v2")
        np.testing.assert_allclose(ours, sched.betas.double().numpy(), rtol=3e-7, atol=0.0)
    sched = diffusers.DDPMScheduler()  # linear 1e-4 .. 0.02, T = 1000: diffusers' defaults are Ho et al.'s too
    np.testing.assert_allclose(DDPMSchedule().betas.numpy(), sched.betas.double().numpy(), rtol=3e-7, atol=0.0)
    # diffusers' alphas_cumprod[k] is our abar at t = k + 1 (float32 cumprod of 1000 factors: 1e-5)
    np.testing.assert_allclose(DDPMSchedule().alpha(t64(np.arange(1, 1001))).numpy() ** 2,
                               sched.alphas_cumprod.double().numpy(), rtol=1e-5)  # fmt: skip


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddpm_interpolates_log_abar_linearly(schedule):
    """Between integers ``log abar`` is linear: on ``(n-1, n]`` ``log alpha^2 = log abar_{n-1} +
    (t - n + 1) log(1 - beta_n)``, so ``f = log(1 - beta_n) / 2`` and ``g^2 = -log(1 - beta_n)``."""
    ddpm = DDPMSchedule(schedule=schedule)
    betas = ddpm_linear_betas() if schedule == "linear" else ddpm_cosine_betas()
    log_abar = np.concatenate([[0.0], np.cumsum(np.log1p(-betas))])
    t = np.array([0.3, 1.0, 1.75, 17.25, 250.5, 499.9, 731.125, 998.6])
    n = np.maximum(np.ceil(t), 1).astype(int)
    log_a2 = log_abar[n - 1] + (t - (n - 1)) * np.log1p(-betas[n - 1])
    alpha, sigma = np.exp(0.5 * log_a2), np.sqrt(-np.expm1(log_a2))
    f = 0.5 * np.log1p(-betas[n - 1])
    want = {
        "alpha": alpha,
        "sigma": sigma,
        "d_alpha": f * alpha,
        "d_sigma": -f * alpha**2 / sigma,
        "d_sigma2": -2 * f * alpha**2,
        "f": f,
        "g2": -2 * f,
    }
    for name, expected in want.items():
        np.testing.assert_allclose(values(ddpm, name, t), expected, rtol=1e-11, atol=0.0, err_msg=name)
    check_log_snr(ddpm, t, alpha, sigma)
    off_kinks = t[np.abs(t - np.round(t)) > 0.05]  # piecewise linear: difference inside one segment
    check_derivatives_numerically(ddpm, off_kinks)
    np.testing.assert_allclose(ddpm.sigma_to_t(t64(sigma)).numpy(), t, rtol=1e-9)
    # beta_tilde_n = (1 - abar_{n-1}) / (1 - abar_n) beta_n (Ho et al. 2020, eq. 7)
    abar = np.exp(log_abar)
    np.testing.assert_allclose(ddpm.betas_tilde().numpy(), (1 - abar[:-1]) / (1 - abar[1:]) * betas, rtol=1e-10)
    assert float(ddpm.betas_tilde()[0]) == 0.0


# --- the coefficients where a field reads them: one time, a prepared grid, one time per sample -----------


def _f_and_g2(process, t: float) -> tuple[float, float]:
    """``f`` and ``g^2`` in closed form (the tables above) at one time."""
    if isinstance(process, VP):
        beta = BETA_MIN + t * (BETA_MAX - BETA_MIN)
        return -beta / 2, beta
    if isinstance(process, EDM):
        return 0.0, 2 * t
    if isinstance(process, OU):
        return -0.5, 1.0
    if isinstance(process, VE):
        log_ratio = math.log(50.0 / 0.01)
        return 0.0, 2 * (0.01 * (50.0 / 0.01) ** t) ** 2 * log_ratio
    assert isinstance(process, Linear)
    return -1 / (1 - t), 2 * t / (1 - t)


@pytest.mark.parametrize("process", [VP(), EDM(), OU(), VE(), Linear()], ids=["vp", "edm", "ou", "ve", "linear"])
def test_field_velocity_is_the_probability_flow_drift(process):
    """``v = f x - g^2 s / 2`` (Song et al. 2021, eq. 13) with ``f``, ``g^2`` in closed form, whether the field
    reads its coefficients at one time or from a grid prepared with ``at_times`` (``CoefficientTable``)."""
    from scoredyn.core.fields import AnalyticField
    from scoredyn.core.targets import mog6

    target = mog6()
    field = AnalyticField(target, process)
    times = [0.0371 * process.t_max, 0.2718 * process.t_max, 0.8660 * process.t_max]
    prepared = field.at_times(torch.tensor(times, dtype=torch.float64))
    for t in times:
        x = target.noised(process, t).sample(16, torch.Generator().manual_seed(3))
        f, g2 = _f_and_g2(process, t)
        want = f * x - 0.5 * g2 * field.score(x, t)
        scale = float(want.abs().max())  # alpha' x0hat - (sigma^2)' s / 2 rounds differently: 1e-10 of the scale
        torch.testing.assert_close(field.velocity(x, t), want, rtol=1e-10, atol=1e-10 * scale)
        torch.testing.assert_close(prepared.velocity(x, torch.tensor(t, dtype=torch.float64)), want,
                                   rtol=1e-10, atol=1e-10 * scale)  # fmt: skip


@pytest.mark.parametrize(
    "source, dest", [(VP(), EDM()), (EDM(), VP()), (VP(), Linear())], ids=["vp->edm", "edm->vp", "vp->linear"]
)
def test_on_process_at_per_sample_and_prepared_times(source, dest):
    """A field read on another process at equal ``sigma / alpha`` (Kingma et al. 2021, sec. 3.3) is the
    exact field there: ``s_new(x, t) = c s_old(c x, u)`` with ``c = alpha_old(u) / alpha_new(t)``. Checked
    with one time per sample, one time per call, and on a grid prepared with ``at_times`` (the vectorised
    map of the times); ``u`` comes from a 200-halving bisection, exact to float64, so 1e-8 relative
    covers the rounding."""
    from scoredyn.core.fields import AnalyticField, OnProcess
    from scoredyn.core.targets import random_mixture

    target = random_mixture(2, 3, seed=4)
    moved, exact = OnProcess(AnalyticField(target, source), dest), AnalyticField(target, dest)
    sigma_hat = torch.tensor([0.05, 0.4, 1.3, 6.0], dtype=torch.float64)
    t = dest.sigma_hat_to_t(sigma_hat)
    x = torch.cat([target.noised(dest, ti).sample(1, torch.Generator().manual_seed(i)) for i, ti in enumerate(t)])
    for method in ("score", "denoise", "eps"):
        want = torch.cat([getattr(exact, method)(x[i : i + 1], t[i]) for i in range(4)])
        scale = float(want.abs().max())
        got = getattr(moved, method)(x, t)  # one time per sample
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-8 * scale, msg=method)
        got = torch.cat([getattr(moved, method)(x[i : i + 1], t[i]) for i in range(4)])  # one time per call
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-8 * scale, msg=method)
        prepared = moved.at_times(t)
        got = torch.cat([getattr(prepared, method)(x[i : i + 1], t[i]) for i in range(4)])
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-8 * scale, msg=method)
