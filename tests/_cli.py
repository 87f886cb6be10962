"""The command line run in the test's own process: hundreds of bad inputs take seconds, not minutes."""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from pathlib import Path

from scoredyn.app.cli import main


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python's own way of printing a warning (pytest would record it instead)."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_cli(*args) -> tuple[int, str]:
    """``scoredyn ARGS`` in this process: (exit status, stderr), every warning printed as a fresh
    process prints it."""
    err, argv, formatwarning = io.StringIO(), sys.argv, warnings.formatwarning
    sys.argv = ["scoredyn", *map(str, args)]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning
            main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv, warnings.formatwarning = argv, formatwarning
    return code, err.getvalue()


def assert_refused(code: int, stderr: str, out: Path | None = None) -> None:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert code == 2, f"exit {code}: {stderr}"
    assert len(lines) == 1 and lines[0].startswith("scoredyn: error:"), stderr
    assert "Traceback" not in stderr
    if out is not None:
        assert not out.exists() and not list(out.parent.glob(f".{out.name}*")), f"{out} was written"
