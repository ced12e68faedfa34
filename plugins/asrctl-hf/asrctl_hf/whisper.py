"""hf-whisper: Whisper checkpoints through transformers' own generate().

Arrays up to 30 s are decoded in one pass, as Whisper was trained; longer ones go through Whisper's
sequential long-form algorithm (generate() seeks through the un-truncated features 30 s at a time,
guided by the timestamp tokens it predicts). The two kinds are generated apart so that short
items keep the one-pass path. Segment times come from the timestamp tokens, word times from
cross-attention alignment (DTW over the checkpoint's alignment heads).
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor, BatchFeature
from transformers.models.whisper.tokenization_whisper import (
    LANGUAGES,
    TO_LANGUAGE_CODE,
    _combine_tokens_into_words,  # the word grouping of transformers' ASR pipeline
)

from asrctl import SAMPLE_RATE, AsrctlError, Transcript
from asrctl_hf.common import check_quantize, from_pretrained, load_model, torch_dtype
from asrctl_hf.whisper_align import WhisperAligner

TASKS = ("transcribe", "translate")
TIMESTAMPS = ("none", "segment", "word")

# transformers 5.23's Whisper generate() passes suppress tokens beside its own generation_config, and
# GenerationMixin then warns of a deprecation that only transformers can act on: keep it off users' screens.
logging.getLogger("transformers.generation.utils").addFilter(
    lambda record: "together with generation-related arguments" not in record.getMessage()
)


def language_code(language: str) -> str:
    """The code of a language given as generate() takes it: "en", "English" or "<|en|>" -> "en"."""
    name = language.strip().lower().removeprefix("<|").removesuffix("|>")
    code = TO_LANGUAGE_CODE.get(name, name)
    if code not in LANGUAGES:
        raise AsrctlError(f"language={language!r}: not a Whisper language (give a code such as en or de, or a name)")
    return code


def prompt_options(config: Any, model: str, language: str | None, task: str | None) -> dict[str, str]:
    """generate()'s language and task, checked against what the checkpoint can do.

    A multilingual model without `language` detects it per item. Its task is always given:
    generate() puts a task token in the prompt only when language or task is set (or the
    checkpoint's legacy forced_decoder_ids say so), and without one Whisper stops early.
    An English-only model takes neither (generate() rejects them), so English is left implicit.
    """
    code = known_language(config, model, language) if language is not None else None
    if not is_multilingual(config):
        if task == "translate":
            raise AsrctlError(f"{model} is an English-only Whisper: it cannot translate")
        return {}
    return {"task": task or "transcribe", **({"language": code} if code else {})}


def known_language(config: Any, model: str, language: str) -> str:
    """The code of `language` (--language, or a row's), refused where the checkpoint does not know it."""
    code = language_code(language)
    if not is_multilingual(config) and code != "en":
        raise AsrctlError(f"{model} is an English-only Whisper: it cannot take language={language}")
    if is_multilingual(config) and f"<|{code}|>" not in config.lang_to_id:
        raise AsrctlError(f"{model} does not know language {language!r}")
    return code


def is_multilingual(config: Any) -> bool:
    return getattr(config, "is_multilingual", hasattr(config, "lang_to_id"))


class Features(NamedTuple):
    """A short item's log-mel features over Whisper's window, as its processor computes them for a
    batch, and the item's length: what `prepare` makes in the decoding workers."""

    input_features: torch.Tensor
    attention_mask: torch.Tensor
    samples: int


class WhisperTranscriber:
    sample_rate = SAMPLE_RATE

    def __init__(self, model: Any, processor: Any, *, device: str, dtype: torch.dtype, prompt: dict[str, str],
                 beam_size: int, timestamps: str, detect: bool = False, name: str = "this model") -> None:
        self.model = model
        self.name = name
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.device = device
        self.dtype = dtype
        self.timestamps = timestamps
        self.generate_options = {"num_beams": beam_size, **{k: v for k, v in prompt.items() if k != "language"}}
        config = model.generation_config
        self.multilingual = is_multilingual(config)
        self.detect = detect
        self.language = prompt.get("language") or (None if self.multilingual else "en")
        self.language_ids = {token_id: token[2:-2] for token, token_id in getattr(config, "lang_to_id", {}).items()}
        self.short_samples = processor.feature_extractor.n_samples  # 30 s
        self.encoded: tuple[torch.Tensor, Any] | None = None  # features, and their encoding for detection
        encoder = model.get_encoder()
        self.encoder_forward = encoder.forward
        encoder.forward = self._encode
        if hasattr(model, "_retrieve_segment"):  # a private reader: a transformers without it is left as it is
            model._retrieve_segment = moving_on(model._retrieve_segment)

    def prepare(self, audio: np.ndarray) -> Features | np.ndarray:
        """A short item's features, computed where its audio is decoded (the engine's workers) rather
        than beside the model; a long one stays audio, for long-form decoding reads every frame."""
        if len(audio) > self.short_samples:
            return audio
        features = self.processor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True)
        return Features(features.input_features[0], features.attention_mask[0], len(audio))

    @torch.inference_mode()
    def transcribe(self, batch: list[np.ndarray | Features], language: list[str | None] | None = None,
                   task: list[str | None] | None = None) -> list[Transcript]:
        languages = [known_language(self.model.generation_config, self.name, code) if code else self.language
                     for code in language or [None] * len(batch)]
        # an item's own task (a request's, through `asrctl serve`), checked as --task is; generate() takes one
        tasks = [prompt_options(self.model.generation_config, self.name, None, kind).get("task") if kind else
                 self.generate_options.get("task") for kind in task or [None] * len(batch)]
        results: list[Transcript | None] = [None] * len(batch)
        for long_form, kind in itertools.product((False, True), sorted(set(tasks), key=str)):
            indices = [i for i, item in enumerate(batch)
                       if (samples(item) > self.short_samples) == long_form and tasks[i] == kind]
            if indices:
                generated = self._generate([batch[i] for i in indices], [languages[i] for i in indices], long_form,
                                           kind)
                for i, transcript in zip(indices, generated):
                    results[i] = transcript
        return results  # type: ignore[return-value]  # every index was filled

    def _detect(self, features: torch.Tensor) -> list[tuple[str, float]]:
        """Each item's most likely language and its probability, from the first 30 s: the
        distribution over language tokens after <|startoftranscript|>, as generate() detects."""
        config = self.model.generation_config
        ids = list(config.lang_to_id.values())
        start = torch.full((len(features), 1), config.decoder_start_token_id, device=self.device)
        encoded = self.model.get_encoder()(features[:, :, :3000])
        self.encoded = (features, encoded)  # generate() encodes these features again: see _encode
        logits = self.model(encoder_outputs=encoded, decoder_input_ids=start, use_cache=False).logits
        best = logits[:, -1, ids].float().softmax(-1).max(-1)
        values, indices = best.values.tolist(), best.indices.tolist()  # to the host once, not per item
        return [(self.language_ids[ids[i]], round(p, 4)) for p, i in zip(values, indices)]

    def _encode(self, input_features: torch.Tensor, **options: Any) -> Any:
        """The encoder, which gives the output it gave for language detection again where generate()
        asks for the same features (short items, whose batch it encodes whole first), instead of
        running twice. generate() may go on with fewer items; their features differ, and are encoded."""
        plain = not options.get("output_attentions") and not options.get("output_hidden_states") \
            and options.get("return_dict") in (None, True)
        if self.encoded is not None and plain:
            features, encoded = self.encoded
            if features.shape == input_features.shape and torch.equal(features, input_features):
                self.encoded = None
                return encoded
        return self.encoder_forward(input_features, **options)

    def _features(self, batch: list[np.ndarray | Features], long_form: bool) -> Any:
        """The batch's features on the device: stacked where the workers computed them (copied in one
        transfer from pinned memory on a GPU), else computed here. Short-form features are padded to
        30 s, as Whisper expects; long-form needs every frame."""
        if all(isinstance(item, Features) for item in batch):
            features = BatchFeature({"input_features": torch.stack([item.input_features for item in batch]),
                                     "attention_mask": torch.stack([item.attention_mask for item in batch])})
            if self.device.startswith("cuda"):
                features = BatchFeature({key: value.pin_memory() for key, value in features.items()})
        else:
            layout = {"truncation": False, "padding": "longest"} if long_form else {}
            features = self.processor([audio(item) for item in batch], sampling_rate=SAMPLE_RATE,
                                      return_tensors="pt", return_attention_mask=True, **layout)
        return features.to(self.device, dtype=self.dtype, non_blocking=True)

    def _generate(self, batch: list[np.ndarray | Features], languages: list[str | None],
                  long_form: bool, task: str | None) -> list[Transcript]:
        features = self._features(batch, long_form)
        detected: list[tuple[str, float] | None] = [None] * len(batch)
        if self.multilingual and (self.detect or None in languages):
            detected = self._detect(features.input_features)
        languages = [code or found[0] for code, found in zip(languages, detected)] if self.multilingual else languages
        # one language for the batch as generate() takes it, else one per item
        prompt = {"language": languages[0] if len(set(languages)) == 1 else languages} if self.multilingual else {}
        with warnings.catch_warnings():
            # word times: when generate() seeks on into a short item's padding, DTW gets no frames to normalise
            warnings.filterwarnings("ignore", message=r"std\(\): degrees of freedom", category=UserWarning)
            output = self.model.generate(
                features.input_features,
                attention_mask=features.attention_mask,  # per-item lengths: where long-form stops, DTW spans
                return_timestamps=long_form or self.timestamps != "none",
                return_token_timestamps=self.timestamps == "word",
                return_segments=True,  # segment times
                **{**self.generate_options, **({"task": task} if task else {})}, **prompt,
            )
        self.encoded = None
        texts = self.tokenizer.batch_decode(output["sequences"], skip_special_tokens=True)
        return [self._transcript(text, segments, samples(item) / SAMPLE_RATE, code, found)
                for text, segments, item, code, found in zip(texts, output["segments"], batch, languages, detected)]

    def _transcript(self, text: str, segments: list[dict], duration: float, language: str | None,
                    detected: tuple[str, float] | None) -> Transcript:
        """pred_lang: with --detect-language the language detected, else the one decoded in."""
        spoken, probability = detected if detected and (self.detect or language == detected[0]) else (language, None)
        transcript = Transcript(text=text.strip(), language=spoken, language_probability=probability)
        if self.timestamps != "none":
            transcript.segments = [
                {"start": _seconds(s["start"], duration), "end": _seconds(s["end"], duration),
                 "text": self.tokenizer.decode(s["tokens"], skip_special_tokens=True).strip()}
                for s in segments
            ]
        if self.timestamps == "word":
            transcript.words = self._words(segments, language, duration)
        return transcript

    def _words(self, segments: list[dict], language: str | None, duration: float) -> list[dict]:
        if not segments:
            return []
        tokens = torch.cat([s["tokens"] for s in segments]).tolist()
        # A token's timestamp is where it ends (the ASR pipeline reads them so): it starts where the previous ends.
        ends = torch.cat([s["token_timestamps"] for s in segments]).tolist()
        text_tokens, spans = [], []
        for i, token in enumerate(tokens):
            if token < self.tokenizer.eos_token_id:  # text; special and timestamp tokens come after <|endoftext|>
                text_tokens.append(token)
                spans.append((ends[i - 1] if i else 0.0, ends[i]))
        words, _, indices = _combine_tokens_into_words(self.tokenizer, text_tokens, LANGUAGES.get(language or "en"))
        timed = []
        for word, index in zip(words, indices):
            end = _seconds(spans[index[-1]][1], duration)
            timed.append({"start": min(_seconds(spans[index[0]][0], duration), end), "end": end, "word": word.strip()})
        return timed


def moving_on(retrieve_segment: Callable[..., tuple[list[dict], Any]]) -> Callable[..., tuple[list[dict], Any]]:
    """generate()'s segment reader, made to move each item on. generate() goes on from a window's
    last timestamp pair, so a window that ends on <|0.00|><|0.00|> is decoded again from where it
    began, forever (openai/whisper#914; a model fine-tuned a few steps did it on 3-s clips): such a
    window moves on by its whole length, as one whose speech has ended does."""

    def retrieve(**options: Any) -> tuple[list[dict], Any]:
        segments, offset = retrieve_segment(**options)
        return segments, offset if offset > 0 else options["seek_num_frames"][options["prev_idx"]]

    return retrieve


def samples(item: np.ndarray | Features) -> int:
    return item.samples if isinstance(item, Features) else len(item)


def audio(item: np.ndarray | Features) -> np.ndarray:
    if isinstance(item, Features):  # a prepared item meets unprepared ones only by a mistake here
        raise TypeError("features and audio in one batch")
    return item


def _seconds(value: Any, duration: float) -> float:
    """A time from generate() in seconds, within the audio (a last window's timestamps may overshoot it)."""
    return round(min(float(value), duration), 2)


def load(model: str, *, device: str, dtype: str, language: str | None = None, task: str | None = None,
         beam_size: int = 1, timestamps: str | None = None, quantize: str | None = None,
         trust_remote_code: bool = False, allow_pickle: bool = False,
         detect_language: bool = False, align: bool = False) -> WhisperTranscriber | WhisperAligner:
    # Options are checked before the (slow) load: a typo fails at once.
    timestamps = timestamps or "none"
    if timestamps not in TIMESTAMPS:
        raise AsrctlError(f"timestamps={timestamps!r}: expected one of {', '.join(TIMESTAMPS)}")
    if task is not None and task not in TASKS:
        raise AsrctlError(f"task={task!r}: expected one of {', '.join(TASKS)}")
    if language is not None:
        language_code(language)
    if int(beam_size) < 1:
        raise AsrctlError(f"beam_size must be at least 1, got {beam_size}")
    int8 = check_quantize(quantize, device=device, dtype=dtype)
    dtype_ = torch_dtype(dtype)
    processor = from_pretrained(AutoProcessor, model, trust_remote_code=trust_remote_code)
    # Word times (and alignment) need cross-attention weights, which SDPA does not return.
    attention = {"attn_implementation": "eager"} if timestamps == "word" or align else {}
    loaded = load_model(AutoModelForSpeechSeq2Seq, model, device=device, dtype=dtype, quantize=int8,
                        trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, **attention)
    prompt = prompt_options(loaded.generation_config, model, language, task)
    if align:
        return WhisperAligner(loaded, processor, device=device, dtype=dtype_, language=prompt.get("language"),
                              multilingual=is_multilingual(loaded.generation_config), name=model)
    return WhisperTranscriber(loaded, processor, device=device, dtype=dtype_, prompt=prompt,
                              beam_size=int(beam_size), timestamps=timestamps, detect=bool(detect_language),
                              name=model)
