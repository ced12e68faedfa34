"""`asrctl export -b hf-whisper --to faster-whisper`: a Whisper model (a fine-tuned folder, or a LoRA
adapter merged on the way) in CTranslate2's layout, through ctranslate2's own converter."""

from __future__ import annotations

import tempfile
from pathlib import Path

from asrctl import AsrctlError

# What ctranslate2 can store weights as; faster-whisper's compute_type then chooses how it computes.
CT2_QUANTIZATIONS = ("float32", "float16", "bfloat16", "int8", "int8_float16", "int8_bfloat16", "int16")
# What faster-whisper reads beside model.bin: the tokenizer, and the feature extractor's settings.
CT2_FILES = ("tokenizer.json", "preprocessor_config.json")


def export_ctranslate2(model: str, out: Path, *, quantize: str | None = None, allow_pickle: bool = False) -> None:
    try:
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        raise AsrctlError("export to faster-whisper needs ctranslate2: pip install 'asrctl-hf[export]' "
                          "(or pip install ctranslate2)") from None
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

    from asrctl_hf.common import from_pretrained, load_model, quiet_transformers

    loaded = load_model(AutoModelForSpeechSeq2Seq, model, device="cpu", dtype="float32", quantize=False,
                        trust_remote_code=False, allow_pickle=allow_pickle)
    if loaded.config.model_type != "whisper":
        raise AsrctlError(f"{model}: a {loaded.config.model_type} model; export to faster-whisper takes Whisper models")
    processor = from_pretrained(AutoProcessor, model, trust_remote_code=False)
    with tempfile.TemporaryDirectory(prefix="asrctl-export-") as tmp, quiet_transformers():
        # One plain folder for the converter: an adapter merged, the processor's files beside the weights
        # (the feature extractor's own file too: transformers 5 keeps it inside processor_config.json).
        loaded.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        processor.feature_extractor.save_pretrained(tmp)
        del loaded
        files = [name for name in CT2_FILES if (Path(tmp) / name).is_file()]
        TransformersConverter(tmp, copy_files=files).convert(str(out), quantization=quantize or "float32", force=True)
