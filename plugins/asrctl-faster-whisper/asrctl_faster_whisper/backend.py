"""The faster-whisper backend: asrctl's batches of 16 kHz arrays through a faster-whisper WhisperModel.

Two ways through the model, both faster-whisper's own decoding:
- one utterance at a time, `WhisperModel.transcribe()`: long-form audio, VAD, segment and word
  timestamps, temperature fallback; its result is what calling faster-whisper directly gives.
- batched: the utterances of up to 30 s in a batch are encoded together and decoded in one
  CTranslate2 `generate()` call, built as faster-whisper's BatchedInferencePipeline builds its
  batches (which hold the 30 s chunks of one recording; here they hold several recordings).
  Text and language only; it matches the first way's text on the speech fixtures.
On CPU, batching took 10-30% more time than one at a time in bench/infer_faster_whisper.py
(CTranslate2 already spreads one item over the cores), so it is the default on GPUs only, where
batching is what fills the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens

from asrctl import SAMPLE_RATE, AsrctlError, Transcript

ONE_WINDOW = 30 * SAMPLE_RATE  # Whisper's input window: longer audio needs long-form decoding
TASKS = ("transcribe", "translate")
TIMESTAMPS = ("segment", "word")


class FasterWhisperTranscriber:
    def __init__(self, model: WhisperModel, *, language: str | None, task: str, beam_size: int,
                 timestamps: str | None, vad: bool, batched: bool) -> None:
        self.model = model
        self.language = language
        self.task = task
        self.beam_size = beam_size
        self.timestamps = timestamps
        self.vad = vad
        # Timestamps and VAD need faster-whisper's per-recording path.
        self.batched = batched and timestamps is None and not vad
        self.suppress_tokens = get_suppressed_tokens(self._tokenizer(language or "en"), [-1])

    def transcribe(self, batch: list[np.ndarray]) -> list[Transcript]:
        together = [i for i, audio in enumerate(batch) if self.batched and len(audio) <= ONE_WINDOW]
        results: dict[int, Transcript] = dict(zip(together, self._generate([batch[i] for i in together])))
        return [results[i] if i in results else self._transcribe_one(audio) for i, audio in enumerate(batch)]

    def _transcribe_one(self, audio: np.ndarray) -> Transcript:
        segments, info = self.model.transcribe(
            audio, language=self.language, task=self.task, beam_size=self.beam_size,
            word_timestamps=self.timestamps == "word", vad_filter=self.vad,
        )
        segments = list(segments)  # a generator: decoding happens here
        transcript = Transcript(text="".join(s.text for s in segments).strip(), language=info.language)
        if self.timestamps:
            transcript.segments = [{"start": round(s.start, 2), "end": round(s.end, 2), "text": s.text.strip()}
                                   for s in segments]
        if self.timestamps == "word":
            transcript.words = [{"start": round(w.start, 2), "end": round(w.end, 2), "word": w.word.strip()}
                                for s in segments for w in s.words or []]
        return transcript

    def _generate(self, batch: list[np.ndarray]) -> list[Transcript]:
        if not batch:
            return []
        model = self.model
        features = np.stack([pad_or_trim(model.feature_extractor(audio)[..., :-1]) for audio in batch])
        encoded = model.encode(features)
        if self.language or not model.model.is_multilingual:
            languages = [self.language or "en"] * len(batch)
        else:  # the most likely language token of each item, "<|de|>" -> "de"
            languages = [scores[0][0][2:-2] for scores in model.model.detect_language(encoded)]
        tokenizers = [self._tokenizer(language) for language in languages]
        # Without timestamps, as BatchedInferencePipeline: with them Whisper ends a window at the last
        # segment it completed, leaving the rest for a next window that one-shot decoding never has
        # (on 30 s VAD segments of long recordings that dropped a third of the words: 16.5% WER, not 9.7%).
        results = model.model.generate(
            encoded, [model.get_prompt(tokenizer, [], without_timestamps=True) for tokenizer in tokenizers],
            beam_size=self.beam_size, max_length=model.max_length, suppress_blank=True,
            suppress_tokens=self.suppress_tokens,
        )
        return [Transcript(text=tokenizer.decode(result.sequences_ids[0]).strip(), language=language)
                for tokenizer, result, language in zip(tokenizers, results, languages)]

    def _tokenizer(self, language: str) -> Tokenizer:
        return Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task=self.task, language=language)


def ct2_device(device: str) -> tuple[str, int]:
    """asrctl's "cpu" / "cuda:N" as CTranslate2's device and index."""
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda"):
        raise AsrctlError(f"faster-whisper runs on cpu or cuda, not {device} (use --device cpu)")
    return kind, int(index or 0)


def check_compute_type(compute_type: Any, device: str) -> str:
    supported = ctranslate2.get_supported_compute_types(device)
    if compute_type not in supported:
        raise AsrctlError(f"compute_type={compute_type!r} is not supported on {device} "
                          f"(supported there: {', '.join(sorted(supported))})")
    return compute_type


def load(model: str, *, device: str, dtype: str, language: str | None = None, task: str | None = None,
         beam_size: int = 1, timestamps: str | None = None, compute_type: str | None = None,
         vad: bool = False, batched: bool | None = None) -> FasterWhisperTranscriber:
    # What can be checked before the (slow) model load is: a typo fails at once.
    if task is not None and task not in TASKS:
        raise AsrctlError(f"task={task!r}: expected one of {', '.join(TASKS)}")
    if timestamps is not None and timestamps not in TIMESTAMPS:
        raise AsrctlError(f"timestamps={timestamps!r}: expected one of {', '.join(TIMESTAMPS)}")
    for name, value in (("vad", vad), ("batched", batched)):
        if not isinstance(value, bool) and value is not None:
            raise AsrctlError(f"-O {name}={value}: expected true or false")
    kind, index = ct2_device(device)
    compute_type = check_compute_type(compute_type or dtype, kind)
    folder = Path(model).expanduser()
    if not folder.is_dir() and model.startswith((".", "/", "~")):  # a path, not a hub id or size name
        raise AsrctlError(f"cannot load model {model!r}: no such folder")
    try:
        loaded = WhisperModel(str(folder) if folder.is_dir() else model, device=kind, device_index=index,
                              compute_type=compute_type)
    except (OSError, ValueError, RuntimeError) as exc:  # no such folder or hub id, not a CTranslate2 model
        reason = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise AsrctlError(f"cannot load model {model!r} with faster-whisper: {reason}") from exc
    if language is not None and language not in loaded.supported_languages:
        raise AsrctlError(f"language={language!r}: {model} knows only {', '.join(loaded.supported_languages[:12])}"
                          + (", ..." if len(loaded.supported_languages) > 12 else ""))
    if task == "translate" and not loaded.model.is_multilingual:
        raise AsrctlError(f"{model} is an English-only Whisper: it cannot translate")
    return FasterWhisperTranscriber(
        loaded, language=language, task=task or "transcribe", beam_size=int(beam_size), timestamps=timestamps,
        vad=bool(vad), batched=kind == "cuda" if batched is None else batched,
    )
