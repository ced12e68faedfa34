"""Manifest rows: NeMo JSONL read line by line with per-line errors, and written atomically, through
`jsonlines`.

One JSON object per line with `audio_filepath`, usually `duration` and `text`, plus any other
fields, which are kept as they are. Relative audio paths resolve against the manifest's folder.
Whether a file is another format than this one is asked of the registered formats by
asrctl.data.records, not here: this reader knows no plugins.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonlines

from asrctl.atomic import AtomicWriter
from asrctl.data.paths import AUDIO_KEY, absolute_path
from asrctl.errors import AsrctlError


@dataclass(frozen=True)
class LineError:
    """A manifest line that could not be used, printed as FILE:LINE: reason."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


ErrorSink = Callable[[LineError], None]  # where readers and writers report the entries they cannot use


@dataclass(frozen=True)
class Row:
    """One manifest record with where it came from; `record` is the line's object, untouched."""

    line: int
    record: dict[str, Any]
    base_dir: Path

    @property
    def audio_path(self) -> Path:
        return Path(absolute_path(self.record[AUDIO_KEY], self.base_dir))


def check_record(record: object) -> str | None:
    """The reason a parsed line is not a usable manifest record, or None when it is."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    audio = record.get(AUDIO_KEY)
    if not isinstance(audio, str) or not audio.strip():
        return f"missing {AUDIO_KEY!r}" if audio is None else f"{AUDIO_KEY!r} must be a non-empty string"
    duration = record.get("duration")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0):
        return f"'duration' must be a non-negative number, got {duration!r}"
    offset = record.get("offset")
    if offset is not None and (isinstance(offset, bool) or not isinstance(offset, (int, float)) or offset < 0):
        return f"'offset' must be a non-negative number, got {offset!r}"
    channel = record.get("channel")
    if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int) or channel < 0):
        return f"'channel' must be a channel number (0 for the first), got {channel!r}"
    text = record.get("text")
    if text is not None and not isinstance(text, str):
        return f"'text' must be a string, got {type(text).__name__}"
    return None


class ManifestReader:
    """Iterate a manifest's good rows; bad lines go to `on_error` (default: `.errors`) and the read goes on.

    Reads line by line, so memory does not grow with the file. Blank lines are skipped.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        validate: bool = True,
        on_error: Callable[[LineError], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.base_dir = self.path.resolve().parent
        self.validate = validate
        self.errors: list[LineError] = []
        self.on_error = on_error or self.errors.append
        if not self.path.exists():
            raise AsrctlError(f"{self.path}: no such manifest file")
        if self.path.is_dir():
            raise AsrctlError(f"{self.path}: a folder, not a manifest file")

    def __iter__(self) -> Iterator[Row]:
        number = 0

        def numbered(f: Iterable[bytes]) -> Iterator[bytes]:  # the reader tells line numbers of bad lines only
            nonlocal number
            for raw in f:
                number += 1
                yield raw

        with open(self.path, "rb") as f, jsonlines.Reader(numbered(f)) as lines:
            while True:
                try:
                    record = lines.read(allow_none=True, skip_empty=True)  # a UTF-8 byte-order mark is skipped
                except EOFError:
                    return
                except jsonlines.InvalidLineError as exc:
                    self.on_error(LineError(str(self.path), exc.lineno, _reason(exc)))
                    continue
                reason = check_record(record) if self.validate else None
                if reason:
                    self.on_error(LineError(str(self.path), number, reason))
                else:
                    yield Row(number, record, self.base_dir)


def _reason(exc: jsonlines.InvalidLineError) -> str:
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return f"not valid UTF-8 (byte {cause.start})"
    if isinstance(cause, json.JSONDecodeError):
        return f"invalid JSON: {cause.msg} (column {cause.colno})"
    return str(exc)


def no_such_field(path: str | os.PathLike, name: str, given: str, fields: Iterable[str]) -> AsrctlError:
    """The error for a field (`given` as the user gave it) that no row of `path` has: a typo, mostly."""
    import difflib

    fields = sorted(set(fields))
    close = difflib.get_close_matches(name, fields, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return AsrctlError(f"{path}: no row has a field {name!r} ({given}){hint}; the rows have: {', '.join(fields)}")


def read_manifest(path: str | os.PathLike) -> list[Row]:
    """All good rows of a small manifest; raises on the first bad line. Use ManifestReader to stream."""
    reader = ManifestReader(path)
    rows = list(reader)
    if reader.errors:
        raise AsrctlError(str(reader.errors[0]))
    return rows


def dumps(record: dict[str, Any]) -> str:
    """One manifest line: unicode kept readable, numpy scalars turned into plain numbers."""
    return json.dumps(record, ensure_ascii=False, default=_to_builtin)


def _to_builtin(value: Any) -> Any:
    for attr in ("tolist", "item"):  # numpy arrays and scalars, torch tensors
        if hasattr(value, attr):
            return getattr(value, attr)()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_manifest(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> int:
    """Write records as a manifest atomically; returns the number of rows written."""
    count = 0
    with AtomicWriter(path) as f, jsonlines.Writer(f, dumps=dumps) as writer:
        for record in records:
            writer.write(record)
            count += 1
    return count


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
