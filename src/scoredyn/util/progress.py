"""A progress bar for long work (training, molecular dynamics), on stderr, or nothing at all."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["ProgressBar"]


class ProgressBar:
    """A rich progress bar of ``total`` steps on stderr, or nothing when ``enabled`` is false.

    ``columns`` are extra text columns, rich format strings over the fields given to ``update``
    (e.g. ``"loss {task.fields[loss]:.4g}"``), which start at the values of ``fields``. The bar is
    redrawn every ``every`` steps and at the last one.

    Example::

        with ProgressBar("md", steps, enabled=progress, every=100) as bar:
            for k in range(1, steps + 1):
                ...
                bar.update(k)
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        enabled: bool = True,
        done: int = 0,
        every: int = 1,
        columns: Sequence[str] = (),
        fields: Mapping[str, object] | None = None,
    ) -> None:
        self.label, self.total, self.enabled, self.done, self.every = label, total, enabled, done, max(1, every)
        self.columns, self.fields = tuple(columns), dict(fields or {})

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            extra = (TextColumn(c) for c in self.columns)
            self._bar = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), *extra,
                                 TimeRemainingColumn(), console=Console(stderr=True))  # fmt: skip
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.done, **self.fields)
        return self

    def update(self, step: int, **fields: object) -> None:
        """Show ``step`` steps done (and the new values of ``fields``)."""
        if self.enabled and (step % self.every == 0 or step == self.total):
            self._bar.update(self._task, completed=step, **fields)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.stop()
