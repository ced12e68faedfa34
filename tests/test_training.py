"""What the trainers share: the summary's shape, the progress status, checkpoint averaging."""

import json

import pytest
import torch

from asrctl.progress import training_status
from asrctl.train.averaging import average_weights
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
    assert wer_before_after(summary) == ("val WER 24.1% → 9.8% (best checkpoint), 9.6% (average of the last 3, "
                                         "the output model)")
    assert wer_before_after({"best_val_wer": None}) is None


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
