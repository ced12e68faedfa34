"""Fine-tuning recipes: YAML files of nested settings, overridden by flags and `--set a.b=value`.

A recipe names the backend, the model, the method (sft or lora) and the data, training, lora and
freeze sections that the backend's trainer reads. Trainers ship recipes in their plugin package
(TrainerSpec.recipes); `asrctl finetune --list-recipes` shows them all.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from asrctl.errors import AsrctlError
from asrctl.registry import unknown_name_message
from asrctl.specs import Setting, TrainerSpec
from asrctl.train.settings import COMMON_SETTINGS, LORA_SETTINGS, TYPE_NAMES, fits, kinds

# What every recipe has, before the recipe file and the command line fill it in.
DEFAULTS: dict[str, Any] = {
    "backend": None,
    "model": None,
    "method": "sft",
    "allow_pickle": False,  # load pickle-based base weights (they can run code when loaded)
    "output_dir": None,
    "data": {"train": None, "val": None, "format": None, "min_duration": None, "max_duration": None},
    "training": {},
    "lora": {},
    "freeze": {},
    "augment": {},
    "distributed": {},  # nproc_per_node, nnodes, rdzv_endpoint: see asrctl.train.launch
}

# Names recipes used for common settings before they had neutral ones: still read, as the new name.
FORMER_NAMES = {"training.num_train_epochs": "training.epochs",
                "training.per_device_train_batch_size": "training.batch_size",
                "training.dataloader_num_workers": "training.num_workers"}
SECTIONS = ("data", "training", "lora", "freeze", "augment")


def load_recipe_file(path: Path) -> dict[str, Any]:
    try:
        recipe = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise AsrctlError(f"{path}: cannot read recipe ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise AsrctlError(f"{path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(recipe, dict):
        raise AsrctlError(f"{path}: a recipe is a mapping of settings, got {type(recipe).__name__}")
    return _number(recipe)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else in `override` replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def set_path(recipe: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key such as `training.learning_rate`, creating sections on the way."""
    node = recipe
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise AsrctlError(f"cannot set {key!r}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def parse_assignment(assignment: str) -> tuple[str, Any]:
    """`a.b.c=value`, the value read as YAML so that 3e-5, true and [q_proj, v_proj] keep their types."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise AsrctlError(f"--set {assignment!r}: expected KEY=VALUE, e.g. training.learning_rate=3e-5")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), _number(value)


_SCIENTIFIC = re.compile(r"[+-]?\d+(\.\d*)?[eE][+-]?\d+")


def _number(value: Any) -> Any:
    """YAML 1.1 reads 3e-5 (no dot) as a string, and learning rates are written that way."""
    if isinstance(value, str) and _SCIENTIFIC.fullmatch(value):
        return float(value)
    if isinstance(value, dict):
        return {k: _number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_number(v) for v in value]
    return value


def find_recipe(name: str, available: dict[str, Path]) -> Path:
    """A recipe by name from the installed trainers, or a path to a YAML file."""
    if name in available:
        return available[name]
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise AsrctlError(f"{path}: no such recipe file")
        return path
    raise AsrctlError(unknown_name_message("recipe", name, available))


def build_recipe(recipe_file: Path | None, flags: dict[str, Any], assignments: tuple[str, ...]) -> dict[str, Any]:
    """DEFAULTS, then the recipe file, then command-line flags (dotted keys), then --set assignments."""
    recipe = merge(DEFAULTS, load_recipe_file(recipe_file)) if recipe_file else copy.deepcopy(DEFAULTS)
    for key, value in flags.items():
        if value is not None:
            set_path(recipe, key, value)
    for assignment in assignments:
        set_path(recipe, *parse_assignment(assignment))
    _rename_former(recipe)
    if isinstance(recipe["data"].get("train"), (list, tuple)):
        sources = [{"file": file, "weight": weight} for file, weight in map(_source, recipe["data"]["train"])]
        recipe["data"]["train"] = sources if len(sources) > 1 else sources[0]["file"] if sources else None
    for required in ("backend", "model", "output_dir"):
        if not recipe.get(required):
            flag = {"output_dir": "-o/--output-dir"}.get(required, f"--{required}")
            raise AsrctlError(f"no {required} given: pass {flag} or set it in the recipe")
    if not recipe["data"].get("train"):
        raise AsrctlError("no training data given: pass --train or set data.train in the recipe")
    if recipe["method"] not in ("sft", "lora"):
        raise AsrctlError(f"method {recipe['method']!r}: expected sft or lora")
    if recipe["method"] == "sft" and (recipe.get("lora") or {}).get("merge"):
        raise AsrctlError("lora.merge (--merge) folds a LoRA adapter into its model: add --peft lora, or drop --merge")
    return recipe


def train_sources(data: dict[str, Any]) -> list[tuple[str, float]]:
    """data.train as (file, weight) pairs: one file (weight 1), or the sources of a mix."""
    train = data["train"]
    if isinstance(train, list):
        return [(source["file"], float(source["weight"])) for source in train]
    return [(train, 1.0)]


def sources_label(sources: list[tuple[str, float]]) -> str:
    """How a mix is named where one file would be: "in_domain.jsonl:0.7 + general.jsonl:0.3"."""
    return " + ".join(f"{file}:{weight:g}" for file, weight in sources) if len(sources) > 1 else sources[0][0]


def _source(value: Any) -> tuple[str, float]:
    """One training source of a mix: FILE:WEIGHT (FILE alone weighs 1), or {file, weight}."""
    if isinstance(value, dict):
        file, weight = value.get("file"), value.get("weight", 1.0)
    else:
        file, sep, weight = str(value).rpartition(":")
        number = re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", weight)
        if not sep or not file or Path(str(value)).exists() or not number:
            file, weight = str(value), 1.0
    if not isinstance(file, str) or not file:
        raise AsrctlError(f"data.train: {value!r}: a source is FILE:WEIGHT or {{file: FILE, weight: W}}")
    if isinstance(weight, bool) or not isinstance(weight, (int, float, str)) or not float(weight) > 0:
        raise AsrctlError(f"data.train: {value!r}: a source's weight is a positive number")
    return file, float(weight)


def _rename_former(recipe: dict[str, Any]) -> None:
    for former, name in FORMER_NAMES.items():
        section, _, key = former.partition(".")
        values = recipe.get(section)
        if not isinstance(values, dict) or key not in values:
            continue
        new_key = name.partition(".")[2]
        if values.get(new_key) is not None and values[key] is not None:
            raise AsrctlError(f"{former} is the former name of {name}: give one of them")
        value = values.pop(key)
        if values.get(new_key) is None:
            values[new_key] = value


def trainer_settings(trainer: TrainerSpec) -> dict[str, Setting]:
    """Every setting `trainer` takes by name: the common ones, LoRA's where it does LoRA, its own."""
    taken = [*COMMON_SETTINGS, *(LORA_SETTINGS if "lora" in trainer.methods else ()), *trainer.settings]
    return {setting.name: setting for setting in taken}


def check_settings(recipe: dict[str, Any], trainer: TrainerSpec) -> None:
    """Every setting of the recipe is one `trainer` takes, with a value of its type: else one line
    naming the trainer and what it takes in that section."""
    for key in recipe:
        if key not in DEFAULTS:
            raise AsrctlError(f"{key}: not a recipe setting (a recipe has {', '.join(DEFAULTS)})")
    taken = trainer_settings(trainer)
    for section in SECTIONS:
        values = recipe.get(section) or {}
        if not isinstance(values, dict):
            raise AsrctlError(f"{section}: a section of settings, got {type(values).__name__}")
        for key, value in values.items():
            setting = taken.get(f"{section}.{key}") or taken.get(f"{section}.*")
            if setting is None:
                raise AsrctlError(_not_taken(f"{section}.{key}", trainer, taken))
            if value is not None and not any(fits(value, kind) for kind in kinds(setting)):
                expected = " or ".join(TYPE_NAMES.get(kind, kind.__name__) for kind in kinds(setting))
                raise AsrctlError(f"{section}.{key}: expected {expected}, got {value!r}")


def _not_taken(name: str, trainer: TrainerSpec, taken: dict[str, Setting]) -> str:
    section = name.partition(".")[0]
    known = [other for other in taken if other.startswith(section + ".")]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    takes = f"its {section} settings are {', '.join(known)}" if known else f"it takes no {section} settings"
    return f"{name}: not a setting of the {trainer.name} trainer{hint}; {takes}"


def check_keys(section: str, values: dict[str, Any], known: Iterable[str], *, trainer: str) -> None:
    """Every key of a recipe section is one the trainer reads: else one line, with the nearest known key.
    For the keys of a section a trainer takes whole (a `SECTION.*` setting)."""
    known = list(known)
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {section}.{close[0]}?)" if close else ""
            raise AsrctlError(f"{section}.{key}: not a setting of the {trainer} trainer{hint}; "
                              "`asrctl finetune --help` lists its settings")


