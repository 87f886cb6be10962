"""Scaling plots from the speed benchmarks' JSON: time per step against N (Langevin: linear; SVGD:
quadratic) and Langevin's cost per particle-step against D and K.

    python benchmarks/scaling_plots.py [--prefix quick_]   -> benchmarks/results/scaling.png

Reads ``langevin_throughput.json`` and ``svgd_step.json`` (or their ``quick_`` versions from
``scoredyn bench --quick``) in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS  # noqa: E402

from scoredyn.app.viz import save_figure  # noqa: E402
from scoredyn.app.viz.scaling import scaling_figure  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", default="", help="'quick_' to plot the files of `scoredyn bench --quick`")
    ap.add_argument("--out", default=str(RESULTS / "scaling.png"))
    args = ap.parse_args()
    fig = scaling_figure(RESULTS / f"{args.prefix}langevin_throughput.json", RESULTS / f"{args.prefix}svgd_step.json")
    save_figure(fig, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
