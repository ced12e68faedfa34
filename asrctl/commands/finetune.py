"""`asrctl finetune`: full fine-tuning (SFT) or LoRA through the backend's trainer plugin."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

# Command-line flags and the recipe keys they set (flags win over the recipe file, --set wins over both).
FLAG_KEYS = {
    "backend": "backend",
    "model": "model",
    "output_dir": "output_dir",
    "train": "data.train",
    "val": "data.val",
    "data_format": "data.format",
    "min_duration": "data.min_duration",
    "max_duration": "data.max_duration",
    "build_vocab": "data.build_vocab",
    "new_tokenizer": "data.new_tokenizer",
    "lora_r": "lora.r",
    "lora_alpha": "lora.alpha",
    "lora_dropout": "lora.dropout",
    "target_modules": "lora.target_modules",
    "freeze_encoder": "freeze.encoder",
    "freeze_feature_encoder": "freeze.feature_encoder",
    "max_steps": "training.max_steps",
    "epochs": "training.epochs",
    "learning_rate": "training.learning_rate",
    "batch_size": "training.batch_size",
    "batch_seconds": "training.batch_seconds",
    "num_workers": "training.num_workers",
    "eval_steps": "training.eval_steps",
    "baseline": "training.baseline",
    "average_last": "training.average_last",
    "early_stopping_patience": "training.early_stopping_patience",
    "seed": "training.seed",
    "tensorboard": "training.tensorboard",
    "spec_augment": "training.spec_augment",
    "speed_perturb": "augment.speeds",
    "noise": "augment.noise",
    "snr": "augment.snr",
    "noise_prob": "augment.noise_prob",
    "merge": "lora.merge",
    "allow_pickle": "allow_pickle",
    "nproc_per_node": "distributed.nproc_per_node",
    "nnodes": "distributed.nnodes",
    "rdzv_endpoint": "distributed.rdzv_endpoint",
}


def all_recipes() -> dict[str, Path]:
    from asrctl.plugins import trainers

    return {name: path for spec in trainers() for name, path in spec.recipes.items()}


def trainer_for(backend: str):
    from asrctl.errors import AsrctlError
    from asrctl.plugins import trainers

    for spec in trainers():
        if backend in spec.backends:
            return spec
    known = "; ".join(f"{t.name} ({', '.join(t.backends)})" for t in trainers()) or "none installed (see `asrctl plugins`)"
    raise AsrctlError(f"no trainer fine-tunes backend {backend!r}; trainers: {known}")


def _list_recipes(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for name, path in sorted(all_recipes().items()):
        click.echo(f"{name}\t{path}")
    ctx.exit()


def _print_recipe(ctx: click.Context, _param, value: str | None) -> None:
    if not value or ctx.resilient_parsing:
        return
    from asrctl.recipes import find_recipe

    click.echo(find_recipe(value, all_recipes()).read_text(), nl=False)
    ctx.exit()


def _sources(_ctx, _param, value: tuple[str, ...]) -> list[str] | None:
    return list(value) if value else None  # build_recipe reads each as FILE[:WEIGHT]


def _comma_list(_ctx, _param, value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


class FinetuneCommand(click.Command):
    """`--help` ends with the settings each installed trainer takes beyond the flags."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from asrctl.plugins import trainers
        from asrctl.recipes import type_label

        for trainer in trainers():
            if trainer.settings:
                with formatter.section(f"Settings of the {trainer.name} trainer (-b {', '.join(trainer.backends)}; "
                                       "in a recipe or as --set KEY=VALUE)"):
                    formatter.write_dl([(s.name, f"[{type_label(s)}] {s.help}") for s in trainer.settings])
        super().format_epilog(ctx, formatter)


@click.command("finetune", cls=FinetuneCommand)
@click.option("-c", "--recipe", help="Recipe name (see --list-recipes) or a YAML file.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe setting, e.g. --set training.learning_rate=3e-5. Repeatable.")
@click.option("--list-recipes", is_flag=True, expose_value=False, is_eager=True, callback=_list_recipes,
              help="List the recipes the installed trainers ship, and exit.")
@click.option("--print-recipe", metavar="NAME", expose_value=False, is_eager=True, callback=_print_recipe,
              help="Print a recipe's YAML (a starting point for your own), and exit.")
