"""Run folders: what a training run leaves behind, and the trained field rebuilt from it alone.

A run folder holds ``run.json`` (the config and what is needed to rebuild the field: data moments,
``sigma_data``, the parameterization), ``config.toml``, ``metrics.jsonl`` and ``checkpoints/``; an
exported model holds ``run.json`` and ``model.safetensors`` (the EMA weights alone). Shipped models
live in ``src/scoredyn/pretrained/<name>`` and are found by name (``PRETRAINED``).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.fields import PARAMETERIZATIONS, NetworkField, network_field
from ..core.registry import resolve_process
from ..core.targets import GaussianMixture
from ..util.files import atomic_write_bytes, atomic_write_json, read_json
from ..util.messages import one_line
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
    "check_run_info",
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
        raise ValueError(f"{run_file} has an invalid config: {one_line(err, 120)}") from None


def load_trained(directory: str | os.PathLike, *, ema: bool = True, device: str = "cpu") -> TrainedModel:
    """Rebuild the trained field of a run folder (``run.json`` + the newest good checkpoint, or a
    ``model.safetensors`` with the weights alone, as shipped models have); see ``read_run``."""
    directory, info, config = read_run(directory)
    check_run_info(info, directory / RUN_FILE)
    energy = info["parameterization"] == "energy"
    try:  # the network's shapes first, on the meta device: a config asking for a huge net allocates nothing
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in _build(config, info, energy).state_dict().items()}
    except (TypeError, ValueError, RuntimeError) as err:
        why = one_line(err, 160)
        raise ValueError(f"{directory / RUN_FILE}: its config does not build a network ({why})") from None
    sidecar, skipped = newest_good_checkpoint(directory / "checkpoints")
    if sidecar is None and skipped and not (directory / "model.safetensors").exists():
        more = f" (and {len(skipped) - 1} older, also unusable)" if len(skipped) > 1 else ""
        raise ValueError(f"{directory} has no usable checkpoint: {skipped[0]}{more}")
    for why in skipped:  # a corrupt newest checkpoint falls back to an older good one
        warnings.warn(f"skipping checkpoint: {why}", stacklevel=2)
    weights = sidecar
    if sidecar is not None:
        tensors, meta = load_checkpoint(sidecar)
        step = meta["step"]
        group = "ema" if ema else "model"
        if group not in tensors:
            raise ValueError(f"checkpoint {sidecar} holds no {group} weights (its groups: {', '.join(tensors)})")
        if ema:
            prefix = "module."
            state = {k[len(prefix) :]: v for k, v in tensors["ema"].items() if k.startswith(prefix)}
        else:
            state = tensors["model"]
    elif (directory / "model.safetensors").exists():
        from .checkpoints import read_tensors

        weights = directory / "model.safetensors"
        state, step = read_tensors(weights), info.get("step", 0)
        if not _is_int(step) or step < 0:
            raise ValueError(f"{directory / RUN_FILE}: its step must be an integer >= 0, got {step!r}")
    else:
        raise ValueError(f"{directory} has no checkpoint and no model.safetensors")
    _check_weights(state, shapes, weights, directory / RUN_FILE)
    net = _build(config, info, energy)
    net.load_state_dict(state)
    net.eval().requires_grad_(False).to(device)
    process = resolve_process(config.objective.process)
    field_ = network_field(net, process, info["parameterization"], sigma_data=info["sigma_data"])
    return TrainedModel(field_, config, info, step, str(directory))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def check_run_info(info: dict, run_file: Path) -> None:
    """Check what rebuilding the field reads from ``run.json``, before anything is built: the keys of
    ``RUN_KEYS`` with their types, the data's moments (``dim`` numbers, a ``dim x dim`` covariance) and
    a data file's standardization (``dim`` means, ``dim`` positive scales). A ValueError names the key."""
    missing = [k for k in RUN_KEYS if k not in info]
    if missing:
        raise ValueError(f"{run_file} is not a run file: it lacks {', '.join(missing)}")

    def bad(key: str, want: str) -> ValueError:
        return ValueError(f"{run_file}: {key} must be {want}, got {str(info.get(key))[:60]!r}")

    dim = info["dim"]
    if not _is_int(dim) or dim < 1:
        raise bad("dim", "an integer >= 1")
    if not _is_int(info["num_classes"]) or info["num_classes"] < 0:
        raise bad("num_classes", "an integer >= 0")
    if info["parameterization"] not in PARAMETERIZATIONS:
        raise bad("parameterization", f"one of {', '.join(PARAMETERIZATIONS)}")
    if not _is_number(info["sigma_data"]) or info["sigma_data"] < 0:
        raise bad("sigma_data", "a finite number >= 0")
    for key, size in (("data_mean", dim), ("data_cov", dim * dim)):
        if key in info and not _numbers(info[key], size):
            raise bad(key, f"{size} finite numbers")
    if "data_file" in info and not isinstance(info["data_file"], dict):
        raise bad("data_file", "an object")
    standardize = info.get("data_file", {}).get("standardize")
    if standardize is not None:
        ok = isinstance(standardize, dict) and all(_numbers(standardize.get(k), dim) for k in ("mean", "std"))
        if not ok or min(_flat(standardize["std"])) <= 0:
            raise bad("data_file", f"a standardization of {dim} means and {dim} positive scales")


def _flat(v) -> list:
    return [y for x in v for y in _flat(x)] if isinstance(v, list) else [v]


def _numbers(v, size: int) -> bool:
    """``v`` is a (possibly nested) list of exactly ``size`` finite numbers."""
    if not isinstance(v, list):
        return False
    flat = _flat(v)
    return len(flat) == size and all(_is_number(x) for x in flat)


def _build(config: TrainConfig, info: dict, energy: bool):
    return build_net(config.model.net, info["dim"], info["num_classes"], energy=energy, **net_kwargs(config))


def _check_weights(state: dict, shapes: dict, weights: Path, run_file: Path) -> None:
    """The weights are those of the network ``run_file`` describes (names and shapes), and finite."""
    missing = sorted(set(shapes) - set(state))
    unexpected = sorted(set(state) - set(shapes))
    wrong = [k for k in shapes if k in state and tuple(state[k].shape) != shapes[k]]
    if missing or unexpected or wrong:
        what = (f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}" if unexpected
                else f"{wrong[0]!r} is {tuple(state[wrong[0]].shape)}, the network's {shapes[wrong[0]]}")  # fmt: skip
        raise ValueError(f"{weights} does not fit the network of {run_file}: {what}")
    for key, tensor in state.items():  # weights, unlike a checkpoint's other entries, are always finite
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{weights}: weight {key!r} holds NaN or infinite values")


def export_model(run_dir: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Write the EMA weights of a run's newest checkpoint as ``dest/model.safetensors`` beside a
    copy of its ``run.json`` (with the step): a small folder ``load_trained`` reads (no optimizer).
    Each file is written atomically; a folder this call made is removed again if a write fails."""
    from safetensors.torch import save

    model = load_trained(run_dir)
    dest = Path(dest)
    state = {k: v.detach().cpu().contiguous() for k, v in model.field.net.state_dict().items()}
    data = save(state)  # in memory first: a failed write raises OSError, not a serializer's own error
    made = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write_bytes(dest / "model.safetensors", data)
        atomic_write_json(dest / RUN_FILE, {**model.info, "step": model.step})
    except BaseException:
        if made:
            for f in (dest / "model.safetensors", dest / RUN_FILE):
                f.unlink(missing_ok=True)
            dest.rmdir()
        raise
    return dest
