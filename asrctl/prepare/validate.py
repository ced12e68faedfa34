"""`manifest validate`: find what would break training or scoring, row by row, and split clean from bad.

Always checked: malformed lines, missing files, unreadable audio, a channel the file does not have,
durations missing (NeMo's loaders refuse such rows; --fix fills them in from the file) or disagreeing
with the file (beyond a tolerance; for offset rows, segments running past the end), empty text, and
rows repeating an earlier row's audio (same resolved path, offset and channel). Checked when asked:
sample rate, channels, allowed characters, and a duration range.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from asrctl.atomic import AtomicWriter
from asrctl.data.parallel import ordered_map
from asrctl.data.paths import Rebaser, audio_key
from asrctl.data.probing import probe_or_error
from asrctl.data.rows import LineError, RawLines, Row, dumps, read_items
from asrctl.errors import AudioError

# Problem kinds, in report order, with their titles.
PROBLEMS = {
    "malformed": "malformed line",
    "missing_file": "audio file missing",
    "unreadable_audio": "audio unreadable",
    "no_such_channel": "channel not in the file",
    "missing_duration": "no duration (NeMo refuses the row)",
    "duration_mismatch": "duration disagrees with the file",
    "sample_rate": "unexpected sample rate",
    "channels": "unexpected channel count",
    "empty_text": "empty or blank text",
    "bad_characters": "characters outside the charset",
    "duplicate": "duplicate audio (same path, offset and channel)",
    "duration_range": "duration outside --min/--max-duration",
}
# Problems --fix repairs: such a row goes to the clean rows, mended, instead of the rejects.
FIXABLE = frozenset({"missing_duration"})
EXAMPLES = 3


@dataclass(frozen=True)
class Checks:
    duration_tolerance: float = 0.1
    sample_rate: int | None = None
    channels: int | None = None
    charset: frozenset[str] | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    require_text: bool = True
    require_duration: bool = True  # NeMo's training loaders refuse rows without; inference does not


def parse_charset(value: str) -> frozenset[str]:
    """Allowed characters: a file's characters (line breaks aside), or ranges and literals like "a-z' "."""
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as f:
            return frozenset(f.read()) - {"\n", "\r"}
    chars: set[str] = set()
    i = 0
    while i < len(value):
        if i + 2 < len(value) and value[i + 1] == "-":
            low, high = value[i], value[i + 2]
            if ord(low) > ord(high):
                raise ValueError(f"range {low}-{high} runs backwards")
            chars.update(chr(c) for c in range(ord(low), ord(high) + 1))
            i += 3
        else:
            chars.add(value[i])
            i += 1
    return frozenset(chars)


@dataclass
class Report:
    """Problems by kind: how many, on which lines, with a few example reasons."""

    path: str
    rows: int = 0
    clean: int = 0
    fixed: int = 0  # rows whose only problems --fix repairs
    lines: dict[str, list[int]] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, line: int, kind: str, reason: str) -> None:
        self.lines.setdefault(kind, []).append(line)
        examples = self.examples.setdefault(kind, [])
        if len(examples) < EXAMPLES:
            examples.append(f"line {line}: {reason}")

    @property
    def rejected(self) -> int:
        return self.rows - self.clean - self.fixed

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path, "rows": self.rows, "clean": self.clean, "fixed": self.fixed, "rejected": self.rejected,
            "problems": {kind: {"title": PROBLEMS[kind], "count": len(self.lines[kind]), "lines": self.lines[kind],
                                "examples": self.examples[kind]} for kind in PROBLEMS if kind in self.lines},
        }


def audio_problems(row: Row, checks: Checks) -> tuple[list[tuple[str, str]], float | None]:
    """Problems found by opening the file (runs in a thread), and the file's duration."""
    path = row.audio_path
    if not path.is_file():
        return [("missing_file", f"{path}: no such file")], None
    info = probe_or_error(path)
    if isinstance(info, AudioError):
        return [("unreadable_audio", str(info))], None
    problems = []
    duration, offset = row.record.get("duration"), float(row.record.get("offset") or 0)
    channel = row.record.get("channel")
    if channel is not None and channel >= info.channels:
        problems.append(("no_such_channel", f"channel {channel}, the file has {info.channels} (numbered from 0)"))
    if duration is None and checks.require_duration:
        problems.append(("missing_duration", f"no duration; the file gives {info.duration - offset:.3f} s"))
    elif row.record.get("offset") is not None:
        end = offset + float(duration or 0)
        if end > info.duration + checks.duration_tolerance:
            problems.append(("duration_mismatch", f"segment {offset:g}+{float(duration or 0):g} s ends after the file "
                                                  f"({info.duration:.3f} s)"))
    elif duration is not None and abs(float(duration) - info.duration) > checks.duration_tolerance:
        problems.append(("duration_mismatch", f"duration {float(duration):.3f} s, the file has {info.duration:.3f} s"))
    if checks.sample_rate and info.sample_rate != checks.sample_rate:
        problems.append(("sample_rate", f"{info.sample_rate} Hz, expected {checks.sample_rate}"))
    if checks.channels and channel is None and info.channels != checks.channels:  # a channel row reads one
        problems.append(("channels", f"{info.channels} channels, expected {checks.channels}"))
    return problems, info.duration - offset


