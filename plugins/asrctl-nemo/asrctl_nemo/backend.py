"""The `nemo` backend: any NeMo ASRModel: hybrid RNNT/CTC FastConformers, Parakeet CTC, RNNT and
TDT, and multitask Canary models (asrctl_nemo.multitask).

Audio reaches the model as tensors (the engine has decoded it), through the model's own
preprocessor and encoder, then the RNNT or the CTC head decodes greedily in batch. A batch that
raises is retried by the engine in halves, so one bad utterance fails only its own row.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from asrctl import SAMPLE_RATE, AsrctlError, Transcript
from asrctl.api import padded_batch
from asrctl_nemo import kinds, multitask
from asrctl_nemo.align import NemoAligner
from asrctl_nemo.results import transcripts

DECODERS = ("rnnt", "ctc")
# Beyond this, full self-attention over the whole utterance needs memory quadratic in its length:
# switch FastConformer to local attention (NeMo's rel_pos_local_attn), as NeMo advises for long audio.
LOCAL_ATTENTION_SECONDS = 600.0
LOCAL_CONTEXT = [128, 128]  # encoder frames each side (80 ms each in FastConformer): about 10 s


@contextlib.contextmanager
def quiet_nemo(verbose: bool = False, *, streams: bool = True) -> Iterator[None]:
    """NeMo logs pages at INFO while importing and loading: kept out of the way unless asked for
    (-O verbose=true); a failure still surfaces as the backend's one-line error. With `streams`,
    what is printed (not logged) is held back too; without, asrctl's own progress bar can show."""
    if verbose:
        yield
        return
    captured = io.StringIO()
    levels = {name: logging.getLogger(name).level for name in ("nemo_logger", "nemo", "lightning", "pytorch_lightning")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        if streams:
            with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
                yield
        else:
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def load(model: str, *, device: str, dtype: str, decoder: str | None = None, timestamps: str | None = None,
         allow_pickle: bool = False, verbose: bool = False, language: str | None = None, task: str | None = None,
         target_language: str | None = None, beam_size: int | None = None,
         pnc: bool | None = None, align: bool = False) -> NemoTranscriber | multitask.PromptedTranscriber | NemoAligner:
    if decoder is not None and decoder not in DECODERS:
        raise AsrctlError(f"decoder={decoder!r}: expected one of {', '.join(DECODERS)}")
    if timestamps not in (None, "word", "segment"):
        raise AsrctlError(f"timestamps={timestamps!r}: expected word or segment")
    multitask.check_options(task=task, target_language=target_language, pnc=pnc)
    prompted = {"--language": language, "--task": task, "--target-language": target_language,
                "--beam-size": beam_size, "-O pnc": pnc}
    check_kind(kinds.local_kind(model), model, prompted, decoder)  # a local file's kind is known before it loads
    with quiet_nemo(verbose):
        asr = load_model(model, device=device, allow_pickle=allow_pickle)
        asr.eval()
        kind = kinds.kind(asr.cfg)
        check_kind(kind, model, prompted, decoder)
        if align:
            if kind == "multitask":
                raise AsrctlError(f"{model} is a multitask (Canary) model: it cannot align (a CTC or hybrid "
                                  "RNNT/CTC model can)")
            return NemoAligner(asr, device=device, name=model)
        if kind == "multitask":
            return multitask.PromptedTranscriber(asr, device=device, dtype=dtype, name=model, language=language,
                                                 target_language=target_language, pnc=pnc, timestamps=timestamps,
                                                 beam_size=int(beam_size or 1))
        decoder = decoder or heads(asr)[0]  # RNNT where the model has it, as NeMo decodes by default
        use_decoder(asr, decoder, timestamps=bool(timestamps))
    return NemoTranscriber(asr, device=device, dtype=dtype, decoder=decoder, timestamps=timestamps)


def check_kind(kind: str | None, model: str, prompted: dict[str, Any], decoder: str | None) -> None:
    """Options for one kind of model refused, in one line, for the others."""
    if kind is None:
        return
    if kind == "multitask" and decoder is not None:
        raise AsrctlError(f"-O decoder={decoder}: {model} is a multitask (Canary) model, with one decoder")
    given = [flag for flag, value in prompted.items() if value is not None]
    if kind != "multitask" and given:
        raise AsrctlError(f"{model} is {kinds.NAMES[kind]} model: {', '.join(given)} "
                          f"{'is' if len(given) == 1 else 'are'} for multitask (Canary) models")


def check_model(model: str, *, allow_pickle: bool) -> None:
    """Mistakes in `--model` found without importing NeMo: a local path that is not a .nemo file or
    an adapter folder, or a .nemo file without --allow-pickle (for an adapter, its base model's)."""
    from asrctl_nemo import lora

    if lora.is_adapter(model):
        check_model(lora.read_config(model)["base_model"], allow_pickle=allow_pickle)
        return
    local = Path(model).expanduser()
    if local.suffix == ".nemo" or local.exists():
        if not local.is_file():
            what = "not a .nemo file nor a LoRA adapter folder" if local.exists() else "no such .nemo file"
            raise AsrctlError(f"cannot load model {model!r}: {what}")
        if not allow_pickle:
            # A .nemo archive's weights are a torch pickle: loading one runs whatever its maker put in it.
            raise AsrctlError(f"{model}: a .nemo archive holds pickle-based weights, which can run code when "
                              "loaded: pass --allow-pickle if you trust where it came from")


def load_model(model: str, *, device: str, allow_pickle: bool) -> Any:
    """The ASRModel in a .nemo file, published under a pretrained name, or a LoRA adapter folder's
    base model with the adapter merged in, on `device`."""
    from asrctl_nemo import lora

    if lora.is_adapter(model):  # the base model's own call checks it
        asr = load_model(lora.read_config(model)["base_model"], device=device, allow_pickle=allow_pickle)
        lora.load_adapter(asr, model)
        return asr
    check_model(model, allow_pickle=allow_pickle)
    local = Path(model).expanduser()
    import torch
    from nemo.collections.asr.models import ASRModel

    try:
        if local.is_file():
            return ASRModel.restore_from(str(local), map_location=torch.device(device))
        return ASRModel.from_pretrained(model, map_location=torch.device(device))  # published by NVIDIA
    except Exception as exc:  # NeMo raises many kinds; one line naming the model
        reason = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise AsrctlError(f"cannot load model {model!r}: {reason}") from None


def heads(asr: Any) -> tuple[str, ...]:
    """The decoders a model has: a hybrid has both, a transducer rnnt, a CTC model ctc."""
    has_ctc = hasattr(asr, "ctc_decoder") or not hasattr(asr, "joint")
    return (*(("rnnt",) if hasattr(asr, "joint") else ()), *(("ctc",) if has_ctc else ()))


def use_decoder(asr: Any, decoder: str, *, timestamps: bool = False) -> None:
    """Greedy batched decoding with the chosen head (and word and segment times, if asked for)."""
    from omegaconf import open_dict

    if decoder not in heads(asr):
        raise AsrctlError(f"decoder={decoder}: this model has only {' and '.join(heads(asr))}")
    hybrid = hasattr(asr, "ctc_decoder") and hasattr(asr, "joint")
    source = asr.cfg.aux_ctc.decoding if hybrid and decoder == "ctc" else asr.cfg.decoding
    config = source.copy()
    with open_dict(config):
        config.strategy = "greedy_batch"
        config.compute_timestamps = timestamps
    if hybrid:
        asr.change_decoding_strategy(decoding_cfg=config, decoder_type=decoder, verbose=False)
    else:
        asr.change_decoding_strategy(decoding_cfg=config, verbose=False)


class NemoTranscriber:
    item_settings: frozenset[str] = frozenset()  # the prompt of a multitask model takes them; a head does not

    def __init__(self, asr: Any, *, device: str, dtype: str, decoder: str, timestamps: str | None = None) -> None:
        import torch

        self.asr = asr
        self.device = torch.device(device)
        self.decoder = decoder
        self.timestamps = timestamps
        # Timestamps come as encoder frames: the feature hop times the encoder's subsampling.
        self.frame_seconds = float(asr.cfg.preprocessor.window_stride) * getattr(asr.encoder, "subsampling_factor", 1)
        # Mixed precision for the encoder on GPUs; decoding stays in float32, as NeMo's own transcribe does.
        self.autocast = (torch.autocast("cuda", dtype=getattr(torch, dtype)) if self.device.type == "cuda"
                         and dtype != "float32" else contextlib.nullcontext())
        self.local_attention = False

    def transcribe(self, batch: list[np.ndarray]) -> list[Transcript]:
        import torch

        signal, lengths = padded_batch(batch, self.device)
        self._attention_for(signal.shape[1] / SAMPLE_RATE)
        with torch.inference_mode():
            with self.autocast:
                outputs = self.asr.forward(input_signal=signal, input_signal_length=lengths)
            if not hasattr(self.asr, "joint"):  # a CTC model: its forward gives log-probabilities already
                result = self.asr.decoding.ctc_decoder_predictions_tensor(
                    outputs[0].float(), decoder_lengths=outputs[1], return_hypotheses=bool(self.timestamps))
            elif self.decoder == "ctc":  # the CTC head of a hybrid, on the encoder's output
                log_probs = self.asr.ctc_decoder(encoder_output=outputs[0].float())
                result = self.asr.ctc_decoding.ctc_decoder_predictions_tensor(
                    log_probs, decoder_lengths=outputs[1], return_hypotheses=bool(self.timestamps))
            else:
                result = self.asr.decoding.rnnt_decoder_predictions_tensor(
                    encoder_output=outputs[0].float(), encoded_lengths=outputs[1],
                    return_hypotheses=bool(self.timestamps))
        return transcripts(result, [len(audio) / SAMPLE_RATE for audio in batch], frame_seconds=self.frame_seconds,
                           timestamps=self.timestamps)

    def _attention_for(self, seconds: float) -> None:
        """Local attention for very long audio (memory linear in length), full attention otherwise."""
        want = seconds > LOCAL_ATTENTION_SECONDS
        if want == self.local_attention or not hasattr(self.asr, "change_attention_model"):
            return
        encoder = getattr(self.asr, "encoder", None)
        if encoder is None or getattr(encoder, "self_attention_model", None) not in ("rel_pos", "rel_pos_local_attn"):
            return
        with quiet_nemo():
            if want:
                self.asr.change_attention_model("rel_pos_local_attn", LOCAL_CONTEXT)
            else:
                self.asr.change_attention_model("rel_pos", [-1, -1])
        self.local_attention = want
