"""The rules data people write by hand for `manifest filter`, each a named test (asrctl.prepare.filter)
or a substitution: speaking rates, regular expressions, an alphabet, and the checks that flag
Whisper's hallucinations.

The hallucination checks are NeMo Curator's four, with its thresholds as defaults: few distinct
words (a repetition loop), a word far too long (a run-together loop), a transcript that is only a
phrase Whisper says over silence, and more characters per second than anyone speaks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asrctl.prepare.filter import Test

LATIN = "abcdefghijklmnopqrstuvwxyz"
# Each language's letters (lower case; upper case is allowed too). Digits are outside every one of
# them: a transcript with "1984" in it is not yet normalised for training.
ALPHABETS = {
    "en": LATIN,
    "de": LATIN + "äöüß",
    "fr": LATIN + "àâæçéèêëîïôœùûüÿ",
    "es": LATIN + "áéíñóúü",
    "it": LATIN + "àèéìíîòóùú",
    "pt": LATIN + "áâãàçéêíóôõú",
    "nl": LATIN + "áéëèïóöü",
    "pl": LATIN + "ąćęłńóśźż",
    "ru": "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    "uk": "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя",
}
# What any alphabet takes besides its letters: spaces, apostrophes, hyphens and sentence punctuation.
PUNCTUATION = " \t'’-.,?!;:\"«»“”„"
# Whole transcripts Whisper produces over silence and music (compared without case and . ? ! ,).
PHRASES = ("thank you", "thank you very much", "thanks for watching", "thank you for watching",
           "thank you so much for watching", "please subscribe", "subscribe to my channel", "bye", "you",
           "subtitles by the amara.org community", "ご視聴ありがとうございました", "字幕由Amara.org社区提供")


@dataclass(frozen=True)
class Substitution:
    """--sub-regex PATTERN=REPLACEMENT on one field (re.sub; \\1 and \\g<name> in REPLACEMENT)."""

    pattern: re.Pattern[str]
    replacement: str

    def __str__(self) -> str:
        return f"--sub-regex {self.pattern.pattern}={self.replacement}"

    def __call__(self, text: str) -> str:
        return self.pattern.sub(self.replacement, text)


def parse_substitution(text: str) -> Substitution:
    """`PATTERN=REPLACEMENT`, split at the last `=` (a pattern may hold one: `(?=x)`); ValueError otherwise."""
    pattern, equals, replacement = text.rpartition("=")
    if not equals or not pattern:
        raise ValueError(f"expected PATTERN=REPLACEMENT, got {text!r}")
    return Substitution(parse_regex(pattern), replacement)


def parse_regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None


def text_of(record: dict[str, Any], field: str) -> str:
    value = record.get(field)
    return value if isinstance(value, str) else ""


def rate_tests(field: str, *, min_chars: float | None = None, max_chars: float | None = None,
               min_words: float | None = None, max_words: float | None = None) -> list[Test]:
    """Characters (spaces included, as NeMo's data processor counts them) or words per second of
    audio; a row without a duration fails them."""
    tests = []
    for unit, count in (("characters", len), ("words", lambda text: len(text.split()))):
        low, high = (min_chars, max_chars) if unit == "characters" else (min_words, max_words)
        if low is not None:
            tests.append(Test(f"{unit} per second < {low:g} (or no duration)",
                              _rate(field, count, lambda rate, low=low: rate >= low)))
        if high is not None:
            tests.append(Test(f"{unit} per second > {high:g} (or no duration)",
                              _rate(field, count, lambda rate, high=high: rate <= high)))
    return tests


def _rate(field: str, count: Callable[[str], int], holds: Callable[[float], bool]) -> Callable[[dict], bool]:
    def keep(record: dict[str, Any]) -> bool:
        duration = record.get("duration")
        if not isinstance(duration, (int, float)) or duration <= 0:
            return False
        return holds(count(text_of(record, field)) / duration)

    return keep


def regex_tests(field: str, patterns: list[re.Pattern[str]]) -> list[Test]:
    """--drop-regex: rows whose field matches any of `patterns` (re.search) go."""
    return [Test(f"{field} matches {p.pattern!r}", lambda r, p=p: not p.search(text_of(r, field))) for p in patterns]


def alphabet_test(field: str, alphabet: str) -> Test:
    """--drop-non-alphabet: rows with a character outside a language's letters (ALPHABETS, either case,
    with PUNCTUATION), or outside the characters given (with spaces), go."""
    letters = ALPHABETS.get(alphabet.lower())
    allowed = frozenset(letters + letters.upper() + PUNCTUATION) if letters else frozenset(alphabet + " \t")
    name = f"the {alphabet} alphabet" if letters else f"the characters {alphabet!r}"
    return Test(f"{field} has characters outside {name}", lambda r: set(text_of(r, field)) <= allowed)


@dataclass(frozen=True)
class Hallucination:
    """The checks' thresholds (NeMo Curator's defaults)."""

    unique_words: float = 0.4  # a share of distinct words at or below this: a repetition loop
    long_word: int = 25  # a word of this many characters ...
    long_word_ratio: float = 3.0  # ... or longer than the next-longest by this many times its length (3+ words)
    char_rate: float = 40.0  # characters per second above this
    phrases: tuple[str, ...] = PHRASES

    def tests(self, field: str) -> list[Test]:
        known = frozenset(_bare(p) for p in self.phrases)
        return [
            Test(f"hallucination: distinct words <= {self.unique_words:g} of the words",
                 lambda r: not _repeating(text_of(r, field).lower().split(), self.unique_words)),
            Test(f"hallucination: a word of {self.long_word}+ characters or {self.long_word_ratio:g}x longer than "
                 "the next", lambda r: not _long_word(text_of(r, field).split(), self.long_word, self.long_word_ratio)),
            Test("hallucination: only a phrase said over silence",
                 lambda r: _bare(text_of(r, field)) not in known or not text_of(r, field).strip()),
            Test(f"hallucination: > {self.char_rate:g} characters per second",
                 lambda r: not _faster(r, field, self.char_rate)),
        ]


def _faster(record: dict[str, Any], field: str, rate: float) -> bool:
    """More characters per second than `rate`; a row without a duration is not evidence of it."""
    duration = record.get("duration")
    return isinstance(duration, (int, float)) and duration > 0 and len(text_of(record, field)) / duration > rate


def _bare(text: str) -> str:
    return " ".join(re.sub(r"[.?!,]", "", text).lower().split())


def _repeating(words: list[str], share: float) -> bool:
    return bool(words) and len(set(words)) / len(words) <= share


def _long_word(words: list[str], length: int, ratio: float) -> bool:
    lengths = sorted(len(word) for word in words)
    if not lengths:
        return False
    if lengths[-1] >= length:
        return True
    # Among three words or more: "I understand" is [1, 10] and no loop.
    return len(lengths) > 2 and (lengths[-1] - lengths[-2]) / lengths[-2] >= ratio


def phrases_file(path: Path) -> tuple[str, ...]:
    """--hallucination-phrases: one phrase per line (blank lines and # comments skipped)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
