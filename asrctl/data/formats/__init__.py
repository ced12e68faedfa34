"""Dataset format adapters, registered by asrctl.default_plugins.formats through `register_formats`.

Every adapter converts to and from manifest records (dicts with audio_filepath, duration, text,
optional offset, and any other fields, which are kept). The contract, beyond FormatSpec's:

- `read(path, on_error)` yields records; a relative audio_filepath is relative to the folder that
  holds `path` (the manifest convention). A record means exactly the audio its source meant (a
  segment's `offset`, 0 included; a `channel`), or the entry goes to on_error with the reason.
  Readers of formats that keep audio inside archives (or that only the source's library can
  render) also take `extract_to` (a folder to unpack into) and `audio` (False: only durations and
  text are wanted, nothing is unpacked); those whose data names commands take `allow_commands`.
- `write(records, path)` gets records whose relative paths are relative to the folder holding
  `path`; it may also take `on_error` for rows it cannot write. Output appears atomically.

Heavy libraries (datasets, pyarrow, lhotse) are imported inside read/write, never at import time.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from asrctl.data.rows import dumps
from asrctl.errors import AsrctlError
from asrctl.scratch import scratch_file


def need(module: str, fmt: str) -> ModuleType:
    """Import an optional library, or fail with one line that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise AsrctlError(f"format {fmt} needs the `{package}` package: pip install 'asrctl[formats]' "
                          f"({exc})") from None


class Spool:
    """Records parked in a temporary JSONL beside the output, with the union of their fields.

    Column formats (CSV, Arrow) need every column and its type before the first row; spooling keeps
    memory flat where holding the records would grow with them.
    """

    def __init__(self, records: Iterable[dict[str, Any]], near: Path) -> None:
        self.kinds: dict[str, set[str]] = {}  # field -> kinds of value met, in first-seen order
        self.count = 0
        fd, self.path = scratch_file(near, ".spool.jsonl")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                for record in records:
                    for key, value in record.items():
                        self.kinds.setdefault(key, set()).add(_kind(value))
                    f.write(dumps(record) + "\n")
                    self.count += 1
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, str)):
        return type(value).__name__
    return "json"
