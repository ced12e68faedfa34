"""What several commands parse alike: manifest arguments, KEY=VALUE options (-O, -E, -V), option
lists applied as one decorator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from asrctl.specs import INFER_OPTIONS


def parse_key_values(assignments: tuple[str, ...], flag: str, example: str) -> dict[str, Any]:
    """-O/-E KEY=VALUE pairs, values read as YAML as --set reads them; keys are checked once the
    backend or engine is known. Scalars only: the options go into the job's JSON fingerprint."""
    from asrctl.train.recipes import parse_assignment

    options: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise click.BadParameter(f"{assignment!r}: expected KEY=VALUE, e.g. {flag} {example}")
        if flag == "-O" and key in INFER_OPTIONS:
            raise click.BadParameter(f"{key} has its own flag: use --{key.replace('_', '-')}")
        value = parse_assignment(assignment)[1]
        options[key] = value if value is None or isinstance(value, (str, int, float, bool)) else raw.strip()
    return options


def apply_options(options: list[Callable]) -> Callable:
    def decorate(f: Callable) -> Callable:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


class ManifestFile(click.Path):
    """A NeMo JSONL manifest given on the command line: an existing file, and one line, before any work
    starts, for a file of another format (a CSV, a Lhotse CutSet, a JSON array) saying how to convert
    it. The reader knows no formats; this is where the command line asks them."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        from asrctl.data.records import refuse_other_formats  # the registered formats load only now

        refuse_other_formats(path)
        return path


MANIFEST = ManifestFile()
