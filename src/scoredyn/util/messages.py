"""Messages for the one-line error contract: any exception's text as one line."""

from __future__ import annotations

__all__ = ["one_line"]


def one_line(message: object, limit: int | None = None) -> str:
    """``str(message)`` with every run of whitespace (newlines included) made one space, cut to ``limit``
    characters when given: a library's multi-line error text, fit to follow ``scoredyn: error:``."""
    text = " ".join(str(message).split())
    return text if limit is None else text[:limit]
