"""The trainer: one loop that fits a network to any objective, and loads what it wrote.

One step (every objective of ``losses.py``):

1. draw the *global* batch of data indices and the objective's randomness (times, noise, probes)
   from the run's one generator — every rank draws the same, then takes its own slice, so a run on
   ``W`` processes follows the same trajectory as one process with the same global batch;
2. per-sample loss on the slice, mean, backward (``DistributedDataParallel`` averages the ranks);
3. a non-finite loss on any rank stops the run *before* the step: the last good checkpoint stays;
4. clip the gradient norm, warm the learning rate up linearly, AdamW step, EMA update
   (``torch.optim.swa_utils.AveragedModel``).

Checkpoints (``checkpoint.py``) hold the model, the EMA, the optimizer and the generator states, so
a resumed run continues bit for bit. A run folder holds ``run.json`` (the config and what is needed
to rebuild the field: data moments, ``sigma_data``, the parameterization), ``config.toml``,
``metrics.jsonl`` and ``checkpoints/``; ``load_trained(DIR)`` rebuilds the field from it alone.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..core.fields import NetworkField
from ..core.processes import Process
from ..core.registry import resolve_process
from ..core.targets import GaussianMixture
from ..util.files import atomic_write_json, atomic_write_text, file_mode
from ..util.versions import versions
from .checkpoints import (
    latest_checkpoint,
    load_checkpoint,
    optimizer_state_from_tensors,
    optimizer_state_to_tensors,
    restore_rng,
    rng_state_tensors,
    save_checkpoint,
)
from .config import TrainConfig, config_from_dict, config_to_dict, dump_toml, validate
from .data import Dataset, load_dataset
from .losses import Objective, make_objective
from .losses import check as check_objective
from .nets import build_net

__all__ = ["Trainer", "TrainResult", "TrainedModel", "TrainingDiverged", "load_trained", "read_run", "export_model"]

RUN_FILE = "run.json"
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
PRETRAINED = ("digits",)  # shipped models: `--checkpoint digits` (benchmarks/train_digits.py made it)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """What a run did: final step, last logged loss, wall time, samples per second, the log."""

    step: int
    loss: float
    seconds: float
    samples_per_second: float
    history: list[dict] = field(default_factory=list)


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: str) -> tuple[_Dist, torch.device]:
    """Join the process group ``torchrun`` set up (gloo on the CPU, NCCL on CUDA), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), torch.device(device)
    import torch.distributed as dist

    cuda = device.startswith("cuda")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return _Dist(dist.get_rank(), world), torch.device("cuda", local)
    return _Dist(dist.get_rank(), world), torch.device("cpu")


def _all_reduce(x: Tensor, dist_: _Dist, op: str = "sum") -> Tensor:
    if dist_.world == 1:
        return x
    import torch.distributed as dist

    x = x.clone()
    dist.all_reduce(x, op=dist.ReduceOp.MIN if op == "min" else dist.ReduceOp.SUM)
    return x


