"""`manifest create`: a row per audio file under a folder, durations from headers, transcripts paired.

Transcripts come from sidecar files (`utt.txt` or `utt.lab` beside `utt.wav`) or a TSV/CSV of
`path<TAB>text`, whose paths may be relative to the audio folder (with or without the extension),
absolute, or bare stems; the table wins over sidecars. Text is stripped and its runs of whitespace
become single spaces.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl.data.inputs import AUDIO_EXTENSIONS, find_audio
from asrctl.data.parallel import ordered_map
from asrctl.data.paths import AUDIO_KEY, portable_path
from asrctl.data.probing import probe_or_error
from asrctl.data.rows import LineError, write_manifest
from asrctl.errors import AsrctlError, AudioError

SIDECARS = (".txt", ".lab")
_HEADER = ({"path", "audio", AUDIO_KEY, "file", "filename"}, {"text", "transcript", "transcription", "sentence"})


def speaker_pattern(text: str) -> re.Pattern[str]:
    """A --speaker-from regex: one group, or a group named `speaker`. Raises ValueError otherwise."""
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    if "speaker" not in pattern.groupindex and pattern.groups != 1:
        raise ValueError(f"needs one group or a group named 'speaker', found {pattern.groups} groups")
    return pattern


def _speaker(pattern: re.Pattern[str], relative: str) -> str | None:
    match = pattern.search(relative)
    if not match:
        return None
    return match.group("speaker") if "speaker" in pattern.groupindex else match.group(1)


def _clean(text: str) -> str:
    return " ".join(text.split())


@dataclass
class Transcripts:
    """A transcript table, looked up by absolute path, relative path (with or without extension) or stem."""

    by_key: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path, on_error: Callable[[LineError], None]) -> Transcripts:
        table = cls()
        for number, cells in _table_rows(path):
            if len(cells) < 2 or not cells[0].strip():
                on_error(LineError(str(path), number, "expected `path<TAB>text` (or path,text in a .csv)"))
                continue
            if number == 1 and cells[0].strip().lower() in _HEADER[0] and cells[1].strip().lower() in _HEADER[1]:
                continue
            key = cells[0].strip()
            key = os.path.normpath(key) if os.path.isabs(key) else Path(key).as_posix()
            table.by_key[key] = _clean(cells[1])
        return table

    def find(self, audio: Path, relative: str) -> str | None:
        no_suffix = relative.rsplit(".", 1)[0] if "." in Path(relative).name else relative
        for key in (os.path.normpath(audio), relative, no_suffix, audio.stem):
            if key in self.by_key:
                self.used.add(key)
                return self.by_key[key]
        return None

    @property
    def unused(self) -> int:
        return len(self.by_key) - len(self.used)


def _table_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        if path.suffix.lower() == ".csv":
            reader = csv.reader(f)
            for cells in reader:
                if any(cells):
                    yield reader.line_num, cells
        else:  # TSV: split on the first tab only; quotes in text are text
            for number, line in enumerate(f, start=1):
                if line.strip():
                    yield number, line.rstrip("\r\n").split("\t", 1)


@dataclass
class CreateSummary:
    rows: int = 0
    seconds: float = 0.0
    failed: int = 0
    no_text: int = 0
    no_speaker: int = 0
    unused_transcripts: int = 0


def create_manifest(audio_dir: Path, output: Path, *, extensions: tuple[str, ...] = AUDIO_EXTENSIONS,
                    transcripts: Path | None = None, speaker_from: re.Pattern[str] | None = None,
                    absolute: bool = False, workers: int = 8, on_error: Callable[[Any], None],
                    progress: Callable[[int | None], Any]) -> CreateSummary:
    """Write the manifest for audio_dir; `progress(total)` must give a context yielding advance()."""
    if not audio_dir.is_dir():
        raise AsrctlError(f"{audio_dir}: not a folder")
    audio_dir = audio_dir.resolve()
    out_dir = output.resolve().parent
    files, sidecars = find_audio(audio_dir, extensions, keep=SIDECARS)
    if not files:
        raise AsrctlError(f"{audio_dir}: no audio files with extensions {', '.join(sorted(set(extensions)))}")
    table = Transcripts.load(transcripts, on_error) if transcripts else None
    summary = CreateSummary()

    def records(advance: Callable[..., None]) -> Iterator[dict[str, Any]]:
        for file, info in ordered_map(probe_or_error, files, workers):
            advance()
            if isinstance(info, AudioError):
                summary.failed += 1
                on_error(info)
                continue
            relative = file.relative_to(audio_dir).as_posix()
            record: dict[str, Any] = {AUDIO_KEY: str(file) if absolute else portable_path(str(file), out_dir),
                                      "duration": info.duration}
            text = table.find(file, relative) if table else None
            if text is None:
                text = _sidecar(file, sidecars, on_error)
            if text is None:
                summary.no_text += 1
            else:
                record["text"] = text
            if speaker_from is not None:
                speaker = _speaker(speaker_from, relative)
                if speaker is None:
                    summary.no_speaker += 1
                else:
                    record["speaker"] = speaker
            summary.rows += 1
            summary.seconds += info.duration
            yield record

    with progress(len(files)) as advance:
        write_manifest(output, records(advance))
    summary.unused_transcripts = table.unused if table else 0
    return summary


def _sidecar(audio: Path, sidecars: set[str], on_error: Callable[[Any], None]) -> str | None:
    for suffix in SIDECARS:
        candidate = audio.with_suffix(suffix)
        if str(candidate) in sidecars:
            try:
                return _clean(candidate.read_text(encoding="utf-8-sig"))
            except (OSError, UnicodeDecodeError) as exc:
                on_error(f"{candidate}: cannot read the transcript ({exc})")
    return None
