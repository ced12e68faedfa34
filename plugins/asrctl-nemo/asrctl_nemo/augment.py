"""asrctl's training augmentation (asrctl.train.augment) inside NeMo's data loading, and SpecAugment on or off."""

from __future__ import annotations

from typing import Any

from nemo.collections.asr.parts.preprocessing.perturb import AudioAugmentor, Perturbation

from asrctl import AsrctlError
from asrctl.api import Augmentation


class Augmented(Perturbation):
    """A NeMo perturbation that passes each training utterance's samples through an Augmentation,
    where NeMo's featurizer decodes them (in the data-loader workers)."""

    def __init__(self, augment: Augmentation) -> None:
        self.augment = augment

    def max_augmentation_length(self, length: float) -> float:
        return length / min(self.augment.speeds, default=1.0)

    def perturb(self, data: Any) -> None:  # a nemo AudioSegment
        data._samples = self.augment(data._samples)


def augment_training_audio(dataset: Any, augment: Augmentation) -> None:
    """Augment what `dataset` (the training one; validation is another) decodes."""
    featurizer = getattr(dataset, "featurizer", None)
    if featurizer is None:
        raise AsrctlError(f"augment: NeMo made a {type(dataset).__name__} for this model's training data, whose audio "
                          "asrctl cannot augment")
    featurizer.augmentor = AudioAugmentor(perturbations=[(1.0, Augmented(augment))])


def switch_spec_augment(asr: Any, on: bool | None) -> None:
    """training.spec_augment: false drops the model's SpecAugment for this training; true needs it to have one."""
    if on is None:
        return
    if on and getattr(asr, "spec_augmentation", None) is None:
        raise AsrctlError(f"training.spec_augment: this {type(asr).__name__} has no SpecAugment in its config")
    if not on:
        asr.spec_augmentation = None
