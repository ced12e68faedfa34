"""A trainer written by a third party with the public API only (docs/examples/asrctl-templates, the
plugin guide's example): copied into an empty folder, installed with `asrctl install -e` into a
throwaway environment layered over this one, trained by `asrctl finetune`, run by `asrctl infer`."""

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from asrctl.testing import overlay_venv, run_cli
from asrctl.train.summary import SCHEMA as SUMMARY_SCHEMA

EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "asrctl-templates"
SPEECH = Path(__file__).parent / "data" / "speech"
OFFLINE = {"PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0"}  # as in test_install.py


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("third-party")
    project = folder / "asrctl-templates"
    project.mkdir()
    for name in ("pyproject.toml", "asrctl_templates/__init__.py", "asrctl_templates/templates.py"):
        (project / name).parent.mkdir(exist_ok=True)
        shutil.copy(EXAMPLE / name, project / name)
    python = overlay_venv(folder / "venv")
    installed = run_cli("install", "-e", str(project), python=python, env=OFFLINE)
    assert installed.returncode == 0, installed.stderr
    assert "trainers: templates" in installed.stdout
    return python


@pytest.fixture
def data(tmp_path):
    rows = [{**json.loads(line), "audio_filepath": str(SPEECH / json.loads(line)["audio_filepath"])}
            for line in (SPEECH / "manifest.jsonl").read_text().splitlines()]
    train, rest = tmp_path / "train.jsonl", tmp_path / "rest.jsonl"
    train.write_text("".join(json.dumps(row) + "\n" for row in rows[:6]))
    rest.write_text("".join(json.dumps(row) + "\n" for row in rows[6:]))
    return train, rest, rows


def test_a_third_party_trainer_trains_through_finetune_and_its_model_runs_in_infer(venv, data, tmp_path):
    train, rest, rows = data
    out = tmp_path / "model"
    result = run_cli("finetune", "-b", "templates", "-m", "empty", "--train", str(train), "--val", str(train),
                     "-o", str(out), "--batch-size", "4", "--set", "training.bands=48", "-q", "--json",
                     python=venv)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "training_summary.json").read_text())
    jsonschema.validate(summary, json.loads(SUMMARY_SCHEMA.read_text()))
    assert summary["steps"] == 2 and summary["data"]["train"]["rows"] == 6 and summary["best_val_wer"] == 0.0
    assert json.loads(result.stdout) == summary

    preds = tmp_path / "preds.jsonl"
    infer = run_cli("infer", str(train), "-b", "templates", "-m", str(out), "-o", str(preds), "-q", python=venv)
    assert infer.returncode == 0, infer.stderr
    assert [json.loads(line)["pred_text"] for line in preds.read_text().splitlines()] == [r["text"] for r in rows[:6]]

    more = tmp_path / "more"  # fine-tuning the model trained above: its templates and the new ones
    again = run_cli("finetune", "-b", "templates", "-m", str(out), "--train", str(rest), "-o", str(more), "-q",
                    "--json", python=venv)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["trainable_parameters"] == 48 * len(rows)


@pytest.mark.parametrize(("args", "line"), [
    (("--set", "training.bands=many"), "Error: training.bands: expected a whole number, got 'many'"),
    (("--set", "training.band=8"), "Error: training.band: not a setting of the templates trainer (did you mean "
                                   "training.bands?)"),
    (("--learning-rate", "1e-3"), "Error: training.learning_rate: the templates trainer has no use for it"),
    (("--peft", "lora"), "Error: the templates trainer does not do lora (it does sft)"),
])
def test_its_settings_are_checked_before_it_loads(venv, data, tmp_path, args, line):
    train, _, _ = data
    result = run_cli("finetune", "-b", "templates", "-m", "empty", "--train", str(train), "-o", str(tmp_path / "o"),
                     *args, python=venv)
    assert result.returncode == 1 and result.stderr.startswith(line), result.stderr
    assert not (tmp_path / "o").exists()
