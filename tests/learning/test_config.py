import dataclasses
import json
import tomllib

import pytest

from scoredyn.learning import (
    DataConfig,
    ModelConfig,
    ObjectiveConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_toml,
    load_toml,
    validate,
)


def _custom() -> TrainConfig:
    """A config that differs from the defaults in every section, with awkward strings and floats."""
    return TrainConfig(
        data=DataConfig(name='mix "a"\\b\tc\nd é \x7f.json', n=123, seed=7),
        model=ModelConfig(net="unet", parameterization="x0", hidden=32, channel_mult=(1, 2, 4), sigma_data=0.1 + 0.2,
                          conditional=True, label_dropout=0.0),
        objective=ObjectiveConfig(name="edm", process="edm", time="lognormal", t_min=0.0, p_mean=-1e-300, probes=3),
        optim=OptimConfig(lr=1.0 / 3.0, weight_decay=1e-5, warmup=0, grad_clip=0.0, steps=10, ema_decay=0.0),
        run=RunConfig(out="runs/é x", seed=3, device="cuda:1", amp=False, keep=1, progress=False, compile=True),
    )


def test_defaults_are_the_documented_ones():
    d = config_to_dict(TrainConfig())
    assert d["data"] == {"name": "mog6", "n": 20000, "seed": 0}
    assert d["model"] == {"net": "mlp", "parameterization": "", "hidden": 256, "depth": 4, "emb_dim": 128,
                          "channels": 32, "channel_mult": [1, 2], "sigma_data": 0.0, "conditional": False,
                          "label_dropout": 0.1, "particles": 0}
    assert d["objective"] == {"name": "dsm", "process": "vp", "time": "default", "t_min": 1e-3, "p_mean": -1.2,
                              "p_std": 1.2, "probes": 1}
    assert d["optim"] == {"lr": 2e-3, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999, "warmup": 200,
                          "grad_clip": 1.0, "batch_size": 512, "steps": 5000, "ema_decay": 0.999}
    assert d["run"] == {"out": "runs/default", "seed": 0, "device": "cpu", "amp": True, "log_every": 100,
                        "ckpt_every": 1000, "keep": 3, "progress": True, "compile": False}
    validate(TrainConfig())


@pytest.mark.parametrize("cfg", [TrainConfig(), _custom()], ids=["default", "custom"])
def test_toml_round_trip(tmp_path, cfg):
    text = dump_toml(cfg)
    assert tomllib.loads(text) == config_to_dict(cfg)  # the text is plain TOML, readable by any parser
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    back = load_toml(path)
    assert back == cfg  # exact, floats included (repr round-trips doubles)
    assert isinstance(back.model.channel_mult, tuple)


def test_toml_text_has_the_header_and_leaves_out_none():
    text = dump_toml(TrainConfig())
    assert text.startswith("# scoredyn training configuration\n")
    # TOML has no null: a None value is left out, so it reloads as the default
    cfg = dataclasses.replace(TrainConfig(), run=dataclasses.replace(RunConfig(), out=None))
    run = tomllib.loads(dump_toml(cfg))["run"]
    assert "out" not in run and run["seed"] == 0


def test_dict_round_trip_is_json():
    cfg = _custom()
    d = json.loads(json.dumps(config_to_dict(cfg)))
    assert d["model"]["channel_mult"] == [1, 2, 4]
    assert config_from_dict(d) == cfg


