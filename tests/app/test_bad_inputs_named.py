"""Bad inputs found by trying the command line as a hostile user would, each a named case: every one
ends with exit 2, one line on stderr, and nothing written (and nothing of an existing run touched)."""

from __future__ import annotations

import hashlib
import json
import resource
import subprocess
import sys

import numpy as np
import pytest

from _cli import assert_refused, run_cli
from scoredyn.learning import TrainConfig, Trainer, apply_overrides

SMALL = ["data.name=mog6", "data.n=200", "model.hidden=8", "model.depth=1", "model.emb_dim=4", "optim.batch_size=16",
         "optim.steps=4", "run.ckpt_every=2", "run.log_every=1", "run.progress=false"]  # fmt: skip
TRAIN_FLAGS = [a for item in SMALL if not item.startswith("run.") for a in ("--set", item)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("named") / "run"
    Trainer(apply_overrides(TrainConfig(), [*SMALL, f"run.out={out}"])).fit()
    return out


@pytest.fixture()
def samples(tmp_path):
    path = tmp_path / "good.npz"
    np.savez(path, samples=np.random.default_rng(0).normal(size=(20, 2)))
    return path


TUNE = ["tune-grid", "--target", "mog6", "--sampler", "unipc", "--n", "20", "--evaluations", "5"]


@pytest.mark.parametrize(
    "args, phrase",
    [
        ([*TUNE, "--nfe", "1000000000"], "--nfe must be an integer in [1, 1,000]"),
        ([*TUNE, "--nfe", "5", "--candidates", "100000000"], "--candidates must be an integer in [1, 2,000]"),
        ([*TUNE, "--nfe", "5", "--process", "bogus"], "unknown process 'bogus'"),  # no progress line before it
    ],
)
def test_tune_grid_refuses_before_tuning(tmp_path, args, phrase):
    out = tmp_path / "g.json"
    code, stderr = run_cli(*args, "--out", out)
    assert_refused(code, stderr, out)
    assert phrase in stderr


@pytest.mark.parametrize("where", ["/proc/g.json", "folder", "file/g.json"])
def test_an_unwritable_output_is_refused_before_the_work(tmp_path, where):
    """The output is probed first (``util.files.check_writable``): a long tuning never ends in a failed write."""
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "file").write_text("x")
    out = {"folder": tmp_path / "folder.json", "file/g.json": tmp_path / "file" / "g.json"}.get(where, where)
    code, stderr = run_cli(*TUNE, "--nfe", "5", "--out", out)
    assert_refused(code, stderr)
    assert str(out) in stderr


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["--atol", "inf"], "--atol must be in [1e-12, 1]"),
        (["--rtol", "1e-300", "--atol", "1e-300"], "--rtol must be in [1e-12, 1]"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_likelihood_tolerances_and_seeds(samples, args, phrase):
    code, stderr = run_cli("likelihood", "--target", "mog6", "--data", samples, "--n", "2", *args)
    assert_refused(code, stderr)
    assert phrase in stderr


@pytest.mark.parametrize("command", ["evaluate", "sample", "explore"])
@pytest.mark.parametrize("seed", ["-1", str(2**70)])
def test_seeds_a_generator_cannot_take_are_usage_errors(tmp_path, samples, command, seed):
    args = {
        "evaluate": ["--samples", samples],
        "sample": ["--sampler", "ddim", "--steps", "2", "--n", "5", "--out", tmp_path / "s.npz"],
        "explore": ["--n", "10", "--frames", "2", "--out", tmp_path / "e.html"],
    }[command]
    code, stderr = run_cli(command, "--target", "mog6", *args, "--seed", seed)
    assert_refused(code, stderr)
    assert "--seed" in stderr


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["--steps", "1000000000000"], "the trajectory needs about 11,921 GiB"),  # 1e11 frames x 8 walkers x 2-D
        (["--dt", "inf"], "must be positive and finite"),
        (["--friction", "nan"], "must be positive and finite"),
    ],
)
def test_physics_simulate_limits(tmp_path, args, phrase):
    out = tmp_path / "md"
    code, stderr = run_cli("physics", "simulate", "--system", "double-well", "--walkers", "8", *args, "--out", out)
    assert_refused(code, stderr)
    assert phrase in stderr and not out.exists()


def test_report_on_a_table_that_is_not_a_demo_table(tmp_path):
    (tmp_path / "table.json").write_text(json.dumps([1, 2, 3]))
    code, stderr = run_cli("report", tmp_path)
    assert_refused(code, stderr, tmp_path / "report.html")
    assert "is not a table that scoredyn demo writes" in stderr


