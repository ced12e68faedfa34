"""A rich progress bar on stderr for the Trainer (instead of tqdm): steps, loss, validation WER, ETA."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers import TrainerCallback

from asrctl.progress import stderr


class RichProgress(TrainerCallback):
    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.loss: float | None = None
        self.wer: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self.progress = Progress(
            TextColumn("finetune"), BarColumn(bar_width=24), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=stderr,
        )
        # A resumed run starts where its checkpoint left off.
        self.task = self.progress.add_task("steps", total=state.max_steps, completed=state.global_step, status="")
        self.progress.start()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._update(state)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.loss = logs["loss"]
        self._update(state)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                    **kwargs: Any) -> None:
        if metrics and "eval_wer" in metrics:
            self.wer = metrics["eval_wer"]
        self._update(state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress:
            self._update(state)
            self.progress.stop()
            self.progress = None

    def _update(self, state: Any) -> None:
        if self.progress is None:
            return
        status = "  ".join(part for part in (
            f"loss {self.loss:.3f}" if self.loss is not None else "",
            f"val WER {self.wer:.1%}" if self.wer is not None else "",
        ) if part)
        self.progress.update(self.task, completed=state.global_step, status=status)
