"""Sampling in particle blocks (``app/blocks.py``): every block is a ``sample`` call with its own seed, so
the particles do not depend on how the blocks are shared out; under ``torchrun`` with 1 or 2 processes
(gloo) ``scoredyn sample`` writes the same file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from scoredyn.app.blocks import block_ranges, sample_blocks
from scoredyn.app.sampling import sample
from scoredyn.core.targets import mog6
from scoredyn.util.seeds import block_seed


def test_blocks_are_sample_calls_with_their_own_seeds():
    x, settings = sample_blocks(mog6(), "sde", n=250, seed=7, block_size=100, steps=20)
    assert block_ranges(250, 100) == [(0, 100), (100, 200), (200, 250)]
    parts = [sample(mog6(), "sde", n=b - a, seed=block_seed(7, i), steps=20)[0].x for i, (a, b) in
             enumerate(block_ranges(250, 100))]  # fmt: skip
    torch.testing.assert_close(x, torch.cat(parts), rtol=0, atol=0)
    assert settings["blocks"] == 3 and settings["n"] == 250 and settings["nfe"] == 20
    assert len({block_seed(7, b) for b in range(1000)} | {block_seed(8, b) for b in range(1000)}) == 2000
    assert not torch.equal(parts[0][:50], parts[1][:50])  # blocks draw different noise


def test_interacting_samplers_are_refused():
    for name in ("svgd", "svgd-median", "smc"):
        with pytest.raises(ValueError, match="interact"):
            sample_blocks(mog6(), name, n=10, steps=1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(k: int, out, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env.pop("WORLD_SIZE", None)
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(k), "--master_addr", "127.0.0.1",
              "--master_port", str(_free_port())]  # fmt: skip
    # "--" ends torchrun's own options: its parser would take "--n" for an abbreviation of "--nnodes"
    cmd = [*launch, "-m", "scoredyn", "--", "sample", "--out", str(out), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_torchrun_with_one_or_two_processes_writes_the_same_samples(tmp_path):
    args = ("--target", "mog6", "--sampler", "ddpm", "--steps", 50, "--n", 3000, "--seed", 3, "--block-size", 1000)
    files = {}
    for k in (1, 2):
        files[k] = tmp_path / f"k{k}.npz"
        proc = _torchrun(k, files[k], *args)
        assert proc.returncode == 0, proc.stderr[-3000:]
    plain = tmp_path / "plain.npz"
    proc = subprocess.run([sys.executable, "-m", "scoredyn", "sample", "--out", str(plain), *map(str, args)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    loaded = {}
    for key, path in {**files, "plain": plain}.items():
        with np.load(path) as z:
            loaded[key] = z["samples"]
    assert loaded[1].shape == (3000, 2)
    np.testing.assert_array_equal(loaded[1], loaded[2])
    np.testing.assert_array_equal(loaded[1], loaded["plain"])


def test_torchrun_likelihood_with_one_or_two_processes_gives_the_same_numbers(tmp_path):
    """Each batch draws its Hutchinson probes from its own seed: rank-independent, so 1 and 2 processes
    print the same log-likelihoods (the mean over all rows, from rank 0)."""
    import json

    def run(k):
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
        env.pop("WORLD_SIZE", None)
        launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(k), "--master_addr",
                  "127.0.0.1", "--master_port", str(_free_port())]  # fmt: skip
        args = ["likelihood", "--data", "held-out", "--target", "mog6", "--n", "60", "--batch", "20",
                "--hutchinson", "2", "--rtol", "1e-4", "--atol", "1e-4", "--json"]  # fmt: skip
        proc = subprocess.run([*launch, "-m", "scoredyn", "--", *args], capture_output=True, text=True, env=env,
                              timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    one, two = run(1), run(2)
    assert one["mean"] == two["mean"] and one["stderr"] == two["stderr"] and one["nfe"] == two["nfe"]


def test_torchrun_evaluate_reports_the_same_for_one_or_two_processes(tmp_path):
    import json

    samples = tmp_path / "s.npz"
    draw = ["sample", "--target", "mog6", "--sampler", "unipc", "--steps", "10", "--n", "500", "--out", str(samples)]
    proc = subprocess.run([sys.executable, "-m", "scoredyn", *draw], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    reports = []
    for k in (1, 2):
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
        env.pop("WORLD_SIZE", None)
        launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(k), "--master_addr",
                  "127.0.0.1", "--master_port", str(_free_port())]  # fmt: skip
        args = ["evaluate", "--target", "mog6", "--samples", str(samples), "--metrics", "energy,mode_tv_exact",
                "--json"]  # fmt: skip
        proc = subprocess.run([*launch, "-m", "scoredyn", "--", *args], capture_output=True, text=True, env=env,
                              timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        reports.append(json.loads(proc.stdout))  # one report: rank 0 alone prints
    assert reports[0] == reports[1]
