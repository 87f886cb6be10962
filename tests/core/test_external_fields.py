"""Models from elsewhere as fields (``core/fields/external.py``), proven against the originals.

- ``from_callable`` in each parameterization, fed the exact mixture's own prediction, gives back the exact
  score (1e-10: float64 round-off of one conversion and its inverse).
- ``from_denoiser``: the exact EDM denoiser read on VP is VP's exact field.
- ``from_diffusers``: our ``ddim`` on a tiny random diffusers UNet equals diffusers' DDIM loop from the same
  noise (eta = 0), for the three prediction types. diffusers computes in float32 (its schedule and its
  arithmetic), we in float64 around the float32 UNet: they agree to about 1e-6 of the samples' largest
  value, bound at 1e-5 of it.
- k-diffusion's ``sample_heun`` and ``sample_dpmpp_2m`` on a tiny random denoiser equal our ``edm_heun`` and
  ``dpm_solver_2m`` on the same sigmas; both in float64, bound at 1e-10.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from scoredyn import fields
from scoredyn.core.fields import AnalyticField, from_callable, from_denoiser, from_diffusers
from scoredyn.core.processes import EDM, VP, DDPMSchedule
from scoredyn.core.targets import mog6
from scoredyn.samplers import ddim, ddpm_grid, dpm_solver_2m, edm_heun, karras_grid

TARGET = mog6()


def _points(n: int = 64, seed: int = 0) -> torch.Tensor:
    return 3.0 * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("parameterization", ["eps", "x0", "v", "score", "flow"])
@pytest.mark.parametrize("t", [0.05, 0.4, 0.9])
def test_from_callable_recovers_the_exact_score(parameterization, t):
    process = VP()
    exact = AnalyticField(TARGET, process)

    def model(x, tt):
        assert tt.shape == (x.shape[0],)  # one time per particle
        x0, eps, s = exact.denoise(x, tt[0]), exact.eps(x, tt[0]), exact.score(x, tt[0])
        a, sg = process.alpha(tt[0]), process.sigma(tt[0])
        da, ds = process.d_alpha(tt[0]), process.d_sigma(tt[0])
        return {"eps": eps, "x0": x0, "v": a * eps - sg * x0, "score": s, "flow": da * x0 + ds * eps}[parameterization]

    field = from_callable(model, parameterization, process)
    x = _points()
    torch.testing.assert_close(field.score(x, t), exact.score(x, t), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(field.denoise(x, t), exact.denoise(x, t), rtol=1e-10, atol=1e-10)


def test_from_denoiser_reads_the_edm_denoiser_on_any_process():
    edm, vp = AnalyticField(TARGET, EDM()), AnalyticField(TARGET, VP())
    calls = []

    def denoiser(x_hat, sigma_hat):
        calls.append(sigma_hat)
        return edm.denoise(x_hat, sigma_hat)

    x = _points()
    for t in (0.02, 0.3, 0.8):
        torch.testing.assert_close(from_denoiser(denoiser, VP()).score(x, t), vp.score(x, t), rtol=1e-10, atol=1e-10)
    # on EDM (the default) sigma_hat is the time itself
    torch.testing.assert_close(from_denoiser(denoiser).score(x, 1.5), edm.score(x, 1.5), rtol=1e-12, atol=1e-12)
    assert float(calls[-1][0]) == 1.5
    assert fields.from_denoiser is from_denoiser  # scoredyn.fields.from_denoiser, as documented


def test_bad_models_are_refused_with_one_line():
    with pytest.raises(ValueError, match="parameterization"):
        from_callable(lambda x, t: x, "velocity", VP())
    with pytest.raises(ValueError, match="callable"):
        from_denoiser(3.0)
    field = from_callable(lambda x, t: x[:, :1], "eps", VP())
    with pytest.raises(ValueError, match="shape"):
        field.score(_points(4), 0.5)


# --- diffusers -------------------------------------------------------------------------------------

diffusers = pytest.importorskip("diffusers")


def _tiny_unet2d(seed: int = 0):
    torch.manual_seed(seed)
    unet = diffusers.UNet2DModel(
        sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )  # fmt: skip
    with torch.no_grad():  # random weights of a visible size: a freshly initialized UNet's output layer is zero
        for p in unet.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return unet.eval()


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction", "sample"])
def test_ddim_on_a_diffusers_unet_equals_the_diffusers_loop(prediction):
    unet = _tiny_unet2d()
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, clip_sample=False, prediction_type=prediction)
    field = from_diffusers(unet, scheduler)
    assert field.sample_shape == (1, 8, 8) and isinstance(field.process, DDPMSchedule)
    noise = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))

    scheduler.set_timesteps(10)  # "leading" spacing, final alpha 1
    x = noise.clone()
    with torch.no_grad():
        for k in scheduler.timesteps:
            x = scheduler.step(unet(x, k).sample, k, x, eta=0.0).prev_sample
        ours = ddim(field, noise.reshape(3, -1).double(), ddpm_grid(field.process, 10, "leading")).x
    scale = float(x.abs().max())  # the samples' scale: float32 carries 7 digits of it
    torch.testing.assert_close(ours.reshape(3, 1, 8, 8).float(), x, rtol=0, atol=1e-5 * scale)
    assert (x - noise).abs().max() > 0.1  # the loop moved: the comparison is not of two untouched starts


def test_diffusers_schedules_map_onto_the_process():
    for config in (
        {"beta_schedule": "linear"},
        {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
        {"beta_schedule": "squaredcos_cap_v2"},
    ):
        scheduler = diffusers.DDPMScheduler(num_train_timesteps=1000, **config)
        field = from_diffusers(_tiny_unet2d(), scheduler)
        k = torch.tensor([0, 10, 500, 999])
        ours = field.process.alpha(k.double() + 1.0) ** 2  # diffusers' index k is our t = k + 1
        # diffusers' float32 cumulative product of 1000 factors drifts by up to ~1e-5 (relative) at its end
        torch.testing.assert_close(ours.float(), scheduler.alphas_cumprod[k], rtol=3e-5, atol=0)
    euler = diffusers.EulerDiscreteScheduler(num_train_timesteps=1000)
    field = from_diffusers(_tiny_unet2d(), euler)
    sigmas = field.process.sigma_hat(torch.arange(1, 1001, dtype=torch.float64)).flip(0)
    # diffusers forms 1 - abar in float32: where abar ~ 1 (sigma ~ 0.01) that keeps ~4 digits
    torch.testing.assert_close(sigmas.float(), euler.sigmas[:-1], rtol=2e-4, atol=0)
    with pytest.raises(ValueError, match="prediction_type"):
        from_diffusers(_tiny_unet2d(), {"prediction_type": "flow"})


def test_a_diffusers_unet1d_is_called_on_its_sample_shape():
    torch.manual_seed(0)
    unet = diffusers.UNet1DModel(  # the smallest of diffusers' 1-D layouts that runs (Dance Diffusion's blocks)
        sample_size=64, in_channels=2, out_channels=2, extra_in_channels=64, block_out_channels=(32, 32, 64),
        layers_per_block=1, down_block_types=("DownBlock1DNoSkip", "DownBlock1D", "AttnDownBlock1D"),
        up_block_types=("AttnUpBlock1D", "UpBlock1D", "UpBlock1DNoSkip"), mid_block_type="UNetMidBlock1D",
        time_embedding_type="fourier", flip_sin_to_cos=True, use_timestep_embedding=False,
    ).eval()  # fmt: skip
    field = from_diffusers(unet, diffusers.DDPMScheduler(num_train_timesteps=1000))
    assert field.sample_shape == (2, 64)
    x = torch.randn(4, 128, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        eps = field.eps(x, 250.0)
        expected = unet(x.reshape(4, 2, 64).float(), torch.full((4,), 249.0)).sample.reshape(4, -1)
    torch.testing.assert_close(eps, expected.double(), rtol=0, atol=1e-6)


# --- k-diffusion ---------------------------------------------------------------------------------------


def _k_diffusion_sampling():
    """k-diffusion's ``sampling`` module alone: its package ``__init__`` imports a training stack
    (torchvision, kornia, clean-fid) that the sampling loops do not use."""
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("k-diffusion is not installed (pip install --no-deps k-diffusion)")
    pytest.importorskip("torchsde")
    pytest.importorskip("tqdm")
    package = types.ModuleType("k_diffusion")
    package.__path__ = list(spec.submodule_search_locations)
    utils = types.ModuleType("k_diffusion.utils")
    utils.append_dims = lambda x, n: x[(...,) + (None,) * (n - x.ndim)]
    package.utils = utils
    saved = {k: sys.modules.get(k) for k in ("k_diffusion", "k_diffusion.utils")}
    sys.modules.update({"k_diffusion": package, "k_diffusion.utils": utils})
    try:
        where = Path(package.__path__[0]) / "sampling.py"
        loader = importlib.util.spec_from_file_location("k_diffusion.sampling", where)
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return module


class TinyDenoiser(nn.Module):
    """A random EDM-preconditioned denoiser ``D = c_skip x + c_out F(c_in x, log(sigma) / 4)``."""

    def __init__(self, dim: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(dim + 1, 32), nn.SiLU(), nn.Linear(32, dim)).double()

    def forward(self, x, sigma):
        s = sigma.reshape(-1, 1)
        c_in, c_skip, c_out = 1 / (s**2 + 1).sqrt(), 1 / (s**2 + 1), s / (s**2 + 1).sqrt()
        return c_skip * x + c_out * self.net(torch.cat([c_in * x, s.log() / 4], dim=1))


@pytest.mark.parametrize("name", ["heun", "dpmpp_2m"])
def test_edm_heun_and_dpm_solver_equal_k_diffusion(name):
    kd = _k_diffusion_sampling()
    model = TinyDenoiser()
    field = from_denoiser(model, EDM())
    # on EDM t = sigma: k-diffusion's sigmas (0 appended) are our Karras grid, computed there in float32
    grid = kd.get_sigmas_karras(12, 0.002, 80.0, 7.0, device="cpu").double()
    torch.testing.assert_close(grid, karras_grid(EDM(), 12), rtol=2e-6, atol=0)
    x = 80.0 * torch.randn(16, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        theirs = getattr(kd, f"sample_{name}")(model, x.clone(), grid, disable=True)
        ours = (edm_heun if name == "heun" else dpm_solver_2m)(field, x.clone(), grid).x
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    assert (ours - x).abs().max() > 1.0


def test_samplers_and_the_likelihood_run_on_a_wrapped_model_as_on_the_original():
    """A wrapped model is a field like any other: on the exact denoiser read through ``from_denoiser``, the
    samplers (one of each kind) and the ODE likelihood give the exact field's numbers."""
    from scoredyn import log_likelihood, reverse_sde, uniform_grid, unipc

    process = VP()
    exact, edm = AnalyticField(TARGET, process), AnalyticField(TARGET, EDM())
    wrapped = from_denoiser(edm.denoise, process)
    grid = uniform_grid(process, 8)
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    torch.testing.assert_close(unipc(wrapped, x, grid).x, unipc(exact, x, grid).x, rtol=1e-9, atol=1e-9)
    runs = [reverse_sde(f, x, grid, generator=torch.Generator().manual_seed(5)).x for f in (wrapped, exact)]
    torch.testing.assert_close(*runs, rtol=1e-9, atol=1e-9)
    data = TARGET.sample(20, torch.Generator().manual_seed(6))
    prior = TARGET.noised(process, 1.0)
    ll = [log_likelihood(f, data, prior=prior, t0=1e-3, rtol=1e-8, atol=1e-8).logp for f in (wrapped, exact)]
    torch.testing.assert_close(*ll, rtol=1e-6, atol=1e-6)


def test_guidance_runs_on_a_wrapped_model_as_on_the_original():
    """Classifier guidance built on a wrapped denoiser gives the guided exact field's score."""
    from scoredyn.core.fields import ClassifierGuidance, mixture_classifier

    process = VP()
    exact, edm = AnalyticField(TARGET, process), AnalyticField(TARGET, EDM())
    wrapped = from_denoiser(edm.denoise, process)
    classifier = mixture_classifier(TARGET, process)
    x = _points()
    for t in (0.2, 0.6):
        guided = [ClassifierGuidance(f, classifier, 2, 3.0).score(x, t) for f in (wrapped, exact)]
        torch.testing.assert_close(*guided, rtol=1e-10, atol=1e-10)
