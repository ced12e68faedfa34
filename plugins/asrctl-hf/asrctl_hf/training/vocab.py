"""CTC targets: transcripts fitted to a model's alphabet, or a new character vocabulary built from them.

A new vocabulary is built as transformers' run_speech_recognition_ctc.py example builds one: the
characters of the lower-cased training text, `|` for the space between words, then [UNK] and [PAD]
(CTC's blank). Punctuation and symbols are left out, apostrophes kept ("don't" is one word).
"""

from __future__ import annotations

import json
import tempfile
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

WORD_DELIMITER = "|"
UNK, PAD = "[UNK]", "[PAD]"


def _spoken(char: str) -> bool:
    """Whether a lower-cased character belongs in a new vocabulary: letters, digits, marks, apostrophes."""
    return char == "'" or not unicodedata.category(char).startswith(("P", "S", "Z", "C"))


def build_vocabulary(texts: Iterable[str]) -> dict[str, int]:
    chars = sorted({c for text in texts for c in text.lower() if _spoken(c)})
    return {c: i for i, c in enumerate([WORD_DELIMITER, *chars, UNK, PAD])}


def character_tokenizer(vocabulary: dict[str, int]) -> Any:
    """A Wav2Vec2CTCTokenizer over `vocabulary` (saved with the model like any tokenizer)."""
    from transformers import Wav2Vec2CTCTokenizer

    with tempfile.TemporaryDirectory() as folder:  # the tokenizer reads its vocabulary from a file, once
        vocab_file = Path(folder) / "vocab.json"
        vocab_file.write_text(json.dumps(vocabulary, ensure_ascii=False))
        return Wav2Vec2CTCTokenizer(str(vocab_file), unk_token=UNK, pad_token=PAD, word_delimiter_token=WORD_DELIMITER)


class Alphabet:
    """The characters a CTC tokenizer can spell, and the case its letters are in.

    Text is fitted to it before tokenising: upper- or lower-cased to match, characters it cannot
    spell dropped (a character vocabulary without punctuation learns nothing from commas but [UNK]).
    """

    def __init__(self, tokenizer: Any) -> None:
        special = set(tokenizer.all_special_tokens)
        tokens = [t for t in tokenizer.get_vocab() if t not in special]
        self.chars = {c for token in tokens for c in token}
        letters = {c for c in self.chars if c.isalpha() and c.lower() != c.upper()}
        self.case = "lower" if letters and all(c.islower() for c in letters) else \
            "upper" if letters and all(c.isupper() for c in letters) else None

    def fit(self, text: str) -> str:
        if self.case:
            text = text.lower() if self.case == "lower" else text.upper()
        # An apostrophe it cannot spell joins its word ("don't" -> "dont"); other marks split words.
        kept = "".join(c if c in self.chars else "" if c in "'\u2019" else " " for c in text)
        return " ".join(kept.split())
