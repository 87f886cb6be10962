"""A second device on a CPU-only machine, for tests that check every tensor follows the particles.

``foreign_device()`` is a context in which ``to_foreign(x)`` gives a tensor that reports another device
(``FOREIGN``) but holds real values on the CPU, so code that needs values (``.item()``, adaptive steps,
ESS decisions) runs as it would on an accelerator. Every operation is checked as CUDA checks it:

- an operation that mixes a foreign tensor with a CPU tensor of one or more dimensions raises
  ``RuntimeError("Expected all tensors to be on the same device ...")``; 0-dim CPU tensors mix freely
  (CUDA takes them as scalars);
- a random draw with a CPU generator that lands on the foreign device raises, as CUDA does for a CPU
  generator (the convention is to draw on the generator's device, then move);
- ``numpy()`` of a foreign tensor raises (use ``.cpu()``), ``tolist()`` and ``item()`` work;
- copies between the devices (``.to``, ``.cpu()``, ``copy_``) are allowed, and so is indexing a
  foreign tensor with CPU indices.

Its results are the CPU's, bit for bit. What it cannot see: a 0-dim CPU tensor in an operation that
CUDA would refuse it in (``torch.cat``, a matrix product), and anything in compiled or Triton code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

#: The device a foreign tensor reports. ``meta`` is a device every build has, the library treats it as any
#: device that is not the CPU, and its real tensors never arise inside the context: every operation is
#: intercepted first.
FOREIGN = torch.device("meta")

_CPU = torch.device("cpu")
# operations that may take a CPU tensor beside a foreign one: copies, and indices of a foreign tensor
_CROSS_DEVICE = {"copy_", "_to_copy", "_copy_from", "_copy_from_and_resize"}
_INDEXING = {"index", "index_put", "index_put_", "_index_put_impl_"}


class ForeignTensor(Tensor):
    """A tensor on ``FOREIGN`` whose values live in ``elem``, a CPU tensor (only inside ``foreign_device``)."""

    elem: Tensor
    __torch_function__ = torch._C._disabled_torch_function_impl

    @staticmethod
    def __new__(cls, elem: Tensor) -> ForeignTensor:
        return Tensor._make_wrapper_subclass(
            cls,
            elem.shape,
            strides=elem.stride(),
            storage_offset=elem.storage_offset(),
            dtype=elem.dtype,
            layout=elem.layout,
            device=FOREIGN,
            requires_grad=elem.requires_grad,
        )

    def __init__(self, elem: Tensor) -> None:
        self.elem = elem

    def __repr__(self) -> str:
        return f"ForeignTensor({self.elem!r})"

    def tolist(self):
        return self.elem.tolist()

    def numpy(self, *args, **kwargs):
        raise TypeError(f"can't convert {FOREIGN} device type tensor to numpy. Use Tensor.cpu() first.")

    def __array__(self, *args, **kwargs):
        return self.numpy()

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError(f"a foreign tensor reached {func} outside foreign_device()")


def _is_foreign_device(device) -> bool:
    return device is not None and torch.device(device) == FOREIGN


class _Checks(TorchDispatchMode):
    """Runs every operation on the CPU values, after the checks of the module docstring; ``copies`` lists
    the shapes of the tensors copied between the devices, ``(to_foreign, shape)``."""

    def __init__(self) -> None:
        super().__init__()
        self.copies: list[tuple[bool, tuple[int, ...]]] = []

    def _record(self, name: str, args: tuple, out_foreign: bool) -> None:
        src = args[1] if name == "copy_" else args[0]
        if isinstance(src, ForeignTensor) != out_foreign:
            self.copies.append((out_foreign, tuple(src.shape)))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        name = func.overloadpacket.__name__
        flat, _ = tree_flatten((args, kwargs))
        foreign = [a for a in flat if isinstance(a, ForeignTensor)]
        home = [a for a in flat if isinstance(a, Tensor) and not isinstance(a, ForeignTensor)]
        if kwargs.get("device") is not None:  # a factory or a copy says where its result goes
            out_foreign = _is_foreign_device(kwargs["device"])
            kwargs["device"] = _CPU
        elif name == "copy_":
            out_foreign = isinstance(args[0], ForeignTensor)
        else:
            out_foreign = bool(foreign)
        if foreign and name not in _CROSS_DEVICE:
            _check_mix(name, args, home)
        elif name in _CROSS_DEVICE:
            self._record(name, args, out_foreign)
        if out_foreign:
            _check_generator(name, flat)
        unwrapped_args, unwrapped_kwargs = tree_map(_unwrap, (args, kwargs))
        out = func(*unwrapped_args, **unwrapped_kwargs)
        written = _written(func, args, kwargs)
        if written is not None:
            return written  # in place (or out=): the object it wrote to
        return tree_map(lambda o: ForeignTensor(o) if out_foreign and isinstance(o, Tensor) else o, out)


def _written(func, args: tuple, kwargs: dict):
    """The argument an in-place or ``out=`` operation writes to and returns, else ``None``."""
    returns = func._schema.returns
    if len(returns) != 1 or returns[0].alias_info is None or not returns[0].alias_info.is_write:
        return None
    for i, arg in enumerate(func._schema.arguments):
        if arg.alias_info is not None and arg.alias_info.before_set == returns[0].alias_info.before_set:
            return args[i] if i < len(args) else kwargs.get(arg.name)
    return None


def _check_mix(name: str, args: tuple, home: list[Tensor]) -> None:
    """Raise where a CPU tensor of one or more dimensions meets a foreign one; the indices of a foreign
    tensor may be on the CPU (its values may not)."""
    if name in _INDEXING and isinstance(args[0], ForeignTensor):
        home = [a for a in args[2:3] if isinstance(a, Tensor) and not isinstance(a, ForeignTensor)]
    shapes = [tuple(h.shape) for h in home if h.ndim > 0]
    if shapes:
        raise RuntimeError(
            f"Expected all tensors to be on the same device, but found at least two devices, {FOREIGN} and cpu! "
            f"({name} got CPU tensors of shapes {shapes})"
        )


def _check_generator(name: str, flat: list) -> None:
    for g in flat:
        if isinstance(g, torch.Generator) and g.device.type == "cpu":
            raise RuntimeError(f"Expected a '{FOREIGN.type}' device type for generator but found 'cpu' ({name})")


def _unwrap(a):
    return a.elem if isinstance(a, ForeignTensor) else a


class _Factories(TorchFunctionMode):
    """``torch.tensor`` and ``torch.as_tensor`` with ``device=FOREIGN`` build on the CPU and wrap: they
    construct below the dispatcher, where ``_Checks`` would not see them (the copy to the device is
    recorded in ``checks.copies``, as it is one on an accelerator)."""

    def __init__(self, checks: _Checks) -> None:
        super().__init__()
        self.checks = checks

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in (torch.tensor, torch.as_tensor) and _is_foreign_device(kwargs.get("device")):
            data = args[0]
            if isinstance(data, ForeignTensor):
                kwargs.pop("device")
                return func(data, *args[1:], **kwargs)
            kwargs["device"] = _CPU
            built = func(*args, **kwargs)
            self.checks.copies.append((True, tuple(built.shape)))
            return ForeignTensor(built)
        return func(*args, **kwargs)


@contextlib.contextmanager
def foreign_device() -> Iterator[list[tuple[bool, tuple[int, ...]]]]:
    """The context in which foreign tensors exist and every operation is checked. It gives the list of the
    copies between the devices made in it, ``(to_foreign, shape)`` each (``.item()`` and ``tolist()`` are
    reads, not copies)."""
    checks = _Checks()
    with _Factories(checks), checks:
        yield checks.copies


def to_foreign(x: Tensor) -> Tensor:
    """``x`` moved to ``FOREIGN`` (inside ``foreign_device``)."""
    return x.to(FOREIGN)


def on_both(fn: Callable[[Callable[[Tensor], Tensor]], object], copies: list | None = None) -> tuple[object, object]:
    """``fn(move)`` run twice: on the CPU (``move`` leaves a tensor where it is) and inside
    ``foreign_device`` (``move = to_foreign``). Returns both results with every tensor on the CPU; in the
    second, each foreign tensor comes back as ``Moved(cpu_copy)``, so a comparison sees where it was.
    ``copies``, when given, receives the copies between the devices that ``fn`` made."""
    here = fn(lambda x: x)
    with foreign_device() as made:
        result = fn(to_foreign)
        if copies is not None:
            copies.extend(made)
        far = tree_map(lambda o: Moved(o.cpu()) if isinstance(o, ForeignTensor) else o, result)
    return here, far


class Moved(NamedTuple):
    """A result that came back from the foreign device (its values, on the CPU)."""

    value: Tensor


def assert_same_on_foreign(here, far, what: str = "result") -> None:
    """``far`` (from ``on_both``) is ``here`` bit for bit, and each of its tensors of one or more dimensions
    came back from the foreign device (followed the particles)."""
    flat_here, spec_here = tree_flatten(here)
    flat_far, spec_far = tree_flatten(far, is_leaf=lambda o: isinstance(o, Moved))
    assert spec_here == spec_far, f"{what}: structures differ"
    for i, (a, b) in enumerate(zip(flat_here, flat_far, strict=True)):
        if isinstance(a, Tensor):
            if a.ndim > 0:
                assert isinstance(b, Moved), f"{what}[{i}] {tuple(a.shape)} was left on the CPU"
            b = b.value if isinstance(b, Moved) else b
            assert torch.equal(a, b), f"{what}[{i}] differs on the foreign device"
        else:
            assert a == b or (a != a and b != b), f"{what}[{i}]: {a!r} != {b!r}"
