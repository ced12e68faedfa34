"""CTC forced alignment (asrctl.align.ctc): the Viterbi path of known tokens through frame
log-probabilities, against a plain whole-table Viterbi, in stretches and in batches."""

import itertools
import math

import numpy as np
import pytest
import torch

from asrctl.align import ctc
from asrctl.align.words import spelled


def reference(log_probs: np.ndarray, tokens: list[int], blank: int) -> tuple[float, list[int]]:
    """The best path's score and states by brute force over every CTC path (small cases only)."""
    states = [blank] + [x for token in tokens for x in (token, blank)]
    best, best_path = -math.inf, None
    for path in itertools.product(range(len(states)), repeat=len(log_probs)):
        if path[0] > 1 or path[-1] < len(states) - 2:
            continue
        ok = all(b - a in (0, 1) or (b - a == 2 and states[b] != blank and states[b] != states[a])
                 for a, b in zip(path, path[1:]))
        if ok:
            score = sum(log_probs[t, states[s]] for t, s in enumerate(path))
            if score > best:
                best, best_path = score, list(path)
    return best, best_path


def spans_of(path: list[int], count: int) -> list[tuple[int, int]]:
    frames = {k: [t for t, s in enumerate(path) if s == 2 * k + 1] for k in range(count)}
    return [(f[0], f[-1] + 1) for f in frames.values()]


@pytest.mark.parametrize("seed", range(6))
def test_the_path_is_the_best_of_all_paths(seed):
    rng = np.random.default_rng(seed)
    tokens = [[1, 2], [2, 2], [3], [1, 3, 1]][seed % 4]
    log_probs = np.log(rng.dirichlet(np.ones(4), size=7)).astype(np.float32)
    [found] = ctc.align(torch.from_numpy(log_probs)[None], [7], [tokens], blank=0)
    _, path = reference(log_probs, tokens, blank=0)
    assert found.spans == spans_of(path, len(tokens))


def test_stretches_and_batches_give_the_whole_tables_path(monkeypatch):
    rng = np.random.default_rng(7)
    lengths, targets = [40, 23, 31], [[1, 2, 3, 3, 1], [2, 1], [3, 3, 2, 1, 2, 3]]
    log_probs = torch.from_numpy(np.log(rng.dirichlet(np.ones(4), size=(3, 40))).astype(np.float32))
    alone = [ctc.align(log_probs[b : b + 1, : lengths[b]], [lengths[b]], [targets[b]], 0)[0] for b in range(3)]
    monkeypatch.setattr(ctc, "CHECKPOINT", 4)  # many stretches, edges inside every item
    together = ctc.align(log_probs, lengths, targets, 0)
    assert [p.spans for p in together] == [p.spans for p in alone]
    assert [s for p in together for s in p.scores] == pytest.approx([s for p in alone for s in p.scores])


def test_frames_too_few_for_the_tokens_give_none():
    log_probs = torch.log_softmax(torch.zeros(1, 3, 4), dim=-1)
    assert ctc.align(log_probs, [3], [[1, 1, 1]], 0) == [None]  # a repeat needs a blank between: 5 frames
    [path] = ctc.align(log_probs, [3], [[1, 2, 3]], 0)
    assert path.spans == [(0, 1), (1, 2), (2, 3)]


def test_a_clear_path_is_found_with_its_scores():
    frames = [0, 0, 1, 1, 0, 2, 2, 2, 0, 0, 1, 0]  # blank 0; tokens 1, 2, 1
    log_probs = torch.full((1, len(frames), 3), math.log(0.05))
    for t, token in enumerate(frames):
        log_probs[0, t, token] = math.log(0.9)
    [path] = ctc.align(log_probs, [len(frames)], [[1, 2, 1]], 0)
    assert path.spans == [(2, 4), (5, 8), (10, 11)]
    assert path.scores == pytest.approx([math.log(0.9)] * 3)


@pytest.mark.parametrize("word, said", [
    ("1984,", "nineteen eighty four ,"), ("1905", "nineteen oh five"), ("2005", "two thousand five"),
    ("2024", "twenty twenty four"), ("1,250", "one thousand two hundred fifty"), ("3rd", "third"),
    ("21st", "twenty first"), ("40th", "fortieth"), ("100000", "one hundred thousand"), ("plain", "plain"),
])
def test_numbers_are_matched_as_they_are_read(word, said):
    assert spelled(word) == said
