"""Loading shared by the hf backends: dtype names, errors that name the model, int8 quantisation,
and LoRA adapter folders (what `asrctl finetune --peft lora` writes) on their base model.

Imported only when a backend is loaded: it imports torch.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from asrctl import AsrctlError
from asrctl.api import offline_advice, unreachable

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
QUANTIZE = ("none", "int8")
ADAPTER_CONFIG = "adapter_config.json"  # marks a peft adapter folder
# What the hub accepts as a repo id; anything else that is not a folder is a path that does not exist.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def torch_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise AsrctlError(f"dtype {name!r} is not one of {', '.join(DTYPES)}")
    return DTYPES[name]


def remote_code(trust_remote_code: bool) -> dict[str, bool]:
    """from_pretrained keyword for custom model code: passed only when the user asked for it."""
    return {"trust_remote_code": True} if trust_remote_code else {}


def check_quantize(quantize: str | None, *, device: str, dtype: str) -> bool:
    """Whether to quantise to int8; a setting that cannot work raises before anything is loaded."""
    if quantize in (None, "none"):
        return False
    if quantize not in QUANTIZE:
        raise AsrctlError(f"quantize={quantize!r}: expected one of {', '.join(QUANTIZE)}")
    if device != "cpu":
        raise AsrctlError(f"quantize=int8 is dynamic CPU quantisation; it cannot run on {device} (use --device cpu)")
    if dtype != "float32":
        raise AsrctlError(f"quantize=int8 quantises float32 weights, not {dtype} (use --dtype float32)")
    return True


def safe_weights(allow_pickle: bool) -> dict[str, bool]:
    """from_pretrained keyword that refuses pickle-based weights (unpickling can run code)."""
    return {} if allow_pickle else {"use_safetensors": True}


def missing_folder(model: str) -> bool:
    """A model named by a path that does not exist (and that cannot be a hub id)."""
    return not Path(model).expanduser().exists() and not _HUB_ID.fullmatch(model)


def load_error(model: str, exc: Exception) -> AsrctlError:
    """One line naming the model, instead of transformers' multi-line OSError."""
    if missing_folder(model):
        reason = "no such folder"
    elif unreachable():
        reason = offline_advice(model)
    elif isinstance(exc, SafetensorError):
        reason = f"its weights cannot be read ({exc}): the file is damaged or cut short (an unfinished copy?)"
    elif "safetensors" in str(exc) and "model.safetensors" in str(exc):
        reason = ("it has no safetensors weights, only pickle-based ones (pytorch_model.bin), which can run code "
                  "when loaded: pass --allow-pickle if you trust where it came from")
    else:
        reason = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return AsrctlError(f"cannot load model {model!r}: {reason}")


def from_pretrained(auto_class: Any, model: str, *, trust_remote_code: bool, **kwargs: Any) -> Any:
    """`auto_class.from_pretrained(model)`, with a failure to find or read it as one line."""
    try:
        return auto_class.from_pretrained(model, **remote_code(trust_remote_code), **kwargs)
    except (OSError, ValueError, SafetensorError) as exc:  # missing files or hub id; another model family; damage
        raise load_error(model, exc) from exc


def is_adapter(model: str) -> bool:
    return (Path(model).expanduser() / ADAPTER_CONFIG).is_file()


def load_adapted(auto_class: Any, folder: str, *, trust_remote_code: bool, **kwargs: Any) -> torch.nn.Module:
    """A peft adapter folder on its base model (adapter_config.json's base_model_name_or_path), merged.

    The trainer saves the trained model's config.json and generation_config.json beside the adapter:
    they win over the base's, so that a CTC head resized to a new vocabulary fits its weights (the
    adapter carries that head in full) and Whisper keeps the language it was tuned for.
    """
    from peft import PeftConfig, PeftModel
    from transformers import AutoConfig, GenerationConfig

    base = PeftConfig.from_pretrained(folder).base_model_name_or_path
    path = Path(folder).expanduser()
    if (path / "config.json").is_file():
        kwargs |= {"config": from_pretrained(AutoConfig, folder, trust_remote_code=trust_remote_code),
                   "ignore_mismatched_sizes": True}
    try:
        with quiet_transformers():  # a replaced head is reported as newly initialised; the adapter fills it
            model = from_pretrained(auto_class, base, trust_remote_code=trust_remote_code, **kwargs)
    except AsrctlError as exc:
        raise AsrctlError(f"{exc} (the base model of adapter {folder})") from exc
    if (path / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(folder)
    return PeftModel.from_pretrained(model, folder).merge_and_unload()


@contextmanager
def quiet_transformers(*, warnings_too: bool = True) -> Iterator[None]:
    """transformers' tqdm bars off for a block (asrctl shows its own progress), and unless
    `warnings_too` is false its warnings too: they speak of internals users cannot act on."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    if warnings_too:
        hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():  # deprecations inside the libraries, for their own developers
            warnings.filterwarnings("ignore", category=FutureWarning, module="transformers|peft")
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_model(auto_class: Any, model: str, *, device: str, dtype: str, quantize: bool,
               trust_remote_code: bool, allow_pickle: bool = False, **kwargs: Any) -> torch.nn.Module:
    """The model on `device`, in eval mode, int8-quantised if asked; from safetensors unless `allow_pickle`.

    transformers 5 picks SDPA attention when the model supports it and falls back to eager
    otherwise, so no attn_implementation is passed unless a caller needs a specific one.
    """
    load = load_adapted if is_adapter(model) else from_pretrained
    with quiet_transformers(warnings_too=False):  # its "Loading weights" bar; warnings about weights stay
        loaded = load(auto_class, model, trust_remote_code=trust_remote_code, dtype=torch_dtype(dtype),
                      **safe_weights(allow_pickle), **kwargs)
    loaded = loaded.to(device).eval()
    if quantize:
        with warnings.catch_warnings():
            # torch.ao.quantization is deprecated in favour of torchao, which is not a dependency here.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
            torch.ao.quantization.quantize_dynamic(int8_part(loaded), {torch.nn.Linear}, dtype=torch.qint8,
                                                   inplace=True)
    return loaded


def int8_part(model: torch.nn.Module) -> torch.nn.Module:
    """What --quantize int8 quantises: a Whisper's encoder, other models whole. On Whisper base either
    half alone in int8 costs little accuracy and both together much; the encoder, run over the whole
    30-s window, is where int8 saves the most time (docs/benchmarks.md, "CPU serving")."""
    return model.model.encoder if model.config.model_type == "whisper" else model
