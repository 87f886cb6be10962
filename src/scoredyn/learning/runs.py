"""Run folders: what a training run leaves behind, and the trained field rebuilt from it alone.

A run folder holds ``run.json`` (the config and what is needed to rebuild the field: data moments,
``sigma_data``, the parameterization), ``config.toml``, ``metrics.jsonl`` and ``checkpoints/``; an
exported model holds ``run.json`` and ``model.safetensors`` (the EMA weights alone). Shipped models
live in ``src/scoredyn/pretrained/<name>`` and are found by name (``PRETRAINED``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.fields import NetworkField, network_field
from ..core.registry import resolve_process
from ..core.targets import GaussianMixture
from ..util.files import atomic_path, atomic_write_json, read_json
from .checkpoints import load_checkpoint, newest_good_checkpoint
from .config import TrainConfig, config_from_dict
from .nets import build_net

__all__ = [
    "RUN_FILE",
    "PRETRAINED",
    "PRETRAINED_DIR",
    "TrainedModel",
    "net_kwargs",
    "read_run",
    "load_trained",
    "export_model",
]

RUN_FILE = "run.json"
RUN_KEYS = ("config", "dim", "num_classes", "parameterization", "sigma_data")  # what rebuilding the field reads
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
PRETRAINED = ("digits",)  # shipped models: `--checkpoint digits` (benchmarks/train_digits.py made it)


@dataclass
class TrainedModel:
    """A trained run rebuilt from its folder: the field, the config, and the data's moments."""

    field: NetworkField
    config: TrainConfig
    info: dict
    step: int
    directory: str

    @property
    def field_dim(self) -> int:
        return int(self.info["dim"])

    def to_data(self, x: torch.Tensor) -> torch.Tensor:
        """The model's points in the data's own coordinates: a data file's standardization (recorded in
        ``run.json`` as ``data_file.standardize``) undone, ``mean + std * x``; else ``x`` itself."""
        standardize = (self.info.get("data_file") or {}).get("standardize")
        if not standardize:
            return x
        mean = torch.tensor(standardize["mean"], dtype=x.dtype, device=x.device)
        std = torch.tensor(standardize["std"], dtype=x.dtype, device=x.device)
        return mean + std * x

    def moments_law(self) -> GaussianMixture:
        """The Gaussian with the training data's mean and covariance (a start for the samplers).
        A jitter of ``1e-6`` times the mean variance keeps it proper where pixels are constant."""
        mean = torch.tensor(self.info["data_mean"], dtype=torch.float64)
        cov = torch.tensor(self.info["data_cov"], dtype=torch.float64).reshape(mean.numel(), -1)
        cov = cov + 1e-6 * float(torch.diagonal(cov).mean()) * torch.eye(mean.numel(), dtype=torch.float64)
        return GaussianMixture([1.0], mean[None], cov[None], name="data-moments")


def net_kwargs(config: TrainConfig) -> dict:
    """The options of ``build_net`` that ``config.model`` sets for its net (besides ``dim`` and the classes)."""
    mc = config.model
    if mc.net == "mlp":
        return {"hidden": mc.hidden, "depth": mc.depth, "emb_dim": mc.emb_dim}
    if mc.net == "egnn":
        return {"hidden": mc.hidden, "depth": mc.depth, "emb_dim": mc.emb_dim, "n_particles": mc.particles}
    return {"channels": mc.channels, "channel_mult": tuple(mc.channel_mult), "emb_dim": mc.emb_dim}


def read_run(directory: str | os.PathLike) -> tuple[Path, dict, TrainConfig]:
    """A run folder's ``run.json`` and config, without its weights: ``(folder, info, config)``.
    A name in ``PRETRAINED`` (e.g. ``"digits"``) that is not a run folder here is the shipped model."""
    directory = Path(directory)
    if not (directory / RUN_FILE).exists() and str(directory) in PRETRAINED:
        directory = PRETRAINED_DIR / str(directory)
    run_file = directory / RUN_FILE
    if not run_file.exists():
        raise ValueError(f"{directory} is not a scoredyn run folder (no {RUN_FILE})")
    info = read_json(run_file, "run file")
    if not isinstance(info, dict):
        raise ValueError(f"{run_file} is not a run file: it holds a {type(info).__name__}, not an object")
    if "config" not in info:
        raise ValueError(f"{run_file} is not a run file: it lacks config")
    try:
        return directory, info, config_from_dict(info["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{run_file} has an invalid config: {' '.join(str(err).split())[:120]}") from None


def load_trained(directory: str | os.PathLike, *, ema: bool = True, device: str = "cpu") -> TrainedModel:
    """Rebuild the trained field of a run folder (``run.json`` + the newest good checkpoint, or a
    ``model.safetensors`` with the weights alone, as shipped models have); see ``read_run``."""
    directory, info, config = read_run(directory)
    missing = [k for k in RUN_KEYS if k not in info]
    if missing:
        raise ValueError(f"{directory / RUN_FILE} is not a run file: it lacks {', '.join(missing)}")
    energy = info["parameterization"] == "energy"
    net = build_net(config.model.net, info["dim"], info["num_classes"], energy=energy, **net_kwargs(config))
    sidecar, skipped = newest_good_checkpoint(directory / "checkpoints")
    if sidecar is None and skipped and not (directory / "model.safetensors").exists():
        more = f" (and {len(skipped) - 1} older, also unusable)" if len(skipped) > 1 else ""
        raise ValueError(f"{directory} has no usable checkpoint: {skipped[0]}{more}")
    for why in skipped:  # a corrupt newest checkpoint falls back to an older good one
        warnings.warn(f"skipping checkpoint: {why}", stacklevel=2)
    weights = sidecar
    if sidecar is not None:
        tensors, meta = load_checkpoint(sidecar)
        step = int(meta["step"])
        if ema:
            prefix = "module."
            state = {k[len(prefix) :]: v for k, v in tensors["ema"].items() if k.startswith(prefix)}
        else:
            state = tensors["model"]
    elif (directory / "model.safetensors").exists():
        from .checkpoints import read_tensors

        weights = directory / "model.safetensors"
        state, step = read_tensors(weights), int(info.get("step", 0))
    else:
        raise ValueError(f"{directory} has no checkpoint and no model.safetensors")
    for key, tensor in state.items():  # weights, unlike a checkpoint's other entries, are always finite
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{weights}: weight {key!r} holds NaN or infinite values")
    try:
        net.load_state_dict(state)
    except RuntimeError as err:  # missing, unexpected or wrongly shaped tensors
        first = next((ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()), str(err))
        raise ValueError(f"{weights} does not fit the network of {directory / RUN_FILE}: {first[:160]}") from None
    net.eval().requires_grad_(False).to(device)
    process = resolve_process(config.objective.process)
    field_ = network_field(net, process, info["parameterization"], sigma_data=info["sigma_data"])
    return TrainedModel(field_, config, info, step, str(directory))


def export_model(run_dir: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Write the EMA weights of a run's newest checkpoint as ``dest/model.safetensors`` beside a
    copy of its ``run.json`` (with the step): a small folder ``load_trained`` reads (no optimizer)."""
    from safetensors.torch import save_file

    model = load_trained(run_dir)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.field.net.state_dict().items()}
    with atomic_path(dest / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    atomic_write_json(dest / RUN_FILE, {**model.info, "step": model.step})
    return dest