@click.option("-b", "--backend", help="Model family: hf-ctc, hf-whisper, nemo, ...")
@click.option("-m", "--model", help="Base model: hub id or local folder.")
@click.option("--train", multiple=True, callback=_sources, metavar="FILE[:WEIGHT]",
              help="Training data: a manifest or any registered format. Repeat it to mix several by weight, e.g. "
                   "--train in_domain.jsonl:0.7 --train general.jsonl:0.3 (each epoch draws as many rows as they "
                   "hold together, those shares from each).")
@click.option("--val", help="Validation data, scored by WER during training.")
@click.option("--data-format", help="Format of --train/--val when it cannot be detected.")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), help="Where the model goes.")
@click.option("--peft", type=click.Choice(["lora"]), help="Parameter-efficient fine-tuning instead of all weights.")
@click.option("--lora-r", type=click.IntRange(min=1), help="LoRA rank.")
@click.option("--lora-alpha", type=float, help="LoRA scaling numerator (alpha / r scales the update).")
@click.option("--lora-dropout", type=click.FloatRange(0, 1), help="Dropout on the LoRA path.")
@click.option("--target-modules", callback=_comma_list, help="Comma list of module names LoRA adapts.")
@click.option("--merge", is_flag=True, default=None, help="LoRA: also write the adapter folded into a full model.")
@click.option("--freeze-encoder", is_flag=True, default=None,
              help="freeze.encoder=true, for trainers that take it: SFT of the decoder/head only.")
@click.option("--freeze-feature-encoder", is_flag=True, default=None,
              help="freeze.feature_encoder=true, for trainers that take it: SFT with the convolutional feature "
                   "encoder of a CTC model fixed.")
@click.option("--build-vocab", is_flag=True, default=None,
              help="data.build_vocab=true, for trainers that take it: a character vocabulary for a CTC model, "
                   "from the training text.")
@click.option("--new-tokenizer", metavar="DIR",
              help="data.new_tokenizer=DIR, for trainers that take it: the model's tokenizer replaced by the one "
                   "in DIR (new language or domain), the output layers re-made to fit it.")
@click.option("--min-duration", type=float, help="Drop training utterances shorter than this (seconds).")
@click.option("--max-duration", type=float, help="Drop training utterances longer than this (seconds).")
@click.option("--max-steps", type=click.IntRange(min=1), help="Optimiser steps to train for.")
@click.option("--epochs", type=float, help="Epochs to train for (when --max-steps is not set).")
@click.option("--learning-rate", type=float, help="Peak learning rate.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Utterances per device per step.")
@click.option("--batch-seconds", type=click.FloatRange(min=0, min_open=True),
              help="Batches by duration: at most this much padded audio (count x longest, seconds) per device per "
                   "step, drawn from duration buckets, so short utterances come many to a batch and long ones few; "
                   "--batch-size still caps the count.")
@click.option("--speed-perturb", callback=_comma_list, metavar="FACTORS",
              help="Speed perturbation of the training audio: one factor drawn per utterance, e.g. 0.9,1.0,1.1 "
                   "(1.1 is 10% faster, and higher).")
@click.option("--noise", metavar="MANIFEST",
              help="Add noise to training utterances: audio from this manifest (any format, no transcripts needed), "
                   "at --snr, to a share --noise-prob of them.")
@click.option("--snr", callback=_comma_list, metavar="LOW,HIGH", help="Signal-to-noise ratios of --noise, dB "
              "[default: 5,20].")
@click.option("--noise-prob", type=click.FloatRange(0, 1), help="Share of training utterances that get --noise "
              "[default: 0.5].")
@click.option("--spec-augment/--no-spec-augment", default=None,
              help="SpecAugment on or off, where the model has it [default: as its config says].")
@click.option("--num-workers", type=click.IntRange(min=0), help="Processes decoding audio for the data loader.")
@click.option("--eval-steps", type=click.IntRange(min=1), help="Validate (WER) every N steps.")
@click.option("--baseline/--no-baseline", default=None,
              help="Validate the base model before the first step, so the summary says the WER before and after "
                   "[default: on with --val].")
