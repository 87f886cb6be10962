"""Refresh the screenshots of every page in ``docs/images/``: the demo report, a training report, the
benchmarks report, the explorer (opened as a file and served over HTTP) and the interactive figures.

    python tools/screenshots.py [--out docs/images] [--work DIR] [--only explorer,figures]

Each page is built by the CLI as a user would build it (a short training run for the training
report), opened in headless Chromium (Playwright, ``/usr/bin/chromium``), and captured once it has
drawn. Console errors and network requests other than ``data:``/``blob:`` stop the script: a
screenshot of a broken page is worse than none. Takes a few minutes on 2 CPU cores (the demo, the
training run and the explorer's precomputation dominate).
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 900}
MAX_WIDTH = 1100  # pixels of a stored screenshot: enough to read, small enough for the repository


def scoredyn(*args: str) -> None:
    """Run ``python -m scoredyn ARGS`` and stop on failure (with its stderr)."""
    proc = subprocess.run([sys.executable, "-m", "scoredyn", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"scoredyn {' '.join(args)} failed:\n{proc.stderr[-2000:]}")


def build_pages(work: Path, only: set[str]) -> dict[str, Path]:
    """Build the pages asked for; returns name -> HTML file."""
    pages: dict[str, Path] = {}
    if "report-demo" in only:
        scoredyn("demo", "--out", str(work / "demo"))
        pages["report-demo"] = work / "demo" / "report.html"
    if "report-training" in only:
        scoredyn("train", "--data", "mog6", "--steps", "800", "--out", str(work / "mog6"), "--no-progress")
        scoredyn("report", str(work / "mog6"))
        pages["report-training"] = work / "mog6" / "report.html"
    if "report-benchmarks" in only:
        scoredyn("report", str(ROOT / "benchmarks" / "results"), "--out", str(work / "benchmarks.html"))
        pages["report-benchmarks"] = work / "benchmarks.html"
    if only & {"explorer", "explorer-served"}:
        scoredyn("explore", "--target", "mog6", "--out", str(work / "explore.html"))
        pages["explorer"] = pages["explorer-served"] = work / "explore.html"
    if "figures" in only:
        scoredyn("figures", "--target", "mog6", "--out", str(work / "figures.html"))
        pages["figures"] = work / "figures.html"
    return {k: v for k, v in pages.items() if k in only}


def served_url(path: Path) -> str:
    """Serve ``path`` with the explorer's own server (a daemon thread) and return its URL."""
    from scoredyn.app.explorer.serve import make_server

    server, url = make_server(path)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return url


def capture(browser, name: str, url: str) -> bytes:
    """A PNG of the page's first screen once it has drawn; stops on a console error or a request."""
    page = browser.new_page(viewport=VIEWPORT)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"exception: {e}"))
    local = ("data:", "blob:", "file:", "http://127.0.0.1")
    page.on("request", lambda r: None if r.url.startswith(local) else problems.append(f"request: {r.url}"))
    page.goto(url, wait_until="load")
    try:  # the explorer and the figures page say when they have drawn; reports are drawn at load
        page.wait_for_function("!document.body.dataset.hasOwnProperty('ready') || document.body.dataset.ready === '1'",
                               timeout=30_000)  # fmt: skip
    except Exception as e:  # noqa: BLE001 - report which page did not draw
        problems.append(f"not drawn in 30 s: {e}")
    page.wait_for_timeout(500)  # plotly's last transition
    png = page.screenshot(full_page=False)
    page.close()
    if problems:
        raise SystemExit(f"{name}: " + "; ".join(problems))
    return png


def shrink(png: bytes) -> bytes:
    """Scale to ``MAX_WIDTH`` and quantize to 256 colours (a screenshot of plots needs no more)."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    if img.width > MAX_WIDTH:
        img = img.resize((MAX_WIDTH, round(img.height * MAX_WIDTH / img.width)), Image.LANCZOS)
    out = io.BytesIO()
    img.quantize(256, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    return out.getvalue()


NAMES = ("report-demo", "report-training", "report-benchmarks", "explorer", "explorer-served", "figures")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="folder of the PNG files")
    parser.add_argument("--work", type=Path, default=None, help="folder for the built pages (default: temporary)")
    parser.add_argument("--only", default=",".join(NAMES), help=f"comma-separated subset of {', '.join(NAMES)}")
    args = parser.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if unknown := only - set(NAMES):
        raise SystemExit(f"unknown page(s): {', '.join(sorted(unknown))}; use {', '.join(NAMES)}")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        pages = build_pages(work, only)
        args.out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            for name, path in pages.items():
                url = served_url(path) if name == "explorer-served" else path.resolve().as_uri()
                target = args.out / f"{name}.png"
                tmp_png = target.with_suffix(".png.tmp")
                tmp_png.write_bytes(shrink(capture(browser, name, url)))
                tmp_png.replace(target)
                print(f"wrote {target} ({target.stat().st_size / 1e3:.0f} kB)")
            browser.close()


if __name__ == "__main__":
    main()