def earlier_run(folder: Path) -> AsrctlError:
    """The error for an output folder that holds another run's checkpoints, given without --resume."""
    return AsrctlError(f"{folder} holds checkpoints of an earlier run: add --resume to continue it, "
                       "or choose another --output-dir")


def check_before_loading(recipe: dict[str, Any], trainer: TrainerSpec) -> None:
    """The method and the settings are the trainer's, TRAIN and VAL exist, and what the settings every
    trainer takes need is there: found before any trainer starts loading."""
    import importlib.util

    if recipe["method"] not in trainer.methods:
        raise AsrctlError(f"the {trainer.name} trainer does not do {recipe['method']} (it does "
                          f"{', '.join(trainer.methods)})")
    check_settings(recipe, trainer)

    from asrctl.train.augment import checked

    checked(recipe.get("augment") or {})
    noise = (recipe.get("augment") or {}).get("noise")
    if noise and not Path(noise).exists():
        raise AsrctlError(f"{noise}: no such noise manifest (augment.noise)")
    sources = train_sources(recipe["data"])
    if len(sources) > 1 and not trainer.mixing:
        from asrctl.plugins import trainers

        mixers = ", ".join(spec.name for spec in trainers() if spec.mixing) or "none installed"
        raise AsrctlError(f"the {trainer.name} trainer trains on one --train source: mixing several by weight "
                          f"(--train A:W --train B:W) is for the trainers that take it ({mixers})")
    for path in [file for file, _ in sources] + [recipe["data"].get("val")]:
        if path and not Path(path).exists():
            raise AsrctlError(f"{path}: no such file or folder")
    training = recipe.get("training") or {}
    if training.get("early_stopping_patience") and not recipe["data"].get("val"):
        raise AsrctlError("early stopping watches validation WER: give --val too")
    if training.get("buckets") and not training.get("batch_seconds"):
        raise AsrctlError("training.buckets are the duration buckets of --batch-seconds: give that too")
    if training.get("batch_seconds") is not None and float(training["batch_seconds"]) <= 0:
        raise AsrctlError(f"training.batch_seconds={training['batch_seconds']}: expected a positive number of seconds")
    if training.get("baseline") and not recipe["data"].get("val"):
        raise AsrctlError("the baseline is the base model's validation WER: give --val too")
    if training.get("average_last") is not None and int(training["average_last"]) < 2:
        raise AsrctlError(f"training.average_last={training['average_last']}: an average takes at least 2 checkpoints")
    if training.get("tensorboard") and importlib.util.find_spec("tensorboard") is None:
        raise AsrctlError("TensorBoard logs need the tensorboard package: pip install tensorboard")
