"""The faster-whisper backend: asrctl's batches of 16 kHz arrays through a faster-whisper WhisperModel.

Two ways through the model, both faster-whisper's own decoding:
- one utterance at a time, `WhisperModel.transcribe()`: long-form audio, VAD, segment and word
  timestamps, temperature fallback; its result is what calling faster-whisper directly gives.
- batched: the utterances of up to 30 s in a batch are encoded together and decoded in one
  CTranslate2 `generate()` call, built as faster-whisper's BatchedInferencePipeline builds its
  batches (which hold the 30 s chunks of one recording; here they hold several recordings).
  Text and language only; it matches the first way's text on the speech fixtures. Short items'
  features are made where their audio is decoded (`prepare`, in the engine's workers).
On CPU, batching short rows gains little over one at a time (CTranslate2 already spreads one item
over the cores; docs/benchmarks.md), so it is the default on GPUs only, where batching is what
fills the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel, download_model
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens
from huggingface_hub.utils import LocalEntryNotFoundError

from asrctl import AsrctlError, Transcript
from asrctl.api import offline_advice, stderr, unreachable
from asrctl_faster_whisper import package_index

TASKS = ("transcribe", "translate")
OPENAI_VOCAB = 51864  # the English-only Whispers' vocabulary; the multilingual ones have one or more tokens beyond
TIMESTAMPS = ("segment", "word")


class Window(NamedTuple):
    """A short item's features over Whisper's window for batched decoding, made where its audio is
    decoded (the engine's workers), and the item's length."""

    features: np.ndarray
    samples: int


class FasterWhisperTranscriber:
    def __init__(self, model: WhisperModel, *, language: str | None, task: str, beam_size: int,
                 timestamps: str | None, vad: bool, batched: bool, detect: bool = False,
                 name: str = "this model") -> None:
        self.model = model
        self.name = name
        self.language = language
        self.task = task
        self.beam_size = beam_size
        self.timestamps = timestamps
        self.vad = vad
        self.multilingual = multilingual(model)
        self.detect = detect and self.multilingual  # an English-only Whisper has no language tokens
        # Timestamps and VAD need faster-whisper's per-recording path.
        self.batched = batched and timestamps is None and not vad
        self.suppress_tokens = speech_suppressed(self._tokenizer(language or "en"))

    def prepare(self, audio: np.ndarray) -> Window | np.ndarray:
        """Batched decoding's features of a short item; what faster-whisper's own path reads (audio
        of long items, and every item when not batched) stays audio."""
        if not self.batched or len(audio) > self.model.feature_extractor.n_samples:
            return audio
        return Window(window_features(self.model, audio), len(audio))

    def transcribe(self, batch: list[np.ndarray | Window], language: list[str | None] | None = None,
                   task: list[str | None] | None = None) -> list[Transcript]:
        languages = [known_language(self.model, self.name, code) if code else self.language
                     for code in language or [None] * len(batch)]
        tasks = [self._task(kind) for kind in task or [None] * len(batch)]
        window = self.model.feature_extractor.n_samples  # Whisper's 30 s: longer audio needs long-form decoding
        together = [i for i, item in enumerate(batch)
                    if isinstance(item, Window) or (self.batched and len(item) <= window)]
        results = dict(zip(together, self._generate([batch[i] for i in together], [languages[i] for i in together],
                                                     [tasks[i] for i in together])))
        return [results[i] if i in results else self._transcribe_one(item, languages[i], tasks[i])
                for i, item in enumerate(batch)]

    def _task(self, task: str | None) -> str:
        """An item's task (a request's, through `asrctl serve`), else the model's."""
        if task is None or task == self.task:
            return self.task
        if task not in TASKS:
            raise AsrctlError(f"task={task!r}: expected one of {', '.join(TASKS)}")
        if task == "translate" and not self.multilingual:
            raise AsrctlError(f"{self.name} is an English-only Whisper: it cannot translate")
        return task

    def _transcribe_one(self, audio: np.ndarray, language: str | None, task: str) -> Transcript:
        detected = None
        if self.multilingual and (self.detect or language is None):
            [detected] = self._detect(self.model.encode(window_features(self.model, audio)[None]))
        segments, info = self.model.transcribe(
            audio, language=language or (detected[0] if detected else None), task=task, beam_size=self.beam_size,
            word_timestamps=self.timestamps == "word", vad_filter=self.vad,
        )
        segments = list(segments)  # a generator: decoding happens here
        transcript = Transcript(text="".join(s.text for s in segments).strip(),
                                **self._spoken(language or info.language, detected))
        if self.timestamps:
            transcript.segments = [{"start": round(s.start, 2), "end": round(s.end, 2), "text": s.text.strip()}
                                   for s in segments]
        if self.timestamps == "word":
            transcript.words = [{"start": round(w.start, 2), "end": round(w.end, 2), "word": w.word.strip()}
                                for s in segments for w in s.words or []]
        return transcript

    def _generate(self, batch: list[np.ndarray | Window], languages: list[str | None],
                  tasks: list[str]) -> list[Transcript]:
        if not batch:
            return []
        model = self.model
        encoded = model.encode(np.stack([item.features if isinstance(item, Window) else window_features(model, item)
                                         for item in batch]))
        detected: list[tuple[str, float] | None] = [None] * len(batch)
        if self.multilingual and (self.detect or None in languages):
            detected = self._detect(encoded)
        languages = [code or (found[0] if found else "en") for code, found in zip(languages, detected)]
        tokenizers = [self._tokenizer(code, task) for code, task in zip(languages, tasks)]
        # Without timestamps, as BatchedInferencePipeline: with them Whisper ends a window at the last
        # segment it completed, leaving the rest for a next window that one-shot decoding never has
        # (on VAD segments of long recordings that dropped a third of the words: docs/benchmarks.md).
        results = model.model.generate(
            encoded, [model.get_prompt(tokenizer, [], without_timestamps=True) for tokenizer in tokenizers],
            beam_size=self.beam_size, max_length=model.max_length, suppress_blank=True,
            suppress_tokens=self.suppress_tokens,
        )
        return [Transcript(text=tokenizer.decode(result.sequences_ids[0]).strip(), **self._spoken(code, found))
                for tokenizer, result, code, found in zip(tokenizers, results, languages, detected)]

    def _detect(self, encoded: Any) -> list[tuple[str, float]]:
        """Each item's most likely language and its probability (CTranslate2 gives (token, probability)
        pairs, most likely first: "<|de|>" -> "de")."""
        return [(scores[0][0][2:-2], scores[0][1]) for scores in self.model.model.detect_language(encoded)]

    def _spoken(self, language: str, detected: tuple[str, float] | None) -> dict[str, Any]:
        """pred_lang: with --detect-language the language detected, else the one decoded in; a
        probability where it was detected."""
        if detected and (self.detect or detected[0] == language):
            return {"language": detected[0], "language_probability": round(float(detected[1]), 4)}
        return {"language": language}

    def _tokenizer(self, language: str, task: str = "transcribe") -> Tokenizer:
        return Tokenizer(self.model.hf_tokenizer, self.multilingual, task=task, language=language)


