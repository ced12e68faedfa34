"""Records of any registered format: the format detected (or named), each record checked as a
manifest row, its audio path resolved and its duration filled in; and the one line for a file
given as a NeMo manifest that is another format.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from asrctl.data.parallel import ordered_map
from asrctl.data.paths import AUDIO_KEY, Record, resolve_record
from asrctl.data.probing import probed_duration
from asrctl.data.rows import LineError, check_record
from asrctl.errors import AsrctlError, AudioError
from asrctl.plugins import formats
from asrctl.specs import FormatSpec

# The native format: when another format's detect() also accepts a path, that one is meant.
NATIVE_FORMAT = "nemo"


def get_format(name: str) -> FormatSpec:
    return formats().get(name)


def detect_format(path: Path) -> FormatSpec:
    """The registered format whose detect() accepts `path`; the native one only when no other does."""
    registry = formats()
    matches = [spec for spec in registry if spec.detect is not None and _detects(spec, path)]
    if len(matches) > 1:
        matches = [spec for spec in matches if spec.name != NATIVE_FORMAT]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise AsrctlError(f"{path}: cannot tell its format; give --from (one of: {', '.join(registry.names())})")
    raise AsrctlError(f"{path}: looks like {' and '.join(s.name for s in matches)}; give --from to choose")


def _detects(spec: FormatSpec, path: Path) -> bool:
    try:
        return bool(spec.detect(path))
    except Exception:  # a plugin's detect() that trips over a path just does not claim it
        return False


def refuse_other_formats(path: Path) -> None:
    """One line for a file that is not a NeMo manifest but another format (CSV, a Lhotse CutSet, a
    JSON array...), instead of an error per line. Only asked when the first line is not a record."""
    first = b""
    if path.is_file():
        with open(path, "rb") as f:
            first = next((line for line in f if line.strip()), b"")
    try:
        record = json.loads(first.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        record = None
    if isinstance(record, dict) and AUDIO_KEY in record:
        return
    claims = [spec.name for spec in formats() if spec.name != NATIVE_FORMAT and spec.detect and _detects(spec, path)]
    convert = f"asrctl manifest convert {path} --to nemo -o {path.with_suffix('').with_suffix('')}.jsonl"
    if claims:
        raise AsrctlError(f"{path}: a {claims[0]} file, not a NeMo JSONL manifest: convert it first ({convert})")
    if first.lstrip().startswith(b"[") and _array_of_objects(path):
        raise AsrctlError(f"{path}: a JSON array, not a NeMo JSONL manifest (one JSON object per line): "
                          "write each object on a line of its own")
    if not path.is_file():
        raise AsrctlError(f"{path}: a folder, not a manifest file")


def _array_of_objects(path: Path) -> bool:
    """Whether the whole file is a JSON array of objects (a line that merely starts with "[" is not)."""
    try:
        value = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def optional_kwargs(function: Callable, **wanted: Any) -> dict[str, Any]:
    """The keyword arguments `function` accepts among `wanted` (format plugins may take fewer)."""
    parameters = inspect.signature(function).parameters
    return {name: value for name, value in wanted.items() if name in parameters}


def read_records(path: Path, fmt: str | None, on_error: Callable[[LineError], None], *,
                 extract_to: Path | None = None, allow_commands: bool = False,
                 audio: bool = True) -> tuple[FormatSpec, Iterator[Record]]:
    """The format of `path` and its records, each checked as a manifest row; bad ones go to on_error.

    With `audio`, relative audio paths come back absolute (resolved against the input's folder),
    formats that keep audio in archives unpack it into `extract_to` (as do those that run commands
    named in the data, with `allow_commands`: Kaldi's wav.scp), and a record without a duration
    gets its file's (NeMo's loaders refuse rows without one). Without it the records are for
    counting (stats): durations and text, audio paths as the format stores them.
    """
    spec = get_format(fmt) if fmt else detect_format(path)
    if spec.read is None:
        raise AsrctlError(f"format {spec.name} can be written but not read")
    options = optional_kwargs(spec.read, extract_to=extract_to, allow_commands=allow_commands, audio=audio)
    if extract_to is not None and "extract_to" not in options:
        raise AsrctlError(f"format {spec.name} keeps its audio as plain files: --extract-to does not apply")
    if allow_commands and "allow_commands" not in options:
        raise AsrctlError(f"format {spec.name} names no commands to run: --allow-commands does not apply")
    base = path.resolve().parent

    def checked() -> Iterator[tuple[int, Record]]:
        for number, record in enumerate(spec.read(path, on_error, **options), start=1):
            reason = check_record(record)
            if reason:
                on_error(LineError(str(path), number, f"record {number}: {reason}"))
            else:
                yield number, resolve_record(record, base) if audio else record

    def records() -> Iterator[Record]:
        if not audio:
            yield from (record for _, record in checked())
            return
        for (number, record), duration in ordered_map(_duration_of, checked()):
            if isinstance(duration, AudioError):
                on_error(LineError(str(path), number, f"record {number}: {duration}"))
            else:
                yield record if duration is None else {**record, "duration": duration}

    return spec, records()


def _duration_of(numbered: tuple[int, Record]) -> float | AudioError | None:
    """None for a record that has its duration; else its file's, or why the file cannot tell."""
    record = numbered[1]
    return None if record.get("duration") is not None else probed_duration(record)
