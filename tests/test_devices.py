"""`--dtype auto` and training precision by what the card computes natively (stubbed CUDA devices)."""

import pytest
import torch

from asrctl.devices import native_bf16, resolve_dtype


@pytest.fixture
def card(monkeypatch):
    """A CUDA device of the given compute capability, as torch reports it; torch.cuda.is_bf16_supported()
    says True on every one of them, as torch 2.13 does where it can emulate bfloat16."""
    def install(major: int, minor: int = 0) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, minor))
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
        monkeypatch.setattr(torch.version, "hip", None)

    return install


@pytest.mark.parametrize(("capability", "dtype"), [((7, 5), "float16"), ((7, 0), "float16"), ((8, 0), "bfloat16"),
                                                   ((9, 0), "bfloat16")])
def test_auto_is_bfloat16_only_where_the_card_has_it_natively(card, capability, dtype):
    card(*capability)  # a T4 is 7.5, a V100 7.0, an A100 8.0, an H100 9.0
    assert native_bf16("cuda:0") is (dtype == "bfloat16")
    assert resolve_dtype("auto", "cuda:0") == dtype
    assert resolve_dtype("auto", "cpu") == "float32"


@pytest.mark.parametrize(("capability", "given", "expected"), [
    ((8, 0), {}, {"bf16": True, "tf32": True}),
    ((7, 5), {}, {"fp16": True}),
    (None, {}, {}),
    ((8, 0), {"fp16": True}, {}),  # the recipe's choice stands
    ((8, 0), {"tf32": False}, {"bf16": True}),
])
def test_the_hf_trainer_trains_in_mixed_precision_on_a_gpu_unless_the_recipe_says(card, monkeypatch, capability,
                                                                                    given, expected):
    from asrctl_hf.training.settings import mixed_precision

    if capability:
        card(*capability)
    else:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert mixed_precision(given) == expected


@pytest.mark.parametrize(("capability", "precision"), [((8, 6), "bf16-mixed"), ((7, 5), "16-mixed"),
                                                       (None, "32-true")])
def test_the_nemo_trainer_picks_its_precision_by_the_card(card, monkeypatch, capability, precision):
    pytest.importorskip("nemo")
    from asrctl_nemo.training import default_precision

    monkeypatch.setattr(torch, "set_float32_matmul_precision", lambda value: None)
    if capability:
        card(*capability)
    else:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_precision() == precision
