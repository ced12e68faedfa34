"""NeMo's multitask models (Canary: EncDecMultiTaskModel), an attention encoder-decoder whose decoder
reads a prompt before the text: source language, target language, punctuation and, in the canary2
format, timestamps. Each utterance gets its own prompt, so one batch holds rows of many languages
(--language-key) and rows translated to different languages (--target-language-key).

The prompt is built through the model's own prompt formatter from its defaults (`prompt_defaults`
in its config), the slots asrctl sets filled in. Prompts of different lengths are decoded apart:
NeMo's decoding takes them right-padded, and reads the padding as prompt.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from asrctl import SAMPLE_RATE, AsrctlError, Transcript
from asrctl.api import padded_batch
from asrctl_nemo.results import best, transcripts

TASKS = ("transcribe", "translate")
# What a prompt slot that asrctl does not set takes where the model's prompt_defaults leave it empty.
FALLBACK_SLOTS = {"decodercontext": "", "emotion": "<|emo:undefined|>", "pnc": "yes", "itn": "no", "diarize": "no"}
SPECIAL_TOKENIZER = "spl_tokens"  # the aggregate tokenizer's part that holds the prompt tokens


def check_options(*, task: str | None, target_language: str | None, pnc: Any) -> None:
    """Mistakes found before the model loads."""
    if task is not None and task not in TASKS:
        raise AsrctlError(f"task={task!r}: expected one of {', '.join(TASKS)}")
    if task == "translate" and target_language is None:
        raise AsrctlError("--task translate needs --target-language (rows may set their own with "
                          "--target-language-key)")
    if task == "transcribe" and target_language is not None:
        raise AsrctlError("--target-language is the language to translate to: give it with --task translate")
    if pnc is not None and not isinstance(pnc, bool):
        raise AsrctlError(f"-O pnc={pnc}: expected true or false")


class PromptedTranscriber:
    """A multitask model decoding each utterance after its own prompt."""

    item_settings = frozenset({"language", "target_language"})

    def __init__(self, asr: Any, *, device: str, dtype: str, name: str, language: str | None,
                 target_language: str | None, pnc: bool | None, timestamps: str | None, beam_size: int) -> None:
        import torch

        self.asr = asr
        self.name = name
        self.device = torch.device(device)
        self.languages = [code for code in getattr(asr.tokenizer, "langs", []) if code != SPECIAL_TOKENIZER]
        [self.turn] = asr.prompt.get_default_dialog_slots()
        self.slots = self.turn["slots"]
        if timestamps and "timestamp" not in self.slots and asr.timestamps_asr_model is None:
            raise AsrctlError(f"{name}: this model's prompt has no timestamps (--timestamps)")
        self.language = self.known(language or self._default("source_lang") or "en")
        self.target_language = self.known(target_language) if target_language else None
        self.pnc = pnc
        self.timestamps = timestamps
        self.frame_seconds = float(asr.cfg.preprocessor.window_stride) * asr.encoder.subsampling_factor
        self.autocast = (torch.autocast("cuda", dtype=getattr(torch, dtype)) if self.device.type == "cuda"
                         and dtype != "float32" else contextlib.nullcontext())
        self.prompts: dict[tuple[str, str], list[int]] = {}
        use_beam(asr, beam_size)

    def known(self, language: str) -> str:
        """A language code the model's tokenizer has, else one line naming those it has."""
        code = language.strip().removeprefix("<|").removesuffix("|>")
        if self.languages and code not in self.languages:
            raise AsrctlError(f"{self.name} does not know language {language!r} (it knows {', '.join(self.languages)})")
        return code

    def transcribe(self, batch: list[np.ndarray], language: list[str | None] | None = None,
                   target_language: list[str | None] | None = None) -> list[Transcript]:
        import torch

        count = len(batch)
        sources = [self.known(code) if code else self.language for code in language or [None] * count]
        targets = [self.known(code) if code else self.target_language or source
                   for code, source in zip(target_language or [None] * count, sources)]
        prompts = [self.prompt(source, target) for source, target in zip(sources, targets)]
        signal, lengths = padded_batch(batch, self.device)
        hypotheses: list[Any] = [None] * count
        with torch.inference_mode():
            with self.autocast:
                _, frames, states, mask = self.asr.forward(input_signal=signal, input_signal_length=lengths)
            groups: dict[int, list[int]] = {}
            for i, prompt in enumerate(prompts):
                groups.setdefault(len(prompt), []).append(i)
            for indices in groups.values():
                index = torch.tensor(indices, device=self.device)
                longest = int(frames[index].max())
                found = self.asr.decoding.decode_predictions_tensor(
                    encoder_hidden_states=states[index, :longest].float(), encoder_input_mask=mask[index, :longest],
                    decoder_input_ids=torch.tensor([prompts[i] for i in indices], device=self.device),
                    return_hypotheses=True)
                for i, hypothesis in zip(indices, self._timed(best(found, len(indices)), [batch[i] for i in indices])):
                    hypotheses[i] = hypothesis
        results = transcripts(hypotheses, [len(audio) / SAMPLE_RATE for audio in batch],
                              frame_seconds=self.frame_seconds, timestamps=self.timestamps)
        for transcript, source in zip(results, sources):
            transcript.language = source
        return results

    def prompt(self, source: str, target: str) -> list[int]:
        """The prompt's token ids for audio in `source` decoded into `target`."""
        if (source, target) not in self.prompts:
            given = {"source_lang": source, "target_lang": target,
                     "task": "transcribe" if source == target else "translate",  # the canary (1) format's slot
                     "pnc": None if self.pnc is None else "yes" if self.pnc else "no",
                     "timestamp": "yes" if self.timestamps else "no"}
            slots = {}
            for name, default in self.slots.items():
                value = next((v for v in (given.get(name), default, FALLBACK_SLOTS.get(name)) if v is not None), None)
                if value is None:
                    raise AsrctlError(f"{self.name}: its prompt's slot {name!r} has no default that asrctl knows")
                slots[name] = value
            encoded = self.asr.prompt.encode_dialog([{"role": self.turn["role"], "slots": slots}])
            self.prompts[source, target] = encoded["context_ids"].tolist()
        return self.prompts[source, target]

    def _default(self, slot: str) -> str | None:
        value = self.slots.get(slot)
        return value.removeprefix("<|").removesuffix("|>") if value else None

    def _timed(self, hypotheses: list[Any], audios: list[np.ndarray]) -> list[Any]:
        """Word and segment times, as NeMo's transcribe() finds them: from the model's timestamp
        tokens, or by forced alignment with the CTC model that a model such as Canary-1b-v2 carries."""
        if not self.timestamps:
            return hypotheses
        import torch
        from nemo.collections.asr.parts.utils.timestamp_utils import (
            get_forced_aligned_timestamps_with_external_model,
            process_aed_timestamp_outputs,
        )

        if self.asr.timestamps_asr_model is not None:
            return get_forced_aligned_timestamps_with_external_model(
                audio=[torch.from_numpy(audio) for audio in audios], batch_size=len(audios),
                external_ctc_model=self.asr.timestamps_asr_model, main_model_predictions=hypotheses,
                timestamp_type=["word", "segment"], viterbi_device=self.device)
        return process_aed_timestamp_outputs(hypotheses, self.asr.encoder.subsampling_factor,
                                             self.asr.cfg.preprocessor.window_stride)


def use_beam(asr: Any, beam_size: int) -> None:
    """Greedy decoding, or beam search `beam_size` wide."""
    from omegaconf import open_dict

    config = asr.cfg.decoding.copy()
    with open_dict(config):
        config.strategy = "greedy" if beam_size == 1 else "beam"
        config.beam.beam_size = beam_size
    asr.change_decoding_strategy(decoding_cfg=config)
