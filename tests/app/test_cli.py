"""The command-line contract: sample/evaluate on every sampler, reproducibility, bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from scoredyn.app.registry import SAMPLERS
from scoredyn.app.sampling import sample
from scoredyn.core.targets import mog6


def run_cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "scoredyn", *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_from_the_cli_matches_python(tmp_path, name):
    """Each contract sampler name runs from the CLI, writes samples + nfe + settings, and the same seed
    gives bit-identical samples from Python."""
    out = tmp_path / "s.npz"
    steps = 3
    run_cli(
        "sample",
        "--target",
        "mog6",
        "--sampler",
        name,
        "--steps",
        steps,
        "--n",
        64,
        "--seed",
        11,
        "--levels",
        2,
        "--out",
        out,
    )
    with np.load(out) as z:
        x, nfe, settings = z["samples"], int(z["nfe"]), json.loads(str(z["settings"]))
    assert x.shape == (64, 2) and np.isfinite(x).all() and nfe >= 1
    assert settings["sampler"] == name and settings["seed"] == 11
    ref, _ = sample(mog6(), name, steps=steps, n=64, seed=11, levels=2)
    assert np.array_equal(ref.x.numpy(), x)
    assert ref.nfe == nfe


def test_json_target_any_dimension_and_evaluate(tmp_path):
    from scoredyn.core.targets import random_mixture

    mix = random_mixture(5, 3, seed=3)
    path = tmp_path / "m5.json"
    mix.save(path)
    out = tmp_path / "s.npz"
    run_cli(
        "sample", "--target", path, "--sampler", "dpm-solver-2m", "--steps", 25, "--n", 600, "--seed", 0, "--out", out
    )
    rep = json.loads(run_cli("evaluate", "--target", path, "--samples", out, "--json").stdout)
    for key in ("mode_tv", "energy", "sliced_w1"):
        assert rep[key]["floor"] > 0
        assert rep[key]["value"] < 3 * rep[key]["floor"], (key, rep[key])
    # the human-readable table also works
    assert "energy" in run_cli("evaluate", "--target", path, "--samples", out).stdout


def test_evaluate_detects_bad_samples(tmp_path):
    """Collapsed samples score far above the floor."""
    x = mog6().sample(1000, torch.Generator().manual_seed(0)).numpy()
    x[:] = x[0]
    path = tmp_path / "bad.npy"
    np.save(path, x)
    rep = json.loads(run_cli("evaluate", "--target", "mog6", "--samples", path, "--json").stdout)
    assert rep["energy"]["value"] > 20 * rep["energy"]["floor"]


def _bad_json(tmp_path, text):
    p = tmp_path / "bad.json"
    p.write_text(text)
    return p


BAD_SAMPLE_ARGS = {
    "unknown target": (["--target", "nope"], "unknown target"),
    "unknown sampler": (["--sampler", "nope"], "unknown sampler"),
    "negative steps": (["--steps", "-3"], "--steps must be a positive"),
    "zero n": (["--n", "0"], "--n must be a positive"),
    "not a number": (["--steps", "abc"], "--steps"),
    "malformed json": (["--target", "@malformed"], "not valid JSON"),
    "non-SPD json": (["--target", "@nonspd"], "not positive definite"),
    "unknown process": (["--process", "nope"], "unknown process"),
    "bad device": (["--device", "tpu"], "--device"),
}


@pytest.mark.parametrize("case", sorted(BAD_SAMPLE_ARGS))
def test_bad_sample_input_one_line_exit_2_no_file(tmp_path, case):
    override, msg = BAD_SAMPLE_ARGS[case]
    args = {"--target": "mog6", "--sampler": "ddim", "--steps": "5", "--n": "10", "--out": str(tmp_path / "o.npz")}
    for k, v in zip(override[::2], override[1::2], strict=True):
        if v == "@malformed":
            v = str(_bad_json(tmp_path, "{oops"))
        elif v == "@nonspd":
            v = str(_bad_json(tmp_path, json.dumps({"weights": [1.0], "means": [[0, 0]], "covs": [[[1, 2], [2, 1]]]})))
        args[k] = v
    proc = run_cli("sample", *[a for kv in args.items() for a in kv], check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert list(tmp_path.glob("o.npz*")) == [] and not list(tmp_path.glob(".o.npz*"))


@pytest.mark.parametrize("case", ["nan", "wrong dim", "missing", "no samples key"])
def test_bad_evaluate_input(tmp_path, case):
    path = tmp_path / "s.npz"
    if case == "nan":
        x = np.zeros((10, 2))
        x[3, 1] = np.nan
        np.savez(path, samples=x)
        msg = "NaN"
    elif case == "wrong dim":
        np.savez(path, samples=np.zeros((10, 3)))
        msg = "3-D but target mog6 is 2-D"
    elif case == "missing":
        msg = "no such file"
    else:
        np.savez(path, other=np.zeros((10, 2)))
        msg = "no 'samples' array"
    proc = run_cli("evaluate", "--target", "mog6", "--samples", path, "--json", check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0], proc.stderr


def test_demo_writes_tables(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli("demo", "--out", out, "--n", 300)
    doc = json.loads((out / "table.json").read_text())
    labels = [r["label"] for r in doc["tables"]["main"]]
    assert any("(A)" in x for x in labels) and any("(B)" in x for x in labels) and any("(C)" in x for x in labels)
    assert {r["sampler"] for r in doc["tables"]["main"]} >= set(SAMPLERS) - {"langevin"}
    assert "| (B) annealed Langevin |" in (out / "table.md").read_text()
    with np.load(out / "samples.npz") as z:
        assert len(z.files) == len(labels)
    assert "annealed Langevin" in proc.stdout
    page = (out / "report.html").read_text()
    assert all(label.replace("<", "&lt;") in page for label in labels[:3])  # the study table is in the report
    # clouds, accuracy vs evaluations, score field, paths, compass, schedules; and the film
    assert page.count('src="data:image/png;base64,') == 6 and page.count('src="data:image/gif;base64,') == 1


def test_bare_command_prints_help_without_an_empty_error():
    proc = run_cli(check=False)
    assert "Commands" in proc.stdout + proc.stderr and "error:" not in proc.stderr


@pytest.mark.parametrize("sampler", ["smc", "annealed-mala"])
def test_samplers_that_need_a_density_refuse_a_score_network(tmp_path, sampler):
    """A score network has no density to accept or reweight with: one line, exit 2, nothing written."""
    out = tmp_path / "s.npz"
    proc = run_cli("sample", "--checkpoint", "digits", "--sampler", sampler, "--steps", 2, "--n", 10, "--out", out,
                   check=False)  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "needs a log-density" in lines[0], proc.stderr
    assert "NetworkField" in lines[0] and not out.exists()


def test_smc_from_the_cli_reports_log_z(tmp_path):
    out = tmp_path / "s.npz"
    proc = run_cli("sample", "--target", "mog6", "--sampler", "smc", "--steps", 2, "--n", 400, "--out", out)
    assert "log Z = " in proc.stderr and "MALA acceptance" in proc.stderr
    with np.load(out) as z:
        diagnostics = json.loads(str(z["settings"]))["diagnostics"]
    assert abs(diagnostics["log_z"]) <= 5 * diagnostics["log_z_se"] and diagnostics["levels"] == len(diagnostics["ess"])


def test_runs_too_large_for_memory_are_refused_before_allocating(tmp_path):
    out = tmp_path / "s.npz"
    for args in (("--n", 10**13, "--steps", 10), ("--n", 100, "--steps", 10**12)):
        proc = run_cli("sample", "--target", "mog6", "--sampler", "unipc", *args, "--out", out, check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and "GiB" in lines[0] and "--memory-gib" in lines[0], lines
        assert not out.exists()
    # the budget is a knob: 1e6 particles fit in 8 GiB (0.12 GiB); their samples alone (2 x 1e6 x 2
    # float64 = 0.03 GiB) do not fit in 0.01 GiB, so not even blocks can run
    proc = run_cli("sample", "--target", "mog6", "--sampler", "unipc", "--n", 10**6, "--steps", 2, "--out", out,
                   "--memory-gib", 0.01, check=False)  # fmt: skip
    assert proc.returncode == 2 and "samples in 2 dimensions alone need about 0.0298 GiB" in proc.stderr
    assert "0.01 GiB budget" in proc.stderr and not out.exists()
    # particles that interact cannot be split into blocks: above the budget they are refused
    proc = run_cli("sample", "--target", "mog6", "--sampler", "svgd", "--n", 10**5, "--steps", 2, "--out", out,
                   "--memory-gib", 0.01, check=False)  # fmt: skip
    assert proc.returncode == 2 and "this run needs about 0.0119 GiB" in proc.stderr and not out.exists()


def test_a_run_above_the_budget_is_drawn_in_the_blocks_that_fit(tmp_path):
    """One pass of 1e5 particles needs 8 copies x 1e5 x 2 x 8 B = 0.0119 GiB > 0.01 GiB; beside the 2
    copies of the samples (0.003 GiB), blocks of 2^15 fit (2^16 would not): the samples are exactly
    those of --block-size 32768."""
    common = ("sample", "--target", "mog6", "--sampler", "ddim", "--steps", 3, "--n", 10**5, "--seed", 4)
    proc = run_cli(*common, "--memory-gib", 0.01, "--out", tmp_path / "auto.npz")
    assert "drawing them in blocks of 32,768" in proc.stderr
    run_cli(*common, "--block-size", 2**15, "--out", tmp_path / "blocks.npz")
    with np.load(tmp_path / "auto.npz") as a, np.load(tmp_path / "blocks.npz") as b:
        assert np.array_equal(a["samples"], b["samples"])
        assert json.loads(str(a["settings"]))["block_size"] == 2**15
    with np.load(tmp_path / "blocks.npz") as b:  # and a larger budget draws them in one pass
        one = run_cli(*common, "--out", tmp_path / "one.npz")
        assert "blocks" not in one.stderr
        with np.load(tmp_path / "one.npz") as o:
            assert not np.array_equal(o["samples"], b["samples"])


def test_unwritable_outputs_and_unreadable_samples_are_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    folder = tmp_path / "s.npz"
    folder.mkdir()
    for out in (blocker / "s.npz", folder, "/proc/scoredyn-test/s.npz"):
        proc = run_cli("sample", "--target", "mog6", "--sampler", "ddim", "--steps", 2, "--n", 10, "--out", out,
                       check=False)  # fmt: skip
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("scoredyn: error:"), (out, lines)
    samples = tmp_path / "c.npy"
    np.save(samples, np.ones((10, 2)) + 1j)
    garbage = tmp_path / "g.npz"
    garbage.write_bytes(b"PK\x03\x04garbage")
    for path, phrase in ((samples, "not real numbers"), (garbage, "not a .npz or .npy")):
        proc = run_cli("evaluate", "--target", "mog6", "--samples", path, check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and phrase in lines[0], lines


def test_an_allocation_the_machine_cannot_make_is_one_line(tmp_path):
    """A budget raised past the machine's memory (here a 6 GB address-space limit): the failed
    allocation of 1e9 particles (7.45 GiB) ends as one line and exit 2, with the size asked for."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (6 * 10**9, 6 * 10**9))

    out = tmp_path / "s.npz"
    proc = subprocess.run([sys.executable, "-m", "scoredyn", "sample", "--target", "mog6", "--sampler", "unipc",
                           "--steps", "5", "--n", str(10**9), "--memory-gib", "1000", "--out", str(out)],
                          capture_output=True, text=True, preexec_fn=limit)  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("scoredyn: error: out of memory") and "7.45 GiB asked for" in lines[0]
    assert not out.exists()
