"""The nemo backend's `load(..., align=True)`: a known text placed in its audio by CTC forced alignment
(asrctl.api.ctc_align) over the log-probabilities of a CTC model, or of a hybrid's CTC head, as NeMo's
Forced Aligner aligns. Transducer-only and multitask (Canary) models have no CTC head: refused at load.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from asrctl import SAMPLE_RATE, AsrctlError, Transcript
from asrctl.api import ctc_align, padded_batch, sentences, spelled, targets, tightened, timed_words


class NemoAligner:
    item_settings = frozenset({"text"})

    def __init__(self, asr: Any, *, device: str, name: str) -> None:
        import torch

        if hasattr(asr, "joint") and not hasattr(asr, "ctc_decoder"):
            raise AsrctlError(f"{name} is a transducer without a CTC head: it cannot align (a CTC or hybrid "
                              "RNNT/CTC model can)")
        self.asr, self.device = asr, torch.device(device)
        self.hybrid = hasattr(asr, "joint")
        decoder = asr.ctc_decoder if self.hybrid else asr.decoder
        self.blank = decoder.num_classes_with_blank - 1  # NeMo puts CTC's blank last
        tokenizer = getattr(asr, "tokenizer", None)
        if tokenizer is not None:  # word pieces: a word's pieces begin with its "▁"
            self.encode, self.delimiter = (lambda word: list(tokenizer.text_to_ids(word))), None
        else:  # characters, with the space between words
            vocabulary = list(decoder.vocabulary)
            index = {char: i for i, char in enumerate(vocabulary)}
            self.delimiter = index.get(" ")

            def encode(word: str) -> list[int]:
                if any(c.isdigit() and c not in index for c in word):  # numbers as they are read
                    word = spelled(word)
                ids: list[int] = []
                for part in word.split():
                    chars = [index[c] for c in part.lower() if c in index and c != " "]
                    ids += ([self.delimiter] if ids and chars and self.delimiter is not None else []) + chars
                return ids

            self.encode = encode
        self.frame_seconds = float(asr.cfg.preprocessor.window_stride) * getattr(asr.encoder, "subsampling_factor", 1)

    def transcribe(self, batch: list[np.ndarray], text: list[str | None] | None = None) -> list[Transcript]:
        import torch

        wanted = [targets(t or "", self.encode, self.delimiter) for t in text or [None] * len(batch)]
        signal, lengths = padded_batch(batch, self.device)
        with torch.inference_mode():
            outputs = self.asr.forward(input_signal=signal, input_signal_length=lengths)
            log_probs = self.asr.ctc_decoder(encoder_output=outputs[0]) if self.hybrid else outputs[0]
            paths = ctc_align(log_probs.float(), outputs[1].tolist(), [w.tokens for w in wanted], self.blank)
        results = []
        for audio, found, path in zip(batch, wanted, paths):
            if found.tokens and path is None:
                raise AsrctlError(f"{len(audio) / SAMPLE_RATE:.2f} s of audio is too short for its text "
                                  f"({len(found.tokens)} tokens)")
            words = tightened(timed_words(found, path.spans if path else [], path.scores if path else [],
                                          self.frame_seconds), audio)
            results.append(Transcript(text=" ".join(found.words), words=words, segments=sentences(words)))
        return results
