"""Text normalisers."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asrctl.registry import UnknownNameError
from asrctl.score.normalizers import get_normalizer


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Mr. Smith, didn't you say TEN?", "mister smith did not you say 10"),
        ("He paid ten dollars.", "he paid $10"),
        ("colour   Centre!", "color center"),
        # rules across words, with plain words between: the fast path must leave them to the normaliser
        ("Two and a half million cats sat on one mat, one of them seven", "2500000 cats sat on one mat one of them 7"),
        ("the twenty first of may, in nineteen ninety nine", "the 21st of may in 1999"),
        ("one cat and a half", "one cat and a half"),
    ],
)
def test_whisper_english(raw, expected):
    assert get_normalizer("whisper-en")(raw) == expected


def test_basic_keeps_letters_of_any_language():
    assert get_normalizer("basic")("Ça VA, Straße?  日本!") == "ça va straße 日本"


def test_none_is_identity():
    assert get_normalizer("none")(" A, b ") == " A, b "


def test_unknown_normalizer_suggests():
    with pytest.raises(UnknownNameError, match="did you mean 'whisper-en'"):
        get_normalizer("whisper_en")


@given(st.text(max_size=60), st.sampled_from(["whisper-en", "basic"]))
def test_normalized_text_is_single_spaced(text, name):
    # Whisper's English normaliser is not idempotent ("O1" -> "0 one" -> "one"), so only spacing is a property.
    once = get_normalizer(name)(text)
    assert "  " not in once and once == once.strip() and "\n" not in once


@given(st.text(max_size=60))
def test_basic_is_idempotent(text):
    normalize = get_normalizer("basic")
    assert normalize(normalize(text)) == normalize(text)


# Words that make the normalisers look across words: numbers, currencies, fillers, titles,
# contractions, British spellings; plus plain words and the punctuation the fast path accepts.
VOCABULARY = (
    "one two ten hundred thousand first second oh zero double point and a dollars dollar cents percent "
    "pounds minus plus half dozen twice mr mrs dr st uh um hmm colour centre realise gonna cause "
    "o per positive negative triple euros thirty sixth eleventh millions and and a a half half "
    "the cat sat on mat of in it is was been got done gone he she we they bank river well known"
).split()
SEPARATORS = [" ", "  ", ", ", ". ", "? ", "! ", "-", "; ", ": ", "\n", " 's ", "'s ", "'d ", " $", "% ", " 5 ",
              "..", "... ", " . ", " ... ", " - "]


@settings(max_examples=1500)
@given(st.lists(st.tuples(st.sampled_from(VOCABULARY), st.sampled_from(SEPARATORS)), max_size=12),
       st.sampled_from(["whisper-en", "basic"]), st.booleans())
def test_fast_path_equals_the_reference_normaliser(pairs, name, title_case):
    from whisper_normalizer.basic import BasicTextNormalizer
    from whisper_normalizer.english import EnglishTextNormalizer

    text = "".join(w + s for w, s in pairs)
    text = text.title() if title_case else text
    reference = (EnglishTextNormalizer() if name == "whisper-en" else BasicTextNormalizer())(text)
    assert get_normalizer(name)(text) == " ".join(reference.split())


DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["whisper-en", "basic"])
def test_fast_path_equals_the_reference_normaliser_on_real_text(name):
    """Every normaliser gives what the one it names gives, on real text with its punctuation: the
    fixtures' transcripts and 5,822 sentences from Debian's fortunes package (ellipses, numbers,
    currencies, abbreviations, quotes, all kept as written)."""
    from whisper_normalizer.basic import BasicTextNormalizer
    from whisper_normalizer.english import EnglishTextNormalizer

    reference = EnglishTextNormalizer() if name == "whisper-en" else BasicTextNormalizer()
    manifest = (DATA / "speech" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in manifest if line.strip()]
    texts += (DATA / "text" / "fortunes.txt").read_text(encoding="utf-8").splitlines()
    assert len(texts) > 5000 and sum(".." in t for t in texts) > 1000  # ellipses, where a fast path went wrong
    normalize = get_normalizer(name)
    differ = [(t, normalize(t), " ".join(reference(t).split())) for t in texts
              if normalize(t) != " ".join(reference(t).split())]
    assert not differ, f"{len(differ)} texts differ, e.g. {differ[:3]}"