class Trainer:
    """Fit a network to an objective, as set by a ``TrainConfig``.

    Args:
        config: the run's configuration (``config.py``).
        resume: continue from the newest good checkpoint in ``config.run.out`` if there is one
            (its config must match, except ``optim.steps`` and the run's bookkeeping options).
        objective: an objective object to use instead of ``config.objective`` (for experiments).
        data: a ``Dataset`` to train on instead of ``load_dataset(config.data.name, ...)`` (samples in
            memory, e.g. equilibrium samples of a physical system); ``config.data.name`` labels it.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: bool = True,
        objective: Objective | None = None,
        data: Dataset | None = None,
    ) -> None:
        validate(config)
        self.config = config
        self.dist, self.device = _init_distributed(config.run.device)
        self.out = Path(config.run.out)
        # a Dataset in memory (e.g. equilibrium samples), else the named one; config.data.name labels it
        self.data: Dataset = data if data is not None else load_dataset(
            config.data.name, n=config.data.n, seed=config.data.seed
        )
        self.process: Process = resolve_process(config.objective.process)
        mc = config.model
        self.sigma_data = float(mc.sigma_data) if mc.sigma_data > 0 else float(self.data.x.std())
        self.objective = objective or make_objective(
            config.objective.name,
            self.process,
            time=config.objective.time,
            t_min=config.objective.t_min,
            p_mean=config.objective.p_mean,
            p_std=config.objective.p_std,
            probes=config.objective.probes,
            sigma_data=self.sigma_data,
        )
        self.parameterization = mc.parameterization or self.objective.default_parameterization
        if objective is None:
            check_objective(config.objective.name, self.process, self.parameterization, time=config.objective.time)
        if mc.conditional and self.data.num_classes == 0:
            raise ValueError(f"model.conditional needs labelled data; {config.data.name!r} has no labels")
        self.num_classes = self.data.num_classes if mc.conditional else 0

        torch.manual_seed(config.run.seed)  # network initialisation
        self.model = build_net(mc.net, self.data.x.shape[1], self.num_classes, **_net_kwargs(config)).to(self.device)
        ema_fn = get_ema_multi_avg_fn(config.optim.ema_decay)
        self.ema = AveragedModel(self.model, multi_avg_fn=ema_fn, use_buffers=True)
        oc = config.optim
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=oc.lr, betas=(oc.beta1, oc.beta2), weight_decay=oc.weight_decay
        )
        self.generator = torch.Generator(device=self.device).manual_seed(config.run.seed)
        self.step = 0
        self.x = self.data.x.to(self.device)
        self.y = self.data.labels.to(self.device) if self.num_classes else None
        if resume:
            self._resume()

    # --- the field -----------------------------------------------------------------------------

    def field(self, ema: bool = True) -> NetworkField:
        """The trained field (EMA weights by default) under the training process."""
        net = self.ema.module if ema else self.model
        return NetworkField(net, self.process, self.parameterization, sigma_data=self.sigma_data)

    def trained_model(self, ema: bool = True) -> TrainedModel:
        """The run as a ``TrainedModel`` (what ``load_trained`` returns), without a round trip
        through the disk: for sampling or judging a model while it trains."""
        return TrainedModel(self.field(ema), self.config, self._run_info(), self.step, str(self.out))

    # --- the loop ------------------------------------------------------------------------------

    def fit(self, steps: int | None = None) -> TrainResult:
        """Train until ``steps`` (default ``optim.steps``) steps have been taken in total."""
        cfg = self.config
        total = cfg.optim.steps if steps is None else steps
        batch, world = cfg.optim.batch_size, self.dist.world
        if batch % world:
            raise ValueError(f"optim.batch_size ({batch}) must be divisible by the number of processes ({world})")
        train_net = self._wrapped()
        train_field = NetworkField(train_net, self.process, self.parameterization, sigma_data=self.sigma_data)
        shard = slice(self.dist.rank * batch // world, (self.dist.rank + 1) * batch // world)
        if self.dist.main:
            self._write_run_files()
        history: list[dict] = []
        start_step, t0 = self.step, time.perf_counter()
        loss_sum, loss_count, last_loss = 0.0, 0, float("nan")
        amp = cfg.run.amp and self.device.type == "cuda"
        with _progress(cfg.run.progress and self.dist.main, total, self.step) as bar:
            while self.step < total:
                x0, y, draws = self._draw(batch)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                    per_sample = self.objective.loss(
                        train_field, x0[shard], None if y is None else y[shard], {k: v[shard] for k, v in draws.items()}
                    )
                loss = per_sample.float().mean()
                finite = _all_reduce(torch.isfinite(loss).to(torch.float32).reshape(1), self.dist, "min")
                if float(finite) < 1.0:
                    raise TrainingDiverged(
                        f"loss is not finite at step {self.step + 1} (lower optim.lr or raise objective.t_min); "
                        f"the last good checkpoint is kept"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = self._clip()
                for group in self.optimizer.param_groups:
                    group["lr"] = cfg.optim.lr * min(1.0, (self.step + 1) / max(cfg.optim.warmup, 1))
                self.optimizer.step()
                self.ema.update_parameters(self.model)
                self.step += 1

                global_loss = float(_all_reduce(loss.detach().reshape(1), self.dist)) / world
                loss_sum, loss_count, last_loss = loss_sum + global_loss, loss_count + 1, global_loss
                if self.step % cfg.run.log_every == 0 or self.step == total:
                    rate = (self.step - start_step) * batch / max(time.perf_counter() - t0, 1e-9)
                    record = {
                        "step": self.step,
                        "loss": loss_sum / loss_count,
                        "lr": self.optimizer.param_groups[0]["lr"],
                        "grad_norm": grad_norm,
                        "samples_per_s": rate,
                    }
                    loss_sum, loss_count = 0.0, 0
                    history.append(record)
                    if self.dist.main:
                        self._log(record)
                if self.step % cfg.run.ckpt_every == 0 or self.step == total:
                    self.save()
                elapsed = max(time.perf_counter() - t0, 1e-9)
                bar.advance(self.step, last_loss, (self.step - start_step) * batch / elapsed)
        seconds = time.perf_counter() - t0
        rate = (self.step - start_step) * batch / max(seconds, 1e-9)
        return TrainResult(self.step, last_loss, seconds, rate, history)

    def _wrapped(self) -> nn.Module:
        net: nn.Module = self.model
        if self.config.run.compile:
            net = torch.compile(net)
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        return net

    def _draw(self, batch: int) -> tuple[Tensor, Tensor | None, dict[str, Tensor]]:
        """The global batch and all its randomness, from the run's one generator."""
        g = self.generator
        idx = torch.randint(self.x.shape[0], (batch,), generator=g, device=self.device)
        x0 = self.x[idx]
        draws = self.objective.draw(x0, g)
        y = None
        if self.y is not None:  # label dropout: the null class, for classifier-free guidance
            drop = torch.rand(batch, generator=g, device=self.device) < self.config.model.label_dropout
            y = torch.where(drop, torch.full_like(self.y[idx], self.num_classes), self.y[idx])
        return x0, y, draws

    def _clip(self) -> float:
        clip = self.config.optim.grad_clip
        params = [p for p in self.model.parameters() if p.grad is not None]
        if clip > 0:
            return float(torch.nn.utils.clip_grad_norm_(params, clip))
        return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])))

    # --- files ---------------------------------------------------------------------------------

    def _run_info(self) -> dict:
        mean, cov = self.data.moments()
        return {
            "config": config_to_dict(self.config),
            "dim": int(self.x.shape[1]),
            "num_classes": self.num_classes,
            "image_shape": list(self.data.image_shape) if self.data.image_shape else None,
            "parameterization": self.parameterization,
            "sigma_data": self.sigma_data,
            "data_mean": mean.tolist(),
            "data_cov": cov.tolist(),
            "versions": versions(),
        }

    def _write_run_files(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out / RUN_FILE, self._run_info())
        atomic_write_text(self.out / "config.toml", dump_toml(self.config))

    def _log(self, record: dict) -> None:
        with open(self.out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def save(self) -> Path | None:
        """Write a checkpoint of the current step (rank 0; the others wait)."""
        path = None
        if self.dist.main:
            opt_tensors, opt_meta = optimizer_state_to_tensors(self.optimizer)
            tensors = {
                "model": self.model.state_dict(),
                "ema": self.ema.state_dict(),
                "optim": opt_tensors,
                "rng": rng_state_tensors({"train": self.generator}),
            }
            meta = {"optim": opt_meta, "config": config_to_dict(self.config), "versions": versions()}
            path = save_checkpoint(self.out / "checkpoints", self.step, tensors, meta, keep=self.config.run.keep)
        if self.dist.world > 1:
            import torch.distributed as dist

            dist.barrier()
        return path

    def _resume(self) -> None:
        sidecar = latest_checkpoint(self.out / "checkpoints")
        if sidecar is None:
            return
        tensors, meta = load_checkpoint(sidecar)
        _check_same_run(config_from_dict(meta["config"]), self.config)
        self.model.load_state_dict(tensors["model"])
        self.ema.load_state_dict(tensors["ema"])
        optimizer_state_from_tensors(self.optimizer, tensors["optim"], meta["optim"])
        restore_rng({"train": self.generator}, tensors["rng"])
        self.step = int(meta["step"])
        log = self.out / "metrics.jsonl"
        if self.dist.main and log.exists():  # drop records written after the checkpoint
            lines = [ln for ln in log.read_text().splitlines() if ln and json.loads(ln)["step"] <= self.step]
            atomic_write_text(log, "".join(ln + "\n" for ln in lines))


def _net_kwargs(config: TrainConfig) -> dict:
    mc = config.model
    if mc.net == "mlp":
        return {"hidden": mc.hidden, "depth": mc.depth, "emb_dim": mc.emb_dim}
    if mc.net == "egnn":
        return {"hidden": mc.hidden, "depth": mc.depth, "emb_dim": mc.emb_dim, "n_particles": mc.particles}
    return {"channels": mc.channels, "channel_mult": tuple(mc.channel_mult), "emb_dim": mc.emb_dim}


# bookkeeping options that may differ between a run and its resumption
_RESUMABLE = {"optim.steps", "run.progress", "run.log_every", "run.ckpt_every", "run.keep", "run.out", "run.device"}


def _check_same_run(saved: TrainConfig, current: TrainConfig) -> None:
    a, b = config_to_dict(saved), config_to_dict(current)
    for section, values in a.items():
        for key, value in values.items():
            name = f"{section}.{key}"
            if name not in _RESUMABLE and b[section][key] != value:
                raise ValueError(
                    f"cannot resume: {name} is {b[section][key]!r} but the checkpoint was trained with {value!r} "
                    f"(use a new --out, or the same setting)"
                )


class _progress:
    """A rich progress bar with the loss and the rate, or nothing (``enabled=False``)."""

    def __init__(self, enabled: bool, total: int, done: int) -> None:
        self.enabled, self.total, self.done = enabled, total, done

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4g}"),
                TextColumn("{task.fields[rate]:.0f} samples/s"),
                TimeRemainingColumn(),
                transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("train", total=self.total, completed=self.done, loss=math.nan, rate=0.0)
        return self

    def advance(self, step: int, loss: float, rate: float) -> None:
        if self.enabled and (step % 10 == 0 or step == self.total):
            self.bar.update(self.task, completed=step, loss=loss, rate=rate)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.stop()


