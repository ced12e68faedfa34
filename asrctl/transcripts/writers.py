"""A transcribed row written as the files people use: txt, srt, vtt, tsv (start and end in
milliseconds, as openai-whisper writes it) and json (the whole row). Subtitles go through pysubs2;
each file appears whole or not at all."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from asrctl.atomic import AtomicWriter
from asrctl.errors import AsrctlError
from asrctl.transcripts.cues import Cue, CueLimits, make_cues, timed_words

FORMATS = ("txt", "srt", "vtt", "tsv", "json")
# The formats that need times from the backend.
TIMED_FORMATS = ("srt", "vtt", "tsv")


def expand_formats(names: Iterable[str]) -> tuple[str, ...]:
    """--output-format values, `all` for every format, in FORMATS order without repeats."""
    chosen = set(FORMATS) if "all" in names else set(names)
    return tuple(name for name in FORMATS if name in chosen)


def write_transcript(record: dict[str, Any], stem: Path, formats: Iterable[str], limits: CueLimits, *,
                     pred_key: str = "pred_text") -> list[Path]:
    """Write `record`'s transcript as STEM.FORMAT for each format; the paths written."""
    written = []
    for name in formats:
        path = stem.with_name(f"{stem.name}.{name}")
        try:
            with AtomicWriter(path) as f:
                f.write(render(name, record, limits, pred_key))
        except OSError as exc:
            raise AsrctlError(f"{path}: cannot write ({exc.strerror})") from None
        written.append(path)
    return written


def render(name: str, record: dict[str, Any], limits: CueLimits, pred_key: str = "pred_text") -> str:
    """The row's transcript as the text of a file of format `name`."""
    if name == "txt":
        return str(record.get(pred_key) or "") + "\n"
    if name == "json":
        return json.dumps(record, ensure_ascii=False, indent=2) + "\n"
    cues = record_cues(record, limits, pred_key)
    if name == "tsv":
        return "start\tend\ttext\n" + "".join(
            f"{round(c.start * 1000)}\t{round(c.end * 1000)}\t{' '.join(c.lines)}\n" for c in cues)
    import pysubs2  # only a subtitle run pays for it

    subtitles = pysubs2.SSAFile()
    for cue in cues:
        event = pysubs2.SSAEvent(start=round(cue.start * 1000), end=round(cue.end * 1000))
        event.plaintext = cue.text
        subtitles.append(event)
    return subtitles.to_string(name)


def record_cues(record: dict[str, Any], limits: CueLimits, pred_key: str = "pred_text") -> list[Cue]:
    """The row's subtitle cues, inside its audio (its duration, when it has one)."""
    words = timed_words(record, pred_key)
    if words is None:
        raise AsrctlError(f"{record.get('audio_filepath')}: the row has no pred_words, words or pred_segments, "
                          "which subtitles need")
    duration = record.get("duration")
    return make_cues(words, limits, float(duration) if duration is not None else None)


def output_stems(audio_paths: list[str], out_dir: Path) -> list[Path]:
    """One output stem per row, named after its audio file; a name taken before gets -2, -3... in row
    order (two files of the same name, or segments of one file), so no row's file replaces another's."""
    taken: set[str] = set()
    stems = []
    for audio in audio_paths:
        base = name = Path(audio).stem
        number = 1
        while name in taken:
            number += 1
            name = f"{base}-{number}"
        taken.add(name)
        stems.append(out_dir / name)
    return stems
