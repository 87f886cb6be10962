"""Fuzzing the command line with malformed inputs: random corruptions of mixture targets, sample files,
training overrides and checkpoint folders. Every one must end as the README promises: exit status 2,
one line on stderr, no traceback, and no output file (nor a temporary one beside it).

Each corruption is built to be invalid (a negative variance, a truncated archive, a weight of the
wrong shape, ...), never merely unusual, so a run that succeeds is a failure of the test. The CLI runs
in this process (``scoredyn.app.cli.main`` with its own argv) so that hundreds of cases take seconds.
Hypothesis runs derandomized: the same examples on every run, so the suite cannot flake.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _cli import assert_refused, run_cli
from scoredyn.core.targets import random_mixture
from scoredyn.learning import TrainConfig, Trainer, apply_overrides, latest_checkpoint
from scoredyn.learning.config import config_to_dict

FUZZ = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


def _sample(args: list, out: Path) -> None:
    code, stderr = run_cli("sample", "--sampler", "ddim", "--steps", 2, "--n", 8, *args, "--out", out)
    assert_refused(code, stderr, out)


# ---- mixture targets ------------------------------------------------------------------------------------


def _leaf_paths(d: dict) -> list[tuple]:
    """Index paths to every number in a mixture dict (weights[k], means[k][i], covs[k][i][j])."""
    paths = [("weights", k) for k in range(len(d["weights"]))]
    paths += [("means", k, i) for k, m in enumerate(d["means"]) for i in range(len(m))]
    paths += [("covs", k, i, j) for k, c in enumerate(d["covs"]) for i in range(len(c)) for j in range(len(c))]
    return paths


def _set(d: dict, path: tuple, value) -> None:
    node = d
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


NOT_A_NUMBER = st.sampled_from([float("nan"), float("inf"), -float("inf"), "1.0", None, [], {}, [1.0, 2.0]])


TARGET_CORRUPTIONS = ["drop key", "not a number", "negative weight", "negative variance", "ragged mean",
                      "component count", "zero weights", "truncated", "not an object", "deep",
                      "garbage bytes"]  # fmt: skip


@st.composite
def bad_mixture_text(draw, kind: str) -> str:
    """A valid mixture's JSON with one corruption of ``kind`` that makes it invalid."""
    k, d = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    mix = random_mixture(d, k, seed=draw(st.integers(0, 100))).to_dict()
    if kind == "drop key":
        del mix[draw(st.sampled_from(["weights", "means", "covs"]))]
    elif kind == "not a number":
        _set(mix, draw(st.sampled_from(_leaf_paths(mix))), draw(NOT_A_NUMBER))
    elif kind == "negative weight":
        mix["weights"][draw(st.integers(0, k - 1))] = -draw(st.floats(0.01, 10))
    elif kind == "negative variance":  # a PSD matrix has a non-negative diagonal
        i = draw(st.integers(0, d - 1))
        mix["covs"][draw(st.integers(0, k - 1))][i][i] = -draw(st.floats(0.01, 10))
    elif kind == "ragged mean":
        mix["means"][draw(st.integers(0, k - 1))].append(draw(st.floats(-5, 5)))
    elif kind == "component count":
        mix["means"].append([0.0] * d)
    elif kind == "zero weights":
        mix["weights"] = [0.0] * k
    text = json.dumps(mix)
    if kind == "truncated":  # every strict prefix of an object's text is not JSON
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif kind == "not an object":
        text = json.dumps(draw(st.sampled_from([[mix], 3, "mog6", None, [], True])))
    elif kind == "deep":
        depth = draw(st.sampled_from([2_000, 100_000]))
        text = draw(st.sampled_from(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth]))
    elif kind == "garbage bytes":
        return draw(st.binary(min_size=1, max_size=64)).decode("latin-1") + "\x00"
    return text


@pytest.mark.parametrize("kind", TARGET_CORRUPTIONS)
@FUZZ
@given(data=st.data())
def test_malformed_targets_are_one_line(kind, data):
    text = data.draw(bad_mixture_text(kind))
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "target.json"
        target.write_text(text, encoding="latin-1")
        _sample(["--target", target], Path(tmp) / "s.npz")


# ---- sample files ---------------------------------------------------------------------------------------


SAMPLE_CORRUPTIONS = ["wrong dimension", "non-finite", "complex", "strings", "no samples key", "three axes",
                      "no rows", "truncated", "garbage", "object array", "header declares terabytes",
                      "member not an array"]  # fmt: skip