# --- loading a run ---------------------------------------------------------------------------


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

    def moments_law(self) -> GaussianMixture:
        """The Gaussian with the training data's mean and covariance (a start for the samplers).
        A jitter of ``1e-6`` times the mean variance keeps it proper where pixels are constant."""
        mean = torch.tensor(self.info["data_mean"], dtype=torch.float64)
        cov = torch.tensor(self.info["data_cov"], dtype=torch.float64).reshape(mean.numel(), -1)
        cov = cov + 1e-6 * float(torch.diagonal(cov).mean()) * torch.eye(mean.numel(), dtype=torch.float64)
        return GaussianMixture([1.0], mean[None], cov[None], name="data-moments")


def read_run(directory: str | os.PathLike) -> tuple[Path, dict, TrainConfig]:
    """A run folder's ``run.json`` and config, without its weights: ``(folder, info, config)``.
    A name in ``PRETRAINED`` (e.g. ``"digits"``) that is not a run folder here is the shipped model."""
    directory = Path(directory)
    if not (directory / RUN_FILE).exists() and str(directory) in PRETRAINED:
        directory = PRETRAINED_DIR / str(directory)
    run_file = directory / RUN_FILE
    if not run_file.exists():
        raise ValueError(f"{directory} is not a scoredyn run folder (no {RUN_FILE})")
    try:
        info = json.loads(run_file.read_text())
        return directory, info, config_from_dict(info["config"])
    except (json.JSONDecodeError, KeyError) as err:
        raise ValueError(f"{run_file} is not a valid run file: {err}") from None


