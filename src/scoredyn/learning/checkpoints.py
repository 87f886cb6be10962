"""Checkpoints: tensors in a safetensors file, everything else in a JSON sidecar; never pickle.

A checkpoint at step ``s`` in ``directory`` is two files::

    step-0000000s.safetensors   every tensor, keyed "group/name" (groups: "model", "ema", "optim", "rng", ...)
    step-0000000s.json          meta + {"step", "format", "file", "sha256", "groups"}

Both are written atomically (a temporary file in the same folder, fsync, ``os.replace``) and the
sidecar is written last: it is the commit marker, and it carries the SHA-256 of the tensors file, so
a checkpoint is either complete and verified or ignored. Optimizer and RNG states are split into
tensors (here) and JSON-able values (for the sidecar) by the helpers below, so a run resumes
exactly: the same parameters, optimizer moments and random draws as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import Tensor

from ..util.files import TMP_SUFFIX, atomic_write, file_sha256, read_json
from ..util.messages import one_line

__all__ = [
    "save_checkpoint",
    "latest_checkpoint",
    "newest_good_checkpoint",
    "load_checkpoint",
    "read_tensors",
    "optimizer_state_to_tensors",
    "optimizer_state_from_tensors",
    "rng_state_tensors",
    "restore_rng",
]

FORMAT = 1
_RESERVED = ("step", "format", "file", "sha256", "groups")
_SIDECAR = re.compile(r"step-(\d+)\.json")
_TENSORS = re.compile(r"step-(\d+)\.safetensors")
_TMP_PREFIX, _TMP_SUFFIX = ".step-", TMP_SUFFIX  # our temporary files: .step-XXXXXXXX.<ext>.<random>.tmp


def save_checkpoint(
    directory: str | os.PathLike,
    step: int,
    tensors: Mapping[str, Mapping[str, Tensor]],
    meta: Mapping[str, Any],
    keep: int,
) -> Path:
    """Write the checkpoint for ``step`` and keep only the newest ``keep``; returns the sidecar's path.

    Args:
        directory: folder of the run's checkpoints (created if missing).
        step: training step, an int >= 0; a checkpoint already at this step is replaced.
        tensors: ``{group: {name: tensor}}``; tensors are copied to contiguous CPU memory (so shared
            storage, e.g. tied weights, is fine). Group names must be non-empty and contain no "/".
        meta: JSON-able values stored in the sidecar (must not use the keys it adds itself:
            step, format, file, sha256, groups).
        keep: how many committed checkpoints to keep, >= 1.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep must be an int >= 1, got {keep!r}")
    clash = [k for k in _RESERVED if k in meta]
    if clash:
        raise ValueError(f"meta must not contain the reserved keys {clash}")
    flat = _flatten(tensors)
    stem = f"step-{step:08d}"
    sidecar = {**meta, "step": step, "format": FORMAT, "file": f"{stem}.safetensors", "sha256": "",
               "groups": list(tensors)}
    try:
        json.dumps(sidecar)
    except (TypeError, ValueError) as e:
        raise ValueError(f"meta is not JSON-serializable: {e}") from None

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # uncommit an older checkpoint at this step before its tensors file is replaced
    (directory / f"{stem}.json").unlink(missing_ok=True)
    data = safetensors.torch.save(flat)
    sidecar["sha256"] = hashlib.sha256(data).hexdigest()
    _write_atomic(directory / f"{stem}.safetensors", data)
    _write_atomic(directory / f"{stem}.json", (json.dumps(sidecar, indent=2) + "\n").encode())
    _prune(directory, keep)
    return directory / f"{stem}.json"


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The sidecar of the newest complete checkpoint in ``directory``, or None if there is none.

    A sidecar whose tensors file is missing, or whose SHA-256 does not match, is skipped with a
    warning; a tensors file without a sidecar (an interrupted write) is not a checkpoint.
    """
    sidecar, skipped = newest_good_checkpoint(directory)
    for why in skipped:
        warnings.warn(f"skipping checkpoint: {why}", stacklevel=2)
    return sidecar


def newest_good_checkpoint(directory: str | os.PathLike) -> tuple[Path | None, list[str]]:
    """``latest_checkpoint`` without the warnings: the newest sidecar whose tensors file is present and
    matches its SHA-256 (or None), and why each newer one was skipped, newest first."""
    directory = Path(directory)
    skipped: list[str] = []
    if not directory.is_dir():
        return None, skipped
    for _, sidecar in sorted(_committed(directory), reverse=True):
        try:
            _verified_tensors_file(sidecar)
        except ValueError as e:
            skipped.append(str(e))
            continue
        return sidecar, skipped
    return None, skipped


def load_checkpoint(
    sidecar_path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[dict[str, dict[str, Tensor]], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``({group: {name: tensor}}, sidecar)``.

    The returned meta is the whole sidecar (the saved meta plus step, format, file, sha256, groups).
    Raises ValueError (one line) for an unreadable sidecar, a missing tensors file or a hash mismatch.
    """
    sidecar_path = Path(sidecar_path)
    path, meta = _verified_tensors_file(sidecar_path)
    flat = read_tensors(path, device)
    groups: dict[str, dict[str, Tensor]] = {g: {} for g in meta["groups"]}
    for key, tensor in flat.items():
        group, _, name = key.partition("/")
        if group not in groups:
            raise ValueError(f"checkpoint {path} has tensor {key!r} outside the groups {meta['groups']}")
        groups[group][name] = tensor
    return groups, meta