def test_load_toml_partial_file_keeps_defaults_and_coerces(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[optim]\nlr = 1\nsteps = 5e3\n[model]\nchannel_mult = [1, 1, 2]\nconditional = "yes"\n')
    cfg = load_toml(path)
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.steps == 5000 and isinstance(cfg.optim.steps, int)
    assert cfg.model.channel_mult == (1, 1, 2)
    assert cfg.model.conditional is True
    assert dataclasses.replace(cfg, optim=OptimConfig(), model=ModelConfig()) == TrainConfig()


def test_overrides_return_a_new_config_with_coerced_values():
    cfg = TrainConfig()
    out = apply_overrides(cfg, ["optim.lr=1e-3", "model.hidden=128", " run.amp = no ", "model.conditional=TRUE",
                                "model.channel_mult=1,2,4", "optim.steps=2e4", "data.name=rings",
                                "model.hidden=64"])  # the last one wins
    assert out.optim.lr == 1e-3
    assert out.model.hidden == 64
    assert out.run.amp is False and out.model.conditional is True
    assert out.model.channel_mult == (1, 2, 4)
    assert out.optim.steps == 20000 and isinstance(out.optim.steps, int)
    assert out.data.name == "rings"
    assert cfg == TrainConfig()  # not mutated
    assert apply_overrides(cfg, []) == cfg
    assert apply_overrides(cfg, ["model.channel_mult=[2, 3]"]).model.channel_mult == (2, 3)
    for text, value in [("1", True), ("0", False), ("yes", True), ("false", False)]:
        assert apply_overrides(cfg, [f"run.progress={text}"]).run.progress is value


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optim.lrr=1"], "unknown config key 'optim.lrr' (did you mean 'optim.lr'?)"),
        (["optimm.lr=1"], "unknown config section 'optimm' (did you mean 'optim'?)"),
        (["optim.lr"], "malformed override 'optim.lr': expected 'section.key=value'"),
        (["lr=1"], "malformed override 'lr=1': expected 'section.key=value'"),
        (["optim.lr.x=1"], "malformed override 'optim.lr.x=1': expected 'section.key=value'"),
        (["=1"], "malformed override '=1': expected 'section.key=value'"),
        ([3], "malformed override 3: expected 'section.key=value'"),
        ("optim.lr=1", "overrides must be a list"),
        (["optim.steps=1.5"], "config key 'optim.steps' must be an integer, got '1.5'"),
        (["optim.steps=abc"], "config key 'optim.steps' must be an integer, got 'abc'"),
        (["optim.lr=abc"], "config key 'optim.lr' must be a finite number, got 'abc'"),
        (["optim.lr=nan"], "config key 'optim.lr' must be a finite number, got 'nan'"),
        (["run.amp=maybe"], "config key 'run.amp' must be true or false, got 'maybe'"),
        (["model.channel_mult=1,a"], "config key 'model.channel_mult[1]' must be an integer, got 'a'"),
    ],
)
def test_override_errors(overrides, message):
    with pytest.raises(ValueError) as e:
        apply_overrides(TrainConfig(), overrides)
    assert str(e.value).startswith(message)


@pytest.mark.parametrize(
    "d, message",
    [
        ({"optim": {"steps": 1.5}}, "config key 'optim.steps' must be an integer, got 1.5"),
        ({"optim": {"steps": True}}, "config key 'optim.steps' must be an integer, got True"),
        ({"optim": {"lr": "1e-3x"}}, "config key 'optim.lr' must be a finite number, got '1e-3x'"),
        ({"run": {"amp": 2}}, "config key 'run.amp' must be true or false, got 2"),
        ({"data": {"name": 5}}, "config key 'data.name' must be a string, got 5"),
        ({"model": {"channel_mult": 2}}, "config key 'model.channel_mult' must be a list, got 2"),
        ({"model": {"channel_mult": [1, 2.5]}}, "config key 'model.channel_mult[1]' must be an integer, got 2.5"),
        ({"optim": 3}, "config section 'optim' must be a table of keys, got 3"),
        ({"extra": {}}, "unknown config section 'extra'"),
        ({"run": {"kep": 1}}, "unknown config key 'run.kep' (did you mean 'run.keep'?)"),
        ([1], "config must be a mapping of sections, got list"),
    ],
)
def test_from_dict_errors(d, message):
    with pytest.raises(ValueError) as e:
        config_from_dict(d)
    assert str(e.value) == message


