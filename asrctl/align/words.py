"""From a known text to the tokens an aligner places, and from the tokens' frames back to the text's
own words and sentences: the words keep their original spelling, case and punctuation whatever the
model's vocabulary made of them for matching.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SENTENCE_END = re.compile(r"[.!?…。！？]+[\"'”’)\]]*$")


@dataclass
class Targets:
    """The tokens of a text's words in order, each token's word (-1: a delimiter between words), and
    the words themselves."""

    tokens: list[int]
    owners: list[int]
    words: list[str]


def targets(text: str, encode: Callable[[str], list[int]], delimiter: int | None = None) -> Targets:
    """`encode(word)` gives a word's tokens (none for a word the vocabulary cannot spell: it is placed
    between its neighbours, score 0); `delimiter`, a token between words (wav2vec2's "|")."""
    words = text.split()
    tokens: list[int] = []
    owners: list[int] = []
    for i, word in enumerate(words):
        ids = encode(word)
        if ids and delimiter is not None and tokens:
            tokens.append(delimiter)
            owners.append(-1)
        tokens += ids
        owners += [i] * len(ids)
    return Targets(tokens, owners, words)


def timed_words(found: Targets, spans: Sequence[tuple[int, int]], scores: Sequence[float],
                seconds_per_frame: float) -> list[dict]:
    """Each word with its start and end (seconds) and score (the mean probability of its tokens on the
    path); a word without tokens starts and ends where the word before it ended, score 0."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    logs: dict[int, list[float]] = {}
    for owner, (start, end), score in zip(found.owners, spans, scores):
        if owner >= 0:
            first.setdefault(owner, start)
            last[owner] = end
            logs.setdefault(owner, []).append(score)
    words, clock = [], 0.0
    for i, word in enumerate(found.words):
        if i in first:
            start, end = first[i] * seconds_per_frame, last[i] * seconds_per_frame
            score = math.exp(sum(logs[i]) / len(logs[i]))
            clock = end
        else:
            start = end = clock
            score = 0.0
        words.append({"word": word, "start": round(start, 3), "end": round(end, 3), "score": round(score, 4)})
    return words


def sentences(words: list[dict]) -> list[dict]:
    """The words grouped into sentences (ending at . ! ? and the like), each with its text, the start
    of its first word, the end of its last and the mean of their scores."""
    segments, current = [], []
    for i, word in enumerate(words):
        current.append(word)
        if SENTENCE_END.search(word["word"]) or i == len(words) - 1:
            segments.append({"text": " ".join(w["word"] for w in current), "start": current[0]["start"],
                             "end": current[-1]["end"],
                             "score": round(sum(w["score"] for w in current) / len(current), 4)})
            current = []
    return segments
