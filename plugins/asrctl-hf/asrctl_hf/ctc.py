"""hf-ctc: any transformers CTC checkpoint (wav2vec2, HuBERT, Parakeet CTC, ...), greedy decoding.

Audio longer than `chunk_seconds` is cut into overlapping windows, as transformers' ASR pipeline
does with `chunk_length_s`/`stride_length_s`: each window sees `stride` extra audio on either side,
the frames of those strides are dropped, and what is left tiles the file exactly. The frames are
concatenated before CTC's collapse of repeats, so a word cut by a window edge is decoded once.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import AutoFeatureExtractor, AutoModelForCTC, AutoProcessor, ProcessorMixin

from asrctl import SAMPLE_RATE, AsrctlError, Transcript
from asrctl.api import ctc_align, sentences, spelled, targets, tightened, timed_words
from asrctl_hf.common import check_quantize, from_pretrained, load_model, torch_dtype

DEFAULT_CHUNK_SECONDS = 30.0
# Windows of a long file in one call: a few on the CPU, whose memory they bound however long the
# file; on an accelerator, five minutes of audio a call, about what a default batch holds.
CPU_WINDOWS_PER_CALL = 4
ACCELERATOR_SECONDS_PER_CALL = 300.0


@dataclass(frozen=True)
class Window:
    """Samples [start, end) of a long array, of which `left` and `right` at the edges are context only."""

    start: int
    end: int
    left: int
    right: int


def plan_windows(n_samples: int, chunk: int, stride: int) -> list[Window]:
    """Windows of `chunk` samples overlapping by 2*`stride`; their kept parts tile [0, n_samples)."""
    step = chunk - 2 * stride
    if step <= 0:
        raise ValueError(f"chunk ({chunk}) must be longer than twice the stride ({stride})")
    windows = []
    for start in range(0, n_samples, step):
        last = start + chunk >= n_samples
        windows.append(Window(start, min(start + chunk, n_samples), stride if start else 0, 0 if last else stride))
        if last:
            break
    return windows


def kept_frames(window: Window, n_frames: int, samples_per_frame: int) -> slice:
    """The window's output frames outside its strides (the last window keeps all it has)."""
    stop = n_frames if window.right == 0 else round((window.end - window.start - window.right) / samples_per_frame)
    return slice(round(window.left / samples_per_frame), stop)


def samples_per_frame(config: Any, feature_extractor: Any) -> int:
    """Input samples per output frame: the conv stack's stride (wav2vec2), or mel hop x subsampling."""
    ratio = getattr(config, "inputs_to_logits_ratio", None)
    if ratio is None:  # Parakeet keeps its subsampling in the encoder's config
        ratio = getattr(getattr(config, "encoder_config", config), "subsampling_factor", 1)
    # mel-input models count frames of the feature extractor's hop (as the pipeline does for lasr)
    return int(ratio * getattr(feature_extractor, "hop_length", 1))


def output_frames(model: Any, n_samples: int, samples_per_frame: int) -> int:
    """Output frames of an array of `n_samples` (0: too short to run the model on)."""
    exact = getattr(model, "_get_feat_extract_output_lengths", None)  # the wav2vec2 family's conv arithmetic
    count = int(exact(n_samples)) if exact else math.ceil(n_samples / samples_per_frame)
    return max(count, 0)


@dataclass
class FeaturesAndTokenizer:
    """A processor for checkpoints where AutoProcessor finds only the tokenizer (data2vec-audio)."""

    feature_extractor: Any
    tokenizer: Any

    def __call__(self, audio: Any, **kwargs: Any) -> Any:
        return self.feature_extractor(audio, **kwargs)

    def batch_decode(self, ids: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(ids, **kwargs)

    def save_pretrained(self, folder: Any) -> None:
        self.feature_extractor.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)


def load_processor(model: str, *, trust_remote_code: bool) -> Any:
    """The checkpoint's processor: feature extractor and tokenizer, with batch_decode doing CTC's collapse."""
    processor = from_pretrained(AutoProcessor, model, trust_remote_code=trust_remote_code)
    if not isinstance(processor, ProcessorMixin):
        features = from_pretrained(AutoFeatureExtractor, model, trust_remote_code=trust_remote_code)
        processor = FeaturesAndTokenizer(features, processor)
    return processor


