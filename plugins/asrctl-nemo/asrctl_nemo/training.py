"""`asrctl finetune -b nemo`: full fine-tuning (SFT) or LoRA through NeMo's own Lightning training.

The model's setup_training_data / setup_validation_data read NeMo manifests written here from
TRAIN and VAL (any registered format); its validation step reports WER (`val_wer`), by which
Lightning keeps the best checkpoint. OUTPUT_DIR gets model.nemo (the best, or the last without
validation) or, with LoRA, the adapter (see asrctl_nemo.lora) and with lora.merge merged/model.nemo;
checkpoints/ (last.ckpt for --resume, and the best), recipe.yaml, the manifests used and
training_summary.json.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import yaml

from asrctl import SAMPLE_RATE, AsrctlError, AudioError
from asrctl.api import (
    AUDIO_KEY,
    AtomicWriter,
    BucketBatches,
    augmentation,
    average_weights,
    baseline_wer,
    between_batches,
    bucketing,
    clip_flac,
    clip_suffix,
    dumps,
    earlier_run,
    in_torchrun,
    is_main_process,
    mix_reports,
    print_summary,
    read_training_rows,
    recording_id,
    resolve_dtype,
    sources_label,
    stderr,
    train_sources,
    training_rows,
    training_summary,
    warn_cpu_training,
    write_training_summary,
)
from asrctl_nemo import kinds, lora
from asrctl_nemo.backend import check_model, load_model, quiet_nemo

DEFAULTS = {"max_steps": 1000, "learning_rate": 1e-4, "batch_size": 16, "eval_steps": 100, "seed": 0,
            "warmup_steps": 0, "weight_decay": 1e-3, "gradient_clip_val": 1.0, "num_workers": 4}


def check(recipe: dict[str, Any], *, resume: bool) -> None:
    """Mistakes found before NeMo is imported (the core has checked the keys): an earlier run's folder, the model."""
    if recipe["method"] == "lora" and any((recipe.get("freeze") or {}).values()):
        raise AsrctlError("freeze.* applies to SFT; LoRA keeps every base weight fixed already")
    tokenizer = recipe["data"].get("new_tokenizer")
    if tokenizer and recipe["method"] == "lora":
        raise AsrctlError("a new tokenizer re-makes the output layers, which LoRA would leave untrained: use SFT")
    if tokenizer and not Path(tokenizer).is_dir():
        raise AsrctlError(f"{tokenizer}: no such tokenizer folder")
    out = Path(recipe["output_dir"])
    if not resume and (out / "checkpoints").exists():
        raise earlier_run(out)
    check_model(recipe["model"], allow_pickle=bool(recipe.get("allow_pickle")))
    base = lora.read_config(recipe["model"])["base_model"] if lora.is_adapter(recipe["model"]) else recipe["model"]
    kinds.check_trainable(kinds.local_kind(base), recipe["model"], cuda=cuda())


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def train(recipe: dict[str, Any], *, resume: bool, quiet: bool) -> dict[str, Any]:
    started = time.perf_counter()
    settings = {**DEFAULTS, **{k: v for k, v in recipe["training"].items() if v is not None}}
    out = Path(recipe["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    manifests, reports, mix = prepare_data(recipe, out, quiet)
    with AtomicWriter(out / "recipe.yaml") as f:
        yaml.safe_dump(recipe, f, sort_keys=False)
    lora_settings = lora.settings(recipe.get("lora") or {}) if recipe["method"] == "lora" else None
    batches = bucketing(recipe["training"], *mix)
    verbose = bool(settings.get("verbose"))
    with quiet_nemo(verbose):
        asr, per_epoch, unknown = prepare_model(recipe, settings, manifests, batches, lora_settings, out)
        if settings.get("epochs") and recipe["training"].get("max_steps") is None:  # max_steps wins, as in HF
            settings["max_steps"] = math.ceil(per_epoch * float(settings["epochs"]))
        trainer, callbacks = make_trainer(asr, settings, recipe, out, validate="val" in manifests, quiet=quiet,
                                          own_batches=bool(batches))
    if unknown and is_main_process():
        stderr.print(f"warning: {unknown}", style="yellow", soft_wrap=True)
    trainable = sum(p.numel() for p in asr.parameters() if p.requires_grad)  # before --merge folds the adapters away
    total = sum(p.numel() for p in asr.parameters())
    warn_cpu_training(trainer.strategy.root_device, (trainable, total))
    with quiet_nemo(verbose, streams=False):  # the progress bar shows, NeMo's and Lightning's logs do not
        baseline = fit(trainer, asr, callbacks, settings, out, resume=resume, validate="val" in manifests)
    with quiet_nemo(verbose):
        best, averaged, merged = save_outputs(trainer, asr, callbacks, recipe, lora_settings, out,
                                              validate="val" in manifests)
    checkpoints, tokenizer = callbacks["best"], recipe["data"].get("new_tokenizer")
    summary = training_summary(
        recipe, started=started, model=out if lora_settings else out / "model.nemo", data=reports,
        vocabulary=f"the tokenizer in {tokenizer}" if tokenizer else "the model's",
        steps=trainer.global_step, epochs=trainer.global_step / per_epoch, resumed_from_step=callbacks["start"].step,
        best_val_wer=100 * float(checkpoints.best_model_score) if checkpoints.best_model_score is not None else None,
        best_checkpoint=best, baseline_val_wer=baseline, averaged=averaged, parameters=(trainable, total),
        processes=trainer.world_size, device=trainer.strategy.root_device, merged_model=merged)
    if trainer.is_global_zero:
        write_training_summary(out, summary)
    return summary


def prepare_data(recipe: dict[str, Any], out: Path, quiet: bool) -> tuple[dict[str, Path], dict[str, Any], Any]:
    """TRAIN (one source or a mix) and VAL as the NeMo manifests the model reads, printed as a table;
    their reports for the summary, and each training row's source with the weights, for the sampler."""
    manifests, reports, pairs, errors = {}, {"val": None}, [], []
    sources = train_sources(recipe["data"])
    manifests["train"], reports["train"], reports["mix"], mix = write_mix(recipe["data"], sources, out, pairs, errors)
    if recipe["data"].get("val"):
        manifests["val"], reports["val"] = write_manifest(recipe["data"], "val", out, pairs, errors)
    if is_main_process():  # with --nproc-per-node, Lightning runs this command again in each process
        print_summary("data", pairs, errors, quiet=quiet)
    return manifests, reports, mix


def prepare_model(recipe: dict[str, Any], settings: dict[str, Any], manifests: dict[str, Path],
                  batches: dict[str, Any] | None, lora_settings: dict[str, Any] | None,
                  out: Path) -> tuple[Any, int, str | None]:
    """The base model with its data loaders (training batches from asrctl's sampler with `batches`),
    augmentation, and LoRA adapters or frozen encoder; the optimiser steps an epoch takes, and a
    warning for transcripts its tokenizer cannot spell."""
    import lightning.pytorch as pl

    from asrctl_nemo.augment import augment_training_audio, switch_spec_augment

    pl.seed_everything(int(settings["seed"]), verbose=False)
    asr = load_model(recipe["model"], device="cpu", allow_pickle=bool(recipe.get("allow_pickle")))
    kinds.check_trainable(kinds.kind(asr.cfg), recipe["model"], cuda=cuda())  # a pretrained name's, known now
    if recipe["data"].get("new_tokenizer"):
        new_tokenizer(asr, Path(recipe["data"]["new_tokenizer"]))
    unknown = unspellable(asr, manifests["train"])
    setup_data(asr, settings, manifests, batches)
    augment = augmentation(recipe.get("augment") or {}, seed=int(settings["seed"]), unpack_to=out / "audio" / "noise")
    if augment:
        augment_training_audio(asr._train_dl.dataset, augment)
    switch_spec_augment(asr, settings.get("spec_augment"))
    per_epoch = steps_per_epoch(len(asr._train_dl), recipe.get("distributed") or {})
    if lora_settings:
        lora.add_adapters(asr, lora_settings)
    elif (recipe.get("freeze") or {}).get("encoder"):
        asr.encoder.freeze()
    return asr, per_epoch, unknown


def make_trainer(asr: Any, settings: dict[str, Any], recipe: dict[str, Any], out: Path, *, validate: bool,
                 quiet: bool, own_batches: bool) -> tuple[Any, dict[str, Any]]:
    """The Lightning trainer with asrctl's callbacks, and the model's optimiser and schedule set on it."""
    trainer, callbacks = lightning_trainer(settings, recipe.get("distributed") or {}, out, validate=validate,
                                           quiet=quiet, own_batches=own_batches)
    asr.set_trainer(trainer)
    asr.setup_optimization(_config({
        "name": "adamw", "lr": float(settings["learning_rate"]), "betas": [0.9, 0.98],
        "weight_decay": float(settings["weight_decay"]),
        "sched": {"name": "CosineAnnealing", "warmup_steps": int(settings["warmup_steps"]),
                  "min_lr": float(settings["learning_rate"]) / 100, "max_steps": int(settings["max_steps"])},
    }))
    return trainer, callbacks


def fit(trainer: Any, asr: Any, callbacks: dict[str, Any], settings: dict[str, Any], out: Path, *, resume: bool,
        validate: bool) -> float | None:
    """Train, from the last checkpoint with `resume`; the base model's validation WER, measured first."""
    baseline = None
    if validate and settings.get("baseline") is not False:  # before fit() restores a checkpoint
        baseline = baseline_wer(out, lambda: validation_wer(trainer, asr), write=trainer.is_global_zero)
        if callbacks.get("progress"):
            callbacks["progress"].baseline = baseline / 100
    last = last_checkpoint(out)
    try:
        with between_batches("step"):
            trainer.fit(asr, ckpt_path=str(last) if resume and last.exists() else None)
    except SystemExit:  # Lightning's end for a fit stopped by Ctrl-C: asrctl's own instead (130, --resume)
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    return baseline


def save_outputs(trainer: Any, asr: Any, callbacks: dict[str, Any], recipe: dict[str, Any],
                 lora_settings: dict[str, Any] | None, out: Path, *,
                 validate: bool) -> tuple[str | None, dict[str, Any] | None, Path | None]:
    """The output model: the average of the last checkpoints (--average-last), else the best by
    validation WER, else the last step's; saved whole, or as a LoRA adapter (and merged with
    lora.merge). The best checkpoint, the average's report and the merged model's path."""
    import torch

    best = callbacks["best"].best_model_path
    averaged = None
    if callbacks.get("recent"):  # --average-last: the output model is their average
        averaged = average_last(trainer, asr, callbacks["recent"], validate=validate)
    elif best:  # the checkpoint with the lowest validation WER
        asr.load_state_dict(torch.load(best, map_location="cpu", weights_only=False)["state_dict"])
    merged = out / "merged" / "model.nemo" if lora_settings and (recipe.get("lora") or {}).get("merge") else None
    if trainer.is_global_zero and lora_settings:
        lora.save_adapter(asr, lora_settings, recipe["model"], out)
        if merged:
            lora.fold(asr)
            merged.parent.mkdir(exist_ok=True)
            asr.save_to(str(merged))
    elif trainer.is_global_zero:
        asr.save_to(str(out / "model.nemo"))
    return best or None, averaged, merged


def setup_data(asr: Any, settings: dict[str, Any], manifests: dict[str, Path],
               batches: dict[str, Any] | None = None) -> None:
    """The model's own training and validation loaders over the manifests written for it; training
    batches from asrctl's sampler with `batches` (BucketBatches' settings: by duration, or a mix)."""
    import torch

    common = {"sample_rate": SAMPLE_RATE, "batch_size": int(settings["batch_size"]),
              "num_workers": int(settings["num_workers"]), "pin_memory": torch.cuda.is_available(),
              "use_start_end_token": False,
              "channel_selector": "average"}  # multi-channel files as asrctl reads them everywhere
    asr.setup_training_data(_config({**common, "manifest_filepath": str(manifests["train"]), "shuffle": True}))
    asr._train_dl = resumable(asr._train_dl, batches and {**batches, "seed": int(settings["seed"])})
    if "val" in manifests:
        asr.setup_validation_data(_config({**common, "manifest_filepath": str(manifests["val"]), "shuffle": False}))


def steps_per_epoch(batches: int, distributed: dict[str, Any]) -> int:
    """Optimiser steps in one pass over a loader of `batches` batches: each of the job's processes
    reads its share (Lightning's distributed sampler). The schedule is planned in steps, so epochs
    become steps before the trainer is made."""
    processes = int(distributed.get("nproc_per_node") or 1) * int(distributed.get("nnodes") or 1)
    return max(1, math.ceil(batches / processes))


def resumable(loader: Any, batches: dict[str, Any] | None = None) -> Any:
    """NeMo's training DataLoader as torchdata's StatefulDataLoader, whose position (and shuffling
    generator) Lightning keeps in each checkpoint: --resume then goes on mid-epoch with the rows the
    interrupted run had not reached, where a plain DataLoader would start the epoch over. With
    `batches` (BucketBatches' settings: by duration, or a mix), its batches come from asrctl's
    sampler instead, each process taking its share. Loaders of another kind (Lhotse, tarred,
    bucketing samplers) stay as NeMo made them."""
    from torch.utils.data import DataLoader, RandomSampler, SequentialSampler
    from torchdata.stateful_dataloader import StatefulDataLoader

    if type(loader) is not DataLoader or type(loader.sampler) not in (RandomSampler, SequentialSampler):
        if batches:
            raise AsrctlError(f"--batch-seconds, or a mix of --train sources: NeMo made a {type(loader).__name__} "
                              "for this model's data, which asrctl cannot batch")
        return loader
    common = {"collate_fn": loader.collate_fn, "num_workers": loader.num_workers, "pin_memory": loader.pin_memory,
              "worker_init_fn": loader.worker_init_fn, "persistent_workers": loader.persistent_workers}
    if batches:
        durations = [item.duration for item in loader.dataset.manifest_processor.collection]
        if len(durations) != len(batches.get("sources") or durations):  # the mix's rows must be NeMo's, in order
            raise AsrctlError(f"NeMo read {len(durations)} of the {len(batches['sources'])} training rows")
        if batches["batch_seconds"] is None:  # a mix in batches of a fixed count
            batches = {**batches, "batch_size": loader.batch_size}
        return StatefulDataLoader(loader.dataset, batch_sampler=BucketBatches(durations, **batches, shard=True),
                                  **common)
    return StatefulDataLoader(loader.dataset, batch_size=loader.batch_size, drop_last=loader.drop_last,
                              shuffle=type(loader.sampler) is RandomSampler, **common)


def validation_wer(trainer: Any, asr: Any) -> float:
    """The model's validation WER (percent) as it is now, by the validation of its own loop."""
    return 100 * float(trainer.validate(asr, verbose=False)[0]["val_wer"])


def average_last(trainer: Any, asr: Any, recent: Any, *, validate: bool) -> dict[str, Any]:
    """Load the mean of the weights of the checkpoints `recent` keeps (the last N) into `asr` and
    validate it; the checkpoints used and its WER (percent) for the summary."""
    import torch

    used = sorted(recent.best_k_models, key=lambda path: float(recent.best_k_models[path]))  # by step
    if len(used) < recent.save_top_k:
        raise AsrctlError(f"--average-last {recent.save_top_k}: the run wrote {len(used)} checkpoint(s) (one every "
                          "--eval-steps): lower --eval-steps or N")
    asr.load_state_dict(average_weights(torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
                                        for path in used))
    return {"checkpoints": used, "val_wer": validation_wer(trainer, asr) if validate else None}


def last_checkpoint(out: Path) -> Path:
    """Where ModelCheckpoint(save_last=True) keeps the latest state, which --resume restores."""
    return out / "checkpoints" / "last.ckpt"


def lightning_trainer(settings: dict[str, Any], distributed: dict[str, Any], out: Path, *, validate: bool,
                      quiet: bool, own_batches: bool = False) -> tuple[Any, dict[str, Any]]:
    """Lightning's Trainer and the callbacks train() reads by name: `best` (the checkpoint of the
    best validation WER, and the last), `start` (the starting step), `progress` (unless quiet) and,
    with average_last N, `recent` (the last N checkpoints)."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    from asrctl_nemo.callbacks import RandomState, RichProgress, StartingStep, StopWhenAsked

    eval_steps = int(settings["eval_steps"])
    best = {"monitor": "val_wer", "mode": "min", "save_top_k": 1} if validate else {"save_top_k": 0}
    start = StartingStep()
    checkpoints = ModelCheckpoint(dirpath=out / "checkpoints", filename="step-{step}", auto_insert_metric_name=False,
                                  save_last=True, every_n_train_steps=eval_steps, **best)
    named = {"best": checkpoints, "start": start, **({} if quiet else {"progress": RichProgress()})}
    if settings.get("average_last"):  # the step is the score, so the newest N are "the best"
        named["recent"] = ModelCheckpoint(dirpath=out / "checkpoints", filename="recent-{step}",
                                          auto_insert_metric_name=False, every_n_train_steps=eval_steps,
                                          monitor="step", mode="max", save_top_k=int(settings["average_last"]))
    callbacks = [*named.values(), RandomState(), StopWhenAsked(last_checkpoint(out))]
    if settings.get("early_stopping_patience"):  # validations in a row without a better WER
        callbacks.append(EarlyStopping(monitor="val_wer", mode="min", patience=int(settings["early_stopping_patience"]),
                                       check_on_train_epoch_end=False))
    logger = False
    if settings.get("tensorboard"):  # under OUTPUT_DIR/runs, as the HF trainer writes them
        logger = TensorBoardLogger(str(out), name="runs", version="", default_hp_metric=False)
    trainer = pl.Trainer(
        max_steps=int(settings["max_steps"]), accelerator="auto",
        devices=int(distributed.get("nproc_per_node") or 1), num_nodes=int(distributed.get("nnodes") or 1),
        plugins=[cluster_environment()],
        precision=settings.get("precision") or default_precision(),
        logger=logger, callbacks=callbacks,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, check_val_every_n_epoch=None,
        # BucketBatches shards batches among processes itself; Lightning's sampler would replace it
        use_distributed_sampler=not own_batches,
        val_check_interval=eval_steps if validate else None, limit_val_batches=1.0 if validate else 0,
        log_every_n_steps=min(10, eval_steps), gradient_clip_val=float(settings["gradient_clip_val"]),
    )
    return trainer, named


def cluster_environment() -> Any:
    """Where the job's processes learn their ranks: from torchrun, which starts them for a job of
    several machines (asrctl's launch), else from Lightning, which starts them on this one. Never
    from SLURM's variables (Lightning's own pick under srun), whose one task per node is not the
    process per GPU these jobs run."""
    from lightning.fabric.plugins.environments import LightningEnvironment, TorchElasticEnvironment

    return TorchElasticEnvironment() if in_torchrun() else LightningEnvironment()


PRECISIONS = {"bfloat16": "bf16-mixed", "float16": "16-mixed", "float32": "32-true"}


def default_precision() -> str:
    """Lightning's precision where the recipe sets none: mixed bfloat16 on a GPU that has it natively
    (with TF32 for what stays float32), mixed float16 on older GPUs, float32 on the CPU."""
    import torch

    dtype = resolve_dtype("auto", "cuda:0" if torch.cuda.is_available() else "cpu")
    if dtype == "bfloat16":
        torch.set_float32_matmul_precision("high")
    return PRECISIONS[dtype]


def new_tokenizer(asr: Any, folder: Path) -> None:
    """The tokenizer in `folder` (SentencePiece tokenizer.model, or WordPiece vocab.txt) for a subword model."""
    if not hasattr(asr, "tokenizer"):
        raise AsrctlError(f"--new-tokenizer: {type(asr).__name__} spells characters; it has no tokenizer to replace")
    kind = "bpe" if (folder / "tokenizer.model").is_file() else "wpe"
    asr.change_vocabulary(new_tokenizer_dir=str(folder), new_tokenizer_type=kind)


def unspellable(asr: Any, manifest: Path) -> str | None:
    """What to say when transcripts hold characters the tokenizer can only spell as <unk> (cased text
    for a lower-case model, say): NeMo trains on them without a word, and the model learns <unk>."""
    tokenizer = getattr(asr, "tokenizer", None)
    unk = getattr(tokenizer, "unk_id", None)
    if not isinstance(unk, int) or unk < 0:  # character models, and tokenizers without an <unk>
        return None
    texts = [json.loads(line)["text"] for line in manifest.read_text(encoding="utf-8").splitlines()]
    affected = [text for text in texts if unk in tokenizer.text_to_ids(text)]
    if not affected:
        return None
    chars = sorted(c for c in {c for text in affected for c in text if not c.isspace()}
                   if unk in tokenizer.text_to_ids(c))
    shown = " ".join(repr(c) for c in chars[:10]) + (" ..." if len(chars) > 10 else "")
    return (f"{manifest.name}: {len(affected)} of {len(texts)} transcripts hold characters the model's tokenizer "
            f"cannot spell ({shown}); they train as <unk>: normalise the text to the model's alphabet, or give "
            "--new-tokenizer")


def write_mix(data: dict[str, Any], sources: list[tuple[str, float]], out: Path, pairs: list[tuple[str, str]],
              errors: list[str]) -> tuple[Path, dict[str, Any], Any, tuple[list[int], list[float]]]:
    """The training sources as the one manifest the model reads (of a mix, theirs one after the
    other); the summary's data.train and data.mix; and each row's source with the weights, for the
    sampler."""
    if len(sources) == 1:
        manifest, report = write_manifest(data, "train", out, pairs, errors)
        return manifest, report, None, ([], [1.0])
    parts = [write_manifest(data, f"train-{k}", out, pairs, errors, file=file) for k, (file, _) in enumerate(sources)]
    lines = [part.read_text(encoding="utf-8").splitlines(keepends=True) for part, _ in parts]
    manifest = out / "train_manifest.json"
    with AtomicWriter(manifest) as f:
        f.writelines(line for part in lines for line in part)
    weights = [weight for _, weight in sources]
    train, mix = mix_reports([report for _, report in parts], weights, sources_label(sources))
    return manifest, train, mix, ([k for k, part in enumerate(lines) for _ in part], weights)


def write_manifest(data: dict[str, Any], name: str, out: Path, pairs: list[tuple[str, str]],
                   errors: list[str], *, file: str | None = None) -> tuple[Path, dict[str, Any]]:
    """TRAIN or VAL (or `file`, one source of a mix, as `name`), in any registered format, as the
    NeMo manifest (absolute paths) the model reads, and its report for the summary; what was used
    and left out goes to `pairs` and `errors`."""
    file = file or data[name]
    records, unreadable = read_training_rows(file, data.get("format"), out / "audio" / name)
    # Validation keeps every row the model can take: the duration limits are for training memory.
    limits = {"min_duration": data.get("min_duration"), "max_duration": data.get("max_duration")}
    rows, dropped = training_rows(records, **(limits if name != "val" else {}))
    if not rows:
        reasons = ", ".join(f"{count} {reason}" for reason, count in dropped.items()) or "it is empty"
        raise AsrctlError(f"{file}: no usable row ({reasons})")
    clip_errors: list[str] = []
    usable = [r for r in (_one_channel(r, out / "audio" / name / "channels", clip_errors) for r in rows) if r]
    target = out / f"{name}_manifest.json"
    with AtomicWriter(target) as f:
        f.writelines(dumps(record) + "\n" for record in usable)
    errors += unreadable + clip_errors
    dropped.update({"unreadable record": len(unreadable), "unreadable audio": len(clip_errors)})
    dropped = {reason: count for reason, count in dropped.items() if count}
    pairs.append((name, f"{len(usable)} rows from {file}"))
    if dropped:
        pairs.append((f"{name} dropped", ", ".join(f"{count} {reason}" for reason, count in dropped.items())))
    hours = sum(float(r.get("duration") or 0) for r in usable) / 3600
    return target, {"file": file, "rows": len(usable), "hours": round(hours, 4), "dropped": sum(dropped.values()),
                    "dropped_by_reason": dropped}


def _one_channel(record: dict[str, Any], folder: Path, errors: list[str]) -> dict[str, Any] | None:
    """A row reading one channel of a file, as a clip of its own: NeMo's loaders pick channels per
    dataset, not per row."""
    if record.get("channel") is None:
        return record
    target = folder / f"{recording_id(record[AUDIO_KEY])}{clip_suffix(record)}.flac"
    try:
        if not target.is_file():
            with AtomicWriter(target, "wb") as f:
                f.write(clip_flac(record))
    except AudioError as exc:
        errors.append(str(exc))
        return None
    return {**{k: v for k, v in record.items() if k not in ("offset", "channel")}, AUDIO_KEY: str(target)}


def _config(values: dict[str, Any]) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.create(values)
