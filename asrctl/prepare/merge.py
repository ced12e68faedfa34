"""`manifest merge`: concatenate manifests, keeping the first row of each audio (resolved path + offset).

Streams every input line by line; memory holds one key per distinct row (to spot repeats), never
the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from asrctl.atomic import AtomicWriter
from asrctl.data.paths import Rebaser, audio_key
from asrctl.data.rows import LineError, ManifestReader, dumps

SHOWN_DUPLICATES = 20


@dataclass
class MergeReport:
    rows: int = 0
    duplicates: int = 0
    examples: list[str] = field(default_factory=list)  # "b.jsonl:4 repeats a.jsonl:2"


def merge_manifests(inputs: list[Path], output: Path, on_error: Callable[[LineError], None]) -> MergeReport:
    report = MergeReport()
    first: dict[str, int] = {}  # key -> input index << 40 | line: a small int where a tuple would weigh more
    rebase = Rebaser(output)
    with AtomicWriter(output) as f:
        for index, path in enumerate(inputs):
            for row in ManifestReader(path, on_error=on_error):
                key = audio_key(row.record, row.base_dir)
                where = first.get(key)
                if where is not None:
                    report.duplicates += 1
                    if len(report.examples) < SHOWN_DUPLICATES:
                        report.examples.append(f"{path}:{row.line} repeats "
                                               f"{inputs[where >> 40]}:{where & (1 << 40) - 1}")
                    continue
                first[key] = index << 40 | row.line
                f.write(dumps(rebase(row.record, row.base_dir)) + "\n")
                report.rows += 1
    return report
