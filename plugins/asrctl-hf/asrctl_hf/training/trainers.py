"""The transformers Trainer, adjusted for speech: length-grouped batches from known durations, CTC validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import SequentialSampler
from transformers import Seq2SeqTrainer, Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from asrctl.api import STOP_CHECK_STEPS, BucketBatches, stop_requested


class EpochSeededLengthSampler(LengthGroupedSampler):
    """Batches of similar durations, shuffled by a generator seeded from (seed, epoch).

    The Trainer calls set_epoch before each epoch, so a run resumed in epoch N draws the batches
    the uninterrupted run drew, whatever the global random state was when it was restarted.
    """

    def __init__(self, batch_size: int, lengths: list[float], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator = torch.Generator().manual_seed(self.seed + epoch)


class SpeechTrainerMixin:
    args: Any
    train_dataset: Any

    def __init__(self, *args: Any, bucketing: dict[str, Any] | None = None, input_seconds: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The models average their loss themselves and ignore num_items_in_batch, so the Trainer must
        # divide by the gradient accumulation steps (it skips that for models whose forward takes **kwargs).
        self.model_accepts_loss_kwargs = False
        self.bucketing = bucketing  # BucketBatches' settings, by duration or for a mix
        self.input_seconds = input_seconds  # what each input is padded to, where the model has one length

    def get_train_dataloader(self) -> Any:
        """With batch_seconds, batches from duration buckets (asrctl's BucketBatches) instead of a
        fixed count, and with several weighted sources, batches of their mix; Accelerate shards them
        among processes and skips those done on --resume. A model of one input length (Whisper)
        counts each utterance as that long: its batches hold batch_seconds of what the model
        computes on, which is a fixed count."""
        if not self.bucketing:
            return super().get_train_dataloader()
        from functools import partial

        from torch.utils.data import DataLoader
        from transformers.trainer_utils import seed_worker

        lengths = self.train_dataset.lengths
        if self.input_seconds:
            lengths = [self.input_seconds] * len(lengths)
        settings = dict(self.bucketing)
        if settings["batch_seconds"] is None:  # a mix in batches of a fixed count
            settings["batch_size"] = self.args.per_device_train_batch_size
        batches = BucketBatches(lengths, **settings, seed=self._data_seed())
        workers = self.args.dataloader_num_workers
        return self.accelerator.prepare(DataLoader(
            self.train_dataset, batch_sampler=batches, collate_fn=self.data_collator, num_workers=workers,
            pin_memory=self.args.dataloader_pin_memory, persistent_workers=self.args.dataloader_persistent_workers,
            worker_init_fn=partial(seed_worker, num_workers=workers, rank=self.args.process_index)))

    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler:
        # The Trainer's own LengthGroupedSampler would measure each item by decoding its audio.
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return EpochSeededLengthSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                        dataset.lengths, self._data_seed())

    def _data_seed(self) -> int:
        return self.args.data_seed if self.args.data_seed is not None else self.args.seed

    def _get_eval_sampler(self, eval_dataset: Any) -> torch.utils.data.Sampler:
        # Validation rows are sorted by duration already, and WER pairs predictions with references by position.
        return SequentialSampler(eval_dataset)


class CTCTrainer(SpeechTrainerMixin, Trainer):
    """Validation predictions are greedy ids with the frames of padding set to blank (they would decode as noise)."""

    def __init__(self, *args: Any, output_frames: Callable[[int], int], blank_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.output_frames = output_frames
        self.blank_id = blank_id

    def compute_loss(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        inputs = {key: value for key, value in inputs.items() if key != "input_lengths"}
        return super().compute_loss(model, inputs, *args, **kwargs)

    def prediction_step(self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None) -> tuple[Any, Any, Any]:
        inputs = dict(inputs)
        lengths = inputs.pop("input_lengths")
        loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        if logits is None:
            return loss, None, labels
        ids = logits.argmax(-1)
        frames = torch.tensor([self.output_frames(int(n)) for n in lengths], device=ids.device)
        ids[torch.arange(ids.shape[1], device=ids.device)[None, :] >= frames[:, None]] = self.blank_id
        return loss, ids, labels


class Seq2SeqSpeechTrainer(SpeechTrainerMixin, Seq2SeqTrainer):
    """Whisper: validation predictions come from generate() (predict_with_generate)."""


class StartingStep(TrainerCallback):
    """The step training began at: 0, or the step of the checkpoint the Trainer restored."""

    def __init__(self) -> None:
        self.step = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step = state.global_step


class StopWhenAsked(TrainerCallback):
    """Ctrl-C during training (`stop_requested`) ends it after the optimizer step in hand, with a
    checkpoint of that step to --resume from, so what was learnt since the last one is kept. Under
    torchrun every process stops at the same step, whichever was asked: they agree every
    STOP_CHECK_STEPS steps (a collective, which waits for the device), alone a process asks itself
    every step (for free)."""

    def __init__(self) -> None:
        self.stopped = False

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if stop_agreed(stop_requested(), state.global_step, args.device):
            self.stopped = control.should_save = control.should_training_stop = True


def stop_agreed(asked: bool, step: int, device: Any) -> bool:
    """Whether every process stops after `step`: any one asked, at a step where they all compare."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return asked
    if step % STOP_CHECK_STEPS:
        return False
    flag = torch.tensor(float(asked), device=device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return bool(flag.item())
