"""hf-ctc models for training: wav2vec2-style and Parakeet CTC checkpoints, with their vocabulary or a new one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForCTC,
    AutoTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Processor,
)

from asrctl import SAMPLE_RATE, AsrctlError
from asrctl_hf.common import from_pretrained, safe_weights
from asrctl_hf.ctc import load_processor, output_frames, samples_per_frame
from asrctl_hf.training.task import TRAINING_DTYPE, Task, model_overrides
from asrctl_hf.training.trainers import CTCTrainer
from asrctl_hf.training.vocab import Alphabet, build_vocabulary, character_tokenizer

# Attention and feed-forward linears of the encoders: wav2vec2/HuBERT/WavLM name them
# q/k/v/out_proj and intermediate/output_dense, Parakeet's FastConformer q/k/v/o_proj and linear1/2.
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "o_proj", "intermediate_dense", "output_dense",
                "linear1", "linear2")
HEADS = ("lm_head", "ctc_head")  # wav2vec2 family, Parakeet


class CTCTask(Task):
    lora_targets = LORA_TARGETS

    def __init__(self, model: str, *, build_vocab: bool, train_texts: Iterable[str], spec_augment: bool | None,
                 allow_pickle: bool = False) -> None:
        self.feature_extractor = from_pretrained(AutoFeatureExtractor, model, trust_remote_code=False)
        config = from_pretrained(AutoConfig, model, trust_remote_code=False)
        # CTC loss averaged over the batch, as transformers' CTC example trains (the configs default to a sum);
        # an impossible alignment contributes nothing instead of an infinite loss.
        overrides = {"ctc_loss_reduction": "mean", "ctc_zero_infinity": True, **model_overrides(config, spec_augment)}
        if build_vocab or not _has_tokenizer(model):
            if not isinstance(self.feature_extractor, Wav2Vec2FeatureExtractor):
                raise AsrctlError(f"{model}: a new character vocabulary needs a wav2vec2-style model (raw audio "
                                  "input); this one has its own tokenizer, so leave data.build_vocab off")
            tokenizer = character_tokenizer(build_vocabulary(train_texts))
            self.processor = Wav2Vec2Processor(feature_extractor=self.feature_extractor, tokenizer=tokenizer)
            # The head is replaced, sized to the new vocabulary.
            overrides |= {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
                          "ignore_mismatched_sizes": True}
            self.vocabulary_built = True
        else:
            self.processor = load_processor(model, trust_remote_code=False)
        self.tokenizer = self.processor.tokenizer
        self.alphabet = Alphabet(self.tokenizer)
        self.model = from_pretrained(AutoModelForCTC, model, trust_remote_code=False, dtype=TRAINING_DTYPE,
                                     **safe_weights(allow_pickle), **overrides)
        self.samples_per_frame = samples_per_frame(self.model.config, self.feature_extractor)
        self.head = next(name for name in HEADS if hasattr(self.model, name))

    def make_trainer(self, **kwargs: Any) -> CTCTrainer:
        return CTCTrainer(output_frames=self.output_frames, blank_id=self.pad_id, **kwargs)

    def labels(self, text: str) -> list[int]:
        return self.tokenizer(self.alphabet.fit(text)).input_ids

    def output_frames(self, n_samples: int) -> int:
        return output_frames(self.model, n_samples, self.samples_per_frame)

    def unfit(self, duration: float, labels: list[int]) -> str | None:
        if not labels:
            return "no characters the model's vocabulary can spell"
        if len(labels) > self.output_frames(round(duration * SAMPLE_RATE)):  # CTC emits at most one label a frame
            return "more labels than the model's output frames"
        return None

    def features(self, audio: np.ndarray) -> dict[str, Any]:
        # The length in samples lets validation drop the frames of padding before decoding.
        return {**super().features(audio), "input_lengths": len(audio)}

    def decode(self, ids: np.ndarray) -> list[str]:
        return [text.strip() for text in self.processor.batch_decode(ids)]

    @property
    def new_modules(self) -> list[str]:
        return [self.head] if self.vocabulary_built else []

    def freeze_encoder(self) -> None:
        for name, parameter in self.model.named_parameters():
            parameter.requires_grad = name.startswith(f"{self.head}.")


def _has_tokenizer(model: str) -> bool:
    """False for a pretrained-only encoder (wav2vec2-base has no vocabulary)."""
    try:
        AutoTokenizer.from_pretrained(model)
    except (OSError, TypeError, ValueError):  # transformers 5 fails with a TypeError when there are no tokenizer files
        return False
    return True
