"""Loading shared by the hf backends: dtype names, errors that name the model, int8 quantisation.

Imported only when a backend is loaded: it imports torch.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import torch

from asrctl import AsrctlError

SAMPLE_RATE = 16000
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
QUANTIZE = ("none", "int8")
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


def load_error(model: str, exc: Exception) -> AsrctlError:
    """One line naming the model, instead of transformers' multi-line OSError."""
    if not Path(model).expanduser().exists() and not _HUB_ID.fullmatch(model):
        reason = "no such folder"
    else:
        reason = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return AsrctlError(f"cannot load model {model!r}: {reason}")


def from_pretrained(auto_class: Any, model: str, *, trust_remote_code: bool, **kwargs: Any) -> Any:
    """`auto_class.from_pretrained(model)`, with a failure to find or read it as one line."""
    try:
        return auto_class.from_pretrained(model, **remote_code(trust_remote_code), **kwargs)
    except (OSError, ValueError) as exc:  # missing files or hub id; a checkpoint of another model family
        raise load_error(model, exc) from exc


def load_model(auto_class: Any, model: str, *, device: str, dtype: str, quantize: bool,
               trust_remote_code: bool, **kwargs: Any) -> torch.nn.Module:
    """The model on `device`, in eval mode, int8-quantised if asked.

    transformers 5 picks SDPA attention when the model supports it and falls back to eager
    otherwise, so no attn_implementation is passed unless a caller needs a specific one.
    """
    loaded = from_pretrained(auto_class, model, trust_remote_code=trust_remote_code, dtype=torch_dtype(dtype), **kwargs)
    loaded = loaded.to(device).eval()
    if quantize:
        with warnings.catch_warnings():
            # torch.ao.quantization is deprecated in favour of torchao, which is not a dependency here.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
            loaded = torch.ao.quantization.quantize_dynamic(loaded, {torch.nn.Linear}, dtype=torch.qint8)
    return loaded