@click.option("--average-last", type=click.IntRange(min=2), metavar="N",
              help="The output model (or adapter) is the average of the weights of the last N checkpoints (one every "
                   "--eval-steps); its validation WER is reported beside the best single checkpoint's.")
@click.option("--early-stopping-patience", type=click.IntRange(min=1), help="Stop after N validations without a better WER.")
@click.option("--seed", type=int, help="Random seed.")
@click.option("--tensorboard", is_flag=True, default=None, help="Write TensorBoard logs to OUTPUT_DIR/runs.")
@click.option("--nproc-per-node", type=click.IntRange(min=1),
              help="Data-parallel processes on this machine, one per GPU (torchrun; gloo on CPUs).")
@click.option("--nnodes", type=click.IntRange(min=1), help="Machines in the job (run the same command on each).")
@click.option("--rdzv-endpoint", metavar="HOST[:PORT]",
              help="Where the machines of a multi-node job meet: the first node (port 29500 by default).")
@click.option("--allow-pickle", is_flag=True, default=None,
              help="Load a base model that has only pickle-based weights (they can run code): trusted sources only.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in OUTPUT_DIR.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def finetune_command(recipe: str | None, assignments: tuple[str, ...], peft: str | None, resume: bool, quiet: bool,
                     **flags: Any) -> None:
    """Fine-tune a model on your data: all weights (SFT) or LoRA adapters, from flags or a recipe.

    Validation WER is measured during training, the best checkpoint by WER is kept, and the
    output folder gets the model (or adapter) in safetensors with its processor, plus
    training_summary.json. `asrctl infer --model OUTPUT_DIR` works on both.

    Each flag sets a recipe setting, named the same for every trainer (--epochs is
    training.epochs); --set KEY=VALUE sets any other the trainer takes (listed at the end),
    and one it does not take is refused before anything loads.

    \b
    Examples:
      asrctl finetune -b hf-ctc -m facebook/wav2vec2-base --train train.jsonl --val val.jsonl --build-vocab -o out/
      asrctl finetune -b hf-whisper -m openai/whisper-small --train train.jsonl --val val.jsonl --peft lora -o out/
      asrctl finetune -c whisper-small-lora --train train.jsonl --val val.jsonl -o out/ --set training.max_steps=500
      asrctl finetune --print-recipe whisper-small-lora > my.yaml
      asrctl finetune -c whisper-small-sft --train train.jsonl --val val.jsonl -o out/ --nproc-per-node 8
    """
    from asrctl.interrupts import Interrupted
    from asrctl.launch import check_distributed, in_torchrun, is_main_process, run_under_torchrun
    from asrctl.recipes import build_recipe, check_before_loading, find_recipe

    recipe_file = find_recipe(recipe, all_recipes()) if recipe else None
    values = {FLAG_KEYS[k]: v for k, v in flags.items()}
    if peft:
        values["method"] = peft
    if values.get("output_dir") is not None:
        values["output_dir"] = str(values["output_dir"])
    config = build_recipe(recipe_file, values, assignments)
    trainer = trainer_for(config["backend"])
    check_before_loading(config, trainer)
    if trainer.check and not in_torchrun():  # the processes torchrun starts were checked before it started them
        trainer.check(config, resume=resume)
    if not config["data"].get("val") and is_main_process() and not in_torchrun():
        from asrctl.progress import stderr

        stderr.print("warning: no --val: training goes on without a validation WER, and the model saved is the "
                     "last step's (best_checkpoint null); give --val DEV.jsonl to keep the best", style="yellow",
                     highlight=False)
    nproc, nnodes = check_distributed(config["distributed"])
    if nproc * nnodes > 1 and trainer.launcher == "torchrun" and not in_torchrun():
        run_under_torchrun(config["distributed"], sys.argv[1:])
    main = is_main_process()
    try:
        summary = trainer.train(config, resume=resume, quiet=quiet or not main)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; run the same command with --resume to go on from the last checkpoint in "
                          f"{config['output_dir']}") from None
    if main:
        from asrctl.training import complete, wer_before_after

        summary = complete(summary)
        line = wer_before_after(summary)
        if line and not quiet:
            from asrctl.progress import stderr

            stderr.print(line, highlight=False)
        click.echo(json.dumps(summary, indent=2))
