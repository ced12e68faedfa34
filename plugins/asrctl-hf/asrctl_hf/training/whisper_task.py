"""hf-whisper models for training: labels with the language/task prompt, greedy generation for WER."""

from __future__ import annotations

from typing import Any

import numpy as np
from transformers import AutoConfig, AutoModelForSpeechSeq2Seq, AutoProcessor

from asrctl import SAMPLE_RATE
from asrctl_hf.common import from_pretrained, safe_weights
from asrctl_hf.training.task import TRAINING_DTYPE, Task, model_overrides
from asrctl_hf.training.trainers import Seq2SeqSpeechTrainer
from asrctl_hf.whisper import prompt_options


class WhisperTask(Task):
    seq2seq = True
    lora_targets = ("q_proj", "k_proj", "v_proj", "out_proj")  # every attention block: encoder, decoder, cross

    def __init__(self, model: str, *, language: str | None, task: str | None, spec_augment: bool | None,
                 allow_pickle: bool = False) -> None:
        self.processor = from_pretrained(AutoProcessor, model, trust_remote_code=False)
        self.feature_extractor = self.processor.feature_extractor
        self.tokenizer = self.processor.tokenizer
        overrides = model_overrides(from_pretrained(AutoConfig, model, trust_remote_code=False), spec_augment)
        self.model = from_pretrained(AutoModelForSpeechSeq2Seq, model, trust_remote_code=False, dtype=TRAINING_DTYPE,
                                     **safe_weights(allow_pickle), **overrides)
        prompt = prompt_options(self.model.generation_config, model, language, task)
        self.language = prompt.get("language")
        # Labels start with the prompt generate() will give at inference: <|lang|><|task|><|notimestamps|>.
        self.tokenizer.set_prefix_tokens(language=self.language, task=prompt.get("task"), predict_timestamps=False)
        generation = self.model.generation_config
        generation.language, generation.task, generation.forced_decoder_ids = self.language, prompt.get("task"), None
        # Whisper writes a space before every word, the first one too (" The" is one token): so do the labels
        # (a far lower loss before any training: docs/benchmarks.md), unless generation cannot begin with
        # that token (a byte-level vocabulary, whose lone space is suppressed at the start).
        first = self.tokenizer(" a").input_ids[len(self.tokenizer.prefix_tokens)]  # as labels() tokenises
        self.lead = "" if first in (generation.begin_suppress_tokens or ()) else " "
        self.max_seconds = self.feature_extractor.n_samples / SAMPLE_RATE
        self.input_seconds = self.max_seconds  # the encoder takes its whole window, whatever the audio
        self.max_labels = self.model.config.max_target_positions

    def make_trainer(self, **kwargs: Any) -> Seq2SeqSpeechTrainer:
        return Seq2SeqSpeechTrainer(**kwargs)

    def labels(self, text: str) -> list[int]:
        ids = self.tokenizer(self.lead + text.strip()).input_ids
        # The model puts <|startoftranscript|> before the labels itself (decoder_start_token_id).
        return ids[1:] if ids and ids[0] == self.model.config.decoder_start_token_id else ids

    def unfit(self, duration: float, labels: list[int]) -> str | None:
        if duration > self.max_seconds:
            return f"longer than Whisper's {self.max_seconds:g} s window"
        if len(labels) > self.max_labels:
            return f"transcript longer than the decoder's {self.max_labels} positions"
        return None

    def decode(self, ids: np.ndarray) -> list[str]:
        return [text.strip() for text in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def freeze_encoder(self) -> None:
        self.model.freeze_encoder()
