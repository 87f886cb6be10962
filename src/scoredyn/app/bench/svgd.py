"""SVGD benchmark: the pairwise sums (fused Triton on CUDA, the memory-budgeted chunked torch on the
CPU) against the dense ``(N, N, D)`` formulation, in the same run, over N and D.

Records (``pairs/s`` counts ``N^2`` kernel evaluations per direction evaluation):

- ``svgd_pairs_per_s_n{N}_d{D}``: the fused path's pairs/s; baseline the dense formulation where
  its estimated peak fits (``dense_fits``), else none.
- ``svgd_step_n{N}_d{D}``: one whole SVGD step (the exact mixture's score, the direction, the
  kick) in seconds (full: N = 1e5; quick: N = 5000).
- quick (CPU): ``svgd_extra_memory_n20000_d2``, the peak resident memory one step adds at
  N = 20,000 (a child process resets its peak mark after imports, Linux ``clear_refs``), and that
  step's time; baseline the dense offsets tensor alone.
- full (CUDA) also: the ``tf32x3`` kernel variant and the chunked torch path on the same GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from ...core.fields import AnalyticField
from ...core.processes import EDM
from ...core.targets import mog6, mog10
from ...kernels import triton_available
from ...samplers import svgd, svgd_direction
from .record import best_time, record

__all__ = ["run"]

#: N for each D: quick (CPU, a minute on 2 cores; N = 20,000 in 2-D is the memory child) and full (GPU).
QUICK_SIZES = {2: (1000, 2000, 5000), 10: (1000, 2000, 5000, 10000)}
FULL_SIZES = {2: (10_000, 30_000, 100_000, 300_000, 1_000_000), 10: (10_000, 30_000, 100_000, 300_000, 1_000_000)}
STEP_N = {True: 5000, False: 100_000}  # N of the whole-step timing, quick and full
H = 1.0  # bandwidth: the cost does not depend on it; the particles are N(0, 3^2 I)

_CHILD = """
import sys, time, torch
from scoredyn.samplers import svgd_direction
torch.set_num_threads(int(sys.argv[1]))
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])
x = 3.0 * torch.randn(20000, 2, generator=torch.Generator().manual_seed(0))
svgd_direction(x[:100], -x[:100] / 9.0, 1.0)  # first-call allocations are not the step's
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
before = status("VmRSS:")
t0 = time.perf_counter()
svgd_direction(x, -x / 9.0, 1.0)
print(before, status("VmHWM:"), time.perf_counter() - t0)
"""


def dense_direction(x: torch.Tensor, score: torch.Tensor, h: float, repulsion: float = 1.0) -> torch.Tensor:
    """The baseline: eq. 8 of Liu & Wang (2016) term by term through the ``(N, N, D)`` differences."""
    diff = x[:, None, :] - x[None, :, :]  # diff[i, j] = x_i - x_j
    k = torch.exp(-(diff**2).sum(-1) / h**2)  # k[i, j] = k(x_j, x_i)
    return (k @ score + repulsion * ((2.0 / h**2) * k[:, :, None] * diff).sum(1)) / x.shape[0]


def dense_bytes(n: int, d: int, element_size: int = 4) -> int:
    """Estimated peak of ``dense_direction``: three ``(N, N, D)`` tensors (the offsets, their
    squares, the kernel gradients) and two ``(N, N)``."""
    return (3 * n * n * d + 2 * n * n) * element_size


def dense_fits(n: int, d: int, device: torch.device, quick: bool) -> bool:
    """The dense formulation is timed only where its peak takes at most 1 GiB (CPU) or half the free
    GPU memory."""
    if device.type == "cuda":
        return dense_bytes(n, d) <= torch.cuda.mem_get_info(device)[0] // 2
    return dense_bytes(n, d) <= 2**30


def _timing(n: int) -> dict:
    """Repeats by size (CPU): the runs of seconds are timed once, without a warm-up."""
    if n <= 2000:
        return {"repeats": 5, "warmup": 1}
    return {"repeats": 2, "warmup": 1} if n <= 5000 else {"repeats": 1, "warmup": 0}


def _pairs_records(n: int, d: int, device: torch.device, quick: bool, fused: str) -> list[dict]:
    g = torch.Generator(device=device).manual_seed(n + d)
    x = 3.0 * torch.randn(n, d, generator=g, device=device)
    s = -x / 9.0  # the score of N(0, 3^2 I)
    settings = {"n": n, "dim": d, "dtype": "float32", "h": H, "backend": fused, "threads": torch.get_num_threads()}
    timing = _timing(n) if device.type == "cpu" else {"repeats": 3, "warmup": 1}
    ours = best_time(lambda: svgd_direction(x, s, H, backend=fused), device=device, **timing)
    dense = None
    if dense_fits(n, d, device, quick):
        dense = best_time(lambda: dense_direction(x, s, H), device=device, **timing)
    out = [
        record(f"svgd_pairs_per_s_n{n}_d{d}", n * n / ours, "pairs/s", "dense N x N x D tensors",
               None if dense is None else n * n / dense, settings,
               ratio=None if dense is None else dense / ours, device=device),
    ]  # fmt: skip
    line = f"D={d:2d} N={n:8d}: {fused} {ours * 1e3:9.2f} ms ({n * n / ours:.3g} pairs/s)"
    if dense is not None:
        line += f", dense {dense * 1e3:9.2f} ms, x{dense / ours:.1f}"
    if device.type == "cuda":  # the tf32x3 variant and the chunked torch path on the same GPU
        tf = best_time(lambda: svgd_direction(x, s, H, backend="triton", precision="tf32x3"), device=device, **timing)
        out.append(record(f"svgd_pairs_per_s_tf32x3_n{n}_d{d}", n * n / tf, "pairs/s", "fused, ieee products",
                          n * n / ours, {**settings, "precision": "tf32x3"}, ratio=ours / tf,
                          device=device))  # fmt: skip
        if n <= 300_000:
            ch = best_time(lambda: svgd_direction(x, s, H, backend="torch"), device=device, **timing)
            out.append(record(f"svgd_pairs_per_s_vs_chunked_n{n}_d{d}", n * n / ours, "pairs/s",
                              "chunked torch (memory budget)", n * n / ch, settings, ratio=ch / ours,
                              device=device))  # fmt: skip
            line += f", chunked torch x{ch / ours:.1f}, tf32x3 {tf * 1e3:.2f} ms"
    print(line, flush=True)
    return out


def _step_record(n: int, d: int, device: torch.device, fused: str, steps: int) -> dict:
    """One whole step: the exact mixture's score at sigma = 1 (EDM), the direction, the kick."""
    field = AnalyticField(mog6() if d == 2 else mog10(), EDM())
    x = 3.0 * torch.randn(n, d, generator=torch.Generator(device=device).manual_seed(1), device=device)
    grid = torch.tensor([1.0], dtype=torch.float64)  # EDM: sigma(t) = t
    wall = best_time(lambda: svgd(field, x, grid, steps_per_level=steps, backend=fused), device=device,
                     repeats=3 if device.type == "cuda" else 1)  # fmt: skip
    settings = {"n": n, "dim": d, "dtype": "float32", "backend": fused, "steps_timed": steps,
                "target": "mog6" if d == 2 else "mog10", "threads": torch.get_num_threads()}  # fmt: skip
    print(f"one step, D={d} N={n}: {wall / steps * 1e3:.2f} ms", flush=True)
    return record(f"svgd_step_n{n}_d{d}", wall / steps, "s", None, None, settings, device=device)


