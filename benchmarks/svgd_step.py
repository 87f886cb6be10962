"""SVGD step time: scoredyn's chunked pairwise sums against the dense N x N x D formulation
(the particle-dynamics text's form), in one run, on the CPU by default.

    python benchmarks/svgd_step.py            # writes benchmarks/results/svgd_step.json
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record, write  # noqa: E402

from scoredyn.samplers.svgd import _svgd_direction_dense, svgd_direction  # noqa: E402


def best_of(fn, repeats=5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


_CHILD = """
import torch
from scoredyn.samplers.svgd import svgd_direction
torch.set_num_threads(2)
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])
x = torch.randn(20000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
before = status("VmRSS:")
svgd_direction(x, -x, 1.5, 1.0)
print(before, status("VmHWM:"))
"""


def extra_peak_bytes_n20000() -> int:
    """Peak resident memory added by one chunked SVGD step on 20,000 2-D particles: a fresh process
    resets its peak-RSS mark after imports (Linux ``clear_refs``) and reads it after the step."""
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True).stdout.split()
    before_kib, after_kib = int(out[0]), int(out[1])
    return (after_kib - before_kib) * 1024


def main() -> None:
    torch.set_num_threads(2)
    records = []
    g = torch.Generator().manual_seed(0)
    for d in (2, 10):
        for n in (1000, 2000, 5000):
            x = torch.randn(n, d, generator=g, dtype=torch.float64) * 3
            s = -x
            ours = best_of(lambda x=x, s=s: svgd_direction(x, s, 1.5, 1.0))
            dense = best_of(lambda x=x, s=s: _svgd_direction_dense(x, s, 1.5, 1.0), repeats=3)
            settings = {"n": n, "dim": d, "dtype": "float64", "threads": 2}
            records.append(record(f"svgd_step_n{n}_d{d}", ours, "s", "dense N x N x D tensor", dense, settings))
            records.append(
                record(f"svgd_pairs_per_s_n{n}_d{d}", n * n / ours, "pairs/s", "dense", n * n / dense, settings,
                       ratio=dense / ours)
            )
            print(f"D={d:2d} N={n:5d}: chunked {ours * 1e3:8.2f} ms, dense {dense * 1e3:8.2f} ms, x{dense / ours:.2f}")
    # memory at N = 20,000 (2-D): the dense form would need N^2 D 8 bytes = 6.4 GB for the offsets alone
    n = 20_000
    x = torch.randn(n, 2, generator=g, dtype=torch.float64) * 3
    t0 = time.perf_counter()
    svgd_direction(x, -x, 1.5, 1.0)
    wall = time.perf_counter() - t0
    dense_bytes = n * n * 2 * 8
    extra = max(extra_peak_bytes_n20000(), 1)
    print(f"N=20000 D=2: one chunked step {wall:.2f} s, extra peak memory {extra / 2**20:.0f} MiB; "
          f"the dense offsets alone would need {dense_bytes / 2**30:.1f} GiB")
    records.append(
        record("svgd_step_n20000_d2", wall, "s", "dense (offsets alone, bytes)", None,
               {"n": n, "dim": 2, "dense_offsets_bytes": dense_bytes})
    )
    records.append(
        record("svgd_extra_memory_n20000_d2", extra, "bytes", "dense offsets", dense_bytes,
               {"n": n, "dim": 2}, ratio=dense_bytes / extra)
    )
    print("wrote", write("svgd_step.json", records))


if __name__ == "__main__":
    main()