def _archive(member: bytes) -> bytes:
    """An ``.npz`` whose ``samples.npy`` member holds these bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("samples.npy", member)
    return buf.getvalue()


@st.composite
def bad_samples_file(draw, kind: str) -> tuple[str, bytes]:
    """(file name, bytes) of a sample file that evaluate must refuse against the 2-D mog6."""
    n = draw(st.integers(1, 50))
    x = np.random.default_rng(draw(st.integers(0, 100))).normal(size=(n, 2))
    if kind == "wrong dimension":
        x = np.zeros((n, draw(st.sampled_from([1, 3, 10]))))
    elif kind == "non-finite":
        x[draw(st.integers(0, n - 1)), draw(st.integers(0, 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    elif kind == "complex":
        x = x + 1j * draw(st.floats(0.1, 2))
    elif kind == "strings":
        x = x.astype(str)
    elif kind == "three axes":
        x = x.reshape(n, 2, 1)
    elif kind == "no rows":
        x = np.zeros((0, 2))
    buf = io.BytesIO()
    if kind == "object array":
        np.save(buf, np.array([{"a": 1}] * n, dtype=object), allow_pickle=True)  # must never be unpickled
        return "s.npy", buf.getvalue()
    if kind == "header declares terabytes":  # a small .npy (alone, or in an archive) whose header lies
        np.save(buf, x)
        member = buf.getvalue().replace(f"({n}, 2)".encode(), f"({draw(st.integers(10**11, 10**13))}, 2)".encode())
        return ("s.npy", member) if draw(st.booleans()) else ("s.npz", _archive(member))
    if kind == "member not an array":
        return "s.npz", _archive(pickle.dumps(x))  # never unpickled
    np.savez(buf, **{"other" if kind == "no samples key" else "samples": x})
    data = buf.getvalue()
    if kind == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "garbage":
        data = draw(st.binary(min_size=0, max_size=200))
    return "s.npz", data


@pytest.mark.parametrize("kind", SAMPLE_CORRUPTIONS)
@FUZZ
@given(data=st.data())
def test_malformed_sample_files_are_one_line(kind, data):
    name, data = data.draw(bad_samples_file(kind))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        code, stderr = run_cli("evaluate", "--target", "mog6", "--samples", path, "--json")
        assert_refused(code, stderr)


# ---- training overrides ---------------------------------------------------------------------------------

KEYS = config_to_dict(TrainConfig())
TYPED = [f"{s}.{k}" for s, sec in KEYS.items() for k, v in sec.items() if isinstance(v, int | float | list)
         and not isinstance(v, bool)]  # fmt: skip
RANGES = {"data.n": 0, "data.seed": -1, "model.hidden": 0, "model.depth": 0, "model.emb_dim": 0,
          "model.label_dropout": 1, "optim.lr": 0, "optim.batch_size": 0, "optim.steps": -1, "optim.ema_decay": 1.5,
          "optim.beta1": 1, "run.keep": 0, "run.log_every": 0, "run.ckpt_every": 0}  # fmt: skip
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


@st.composite
def bad_override(draw) -> str:
    kind = draw(st.sampled_from(["no equals", "unknown section", "unknown key", "wrong type", "out of range"]))
    if kind == "no equals":
        return draw(WORD)
    if kind == "unknown section":
        return f"{draw(WORD.filter(lambda w: w not in KEYS))}.{draw(WORD)}={draw(WORD)}"
    if kind == "unknown key":
        section = draw(st.sampled_from(sorted(KEYS)))
        return f"{section}.{draw(WORD.filter(lambda w: w not in KEYS[section]))}={draw(WORD)}"
    if kind == "wrong type":  # letters never parse as a number or a list of numbers
        return f"{draw(st.sampled_from(TYPED))}={draw(WORD.filter(lambda w: w not in ('inf', 'nan', 'infinity')))}"
    key = draw(st.sampled_from(sorted(RANGES)))
    return f"{key}={RANGES[key]}"


@settings(FUZZ, max_examples=40)
@given(items=st.lists(bad_override(), min_size=1, max_size=3))
def test_malformed_training_overrides_are_one_line(items):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        sets = [a for item in ["optim.steps=2", *items] for a in ("--set", item)]  # short, were one valid
        code, stderr = run_cli("train", "--out", out, *sets)
        assert_refused(code, stderr)
        assert not out.exists(), "a refused run left its folder"


# ---- checkpoint folders ---------------------------------------------------------------------------------

SMALL = ["data.name=mog6", "data.n=200", "model.hidden=8", "model.depth=1", "model.emb_dim=4", "optim.batch_size=16",
         "optim.steps=2", "run.ckpt_every=2", "run.log_every=1", "run.progress=false"]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fuzz-run") / "run"
    Trainer(apply_overrides(TrainConfig(), [*SMALL, f"run.out={out}"])).fit()
    return out


def _tensors_file(run: Path) -> tuple[Path, Path]:
    sidecar = latest_checkpoint(run / "checkpoints")
    return sidecar, sidecar.parent / json.loads(sidecar.read_text())["file"]


def _match_checksum(sidecar: Path, data: bytes) -> None:
    meta = json.loads(sidecar.read_text())
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    sidecar.write_text(json.dumps(meta))


SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


CHECKPOINT_CORRUPTIONS = ["truncated", "flipped byte", "truncated, checksum matched", "wrong shape", "non-finite",
                          "run.json not a run", "sidecar not a sidecar", "tensors missing", "run.json missing",
                          "run.json garbage", "run.json field", "sidecar field", "no ema weights",
                          "config builds a huge net"]  # fmt: skip
RUN_FIELDS = {"dim": ["2", 0, -1, 2.5, None, 10**12, True], "num_classes": ["0", -1, 1.5, None],
              "sigma_data": ["1", -1.0, None, [1.0]], "parameterization": ["nope", 3, None],
              "data_mean": ["x", [0.0], [0.0, 0.0, 0.0], [[0.0, "a"]]], "data_cov": [[1.0, 0.0], "x", None],
              "data_file": ["x", {"standardize": {"mean": [0.0], "std": [1.0, 1.0]}},
                            {"standardize": {"mean": [0.0, 0.0], "std": [1.0, 0.0]}}]}  # fmt: skip
SIDECAR_FIELDS = {"step": [None, -1, "4", 1.5], "groups": [3, None, [1, 2], "ema"]}


@st.composite
def checkpoint_corruption(draw, kind: str):
    """A function that breaks a copy of a one-checkpoint run folder beyond use, by ``kind``."""
    frac, byte, value = draw(st.floats(0, 0.99)), draw(st.integers(0, 255)), draw(JSON_VALUES)
    pos = draw(st.floats(0, 0.999))

    def corrupt(run: Path) -> None:
        sidecar, tensors = _tensors_file(run)
        data = tensors.read_bytes()
        if kind == "truncated":
            tensors.write_bytes(data[: int(frac * len(data))])
        elif kind == "flipped byte":  # the sha256 no longer matches
            i = int(pos * len(data))
            tensors.write_bytes(data[:i] + bytes([data[i] ^ (byte or 1)]) + data[i + 1 :])
        elif kind == "truncated, checksum matched":
            data = data[: int(frac * len(data))]
            tensors.write_bytes(data)
            _match_checksum(sidecar, data)
        elif kind in ("wrong shape", "non-finite"):
            state = safetensors.torch.load(data)
            names = sorted(k for k in state if k.startswith("ema/module."))  # the weights sampling reads
            name = names[int(pos * len(names))]
            if kind == "wrong shape":
                state[name] = torch.zeros(*state[name].shape, 2)
            else:
                state[name] = state[name].clone()
                state[name].view(-1)[int(frac * state[name].numel())] = math.nan
            data = safetensors.torch.save(state)
            tensors.write_bytes(data)
            _match_checksum(sidecar, data)
        elif kind == "run.json not a run":
            (run / "run.json").write_text(json.dumps(value if not isinstance(value, dict) else {"x": value}))
        elif kind == "sidecar not a sidecar":
            sidecar.write_text(json.dumps(value))
        elif kind == "tensors missing":
            tensors.unlink()
        elif kind == "run.json missing":
            (run / "run.json").unlink()
        elif kind == "run.json garbage":
            (run / "run.json").write_bytes(bytes([byte]) * (1 + int(frac * 50)))
        elif kind in ("run.json field", "sidecar field"):
            path, fields = (run / "run.json", RUN_FIELDS) if kind == "run.json field" else (sidecar, SIDECAR_FIELDS)
            doc = json.loads(path.read_text())
            key = sorted(fields)[int(pos * len(fields))]
            doc[key] = fields[key][int(frac * len(fields[key]))]
            path.write_text(json.dumps(doc))
        elif kind == "no ema weights":  # a checkpoint that kept the raw weights alone, checksum matched
            state = {k: v for k, v in safetensors.torch.load(data).items() if not k.startswith("ema/")}
            data = safetensors.torch.save(state)
            tensors.write_bytes(data)
            _match_checksum(sidecar, data)
            meta = json.loads(sidecar.read_text())
            meta["groups"] = [g for g in meta["groups"] if g != "ema"]
            sidecar.write_text(json.dumps(meta))
        elif kind == "config builds a huge net":  # 1e7 hidden units: terabytes, were it built before checking
            doc = json.loads((run / "run.json").read_text())
            doc["config"]["model"]["hidden"] = 10**7 + byte
            (run / "run.json").write_text(json.dumps(doc))

    return corrupt


@pytest.mark.parametrize("kind", CHECKPOINT_CORRUPTIONS)
@FUZZ
@given(data=st.data())
def test_corrupt_checkpoint_folders_are_one_line(trained, kind, data):
    corrupt = data.draw(checkpoint_corruption(kind))
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(trained, run)
        corrupt(run)
        _sample(["--checkpoint", run], Path(tmp) / "s.npz")


@pytest.mark.parametrize(
    "file, key, value",
    [("run.json", k, v) for k, vs in RUN_FIELDS.items() for v in vs]
    + [("sidecar", k, v) for k, vs in SIDECAR_FIELDS.items() for v in vs],
    ids=lambda v: str(v)[:24],
)
def test_every_bad_run_or_sidecar_field_is_one_line(trained, tmp_path, file, key, value):
    """Each value of each field that rebuilding the model reads, made wrong in turn."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    path = run / "run.json" if file == "run.json" else _tensors_file(run)[0]
    doc = json.loads(path.read_text())
    doc[key] = value
    path.write_text(json.dumps(doc))
    _sample(["--checkpoint", run], tmp_path / "s.npz")
