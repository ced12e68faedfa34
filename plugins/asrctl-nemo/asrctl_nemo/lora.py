"""LoRA for NeMo's Conformer encoders, with peft (NeMo has no ASR LoRA of its own).

An adapter folder holds adapter_model.safetensors (the LoRA weights only), adapter_config.json
(rank, alpha, dropout, target modules and the base model) and the run's files; `asrctl infer -m
FOLDER` loads the base model, puts the same adapters on it, loads their weights and folds them in;
`--merge` writes that folded model as merged/model.nemo.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from asrctl import AsrctlError
from asrctl.api import AtomicWriter

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
KIND = "asrctl-nemo-lora"
# Conformer self-attention projections and feed-forward layers (relative position projection excluded).
TARGETS = ["linear_q", "linear_k", "linear_v", "linear_out", "linear1", "linear2"]
DEFAULT_RANK = 16


def settings(lora: dict[str, Any]) -> dict[str, Any]:
    rank = int(lora.get("r") or DEFAULT_RANK)
    return {"r": rank, "alpha": float(lora.get("alpha") or 2 * rank),
            "dropout": float(lora["dropout"]) if lora.get("dropout") is not None else 0.05,
            "target_modules": lora.get("target_modules") or TARGETS}


def add_adapters(asr: Any, config: dict[str, Any]) -> None:
    """LoRA adapters on the encoder's linears; every other weight frozen."""
    import torch
    from peft import LoraConfig, inject_adapter_in_model

    inject_adapter_in_model(LoraConfig(r=config["r"], lora_alpha=config["alpha"], lora_dropout=config["dropout"],
                                       target_modules=config["target_modules"]), asr.encoder)
    for name, parameter in asr.named_parameters():
        parameter.requires_grad = "lora_" in name
    for module in asr.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            # Conformer convolutions' batch norms would otherwise keep updating the base model's running
            # statistics in training mode; with momentum 0 they stay the base model's.
            module.momentum = 0.0


def save_adapter(asr: Any, config: dict[str, Any], base_model: str, folder: Path) -> None:
    from safetensors.torch import save_file

    weights = {name: tensor.detach().cpu().contiguous() for name, tensor in asr.state_dict().items() if "lora_" in name}
    save_file(weights, str(folder / WEIGHTS))
    base = str(Path(base_model).resolve()) if Path(base_model).exists() else base_model
    with AtomicWriter(folder / CONFIG) as f:
        json.dump({"kind": KIND, "base_model": base, **config}, f, indent=2)


def is_adapter(model: str) -> bool:
    path = Path(model).expanduser() / CONFIG
    return path.is_file() and json.loads(path.read_text()).get("kind") == KIND


def read_config(folder: str) -> dict[str, Any]:
    return json.loads((Path(folder).expanduser() / CONFIG).read_text())


def load_adapter(asr: Any, folder: str) -> None:
    """The folder's adapters on `asr` (its base model), merged into the weights for inference."""
    from safetensors.torch import load_file

    config = read_config(folder)
    add_adapters(asr, config)
    weights = load_file(str(Path(folder).expanduser() / WEIGHTS))
    missing = set(weights) - set(asr.state_dict())
    if missing:
        raise AsrctlError(f"{folder}: the adapter does not fit its base model ({len(missing)} unknown weights)")
    asr.load_state_dict(weights, strict=False)
    fold(asr)


def fold(asr: Any) -> None:
    """Each adapter merged into its layer's weights and the peft wrapper taken out: a plain NeMo model."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(asr.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent, _, child = name.rpartition(".")
            setattr(asr.get_submodule(parent), child, module.get_base_layer())