def _memory_records(threads: int) -> list[dict]:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(threads)], capture_output=True, text=True,
                         check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)}).stdout.split()  # fmt: skip
    extra = max((int(out[1]) - int(out[0])) * 1024, 1)
    wall = float(out[2])
    n, d = 20_000, 2
    offsets = n * n * d * 4
    settings = {"n": n, "dim": d, "dtype": "float32", "backend": "torch", "threads": threads}
    print(f"N=20000 D=2: one chunked direction {wall:.2f} s ({n * n / wall:.3g} pairs/s), extra peak "
          f"memory {extra / 2**20:.0f} MiB; the dense offsets alone would need {offsets / 2**30:.1f} GiB",
          flush=True)  # fmt: skip
    return [
        record("svgd_pairs_per_s_n20000_d2", n * n / wall, "pairs/s", "dense (does not fit)", None, settings),
        record("svgd_extra_memory_n20000_d2", extra, "bytes", "dense offsets tensor alone", offsets, settings,
               ratio=offsets / extra),
    ]  # fmt: skip


def run(*, quick: bool, device: str = "cpu", results=None) -> list[dict]:
    """Run the SVGD benchmark and return its records (the caller writes them; ``results`` unused).

    Args:
        quick: CPU sizes (N = 1e3 .. 2e4, about a minute on 2 cores) instead of the GPU sizes
            (N = 1e4 .. 1e6, D = 2 and 10).
        device: ``"cpu"`` or ``"cuda"``; the fused path is the Triton kernel on CUDA (with triton),
            else the chunked torch path.
    """
    dev = torch.device(device)
    fused = "triton" if dev.type == "cuda" and triton_available() else "torch"
    sizes = QUICK_SIZES if quick else FULL_SIZES
    records = []
    for d, ns in sizes.items():
        for n in ns:
            records += _pairs_records(n, d, dev, quick, fused)
    for d in (2, 10):
        records.append(_step_record(STEP_N[quick], d, dev, fused, steps=1 if quick else 10))
    if dev.type == "cpu" and sys.platform == "linux":
        records += _memory_records(torch.get_num_threads())
    return records
