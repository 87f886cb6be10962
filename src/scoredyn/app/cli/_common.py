"""Shared pieces of the command line: the app, the consoles, and the one-line user error."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ...core.registry import resolve_target

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="scoredyn: diffusion models as generative particle dynamics.",
)
err = Console(stderr=True, soft_wrap=True)  # a message is one line, however long its path
out = Console(width=None if sys.stdout.isatty() else 140)  # piped tables stay one line per row


class BadInput(Exception):
    """A user error: reported as one line, exit status 2."""


#: Seeds are integers in ``[0, 2^63)``: what ``torch.Generator.manual_seed`` takes without wrapping.
MAX_SEED = 2**63 - 1


def seed_option(help: str):  # noqa: A002 - typer's name for the option's text
    """A ``--seed`` option that refuses what a generator cannot take (negative, or 2^63 and above) as a
    usage error: one line, exit 2."""
    return typer.Option(min=0, max=MAX_SEED, help=help)


def fail(msg: str) -> None:
    raise BadInput(msg)


def check_device(name: str) -> str:
    if name not in ("cpu", "cuda"):
        fail(f"--device must be cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        fail("--device cuda asked for, but no CUDA device is available")
    return name


def progress(*, disable: bool = False) -> Progress:
    """A progress bar on stderr (shown on a terminal, and not when ``disable``: another process's)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=disable or not err.is_terminal,
    )


def resolve_source(target: str | None, checkpoint: Path | None, *, ema: bool = True, device: str = "cpu"):
    """Exactly one of --target / --checkpoint, resolved: (a mixture or a trained model, its label)."""
    if (target is None) == (checkpoint is None):
        fail("give exactly one of --target and --checkpoint")
    if target is not None:
        tg = resolve_target(target)
        return tg, tg.name
    from ...learning import load_trained

    return load_trained(checkpoint, ema=ema, device=device), str(checkpoint)
