"""Subtitle cues from a transcript's times: words grouped into cues no wider, taller or longer than
asked, each cue inside the audio and after the one before.

Word times are the ground truth when the backend gives them. With segment times only, a segment
that breaks a limit is cut between words, each word's time spread over its segment by its share
of the characters (the best guess without word times).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

# Subtitle conventions (Netflix's and the BBC's style guides): 42 characters a line, two lines, and
# no cue on screen longer than 7 s.
MAX_LINE_WIDTH = 42
MAX_LINE_COUNT = 2
MAX_CUE_SECONDS = 7.0
# A pause this long between words starts a new cue even when the words would fit.
PAUSE_SECONDS = 1.0
_SENTENCE_END = (".", "?", "!", "。", "？", "！")


@dataclass(frozen=True)
class CueLimits:
    line_width: int = MAX_LINE_WIDTH
    line_count: int = MAX_LINE_COUNT
    cue_seconds: float = MAX_CUE_SECONDS


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class _Word:
    text: str
    start: float
    end: float


def timed_words(record: dict[str, Any], pred_key: str = "pred_text") -> list[_Word] | None:
    """The row's words with times: its pred_words (`asrctl infer`) or words (`asrctl align`), else its
    pred_segments' words spread over each segment; None when the row has none of them."""
    words = record.get("pred_words") or record.get("words")
    if words:
        return [_Word(str(w["word"]).strip(), float(w["start"]), float(w["end"]))
                for w in words if str(w["word"]).strip()]
    if record.get("pred_segments"):
        return [word for segment in record["pred_segments"] for word in _spread(segment)]
    return None


def _spread(segment: dict[str, Any]) -> list[_Word]:
    words = str(segment["text"]).split()
    start, end = float(segment["start"]), float(segment["end"])
    total = sum(len(w) for w in words) or 1
    spread, at = [], start
    for word in words:
        length = (end - start) * len(word) / total
        spread.append(_Word(word, at, at + length))
        at += length
    return spread


def make_cues(words: list[_Word], limits: CueLimits, audio_end: float | None = None) -> list[Cue]:
    """Cues over `words` in order: a new cue where the next word would make the cue wider or taller
    than the limits or longer than limits.cue_seconds, after a sentence's end, and at a pause."""
    groups: list[list[_Word]] = []
    for word in words:
        current = groups[-1] if groups else None
        if current is None or _starts_new_cue(current, word, limits):
            groups.append([word])
        else:
            current.append(word)
    cues: list[Cue] = []
    for group in groups:
        start = max(group[0].start, cues[-1].end if cues else 0.0)
        end = min(max(group[-1].end, start), start + limits.cue_seconds)
        if audio_end is not None:
            start, end = min(start, audio_end), min(end, audio_end)
        cues.append(Cue(start, end, tuple(_wrap(" ".join(w.text for w in group), limits.line_width))))
    return cues


def _starts_new_cue(current: list[_Word], word: _Word, limits: CueLimits) -> bool:
    text = " ".join(w.text for w in [*current, word])
    return (len(_wrap(text, limits.line_width)) > limits.line_count
            or word.end - current[0].start > limits.cue_seconds
            or current[-1].text.endswith(_SENTENCE_END)
            or word.start - current[-1].end >= PAUSE_SECONDS)


def _wrap(text: str, width: int) -> list[str]:
    # A word wider than a line stays whole on a line of its own: cut, it would not read.
    return textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False) or [""]
