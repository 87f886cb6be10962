"""`scoredyn demo` wall time on this machine (the target: under a minute on 2 CPU cores).

    python benchmarks/demo_time.py   -> benchmarks/results/demo_time.json
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record, write  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "scoredyn.cli", "demo", "--out", out], check=True, capture_output=True)
        wall = time.perf_counter() - t0
    print(f"scoredyn demo: {wall:.1f} s (process start and imports included)")
    write("demo_time.json", [record("demo_wall_time", wall, "s", "target: 60 s on 2 cores", 60.0, {"n": 2000})])


if __name__ == "__main__":
    main()
