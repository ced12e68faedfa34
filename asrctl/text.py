"""Text normalisers applied to references and hypotheses before scoring.

  whisper-en  Whisper's English normaliser (spelling, numbers, contractions, "mr." -> "mister")
  basic       Whisper's language-neutral one: lower case, no punctuation or symbols
  none        the text as it is
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from asrctl.registry import UnknownNameError, unknown_name_message

Normalizer = Callable[[str], str]
NAMES = ("whisper-en", "basic", "none")


def _squeeze(normalize: Normalizer) -> Normalizer:
    # The Whisper normalisers leave runs and ends of spaces; words are what gets scored.
    return lambda text: " ".join(normalize(text).split())


@cache
def get_normalizer(name: str) -> Normalizer:
    """The normaliser called `name`; an unknown name raises with the known ones listed."""
    if name == "whisper-en":
        from whisper_normalizer.english import EnglishTextNormalizer

        return _squeeze(EnglishTextNormalizer())
    if name == "basic":
        from whisper_normalizer.basic import BasicTextNormalizer

        return _squeeze(BasicTextNormalizer())
    if name == "none":
        return lambda text: text
    raise UnknownNameError(unknown_name_message("normalizer", name, NAMES))
