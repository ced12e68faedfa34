"""Lightning callbacks of the nemo trainer: the core's progress bar on stderr (Lightning's own writes
to stdout), the step a run starts from, the random state kept in checkpoints, and Ctrl-C."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from asrctl.api import STOP_CHECK_STEPS, stop_requested, training_progress, training_status


class RichProgress(pl.Callback):
    def __init__(self) -> None:
        self.progress: Any = None
        self.wer: float | None = None
        self.baseline: float | None = None  # the base model's validation WER, measured before fit()

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.progress, self.task = training_progress(trainer.max_steps, trainer.global_step)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self._update(trainer)

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.progress is not None and "val_wer" in trainer.callback_metrics:  # in fit(), not the baseline's
            self.wer = float(trainer.callback_metrics["val_wer"])
        self._update(trainer)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.progress:
            self._update(trainer)
            self.progress.stop()
            self.progress = None

    def _update(self, trainer: pl.Trainer) -> None:
        if self.progress is None:
            return
        loss = trainer.callback_metrics.get("train_loss")
        self.progress.update(self.task, completed=trainer.global_step,
                             status=training_status(None if loss is None else float(loss), self.wer, self.baseline))


class StartingStep(pl.Callback):
    """The step training starts from: 0, or the one --resume restored from last.ckpt."""

    step = 0

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.step = trainer.global_step


class RandomState(pl.Callback):
    """The random generators' state in each checkpoint, restored by --resume (Lightning keeps none):
    a resumed run then draws the dropout masks and augmentations the uninterrupted run would have.
    Restored when training starts, after Lightning has made the data loader's iterator (which draws
    a seed of its own that the uninterrupted run drew at the start of the epoch)."""

    restored: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.restored = state

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.restored is None:
            return
        random.setstate(self.restored["python"])
        np.random.set_state(self.restored["numpy"])
        torch.set_rng_state(self.restored["torch"])
        if self.restored["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self.restored["cuda"])
        self.restored = None


class StopWhenAsked(pl.Callback):
    """Ctrl-C during training (`stop_requested`) ends it after the optimizer step in hand, with a
    checkpoint of that step in `last` to --resume from, so what was learnt since the last one is
    kept. Every process stops at the same step, whichever was asked: they agree every
    STOP_CHECK_STEPS steps (a collective, which waits for the device); alone, a process asks itself
    every step. Stopping here, between steps, rather than wherever the signal lands also spares the
    data-loader workers a batch cut off while they hand it over."""

    def __init__(self, last: Path) -> None:
        self.last = last
        self.step = -1

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:  # gradients still accumulating: no step to save yet
            return
        self.step = trainer.global_step
        if trainer.world_size > 1 and trainer.global_step % STOP_CHECK_STEPS:
            return
        if trainer.strategy.reduce_boolean_decision(stop_requested(), all=False):
            trainer.save_checkpoint(self.last)
            raise KeyboardInterrupt  # Lightning's graceful end for it, which train() turns into asrctl's
