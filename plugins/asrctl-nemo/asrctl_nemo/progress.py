"""The core's training progress bar on stderr for Lightning (whose own bar writes to stdout)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from asrctl.progress import training_progress, training_status


class RichProgress(pl.Callback):
    def __init__(self) -> None:
        self.progress: Any = None

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.progress, self.task = training_progress(trainer.max_steps, trainer.global_step)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self._update(trainer)

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._update(trainer)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.progress:
            self._update(trainer)
            self.progress.stop()
            self.progress = None

    def _update(self, trainer: pl.Trainer) -> None:
        if self.progress is None:
            return
        metrics = trainer.callback_metrics
        loss, wer = metrics.get("train_loss"), metrics.get("val_wer")
        self.progress.update(self.task, completed=trainer.global_step,
                             status=training_status(None if loss is None else float(loss),
                                                    None if wer is None else float(wer)))
