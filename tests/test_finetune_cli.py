"""`asrctl finetune` plumbing: recipes, flags and --set, trainer dispatch (with a recording trainer)."""

import json

import pytest

from asrctl.errors import AsrctlError
from asrctl.testing import make_plugin_dist, run_cli
from asrctl.train.recipes import build_recipe, parse_assignment, train_sources

RECORDING_TRAINER = """
import json, pathlib, time
from asrctl import Setting, TrainerSpec, hookimpl
from asrctl.api import training_summary

def train(recipe, *, resume, quiet):
    out = pathlib.Path(recipe["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "recorded.json").write_text(json.dumps({"recipe": recipe, "resume": resume}))
    split = {"file": str(recipe["data"]["train"]), "rows": 0, "hours": 0.0, "dropped": 0, "dropped_by_reason": {}}
    return training_summary(recipe, started=time.perf_counter(), model=out, data={"train": split, "val": None},
                            vocabulary="the model's", steps=0, epochs=0.0, resumed_from_step=None, best_val_wer=None,
                            best_checkpoint=None, baseline_val_wer=None, averaged=None, parameters=(0, 1),
                            processes=1, device=None, merged_model=None)

@hookimpl
def register_trainers(register):
    recipe = pathlib.Path(__file__).with_name("toy-lora.yaml")
    register(TrainerSpec(name="toy", backends=("toy-ctc",), train=train, methods=("sft", "lora"),
                         recipes={"toy-lora": recipe},
                         settings=(Setting("training.temperature", float, "how warm the toy gets"),)))
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
    recorded = json.loads((out / "recorded.json").read_text())
    recipe = recorded["recipe"]
    assert recorded["resume"] is True
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


def test_a_mix_is_refused_by_a_trainer_without_it_and_a_bad_weight_is_one_line(tmp_path, site):
    train = tmp_path / "t.jsonl"
    train.write_text("")
    common = ["finetune", "-m", "x", "-o", str(tmp_path / "o"), "--train", f"{train}:0.5"]
    mixed = run_cli(*common, "-b", "toy-ctc", "--train", f"{train}:0.5", pythonpath=site)
    assert mixed.returncode == 1 and "the toy trainer trains on one --train source" in mixed.stderr, mixed.stderr
    assert "(hf, nemo)" in mixed.stderr
    bad = run_cli(*common, "-b", "hf-ctc", "--set", f"data.train=[{train}:0.5, {{file: {train}, weight: -1}}]",
                  pythonpath=site)
    assert bad.returncode == 1 and "a source's weight is a positive number" in bad.stderr, bad.stderr
    assert "Traceback" not in mixed.stderr + bad.stderr
    recipe = build_recipe(None, {"backend": "b", "model": "m", "output_dir": "o",
                                 "data.train": [f"{train}:0.5", f"{train}:2"]}, ())
    assert train_sources(recipe["data"]) == [(str(train), 0.5), (str(train), 2.0)]
    single = build_recipe(None, {"backend": "b", "model": "m", "output_dir": "o", "data.train": [f"{train}:0.5"]}, ())
    assert single["data"]["train"] == str(train)  # one source: its weight means nothing


@pytest.mark.parametrize("args, line", [
    (["--set", "training.buckets=20"], "training.buckets are the duration buckets of --batch-seconds: give that too"),
    (["--set", "training.batch_seconds=-5"], "training.batch_seconds=-5: expected a positive number of seconds"),
    (["--baseline"], "the baseline is the base model's validation WER: give --val too"),
    (["--set", "training.average_last=1"], "training.average_last=1: an average takes at least 2 checkpoints"),
])
@pytest.mark.parametrize("backend", ["hf-ctc", "nemo"])
def test_training_setting_mistakes_are_one_line_before_loading(backend, args, line, tmp_path, site):
    train = tmp_path / "t.jsonl"
    train.write_text("")
    result = run_cli("finetune", "-b", backend, "-m", "x", "--train", str(train), "-o", str(tmp_path / "o"), *args,
                     pythonpath=site)
    assert result.returncode == 1 and line in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_recipe_building_rules(tmp_path):
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(RECIPE)
    recipe = build_recipe(recipe_file, {"data.train": "a.jsonl", "output_dir": "o", "lora.r": None},
                          ("lora.dropout=0.1",))
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


def test_declared_settings_are_taken_and_others_refused_before_the_trainer_runs(tmp_path, site):
    (tmp_path / "t.jsonl").write_text("")
    base = ("finetune", "-b", "toy-ctc", "-m", "x", "--train", "t.jsonl")

    def finetune(out, *args):
        return run_cli(*base, "-o", str(tmp_path / out), *args, pythonpath=site, cwd=tmp_path)

    taken = finetune("ok", "--set", "training.temperature=2", "--epochs", "3", "--batch-size", "4",
                     "--num-workers", "0")
    assert taken.returncode == 0, taken.stderr
    recipe = json.loads((tmp_path / "ok" / "recorded.json").read_text())["recipe"]
    assert recipe["training"] == {"temperature": 2, "epochs": 3.0, "batch_size": 4, "num_workers": 0}
    former = finetune("former", "--set", "training.num_train_epochs=2",
                      "--set", "training.per_device_train_batch_size=8")
    assert former.returncode == 0, former.stderr  # recipes written before the neutral names still run
    recipe = json.loads((tmp_path / "former" / "recorded.json").read_text())["recipe"]
    assert recipe["training"] == {"epochs": 2, "batch_size": 8}
    for args, line in [
        (("--set", "training.temperatur=1"), "Error: training.temperatur: not a setting of the toy trainer (did you "
         "mean training.temperature?); its training settings are training.max_steps, training.epochs"),
        (("--build-vocab",), "Error: data.build_vocab: not a setting of the toy trainer; its data settings are "
         "data.train, data.val, data.format, data.min_duration, data.max_duration\n"),
        (("--set", "freeze.encoder=true"), "Error: freeze.encoder: not a setting of the toy trainer; it takes no "
         "freeze settings\n"),
        (("--set", "training.temperature=warm"), "Error: training.temperature: expected a number, got 'warm'\n"),
        (("--set", "training.max_steps=2.5"), "Error: training.max_steps: expected a whole number, got 2.5\n"),
        (("--epochs", "1", "--set", "training.num_train_epochs=2"),
         "Error: training.num_train_epochs is the former name of training.epochs: give one of them\n"),
        (("--set", "trainig.seed=1"), "Error: trainig: not a recipe setting (a recipe has backend, model, method, "),
    ]:
        refused = finetune("refused", *args)
        assert refused.returncode == 1 and refused.stderr.startswith(line), (args, refused.stderr)
        assert not (tmp_path / "refused").exists()


def test_the_trainers_settings_are_listed_in_help_and_plugins(site):
    only_toy = {"ASRCTL_LOAD_PLUGINS": "asrctl-toytrainer"}
    help_text = run_cli("finetune", "--help", pythonpath=site, env=only_toy).stdout
    assert "Settings of the toy trainer (-b toy-ctc" in help_text
    assert "training.temperature  [float] how warm the toy gets" in help_text
    [row] = json.loads(run_cli("plugins", "--json", pythonpath=site, env=only_toy).stdout)
    assert row["trainer_settings"] == {"toy": {"training.temperature": "[float] how warm the toy gets"}}
    table = run_cli("plugins", pythonpath=site, env=only_toy).stdout
    assert "toy trainer's own settings (asrctl finetune --set KEY=VALUE" in table and "how warm the toy" in table


def test_a_trainer_setting_outside_the_recipe_sections_is_refused_at_registration():
    from asrctl import Setting, TrainerSpec

    with pytest.raises(ValueError, match="setting 'temperature' must be SECTION.KEY"):
        TrainerSpec(name="t", backends=("b",), train=dict, settings=(Setting("temperature", float, "warmth"),))


def test_every_flag_of_the_settings_table_sets_its_recipe_key(tmp_path, site):
    """The options are made from asrctl.train.settings.TABLE: each flag, given a value, reaches the trainer
    under its row's recipe key (those that start processes, need packages or some trainer are left out)."""
    from asrctl.train.settings import FLAGGED, kinds

    (tmp_path / "t.jsonl").write_text("")
    args, expected = ["-b", "toy-ctc", "-m", "base/model", "-o", str(tmp_path / "out"), "--val", "t.jsonl"], {}
    for option in FLAGGED:
        if option.name in ("backend", "model", "output_dir", "data.val", "training.tensorboard") \
                or option.scope == "declared" or option.name.startswith("distributed."):
            continue
        flag, types = option.flags[-1].split("/")[0], kinds(option)
        if bool in types:
            given, value = [flag], True
        elif option.choices:
            given, value = [flag, option.choices[-1]], option.choices[-1]
        elif option.multiple:  # one --train is one source: its file
            given, value = [flag, "t.jsonl"], "t.jsonl"
        elif list in types:
            given, value = [flag, "1,2"], ["1", "2"]
        elif int in types or float in types:
            value = int(option.low or 0) + 2 if int in types else 0.5
            given = [flag, str(value)]
        else:
            given, value = [flag, "t.jsonl"], "t.jsonl"
        args += given
        expected[option.name] = value
    assert len(expected) >= 25
    result = run_cli("finetune", *args, pythonpath=site, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    recipe = json.loads((tmp_path / "out" / "recorded.json").read_text())["recipe"]
    got = {name: recipe[name] if "." not in name else recipe[name.partition(".")[0]][name.partition(".")[2]]
           for name in expected}
    assert got == expected