def multilingual(model: WhisperModel) -> bool:
    """CTranslate2 calls a Whisper multilingual when its vocabulary is as large as OpenAI's multilingual one;
    a Whisper with a smaller tokenizer of its own is multilingual when it has language tokens (without
    them in the prompt it decoded another sentence)."""
    ct2 = model.model
    return ct2.is_multilingual or (ct2.num_languages > 1 and model.hf_tokenizer.get_vocab_size() < OPENAI_VOCAB)


def speech_suppressed(tokenizer: Tokenizer) -> list[int]:
    """faster-whisper's non-speech tokens, less any token that is white space alone: it takes the first
    token of " -" and " ♪", which a tokenizer without merges for them (one trained from scratch) makes the
    bare space, so every word ran into the next. Whisper's own tokenizers merge both; nothing changes there."""
    return [t for t in get_suppressed_tokens(tokenizer, [-1]) if t >= tokenizer.eot or tokenizer.decode([t]).strip()]


def window_features(model: WhisperModel, audio: np.ndarray) -> np.ndarray:
    """The log-mel features of the model's window (Whisper's 30 s), padded with silence as OpenAI's Whisper
    and transformers pad them. faster-whisper pads the features with zeros instead, a value that silence
    does not take: on a short German espeak-ng row that detected Yiddish (0.16), where silence gives German
    (0.31)."""
    samples = model.feature_extractor.n_samples
    window = np.pad(audio[:samples], (0, max(0, samples - len(audio))))
    return model.feature_extractor(window)[..., :model.feature_extractor.nb_max_frames]


