"""The trainer: exact resume (also after SIGKILL mid-write), NaN safety, DDP on gloo, configs.

Runs are tiny (a 2x32 MLP, batch 64, tens of steps): what is tested is bookkeeping, which is exact
on the CPU, so parameters are compared bit for bit. How well the trainer learns is tested in
``test_learning.py`` and measured in ``benchmarks/``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from scoredyn.learning import (
    TrainConfig,
    Trainer,
    TrainingDiverged,
    apply_overrides,
    config_to_dict,
    dump_toml,
    latest_checkpoint,
    load_checkpoint,
    load_trained,
)

SMALL = [
    "data.name=mog6",
    "data.n=2000",
    "model.hidden=32",
    "model.depth=2",
    "model.emb_dim=16",
    "optim.batch_size=64",
    "optim.steps=30",
    "optim.warmup=5",
    "optim.ema_decay=0.9",
    "run.ckpt_every=10",
    "run.log_every=5",
    "run.progress=false",
]


def small_config(out: Path, *extra: str) -> TrainConfig:
    return apply_overrides(TrainConfig(), [*SMALL, f"run.out={out}", *extra])


def state_of(trainer: Trainer) -> dict[str, torch.Tensor]:
    sd = {f"model.{k}": v.clone() for k, v in trainer.model.state_dict().items()}
    sd.update({f"ema.{k}": v.clone() for k, v in trainer.ema.state_dict().items()})
    for i, st in trainer.optimizer.state_dict()["state"].items():
        sd.update({f"optim.{i}.{k}": torch.as_tensor(v).clone() for k, v in st.items()})
    return sd


def assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def losses(out: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("a")
    trainer = Trainer(small_config(out))
    trainer.fit()
    return out, state_of(trainer)


def test_stop_and_resume_is_bitwise_identical(tmp_path, uninterrupted):
    ref_out, ref_state = uninterrupted
    first = Trainer(small_config(tmp_path))
    first.fit(steps=20)  # a stop at step 20 (its checkpoint is the last thing written)
    resumed = Trainer(small_config(tmp_path))
    assert resumed.step == 20
    resumed.fit()
    assert_bitwise_equal(state_of(resumed), ref_state)
    assert losses(tmp_path) == losses(ref_out)  # the log is continued, not duplicated


def test_sigkill_during_a_checkpoint_write_resumes_from_the_last_good_one(tmp_path, uninterrupted):
    """A process killed (SIGKILL, no cleanup) halfway through writing the step-20 tensors file."""
    ref_out, ref_state = uninterrupted
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.argv = ["x"]
        import scoredyn.learning.checkpoints as ck
        from scoredyn.learning import TrainConfig, apply_overrides
        from scoredyn.learning import Trainer
        import tempfile
        real = ck._write_atomic
        def dying(path, data):
            if path.name == "step-00000020.safetensors":  # the real writer's temp file, half written
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=ck._TMP_SUFFIX)
                os.write(fd, data[: len(data) // 2]); os.fsync(fd)
                os.kill(os.getpid(), signal.SIGKILL)
            real(path, data)
        ck._write_atomic = dying
        cfg = apply_overrides(TrainConfig(), {[*SMALL, f"run.out={tmp_path}"]!r})
        Trainer(cfg).fit()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env())
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    ckpts = tmp_path / "checkpoints"
    assert any(p.name.startswith(".step-00000020") for p in ckpts.iterdir())  # the half-written file
    assert latest_checkpoint(ckpts).name == "step-00000010.json"
    resumed = Trainer(small_config(tmp_path))
    assert resumed.step == 10
    resumed.fit()
    assert_bitwise_equal(state_of(resumed), ref_state)
    assert losses(tmp_path) == losses(ref_out)
    assert not any(p.name.startswith(".step-") for p in ckpts.iterdir())  # the debris is cleaned up


KILLS = {
    # before the first checkpoint (step 10): the log holds steps 5 (and 10 is not yet written)
    "before the first checkpoint": "step == 5 and where == 'log'",
    # a log line cut in the middle by the kill (step 15's record half written)
    "mid-way through a log line": "step == 15 and where == 'log-half'",
    # during the first checkpoint's tensors file
    "during the first checkpoint": "step == 10 and where == 'checkpoint'",
    # after the first checkpoint, with step 15 logged past it
    "after the first checkpoint": "step == 15 and where == 'log'",
}


@pytest.mark.parametrize("moment", list(KILLS))
def test_a_run_killed_at_any_moment_resumes_with_the_log_and_weights_of_an_uninterrupted_one(
    tmp_path, uninterrupted, moment
):
    """SIGKILL (no cleanup) at four moments around the first checkpoint; the same command run again
    ends with the uninterrupted run's weights bit for bit and its log: every step once, in order."""
    ref_out, ref_state = uninterrupted
    script = textwrap.dedent(
        f"""
        import json, os, signal, sys, tempfile
        import scoredyn.learning.checkpoints as ck
        import scoredyn.learning.trainer as tr
        from scoredyn.learning import TrainConfig, Trainer, apply_overrides

        def die(step, where):
            if {KILLS[moment]!r} and eval({KILLS[moment]!r}):
                os.kill(os.getpid(), signal.SIGKILL)

        real_log, real_write = tr.Trainer._log, ck._write_atomic
        def log(self, record):
            if record["step"] == 15 and {moment!r} == "mid-way through a log line":
                with open(self.out / "metrics.jsonl", "a") as fh:
                    line = json.dumps(record)
                    fh.write(line[: len(line) // 2]); fh.flush(); os.fsync(fh.fileno())
                die(record["step"], "log-half")
            real_log(self, record)
            die(record["step"], "log")
        def write(path, data):
            if path.name == "step-00000010.safetensors":
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=ck._TMP_SUFFIX)
                os.write(fd, data[: len(data) // 2]); os.fsync(fd)
                die(10, "checkpoint")
            real_write(path, data)
        tr.Trainer._log, ck._write_atomic = log, write
        Trainer(apply_overrides(TrainConfig(), {[*SMALL, f"run.out={tmp_path}"]!r})).fit()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env())
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    resumed = Trainer(small_config(tmp_path))
    resumed.fit()
    assert_bitwise_equal(state_of(resumed), ref_state)
    assert losses(tmp_path) == losses(ref_out)


class NaNAt:
    """An objective that turns NaN at one step (a diverging run, made deterministic)."""

    def __init__(self, inner, step):
        self.inner, self.step, self.calls = inner, step, 0
        self.default_parameterization = inner.default_parameterization

    def draw(self, x0, generator):
        return self.inner.draw(x0, generator)

    def loss(self, field, x0, y, draws):
        self.calls += 1
        value = self.inner.loss(field, x0, y, draws)
        return value * float("nan") if self.calls >= self.step else value


def test_nan_loss_stops_and_never_overwrites_the_last_good_checkpoint(tmp_path):
    cfg = small_config(tmp_path)
    plain = Trainer(cfg)
    trainer = Trainer(cfg, objective=NaNAt(plain.objective, step=17))
    with pytest.raises(TrainingDiverged, match="loss is not finite at step 17"):
        trainer.fit()
    last = latest_checkpoint(tmp_path / "checkpoints")
    assert last.name == "step-00000010.json"
    tensors, meta = load_checkpoint(last)
    assert all(torch.isfinite(v).all() for v in tensors["model"].values())
    # the model was not stepped with the NaN gradient either
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_resume_refuses_a_different_run(tmp_path):
    Trainer(small_config(tmp_path)).fit(steps=10)
    with pytest.raises(ValueError, match="cannot resume: optim.lr"):
        Trainer(small_config(tmp_path, "optim.lr=1e-4"))
    # more steps is a continuation, not a different run
    assert Trainer(small_config(tmp_path, "optim.steps=50")).step == 10


def test_checkpoints_are_kept_to_the_last_k(tmp_path):
    Trainer(small_config(tmp_path, "run.keep=2", "run.ckpt_every=5")).fit()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    want = [f"step-{s:08d}.{ext}" for s in (25, 30) for ext in ("json", "safetensors")]
    assert names == want


def test_run_folder_rebuilds_the_field_alone(tmp_path, uninterrupted):
    ref_out, _ = uninterrupted
    trained = load_trained(ref_out)
    assert trained.step == 30
    assert (ref_out / "config.toml").read_text() == dump_toml(trained.config)
    trainer = Trainer(small_config(ref_out))  # resumes at 30: the same EMA weights
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(trained.field.denoise(x, 0.5), trainer.field().denoise(x, 0.5))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["objective.process=ddpm", "model.parameterization=flow"], "parameterization 'flow' needs a continuous"),
        (["model.parameterization=bogus"], "parameterization must be one of"),
        (["objective.name=cfm", "objective.process=ddpm", "model.parameterization=flow"], "'cfm' needs a continuous"),
        (["objective.name=vlb"], "'vlb' needs the discrete DDPMSchedule"),
    ],
)
def test_the_objective_checks_the_configured_combination(tmp_path, extra, message):
    with pytest.raises(ValueError, match=message):
        Trainer(small_config(tmp_path, *extra))
    assert not (tmp_path / "checkpoints").exists()


def test_progress_bar_shows_loss_and_rate(tmp_path, capsys):
    Trainer(small_config(tmp_path, "run.progress=true", "optim.steps=12")).fit()
    err = capsys.readouterr().err
    assert "train" in err and "loss " in err and "samples/s" in err and "12/12" in err


def test_conditional_training_uses_the_null_class_for_dropped_labels(tmp_path):
    trainer = Trainer(small_config(tmp_path, "model.conditional=true", "model.label_dropout=0.5"))
    _, y, _ = trainer._draw(4000)
    k = trainer.num_classes
    assert k == 6
    dropped = float((y == k).double().mean())
    assert abs(dropped - 0.5) < 4 * (0.25 / 4000) ** 0.5  # binomial: 4 standard errors
    assert set(y.tolist()) <= set(range(k + 1))


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env.pop("WORLD_SIZE", None)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_on_two_gloo_processes_follows_the_single_process_run(tmp_path, uninterrupted):
    """torchrun, 2 CPU processes (gloo), global batch 64 split 32 + 32: the same loss trajectory as
    one process with batch 64. Only the order of float32 sums differs (gradient all-reduce, loss
    mean over halves), so the losses agree to ~1e-6 relative after 30 Adam steps; 1e-4 is a
    margin that a wrong shard (another batch: losses differ by >1e-1) cannot meet."""
    ref_out, _ = uninterrupted
    out = tmp_path / "ddp"
    toml = tmp_path / "run.toml"
    toml.write_text(dump_toml(small_config(out)))
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(_free_port()), "-m", "scoredyn", "train", "--config", str(toml), "--no-progress",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp, single = losses(out), losses(ref_out)
    assert [s for s, _ in ddp] == [s for s, _ in single]
    for (_, a), (_, b) in zip(ddp, single, strict=True):
        assert abs(a - b) <= 1e-4 * abs(b), (a, b)
    assert config_to_dict(load_trained(out).config) == config_to_dict(small_config(out))


def test_config_is_frozen_and_overrides_return_new_configs(tmp_path):
    cfg = small_config(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.optim.lr = 1.0  # type: ignore[misc]


def test_compiled_training_follows_eager(tmp_path, uninterrupted):
    """``run.compile=true`` trains the same model as eager (the compiled path checked against eager). One
    torch.compile of forward and backward (~20-40 s here). Inductor fuses and reorders float32
    arithmetic, so parameters agree to float32 rounding amplified over 30 AdamW steps, not bit for
    bit: measured 1.2e-7 (logged losses equal to 4 digits); asserted 1e-4 relative on the losses and
    1e-3 / 1e-5 on the parameters (a wrong graph, e.g. a dropped term, is off by > 1e-2)."""
    out = tmp_path / "compiled"
    trainer = Trainer(small_config(out, "run.compile=true"))
    trainer.fit()
    eager_out, eager_state = uninterrupted
    eager_log, comp_log = losses(eager_out), losses(out)
    assert [s for s, _ in comp_log] == [s for s, _ in eager_log]
    torch.testing.assert_close(torch.tensor([v for _, v in comp_log]), torch.tensor([v for _, v in eager_log]),
                               rtol=1e-4, atol=0)  # fmt: skip
    comp_state = state_of(trainer)
    for k, v in eager_state.items():
        if k.startswith("model."):
            torch.testing.assert_close(comp_state[k], v, rtol=1e-3, atol=1e-5)
