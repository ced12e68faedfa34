"""What the manifest commands print: one line per bad input, progress bars and tables on stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.text import Text

from asrctl.progress import stderr


class ErrorLog:
    """Bad inputs, each printed as one `error: FILE:LINE: reason` line when met; counted for the exit code."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, error: object) -> None:
        self.count += 1
        stderr.print(Text(f"error: {error}", style="red"), soft_wrap=True, highlight=False)


@contextmanager
def progress(label: str, total: int | None, quiet: bool = False) -> Iterator[Callable[..., None]]:
    """A bar on stderr; yields advance(n=1). Quiet, it yields a no-op."""
    if quiet:
        yield lambda n=1: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(bar_width=30), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=stderr) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.3f}"
