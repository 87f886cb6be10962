import json
import warnings

import pytest
import torch

import scoredyn.learning.checkpoints as ckpt
from scoredyn.learning import (
    latest_checkpoint,
    load_checkpoint,
    optimizer_state_from_tensors,
    optimizer_state_to_tensors,
    restore_rng,
    rng_state_tensors,
    save_checkpoint,
)


def _bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same dtype, shape and bytes (so NaN payloads and -0.0 count, unlike torch.equal)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    a, b = a.contiguous().reshape(-1), b.contiguous().reshape(-1)
    if a.dtype == torch.bool:
        return torch.equal(a, b)
    return torch.equal(a.view(torch.uint8), b.view(torch.uint8))


def _files(d):
    return sorted(p.name for p in d.iterdir())


def _small_groups(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"model": {"w": torch.randn(3, 4, generator=g)}, "rng": {"x": torch.arange(5, dtype=torch.uint8)}}


def _mlp(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))


def _train(model, opt, steps, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(32, 3, generator=g)
        loss = (model(x) - x[:, :2].sin()).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_round_trip_is_bitwise_and_keeps_meta(tmp_path):
    base = torch.randn(4, 6, dtype=torch.float64)
    tied = torch.randn(5, 3)
    tensors = {
        "model": {
            "f32": torch.tensor([1.5, -0.0, float("nan"), float("inf"), 1e-45]),
            "f64": base,
            "view": base.t()[1:3],  # non-contiguous view sharing storage with f64
            "bf16": torch.randn(7).to(torch.bfloat16),
            "f16": torch.randn(2, 2).half(),
            "i64": torch.tensor([-(2**62), 3]),
            "bool": torch.tensor([True, False]),
            "scalar": torch.tensor(3.25),
            "empty": torch.zeros(0, 3),
            "enc/weight": tied,  # a "/" in a tensor name is fine
        },
        "ema": {"enc/weight": tied, "dec.weight": tied},  # tied weights: the same storage twice
        "empty_group": {},
    }
    meta = {"config": {"optim": {"lr": 1e-3}, "model": {"channel_mult": [1, 2]}}, "loss": 0.1 + 0.2, "name": "é"}
    side = save_checkpoint(tmp_path / "ck", 42, tensors, meta, keep=3)
    assert side == tmp_path / "ck" / "step-00000042.json"
    assert _files(tmp_path / "ck") == ["step-00000042.json", "step-00000042.safetensors"]

    loaded, got = load_checkpoint(side)
    assert set(loaded) == set(tensors)
    for group, named in tensors.items():
        assert set(loaded[group]) == set(named)
        for name, t in named.items():
            assert _bitwise_equal(loaded[group][name], t), (group, name)
            assert loaded[group][name].is_contiguous()
    assert {k: got[k] for k in meta} == meta
    assert got["step"] == 42 and got["format"] == 1 and got["file"] == "step-00000042.safetensors"
    assert got["groups"] == ["model", "ema", "empty_group"]
    assert len(got["sha256"]) == 64
    # the sidecar on disk is plain JSON with the same content
    assert json.loads(side.read_text()) == got
    # saving copied the tensors: changing the originals afterwards changes nothing on disk
    tied.add_(1.0)
    assert _bitwise_equal(load_checkpoint(side)[0]["ema"]["dec.weight"], loaded["ema"]["dec.weight"])


def test_model_state_dict_with_tied_weights_loads_strict(tmp_path):
    model = _mlp(0)
    model[2].weight = torch.nn.Parameter(torch.randn(2, 16))
    model.add_module("head", torch.nn.Linear(16, 2))
    model.head.weight = model[2].weight  # tied
    side = save_checkpoint(tmp_path, 1, {"model": model.state_dict()}, {}, keep=1)
    fresh = _mlp(1)
    fresh.add_module("head", torch.nn.Linear(16, 2))
    fresh.load_state_dict(load_checkpoint(side)[0]["model"], strict=True)
    for (name, p), (_, q) in zip(model.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert _bitwise_equal(p, q), name


def test_keep_prunes_to_the_newest(tmp_path):
    for step in [5, 10, 15, 20, 25]:
        save_checkpoint(tmp_path, step, _small_groups(step), {"s": step}, keep=2)
    assert _files(tmp_path) == ["step-00000020.json", "step-00000020.safetensors",
                                "step-00000025.json", "step-00000025.safetensors"]
    assert latest_checkpoint(tmp_path) == tmp_path / "step-00000025.json"
    # steps sort numerically, also past the 8 zero-padded digits
    save_checkpoint(tmp_path, 10**9, _small_groups(), {}, keep=2)
    assert latest_checkpoint(tmp_path) == tmp_path / "step-1000000000.json"
    assert "step-00000020.json" not in _files(tmp_path)


def test_resave_of_a_step_replaces_it(tmp_path):
    save_checkpoint(tmp_path, 3, _small_groups(0), {"v": 0}, keep=3)
    side = save_checkpoint(tmp_path, 3, _small_groups(1), {"v": 1}, keep=3)
    tensors, meta = load_checkpoint(side)
    assert meta["v"] == 1
    assert _bitwise_equal(tensors["model"]["w"], _small_groups(1)["model"]["w"])
    assert len(_files(tmp_path)) == 2


def _three(tmp_path):
    return [save_checkpoint(tmp_path, s, _small_groups(s), {}, keep=5) for s in (1, 2, 3)]


def test_latest_skips_a_truncated_tensors_file(tmp_path):
    sides = _three(tmp_path)
    newest = tmp_path / "step-00000003.safetensors"
    newest.write_bytes(newest.read_bytes()[:-7])
    with pytest.warns(UserWarning, match=r"step-00000003\.safetensors is corrupt"):
        assert latest_checkpoint(tmp_path) == sides[1]
    with pytest.raises(ValueError, match=r"corrupt \(sha256") as e:
        load_checkpoint(sides[2])
    assert "\n" not in str(e.value)


def test_latest_skips_a_hash_mismatch_and_a_missing_file(tmp_path):
    sides = _three(tmp_path)
    data = bytearray((tmp_path / "step-00000003.safetensors").read_bytes())
    data[-1] ^= 1  # one flipped bit in the last tensor's bytes: same size, still parseable
    (tmp_path / "step-00000003.safetensors").write_bytes(bytes(data))
    (tmp_path / "step-00000002.safetensors").unlink()
    with pytest.warns(UserWarning) as record:
        assert latest_checkpoint(tmp_path) == sides[0]
    messages = [str(w.message) for w in record]
    assert len(messages) == 2 and "is corrupt" in messages[0] and "cannot read" in messages[1]


def test_latest_ignores_tensors_without_sidecar_and_bad_sidecars(tmp_path):
    sides = _three(tmp_path)
    (tmp_path / "step-00000003.json").unlink()  # a write interrupted before the commit marker
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an uncommitted checkpoint is not worth a warning
        assert latest_checkpoint(tmp_path) == sides[1]
    (tmp_path / "step-00000002.json").write_text("{not json")
    with pytest.warns(UserWarning, match="cannot read checkpoint sidecar"):
        assert latest_checkpoint(tmp_path) == sides[0]
    (tmp_path / "step-00000001.json").write_text(json.dumps({"format": 1, "file": "../x", "step": 1, "sha256": "",
                                                             "groups": []}))
    with pytest.warns(UserWarning) as record:
        assert latest_checkpoint(tmp_path) is None
    assert ["cannot read checkpoint sidecar" in str(w.message) for w in record] == [True, False]
    assert "invalid tensors file '../x'" in str(record[1].message)
    assert latest_checkpoint(tmp_path / "missing") is None


def test_leftover_temp_files_are_ignored_then_cleaned(tmp_path):
    side = save_checkpoint(tmp_path, 1, _small_groups(), {}, keep=3)
    junk = [tmp_path / ".step-00000002.safetensors.k3j4.tmp", tmp_path / ".step-00000002.json.x9.tmp"]
    for p in junk:
        p.write_bytes(b"half a checkpoint")
    (tmp_path / "notes.txt").write_text("not ours")
    assert latest_checkpoint(tmp_path) == side
    save_checkpoint(tmp_path, 2, _small_groups(), {}, keep=3)
    assert _files(tmp_path) == ["notes.txt", "step-00000001.json", "step-00000001.safetensors",
                                "step-00000002.json", "step-00000002.safetensors"]


def test_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    side = save_checkpoint(tmp_path, 1, _small_groups(1), {"ok": True}, keep=3)
    before = _files(tmp_path)
    calls = []

    def crash_on(n):
        def write_half(fh, data):
            calls.append(len(data))
            if len(calls) == n:
                fh.write(data[: len(data) // 2])
                raise OSError("disk full")
            fh.write(data)
        return write_half

    # 1) the tensors file write dies halfway
    monkeypatch.setattr(ckpt, "_write_bytes", crash_on(1))
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 2, _small_groups(2), {}, keep=3)
    assert _files(tmp_path) == before  # no sidecar, no half file, no temp file
    assert latest_checkpoint(tmp_path) == side

    # 2) the sidecar write dies halfway: the tensors file is complete but never committed
    calls.clear()
    monkeypatch.setattr(ckpt, "_write_bytes", crash_on(2))
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 2, _small_groups(2), {}, keep=3)
    assert _files(tmp_path) == before + ["step-00000002.safetensors"]
    assert latest_checkpoint(tmp_path) == side
    assert load_checkpoint(side)[1]["ok"] is True

    # the next successful save removes the uncommitted tensors file
    monkeypatch.undo()
    save_checkpoint(tmp_path, 3, _small_groups(3), {}, keep=3)
    assert _files(tmp_path) == before + ["step-00000003.json", "step-00000003.safetensors"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"step": -1}, "step must be an int >= 0, got -1"),
        ({"step": 1.0}, "step must be an int >= 0, got 1.0"),
        ({"keep": 0}, "keep must be an int >= 1, got 0"),
        ({"meta": {"step": 3}}, "meta must not contain the reserved keys ['step']"),
        ({"meta": {"x": object()}}, "meta is not JSON-serializable"),
        ({"tensors": {"a/b": {}}}, "checkpoint group names must be non-empty strings without '/', got 'a/b'"),
        ({"tensors": {"model": {"w": [1.0]}}}, "checkpoint entry model/w must be a tensor, got list"),
    ],
)
def test_save_rejects_bad_input_and_writes_nothing(tmp_path, kwargs, message):
    args = {"step": 1, "tensors": _small_groups(), "meta": {}, "keep": 1} | kwargs
    with pytest.raises(ValueError) as e:
        save_checkpoint(tmp_path / "d", **args)
    assert str(e.value).startswith(message)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    lambda p: torch.optim.AdamW(p, lr=1e-2, betas=(0.8, 0.95), amsgrad=True),
    lambda p: torch.optim.SGD([{"params": p[:2], "lr": 0.05}, {"params": p[2:]}], lr=0.1, momentum=0.9),
], ids=["adamw", "adamw-amsgrad", "sgd-two-groups"])
def test_optimizer_resume_continues_bitwise(tmp_path, make_opt):
    model = _mlp(0)
    opt = make_opt(list(model.parameters()))
    _train(model, opt, 3, seed=1)

    optim_tensors, optim_meta = optimizer_state_to_tensors(opt)
    assert "state.0.step" in optim_tensors or "state.0.momentum_buffer" in optim_tensors
    side = save_checkpoint(tmp_path, 3, {"model": model.state_dict(), "optim": optim_tensors},
                           {"optim": optim_meta}, keep=1)

    # a fresh model and optimizer with different weights and hyperparameters, restored from disk
    tensors, meta = load_checkpoint(side)
    clone = _mlp(123)
    clone.load_state_dict(tensors["model"], strict=True)
    opt2 = make_opt(list(clone.parameters()))
    for group in opt2.param_groups:
        group["lr"] = 0.5
    optimizer_state_from_tensors(opt2, tensors["optim"], meta["optim"])
    def hyper(o):
        return [{k: v for k, v in group.items() if k != "params"} for group in o.param_groups]

    assert hyper(opt2) == hyper(opt)  # lr back, betas a tuple again
    for a, b in zip(opt.state.values(), opt2.state.values(), strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert _bitwise_equal(a[k], b[k]) and a[k].device == b[k].device, k

    # without the optimizer state the continuation differs: the check below can fail
    lost = _mlp(123)
    lost.load_state_dict(tensors["model"])
    _train(lost, make_opt(list(lost.parameters())), 5, seed=2)

    _train(model, opt, 5, seed=2)
    _train(clone, opt2, 5, seed=2)
    for p, q in zip(model.parameters(), clone.parameters(), strict=True):
        assert _bitwise_equal(p.detach(), q.detach())
    assert not all(torch.equal(p, r) for p, r in zip(model.parameters(), lost.parameters(), strict=True))


def test_optimizer_state_from_tensors_rejects_unknown_keys():
    model = _mlp(0)
    opt = torch.optim.AdamW(model.parameters())
    _train(model, opt, 1, seed=0)
    tensors, meta = optimizer_state_to_tensors(opt)
    with pytest.raises(ValueError, match="unexpected optimizer tensor 'bogus.1.x'"):
        optimizer_state_from_tensors(opt, {**tensors, "bogus.1.x": torch.zeros(1)}, meta)


def test_rng_restore_reproduces_the_draws(tmp_path):
    gens = {"data": torch.Generator().manual_seed(1), "noise": torch.Generator().manual_seed(2)}
    torch.randn(10, generator=gens["data"])  # move away from the seeded state
    state = rng_state_tensors(gens)
    assert set(state) >= {"data", "noise", "torch_global"}
    assert all(t.dtype == torch.uint8 and t.device.type == "cpu" for t in state.values())
    side = save_checkpoint(tmp_path, 0, {"rng": state}, {}, keep=1)

    def draw():
        return torch.randn(6, generator=gens["data"]), torch.rand(4, generator=gens["noise"]), torch.randn(3)

    first = draw()
    gens = {"data": torch.Generator().manual_seed(99), "noise": torch.Generator()}  # fresh generators
    torch.manual_seed(1234)
    restore_rng(gens, load_checkpoint(side)[0]["rng"])
    second = draw()
    for a, b in zip(first, second, strict=True):
        assert _bitwise_equal(a, b)
    assert not torch.equal(first[0], draw()[0])  # the draws really advance the state


def test_rng_names_must_match():
    state = rng_state_tensors({"data": torch.Generator()})
    with pytest.raises(ValueError, match=r"missing \['noise'\], unexpected \[\]"):
        restore_rng({"data": torch.Generator(), "noise": torch.Generator()}, state)
    with pytest.raises(ValueError, match=r"missing \[\], unexpected \['data'\]"):
        restore_rng({}, state)
    with pytest.raises(ValueError, match="reserved"):
        rng_state_tensors({"torch_global": torch.Generator()})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_resume(tmp_path):
    dev = torch.device("cuda")
    model = _mlp(0).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator(dev).manual_seed(5)
    torch.randn(3, device=dev)  # initialise CUDA's global RNG

    def steps(m, o, n):
        for _ in range(n):
            x = torch.randn(32, 3, generator=g, device=dev)
            loss = (m(x) - x[:, :2].sin()).square().mean() + 1e-3 * torch.randn((), device=dev)
            o.zero_grad()
            loss.backward()
            o.step()

    steps(model, opt, 3)
    ot, om = optimizer_state_to_tensors(opt)
    rng = rng_state_tensors({"g": g})
    assert "torch_cuda.0" in rng
    side = save_checkpoint(tmp_path, 3, {"model": model.state_dict(), "optim": ot, "rng": rng}, {"optim": om}, 1)
    steps(model, opt, 5)

    tensors, meta = load_checkpoint(side, device="cuda")
    assert tensors["model"]["0.weight"].device.type == "cuda"
    clone = _mlp(1).to(dev)
    clone.load_state_dict(tensors["model"], strict=True)
    opt2 = torch.optim.AdamW(clone.parameters(), lr=1e-2)
    optimizer_state_from_tensors(opt2, tensors["optim"], meta["optim"])
    restore_rng({"g": g}, tensors["rng"])
    steps(clone, opt2, 5)
    for p, q in zip(model.parameters(), clone.parameters(), strict=True):
        assert _bitwise_equal(p.detach(), q.detach())
