"""Progress bars and summaries on stderr (stdout stays clean for data), via rich."""

from __future__ import annotations

import time

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

    def __init__(self, total: int, done: int, audio_total: float, quiet: bool = False) -> None:
        self.audio_total = audio_total
        self.audio_done = 0.0
        self.started = time.perf_counter()
        self._progress = self._loading = None
        if not quiet:
            self._progress = Progress(
                TextColumn("infer"), BarColumn(bar_width=24), MofNCompleteColumn(), _AudioColumn(self),
                TimeElapsedColumn(), TimeRemainingColumn(), console=stderr, transient=False,
            )
            self._task = self._progress.add_task("infer", total=total, completed=done)
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
    progress = Progress(
        TextColumn("finetune"), BarColumn(bar_width=24), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=stderr,
    )
    task = progress.add_task("steps", total=total, completed=done, status="")  # a resumed run starts further on
    progress.start()
    return progress, task


def training_status(loss: float | None, wer: float | None) -> str:
    """The status beside a training progress bar: "loss 0.412  val WER 9.8%" (what is known)."""
    return "  ".join(part for part in (f"loss {loss:.3f}" if loss is not None else "",
                                       f"val WER {wer:.1%}" if wer is not None else "") if part)


def print_summary(title: str, pairs: list[tuple[str, str]], errors: list[str], quiet: bool = False,
                  max_errors: int = 20) -> None:
    """A two-column summary table, then the errors (always shown, even when quiet)."""
    if not quiet:
        table = Table(title=title, show_header=False)
        table.add_column(style="bold")
        table.add_column(justify="right")
        for key, value in pairs:
            table.add_row(key, value)
        stderr.print(table)
    for line in errors[:max_errors]:
        stderr.print(Text(f"error: {line}", style="red"), soft_wrap=True)
    if len(errors) > max_errors:
        stderr.print(f"... and {len(errors) - max_errors} more errors", style="red")
