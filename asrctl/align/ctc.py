"""Forced alignment of a known transcript with a CTC model's frame log-probabilities: the Viterbi
path through the CTC trellis (blank, token 1, blank, token 2, ..., blank), batched on the model's
device, as NeMo's Forced Aligner computes it (in torch here, torchaudio not being a dependency).

Memory stays bounded however long the recording: the path's pointers are kept for one stretch of
CHECKPOINT frames at a time, and the trellis column at every stretch's start, so that a stretch's
pointers are computed again when the path is traced back through it. Half an hour of audio and
its text (90,000 frames, about 50,000 states) needs some 70 MB where the whole table of pointers
would take 4.5 GB. The path is the same as the whole table gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported when an alignment runs: the core stays light to import
    import torch

CHECKPOINT = 256  # frames per stretch of pointers


@dataclass
class Path:
    """The frames each target token holds on the best path: `spans[k]` = (first, last + 1); and each
    token's mean log-probability over them."""

    spans: list[tuple[int, int]]
    scores: list[float]


def _states(targets: list[list[int]], blank: int, device: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each item's states (blank, t1, blank, t2, ..., blank) padded to the longest, whether a state may be
    entered from two back (a token after a blank, unless it repeats the token before), and the count."""
    import torch

    size = 2 * max((len(t) for t in targets), default=0) + 1
    states = torch.full((len(targets), size), blank, dtype=torch.long)
    skip = torch.zeros((len(targets), size), dtype=torch.bool)
    for b, tokens in enumerate(targets):
        if tokens:
            states[b, 1 : 2 * len(tokens) : 2] = torch.tensor(tokens)
            repeats = torch.tensor([False, *(a == c for a, c in zip(tokens, tokens[1:]))])
            skip[b, 3 : 2 * len(tokens) : 2] = ~repeats[1:]
    counts = torch.tensor([2 * len(t) + 1 for t in targets])
    return states.to(device), skip.to(device), counts.to(device)


def align(log_probs: torch.Tensor, lengths: list[int], targets: list[list[int]], blank: int) -> list[Path | None]:
    """The best CTC path of each item: `log_probs` (batch, frames, vocabulary), its first `lengths[b]`
    frames the item's; `targets[b]` its token ids. None where the frames cannot hold the tokens."""
    import torch

    device = log_probs.device
    batch, frames, _ = log_probs.shape
    states, skip, counts = _states(targets, blank, device)
    size = states.shape[1]
    lengths_ = torch.tensor(lengths, device=device)
    beyond = torch.arange(size, device=device)[None, :] >= counts[:, None]  # padding states
    impossible = torch.tensor(float("-inf"), device=device)

    def emissions(t: int) -> torch.Tensor:
        scores = log_probs[:, t, :].gather(1, states)
        return scores.masked_fill(beyond, impossible)

    def step(alpha: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        one = torch.cat([alpha.new_full((batch, 1), impossible), alpha[:, :-1]], dim=1)
        two = torch.cat([alpha.new_full((batch, 2), impossible), alpha[:, :-2]], dim=1).masked_fill(~skip, impossible)
        best, pointer = torch.stack([alpha, one, two]).max(dim=0)
        moved = best + emissions(t)
        live = (t < lengths_)[:, None]  # an item past its frames keeps its last column
        return torch.where(live, moved, alpha), pointer.to(torch.int8)

    alpha = emissions(0).masked_fill(torch.arange(size, device=device)[None, :] > 1, impossible)
    columns = {0: alpha}
    for t in range(1, frames):
        alpha, _ = step(alpha, t)
        if t % CHECKPOINT == 0:
            columns[t] = alpha
    # the path ends in the last token or the blank after it
    last = torch.stack([alpha.gather(1, (counts - 1)[:, None])[:, 0],
                        alpha.gather(1, (counts - 2).clamp(min=0)[:, None])[:, 0]])
    end_score, end_which = last.max(dim=0)
    state = (counts - 1 - end_which).tolist()
    possible = torch.isfinite(end_score).tolist()

    # Traced back a stretch at a time, the stretch's pointers computed again from its first column
    # (with the pointers of the frame after it, which lead back into it).
    path = np.zeros((batch, frames), dtype=np.int64)
    for start in sorted(columns, reverse=True):
        stop = min(start + CHECKPOINT, frames)
        alpha, back = columns[start], []
        for t in range(start + 1, min(stop + 1, frames)):
            alpha, pointer = step(alpha, t)
            back.append(pointer.cpu().numpy())
        for t in range(stop - 1, start - 1, -1):
            for b in range(batch):
                if t >= lengths[b]:
                    continue
                if t + 1 < lengths[b]:  # from frame t + 1 back to t
                    state[b] -= int(back[t - start][b, state[b]])
                path[b, t] = state[b]
    return [_spans(path[b, : lengths[b]], log_probs[b, : lengths[b]], targets[b]) if possible[b] else None
            for b in range(batch)]


def _spans(path: np.ndarray, log_probs: torch.Tensor, tokens: list[int]) -> Path:
    spans: list[tuple[int, int]] = [(-1, -1)] * len(tokens)
    totals = [0.0] * len(tokens)
    frame_scores = log_probs.cpu().numpy()
    for t, state in enumerate(path.tolist()):
        if state % 2:
            k = state // 2
            first = spans[k][0] if spans[k][0] >= 0 else t
            spans[k] = (first, t + 1)
            totals[k] += float(frame_scores[t, tokens[k]])
    scores = [total / max(end - start, 1) for total, (start, end) in zip(totals, spans)]
    return Path(spans, scores)