def known_language(model: WhisperModel, name: str, language: str) -> str:
    """`language` (--language, or a row's), refused where the model does not know it."""
    known = model.supported_languages
    if language not in known:
        raise AsrctlError(f"language={language!r}: {name} knows only {', '.join(known[:12])}"
                          + (", ..." if len(known) > 12 else ""))
    return language


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


def model_files(model: str) -> str:
    """What WhisperModel opens for `-m model`: a folder (a local one, or a package index's model in the
    cache), or a size name or hub id that faster-whisper resolves. Where asrctl found the Hub unreachable,
    a model a package index has too comes from there unless the Hugging Face cache holds it."""
    if model.startswith(package_index.PREFIX):
        return str(package_index.model_folder(model.removeprefix(package_index.PREFIX)))
    folder = Path(model).expanduser()
    if folder.is_dir():
        return str(folder)
    if model.startswith((".", "/", "~")):  # a path, not a hub id or size name
        raise AsrctlError(f"cannot load model {model!r}: no such folder")
    mirror = package_index.mirrored(model)
    if mirror and unreachable() and not in_hub_cache(model):
        source = package_index.SOURCES[mirror]
        stderr.print(f"{unreachable()}: {source.title} from the package index instead, the same files as "
                     f"{source.hub}", soft_wrap=True, highlight=False)
        return str(package_index.model_folder(mirror))
    return model


def in_hub_cache(model: str) -> bool:
    try:
        download_model(model, local_files_only=True)
    except (OSError, ValueError):
        return False
    return True


def load_failure(model: str, exc: Exception) -> str:
    """Why `model` did not load, in one line. For a model the Hub could not give, where asrctl went offline
    its own advice (faster-whisper's says to set HF_HUB_OFFLINE=0, which asrctl set), and the package index."""
    if isinstance(exc, LocalEntryNotFoundError):
        return f"{offline_advice(model) if unreachable() else first_line(exc)}; {package_index.ALTERNATIVE}"
    return first_line(exc)


def first_line(exc: Exception) -> str:
    return next((line.strip().rstrip(".") for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def load(model: str, *, device: str, dtype: str, language: str | None = None, task: str | None = None,
         beam_size: int = 1, timestamps: str | None = None, compute_type: str | None = None,
         vad: bool = False, batched: bool | None = None, detect_language: bool = False) -> FasterWhisperTranscriber:
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
    try:
        loaded = WhisperModel(model_files(model), device=kind, device_index=index, compute_type=compute_type)
    except (OSError, ValueError, RuntimeError) as exc:  # no such folder or hub id, not a CTranslate2 model
        raise AsrctlError(f"cannot load model {model!r} with faster-whisper: {load_failure(model, exc)}") from exc
    if language is not None:
        known_language(loaded, model, language)
    if task == "translate" and not multilingual(loaded):
        raise AsrctlError(f"{model} is an English-only Whisper: it cannot translate")
    return FasterWhisperTranscriber(
        loaded, language=language, task=task or "transcribe", beam_size=int(beam_size), timestamps=timestamps,
        vad=bool(vad), batched=kind == "cuda" if batched is None else batched, detect=bool(detect_language),
        name=model,
    )
