"""NeMo's decoding results, whatever shape this NeMo version gives them, as one text per utterance.

Across versions, decoding returns a list of strings, a list of Hypothesis objects, a tuple of
(best hypotheses, all hypotheses), or lists nested one level deeper (one list per utterance
with n-best hypotheses); a Hypothesis carries its text in `.text`.
"""

from __future__ import annotations

from typing import Any


def texts(result: Any, count: int) -> list[str]:
    """One transcript per utterance of a batch of `count`."""
    if isinstance(result, tuple):  # (best, all) in NeMo 1.x; `all` may be None
        result = result[0]
    if not isinstance(result, list) or len(result) != count:
        raise ValueError(f"NeMo returned {type(result).__name__} of {len(result) if hasattr(result, '__len__') else '?'}"
                         f" results for {count} utterances")
    return [_text(item) for item in result]


def _text(item: Any) -> str:
    if isinstance(item, list):  # n-best for one utterance: the first is the best
        return _text(item[0]) if item else ""
    if isinstance(item, str):
        return item
    text = getattr(item, "text", None)
    if isinstance(text, str):
        return text
    if isinstance(text, (list, tuple)) and all(isinstance(t, str) for t in text):  # per-token pieces
        return "".join(text)
    raise ValueError(f"cannot read a transcript from NeMo's {type(item).__name__}")
