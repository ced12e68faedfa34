"""Resolve `--device auto` and `--dtype auto` to what this machine can do, for inference and training
(imports torch lazily)."""

from __future__ import annotations

from typing import Any

from asrctl.errors import AsrctlError

DTYPES = ("auto", "float32", "float16", "bfloat16")


def resolve_device(device: str) -> str:
    """auto -> cuda:0, mps or cpu; cuda -> cuda:0; anything else is checked and kept."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda:0"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise AsrctlError(f"--device {device}: CUDA is not available on this machine (try --device cpu)")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise AsrctlError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) present")
        return f"cuda:{index}"
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise AsrctlError("--device mps: Apple MPS is not available on this machine")
    if device not in ("cpu", "mps"):
        raise AsrctlError(f"--device {device}: expected auto, cpu, cuda, cuda:N or mps")
    return device


def native_bf16(device: str) -> bool:
    """Whether the CUDA `device` computes bfloat16 in hardware (compute capability 8.0 and newer, and
    ROCm GPUs). torch.cuda.is_bf16_supported() also counts emulation, which runs slower than float16
    on older cards (a T4, a V100), and which CTranslate2 refuses."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return False
    if torch.version.hip:
        return True
    return torch.cuda.get_device_capability(int(device.partition(":")[2] or 0))[0] >= 8


def padded_batch(arrays: list[Any], device: Any) -> tuple[Any, Any]:
    """A batch of mono float32 arrays as one zero-padded (batch, samples) tensor on `device` and their
    lengths: filled in pinned host memory on a GPU, then copied in one go that the host does not
    wait for (a copy per row would be as many transfers, each from pageable memory)."""
    import numpy as np
    import torch

    lengths = [len(array) for array in arrays]
    host = np.zeros((len(arrays), max(lengths)), np.float32)
    for row, array in enumerate(arrays):
        host[row, : len(array)] = array
    signal, counts = torch.from_numpy(host), torch.tensor(lengths)
    if torch.device(device).type == "cuda":
        signal, counts = signal.pin_memory(), counts.pin_memory()
    return signal.to(device, non_blocking=True), counts.to(device, non_blocking=True)


def resolve_dtype(dtype: str, device: str) -> str:
    """auto -> bfloat16 on GPUs that have it natively, float16 on other GPUs, float32 on CPU."""
    if dtype != "auto":
        if device == "cpu" and dtype != "float32":
            from asrctl.progress import stderr

            stderr.print(f"warning: --dtype {dtype} on the CPU runs slower than float32 (CPUs compute half "
                         "precision in software); --dtype auto picks float32 there", style="yellow", highlight=False)
        return dtype
    if device.startswith("cuda"):
        return "bfloat16" if native_bf16(device) else "float16"
    return "float16" if device == "mps" else "float32"
