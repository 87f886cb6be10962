"""Which backend runs: whether Triton can run on a tensor's device, the one check of a backend name,
and the one check of a fused kernel's arithmetic precision.

Triton compiles for CUDA; with ``TRITON_INTERPRET=1`` (set before ``triton`` is first imported) it
runs the same kernels on CPU tensors through its NumPy interpreter, which is how CI checks them.

Precision of the fused kernels' matrix products on float32 (``tl.dot``'s ``input_precision``; the
``precision`` argument of ``mixture_langevin`` and ``kernel_sums``):

- ``ieee`` (the default): float32 fused multiply-adds on the ordinary FP32 lanes, no tensor cores.
  Each product is exact before its one rounding, as in a float32 matmul without TF32, so the kernels
  keep the float32 accuracy of the plain torch path; their sums are ordered to keep it (the SVGD
  kernel sums each tile, then adds the tiles with compensation).
- ``tf32x3``: each operand split into a TF32 high part and a TF32 low part, three tensor-core
  products (low x low dropped): up to about 1e-6 relative error per product where float32 rounds to
  6e-8, and the products summed as the tensor cores sum them, which no standard fixes. Usually near
  float32; not guaranteed to be.
- ``tf32``: one tensor-core pass on operands cut to TF32's 10 explicit mantissa bits: about 5e-4 to
  1e-3 relative error in every product, and not random (it does not average out over a sum). Ask for
  it only where a 1e-3 result will do.

Whatever the precision, ``tl.exp`` compiles to the GPU's approximate base-2 exponential (a
special-function unit) after a multiply by ``log2 e``: a relative error of a few 1e-7 plus ``6e-8 |z|``
for ``exp(z)``, float32 level. float64 particles run ``ieee`` only (TF32 is a float32 format): a TF32
variant asked for with them is refused rather than ignored. The interpreter computes every variant in
plain float32 (NumPy), so there the three agree to rounding; on a GPU ``benchmarks/gpu_check.py``
measures each against float64 and against the plain float32 path.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import torch

__all__ = ["PRECISIONS", "triton_available", "interpreting", "triton_runs_on", "check_backend", "check_precision",
           "jit"]  # fmt: skip

#: The fused kernels' product precisions (module doc); the first is the default.
PRECISIONS = ("ieee", "tf32x3", "tf32")


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


def check_precision(precision: str, dtype: torch.dtype) -> str:
    """``precision`` if it is one of ``PRECISIONS`` and can apply to particles of ``dtype``: a TF32
    variant needs float32 (``ValueError`` naming the argument and the value otherwise)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "ieee" and dtype == torch.float64:
        raise ValueError(f"precision {precision!r} is a float32 mode (TF32 tensor cores); float64 runs only 'ieee'")
    return precision


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
