"""A rich progress bar on stderr for the Trainer (instead of tqdm): steps, loss, validation WER (the
base model's first), ETA."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from asrctl.api import training_progress, training_status


class RichProgress(TrainerCallback):
    def __init__(self) -> None:
        self.progress: Any = None
        self.loss: float | None = None
        self.wer: float | None = None
        self.baseline: float | None = None  # the base model's validation WER, measured before train()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.progress, self.task = training_progress(state.max_steps, state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._update(state)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.loss = logs["loss"]
        self._update(state)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                    **kwargs: Any) -> None:
        if metrics and "eval_wer" in metrics and self.progress is not None:  # not the baseline's
            self.wer = metrics["eval_wer"]
        self._update(state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress:
            self._update(state)
            self.progress.stop()
            self.progress = None

    def _update(self, state: Any) -> None:
        if self.progress is not None:
            status = training_status(self.loss, self.wer, self.baseline)
            self.progress.update(self.task, completed=state.global_step, status=status)