def row_problems(row: Row, checks: Checks, file_duration: float | None) -> list[tuple[str, str]]:
    """Problems in the row's own fields (text, charset, duration range)."""
    problems = []
    text = row.record.get("text")
    if checks.require_text and (text is None or not text.strip()):
        problems.append(("empty_text", "no text" if text is None else "text is empty or blank"))
    if checks.charset is not None and text:
        outside = sorted(set(text) - checks.charset)
        if outside:
            problems.append(("bad_characters", "not in the charset: " + " ".join(repr(c) for c in outside[:10])))
    duration = row.record.get("duration", file_duration)
    if duration is not None and (
        (checks.min_duration is not None and duration < checks.min_duration)
        or (checks.max_duration is not None and duration > checks.max_duration)
    ):
        low = f"{checks.min_duration:g}" if checks.min_duration is not None else "0"
        high = f"{checks.max_duration:g}" if checks.max_duration is not None else "∞"
        problems.append(("duration_range", f"duration {duration:.3f} s is outside {low}–{high} s"))
    return problems


def validate(path: Path, checks: Checks, *, fix: Path | None = None, rejects: Path | None = None,
             workers: int = 8, advance: Callable[..., None] = lambda n=1: None) -> Report:
    """Check every line of `path`; clean rows go to `fix`, the others to `rejects` with a reject_reason."""
    report = Report(str(path))
    seen: dict[str, int] = {}  # audio key -> line of its first row
    raw = RawLines(path)

    def work(item: Row | LineError) -> tuple[list[tuple[str, str]], float | None]:
        return ([], None) if isinstance(item, LineError) else audio_problems(item, checks)

    with ExitStack() as stack:
        stack.callback(raw.close)
        fixed = _Output(stack, fix)
        rejected = _Output(stack, rejects)
        for item, (problems, file_duration) in ordered_map(work, read_items(path), workers):
            advance()
            report.rows += 1
            if isinstance(item, LineError):
                report.add(item.line, "malformed", item.reason)
                rejected.write({"line": item.line, "raw": raw(item.line), "reject_reason": item.reason})
                continue
            problems = problems + row_problems(item, checks, file_duration)
            key = audio_key(item.record, item.base_dir)
            if key in seen:
                problems.append(("duplicate", f"same audio as line {seen[key]}"))
            else:
                seen[key] = item.line
            for kind, reason in problems:
                report.add(item.line, kind, reason)
            if not problems:
                report.clean += 1
                fixed.write(fixed.rebase(item))
            elif {kind for kind, _ in problems} <= FIXABLE and file_duration is not None:
                report.fixed += 1
                fixed.write({**fixed.rebase(item), "duration": round(file_duration, 6)})
            else:
                rejected.write({**rejected.rebase(item), "reject_reason": "; ".join(r for _, r in problems)})
    return report


class _Output:
    """An optional manifest written atomically, rows re-expressed from its folder."""

    def __init__(self, stack: ExitStack, path: Path | None) -> None:
        self._file: IO[str] | None = stack.enter_context(AtomicWriter(path)) if path else None
        self._rebase = Rebaser(path) if path else None

    def rebase(self, row: Row) -> dict[str, Any]:
        return self._rebase(row.record, row.base_dir) if self._rebase else row.record

    def write(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(dumps(record) + "\n")


def render(report: Report, console: Console, shown_lines: int = 12) -> None:
    """The problems as a table: kind, rows, line numbers, an example reason."""
    table = Table(title=f"asrctl manifest validate: {report.path}")
    for column in ("problem", "rows", "lines", "example"):
        table.add_column(column, justify="right" if column == "rows" else "left", overflow="fold")
    for kind, title in PROBLEMS.items():
        lines = report.lines.get(kind)
        if lines:
            listed = ", ".join(map(str, lines[:shown_lines])) + (f" … +{len(lines) - shown_lines}"
                                                                 if len(lines) > shown_lines else "")
            table.add_row(title, str(len(lines)), listed, Text(report.examples[kind][0]))
    if table.row_count:
        console.print(table)
    mended = f"{report.fixed} missing only what --fix fills in, " if report.fixed else ""
    console.print(f"{report.rows} rows: {report.clean} clean, {mended}{report.rejected} with problems", highlight=False)
