"""Text normalisers applied to references and hypotheses before scoring.

  whisper-en  Whisper's English normaliser (spelling, numbers, contractions, "mr." -> "mister")
  basic       Whisper's language-neutral one: lower case, no punctuation or symbols
  none        the text as it is
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from asrctl.registry import UnknownNameError, unknown_name_message

Normalizer = Callable[[str], str]
NAMES = ("whisper-en", "basic", "none")

# Plain text: lower-case ASCII letters split by spaces and punctuation that both Whisper
# normalisers turn into spaces. No digits, symbols, apostrophes or brackets.
_PLAIN = re.compile(r"[a-z\s,.?!;:\-]*")
_SEPARATORS = re.compile(r"[\s,.?!;:\-]+")


class FastNormalizer:
    """Whisper's normalisers are pure Python and take ~0.4 ms a sentence (a minute per 100k
    pairs). Plain text whose every word the normaliser leaves unchanged on its own, and that
    has none of the `context_words` that rules across words start from (number words: "one one"
    is "11"), comes out as those words joined by single spaces, so it skips the slow path.
    Everything else goes through the real normaliser. tests/test_text.py checks the equivalence.
    """

    def __init__(self, normalize: Normalizer, context_words: frozenset[str] = frozenset()) -> None:
        self.normalize = normalize
        self._unchanged: dict[str, bool] = dict.fromkeys(context_words, False)

    def __call__(self, text: str) -> str:
        lower = text.lower()
        if _PLAIN.fullmatch(lower):
            words = [w for w in _SEPARATORS.split(lower) if w]
            if all(self._is_unchanged(w) for w in words):
                return " ".join(words)
        return " ".join(self.normalize(text).split())

    def _is_unchanged(self, word: str) -> bool:
        known = self._unchanged.get(word)
        if known is None:
            known = self._unchanged[word] = self.normalize(word).strip() == word
        return known


@cache
def get_normalizer(name: str) -> Normalizer:
    """The normaliser called `name`; an unknown name raises with the known ones listed."""
    if name == "whisper-en":
        from whisper_normalizer.english import EnglishNumberNormalizer, EnglishTextNormalizer

        numbers = EnglishNumberNormalizer()
        return FastNormalizer(EnglishTextNormalizer(), frozenset(numbers.words) | frozenset(numbers.literal_words))
    if name == "basic":
        from whisper_normalizer.basic import BasicTextNormalizer

        return FastNormalizer(BasicTextNormalizer())
    if name == "none":
        return lambda text: text
    raise UnknownNameError(unknown_name_message("normalizer", name, NAMES))


def _normalize_chunk(args: tuple[str, list[str]]) -> list[str]:
    name, texts = args
    return [get_normalizer(name)(t) for t in texts]


def normalize_many(name: str, texts: list[str], *, parallel_above: int = 20_000) -> list[str]:
    """Normalise many texts: each distinct text once, across all cores when there are many."""
    import os

    distinct = list(dict.fromkeys(texts))
    workers = min(os.cpu_count() or 1, 8)
    if name == "none" or len(distinct) < parallel_above or workers == 1:
        done = _normalize_chunk((name, distinct))
    else:
        from concurrent.futures import ProcessPoolExecutor

        size = -(-len(distinct) // (workers * 4))
        chunks = [(name, distinct[i:i + size]) for i in range(0, len(distinct), size)]
        with ProcessPoolExecutor(workers) as pool:
            done = [t for part in pool.map(_normalize_chunk, chunks) for t in part]
    mapping = dict(zip(distinct, done))
    return [mapping[t] for t in texts]
