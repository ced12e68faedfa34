"""`manifest convert`: any registered format to any other, through manifest records, streaming where the
target allows (nemo writes line by line; CSV and HF spool to disk; Kaldi, Lhotse and shards hold rows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from asrctl.data.paths import Record, relative_record
from asrctl.data.records import get_format, optional_kwargs, read_records
from asrctl.data.rows import LineError
from asrctl.errors import AsrctlError


@dataclass
class ConvertReport:
    source_format: str
    read: int = 0
    written: int = 0


def convert(source: Path, output: Path, *, to: str, source_format: str | None = None,
            extract_to: Path | None = None, allow_commands: bool = False, absolute: bool = False,
            on_error: Callable[[LineError], None]) -> ConvertReport:
    """Convert; audio paths are written relative to the output's folder unless `absolute`."""
    target = get_format(to)
    if target.write is None:
        raise AsrctlError(f"format {target.name} can be read but not written")
    spec, records = read_records(source, source_format, on_error, extract_to=extract_to,
                                 allow_commands=allow_commands)
    report = ConvertReport(spec.name)
    out_dir = output.absolute().parent

    def prepared() -> Iterator[Record]:
        for record in records:
            report.read += 1
            yield record if absolute else relative_record(record, out_dir)

    # By FormatSpec's parameter names: the native writer (write_manifest) takes them as (path, records).
    report.written = target.write(records=prepared(), path=output, **optional_kwargs(target.write, on_error=on_error))
    return report
