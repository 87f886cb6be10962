"""Typed training configuration: dataclasses, loaded from TOML, overridden by ``section.key=value``.

A config has five sections, ``[data]``, ``[model]``, ``[objective]``, ``[optim]`` and ``[run]``; every
key has a default, so an empty file is a valid config. Values are coerced to the annotated type
(``int``, ``float``, ``bool``, ``str``, ``tuple[int, ...]``, ``X | None``) and anything unknown is an
error. Range checks live in :func:`validate`; names are resolved, and so checked, by their tables
(``learning.data.load_dataset``, ``learning.losses.OBJECTIVES``, ``core.registry.PROCESSES``).

Example::

    cfg = apply_overrides(load_toml("train.toml"), ["optim.lr=1e-3", "model.hidden=128"])
    validate(cfg)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import tomli_w

from ..util.messages import one_line
from .losses import TIME_SAMPLERS
from .nets import ENERGY_NETS

__all__ = [
    "DataConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "OptimConfig",
    "RunConfig",
    "TrainConfig",
    "TIME_SAMPLERS",
    "config_to_dict",
    "config_from_dict",
    "load_toml",
    "dump_toml",
    "apply_overrides",
    "validate",
]

@dataclass(frozen=True)
class DataConfig:
    name: str = "mog6"  # a dataset name from the registry, or a mixture JSON path
    n: int = 20000  # training-set size
    seed: int = 0


@dataclass(frozen=True)
class ModelConfig:
    net: str = "mlp"
    parameterization: str = ""  # "" = the objective's default; "energy" trains the net's scalar-energy version
    hidden: int = 256
    depth: int = 4
    emb_dim: int = 128
    channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2)
    sigma_data: float = 0.0  # 0 = estimate from the data's std
    conditional: bool = False
    label_dropout: float = 0.1
    particles: int = 0  # egnn: number of particles n (the data are n particles in dim / n dimensions)


@dataclass(frozen=True)
class ObjectiveConfig:
    name: str = "dsm"
    process: str = "vp"
    time: str = "default"  # one of TIME_SAMPLERS
    t_min: float = 1e-3
    p_mean: float = -1.2  # EDM log-normal sigma: ln sigma ~ N(P_mean, P_std^2)
    p_std: float = 1.2
    probes: int = 1  # Hutchinson / sliced probes per sample


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-3
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    warmup: int = 200
    grad_clip: float = 1.0  # 0 = off
    batch_size: int = 512
    steps: int = 5000
    ema_decay: float = 0.999


@dataclass(frozen=True)
class RunConfig:
    out: str = "runs/default"
    seed: int = 0
    device: str = "cpu"
    amp: bool = True  # bf16 autocast, used only on CUDA
    log_every: int = 100
    ckpt_every: int = 1000
    keep: int = 3  # checkpoints kept
    progress: bool = True
    compile: bool = False


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)


def _sections() -> dict[str, type]:
    return typing.get_type_hints(TrainConfig)


def config_to_dict(cfg: TrainConfig) -> dict[str, dict[str, Any]]:
    """``{section: {key: value}}`` with plain JSON types (tuples become lists)."""
    return {
        name: {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(getattr(cfg, name)).items()}
        for name in _sections()
    }


def config_from_dict(d: Mapping[str, Any]) -> TrainConfig:
    """Build a config from ``{section: {key: value}}``; missing keys keep their defaults.

    Raises ValueError for an unknown section or key, or a value that is not of (and cannot be coerced
    to) the key's type. Ranges are not checked here; see :func:`validate`.
    """
    if not isinstance(d, Mapping):
        raise ValueError(f"config must be a mapping of sections, got {type(d).__name__}")
    sections = _sections()
    built = {}
    for name, values in d.items():
        if name not in sections:
            raise ValueError(f"unknown config section {name!r}{_did_you_mean(name, sections)}")
        if not isinstance(values, Mapping):
            raise ValueError(f"config section {name!r} must be a table of keys, got {values!r}")
        hints = typing.get_type_hints(sections[name])
        kwargs = {}
        for key, value in values.items():
            full = f"{name}.{key}"
            if key not in hints:
                known = [f"{name}.{k}" for k in hints]
                raise ValueError(f"unknown config key {full!r}{_did_you_mean(full, known)}")
            kwargs[key] = _coerce(value, hints[key], full)
        built[name] = sections[name](**kwargs)
    return TrainConfig(**built)


def load_toml(path: str | os.PathLike) -> TrainConfig:
    """Read a config from a TOML file with tables ``[data]``, ``[model]``, ``[objective]``, ``[optim]``, ``[run]``.

    Raises ValueError (one line, naming the file) for a missing/unreadable file, a TOML syntax
    error, or an unknown/ill-typed key.
    """
    import tomllib  # Python >= 3.11

    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as e:
        raise ValueError(f"cannot read config {os.fspath(path)}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"invalid TOML in {os.fspath(path)}: {one_line(e)}") from None
    except RecursionError:
        raise ValueError(f"invalid TOML in {os.fspath(path)}: nested too deeply to parse") from None
    try:
        return config_from_dict(raw)
    except ValueError as e:
        raise ValueError(f"{os.fspath(path)}: {e}") from None


def dump_toml(cfg: TrainConfig) -> str:
    """The config as TOML text that :func:`load_toml` reads back to an equal config (written by ``tomli_w``,
    under a comment line naming the file).

    Keys whose value is ``None`` are left out (TOML has no null), so they reload as their default.
    """
    tables = {name: {k: v for k, v in values.items() if v is not None} for name, values in config_to_dict(cfg).items()}
    return "# scoredyn training configuration\n\n" + tomli_w.dumps(tables)


def apply_overrides(cfg: TrainConfig, overrides: Iterable[str]) -> TrainConfig:
    """A new config with ``"section.key=value"`` items applied in order (the last one wins).

    Values are strings, coerced like TOML values (``"1e-3"``, ``"true"``, ``"1,2"``). Raises
    ValueError for a malformed item, an unknown key, or a value of the wrong type.
    """
    if isinstance(overrides, str):
        raise ValueError(f"overrides must be a list of 'section.key=value' strings, got the string {overrides!r}")
    d = config_to_dict(cfg)
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"malformed override {item!r}: expected 'section.key=value'")
        key, value = (s.strip() for s in item.split("=", 1))
        section, dot, name = key.partition(".")
        if not dot or not section or not name or "." in name:
            raise ValueError(f"malformed override {item!r}: expected 'section.key=value'")
        if section not in d:
            raise ValueError(f"unknown config section {section!r}{_did_you_mean(section, d)}")
        if name not in d[section]:
            known = [f"{section}.{k}" for k in d[section]]
            raise ValueError(f"unknown config key {key!r}{_did_you_mean(key, known)}")
        d[section][name] = value
    return config_from_dict(d)


#: Sizes past which a network or a batch is no longer a request but a typo (torch would overflow or try
#: to allocate terabytes): each refused with its key.
SIZE_LIMITS = {"data.n": 2**31, "model.hidden": 2**16, "model.depth": 1024, "model.emb_dim": 2**16,
               "model.channels": 2**14, "model.particles": 2**16, "objective.probes": 2**10,
               "optim.batch_size": 2**24, "optim.steps": 2**62, "optim.warmup": 2**62}  # fmt: skip


def validate(cfg: TrainConfig) -> None:
    """Check value ranges; raises ValueError naming the first bad key and its value."""
    d, m, o, p, r = cfg.data, cfg.model, cfg.objective, cfg.optim, cfg.run
    checks = [
        ("data.n", d.n, d.n >= 1, ">= 1"),
        ("data.seed", d.seed, 0 <= d.seed < 2**63, "in [0, 2^63)"),
        ("model.hidden", m.hidden, m.hidden >= 1, ">= 1"),
        ("model.depth", m.depth, m.depth >= 1, ">= 1"),
        ("model.emb_dim", m.emb_dim, m.emb_dim >= 1, ">= 1"),
        ("model.channels", m.channels, m.channels >= 1, ">= 1"),
        ("model.channel_mult", m.channel_mult, len(m.channel_mult) > 0 and min(m.channel_mult) >= 1,
         "a non-empty list of integers >= 1"),
        ("model.sigma_data", m.sigma_data, m.sigma_data >= 0, ">= 0 (0 = estimate from the data)"),
        ("model.label_dropout", m.label_dropout, 0 <= m.label_dropout < 1, "in [0, 1)"),
        ("model.particles", m.particles, m.particles >= 2 * (m.net == "egnn"), ">= 2 for net = egnn, else >= 0"),
        (
            "model.net",
            m.net,
            m.parameterization != "energy" or m.net in ENERGY_NETS,
            f"one of {', '.join(ENERGY_NETS)} with model.parameterization = 'energy' (a scalar-energy net)",
        ),
        (
            "run.compile",
            r.compile,
            not (r.compile and m.parameterization == "energy"),
            "false with model.parameterization = 'energy' (its loss needs a double backward)",
        ),
        ("objective.time", o.time, o.time in TIME_SAMPLERS, f"one of {', '.join(TIME_SAMPLERS)}"),
        ("objective.t_min", o.t_min, o.t_min >= 0, ">= 0"),
        ("objective.p_std", o.p_std, o.p_std > 0, "> 0"),
        ("objective.probes", o.probes, o.probes >= 1, ">= 1"),
        ("optim.lr", p.lr, p.lr > 0, "> 0"),
        ("optim.weight_decay", p.weight_decay, p.weight_decay >= 0, ">= 0"),
        ("optim.beta1", p.beta1, 0 <= p.beta1 < 1, "in [0, 1)"),
        ("optim.beta2", p.beta2, 0 <= p.beta2 < 1, "in [0, 1)"),
        ("optim.warmup", p.warmup, p.warmup >= 0, ">= 0"),
        ("optim.grad_clip", p.grad_clip, p.grad_clip >= 0, ">= 0 (0 = off)"),
        ("optim.batch_size", p.batch_size, p.batch_size >= 1, ">= 1"),
        ("optim.steps", p.steps, p.steps >= 1, ">= 1"),
        ("optim.ema_decay", p.ema_decay, 0 <= p.ema_decay < 1, "in [0, 1)"),
        ("run.out", r.out, bool(str(r.out).strip()), "a folder (not empty)"),
        ("run.seed", r.seed, 0 <= r.seed < 2**63, "in [0, 2^63)"),
        ("run.log_every", r.log_every, r.log_every >= 1, ">= 1"),
        ("run.ckpt_every", r.ckpt_every, r.ckpt_every >= 1, ">= 1"),
        ("run.keep", r.keep, r.keep >= 1, ">= 1"),
    ]
    for key, value, ok, want in checks:
        if not ok:
            raise ValueError(f"config key {key!r} must be {want}, got {value!r}")
    for section, values in config_to_dict(cfg).items():
        for name, value in values.items():
            key = f"{section}.{name}"
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"config key {key!r} must be finite, got {value!r}")
            if key in SIZE_LIMITS and value > SIZE_LIMITS[key]:
                raise ValueError(f"config key {key!r} must be at most {SIZE_LIMITS[key]:,}, got {value!r}")
    if max(m.channel_mult) > SIZE_LIMITS["model.channels"]:
        raise ValueError(f"config key 'model.channel_mult' must be at most {SIZE_LIMITS['model.channels']:,}")


# --- coercion -------------------------------------------------------------------------------------

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` as type ``tp`` (one of the simple types a config field may have), else ValueError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"config key {key!r}: unsupported annotation {tp}")
        return _coerce(value, inner[0], key)
    if origin is tuple:
        if args[1:] != (Ellipsis,):
            raise TypeError(f"config key {key!r}: unsupported annotation {tp}")
        if isinstance(value, str):
            text = value.strip().strip("()[]").strip()
            value = [] if not text else [s.strip() for s in text.split(",")]
        if not isinstance(value, list | tuple):
            raise ValueError(f"config key {key!r} must be a list, got {value!r}")
        return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"config key {key!r} must be true or false, got {value!r}")
    if tp is int:
        number = _number(value)
        if number is None or (isinstance(number, float) and not number.is_integer()):
            raise ValueError(f"config key {key!r} must be an integer, got {value!r}")
        return int(number)
    if tp is float:
        number = _number(value)
        if number is None or not math.isfinite(number):
            raise ValueError(f"config key {key!r} must be a finite number, got {value!r}")
        return float(number)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"config key {key!r} must be a string, got {value!r}")
        return value
    raise TypeError(f"config key {key!r}: unsupported annotation {tp}")


def _number(value: Any) -> int | float | None:
    """An int or float read from a number or a numeric string; None for anything else (bools too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        for parse in (int, float):
            try:
                return parse(text)
            except ValueError:
                pass
    return None


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


