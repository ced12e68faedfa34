"""NeMo's decoding results, whatever shape this NeMo version gives them, as one Transcript per utterance.

Across versions, decoding returns a list of strings, a list of Hypothesis objects, a tuple of
(best hypotheses, all hypotheses), or lists nested one level deeper (one list per utterance
with n-best hypotheses); a Hypothesis carries its text in `.text` and, when asked for, its
timestamps in `.timestamp` as encoder frame offsets, or in seconds where NeMo has aligned them
itself (a transducer's last token, a TDT's most of all, may span frames past the audio: times are
kept within it). A multitask (Canary) model's text may hold its prompt's special tokens.
"""

from __future__ import annotations

import re
from typing import Any

from asrctl import Transcript

SPECIAL_TOKEN = re.compile(r"<\|[^|]*\|>|<pad>")  # Canary's <|en|>, <|nodiarize|>, ...


def transcripts(result: Any, durations: list[float], *, frame_seconds: float,
                timestamps: str | None = None) -> list[Transcript]:
    """One Transcript per utterance of a batch (`durations`: their lengths in seconds), with word or
    segment times if asked for."""
    return [_transcript(item, frame_seconds, timestamps, duration)
            for item, duration in zip(best(result, len(durations)), durations)]


def best(result: Any, count: int) -> list[Any]:
    """The best hypothesis (or string) of each utterance."""
    if isinstance(result, tuple):  # (best, all) in NeMo 1.x; `all` may be None
        result = result[0]
    if not isinstance(result, list) or len(result) != count:
        size = len(result) if hasattr(result, "__len__") else "?"
        raise ValueError(f"NeMo returned {type(result).__name__} of {size} results for {count} utterances")
    return [(item[0] if item else "") if isinstance(item, list) else item for item in result]


def _text(item: Any) -> str:
    text = item if isinstance(item, str) else getattr(item, "text", None)
    if isinstance(text, str):
        return " ".join(SPECIAL_TOKEN.sub(" ", text).split())
    raise ValueError(f"cannot read a transcript from NeMo's {type(item).__name__}")


def _transcript(item: Any, frame_seconds: float, timestamps: str | None, duration: float) -> Transcript:
    text = _text(item)
    stamps = getattr(item, "timestamp", None)
    if not timestamps or not isinstance(stamps, dict):
        return Transcript(text=text)
    key, field = ("word", "word") if timestamps == "word" else ("segment", "text")

    def seconds(span: dict, edge: str) -> float:
        time = span[edge] if edge in span else float(span[f"{edge}_offset"]) * frame_seconds
        return round(min(max(float(time), 0.0), duration), 3)

    spans = [{"start": seconds(span, "start"), "end": seconds(span, "end"), field: span[key].strip()}
             for span in stamps.get(key) or [] if span[key].strip()]
    return Transcript(text=text, **({"words": spans} if timestamps == "word" else {"segments": spans}))
