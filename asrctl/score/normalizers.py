"""Text normalisers applied to references and hypotheses before scoring.

  whisper-en  Whisper's English normaliser (spelling, numbers, contractions, "mr." -> "mister")
  basic       Whisper's language-neutral one: lower case, no punctuation or symbols
  none        the text as it is
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, lru_cache

from asrctl.registry import UnknownNameError, unknown_name_message

Normalizer = Callable[[str], str]
NAMES = ("whisper-en", "basic", "none")

# Plain text: lower-case ASCII letters split by spaces and punctuation that both Whisper
# normalisers turn into spaces. No digits, symbols, apostrophes or brackets.
_PLAIN = re.compile(r"[a-z\s,.?!;:\-]*")
_SEPARATORS = re.compile(r"[\s,.?!;:\-]+")


class FastNormalizer:
    """Whisper's normalisers are pure Python and take ~0.4 ms a sentence (a minute per 100k
    pairs). In plain text, a word the normaliser leaves unchanged on its own, and that is none of
    the `context_words` that rules across words start from (number words: "one one" is "11"),
    comes out as itself: such words pass straight through, and only the runs of other words
    between them go through the real normaliser (each distinct run once). Text that is not plain
    (digits, symbols, apostrophes, brackets), or that matches `whole_text`, goes through it
    whole. tests/test_text.py checks the equivalence.
    """

    def __init__(self, normalize: Normalizer, context_words: frozenset[str] = frozenset(),
                 whole_text: re.Pattern[str] | None = None) -> None:
        self.normalize = normalize
        self.whole_text = whole_text  # a rule that reads beyond its run of words: such text goes whole
        self._unchanged: dict[str, bool] = dict.fromkeys(context_words, False)
        self._run = lru_cache(maxsize=100_000)(self._whole)  # runs repeat across a corpus ("twenty five")

    def __call__(self, text: str) -> str:
        lower = text.lower()
        if not _PLAIN.fullmatch(lower) or (self.whole_text and self.whole_text.search(lower)):
            return self._whole(text)
        out: list[str] = []
        run: list[str] = []
        for token in lower.split():
            words = [w for w in _SEPARATORS.split(token) if w]
            if words and all(self._is_unchanged(w) for w in words):  # punctuation alone may join a run
                if run:
                    out.append(self._run(" ".join(run)))
                    run = []
                out.extend(words)
            else:
                run.append(token)
        if run:
            out.append(self._run(" ".join(run)))
        return " ".join(part for part in out if part)

    def _whole(self, text: str) -> str:
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
        # "<number> and a half" is rewritten to "<number> point five" by looking at the words before it;
        # periods in a row (an ellipsis) can leave a "." that the normaliser keeps ("user ..." -> "user .").
        return FastNormalizer(EnglishTextNormalizer(), frozenset(numbers.words) | frozenset(numbers.literal_words),
                              whole_text=re.compile(r"\band\W+a\W+half\b|\.\s*\."))
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
