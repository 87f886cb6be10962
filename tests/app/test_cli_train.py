"""`scoredyn train`, `sample --checkpoint` and `evaluate --checkpoint`: the contract of DESIGN.md,
configs from TOML with flag and --set overrides, resume from the CLI, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from scoredyn.app.cli import main
from scoredyn.learning import load_toml, load_trained

TINY = ["--set", "data.n=1000", "--set", "model.hidden=32", "--set", "model.depth=2", "--set", "model.emb_dim=16",
        "--set", "optim.batch_size=64", "--set", "run.log_every=10"]  # fmt: skip


def run_cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "scoredyn", *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    run_cli("train", "--data", "mog6", "--objective", "eps", "--process", "vp", "--out", out, "--steps", 20, *TINY)
    return out


def test_train_writes_a_run_folder_that_sample_needs_nothing_else_to_use(run_dir, tmp_path):
    assert {"run.json", "config.toml", "metrics.jsonl", "checkpoints"} <= {p.name for p in run_dir.iterdir()}
    cfg = load_toml(run_dir / "config.toml")
    assert (cfg.objective.name, cfg.objective.process, cfg.optim.steps, cfg.model.hidden) == ("eps", "vp", 20, 32)
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [10, 20] and all(np.isfinite(r["loss"]) for r in log)
    out = tmp_path / "s.npz"
    run_cli("sample", "--checkpoint", run_dir, "--sampler", "edm-heun", "--steps", 5, "--n", 50, "--seed", 4,
            "--out", out)  # fmt: skip
    with np.load(out) as z:
        x, nfe, settings = z["samples"], int(z["nfe"]), json.loads(str(z["settings"]))
    assert x.shape == (50, 2) and np.isfinite(x).all() and nfe == 9  # Heun: 2 per step, Euler last
    assert settings["target"] == f"checkpoint:{run_dir}" and settings["process"] == "edm"
    proc = run_cli("evaluate", "--checkpoint", run_dir, "--samples", out, "--json")
    report = json.loads(proc.stdout)
    assert {"energy", "mode_tv"} <= report.keys() and report["n"] == 50


def test_train_resumes_from_the_cli_and_a_toml_config(run_dir, tmp_path):
    out = tmp_path / "again"
    toml = tmp_path / "c.toml"
    toml.write_text((run_dir / "config.toml").read_text().replace(str(run_dir), str(out)))
    run_cli("train", "--config", toml, "--steps", 10)
    assert load_trained(out).step == 10
    proc = run_cli("train", "--config", toml)  # continues to the file's 20 steps
    assert "resumed at step 10" in proc.stderr
    assert load_trained(out).step == 20
    proc = run_cli("train", "--config", toml)
    assert "nothing to do" in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--objective", "nope"], "objective must be one of"),
        (["--objective", "vlb", "--process", "vp"], "needs the discrete DDPMSchedule process"),
        (["--objective", "cfm", "--process", "ddpm"], "needs a continuous process"),
        (["--parameterization", "flow", "--process", "ddpm", "--objective", "eps"], "'flow' needs a continuous"),
        (["--process", "nope"], "unknown process"),
        (["--data", "nope"], "unknown"),
        (["--set", "optim.lrr=1"], "unknown config key 'optim.lrr'"),
        (["--set", "optim.lr"], "key=value"),
        (["--set", "optim.steps=1.5"], "optim.steps"),
        (["--set", "model.conditional=true", "--data", "moons"], "needs labelled data"),
        (["--config", "/nonexistent.toml"], "/nonexistent.toml"),
        (["--net", "unet"], "unet"),
    ],
)
def test_bad_training_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message):
    argv = ["scoredyn", "train", "--out", str(tmp_path / "x"), "--steps", "2", *TINY, *args]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        main()  # in-process: the same entry point as the console script, without a torch import each
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x" / "checkpoints").exists()


def test_sample_needs_exactly_one_source(tmp_path, run_dir):
    for extra in ([], ["--target", "mog6", "--checkpoint", run_dir]):
        proc = run_cli("sample", "--sampler", "ddim", "--steps", 2, "--n", 4, "--out", tmp_path / "a.npz", *extra,
                       check=False)  # fmt: skip
        assert proc.returncode == 2 and "exactly one of --target and --checkpoint" in proc.stderr
    proc = run_cli("sample", "--checkpoint", tmp_path, "--sampler", "ddim", "--steps", 2, "--n", 4,
                   "--out", tmp_path / "a.npz", check=False)  # fmt: skip
    assert proc.returncode == 2 and "not a scoredyn run folder" in proc.stderr


def _main(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["scoredyn", *map(str, args)])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code, capsys.readouterr().err


def test_sample_a_class_by_guidance(tmp_path, monkeypatch, capsys):
    """--class with an exact target: classifier guidance with the exact noisy classifier; with a
    class-conditional checkpoint: classifier-free guidance. Both land in the asked class."""
    from scoredyn.app.quality import classify_digits
    from scoredyn.core.targets import mog6
    from scoredyn.metrics import mode_weights

    out = tmp_path / "m.npz"
    code, err = _main(monkeypatch, capsys, "sample", "--target", "mog6", "--sampler", "unipc", "--steps", 20,
                      "--n", 500, "--class", 3, "--out", out)  # fmt: skip
    assert code == 0, err
    with np.load(out) as z:
        x, settings = torch.from_numpy(z["samples"]), json.loads(str(z["settings"]))
    assert float(mode_weights(x, mog6())[3]) > 0.99 and settings["label"] == 3
    code, err = _main(monkeypatch, capsys, "sample", "--checkpoint", "digits", "--sampler", "edm-heun",
                      "--steps", 12, "--n", 50, "--class", 7, "--guidance", 2, "--out", out)  # fmt: skip
    assert code == 0, err
    with np.load(out) as z:
        digits = torch.from_numpy(z["samples"])
    assert (classify_digits(digits).argmax(1) == 7).mean() >= 0.9


@pytest.mark.parametrize(
    "args, message",
    [
        (["--target", "mog6", "--class", "9"], "component index in 0..5"),
        (["--target", "mog6", "--class", "x"], "--class must be an integer"),
        (["--target", "mog6", "--class", "1", "--guidance", "-1"], "--guidance must be >= 0"),
    ],
)
def test_bad_class_options(tmp_path, monkeypatch, capsys, args, message):
    code, err = _main(monkeypatch, capsys, "sample", "--sampler", "unipc", "--steps", 2, "--n", 4,
                      "--out", tmp_path / "a.npz", *args)  # fmt: skip
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a.npz").exists()


def test_export_writes_weights_that_sample_the_same(run_dir, tmp_path):
    dest = tmp_path / "exported"
    run_cli("export", "--checkpoint", run_dir, "--out", dest)
    assert {p.name for p in dest.iterdir()} == {"model.safetensors", "run.json"}
    a, b = load_trained(run_dir), load_trained(dest)
    x = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.field.score(x, 0.3), b.field.score(x, 0.3), rtol=0, atol=0)
    for args, phrase in ((("--format", "diffusers"), "not available"), (("--format", "onnx"), "--format must be"),
                         ((), "not empty")):  # fmt: skip
        proc = run_cli("export", "--checkpoint", run_dir, "--out", dest, *args, check=False)
        assert proc.returncode == 2 and phrase in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
