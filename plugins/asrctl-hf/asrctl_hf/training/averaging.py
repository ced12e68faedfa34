"""--average-last N: the weights of the last N checkpoints averaged into the model that is saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from asrctl import AsrctlError
from asrctl.api import average_weights
from asrctl_hf.training.checkpoints import checkpoints


def average_last(trainer: Any, out: Path, count: int) -> dict[str, Any]:
    """Load the mean of the last `count` checkpoints' weights (the adapter's, with LoRA) into the
    trainer's model and validate it; the checkpoints used and its WER (percent) for the summary."""
    from peft import PeftModel, set_peft_model_state_dict

    used = list(reversed(checkpoints(out)[:count]))  # oldest first
    if len(used) < count:
        raise AsrctlError(f"--average-last {count}: the run wrote {len(used)} checkpoint(s) (one every --eval-steps "
                          "and one at the end): lower --eval-steps or N")
    weights = average_weights(_weights(folder) for folder in used)
    model = trainer.model
    if isinstance(model, PeftModel):
        set_peft_model_state_dict(model, weights)
    else:
        unexpected = model.load_state_dict(weights, strict=False).unexpected_keys
        if unexpected:
            raise AsrctlError(f"{used[0]}: weights this model does not have: {', '.join(unexpected[:5])}")
    wer = trainer.evaluate()["eval_wer"] if trainer.eval_dataset is not None else None
    return {"checkpoints": [str(folder) for folder in used], "val_wer": None if wer is None else 100 * wer}


def _weights(folder: Path) -> dict[str, Any]:
    """A checkpoint's weights: model*.safetensors (shards too), or adapter_model.safetensors with LoRA."""
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise AsrctlError(f"{folder}: no safetensors weights to average")
    return {key: value for file in files for key, value in load_file(file).items()}
