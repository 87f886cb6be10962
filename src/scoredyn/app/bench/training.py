"""Training throughput: samples per second of the eager loop against ``torch.compile`` (and, on
CUDA, ``torch.compile`` with bf16 autocast), in one run, on the mog6 config (data on the device).

Each variant trains a fresh run for ``warmup`` steps (compilation happens there) and is then timed
for ``steps`` more; samples/s = steps x batch / seconds.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from ...learning import TrainConfig, apply_overrides, config_from_dict
from .record import record, synchronize

#: the mog6 config (configs/mog6.toml) as overrides of the defaults
MOG6 = ["data.name=mog6", "data.n=20000", "model.net=mlp", "model.hidden=128", "model.depth=3",
        "objective.name=v", "objective.process=vp", "optim.lr=2e-3", "optim.batch_size=256",
        "optim.warmup=200", "optim.ema_decay=0.999"]  # fmt: skip


def samples_per_second(device: str, *, compile: bool, amp: bool, warmup: int, steps: int, out: Path) -> dict:
    """Train ``warmup`` then ``steps`` steps of a fresh mog6 run; the timed part's samples/s."""
    from ...learning import Trainer

    cfg: TrainConfig = apply_overrides(
        config_from_dict({}),
        [*MOG6, f"optim.steps={warmup + steps}", f"run.out={out}", "run.progress=false",
         f"run.ckpt_every={10 * (warmup + steps)}", f"run.log_every={warmup + steps}",
         f"run.device={device}", f"run.compile={str(compile).lower()}", f"run.amp={str(amp).lower()}"],
    )  # fmt: skip
    trainer = Trainer(cfg, resume=False)
    t0 = time.perf_counter()
    trainer.fit(warmup)
    synchronize(device)
    t1 = time.perf_counter()
    result = trainer.fit(warmup + steps)
    synchronize(device)
    seconds = time.perf_counter() - t1
    batch = cfg.optim.batch_size
    return {"samples_per_s": steps * batch / seconds, "warmup_seconds": t1 - t0, "loss": result.loss}


def run(*, quick: bool, device: str, results=None) -> list[dict]:
    """Eager against compiled (CPU and CUDA) and compiled + bf16 autocast (CUDA) training."""
    warmup, steps = (3, 60) if quick else (20, 500)
    variants = [("compile", True, False)]
    if torch.device(device).type == "cuda":
        variants.append(("compile+bf16", True, True))
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        base = samples_per_second(device, compile=False, amp=False, warmup=warmup, steps=steps, out=Path(tmp, "eager"))
        for label, compile, amp in variants:
            m = samples_per_second(device, compile=compile, amp=amp, warmup=warmup, steps=steps, out=Path(tmp, label))
            settings = {"config": "mog6 (mlp 128x3, v, vp)", "batch": 256, "steps": steps, "warmup": warmup,
                        "compile": compile, "amp": amp, "warmup_seconds": m["warmup_seconds"],
                        "eager_warmup_seconds": base["warmup_seconds"]}  # fmt: skip
            records.append(record(f"train-throughput/{label}", m["samples_per_s"], "samples/s", "eager",
                                  base["samples_per_s"], settings, ratio=m["samples_per_s"] / base["samples_per_s"],
                                  device=device))  # fmt: skip
    return records
