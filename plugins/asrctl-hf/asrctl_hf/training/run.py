"""`asrctl finetune` for hf-ctc and hf-whisper: the merged recipe in; the model or adapter and a summary out.

OUTPUT_DIR gets the final model (SFT) or LoRA adapter in safetensors with its processor,
checkpoint-N folders (the best by validation WER and the last), trainer_state.json (the log),
recipe.yaml (what ran), training_summary.json, and with lora.merge the merged model in merged/.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import EarlyStoppingCallback
from transformers.trainer_callback import PrinterCallback

from asrctl import AsrctlError
from asrctl.api import (
    AtomicWriter,
    augmentation,
    baseline_wer,
    between_batches,
    bucketing,
    is_main_process,
    mix_reports,
    print_summary,
    read_training_rows,
    sources_label,
    train_sources,
    training_summary,
    warn_cpu_training,
    write_training_summary,
)
from asrctl_hf.common import missing_folder, quiet_transformers
from asrctl_hf.training.averaging import average_last
from asrctl_hf.training.checkpoints import resume_point
from asrctl_hf.training.collator import SpeechCollator
from asrctl_hf.training.data import SpeechDataset, Split, select
from asrctl_hf.training.lora import add_lora, save_merged
from asrctl_hf.training.metrics import ValidationWER
from asrctl_hf.training.progress import RichProgress
from asrctl_hf.training.settings import check_recipe, training_arguments
from asrctl_hf.training.task import Task
from asrctl_hf.training.trainers import StartingStep, StopWhenAsked

DEFAULT_NORMALIZER = "whisper-en"  # as `asrctl eval`


def check(recipe: dict[str, Any], *, resume: bool) -> None:
    """The recipe's mistakes, an output folder of another run and a missing model, before any process starts."""
    check_recipe(recipe)
    if not resume:
        resume_point(Path(recipe["output_dir"]), resume)
    if missing_folder(recipe["model"]):
        raise AsrctlError(f"cannot load model {recipe['model']!r}: no such folder")


def train(recipe: dict[str, Any], *, resume: bool, quiet: bool) -> dict[str, Any]:
    started = time.perf_counter()
    out = Path(recipe["output_dir"])
    checkpoint = resume_point(out, resume)
    data, sources = recipe["data"], train_sources(recipe["data"])
    mixing = len(sources) > 1
    rows = {f"train-{k}" if mixing else "train": read_training_rows(
        file, data.get("format"), unpack_to=out / "audio" / (f"train-{k}" if mixing else "train"))
        for k, (file, _) in enumerate(sources)}
    if data.get("val"):
        rows["val"] = read_training_rows(data["val"], data.get("format"), unpack_to=out / "audio" / "val")
    with quiet_transformers():
        texts = [record.get("text") or "" for name in rows if name != "val" for record in rows[name][0]]
        task = make_task(recipe, texts)
        train_splits, val_split = split_data(data, sources, rows, task, quiet)
        model = prepare_model(task, recipe)
        trainable, total = _parameters(model)
        out.mkdir(parents=True, exist_ok=True)
        main = is_main_process()  # under torchrun, one process writes the job's files
        if main:
            with AtomicWriter(out / "recipe.yaml") as f:
                yaml.safe_dump(recipe, f, sort_keys=False)
        if recipe["training"].get("tensorboard"):  # else the baseline's log, before train() names it, goes to ./runs
            os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(out / "runs"))
        progress = None if quiet else RichProgress()
        trainer = make_trainer(task, model, recipe, train_splits, [weight for _, weight in sources], val_split,
                               progress)
        warn_cpu_training(trainer.args.device, (trainable, total))
        baseline = None
        # the weights are the base model's until train()
        if val_split and recipe["training"].get("baseline") is not False:
            baseline = baseline_wer(out, lambda: 100 * trainer.evaluate()["eval_wer"], write=main)
            if progress:
                progress.baseline = baseline / 100
        start, stop = StartingStep(), StopWhenAsked()
        trainer.add_callback(start)
        trainer.add_callback(stop)
        with between_batches("step"):
            trainer.train(resume_from_checkpoint=checkpoint)
        if stop.stopped:  # saved its checkpoint: the job ends as interrupted, without the final model
            raise KeyboardInterrupt
        averaged = average_last(trainer, out, int(recipe["training"]["average_last"])) \
            if recipe["training"].get("average_last") else None
        save_outputs(trainer, task, out, lora=recipe["method"] == "lora")
        state = trainer.state
        merged = out / "merged" if recipe["method"] == "lora" and recipe["lora"].get("merge") else None
        if merged and main:
            save_merged(trainer.model, task.processor, merged)
    train_report, mix = mix_reports([split.report() for split in train_splits], [weight for _, weight in sources],
                                    sources_label(sources))
    summary = training_summary(
        recipe, started=started, model=out,
        data={"train": train_report, "val": val_split.report() if val_split else None, "mix": mix},
        vocabulary="built from the training text" if task.vocabulary_built else "the model's",
        steps=state.global_step, epochs=state.epoch or 0.0, resumed_from_step=start.step,
        # the Trainer validates at the last step too
        best_val_wer=100 * state.best_metric if state.best_metric is not None else None,
        best_checkpoint=state.best_model_checkpoint, baseline_val_wer=baseline, averaged=averaged,
        parameters=(trainable, total), processes=trainer.args.world_size, device=trainer.args.device,
        merged_model=merged)
    if main:
        write_training_summary(out, summary)
    return summary


