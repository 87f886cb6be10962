"""The trainer: one loop that fits a network to any objective.

One step (every objective of ``losses``):

1. draw the *global* batch of data indices and the objective's randomness (times, noise, probes)
   from the run's one generator — every rank draws the same, then takes its own slice, so a run on
   ``W`` processes follows the same trajectory as one process with the same global batch
   (``distributed``);
2. per-sample loss on the slice, mean, backward (``DistributedDataParallel`` averages the ranks);
3. a non-finite loss on any rank stops the run *before* the step: the last good checkpoint stays;
4. clip the gradient norm, warm the learning rate up linearly, AdamW step, EMA update
   (``torch.optim.swa_utils.AveragedModel``).

Checkpoints (``checkpoints``) hold the model, the EMA, the optimizer and the generator states, so
a resumed run continues bit for bit. The run folder it writes (``run.json``, ``config.toml``,
``metrics.jsonl``, ``checkpoints/``) is described in ``runs``, where ``load_trained`` reads it.
"""

from __future__ import annotations

import errno
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..core.fields import NetworkField, network_field
from ..core.processes import Process
from ..core.registry import resolve_process
from ..util.files import atomic_write_json, atomic_write_text
from ..util.messages import one_line
from ..util.progress import ProgressBar
from ..util.versions import versions
from .checkpoints import (
    load_checkpoint,
    newest_good_checkpoint,
    optimizer_state_from_tensors,
    optimizer_state_to_tensors,
    restore_rng,
    rng_state_tensors,
    save_checkpoint,
)
from .config import TrainConfig, config_from_dict, config_to_dict, dump_toml, validate
from .data import Dataset, load_dataset
from .distributed import all_reduce, barrier, data_parallel, init_distributed
from .losses import Objective, make_objective
from .nets import build_net
from .runs import RUN_FILE, TrainedModel, net_kwargs

