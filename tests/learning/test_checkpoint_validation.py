"""Checkpoints are checked after their checksum: a tensors file that is not safetensors (truncated, a
pickle, a ``torch.save`` archive) even with a matching sha256, non-finite weights, weights of the wrong
shapes, and a ``run.json`` that is not a run file each end as one ``ValueError`` line naming the file,
and as one line and exit 2 from the CLI. Nothing is ever unpickled."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import subprocess
import sys

import pytest
import safetensors.torch
import torch

from scoredyn.learning import TrainConfig, Trainer, apply_overrides, latest_checkpoint, load_trained

SMALL = ["data.name=mog6", "data.n=500", "model.hidden=16", "model.depth=1", "model.emb_dim=8", "optim.batch_size=32",
         "optim.steps=4", "run.ckpt_every=4", "run.log_every=2", "run.progress=false"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    Trainer(apply_overrides(TrainConfig(), [*SMALL, f"run.out={out}"])).fit()
    return out


def _copy(run, tmp_path):
    dest = tmp_path / "run"
    shutil.copytree(run, dest)
    return dest


def _replace_tensors(run_dir, data: bytes):
    """Overwrite the newest checkpoint's tensors file and make its sidecar's sha256 match."""
    sidecar = latest_checkpoint(run_dir / "checkpoints")
    meta = json.loads(sidecar.read_text())
    (sidecar.parent / meta["file"]).write_bytes(data)
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    sidecar.write_text(json.dumps(meta))
    return sidecar.parent / meta["file"]


def _tensors_bytes(run_dir) -> bytes:
    sidecar = latest_checkpoint(run_dir / "checkpoints")
    return (sidecar.parent / json.loads(sidecar.read_text())["file"]).read_bytes()


def _state(run_dir) -> dict:
    return safetensors.torch.load(_tensors_bytes(run_dir))


def _bad_tensors(run_dir) -> dict:
    good = _tensors_bytes(run_dir)
    state = _state(run_dir)
    nan = dict(state)
    key = next(k for k in nan if k.startswith("ema/") and nan[k].is_floating_point() and nan[k].numel() > 1)
    nan[key] = torch.full_like(nan[key], float("nan"))
    shapes = {k: (torch.zeros(3, 3) if k == key else v) for k, v in state.items()}
    torch_save = run_dir / "archive.pt"
    torch.save(state, torch_save)
    return {
        "truncated": (good[: len(good) // 2], "not a readable safetensors file"),
        "pickle": (pickle.dumps(state), "not a readable safetensors file"),
        "torch.save archive": (torch_save.read_bytes(), "not a readable safetensors file"),
        "non-finite weights": (safetensors.torch.save(nan), "NaN or infinite"),
        "wrong shapes": (safetensors.torch.save(shapes), "does not fit the network"),
    }


@pytest.mark.parametrize("case", ["truncated", "pickle", "torch.save archive", "non-finite weights", "wrong shapes"])
def test_a_bad_tensors_file_with_a_matching_checksum_is_one_line(run, tmp_path, case):
    bad = _copy(run, tmp_path)
    data, phrase = _bad_tensors(bad)[case]
    path = _replace_tensors(bad, data)
    with pytest.raises(ValueError) as info:
        load_trained(bad)
    message = str(info.value)
    assert phrase in message and "\n" not in message, message
    assert path.name in message or "step-" in message
    out = tmp_path / "s.npz"
    proc = subprocess.run([sys.executable, "-m", "scoredyn", "sample", "--checkpoint", str(bad), "--sampler", "ddim",
                           "--steps", "2", "--n", "5", "--out", str(out)], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and not out.exists(), proc.stderr


@pytest.mark.parametrize(
    "case,write,phrase",
    [
        ("a list", lambda p: p.write_text("[1, 2]"), "holds a list"),
        ("no dim", lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items()
                                                          if k != "dim"})), "lacks dim"),  # fmt: skip
        ("a folder", lambda p: (p.unlink(), p.mkdir()), "cannot read run file"),
        ("not JSON", lambda p: p.write_text("{"), "cannot read run file"),
    ],
)
def test_a_bad_run_file_is_one_line(run, tmp_path, case, write, phrase):
    bad = _copy(run, tmp_path)
    write(bad / "run.json")
    with pytest.raises(ValueError, match=phrase) as info:
        load_trained(bad)
    assert "\n" not in str(info.value)


def _sample_cli(run_dir, tmp_path):
    return subprocess.run([sys.executable, "-m", "scoredyn", "sample", "--checkpoint", str(run_dir), "--sampler",
                           "ddim", "--steps", "2", "--n", "5", "--out", str(tmp_path / "s.npz")], capture_output=True,
                          text=True)  # fmt: skip


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    out = tmp_path_factory.mktemp("run2")
    Trainer(apply_overrides(TrainConfig(), [*SMALL, "run.ckpt_every=2", f"run.out={out}"])).fit()
    assert len(list((out / "checkpoints").glob("step-*.json"))) == 2
    return out


def test_every_checkpoint_corrupt_is_one_error_line(two_checkpoints, tmp_path):
    """With no usable checkpoint, the CLI prints one line: the error, naming the newest one's problem
    and how many older ones are unusable too (no warning lines before it)."""
    bad = _copy(two_checkpoints, tmp_path)
    for sidecar in (bad / "checkpoints").glob("step-*.json"):
        (sidecar.parent / json.loads(sidecar.read_text())["file"]).write_bytes(b"garbage")
    proc = _sample_cli(bad, tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "has no usable checkpoint" in lines[0] and "step-00000004" in lines[0] and "1 older" in lines[0]
    assert not (tmp_path / "s.npz").exists()


def test_a_corrupt_newest_checkpoint_falls_back_with_one_warning_line(two_checkpoints, tmp_path):
    bad = _copy(two_checkpoints, tmp_path)
    newest = bad / "checkpoints" / "step-00000004.json"
    (newest.parent / json.loads(newest.read_text())["file"]).write_bytes(b"garbage")
    proc = _sample_cli(bad, tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 0, proc.stderr
    warned = [ln for ln in lines if ln.startswith("scoredyn: warning:")]
    assert len(warned) == 1 and "skipping checkpoint" in warned[0] and "step-00000004" in warned[0], lines
    assert (tmp_path / "s.npz").exists()