def test_load_toml_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ValueError) as e:
        load_toml(missing)
    assert str(e.value) == f"cannot read config {missing}: No such file or directory"

    bad = tmp_path / "bad.toml"
    bad.write_text("[optim]\nlr = = 1\n")
    with pytest.raises(ValueError) as e:
        load_toml(bad)
    msg = str(e.value)
    assert msg.startswith(f"invalid TOML in {bad}: ") and "line 2" in msg and "\n" not in msg

    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[optim]\nlrr = 1\n")
    with pytest.raises(ValueError) as e:
        load_toml(unknown)
    assert str(e.value) == f"{unknown}: unknown config key 'optim.lrr' (did you mean 'optim.lr'?)"

    top = tmp_path / "top.toml"
    top.write_text("lr = 1\n")  # a key outside any section
    with pytest.raises(ValueError, match=r"unknown config section 'lr'"):
        load_toml(top)


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.steps=0", "config key 'optim.steps' must be >= 1, got 0"),
        ("optim.batch_size=0", "config key 'optim.batch_size' must be >= 1, got 0"),
        ("optim.lr=0", "config key 'optim.lr' must be > 0, got 0.0"),
        ("optim.ema_decay=1", "config key 'optim.ema_decay' must be in [0, 1), got 1.0"),
        ("optim.ema_decay=-0.1", "config key 'optim.ema_decay' must be in [0, 1), got -0.1"),
        ("optim.warmup=-1", "config key 'optim.warmup' must be >= 0, got -1"),
        ("optim.grad_clip=-1", "config key 'optim.grad_clip' must be >= 0 (0 = off), got -1.0"),
        ("optim.beta2=1", "config key 'optim.beta2' must be in [0, 1), got 1.0"),
        ("optim.weight_decay=-1e-3", "config key 'optim.weight_decay' must be >= 0, got -0.001"),
        ("model.label_dropout=1", "config key 'model.label_dropout' must be in [0, 1), got 1.0"),
        ("model.hidden=0", "config key 'model.hidden' must be >= 1, got 0"),
        ("model.channel_mult=", "config key 'model.channel_mult' must be a non-empty list of integers >= 1, got ()"),
        ("model.sigma_data=-1", "config key 'model.sigma_data' must be >= 0 (0 = estimate from the data), got -1.0"),
        ("run.keep=0", "config key 'run.keep' must be >= 1, got 0"),
        ("run.ckpt_every=0", "config key 'run.ckpt_every' must be >= 1, got 0"),
        ("objective.t_min=-1e-3", "config key 'objective.t_min' must be >= 0, got -0.001"),
        ("objective.probes=0", "config key 'objective.probes' must be >= 1, got 0"),
        ("objective.p_std=0", "config key 'objective.p_std' must be > 0, got 0.0"),
        ("objective.time=sobol",
         "config key 'objective.time' must be one of default, uniform, importance, lognormal, got 'sobol'"),
        ("data.n=0", "config key 'data.n' must be >= 1, got 0"),
    ],
)
def test_validate_ranges(override, message):
    cfg = apply_overrides(TrainConfig(), [override])  # types are fine; only the range is wrong
    with pytest.raises(ValueError) as e:
        validate(cfg)
    assert str(e.value) == message


def test_validate_accepts_the_boundaries():
    validate(apply_overrides(TrainConfig(), ["optim.ema_decay=0", "optim.warmup=0", "optim.grad_clip=0",
                                             "objective.t_min=0", "model.label_dropout=0", "run.keep=1"]))


def test_validate_refuses_non_finite_floats_and_sizes_past_the_limits():
    from scoredyn.learning.config import SIZE_LIMITS, validate

    cfg = TrainConfig()
    with pytest.raises(ValueError, match="'optim.lr' must be finite"):
        validate(dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, lr=float("inf"))))
    for key, limit in SIZE_LIMITS.items():
        section, name = key.split(".")
        over = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{name: limit + 1})})
        with pytest.raises(ValueError, match=f"'{key}' must be at most"):
            validate(over)
        at = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{name: limit})})
        validate(at)  # the limit itself is allowed
