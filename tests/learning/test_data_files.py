"""A user's points from a file (``learning/datafiles.py``, ``load_dataset``): read, checked, split and
standardized; trained on from the CLI with the standardization undone when sampling; judged against the
held-out part with a floor between real points. Every bad file is one line and exit 2, and leaves no
run folder."""

from __future__ import annotations

import dataclasses
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from scoredyn.app.quality import judge_against_points
from scoredyn.app.sampling import sample
from scoredyn.learning import load_dataset, load_trained, read_points

RNG = np.random.default_rng(0)
POINTS = RNG.normal([100.0, -5.0, 2.0], [10.0, 1.0, 0.1], size=(400, 3))  # units far from 1: standardization shows


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "scoredyn", *map(str, args)], capture_output=True, text=True)


def _csv(path, rows, header=None):
    lines = ([",".join(header)] if header else []) + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_with_or_without_header_npy_and_npz_read_the_same_points(tmp_path):
    with_header = _csv(tmp_path / "a.csv", POINTS.tolist(), header=["x", "y", "z"])
    without = _csv(tmp_path / "b.csv", POINTS.tolist())
    np.save(tmp_path / "c.npy", POINTS)
    labels = (POINTS[:, 0] > 100).astype(np.int64)
    np.savez(tmp_path / "d.npz", x=POINTS, y=labels)
    for path in (with_header, without, tmp_path / "c.npy"):
        x, y = read_points(path)
        np.testing.assert_array_equal(x, POINTS)
        assert y is None
    x, y = read_points(tmp_path / "d.npz")
    np.testing.assert_array_equal(x, POINTS)
    np.testing.assert_array_equal(y, labels)
    assert load_dataset(str(tmp_path / "d.npz")).num_classes == 2  # labels make a conditional model possible


