"""Progress bars, error lines and summaries on stderr (stdout stays clean for data), via rich:
every command's and every trainer's, so that they look alike."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

stderr = Console(stderr=True)


def _bar(label: str, *columns: ProgressColumn, bar_width: int = 24) -> Progress:
    """A bar of `label`: the bar, done/total, `columns`, elapsed and remaining time."""
    return Progress(TextColumn(label), BarColumn(bar_width=bar_width), MofNCompleteColumn(), *columns,
                    TimeElapsedColumn(), TimeRemainingColumn(), console=stderr)


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
    with _bar(label, bar_width=30) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.3f}"


class _AudioColumn(ProgressColumn):
    """Audio hours done / total and the live RTFx (audio seconds per wall second)."""

    def __init__(self, owner: InferProgress) -> None:
        super().__init__()
        self.owner = owner

    def render(self, task) -> Text:
        o = self.owner
        elapsed = time.perf_counter() - o.started
        rtfx = o.audio_done / elapsed if elapsed > 0 else 0.0
        return Text(f"{o.audio_done / 3600:.2f}/{o.audio_total / 3600:.2f} h  RTFx {rtfx:.1f}")


class InferProgress:
    """Rows and audio hours transcribed, with live RTFx; silent when quiet. Until the first batch is
    done (the model loads meanwhile) a spinner says so, and goes: a model that fails to load leaves
    its one error line, not an empty bar, on the screen."""

    def __init__(self, total: int, done: int, audio_total: float, quiet: bool = False, label: str = "infer") -> None:
        self.audio_total = audio_total
        self.audio_done = 0.0
        self.started = time.perf_counter()
        self._progress = self._loading = None
        if not quiet:
            self._progress = _bar(label, _AudioColumn(self))
            self._task = self._progress.add_task(label, total=total, completed=done)
            self._todo = total - done
            self._loading = stderr.status(self._loading_text())

    def __enter__(self) -> InferProgress:
        if self._loading:
            self._loading.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._loading:
            self._loading.stop()
        elif self._progress:
            self._progress.stop()

    def _loading_text(self) -> str:
        return f"infer: loading the model and the first batch ({self._todo} rows to do)"

    def segmenting(self, done: int, total: int) -> None:
        """Long rows searched for speech so far, before the model loads."""
        if self._loading:
            self._loading.update(f"infer: finding the speech in long rows, {done}/{total}" if done < total
                                 else self._loading_text())

    def skip(self, rows: int) -> None:
        """`rows` more are done without the model (no speech in them, or audio that cannot be read)."""
        if self._progress:
            self._todo -= rows
            self._progress.advance(self._task, rows)

    def update(self, rows: int, audio_seconds: float) -> None:
        self.audio_done += audio_seconds
        if not self._progress:
            return
        if self._loading:
            self._loading.stop()
            self._loading = None
            self._progress.start()
        self._progress.advance(self._task, rows)


def training_progress(total: int, done: int) -> tuple[Progress, TaskID]:
    """A started progress bar of training steps on stderr (status: loss, validation WER), for trainers."""
    progress = _bar("finetune", TextColumn("{task.fields[status]}"))
    task = progress.add_task("steps", total=total, completed=done, status="")  # a resumed run starts further on
    progress.start()
    return progress, task


def training_status(loss: float | None, wer: float | None, baseline: float | None = None) -> str:
    """The status beside a training progress bar: "loss 0.412  val WER 24.1% → 9.8%" (what is known;
    WERs as fractions, the base model's first)."""
    wers = " → ".join(f"{w:.1%}" for w in (baseline, wer) if w is not None)
    if baseline is not None and wer is None:
        wers += " (base model)"
    return "  ".join(part for part in (f"loss {loss:.3f}" if loss is not None else "",
                                       f"val WER {wers}" if wers else "") if part)


def print_summary(title: str, pairs: list[tuple[str, str]], errors: list[str], quiet: bool = False,
                  max_errors: int = 20) -> None:
    """A two-column summary table, then the errors (always shown, even when quiet)."""
    if not quiet:
        table = Table(title=title, show_header=False)
        table.add_column(style="bold")
        table.add_column(justify="right", overflow="fold")  # a long path wraps, never loses its end
        for key, value in pairs:
            table.add_row(key, value)
        stderr.print(table)
    for line in errors[:max_errors]:
        stderr.print(Text(f"error: {line}", style="red"), soft_wrap=True)
    if len(errors) > max_errors:
        stderr.print(f"... and {len(errors) - max_errors} more errors", style="red")
