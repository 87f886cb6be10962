"""Which backend runs: whether Triton can run on a tensor's device, and the one check of a backend name.

Triton compiles for CUDA; with ``TRITON_INTERPRET=1`` (set before ``triton`` is first imported) it
runs the same kernels on CPU tensors through its NumPy interpreter, which is how CI checks them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import torch

__all__ = ["triton_available", "interpreting", "triton_runs_on", "check_backend", "jit"]


@functools.cache
def triton_available() -> bool:
    """``triton`` imports (it is an optional dependency: the ``gpu`` and ``test`` extras)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except ImportError:
        return False
    return True


def interpreting() -> bool:
    """Triton's interpreter is on (``TRITON_INTERPRET=1``): kernels run on CPU tensors."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def triton_runs_on(device: str | torch.device) -> bool:
    """A Triton kernel can run on ``device``: CUDA with triton, or any device under the interpreter."""
    if not triton_available():
        return False
    return torch.device(device).type == "cuda" or interpreting()


def check_backend(backend: str, choices: Sequence[str], device: str | torch.device, auto: str) -> str:
    """``backend`` if it is one of ``choices`` (``"auto"`` becomes ``auto``); an explicit ``"triton"``
    must be able to run on ``device`` (``ValueError`` naming the reason otherwise)."""
    if backend not in choices:
        raise ValueError(f"backend must be one of {', '.join(choices)}, got {backend!r}")
    if backend == "auto":
        return auto
    if backend == "triton" and not triton_runs_on(device):
        why = "triton is not installed" if not triton_available() else f"the tensor is on {device}, not CUDA"
        raise ValueError(f"backend 'triton' cannot run here: {why} (TRITON_INTERPRET=1 runs it on the CPU)")
    return backend


_JITTED: dict[tuple[object, bool], object] = {}


def jit(fn):
    """``triton.jit(fn)`` for the mode in force (compiled, or interpreted under ``TRITON_INTERPRET``):
    Triton fixes the mode when a function is decorated, so each kernel is decorated once per mode,
    on first use, rather than at import. The kernel's module gets its ``tl`` (``triton.language``)
    here too, so that nothing imports triton before a kernel runs."""
    import triton
    import triton.language

    if fn.__globals__.get("tl") is None:
        fn.__globals__["tl"] = triton.language
    key = (fn, interpreting())
    if key not in _JITTED:
        _JITTED[key] = triton.jit(fn)
    return _JITTED[key]