def make_task(recipe: dict[str, Any], train_texts: list[str]) -> Task:
    data, spec_augment = recipe["data"], recipe["training"].get("spec_augment")
    if recipe["backend"] == "hf-whisper":
        from asrctl_hf.training.whisper_task import WhisperTask

        return WhisperTask(recipe["model"], language=data.get("language") or "en", task=data.get("task"),
                           spec_augment=spec_augment, allow_pickle=bool(recipe.get("allow_pickle")))
    from asrctl_hf.training.ctc_task import CTCTask

    return CTCTask(recipe["model"], build_vocab=bool(data.get("build_vocab")), train_texts=train_texts,
                   spec_augment=spec_augment, allow_pickle=bool(recipe.get("allow_pickle")))


def split_data(data: dict[str, Any], sources: list[tuple[str, float]], rows: dict[str, tuple[list[dict], list[str]]],
               task: Task, quiet: bool) -> tuple[list[Split], Split | None]:
    """The training utterances the model can learn from, of each source, and the validation ones,
    shown in a table."""
    limits = {"labels": task.labels, "unfit": task.unfit}
    train = [select(file, *rows[name], **limits, min_duration=data.get("min_duration"),
                    max_duration=data.get("max_duration")) for (file, _), name in zip(sources, rows)]
    # Validation keeps every row the model can take: the duration limits are for training memory.
    val = select(data["val"], *rows["val"], **limits, min_duration=None, max_duration=None) if "val" in rows else None
    show_data([*(("train", split) for split in train), ("val", val)], quiet)
    for split in (*train, val):
        if split and not split.utterances:
            raise AsrctlError(f"{split.path}: no usable row ({_reasons(split) or 'it is empty'})")
    return train, val





def prepare_model(task: Task, recipe: dict[str, Any]) -> Any:
    """The model to train: with LoRA adapters, or whole with the parts frozen that the recipe says."""
    if recipe["method"] == "lora":
        return add_lora(task, recipe["lora"], recipe["model"])
    freeze = recipe["freeze"]
    task.freeze(encoder=bool(freeze.get("encoder")), feature_encoder=bool(freeze.get("feature_encoder")))
    return task.model


def make_trainer(task: Task, model: Any, recipe: dict[str, Any], train: list[Split], weights: list[float],
                 val_split: Split | None, progress: RichProgress | None) -> Any:
    """The Trainer of `task`, over the utterances of the training sources (`train`, mixed by
    `weights` where there are several)."""
    has_val = val_split is not None
    args = training_arguments(recipe, has_val=has_val, seq2seq=task.seq2seq)
    val = sorted(val_split.utterances, key=lambda u: u.duration) if has_val else []  # less padding per batch
    callbacks = [progress] if progress else []
    patience = recipe["training"].get("early_stopping_patience")
    if patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=int(patience)))
    trainer = task.make_trainer(
        model=model,
        args=args,
        train_dataset=SpeechDataset([u for split in train for u in split.utterances], task.features,
                                    augmentation(recipe["augment"], seed=args.seed, max_seconds=task.input_seconds,
                                                 unpack_to=Path(recipe["output_dir"]) / "audio" / "noise")),
        eval_dataset=SpeechDataset(val, task.features) if has_val else None,
        data_collator=SpeechCollator(task.feature_extractor),
        processing_class=task.processor,  # saved into every checkpoint, so each is a usable model folder
        compute_metrics=ValidationWER([u.text for u in val], task.decode, task.pad_id,
                                      recipe["data"].get("normalizer") or DEFAULT_NORMALIZER) if has_val else None,
        callbacks=callbacks,
        bucketing=bucketing(recipe["training"], [k for k, split in enumerate(train) for _ in split.utterances],
                            weights),
        input_seconds=task.input_seconds,
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log line to stdout, which carries the summary
    return trainer


def save_outputs(trainer: Any, task: Task, out: Path, *, lora: bool) -> None:
    """The final (best) model, or adapter, with its processor; and the log of the run."""
    trainer.save_model(str(out))  # it and save_state write from rank 0 only
    # the adapted model's settings beside the adapter (see asrctl_hf.common.load_adapted)
    if lora and trainer.is_world_process_zero():
        task.model.config.save_pretrained(out)
        if getattr(task.model, "generation_config", None) is not None:
            task.model.generation_config.save_pretrained(out)
    trainer.save_state()


def show_data(splits: list[tuple[str, Split | None]], quiet: bool) -> None:
    pairs, errors = [], []
    for name, split in splits:
        if split is not None:
            pairs.append((name, f"{len(split.utterances)} rows, {split.hours:.2f} h from {split.path}"))
            if split.dropped:
                pairs.append((f"{name} dropped", _reasons(split)))
            errors += split.errors
    print_summary("data", pairs, errors, quiet=quiet)


def _reasons(split: Split) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in split.dropped.most_common())


def _parameters(model: torch.nn.Module) -> tuple[int, int]:
    parameters = list(model.parameters())
    return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)
