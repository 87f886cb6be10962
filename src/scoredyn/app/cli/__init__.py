"""The ``scoredyn`` command line (DESIGN.md, "Command-line contract"). Thin: every command parses,
validates, calls the library, and writes atomically. Bad input ends with one line on stderr and
exit status 2 — never a traceback, never a half-written file."""

from __future__ import annotations

import re
import sys
import warnings

import torch
import typer

from ...util.messages import one_line
from . import bench, core, figures, grids, likelihood, pages, physics, training  # noqa: F401  (each registers its commands on the app)
from ._common import BadInput, app

__all__ = ["app", "main"]


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as one line (no source file, no source line): ``scoredyn: warning: ...``."""
    return f"scoredyn: warning: {one_line(message)}\n"


OUT_OF_MEMORY = "out of memory: use fewer particles, steps or rows (or a lower --memory-gib where a command has it)"


def _out_of_memory(e: RuntimeError) -> bool:
    """torch's failed allocations: ``torch.OutOfMemoryError`` (CUDA) and the CPU allocator's error."""
    return isinstance(e, torch.OutOfMemoryError) or "can't allocate memory" in str(e)


def _allocation(e: RuntimeError) -> str:
    """The size torch tried to allocate, from its message (``... allocate 8000000000 bytes ...``)."""
    match = re.search(r"allocate ([0-9.]+) ?(bytes|[KMGT]i?B)", str(e))
    if match is None:
        return "a failed allocation"
    size = float(match[1]) * {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}.get(match[2], 1)
    return f"{size / 2**30:,.3g} GiB asked for"


def main() -> None:
    """Entry point: run the app; user errors become one stderr line and exit status 2; warnings one line each."""
    warnings.formatwarning = _one_line_warning
    try:
        rv = app(standalone_mode=False)
    except (BadInput, ValueError) as e:
        print(f"scoredyn: error: {e}", file=sys.stderr)
        sys.exit(2)
    except MemoryError:
        print(f"scoredyn: error: {OUT_OF_MEMORY}", file=sys.stderr)
        sys.exit(2)
    except RuntimeError as e:
        from ...learning import TrainingDiverged

        if _out_of_memory(e):  # the budget was raised past what the machine has, or a GPU is full
            print(f"scoredyn: error: {OUT_OF_MEMORY} ({_allocation(e)})", file=sys.stderr)
            sys.exit(2)
        if not isinstance(e, TrainingDiverged):
            raise
        print(f"scoredyn: error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:  # an output that cannot be written, an input that cannot be read
        where = f": {e.filename}" if e.filename else ""
        print(f"scoredyn: error: {e.strerror or e}{where}", file=sys.stderr)
        sys.exit(2)
    except typer.TyperException as e:  # usage errors: unknown option, a value that does not parse
        if e.format_message():  # a bare `scoredyn` has printed its help and has nothing to add
            print(f"scoredyn: error: {e.format_message()}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("scoredyn: aborted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)
