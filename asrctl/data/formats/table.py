"""CSV and TSV: a header row, one column per field, one row per record.

Cells are plain text, so types are carried the way JSON writes them: numbers, booleans, lists and
objects are JSON-encoded; strings are written as they are, except those that would read back as
something else (a speaker "1089", the empty string), which are JSON-quoted. An empty cell is a
field the record does not have; audio_filepath and text are always strings and never quoted.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from asrctl.atomic import AtomicWriter
from asrctl.data.formats import Spool
from asrctl.data.paths import AUDIO_KEY
from asrctl.data.rows import LineError

STRING_COLUMNS = frozenset({AUDIO_KEY, "text"})
LEADING_COLUMNS = (AUDIO_KEY, "duration", "offset", "text")


def encode_cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        if column in STRING_COLUMNS or not _reads_as_json(value):
            return value
    return json.dumps(value, ensure_ascii=False)


def decode_cell(column: str, cell: str) -> Any:
    if column in STRING_COLUMNS:
        return cell
    try:
        return json.loads(cell)
    except ValueError:
        return cell


def _reads_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return text == ""  # "" would read back as a missing field
    return True


def write(records: Iterable[dict], path: Path, *, delimiter: str) -> int:
    with Spool(records, near=path) as spool:
        fields = list(spool.kinds)
        columns = [c for c in LEADING_COLUMNS if c in spool.kinds] + [c for c in fields if c not in LEADING_COLUMNS]
        with AtomicWriter(path) as f:
            writer = csv.writer(f, delimiter=delimiter, lineterminator="\n")
            writer.writerow(columns)
            for record in spool:
                writer.writerow([encode_cell(c, record.get(c)) for c in columns])
        return spool.count


def read(path: Path, on_error: Callable[[LineError], None], *, delimiter: str) -> Iterator[dict]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        if AUDIO_KEY not in header:
            on_error(LineError(str(path), 1, f"header has no {AUDIO_KEY!r} column: {header}"))
            return
        for cells in reader:
            if not any(cells):
                continue
            if len(cells) != len(header):
                on_error(LineError(str(path), reader.line_num, f"{len(cells)} cells for {len(header)} columns"))
                continue
            yield {c: decode_cell(c, cell) for c, cell in zip(header, cells) if cell or c == "text"}


def detect(path: Path, *, suffix: str) -> bool:
    return path.is_file() and path.suffix.lower() == suffix
