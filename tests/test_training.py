"""What the trainers share: the summary's shape, the progress status, checkpoint averaging, the memory
estimate and the warning before training on the CPU."""

import json
import sys

import pytest
import torch

from asrctl.progress import training_status
from asrctl.train.averaging import average_weights
from asrctl.train.memory import available_memory, cpu_warning, training_memory, warn_cpu_training
from asrctl.train.summary import SUMMARY_FILE, summary_keys, wer_before_after, write_training_summary


def test_a_summary_gets_its_optional_keys_as_null_and_no_key_of_its_own(tmp_path):
    required, optional = summary_keys()
    assert {"baseline_val_wer", "averaged"} <= optional and "best_val_wer" in required
    summary = dict.fromkeys(required, 0)
    written = write_training_summary(tmp_path, summary)
    assert json.loads((tmp_path / SUMMARY_FILE).read_text()) == written == {**summary, **dict.fromkeys(optional)}
    with pytest.raises(ValueError, match=r"missing \['best_val_wer'\]"):
        write_training_summary(tmp_path, dict.fromkeys(required - {"best_val_wer"}, 0))
    with pytest.raises(ValueError, match=r"not in the schema \['mine'\]"):
        write_training_summary(tmp_path, {**summary, "mine": 1})


def test_the_wer_before_and_after_training():
    assert training_status(0.4123, 0.098, 0.241) == "loss 0.412  val WER 24.1% → 9.8%"
    assert training_status(None, None, 0.241) == "val WER 24.1% (base model)"
    assert training_status(0.5, None) == "loss 0.500"
    summary = {"best_val_wer": 9.8, "baseline_val_wer": 24.1,
               "averaged": {"checkpoints": ["a", "b", "c"], "val_wer": 9.6}}
    assert wer_before_after(summary) == ("24.1% → 9.8% (best checkpoint), 9.6% (average of the last 3, "
                                         "the output model)")
    assert wer_before_after({"best_val_wer": None}) is None


def test_the_memory_a_fine_tune_is_expected_to_need():
    base, adapters = 72_593_920, 1_179_648  # Whisper base, and its LoRA adapters (docs/benchmarks.md)
    # 0.5 GiB of runtime; per parameter 64 B of activations, and 16 B trained (weight, gradient, Adam) or 4 B fixed
    assert training_memory(base, base) == 2**29 + (16 + 64) * base
    assert training_memory(adapters, base) == 2**29 + 16 * adapters + 4 * (base - adapters) + 64 * base
    assert training_memory(0, 1000) < training_memory(10, 1000) < training_memory(1000, 1000)
    # within 10% of the peaks measured on the CPU, batches of 8 30-s windows: SFT 5,935-6,150 MiB, LoRA 5,149 MiB
    assert 5935 * 0.9 < training_memory(base, base) / 2**20 < 6150 * 1.1
    assert 5149 * 0.9 < training_memory(adapters, base) / 2**20 < 5149 * 1.1


def test_the_warning_before_training_on_the_cpu(capsys, monkeypatch):
    need = training_memory(10**8, 10**8)
    enough = cpu_warning(10**8, 10**8, need)
    assert f"about {need / 2**30:.1f} GiB" in enough and "100,000,000 parameters" in enough
    assert "available" not in enough and "available" not in cpu_warning(10**8, 10**8, None)
    short = cpu_warning(10**8, 10**8, 2**30)
    assert short.startswith(enough) and "this machine has 1.0 GiB available" in short
    warn_cpu_training(torch.device("cuda"), (10, 10))
    warn_cpu_training("mps", (10, 10))
    assert capsys.readouterr().err == ""
    warn_cpu_training(torch.device("cpu"), (10, 10))
    assert capsys.readouterr().err.count("fine-tuning on the CPU") == 1
    monkeypatch.setitem(sys.modules, "psutil", None)  # without psutil: /proc/meminfo on Linux
    if sys.platform.startswith("linux"):
        assert available_memory() > 0


def test_averaged_weights_are_the_mean_in_their_own_dtype():
    states = [{"w": torch.tensor([1.0, 2.0], dtype=torch.bfloat16), "steps": torch.tensor(n)} for n in (1, 2, 3)]
    states[2]["w"] = torch.tensor([4.0, 8.0], dtype=torch.bfloat16)
    averaged = average_weights(iter(states))
    assert averaged["w"].dtype == torch.bfloat16 and averaged["w"].tolist() == [2.0, 4.0]
    assert averaged["steps"].item() == 3  # not a weight: the last one's
    with pytest.raises(ValueError, match="other weights"):
        average_weights([{"w": torch.zeros(1)}, {"v": torch.zeros(1)}])
    with pytest.raises(ValueError, match="at least 2"):
        average_weights([{"w": torch.zeros(1)}])
