"""hf-whisper's `load(..., align=True)`: a known text forced through Whisper's decoder, each token's
time read from the cross-attention of the checkpoint's alignment heads by dynamic time warping, as
openai-whisper times words and stable-ts's `align()` places a given text.

A recording longer than Whisper's 30-s window is aligned window after window: each window is given
the words still to place (as many as its audio can hold at the text's own pace, with room to spare),
keeps those that end before its last MARGIN seconds, and the next window starts where the last of
them ended. Memory is that of one window, however long the recording.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from transformers.models.whisper.generation_whisper import _dynamic_time_warping, _median_filter

from asrctl import SAMPLE_RATE, AsrctlError, Transcript
from asrctl.api import sentences, tightened

WINDOW = 30 * SAMPLE_RATE
MARGIN = 5.0  # seconds at a window's end whose words the next window places again, with audio after them
SPARE = 1.5  # words given to a window: this many times what its seconds hold at the text's pace
SECONDS_PER_FRAME = 0.02  # an encoder frame
PROMPT_ROOM = 8  # decoder positions kept for the prompt and the end of text


class WhisperAligner:
    item_settings = frozenset({"text", "language"})

    def __init__(self, model: Any, processor: Any, *, device: str, dtype: torch.dtype, language: str | None,
                 multilingual: bool, name: str) -> None:
        heads = getattr(model.generation_config, "alignment_heads", None)
        if not heads:
            raise AsrctlError(f"{name} names no alignment heads in its generation_config: it cannot align")
        self.model, self.processor, self.tokenizer = model, processor, processor.tokenizer
        self.device, self.dtype, self.heads = device, dtype, heads
        self.language, self.multilingual = language or "en", multilingual
        self.filter_width = getattr(model.config, "median_filter_width", 7)
        self.max_tokens = model.config.max_target_positions - PROMPT_ROOM  # Whisper's 448

    @torch.inference_mode()
    def transcribe(self, batch: list[np.ndarray], text: list[str | None] | None = None,
                   language: list[str | None] | None = None) -> list[Transcript]:
        results = []
        for i, audio in enumerate(batch):
            words = (text or [None] * len(batch))[i] or ""
            code = (language or [None] * len(batch))[i] or self.language
            timed = tightened(self._align(audio, words.split(), code), audio)
            results.append(Transcript(text=" ".join(words.split()), words=timed, segments=sentences(timed)))
        return results

    def _align(self, audio: np.ndarray, words: list[str], language: str) -> list[dict]:
        pieces = [self.tokenizer.encode(" " + word, add_special_tokens=False) for word in words]
        pace = max(sum(len(w) for w in words), 1) / max(len(audio) / SAMPLE_RATE, 1e-3)  # characters per second
        timed: list[dict] = []
        start = 0
        while len(timed) < len(words):
            window = audio[start : start + WINDOW]
            last = start + WINDOW >= len(audio)
            chosen, tokens, room = [], 0, SPARE * pace * len(window) / SAMPLE_RATE
            for k in range(len(timed), len(words)):
                if chosen and (tokens + len(pieces[k]) > self.max_tokens or (not last and room <= 0)):
                    break
                chosen.append(k)
                tokens += len(pieces[k])
                room -= len(words[k]) + 1
            placed = self._window(window, [words[k] for k in chosen], [pieces[k] for k in chosen], language,
                                  start / SAMPLE_RATE)
            if not last:
                limit = (start + len(window)) / SAMPLE_RATE - MARGIN
                placed = [w for n, w in enumerate(placed) if w["end"] <= limit and all(p["end"] <= limit
                                                                                       for p in placed[:n])]
            if not placed:  # nothing this window could keep: move on past it
                if last:
                    break
                start += WINDOW - round(MARGIN * SAMPLE_RATE)
                continue
            timed += placed
            start = round(placed[-1]["end"] * SAMPLE_RATE)
        end = round(len(audio) / SAMPLE_RATE, 3)
        timed += [{"word": word, "start": end, "end": end, "score": 0.0} for word in words[len(timed):]]
        return timed

    def _window(self, audio: np.ndarray, words: list[str], pieces: list[list[int]], language: str,
                offset: float) -> list[dict]:
        """The words' times (seconds from `offset`) and scores in one window of audio."""
        features = self.processor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        self.tokenizer.set_prefix_tokens(language=language if self.multilingual else None, task="transcribe",
                                         predict_timestamps=False)
        prefix = self.tokenizer.prefix_tokens
        text = [token for piece in pieces for token in piece]
        ids = torch.tensor([prefix + text + [self.tokenizer.eos_token_id]], device=self.device)
        output = self.model(input_features=features.to(self.device, dtype=self.dtype), decoder_input_ids=ids,
                            output_attentions=True)
        frames = max(math.ceil(len(audio) / self.processor.feature_extractor.hop_length) // 2, 1)
        weights = torch.stack([output.cross_attentions[layer][0, head] for layer, head in self.heads]).float()
        weights = weights[:, len(prefix) - 1 : len(prefix) + len(text), :frames]
        std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
        weights = _median_filter((weights - mean) / std.clamp(min=1e-8), self.filter_width)
        rows, columns = _dynamic_time_warping(-weights.mean(dim=0).double().cpu().numpy())
        jumps = np.pad(np.diff(rows), (1, 0), constant_values=1).astype(bool)
        # where each row starts: the prompt's last position (which predicts the first text token), then the text's
        times = columns[jumps] * SECONDS_PER_FRAME
        probabilities = output.logits[0, len(prefix) - 1 : len(prefix) - 1 + len(text)].float().softmax(-1)
        chosen = probabilities.gather(1, torch.tensor(text, device=probabilities.device)[:, None])[:, 0].cpu().numpy()
        placed, first = [], 0
        for word, piece in zip(words, pieces):
            span = range(first, first + len(piece))
            begin, end = times[span.start], times[span.stop]  # a token starts where the row predicting it does
            score = float(np.mean(chosen[span.start : span.stop])) if len(piece) else 0.0
            placed.append({"word": word, "start": round(offset + float(begin), 3),
                           "end": round(offset + max(float(end), float(begin)), 3), "score": round(score, 4)})
            first += len(piece)
        return placed
