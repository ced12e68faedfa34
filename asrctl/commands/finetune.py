"""`asrctl finetune`: full fine-tuning (SFT) or LoRA through the backend's trainer plugin."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from asrctl.commands.options import apply_options
from asrctl.train.settings import FLAGGED, TABLE, Option, kinds, type_label


def all_recipes() -> dict[str, Path]:
    from asrctl.plugins import trainers

    return {name: path for spec in trainers() for name, path in spec.recipes.items()}


def trainer_for(backend: str):
    from asrctl.errors import AsrctlError
    from asrctl.plugins import trainers

    for spec in trainers():
        if backend in spec.backends:
            return spec
    known = "; ".join(f"{t.name} ({', '.join(t.backends)})" for t in trainers()) \
        or "none installed (see `asrctl plugins`)"
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
    from asrctl.train.recipes import find_recipe

    click.echo(find_recipe(value, all_recipes()).read_text(), nl=False)
    ctx.exit()


def _listed(_ctx, _param, value: str | tuple[str, ...] | None) -> list[str] | None:
    """A repeated flag's values (each FILE[:WEIGHT] of --train), or a comma list's items."""
    if isinstance(value, tuple):
        return list(value) or None
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def described(option: Option) -> str:
    """Its help, with the default that applies when it is not set where the core has one."""
    if option.default is None or option.scope == "recipe":
        return option.help
    value = option.default
    return f"{option.help} [default: {','.join(f'{v:g}' for v in value) if isinstance(value, tuple) else value}]"


def setting_option(option: Option) -> Callable:
    """The click option of a finetune setting, made from its row in asrctl.train.settings.TABLE."""
    types = set(kinds(option))
    extra: dict[str, Any] = {}
    if bool in types:
        extra = {"default": None, **({} if "/" in option.flags[0] else {"is_flag": True})}  # x/no-x: a pair
    elif option.choices:
        extra = {"type": click.Choice(option.choices)}
    elif option.multiple or list in types:
        extra = {"multiple": option.multiple, "callback": _listed}
    elif option.folder:
        extra = {"type": click.Path(file_okay=False)}
    elif option.low is not None or option.high is not None:
        bounds = click.IntRange if int in types else click.FloatRange
        extra = {"type": bounds(min=option.low, max=option.high,
                                **({"min_open": True} if option.low_open else {}))}
    elif types & {int, float}:
        extra = {"type": int if int in types else float}
    return click.option(*option.flags, option.parameter, metavar=option.metavar, help=described(option), **extra)


class FinetuneCommand(click.Command):
    """`--help` ends with the settings that have no flag: those every trainer takes, and each installed
    trainer's own."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from asrctl.plugins import trainers

        unflagged = [option for option in TABLE if not option.flags]
        with formatter.section("Settings of every trainer without a flag (in a recipe or as --set KEY=VALUE)"):
            formatter.write_dl([(s.name, f"[{type_label(s)}] {described(s)}") for s in unflagged])
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
@apply_options([setting_option(option) for option in FLAGGED])
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in OUTPUT_DIR.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary (OUTPUT_DIR/training_summary.json) as JSON on stdout, for scripts.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary table.")
def finetune_command(recipe: str | None, assignments: tuple[str, ...], resume: bool, as_json: bool, quiet: bool,
                     **flags: Any) -> None:
    """Fine-tune a model on your data: all weights (SFT) or LoRA adapters, from flags or a recipe.

    Validation WER is measured during training, the best checkpoint by WER is kept, and the
    output folder gets the model (or adapter) in safetensors with its processor, plus
    training_summary.json, which a table on stderr sums up at the end (--json prints it on
    stdout). `asrctl infer --model OUTPUT_DIR` works on both.

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
    from asrctl.train.launch import check_distributed, in_torchrun, is_main_process, run_under_torchrun
    from asrctl.train.recipes import build_recipe, check_before_loading, find_recipe

    recipe_file = find_recipe(recipe, all_recipes()) if recipe else None
    values = {option.name: flags[option.parameter] for option in FLAGGED}
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
    # Several machines meet through torchrun's rendezvous, whatever starts the processes of one machine.
    if nproc * nnodes > 1 and (trainer.launcher == "torchrun" or nnodes > 1) and not in_torchrun():
        run_under_torchrun(config["distributed"], sys.argv[1:])
    main = is_main_process()
    try:
        summary = trainer.train(config, resume=resume, quiet=quiet or not main)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; run the same command with --resume to go on from the last checkpoint in "
                          f"{config['output_dir']}") from None
    if main:
        from asrctl.progress import print_summary
        from asrctl.train.summary import complete, summary_rows

        summary = complete(summary)
        print_summary(f"asrctl finetune -> {summary['output_dir']}", summary_rows(summary), [], quiet=quiet)
        if as_json:
            click.echo(json.dumps(summary, indent=2))
