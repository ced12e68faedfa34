"""Reading inputs: manifest rows and bad lines in file order, and records from any registered format."""

from __future__ import annotations

import inspect
import json
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from asrctl.errors import AsrctlError, AudioError
from asrctl.manifest import AUDIO_KEY, LineError, ManifestReader, Row, check_record
from asrctl.parallel import ordered_map
from asrctl.paths import Record, resolve_record
from asrctl.probing import probed_duration
from asrctl.specs import FormatSpec

# The native format: when another format's detect() also accepts a path, that one is meant.
NATIVE_FORMAT = "nemo"


def read_items(path: Path) -> Iterator[Row | LineError]:
    """Every non-blank line of a manifest, as a Row or a LineError, in file order."""
    errors: deque[LineError] = deque()
    reader = ManifestReader(path, on_error=errors.append)
    for row in reader:  # on_error runs before the row after the bad line is yielded
        while errors:
            yield errors.popleft()
        yield row
    yield from errors


def count_rows(path: Path) -> int:
    """Non-blank lines: the total for a progress bar, at disk speed."""
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


class RawLines:
    """The raw text of given line numbers, read forward in step with a reader (lines asked in order)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = None
        self._number = 0

    def __call__(self, number: int) -> str:
        if self._file is None:
            self._file = open(self.path, "rb")
        raw = b""
        while self._number < number:
            raw = self._file.readline()
            self._number += 1
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def get_format(name: str) -> FormatSpec:
    from asrctl.plugins import formats

    return formats().get(name)


def detect_format(path: Path) -> FormatSpec:
    """The registered format whose detect() accepts `path`; the native one only when no other does."""
    from asrctl.plugins import formats

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
    from asrctl.plugins import formats  # registered formats, asked only for a file that needs it

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


def read_training_rows(path: str, data_format: str | None, unpack_to: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every record of a training or validation file in any registered format (audio paths absolute),
    and the unreadable ones as "FILE:LINE: reason": what trainers read TRAIN and VAL with.

    Formats that keep audio inside archives (tarred shards) unpack it into `unpack_to` first.
    """
    source = Path(path)
    if not source.exists():
        raise AsrctlError(f"{path}: no such file or folder")
    if data_format is None:
        from asrctl.plugins import formats

        try:
            data_format = detect_format(source).name
        except AsrctlError:  # none or several formats claim it
            names = ", ".join(formats().names())
            raise AsrctlError(f"{path}: cannot tell its data format; pass --data-format (one of: {names})") from None
    unpack = optional_kwargs(get_format(data_format).read, extract_to=unpack_to)
    errors: list[str] = []
    _, records = read_records(source, data_format, lambda error: errors.append(str(error)), **unpack)
    return list(records), errors


def training_rows(records: Iterable[dict[str, Any]], *, min_duration: float | None = None,
                  max_duration: float | None = None) -> tuple[list[dict[str, Any]], Counter]:
    """The rows a trainer can learn from, each with its duration, and the others counted by reason
    ("no transcript", "shorter than 1 s", ...): the row rules every trainer applies. A row without a
    duration lasts its file's length less its offset (read_training_rows has set it already)."""
    kept: list[dict[str, Any]] = []
    dropped: Counter = Counter()
    for record in records:
        reason, row = _training_row(record, min_duration, max_duration)
        if row is None:
            dropped[reason] += 1
        else:
            kept.append(row)
    return kept, dropped


def _training_row(record: dict[str, Any], min_duration: float | None,
                  max_duration: float | None) -> tuple[str, dict[str, Any] | None]:
    if not (record.get("text") or "").strip():
        return "no transcript", None
    if not os.path.isfile(record[AUDIO_KEY]):
        return "audio file missing", None
    duration = record.get("duration")
    if duration is None:
        duration = probed_duration(record)
        if isinstance(duration, AudioError):
            return "unreadable audio", None
    if min_duration is not None and duration < min_duration:
        return f"shorter than {min_duration:g} s", None
    if max_duration is not None and duration > max_duration:
        return f"longer than {max_duration:g} s", None
    return "", {**record, "duration": float(duration)}
