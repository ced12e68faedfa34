"""What training needs from a model family, and the settings the families share.

A Task holds the model and processor ready for training, turns transcripts into labels, says
which utterances the model cannot learn from, decodes predictions for validation WER, and names
the layers LoRA adapts. ctc_task.py and whisper_task.py implement it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from asrctl import SAMPLE_RATE, AsrctlError

# Weights train in float32 whatever the checkpoint is stored in (transformers 5 loads the stored dtype);
# training.bf16 / fp16 make the arithmetic mixed precision.
TRAINING_DTYPE = torch.float32


class Task(ABC):
    model: Any
    processor: Any  # saved with the model: what `asrctl infer` loads
    feature_extractor: Any
    vocabulary_built: bool = False
    seq2seq: bool = False  # Seq2SeqTrainingArguments, predictions from generate()
    # The length every input is padded to (Whisper's 30-s window), or None: inputs as long as their audio.
    input_seconds: float | None = None
    # Module names LoRA adapts when lora.target_modules is not set.
    lora_targets: tuple[str, ...] = ()

    @abstractmethod
    def make_trainer(self, **kwargs: Any) -> Any:
        """The Trainer for this family, given the Trainer's own arguments."""

    @abstractmethod
    def labels(self, text: str) -> list[int]:
        """The label ids of a transcript."""

    @abstractmethod
    def unfit(self, duration: float, labels: list[int]) -> str | None:
        """Why the model cannot learn from an utterance, or None when it can."""

    @abstractmethod
    def decode(self, ids: np.ndarray) -> list[str]:
        """Transcripts of a batch of predicted ids (padding is the pad token id)."""

    @property
    def pad_id(self) -> int:
        return self.model.config.pad_token_id

    @property
    def new_modules(self) -> list[str]:
        """Modules created for this run (a head for a new vocabulary): trained in full under LoRA too."""
        return []

    def features(self, audio: np.ndarray) -> dict[str, Any]:
        """The model's inputs for one utterance, computed in a DataLoader worker."""
        batch = self.feature_extractor(audio, sampling_rate=SAMPLE_RATE)
        return {key: value[0] for key, value in batch.items()}

    def freeze(self, *, encoder: bool, feature_encoder: bool) -> None:
        """SFT with parts held fixed: the encoder (train the decoder or head), or the conv feature encoder."""
        if feature_encoder:
            if not hasattr(self.model, "freeze_feature_encoder"):
                raise AsrctlError(f"freeze.feature_encoder: {type(self.model).__name__} has no convolutional "
                                  "feature encoder to freeze (wav2vec2-style models have one)")
            self.model.freeze_feature_encoder()
        if encoder:
            self.freeze_encoder()

    @abstractmethod
    def freeze_encoder(self) -> None: ...


def model_overrides(config: Any, spec_augment: bool | None) -> dict[str, Any]:
    """Config settings for from_pretrained that switch SpecAugment on or off; None leaves the config's."""
    if spec_augment is None:
        return {}
    switches = [key for key in ("apply_spec_augment", "mask_time_prob", "mask_feature_prob") if hasattr(config, key)]
    if not switches:
        if spec_augment:
            raise AsrctlError(f"training.spec_augment: {config.model_type} models have no SpecAugment")
        return {}
    if spec_augment:
        return {"apply_spec_augment": True} if "apply_spec_augment" in switches else {}
    return {key: False if key == "apply_spec_augment" else 0.0 for key in switches}
