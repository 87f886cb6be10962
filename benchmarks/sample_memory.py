"""Peak memory of `scoredyn sample` against N: the exact field evaluated in row chunks (the default
budget, ``scoredyn.core.fields.base.FIELD_CHUNK_BYTES``) against one chunk for the whole batch.

Each configuration is one `python -m scoredyn sample` in its own process; its peak resident set size
is the kernel's ``ru_maxrss`` for that child (``os.wait4``). "One chunk" sets
``SCOREDYN_FIELD_CHUNK_BYTES`` to 2^62 bytes. ``--pre-change SRC`` also runs the package found in
another source tree (e.g. a git worktree of an earlier commit) through ``PYTHONPATH``, with its own
defaults. ``floor`` is the same command at N = 1000: the interpreter, torch and the CLI.

    python benchmarks/sample_memory.py [--quick] [--pre-change /path/to/old/src]
    -> benchmarks/results/sample_memory.json (quick_sample_memory.json with --quick)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record, write  # noqa: E402

from scoredyn.core.fields.base import CHUNK_BYTES_ENV, FIELD_CHUNK_BYTES  # noqa: E402

ONE_CHUNK = str(2**62)
SIZES = (200_000, 1_000_000, 2_000_000)
QUICK_SIZES = (20_000, 200_000)
SAMPLERS = ("unipc", "edm-heun")
TARGETS = ("mog6", "mog10")  # mog10: the registered 10-D mixture


def peak_rss(args: list[str], env_changes: dict[str, str], pythonpath: str | None = None) -> tuple[float, float]:
    """Peak RSS (MiB) and wall time (s) of ``python -m scoredyn ARGS`` in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k != CHUNK_BYTES_ENV} | env_changes
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.npz"
        with open(Path(tmp) / "stderr", "w+b") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "scoredyn", *args, "--out", str(out)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0 or not out.exists():
                err.seek(0)
                raise RuntimeError(f"scoredyn {' '.join(args)} failed:\n{err.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, wall  # Linux reports kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"N in {QUICK_SIZES} instead of {SIZES}")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--pre-change", metavar="SRC", help="also run the package under SRC (its src/ folder)")
    args = parser.parse_args()
    sizes = QUICK_SIZES if args.quick else SIZES
    filename = "quick_sample_memory.json" if args.quick else "sample_memory.json"
    records = []
    for target in TARGETS:
        base_cmd = ["sample", "--target", target, "--steps", str(args.steps)]
        floor, _ = peak_rss([*base_cmd, "--sampler", "unipc", "--n", "1000"], {})
        for sampler in SAMPLERS:
            for n in sizes:
                cmd = [*base_cmd, "--sampler", sampler, "--n", str(n)]
                chunked, wall = peak_rss(cmd, {})
                whole, wall_whole = peak_rss(cmd, {CHUNK_BYTES_ENV: ONE_CHUNK})
                settings = {"target": target, "sampler": sampler, "n": n, "steps": args.steps, "dtype": "float64",
                            "budget_bytes": FIELD_CHUNK_BYTES, "floor_mib": floor, "wall_s": wall,
                            "wall_s_one_chunk": wall_whole, "measure": "ru_maxrss of the child (os.wait4)"}  # fmt: skip
                line = f"{target:6s} {sampler:8s} N={n:>9,}: chunked {chunked:7.0f} MiB, one chunk {whole:7.0f} MiB"
                if args.pre_change:
                    old, wall_old = peak_rss(cmd, {}, pythonpath=args.pre_change)
                    settings.update(pre_change_mib=old, wall_s_pre_change=wall_old, pre_change_src=args.pre_change)
                    line += f", pre-change {old:7.0f} MiB"
                print(line + f" (floor {floor:.0f} MiB)", flush=True)
                name = f"sample-peak-rss-{target}-{sampler}-n{n}"
                records.append(record(name, chunked, "MiB", f"one chunk ({CHUNK_BYTES_ENV}=2^62)", whole, settings))
                path = write(filename, records)  # after every configuration: a long run keeps what it measured
    print("wrote", path)


if __name__ == "__main__":
    main()
