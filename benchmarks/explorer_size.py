"""The default explorer page: its size and how long headless Chromium takes to open it (the targets:
under 5 MB, open in under 3 s).

    python benchmarks/explorer_size.py [--page F.html] [--loads 3]   -> benchmarks/results/explorer_size.json

Builds ``scoredyn explore --target mog6`` with the defaults (every sampler; or measures ``--page``), then
opens it ``--loads`` times in the system Chromium through Playwright and records the median time from
navigation to the page's ready flag (plotly.js inflated and run, the first run decoded and drawn), and
the mean time of one frame update.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record, write  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
SIZE_LIMIT, LOAD_LIMIT_MS = 5_000_000, 3000.0


def build(out: Path) -> dict:
    """Build the default page for mog6; its ``build_explorer`` summary."""
    from scoredyn.app.explorer import build_explorer
    from scoredyn.core.registry import resolve_target

    return build_explorer(resolve_target("mog6"), out)


def load_times(page_path: Path, loads: int) -> tuple[list[float], float]:
    """Milliseconds from navigation to ready, per fresh page; and the mean frame update (ms)."""
    from playwright.sync_api import sync_playwright

    ready, frame_ms = [], 0.0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            for i in range(loads):
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.goto(page_path.resolve().as_uri(), wait_until="load")
                page.wait_for_function("window.explorer && window.explorer.ready", timeout=60_000)
                ready.append(page.evaluate("explorer.readyMs"))
                if i == loads - 1:
                    frame_ms = page.evaluate("explorer.timeFrames(50)")
                page.close()
        finally:
            browser.close()
    return ready, frame_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, help="measure this page instead of building the default one")
    parser.add_argument("--loads", type=int, default=3, help="fresh page loads (the median is recorded)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        page = args.page or Path(tmp) / "explore.html"
        info = None
        if args.page is None:
            start = time.perf_counter()
            info = build(page)
            info["wall_s"] = time.perf_counter() - start
        size = page.stat().st_size
        ready, frame_ms = load_times(page, args.loads)
    load_ms = statistics.median(ready)
    settings = {
        "command": f"page {args.page}" if args.page else "scoredyn explore --target mog6 (defaults: every sampler)",
        "browser": "headless Chromium (Playwright), 1200 x 900, no GPU",
        "loads_ms": ready,
        "frame_update_ms": frame_ms,
    }
    if info:
        settings.update({k: info[k] for k in ("bytes_plotly", "bytes_data", "seconds")})
        settings["runs"] = len(info["runs"])
    records = [
        record("explorer_page_bytes", size, "bytes", "limit: 5 MB", SIZE_LIMIT, settings),
        record("explorer_load_ms", load_ms, "ms", "limit: open in 3 s", LOAD_LIMIT_MS, settings),
    ]
    path = write("explorer_size.json", records)
    built = f", built in {info['seconds']:.0f} s" if info else ""
    print(f"page {size / 1e6:.2f} MB, ready in {load_ms:.0f} ms (median of {args.loads}), "
          f"frame update {frame_ms:.0f} ms{built} -> {path}")  # fmt: skip


if __name__ == "__main__":
    main()
