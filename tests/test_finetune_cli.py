"""`asrctl finetune` plumbing: recipes, flags and --set, trainer dispatch (with a recording trainer)."""

import json

import pytest

from asrctl.errors import AsrctlError
from asrctl.recipes import build_recipe, parse_assignment
from asrctl.testing import make_plugin_dist, run_cli

RECORDING_TRAINER = """
import json, pathlib
from asrctl import TrainerSpec, hookimpl

def train(recipe, *, resume, quiet):
    out = pathlib.Path(recipe["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    summary = {"recipe": recipe, "resume": resume}
    (out / "training_summary.json").write_text(json.dumps(summary))
    return summary

@hookimpl
def register_trainers(register):
    recipe = pathlib.Path(__file__).with_name("toy-lora.yaml")
    register(TrainerSpec(name="toy", backends=("toy-ctc",), train=train, methods=("sft", "lora"),
                         recipes={"toy-lora": recipe}))
"""

RECIPE = """\
backend: toy-ctc
model: base/model
method: lora
lora: {r: 8, alpha: 16, target_modules: [q_proj, v_proj]}
training: {learning_rate: 1e-4, max_steps: 100}
"""


@pytest.fixture
def site(tmp_path):
    site = make_plugin_dist(tmp_path / "site", "asrctl-toytrainer", RECORDING_TRAINER)
    (site / "toy-lora.yaml").write_text(RECIPE)
    return site


def test_flags_and_set_override_the_recipe(tmp_path, site):
    out = tmp_path / "out"
    (tmp_path / "t.jsonl").write_text("")
    result = run_cli("finetune", "-c", "toy-lora", "--train", "t.jsonl", "-o", str(out), "--lora-r", "4",
                     "--set", "training.learning_rate=3e-5", "--set", "lora.target_modules=[k_proj]",
                     "--max-steps", "7", "--resume", pythonpath=site, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "training_summary.json").read_text())
    recipe = summary["recipe"]
    assert summary["resume"] is True
    assert recipe["method"] == "lora" and recipe["model"] == "base/model"
    assert recipe["lora"] == {"r": 4, "alpha": 16, "target_modules": ["k_proj"]}
    assert recipe["training"] == {"learning_rate": 3e-5, "max_steps": 7}
    assert recipe["data"]["train"] == "t.jsonl"
    assert "warning: no --val: training goes on without a validation WER" in " ".join(result.stderr.split())
    (tmp_path / "v.jsonl").write_text("")
    with_val = run_cli("finetune", "-c", "toy-lora", "--train", "t.jsonl", "--val", "v.jsonl", "-o", str(out),
                       pythonpath=site, cwd=tmp_path)
    assert with_val.returncode == 0 and "warning" not in with_val.stderr


def test_list_and_print_recipes(site):
    only_toy = {"ASRCTL_LOAD_PLUGINS": "asrctl-toytrainer"}
    listed = run_cli("finetune", "--list-recipes", pythonpath=site, env=only_toy)
    assert listed.returncode == 0 and listed.stdout.startswith("toy-lora\t")
    printed = run_cli("finetune", "--print-recipe", "toy-lora", pythonpath=site)
    assert printed.stdout == RECIPE
    unknown = run_cli("finetune", "--print-recipe", "toy-lroa", pythonpath=site)
    assert unknown.returncode == 1 and "did you mean 'toy-lora'" in unknown.stderr


def test_backend_without_trainer_and_missing_settings_are_one_line_errors(tmp_path, site):
    result = run_cli("finetune", "-b", "nope", "-m", "x", "--train", "t.jsonl", "-o", str(tmp_path), pythonpath=site,
                     env={"ASRCTL_LOAD_PLUGINS": "asrctl-toytrainer"})
    assert result.returncode == 1 and "no trainer fine-tunes backend 'nope'; trainers: toy (toy-ctc)" in result.stderr
    missing = run_cli("finetune", "-b", "toy-ctc", "-m", "x", "-o", str(tmp_path), pythonpath=site)
    assert missing.returncode == 1 and "--train" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.parametrize("backend", ["hf-ctc", "nemo", "toy-ctc"])
def test_early_stopping_without_validation_is_refused_for_every_trainer(backend, tmp_path, site):
    train = tmp_path / "t.jsonl"
    train.write_text("")
    result = run_cli("finetune", "-b", backend, "-m", "x", "--train", str(train), "-o", str(tmp_path / "o"),
                     "--early-stopping-patience", "2", pythonpath=site)
    assert result.returncode == 1 and "early stopping watches validation WER: give --val too" in result.stderr
    assert not (tmp_path / "o").exists()


def test_recipe_building_rules(tmp_path):
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(RECIPE)
    recipe = build_recipe(recipe_file, {"data.train": "a.jsonl", "output_dir": "o", "lora.r": None}, ("lora.dropout=0.1",))
    assert recipe["lora"]["r"] == 8 and recipe["lora"]["dropout"] == 0.1
    assert parse_assignment("training.bf16=true") == ("training.bf16", True)
    assert parse_assignment("model=openai/whisper-small") == ("model", "openai/whisper-small")
    with pytest.raises(AsrctlError, match="expected KEY=VALUE"):
        parse_assignment("nonsense")
    with pytest.raises(AsrctlError, match="method 'qlora'"):
        build_recipe(recipe_file, {"data.train": "a", "output_dir": "o", "method": "qlora"}, ())
    with pytest.raises(AsrctlError, match="add --peft lora"):
        build_recipe(recipe_file, {"data.train": "a", "output_dir": "o", "method": "sft", "lora.merge": True}, ())
    (tmp_path / "bad.yaml").write_text("backend: [unclosed\n")
    with pytest.raises(AsrctlError, match=r"bad.yaml:\d+: invalid YAML"):
        build_recipe(tmp_path / "bad.yaml", {}, ())


def test_scientific_notation_in_recipe_files_is_a_number(tmp_path):
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(RECIPE)
    recipe = build_recipe(recipe_file, {"data.train": "a", "output_dir": "o"}, ())
    assert recipe["training"]["learning_rate"] == 1e-4


def test_missing_training_data_is_one_line_before_the_trainer_runs(tmp_path, site):
    result = run_cli("finetune", "-c", "toy-lora", "--train", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o"),
                     pythonpath=site)
    assert result.returncode == 1 and result.stderr == f"Error: {tmp_path / 'nope.jsonl'}: no such file or folder\n"
    assert not (tmp_path / "o").exists()