def test_an_empty_run_out_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stderr = run_cli("train", *TRAIN_FLAGS, "--set", "run.out=", "--out", tmp_path / "r")
    assert_refused(code, stderr)
    assert "run.out" in stderr and list(tmp_path.iterdir()) == []


def _digests(folder) -> dict:
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_resuming_when_the_checkpoints_folder_is_a_file_touches_nothing(run, tmp_path):
    import shutil

    bad = tmp_path / "run"
    shutil.copytree(run, bad)
    shutil.rmtree(bad / "checkpoints")
    (bad / "checkpoints").write_text("not a folder")
    before = _digests(bad)
    code, stderr = run_cli("train", *TRAIN_FLAGS, "--out", bad, "--steps", "6")
    assert_refused(code, stderr)
    assert "Not a directory" in stderr and _digests(bad) == before  # the log is not trimmed, nothing rewritten


def test_resuming_a_run_whose_every_checkpoint_is_corrupt_is_refused(run, tmp_path):
    """Starting over silently would hide that the run's past is lost: the user asks for --fresh."""
    import shutil

    bad = tmp_path / "run"
    shutil.copytree(run, bad)
    for tensors in (bad / "checkpoints").glob("*.safetensors"):
        tensors.write_bytes(b"garbage")
    before = _digests(bad)
    code, stderr = run_cli("train", *TRAIN_FLAGS, "--out", bad, "--steps", "6")
    assert_refused(code, stderr)
    assert "none is usable" in stderr and "--fresh" in stderr and _digests(bad) == before


def test_export_into_a_file_size_limit_is_one_line_and_leaves_no_folder(run, tmp_path):
    """A write that fails part-way (EFBIG under a 1000-byte file-size limit) removes the folder it made."""

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

    out = tmp_path / "exported"
    proc = subprocess.run([sys.executable, "-m", "scoredyn", "export", "--checkpoint", str(run), "--out", str(out)],
                          capture_output=True, text=True, preexec_fn=limit)  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "File too large" in lines[0], proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "toml, phrase",
    [
        ("[model]\nhidden = 99999999999999999999\n", "'model.hidden' must be at most 65,536"),  # torch would overflow
        ("[model]\ndepth = 100000\n", "'model.depth' must be at most 1,024"),
        ("[optim]\nbatch_size = 1000000000\n", "'optim.batch_size' must be at most 16,777,216"),
        ("[objective]\nt_min = inf\n", "'objective.t_min' must be a finite number"),
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ],
)
def test_configs_past_any_sane_size_are_one_line(tmp_path, toml, phrase):
    config = tmp_path / "c.toml"
    config.write_text(toml)
    code, stderr = run_cli("train", "--config", config, "--steps", "2", "--out", tmp_path / "r")
    assert_refused(code, stderr)
    assert phrase in stderr and not (tmp_path / "r").exists()


def test_a_refused_resume_prints_its_error_alone(run, tmp_path):
    """The newest checkpoint is corrupt and the older one was trained on other data: the refusal is
    the one line (the skipped checkpoint's warning comes only when the run goes on)."""
    import shutil

    bad = tmp_path / "run"
    shutil.copytree(run, bad)
    (bad / "checkpoints" / "step-00000004.safetensors").write_bytes(b"garbage")
    flags = [f if f != "data.n=200" else "data.n=300" for f in TRAIN_FLAGS]
    code, stderr = run_cli("train", *flags, "--out", bad, "--steps", "6")
    assert_refused(code, stderr)
    assert "cannot resume" in stderr and "data.n" in stderr
    code, stderr = run_cli("train", *TRAIN_FLAGS, "--out", bad, "--steps", "6")  # the same settings: it goes on
    lines = stderr.strip().splitlines()
    assert code == 0 and sum(ln.startswith("scoredyn: warning: skipping checkpoint") for ln in lines) == 1, stderr


def test_bench_refuses_an_unwritable_results_folder_before_benchmarking():
    code, stderr = run_cli("bench", "--quick", "--part", "langevin", "--results", "/proc/scoredyn-results")
    assert_refused(code, stderr)  # one line: no part was announced, none ran
    assert "/proc/scoredyn-results" in stderr


def test_a_failed_trajectory_write_leaves_no_folder(tmp_path):
    """``physics simulate`` makes its --out folder; a write that fails (EFBIG under a 30 KB file-size
    limit) removes the folders it made."""

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000))

    out = tmp_path / "new" / "md"
    proc = subprocess.run([sys.executable, "-m", "scoredyn", "physics", "simulate", "--system", "double-well",
                           "--walkers", "2000", "--steps", "200", "--out", str(out)],
                          capture_output=True, text=True, preexec_fn=limit)  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "File too large" in lines[0], proc.stderr
    assert not (tmp_path / "new").exists()
