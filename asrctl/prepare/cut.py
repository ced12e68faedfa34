"""`manifest cut`: aligned recordings (`asrctl align`'s rows, with `words`) cut into utterance rows for
training, streaming line by line.

A recording longer than --max-duration is split in two at its best boundary between words, and each
part again until every part fits: a boundary that leaves both parts at least --min-duration long
first, then one that ends a sentence, then the longest pause. Each utterance keeps the source's
audio file and fields, with its `offset` and `duration` in that file (a little of the pauses
around it included), its words' text, and `align_score`, the lowest of its sentences' scores (each
the mean of its words'): below --min-score (a text that does not match the audio: a swapped
sentence, a misheard passage) it is dropped, or kept and marked `low_score` with --keep-low.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl.align.words import SENTENCE_END
from asrctl.atomic import AtomicWriter
from asrctl.data.paths import Rebaser
from asrctl.data.rows import LineError, ManifestReader, dumps

PAD = 0.15  # seconds of the pause on each side an utterance keeps, at most (and half the pause at most)
ALIGNMENT_FIELDS = ("words", "segments", "error", "offset", "duration")


@dataclass
class CutReport:
    rows: int = 0
    utterances: int = 0
    seconds: float = 0.0
    flagged: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> utterances (or rows)


def spans(words: list[dict[str, Any]], min_seconds: float, max_seconds: float) -> list[tuple[int, int]]:
    """The words [i, j) of each utterance, in order."""

    def seconds(i: int, j: int) -> float:
        return words[j - 1]["end"] - words[i]["start"]

    def split(i: int, j: int) -> list[tuple[int, int]]:
        if j - i < 2 or seconds(i, j) <= max_seconds:
            return [(i, j)]

        def merit(k: int) -> tuple[bool, bool, float]:
            return (seconds(i, k) >= min_seconds and seconds(k, j) >= min_seconds,
                    ends_sentence(words[k - 1]),
                    words[k]["start"] - words[k - 1]["end"])

        best = max(range(i + 1, j), key=merit)
        return split(i, best) + split(best, j)

    return split(0, len(words)) if words else []


def utterance(row: dict[str, Any], words: list[dict[str, Any]], i: int, j: int, text_key: str,
              max_seconds: float) -> dict[str, Any]:
    """The row of words [i, j): where it lies in the source's audio file, with a little of the pauses
    around it (never more than half of each, nor past --max-duration)."""
    start, end = words[i]["start"], words[j - 1]["end"]
    before = start - (words[i - 1]["end"] if i else 0.0)
    after = (words[j]["start"] if j < len(words) else row.get("duration", end + PAD)) - end
    room = max(max_seconds - (end - start), 0.0) / 2
    start -= min(PAD, max(before, 0.0) / 2, room)
    end += min(PAD, max(after, 0.0) / 2, room)
    kept = {key: value for key, value in row.items() if key not in ALIGNMENT_FIELDS and key != text_key}
    return {**kept, "offset": round((row.get("offset") or 0.0) + start, 3), "duration": round(end - start, 3),
            text_key: " ".join(str(w["word"]) for w in words[i:j]), "align_score": score(words[i:j])}


def score(words: list[dict[str, Any]]) -> float:
    """The lowest of the utterance's sentences' scores (each the mean of its words'): one sentence that is
    not in the audio sinks its utterance, however well the others match."""
    sentences: list[list[float]] = [[]]
    for word in words:
        sentences[-1].append(float(word.get("score", 0.0)))
        if ends_sentence(word):
            sentences.append([])
    return round(min(sum(s) / len(s) for s in sentences if s), 4)


def ends_sentence(word: dict[str, Any]) -> bool:
    return bool(SENTENCE_END.search(str(word["word"])))


def cut_manifest(path: Path, output: Path, *, min_duration: float, max_duration: float, min_score: float | None,
                 keep_low: bool, text_key: str, on_error: Callable[[LineError], None]) -> CutReport:
    report = CutReport()
    rebase = Rebaser(output)
    with AtomicWriter(output) as f:
        for row in ManifestReader(path, on_error=on_error):
            report.rows += 1
            words = row.record.get("words")
            if not isinstance(words, list) or not words:
                report.dropped["rows not aligned (no words: run asrctl align)"] += 1
                continue
            for i, j in spans(words, min_duration, max_duration):
                cut = utterance(row.record, words, i, j, text_key, max_duration)
                if cut["duration"] < min_duration:
                    report.dropped[f"shorter than {min_duration:g} s"] += 1
                    continue
                if cut["duration"] > max_duration:  # one word longer than the limit: no pause to cut at
                    report.dropped[f"longer than {max_duration:g} s with no pause to cut at"] += 1
                    continue
                if min_score is not None and cut["align_score"] < min_score:
                    if not keep_low:
                        report.dropped[f"align_score below {min_score:g}"] += 1
                        continue
                    cut["low_score"] = True
                    report.flagged += 1
                report.utterances += 1
                report.seconds += cut["duration"]
                f.write(dumps(rebase(cut, row.base_dir)) + "\n")
    return report
