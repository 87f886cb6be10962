"""Run folders: the shipped models' folder, reading a run, and exporting its EMA weights alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import scoredyn
from scoredyn.learning import TrainConfig, Trainer, apply_overrides, export_model, load_trained, read_run
from scoredyn.learning.runs import PRETRAINED, PRETRAINED_DIR, RUN_FILE
from scoredyn.util.files import file_mode

TINY = ["data.n=500", "model.hidden=16", "model.depth=1", "model.emb_dim=8", "optim.batch_size=32",
        "optim.steps=6", "optim.warmup=2", "run.ckpt_every=3", "run.log_every=3", "run.progress=false"]  # fmt: skip


def test_shipped_models_live_in_the_package():
    assert PRETRAINED_DIR == Path(scoredyn.__file__).resolve().parent / "pretrained"
    for name in PRETRAINED:
        assert (PRETRAINED_DIR / name / RUN_FILE).is_file()
        folder, info, config = read_run(name)  # found by name
        assert folder == PRETRAINED_DIR / name and info["dim"] == 64 and config.model.net == "unet"


def test_read_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(ValueError, match="is not a scoredyn run folder"):
        read_run(tmp_path)
    (tmp_path / RUN_FILE).write_text("{")
    with pytest.raises(ValueError, match="cannot read run file"):
        read_run(tmp_path)


def test_export_keeps_the_ema_weights_alone(tmp_path):
    run = tmp_path / "run"
    Trainer(apply_overrides(TrainConfig(), [*TINY, f"run.out={run}"])).fit()
    dest = export_model(run, tmp_path / "exported")
    assert sorted(p.name for p in dest.iterdir()) == sorted([RUN_FILE, "model.safetensors"])  # no temporary file left
    assert os.stat(dest / "model.safetensors").st_mode & 0o777 == file_mode()
    assert json.loads((dest / RUN_FILE).read_text())["step"] == 6
    original, exported = load_trained(run), load_trained(dest)
    assert exported.step == 6
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(exported.field.denoise(x, 0.3), original.field.denoise(x, 0.3))