def read_tensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """The tensors of a safetensors file: a file that is not one (truncated, a pickle, a ``torch.save``
    archive) is one ``ValueError`` naming it. safetensors parses its JSON header and raw buffers only:
    nothing is unpickled."""
    path = Path(path)
    try:
        flat = safetensors.torch.load_file(path, device=str(device))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for every malformed file
        raise ValueError(f"{path} is not a readable safetensors file ({one_line(e, 120)})") from None
    return flat


# --- optimizer and RNG state ------------------------------------------------------------------------


def optimizer_state_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split ``opt.state_dict()`` into tensors and JSON-able values.

    Tensor state entries become ``"state.{param_index}.{name}"`` (0-dim ``step`` tensors included;
    these are the live tensors, not copies: save them before the next step). The param-group
    hyperparameters and non-tensor state values go into the returned dict (for the sidecar).
    """
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    state_meta: dict[str, dict[str, Any]] = {}
    for index, entries in sd["state"].items():
        for name, value in entries.items():
            if isinstance(value, Tensor):
                tensors[f"state.{index}.{name}"] = value.detach()
            else:
                state_meta.setdefault(str(index), {})[name] = value
    groups = []
    for i, group in enumerate(sd["param_groups"]):
        plain = {}
        for name, value in group.items():
            if isinstance(value, Tensor):  # e.g. a tensor learning rate
                tensors[f"param_groups.{i}.{name}"] = value.detach()
            else:
                plain[name] = list(value) if isinstance(value, tuple) else value
        groups.append(plain)
    meta = {"param_groups": groups, "state": state_meta}
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise ValueError(f"optimizer state has a value that is neither a tensor nor JSON-able: {e}") from None
    return tensors, meta


def optimizer_state_from_tensors(
    opt: torch.optim.Optimizer, tensors: Mapping[str, Tensor], meta_part: Mapping[str, Any]
) -> None:
    """Load into ``opt`` the state split by :func:`optimizer_state_to_tensors` (inverse, exact).

    Tensors are handed over on the CPU; ``opt.load_state_dict`` then moves each to where ``opt`` keeps
    it (moments next to their parameter, ``step`` on the CPU unless capturable/fused).
    """
    state: dict[int, dict[str, Any]] = {}
    for index, entries in meta_part.get("state", {}).items():
        state.setdefault(int(index), {}).update(entries)
    groups = [dict(g) for g in meta_part["param_groups"]]
    for key, tensor in tensors.items():
        kind, index, name = _split3(key)
        if kind == "state":
            state.setdefault(index, {})[name] = tensor.cpu()
        elif kind == "param_groups" and index < len(groups):
            groups[index][name] = tensor.cpu()
        else:
            raise ValueError(f"unexpected optimizer tensor {key!r}")
    # JSON turned tuples (e.g. Adam's betas) into lists: give back the type the optimizer uses
    for group, current in zip(groups, opt.param_groups, strict=False):
        for name, value in group.items():
            if isinstance(current.get(name), tuple) and isinstance(value, list):
                group[name] = tuple(value)
    opt.load_state_dict({"state": state, "param_groups": groups})


def rng_state_tensors(generators: Mapping[str, torch.Generator]) -> dict[str, Tensor]:
    """The states of ``generators`` (any device) and of torch's global RNGs, as uint8 CPU tensors.

    Keys: each generator's name, ``"torch_global"`` for the global CPU RNG, and
    ``"torch_cuda.{i}"`` for each CUDA device's global RNG if CUDA has been initialised.
    """
    for name in generators:
        if name == "torch_global" or name.startswith("torch_cuda."):
            raise ValueError(f"generator name {name!r} is reserved for torch's global RNG")
    states = {name: g.get_state() for name, g in generators.items()}
    states["torch_global"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            states[f"torch_cuda.{i}"] = state
    return states


def restore_rng(generators: Mapping[str, torch.Generator], tensors: Mapping[str, Tensor]) -> None:
    """Set ``generators`` and torch's global RNGs to the states saved by :func:`rng_state_tensors`.

    Every generator must have a saved state and every saved generator state a generator (ValueError
    otherwise). Saved CUDA states are restored when CUDA is available, else skipped with a warning.
    """
    missing = [name for name in generators if name not in tensors]
    unknown = [k for k in tensors if k not in generators and k != "torch_global" and not k.startswith("torch_cuda.")]
    if missing or unknown:
        raise ValueError(f"rng state does not match the generators: missing {missing}, unexpected {unknown}")
    for name, g in generators.items():
        g.set_state(tensors[name].cpu())
    if "torch_global" in tensors:
        torch.set_rng_state(tensors["torch_global"].cpu())
    cuda = sorted(k for k in tensors if k.startswith("torch_cuda."))
    if cuda and not torch.cuda.is_available():
        warnings.warn("checkpoint has CUDA RNG states but CUDA is not available; not restored", stacklevel=2)
    elif cuda:
        for key in cuda:
            torch.cuda.set_rng_state(tensors[key].cpu(), int(key.split(".", 1)[1]))


# --- private ----------------------------------------------------------------------------------------


def _flatten(tensors: Mapping[str, Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """``{"group/name": tensor}`` with each tensor copied to its own contiguous CPU storage."""
    flat = {}
    for group, named in tensors.items():
        if not isinstance(group, str) or not group or "/" in group:
            raise ValueError(f"checkpoint group names must be non-empty strings without '/', got {group!r}")
        for name, tensor in named.items():
            if not isinstance(tensor, Tensor):
                raise ValueError(f"checkpoint entry {group}/{name} must be a tensor, got {type(tensor).__name__}")
            flat[f"{group}/{name}"] = tensor.detach().to("cpu", copy=True, memory_format=torch.contiguous_format)
    return flat


def _write_bytes(fh, data: bytes) -> None:
    fh.write(data)


def _write_atomic(path: Path, data: bytes) -> None:
    """``path`` is either the old file or all of ``data``, and the rename is durable (the sidecar commits)."""
    atomic_write(path, lambda fh: _write_bytes(fh, data), sync_folder=True)


def _committed(directory: Path) -> list[tuple[int, Path]]:
    """``(step, sidecar)`` for every sidecar in ``directory``."""
    found = []
    for p in directory.iterdir():
        m = _SIDECAR.fullmatch(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return found


def _prune(directory: Path, keep: int) -> None:
    """Keep the newest ``keep`` committed checkpoints; drop tensors files without a sidecar and our temp files."""
    committed = sorted(_committed(directory), reverse=True)
    for _, sidecar in committed[keep:]:
        sidecar.unlink(missing_ok=True)  # uncommit first, then delete the tensors
        sidecar.with_suffix(".safetensors").unlink(missing_ok=True)
    kept = {p.with_suffix(".safetensors").name for _, p in committed[:keep]}
    for p in directory.iterdir():
        orphan = _TENSORS.fullmatch(p.name) and p.name not in kept
        ours_tmp = p.name.startswith(_TMP_PREFIX) and p.name.endswith(_TMP_SUFFIX)
        if orphan or ours_tmp:
            p.unlink(missing_ok=True)


def _verified_tensors_file(sidecar: Path) -> tuple[Path, dict[str, Any]]:
    """The tensors file named by ``sidecar`` and the sidecar's contents, after checking its SHA-256."""
    meta = read_json(sidecar, "checkpoint sidecar")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not all(k in meta for k in _RESERVED):
        raise ValueError(f"{sidecar} is not a format-{FORMAT} checkpoint sidecar")
    step, groups = meta["step"], meta["groups"]
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"{sidecar}: its step must be an integer >= 0, got {str(step)[:40]!r}")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ValueError(f"{sidecar}: its groups must be a list of names, got {str(groups)[:60]!r}")
    name = meta["file"]
    if not isinstance(name, str) or Path(name).name != name:
        raise ValueError(f"{sidecar} names an invalid tensors file {name!r}")
    path = sidecar.parent / name
    try:
        digest = file_sha256(path)
    except OSError as e:
        raise ValueError(f"checkpoint {sidecar}: cannot read {path} ({e.strerror or e})") from None
    if digest != meta["sha256"]:
        expected = str(meta["sha256"])[:12]
        raise ValueError(f"checkpoint {sidecar}: {path.name} is corrupt (sha256 {digest[:12]}... != {expected}...)")
    return path, meta


def _split3(key: str) -> tuple[str, int, str]:
    kind, _, rest = key.partition(".")
    index, _, name = rest.partition(".")
    if not index.isdigit() or not name:
        raise ValueError(f"unexpected optimizer tensor {key!r}")
    return kind, int(index), name
