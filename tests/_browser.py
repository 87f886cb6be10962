"""Headless Chromium for tests that open HTML pages (the explorer, the report).

``open_page(url_or_path)`` (the ``browser_page`` fixture in ``test_browser.py``) opens a page in the
system Chromium through Playwright's sync API and returns ``(page, errors)``: ``errors`` collects every
console error and uncaught page exception while the page lives. Screenshots go to ``ARTIFACTS``
(``test-artifacts/`` at the repository root, not tracked).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def missing() -> str | None:
    """Why browser tests cannot run here, or ``None`` when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (python) is not installed"
    if shutil.which(CHROMIUM) is None:
        return f"no chromium at {CHROMIUM}"
    return None


@contextmanager
def browser() -> Iterator[object]:
    """A headless Chromium (Playwright ``Browser``), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def open_in(b, target: str | Path, *, width: int = 1200, height: int = 900, wait_for: str | None = None):
    """Open ``target`` (a URL, or a path opened as ``file://``) in a new page of browser ``b``.

    Returns ``(page, errors)``; ``errors`` is a live list of console errors and page exceptions.
    ``wait_for``: a JavaScript expression to wait for (truthy) after the load event.
    """
    url = target if isinstance(target, str) and "://" in target else Path(target).resolve().as_uri()
    page = b.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.goto(url, wait_until="load")
    if wait_for is not None:
        page.wait_for_function(wait_for, timeout=30_000)
    return page, errors


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/<name>.png`` and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