def _bad_files(tmp):
    """name -> (a bad file, a phrase its error must contain)."""
    bad = {}
    bad["nan"] = (_csv(tmp / "nan.csv", [[1, 2], ["nan", 3], [4, 5]]), "NaN or infinite")
    bad["inf"] = (_csv(tmp / "inf.csv", [[1, 2], [2, "inf"], [4, 5]]), "NaN or infinite")
    bad["ragged"] = (_csv(tmp / "ragged.csv", [[1, 2], [3, 4, 5]]), "ragged")
    bad["text"] = (_csv(tmp / "text.csv", [[1, 2], [3, "abc"]]), "not a number")
    bad["one column"] = (_csv(tmp / "one.csv", [[1], [2], [3]]), "at least 2 columns")
    np.savez(tmp / "float_labels.npz", x=POINTS, y=np.zeros(len(POINTS)))
    bad["float labels"] = (tmp / "float_labels.npz", "integers")
    np.savez(tmp / "short_labels.npz", x=POINTS, y=np.zeros(3, dtype=int))
    bad["label count"] = (tmp / "short_labels.npz", "one per point")
    np.save(tmp / "objects.npy", np.array([{"a": 1}, {"b": 2}], dtype=object), allow_pickle=True)
    bad["object array"] = (tmp / "objects.npy", "pickles are never loaded")
    (tmp / "pickle.npy").write_bytes(pickle.dumps(POINTS))
    bad["pickle"] = (tmp / "pickle.npy", "pickles are never loaded")
    np.savez(tmp / "no_x.npz", points=POINTS)
    bad["no x"] = (tmp / "no_x.npz", "no array 'x'")
    (tmp / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    bad["garbage npz"] = (tmp / "garbage.npz", "not a NumPy .npz")
    np.save(tmp / "complex.npy", POINTS + 1j)
    bad["complex"] = (tmp / "complex.npy", "real numbers")
    bad["empty"] = (_csv(tmp / "empty.csv", [], header=["a", "b"]), "no rows")
    bad["too few"] = (_csv(tmp / "few.csv", [[1, 2], [3, 4], [5, 6]]), "at least 4")
    return bad


def test_every_bad_file_is_one_line_naming_it(tmp_path):
    for name, (path, phrase) in _bad_files(tmp_path).items():
        with pytest.raises(ValueError) as info:
            load_dataset(str(path))
        message = str(info.value)
        assert phrase in message and str(path) in message and "\n" not in message, (name, message)


def test_split_and_standardization(tmp_path):
    np.save(tmp_path / "p.npy", POINTS)
    ds = load_dataset(str(tmp_path / "p.npy"), seed=3)
    assert ds.x.shape == (320, 3) and ds.held_out[0].shape == (80, 3)  # 20% held out
    torch.testing.assert_close(ds.x.double().mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(ds.x.double().std(0), torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0)
    # the points are stored float32: to_data gives the file's rows back to float32 precision (1e-5 of 100)
    back, held = ds.to_data(ds.x.double()).numpy(), ds.reference(10**9).double().numpy()

    def rows_of_file(points):
        nearest = np.abs(points[:, None, :] - POINTS[None]).max(-1)
        assert (nearest.min(1) < 1e-3).all()  # every point is a row of the file
        return set(nearest.argmin(1).tolist())

    train_rows, held_rows = rows_of_file(back), rows_of_file(held)  # the reference is in the file's units
    assert len(train_rows) == 320 and len(held_rows) == 80 and not train_rows & held_rows
    assert load_dataset(str(tmp_path / "p.npy"), seed=3).source == ds.source  # the split is the seed's
    assert ds.source["sha256"] and ds.source["standardize"]["mean"][0] == pytest.approx(100, abs=2)


def test_judging_against_held_out_points_has_a_floor_that_exact_samples_meet():
    """Samples of the data's own law score near their floor; shifted ones far above it. The ratio of one
    V-statistic to its rescaled floor from one real draw: fixed seeds, so it cannot flake; bounds at 3x
    (exact) and 10x (shifted by a quarter of a standard deviation) sit far outside the spread."""
    g = torch.Generator().manual_seed(0)
    data = torch.randn(3000, 2, generator=g, dtype=torch.float64)
    reference, real = data[:1000], data[1000:]
    same = torch.randn(800, 2, generator=g, dtype=torch.float64)
    report = judge_against_points(same, reference, real, seed=0)
    assert report["energy"]["ratio"] < 3 and report["mmd"]["ratio"] < 3
    shifted = judge_against_points(same + 0.25, reference, real, seed=0)
    assert shifted["energy"]["ratio"] > 10


TINY = ["--steps", 30, "--set", "model.hidden=32", "--set", "model.depth=2", "--set", "model.emb_dim=16",
        "--set", "optim.batch_size=64", "--set", "run.log_every=10"]  # fmt: skip


def test_train_sample_and_evaluate_on_a_csv_file(tmp_path):
    data = _csv(tmp_path / "points.csv", POINTS.tolist(), header=["a", "b", "c"])
    run = tmp_path / "run"
    proc = run_cli("train", "--data", data, "--out", run, *TINY)
    assert proc.returncode == 0, proc.stderr
    info = json.loads((run / "run.json").read_text())
    assert info["data_file"]["train"] == 320 and info["data_file"]["held_out"] == 80
    assert info["data_file"]["standardize"]["std"][0] == pytest.approx(10, rel=0.2)
    out = tmp_path / "s.npz"
    proc = run_cli("sample", "--checkpoint", run, "--sampler", "ddim", "--steps", 10, "--n", 200, "--out", out)
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as z:
        x = z["samples"]
    # the samples are in the file's units: the model's own (standardized) samples mapped by mean + std * z
    model = load_trained(run)
    raw = dataclasses.replace(model, info={k: v for k, v in model.info.items() if k != "data_file"})
    z = sample(raw, "ddim", steps=10, n=200, seed=0)[0].x.numpy()
    mean, std = (np.array(info["data_file"]["standardize"][k]) for k in ("mean", "std"))
    np.testing.assert_allclose(x, mean + std * z, rtol=1e-12, atol=1e-9)
    proc = run_cli("evaluate", "--checkpoint", run, "--samples", out, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["reference"] == 80 and report["energy"]["floor"] > 0


def test_bad_data_files_stop_train_with_one_line_and_no_run_folder(tmp_path):
    bad = _bad_files(tmp_path)
    for name in ("nan", "ragged", "pickle", "float labels"):
        run = tmp_path / f"run-{name.replace(' ', '-')}"
        proc = run_cli("train", "--data", bad[name][0], "--out", run, *TINY)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, (name, proc.stderr)
        assert bad[name][1] in proc.stderr and not run.exists(), name
    few = _csv(tmp_path / "few.csv", POINTS[:40].tolist())
    proc = run_cli("train", "--data", few, "--out", tmp_path / "run-few", *TINY)
    assert proc.returncode == 2 and "fewer than the batch size" in proc.stderr and not (tmp_path / "run-few").exists()


def test_evaluate_against_a_reference_file(tmp_path):
    """``evaluate --reference``: the samples against one half of the file, the floor between the halves.
    Fresh draws of the file's law are near the floor (below 3x); draws shifted by half a standard
    deviation are far above it (fixed seeds: the bounds cannot flake)."""
    points = tmp_path / "ref.npy"
    np.save(points, RNG.normal(size=(2000, 2)))
    good, bad = tmp_path / "good.npy", tmp_path / "bad.npy"
    np.save(good, RNG.normal(size=(600, 2)))
    np.save(bad, RNG.normal(size=(600, 2)) + 0.5)
    ratios = {}
    for name, path in (("good", good), ("bad", bad)):
        proc = run_cli("evaluate", "--samples", path, "--reference", points, "--json")
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert report["reference"] == 1000 and report["real"] == 600
        ratios[name] = report["energy"]["ratio"]
    assert ratios["good"] < 3 < 10 < ratios["bad"]
    proc = run_cli("evaluate", "--samples", good, "--reference", tmp_path / "missing.csv")
    assert proc.returncode == 2 and "no such data file" in proc.stderr
