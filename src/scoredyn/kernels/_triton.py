"""Whether a Triton kernel can run on a tensor's device.

Triton compiles for CUDA; with ``TRITON_INTERPRET=1`` (set before ``triton`` is first imported) it
runs the same kernels on CPU tensors through its NumPy interpreter, which is how CI checks them.
"""

from __future__ import annotations

import functools
import os

import torch


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


_JITTED: dict[tuple[object, bool], object] = {}


def jit(fn):
    """``triton.jit(fn)`` for the mode in force (compiled, or interpreted under ``TRITON_INTERPRET``):
    Triton fixes the mode when a function is decorated, so each kernel is decorated once per mode,
    on first use, rather than at import."""
    import triton

    key = (fn, interpreting())
    if key not in _JITTED:
        _JITTED[key] = triton.jit(fn)
    return _JITTED[key]