__all__ = ["Trainer", "TrainResult", "TrainingDiverged"]


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
        self.ranks, self.device = init_distributed(config.run.device)
        self.out = Path(config.run.out)
        # a Dataset in memory (e.g. equilibrium samples), else the named one; config.data.name labels it
        self.data: Dataset = data if data is not None else load_dataset(
            config.data.name, n=config.data.n, seed=config.data.seed
        )
        if self.data.x.shape[0] < config.optim.batch_size:
            raise ValueError(
                f"{config.data.name} has {self.data.x.shape[0]} training points, fewer than the batch size "
                f"{config.optim.batch_size} (lower optim.batch_size, or give more points)"
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
            parameterization=mc.parameterization or None,
        )
        self.parameterization = mc.parameterization or self.objective.default_parameterization
        if mc.conditional and self.data.num_classes == 0:
            raise ValueError(f"model.conditional needs labelled data; {config.data.name!r} has no labels")
        self.num_classes = self.data.num_classes if mc.conditional else 0

        torch.manual_seed(config.run.seed)  # network initialisation
        energy = self.parameterization == "energy"  # a scalar net, differentiated by EnergyField
        self.model = build_net(mc.net, self.data.x.shape[1], self.num_classes, energy=energy, **net_kwargs(config))
        self.model = self.model.to(self.device)
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
        return network_field(net, self.process, self.parameterization, sigma_data=self.sigma_data)

    def trained_model(self, ema: bool = True) -> TrainedModel:
        """The run as a ``TrainedModel`` (what ``load_trained`` returns), without a round trip
        through the disk: for sampling or judging a model while it trains."""
        return TrainedModel(self.field(ema), self.config, self._run_info(), self.step, str(self.out))

    # --- the loop ------------------------------------------------------------------------------

    def fit(self, steps: int | None = None) -> TrainResult:
        """Train until ``steps`` (default ``optim.steps``) steps have been taken in total."""
        cfg = self.config
        total = cfg.optim.steps if steps is None else steps
        batch, world = cfg.optim.batch_size, self.ranks.world
        if batch % world:
            raise ValueError(f"optim.batch_size ({batch}) must be divisible by the number of processes ({world})")
        train_net = self._wrapped()
        train_field = network_field(train_net, self.process, self.parameterization, sigma_data=self.sigma_data)
        shard = slice(self.ranks.rank * batch // world, (self.ranks.rank + 1) * batch // world)
        if self.ranks.main:
            self._write_run_files()
        history: list[dict] = []
        start_step, t0 = self.step, time.perf_counter()
        loss_sum, loss_count, last_loss = 0.0, 0, float("nan")
        amp = cfg.run.amp and self.device.type == "cuda"
        bar = ProgressBar("train", total, enabled=cfg.run.progress and self.ranks.main, done=self.step, every=10,
                          columns=("loss {task.fields[loss]:.4g}", "{task.fields[rate]:.0f} samples/s"),
                          fields={"loss": math.nan, "rate": 0.0})  # fmt: skip
        with bar:
            while self.step < total:
                x0, y, draws = self._draw(batch)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                    per_sample = self.objective.loss(
                        train_field, x0[shard], None if y is None else y[shard], {k: v[shard] for k, v in draws.items()}
                    )
                loss = per_sample.float().mean()
                finite = all_reduce(torch.isfinite(loss).to(torch.float32).reshape(1), self.ranks, "min")
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

                global_loss = float(all_reduce(loss.detach().reshape(1), self.ranks)) / world
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
                    if self.ranks.main:
                        self._log(record)
                if self.step % cfg.run.ckpt_every == 0 or self.step == total:
                    self.save()
                elapsed = max(time.perf_counter() - t0, 1e-9)
                bar.update(self.step, loss=last_loss, rate=(self.step - start_step) * batch / elapsed)
        seconds = time.perf_counter() - t0
        rate = (self.step - start_step) * batch / max(seconds, 1e-9)
        return TrainResult(self.step, last_loss, seconds, rate, history)

    def _wrapped(self) -> nn.Module:
        net: nn.Module = self.model
        if self.config.run.compile:
            net = torch.compile(net)
        return data_parallel(net, self.ranks, self.device)

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
            **({"data_file": self.data.source} if self.data.source is not None else {}),
            "versions": versions(),
        }

    def _write_run_files(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "checkpoints").mkdir(exist_ok=True)  # a file in its place fails here, before any write
        atomic_write_json(self.out / RUN_FILE, self._run_info())
        atomic_write_text(self.out / "config.toml", dump_toml(self.config))

    def _log(self, record: dict) -> None:
        with open(self.out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def save(self) -> Path | None:
        """Write a checkpoint of the current step (rank 0; the others wait)."""
        path = None
        if self.ranks.main:
            opt_tensors, opt_meta = optimizer_state_to_tensors(self.optimizer)
            tensors = {
                "model": self.model.state_dict(),
                "ema": self.ema.state_dict(),
                "optim": opt_tensors,
                "rng": rng_state_tensors({"train": self.generator}),
            }
            meta = {"optim": opt_meta, "config": config_to_dict(self.config), "versions": versions()}
            path = save_checkpoint(self.out / "checkpoints", self.step, tensors, meta, keep=self.config.run.keep)
        barrier(self.ranks)
        return path

    def _resume(self) -> None:
        """Continue from the newest good checkpoint, if any; either way the log keeps only what the
        resumed state has done (a run killed before its first checkpoint starts its log again)."""
        folder = self.out / "checkpoints"
        if folder.exists() and not folder.is_dir():  # before the log is trimmed: nothing is touched
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(folder))
        sidecar, skipped = newest_good_checkpoint(folder)
        if sidecar is None and skipped:  # starting over would hide that the run's past is lost
            raise ValueError(f"{self.out} has checkpoints but none is usable ({skipped[0]}): "
                             "give --fresh to start over, or another --out")  # fmt: skip
        if sidecar is not None:
            tensors, meta = load_checkpoint(sidecar)
            if not isinstance(meta.get("config"), dict):
                raise ValueError(f"checkpoint {sidecar} holds no config to resume from")
            _check_same_run(config_from_dict(meta["config"]), self.config)
            try:
                self.model.load_state_dict(tensors["model"])
                self.ema.load_state_dict(tensors["ema"])
                optimizer_state_from_tensors(self.optimizer, tensors["optim"], meta["optim"])
                restore_rng({"train": self.generator}, tensors["rng"])
            except (KeyError, RuntimeError) as e:  # a group missing, or tensors of another network
                raise ValueError(f"checkpoint {sidecar} cannot be resumed: {one_line(e, 160)}") from None
            self.step = meta["step"]
        for why in skipped:  # only once the run goes on: a refused resume prints its error alone
            warnings.warn(f"skipping checkpoint: {why}", stacklevel=2)
        if self.ranks.main:
            trim_log(self.out / "metrics.jsonl", self.step)


def trim_log(path: Path, step: int) -> None:
    """Keep the records of ``path`` (JSON lines) up to ``step``: those logged after the state a run
    resumes from are logged again, and a line cut by a kill mid-write is dropped."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the tail of a write that a kill interrupted
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line)
    atomic_write_text(path, "".join(ln + "\n" for ln in kept))


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
