"""From a known text to the tokens an aligner places, and from the tokens' frames back to the text's
own words and sentences: the words keep their original spelling, case and punctuation whatever the
model's vocabulary made of them for matching.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from asrctl.specs import SAMPLE_RATE

HOP = 0.01  # seconds per loudness frame
QUIET = 0.1  # a frame quieter than this share of the recording's loud frames (its 95th percentile) is silence
MIN_PAUSE = 0.05  # seconds of silence that make a pause (a stop consonant's closure is shorter)
SNAP = 0.3  # seconds from a word boundary to a pause it moves to
SENTENCE_END = re.compile(r"[.!?…。！？]+[\"'”’)\]]*$")
ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


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


def tightened(words: list[dict], audio: np.ndarray) -> list[dict]:
    """Word times moved to the audio's pauses and sound, as stable-ts tightens Whisper's times with the
    audio's loudness: an aligner whose times tile the audio (Whisper's attention) gives each word the
    pause before it, and a CTC model's token spikes drift from the sounds they stand for, so
    boundaries land near, not in, the pauses between words. Each boundary
    within SNAP seconds of a pause moves to its edges (the word before ends where the pause starts,
    the next starts where it ends); then each word is trimmed to its loud frames."""
    hop = round(HOP * SAMPLE_RATE)
    count = len(audio) // hop
    if not count or not words:
        return words
    loudness = np.sqrt(np.mean(np.square(audio[: count * hop].reshape(count, hop), dtype=np.float64), axis=1))
    loud = loudness > QUIET * np.percentile(loudness, 95)
    edges = np.flatnonzero(np.diff(np.concatenate([[1], loud.astype(np.int8), [1]])))  # silence runs: [start, end)
    pauses = [(a * HOP, b * HOP) for a, b in zip(edges[::2], edges[1::2]) if (b - a) * HOP >= MIN_PAUSE]
    tight = [dict(word) for word in words]

    def distance(pause: tuple[float, float], k: int) -> float:  # from the boundary before word k
        boundary = (tight[k - 1]["end"] + tight[k]["start"]) / 2
        return max(pause[0] - boundary, boundary - pause[1], 0.0)

    # each pause goes to the one boundary nearest to it, if near enough
    claims: dict[tuple[float, float], int] = {}
    for k in range(1, len(tight)):
        near = min(pauses, key=lambda p: distance(p, k), default=None)
        if near is not None and distance(near, k) <= SNAP and \
                (near not in claims or distance(near, k) < distance(near, claims[near])):
            claims[near] = k
    for (quiet_from, quiet_to), k in claims.items():
        before, after = tight[k - 1], tight[k]
        if quiet_from > before["start"]:
            before["end"] = round(quiet_from, 3)
        if quiet_to < after["end"]:
            after["start"] = round(quiet_to, 3)
    previous = 0.0
    for word in tight:
        first, last = int(word["start"] / HOP), min(math.ceil(word["end"] / HOP), count)
        heard = np.flatnonzero(loud[first:last])
        if heard.size:
            word["start"] = round(max(word["start"], (first + heard[0]) * HOP), 3)
            word["end"] = round(min(word["end"], (first + heard[-1] + 1) * HOP), 3)
        word["start"] = max(word["start"], previous)  # in order, however the pauses were claimed
        word["end"] = max(word["end"], word["start"])
        previous = word["start"]
    for before, after in zip(tight, tight[1:]):  # and apart: a word ends where the next begins at the latest
        before["end"] = max(before["start"], min(before["end"], after["start"]))
    return tight


def spelled(word: str) -> str:
    """`word` with its digits written as English words, for a vocabulary of letters to match: a year as
    it is read ("1984," -> "nineteen eighty four ,"), an ordinal ("3rd" -> "third"), any other number
    as a cardinal ("1,250" -> "one thousand two hundred fifty"). The output keeps the word as
    written; this is for matching only."""
    # with thousands separators: a cardinal, never a year
    word = re.sub(r"\d{1,3}(?:[,.]\d{3})+\b", lambda m: f" {_cardinal(int(re.sub('[,.]', '', m.group())))} ", word)

    def said(match: re.Match[str]) -> str:
        number = _number(match.group(1))
        return f" {_ordinal(number) if match.group(2) else number} "

    return " ".join(re.sub(r"(\d+)(st|nd|rd|th)?\b", said, word).split())


def _ordinal(number: str) -> str:
    *first, last = number.split()
    irregular = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                 "nine": "ninth", "twelve": "twelfth"}
    last = irregular.get(last) or (last[:-1] + "ieth" if last.endswith("y") else last + "th")
    return " ".join([*first, last])


def _number(digits: str) -> str:
    value = int(digits)
    if len(digits) == 4 and 1100 <= value <= 2099 and value % 100 and not 2000 <= value < 2010:
        return f"{_cardinal(value // 100)} {'oh ' if value % 100 < 10 else ''}{_cardinal(value % 100)}"
    return _cardinal(value)


def _cardinal(value: int) -> str:
    if value < 20:
        return ONES[value]
    if value < 100:
        return TENS[value // 10] + ("" if value % 10 == 0 else " " + ONES[value % 10])
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if value >= size:
            rest = value % size
            return f"{_cardinal(value // size)} {name}" + (f" {_cardinal(rest)}" if rest else "")
    raise AssertionError(value)
