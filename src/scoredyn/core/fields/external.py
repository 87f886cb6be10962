"""Models from elsewhere as score fields: every sampler, likelihood and diagnostic then runs on them.

Three conventions cover what people train:

- ``from_denoiser(D, process)``: a denoiser ``D(x_hat, sigma_hat) -> x0hat`` in the EDM / k-diffusion
  convention (Karras et al. 2022, eq. 2: ``x_hat = x0 + sigma_hat eps``). Under any process
  ``x / alpha = x0 + (sigma / alpha) eps``, so the model is read at ``(x / alpha, sigma / alpha)``.
- ``from_diffusers(unet, scheduler)``: a diffusers ``UNet2DModel`` / ``UNet1DModel`` with the config of
  a ``DDPMScheduler``, ``DDIMScheduler`` or ``EulerDiscreteScheduler``. The process is the scheduler's
  discrete schedule (``DDPMSchedule``, whose time ``t = k + 1`` is diffusers' timestep index ``k``), so
  the model is called at exactly the timesteps it was trained on whenever a grid lands on integers.
- ``from_callable(model, parameterization, process)``: ``model(x, t) -> out`` with ``x`` (N, D) in the
  process's own coordinates and ``t`` (N,) its times, predicting ``eps``, ``x0``, ``v``, the score
  itself, or the flow velocity.

Each turns the model's output into ``x0hat`` and ``eps_hat`` with the conversions of ``network.py``
(written once), and the score follows: ``s = -eps_hat / sigma``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..processes import EDM, DDPMSchedule, Process
from .base import PredictingField, Prediction
from .coefficients import coefficients, per_sample_time
from .network import output_to_x0_eps

__all__ = [
    "DenoiserField",
    "CallableField",
    "DiffusersField",
    "CALLABLE_PARAMETERIZATIONS",
    "from_denoiser",
    "from_callable",
    "from_diffusers",
]

#: What ``from_callable`` accepts: ``score`` is the score ``s`` itself (not ``sigma s`` as for the
#: project's own networks), ``flow`` the velocity ``alpha' x0 + sigma' eps``.
CALLABLE_PARAMETERIZATIONS: tuple[str, ...] = ("eps", "x0", "v", "score", "flow")

#: diffusers' ``prediction_type`` -> the parameterization it names.
DIFFUSERS_PREDICTIONS: dict[str, str] = {"epsilon": "eps", "v_prediction": "v", "sample": "x0"}


class _ModelField(PredictingField):
    """A field read from one model call per evaluation: subclasses give ``(x0hat, eps_hat)``."""

    def x0_and_eps(self, x: Tensor, t: Tensor, a: Tensor, s: Tensor, da: Tensor, ds: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def predict(self, x: Tensor, t: float | Tensor, y: Tensor | None = None) -> Prediction:
        """``x0hat`` and ``eps_hat`` at ``x`` (N, D) and ``t`` (a scalar or (N,)); ``y`` is not used."""
        t = per_sample_time(t, x.shape[0]).to(device=x.device)
        a, s, da, ds = coefficients(self.process, t, x)
        x0, eps = self.x0_and_eps(x, t, a, s, da, ds)
        return Prediction(x, a, s, da, ds, x0, eps)


def _in_dtype_of(model: Any, x: Tensor) -> torch.dtype:
    """The dtype a module computes in (its first parameter's), else ``x``'s."""
    if isinstance(model, nn.Module):
        param = next(model.parameters(), None)
        if param is not None:
            return param.dtype
    return x.dtype


def _checked_output(out: Any, x: Tensor, what: str) -> Tensor:
    if not isinstance(out, Tensor) or out.shape != x.shape:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"{what} must return a tensor of the input's shape {tuple(x.shape)}, got {got}")
    return out.to(x.dtype)


class DenoiserField(_ModelField):
    """A denoiser ``D(x_hat, sigma_hat) -> x0hat`` (EDM / k-diffusion convention) as the field of
    ``process``: ``x0hat(x, t) = D(x / alpha, sigma / alpha)`` (Karras et al. 2022, eq. 2-3; the
    variance-exploding view of any process)."""

    def __init__(self, denoiser: Callable[[Tensor, Tensor], Tensor], process: Process | None = None) -> None:
        if not callable(denoiser):
            raise ValueError(f"denoiser must be callable, got {type(denoiser).__name__}")
        self.denoiser, self.process = denoiser, process if process is not None else EDM()

    def x0_and_eps(self, x, t, a, s, da, ds):
        dtype = _in_dtype_of(self.denoiser, x)
        sigma_hat = (s / a)[:, 0]
        x0 = _checked_output(self.denoiser((x / a).to(dtype), sigma_hat.to(dtype)), x, "the denoiser")
        return x0, (x - a * x0) / s


class CallableField(_ModelField):
    """``model(x, t) -> out`` in one of ``CALLABLE_PARAMETERIZATIONS`` as the field of ``process``;
    ``x`` (N, D) in the process's coordinates, ``t`` (N,) its times."""

    def __init__(self, model: Callable[[Tensor, Tensor], Tensor], parameterization: str, process: Process) -> None:
        if not callable(model):
            raise ValueError(f"model must be callable, got {type(model).__name__}")
        if parameterization not in CALLABLE_PARAMETERIZATIONS:
            choices = ", ".join(CALLABLE_PARAMETERIZATIONS)
            raise ValueError(f"parameterization must be one of {choices}, got {parameterization!r}")
        if not isinstance(process, Process):
            raise ValueError(f"process must be a Process, got {type(process).__name__}")
        self.model, self.parameterization, self.process = model, parameterization, process

    def x0_and_eps(self, x, t, a, s, da, ds):
        dtype = _in_dtype_of(self.model, x)
        out = _checked_output(self.model(x.to(dtype), t.to(dtype)), x, "the model")
        if self.parameterization == "score":  # network.py's "score" is sigma s
            return output_to_x0_eps("score", s * out, x, a, s, da, ds, s / a)
        return output_to_x0_eps(self.parameterization, out, x, a, s, da, ds, s / a)


def scheduler_process(config: Mapping[str, Any] | Any) -> DDPMSchedule:
    """The discrete schedule of a diffusers scheduler (or its ``config``): ``num_train_timesteps``,
    ``beta_start``, ``beta_end`` and ``beta_schedule`` (``linear``, ``scaled_linear`` or
    ``squaredcos_cap_v2``, which is Nichol & Dhariwal's cosine)."""
    config = dict(getattr(config, "config", config))
    if config.get("trained_betas") is not None:
        return DDPMSchedule(betas=torch.as_tensor(config["trained_betas"], dtype=torch.float64))
    schedule = {"linear": "linear", "scaled_linear": "scaled_linear", "squaredcos_cap_v2": "cosine"}.get(
        config.get("beta_schedule", "linear")
    )
    if schedule is None:
        raise ValueError(
            f"beta_schedule {config.get('beta_schedule')!r} is not supported: use linear, scaled_linear or "
            "squaredcos_cap_v2 (or trained_betas)"
        )
    return DDPMSchedule(
        int(config.get("num_train_timesteps", 1000)),
        schedule,
        beta_start=float(config.get("beta_start", 1e-4)),
        beta_end=float(config.get("beta_end", 0.02)),
    )


class DiffusersField(_ModelField):
    """A diffusers ``UNet2DModel`` / ``UNet1DModel`` and its scheduler's config as a field of the
    scheduler's discrete schedule: at time ``t`` the UNet is called at timestep ``t - 1`` (diffusers'
    index ``k`` is ``t = k + 1``, ``DDPMSchedule``) on particles reshaped to its sample shape, and its
    ``prediction_type`` (``epsilon``, ``v_prediction`` or ``sample``) is converted.

    Args:
        unet: the model; called as ``unet(sample, timestep).sample``.
        scheduler: a scheduler or its config (a mapping).
        sample_shape: ``(C, H, W)`` or ``(C, L)``; by default from ``unet.config`` (``in_channels``
            and ``sample_size``; 1-D for a class named ``UNet1D...``).
    """

    def __init__(self, unet: Any, scheduler: Any, *, sample_shape: tuple[int, ...] | None = None) -> None:
        config = dict(getattr(scheduler, "config", scheduler))
        prediction = config.get("prediction_type", "epsilon")
        if prediction not in DIFFUSERS_PREDICTIONS:
            raise ValueError(f"prediction_type {prediction!r} is not supported: use {', '.join(DIFFUSERS_PREDICTIONS)}")
        self.unet, self.parameterization = unet, DIFFUSERS_PREDICTIONS[prediction]
        self.process = scheduler_process(config)
        self.sample_shape = tuple(sample_shape) if sample_shape is not None else _unet_sample_shape(unet)
        self.dim = math.prod(self.sample_shape)

    def x0_and_eps(self, x, t, a, s, da, ds):
        if x.shape[1] != self.dim:
            raise ValueError(f"particles of dimension {x.shape[1]} for a UNet of sample shape {self.sample_shape}")
        dtype = _in_dtype_of(self.unet, x)
        sample = x.reshape(x.shape[0], *self.sample_shape).to(dtype)
        out = self.unet(sample, (t - 1.0).to(dtype)).sample
        out = _checked_output(out.reshape(x.shape[0], -1), x, "the UNet")
        return output_to_x0_eps(self.parameterization, out, x, a, s, da, ds, s / a)


def _unet_sample_shape(unet: Any) -> tuple[int, ...]:
    config = getattr(unet, "config", None)
    if config is None or "sample_size" not in config or "in_channels" not in config:
        raise ValueError("the UNet's config has no sample_size / in_channels: pass sample_shape=")
    size, channels = config["sample_size"], int(config["in_channels"])
    if "1D" in type(unet).__name__:
        return (channels, int(size))
    hw = (int(size), int(size)) if isinstance(size, int) else tuple(int(v) for v in size)
    return (channels, *hw)


def from_denoiser(denoiser: Callable[[Tensor, Tensor], Tensor], process: Process | None = None) -> DenoiserField:
    """The field of a denoiser ``D(x_hat, sigma_hat)`` in the EDM / k-diffusion convention, on
    ``process`` (default ``EDM()``, where ``x_hat = x`` and ``sigma_hat = t``)."""
    return DenoiserField(denoiser, process)


def from_callable(model: Callable[[Tensor, Tensor], Tensor], parameterization: str, process: Process) -> CallableField:
    """The field of ``model(x, t)`` predicting ``parameterization`` (``CALLABLE_PARAMETERIZATIONS``)
    under ``process``."""
    return CallableField(model, parameterization, process)


def from_diffusers(unet: Any, scheduler: Any, *, sample_shape: tuple[int, ...] | None = None) -> DiffusersField:
    """The field of a diffusers UNet trained with ``scheduler`` (``DiffusersField``)."""
    return DiffusersField(unet, scheduler, sample_shape=sample_shape)
