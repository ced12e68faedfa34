"""What a local model folder or file holds, read from its files without importing transformers, so
that a model given to the wrong backend fails at once with the backend to use."""

from __future__ import annotations

import json
from pathlib import Path

from asrctl import AsrctlError

# config.json model types of CTC acoustic models transformers' AutoModelForCTC loads.
CTC_TYPES = frozenset({"wav2vec2", "wav2vec2-conformer", "wav2vec2-bert", "hubert", "wavlm", "data2vec-audio",
                       "sew", "sew-d", "unispeech", "unispeech-sat", "mctct", "parakeet_ctc"})
# What a transformers folder needs beside config.json, each as the file names that provide it.
NEEDED = {
    "weights (model.safetensors)": ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin"),
    "the feature extractor's preprocessor_config.json": ("preprocessor_config.json", "processor_config.json"),
}
FAMILIES = {"hf-whisper": "a Whisper model", "hf-ctc": "a CTC model", "faster-whisper": "a CTranslate2 model",
            "nemo": "a NeMo model"}


def backend_for(model: str) -> str | None:
    """The backend that loads the local `model`, where its files tell; "" for a folder with no model."""
    path = Path(model).expanduser()
    if path.is_file():
        return "nemo" if path.suffix == ".nemo" else None
    if not path.is_dir() or (path / "adapter_config.json").is_file():  # a hub id; an adapter names its base
        return None
    config = path / "config.json"
    if (path / "model.bin").is_file() and not any(path.glob("*.safetensors")):
        return "faster-whisper"  # CTranslate2's layout: model.bin, config.json without a model_type
    if not config.is_file():
        return ""
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None  # transformers says what is wrong with it
    return "hf-whisper" if model_type == "whisper" else "hf-ctc" if model_type in CTC_TYPES else None


def check(backend: str, model: str) -> None:
    found = backend_for(model)
    if found == "":
        raise AsrctlError(f"-m {model}: not a model folder (no config.json): give the folder that holds the "
                          "model's config.json and weights, or a hub id")
    if found is not None and found != backend:
        raise AsrctlError(f"-m {model}: {FAMILIES[found]}, which -b {backend} does not load: use -b {found}")
    if found in ("hf-whisper", "hf-ctc"):
        folder = Path(model).expanduser()
        missing = [what for what, names in NEEDED.items() if not any(any(folder.glob(name)) for name in names)]
        if missing:
            raise AsrctlError(f"-m {model}: {FAMILIES[found]} folder without {' and '.join(missing)}: give the "
                              "folder save_pretrained wrote for both the model and its processor (a copy of the "
                              "base model's processor files will do)")