class CTCTranscriber:
    sample_rate = SAMPLE_RATE

    def __init__(self, model: Any, processor: Any, *, device: str, dtype: torch.dtype, chunk_seconds: float) -> None:
        self.model = model
        self.processor = processor
        self.device = device
        self.dtype = dtype
        self.samples_per_frame = samples_per_frame(model.config, processor.feature_extractor)
        # Window and stride in whole frames, so that every window starts on the file's frame grid.
        frames = round(chunk_seconds * SAMPLE_RATE / self.samples_per_frame)
        self.chunk = frames * self.samples_per_frame
        self.stride = round(frames / 6) * self.samples_per_frame
        if self.chunk <= 2 * self.stride:
            raise AsrctlError(f"chunk_seconds={chunk_seconds} is too short for this model's frame rate")
        self.windows_per_call = CPU_WINDOWS_PER_CALL if device == "cpu" else \
            max(CPU_WINDOWS_PER_CALL, int(ACCELERATOR_SECONDS_PER_CALL // chunk_seconds))

    @torch.inference_mode()
    def transcribe(self, batch: list[np.ndarray]) -> list[Transcript]:
        # Arrays too short for one output frame (the model cannot run on them) decode to "".
        ids = [torch.zeros(0, dtype=torch.long)] * len(batch)
        short = [i for i, audio in enumerate(batch) if self._output_frames(len(audio)) and len(audio) <= self.chunk]
        if short:
            for i, row in zip(short, self.logits([batch[i] for i in short])):
                ids[i] = row[: self._output_frames(len(batch[i]))].argmax(-1)  # drop frames of padding
        for i, audio in enumerate(batch):
            if len(audio) > self.chunk:
                ids[i] = torch.cat([part.argmax(-1) for part in self.window_logits(audio)])
        # to the host once for the batch: a copy per row would wait for the device once per row
        lengths = [len(row) for row in ids]
        host = torch.cat([row.to(self.device) for row in ids]).cpu().split(lengths) if batch else []
        texts = self.processor.batch_decode([row.tolist() for row in host])
        return [Transcript(text=text.strip()) for text in texts]

    def window_logits(self, audio: np.ndarray) -> Iterator[torch.Tensor]:
        """A long array's logits window by window, strides dropped: concatenated, they cover it once."""
        windows = plan_windows(len(audio), self.chunk, self.stride)
        # Only windows of one length share a batch: padding would change what unmasked models see.
        for _, same_length in itertools.groupby(windows, key=lambda w: w.end - w.start):
            same_length = list(same_length)
            for first in range(0, len(same_length), self.windows_per_call):
                group = same_length[first : first + self.windows_per_call]
                rows = self.logits([audio[w.start : w.end] for w in group])
                for window, row in zip(group, rows):
                    yield row[kept_frames(window, len(row), self.samples_per_frame)]

    def logits(self, arrays: Sequence[np.ndarray]) -> torch.Tensor:
        """The model's float32 logits for a batch of arrays, padded to the longest."""
        features = self.processor(list(arrays), sampling_rate=SAMPLE_RATE, return_tensors="pt", padding=True)
        features = features.to(self.device, dtype=self.dtype)
        return self.model(**features).logits.float()

    def _output_frames(self, n_samples: int) -> int:
        return output_frames(self.model, n_samples, self.samples_per_frame)


class CTCAligner:
    """`load(..., align=True)`: each item's known text placed in its audio by forced alignment over
    the model's frame log-probabilities (asrctl.api.ctc_align); long audio's frames come window by
    window, as for transcription. Characters the vocabulary lacks (punctuation, mostly) are left out
    of the matching, the words keep them."""

    item_settings = frozenset({"text"})

    def __init__(self, transcriber: CTCTranscriber) -> None:
        self.transcriber = transcriber
        tokenizer = transcriber.processor.tokenizer
        self.tokenizer = tokenizer
        self.vocab = tokenizer.get_vocab()
        self.blank = tokenizer.pad_token_id
        delimiter = getattr(tokenizer, "word_delimiter_token", None)
        self.delimiter = self.vocab.get(delimiter) if delimiter else None  # a character vocabulary's "|"
        self.seconds_per_frame = transcriber.samples_per_frame / SAMPLE_RATE

    def encode(self, word: str) -> list[int]:
        if self.delimiter is None:  # word pieces
            return list(self.tokenizer(word, add_special_tokens=False).input_ids)
        if any(c.isdigit() and c not in self.vocab for c in word):  # numbers as they are read
            word = spelled(word)
        ids: list[int] = []
        for part in word.split():
            chars = [next((self.vocab[c] for c in (char, char.upper(), char.lower()) if c in self.vocab), None)
                     for char in part]  # in the case the vocabulary has them
            chars = [c for c in chars if c is not None and c != self.delimiter]
            ids += ([self.delimiter] if ids and chars else []) + chars
        return ids

    @torch.inference_mode()
    def transcribe(self, batch: list[np.ndarray], text: list[str | None] | None = None) -> list[Transcript]:
        model = self.transcriber
        wanted = [targets(t or "", self.encode, self.delimiter) for t in text or [None] * len(batch)]
        frames = [model._output_frames(len(audio)) for audio in batch]
        paths: dict[int, Any] = {}
        short = [i for i, audio in enumerate(batch) if frames[i] and len(audio) <= model.chunk]
        if short:
            log_probs = model.logits([batch[i] for i in short]).log_softmax(-1)
            found = ctc_align(log_probs, [frames[i] for i in short], [wanted[i].tokens for i in short], self.blank)
            paths.update(zip(short, found))
        for i, audio in enumerate(batch):
            if len(audio) > model.chunk:
                log_probs = torch.cat(list(model.window_logits(audio))).log_softmax(-1)
                [paths[i]] = ctc_align(log_probs[None], [len(log_probs)], [wanted[i].tokens], self.blank)
        results = []
        for i, found in enumerate(wanted):
            path = paths.get(i)
            if found.tokens and path is None:
                raise AsrctlError(f"{len(batch[i]) / SAMPLE_RATE:.2f} s of audio is too short for its text "
                                  f"({len(found.tokens)} tokens)")
            words = tightened(timed_words(found, path.spans if path else [], path.scores if path else [],
                                          self.seconds_per_frame), batch[i])
            results.append(Transcript(text=" ".join(found.words), words=words, segments=sentences(words)))
        return results


def load(model: str, *, device: str, dtype: str, chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
         quantize: str | None = None, trust_remote_code: bool = False, allow_pickle: bool = False,
         align: bool = False) -> CTCTranscriber | CTCAligner:
    chunk_seconds = float(chunk_seconds)
    if not chunk_seconds > 0:
        raise AsrctlError(f"chunk_seconds must be positive, got {chunk_seconds}")
    int8 = check_quantize(quantize, device=device, dtype=dtype)
    dtype_ = torch_dtype(dtype)
    processor = load_processor(model, trust_remote_code=trust_remote_code)
    loaded = load_model(AutoModelForCTC, model, device=device, dtype=dtype, quantize=int8,
                        trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    transcriber = CTCTranscriber(loaded, processor, device=device, dtype=dtype_, chunk_seconds=chunk_seconds)
    return CTCAligner(transcriber) if align else transcriber