def load_trained(directory: str | os.PathLike, *, ema: bool = True, device: str = "cpu") -> TrainedModel:
    """Rebuild the trained field of a run folder (``run.json`` + the newest good checkpoint, or a
    ``model.safetensors`` with the weights alone, as shipped models have); see ``read_run``."""
    directory, info, config = read_run(directory)
    net = build_net(config.model.net, info["dim"], info["num_classes"], **_net_kwargs(config))
    sidecar = latest_checkpoint(directory / "checkpoints")
    if sidecar is not None:
        tensors, meta = load_checkpoint(sidecar)
        step = int(meta["step"])
        if ema:
            prefix = "module."
            state = {k[len(prefix) :]: v for k, v in tensors["ema"].items() if k.startswith(prefix)}
        else:
            state = tensors["model"]
    elif (directory / "model.safetensors").exists():
        from safetensors.torch import load_file

        state, step = load_file(str(directory / "model.safetensors")), int(info.get("step", 0))
    else:
        raise ValueError(f"{directory} has no checkpoint and no model.safetensors")
    net.load_state_dict(state)
    net.eval().requires_grad_(False).to(device)
    process = resolve_process(config.objective.process)
    field_ = NetworkField(net, process, info["parameterization"], sigma_data=info["sigma_data"])
    return TrainedModel(field_, config, info, step, str(directory))


def export_model(run_dir: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Write the EMA weights of a run's newest checkpoint as ``dest/model.safetensors`` beside a
    copy of its ``run.json`` (with the step): a small folder ``load_trained`` reads (no optimizer)."""
    from safetensors.torch import save_file

    model = load_trained(run_dir)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.field.net.state_dict().items()}
    tmp = dest / ".model.safetensors.tmp"
    save_file(state, str(tmp))
    os.chmod(tmp, file_mode())
    os.replace(tmp, dest / "model.safetensors")
    atomic_write_json(dest / RUN_FILE, {**model.info, "step": model.step})
    return dest
