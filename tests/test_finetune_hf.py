"""`asrctl finetune` with the hf trainer (plugin asrctl-hf): tiny models learn for real through the CLI,
LoRA trains adapters only and merges to the same transcripts, and a killed run resumes where it stopped.

The models are small enough to memorise the 7 short fixture utterances in a few hundred steps
on a laptop CPU: a wav2vec2 CTC model of hidden size 96 without dropout (the conftest one, of
size 32, learns too slowly), and a Whisper of d_model 64 reading 4 s windows instead of 30 s.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import jsonschema
import pytest
import yaml
from augment_probe import augment_probe, calls, checksum, noise_manifest
from finetune_checks import ON_CPU, assert_closing_table
from manifest_helpers import split_lines
from tiny_models import build_tiny_ctc

from asrctl import AsrctlError
from asrctl.data.batching import BucketBatches
from asrctl.plugins import trainers
from asrctl.score.metrics import edit_counts, totals
from asrctl.score.normalizers import get_normalizer
from asrctl.testing import interrupt_when, run_cli
from asrctl.train.recipes import build_recipe, check_settings
from asrctl.train.summary import SCHEMA as SUMMARY_SCHEMA

SHORT_SECONDS = 4.0  # the 7 fixtures below this; utt02 (5.2 s) and long01 (34 s) are longer
# Tiny models run op by op: one thread each is faster than waking a pool, and on a busy 2-core
# machine 2 threads spin-waiting on each other made training 5x slower (measured).
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
NO_DROPOUT = dict.fromkeys(("hidden_dropout", "attention_dropout", "activation_dropout", "feat_proj_dropout",
                            "final_dropout", "layerdrop"), 0.0)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict[str, Path]:
    """Manifests of the fixture speech with absolute paths: `short` (7 rows) and `all` (9 rows)."""
    folder = Path(__file__).parent / "data" / "speech"
    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    rows = [{**row, "audio_filepath": str(folder / row["audio_filepath"])} for row in rows]
    out = tmp_path_factory.mktemp("speech")
    manifests = {"short": [r for r in rows if r["duration"] < SHORT_SECONDS], "all": rows}
    for name, chosen in manifests.items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chosen))
    return {name: out / f"{name}.jsonl" for name in manifests}


@pytest.fixture(scope="module")
def ctc_model(tmp_path_factory) -> Path:
    return build_tiny_ctc(tmp_path_factory.mktemp("ctc96"), hidden_size=96, intermediate_size=192, **NO_DROPOUT)


def finetune(*args: str, cwd: Path | None = None) -> dict:
    result = run_cli("finetune", "--quiet", "--json", *args, env=ONE_THREAD, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def transcribe(manifest: Path, backend: str, model: Path, out: Path, *extra: str) -> list[str]:
    result = run_cli("infer", str(manifest), "-b", backend, "-m", str(model), "-o", str(out), "--device", "cpu", *extra,
                     env=ONE_THREAD)
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["pred_text"] for line in out.read_text().splitlines()]


def wer(manifest: Path, hypotheses: list[str]) -> float:
    normalize = get_normalizer("whisper-en")
    references = [normalize(json.loads(line)["text"]) for line in manifest.read_text().splitlines()]
    return totals(edit_counts(references, [normalize(h) for h in hypotheses])).rate


def log(out: Path) -> list[dict]:
    return json.loads((out / "trainer_state.json").read_text())["log_history"]


def tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(path)


# -- registration and recipes ---------------------------------------------------------------------


def test_trainer_recipes():
    spec = trainers().get("hf")
    assert set(spec.backends) == {"hf-ctc", "hf-whisper"} and set(spec.methods) == {"sft", "lora"}
    families = ("whisper-small", "whisper-medium", "wav2vec2-base", "parakeet-ctc-0.6b")
    assert {f"{family}-{method}" for family in families for method in ("sft", "lora")} <= set(spec.recipes)
    from asrctl_hf.training.settings import check_recipe

    for name, path in spec.recipes.items():
        recipe = build_recipe(path, {"data.train": "t.jsonl", "data.val": "v.jsonl", "output_dir": "o"}, ())
        assert recipe["backend"] in spec.backends and name.endswith(recipe["method"])
        check_settings(recipe, spec)  # every key is one the trainer takes
        check_recipe(recipe)


# -- learning -------------------------------------------------------------------------------------


def test_epochs_tensorboard_and_early_stopping_as_for_the_nemo_trainer(speech, ctc_model, tmp_path):
    """The neutral settings every trainer takes, mapped onto TrainingArguments and the Trainer's callbacks."""
    common = ("-b", "hf-ctc", "-m", str(ctc_model), "--train", str(speech["short"]), "--val", str(speech["short"]),
              "--build-vocab", "--num-workers", "0")
    out, elsewhere = tmp_path / "epochs", tmp_path / "cwd"
    elsewhere.mkdir()
    summary = finetune(*common, "-o", str(out), "--epochs", "2", "--batch-size", "2", "--eval-steps", "4",
                       "--tensorboard", cwd=elsewhere)
    assert summary["steps"] == 8 and summary["epochs"] == 2.0  # 7 rows in batches of 2: 4 steps an epoch
    assert list((out / "runs").rglob("events.out.tfevents.*")) and not list(elsewhere.iterdir())
    stopped = finetune(*common, "-o", str(tmp_path / "stop"), "--max-steps", "50", "--learning-rate", "0",
                       "--batch-size", "7", "--eval-steps", "1", "--early-stopping-patience", "2")
    assert stopped["steps"] == 3  # nothing learnt: the first WER stays the best for 2 more


def test_ctc_learns_the_fixtures_with_a_new_vocabulary(speech, ctc_model, tmp_path):
    out = tmp_path / "ctc"
    summary = finetune("-b", "hf-ctc", "-m", str(ctc_model), "--train", str(speech["all"]),
                       "--val", str(speech["short"]), "-o", str(out), "--build-vocab", "--freeze-feature-encoder",
                       "--max-duration", "4", "--learning-rate", "5e-3", "--max-steps", "200", "--batch-size", "7",
                       "--eval-steps", "200", "--set", "training.warmup_steps=20",
                       "--set", "training.spec_augment=false")
    assert json.loads((out / "training_summary.json").read_text()) == summary
    jsonschema.validate(summary, json.loads(SUMMARY_SCHEMA.read_text()))
    train = summary["data"]["train"]
    assert train["rows"] == 7 and train["dropped_by_reason"] == {"longer than 4 s": 2}
    assert summary["vocabulary"] == "built from the training text" and summary["steps"] == 200
    assert summary["best_val_wer"] <= 20, summary  # percent; measured: 0.0 after 200 steps (about 30 s on 2 cores)
    vocab = json.loads((out / "vocab.json").read_text())
    assert {"|", "[UNK]", "[PAD]", "q", "z"} <= set(vocab) and "." not in vocab and "T" not in vocab
    assert (out / "model.safetensors").is_file()
    # the saved model and processor transcribe through `asrctl infer` as validation scored them
    assert wer(speech["short"], transcribe(speech["short"], "hf-ctc", out, tmp_path / "p.jsonl")) <= 0.2


def test_whisper_learns_the_fixtures(taught_whisper, tmp_path):
    out, summary, manifests = taught_whisper
    assert summary["data"]["train"]["dropped_by_reason"] == {"longer than Whisper's 4 s window": 2}
    losses = [entry["loss"] for entry in log(out) if "loss" in entry]
    assert losses[-1] <= losses[0] / 2, losses  # measured: 7.6 -> 0.03
    assert summary["best_val_wer"] == 0.0, summary
    references = [json.loads(line)["text"] for line in manifests["short"].read_text().splitlines()]
    assert transcribe(manifests["short"], "hf-whisper", out, tmp_path / "p.jsonl") == references
    assert json.loads((out / "generation_config.json").read_text())["language"] == "en"


@pytest.mark.parametrize("method", ["sft", "lora"])
def test_baseline_wer_and_the_average_of_the_last_checkpoints(method, speech, ctc_model, tmp_path):
    out = tmp_path / method
    lora = ["--peft", "lora", "--target-modules", "q_proj,v_proj"] if method == "lora" else []
    result = run_cli("finetune", "-b", "hf-ctc", "-m", str(ctc_model), "--train", str(speech["short"]),
                     "--val", str(speech["short"]), "--build-vocab", "--learning-rate", "2e-3", "--max-steps", "9",
                     "--batch-size", "4", "--eval-steps", "3", "--average-last", "2", "-o", str(out), *lora,
                     env={**ONE_THREAD, **ON_CPU})
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "training_summary.json").read_text())
    assert_closing_table(result, summary)
    jsonschema.validate(summary, json.loads(SUMMARY_SCHEMA.read_text()))
    # the base model (a new random head) spells noise; its WER is measured before step 1 and kept
    assert summary["baseline_val_wer"] >= 90
    assert summary["baseline_val_wer"] == json.loads((out / "baseline.json").read_text())["val_wer"]
    assert summary["averaged"]["checkpoints"] == [str(out / "checkpoint-6"), str(out / "checkpoint-9")]
    assert summary["averaged"]["val_wer"] is not None

    # the output model (or adapter) is the mean of the two checkpoints' weights
    name = "adapter_model.safetensors" if method == "lora" else "model.safetensors"
    first, last = (tensors(out / f"checkpoint-{step}" / name) for step in (6, 9))
    output = tensors(out / name)
    assert output.keys() == last.keys()
    changed = [key for key in output if not first[key].equal(last[key])]
    assert changed, "the two checkpoints hold the same weights: the test would not see an average"
    for key, value in output.items():
        assert value.allclose((first[key] + last[key]) / 2, atol=1e-6), key


def test_augmentation_changes_the_training_audio_only_and_is_drawn_from_the_seed(speech, ctc_model, tmp_path):
    from asrctl.data.audio import load_audio

    rows = speech["short"].read_text().splitlines()
    train, val = split_lines(speech["short"], 4, tmp_path / "train.jsonl", tmp_path / "val.jsonl")
    probe, noise = augment_probe(tmp_path / "probe"), noise_manifest(tmp_path / "noise")

    def run(name: str) -> list[dict]:
        log = tmp_path / f"{name}.log"
        result = run_cli("finetune", "-q", "-b", "hf-ctc", "-m", str(ctc_model), "--train", str(train), "--val",
                         str(val), "--build-vocab", "--max-steps", "3", "--batch-size", "2", "--eval-steps", "3",
                         "--num-workers", "0", "--speed-perturb", "0.9,1.1", "--noise", str(noise), "--seed", "1",
                         "-o", str(tmp_path / name), env={**ONE_THREAD, "AUGMENT_LOG": str(log)}, pythonpath=probe)
        assert result.returncode == 0, result.stderr
        return calls(log)

    first = run("first")
    heard = {checksum(load_audio(json.loads(row)["audio_filepath"])): i < 4 for i, row in enumerate(rows)}
    assert 6 <= len(first) <= 8  # 3 steps of 2, and the batch Accelerate fetches ahead
    # training rows only: the baseline and the validation at step 3 read theirs as they are
    assert all(heard.get(call["input"]) is True for call in first), first
    assert all(call["output"] != call["input"] for call in first)  # a speed of 0.9 or 1.1 every time
    assert run("again") == first  # the same seed hears the same (another seed not: tests/test_augment.py)


# -- LoRA -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["hf-ctc", "hf-whisper"])
def test_lora_trains_adapters_only_and_merges_to_the_same_transcripts(backend, speech, ctc_model, tiny_whisper,
                                                                     tmp_path):
    # Random models whose transcripts are long strings of random characters: any difference in the
    # weights between the adapter folder and the merged model would show in them.
    base = ctc_model if backend == "hf-ctc" else tiny_whisper
    out = tmp_path / "lora"
    # CTC with a new vocabulary: its new head trains in full beside the adapters (and is saved with them).
    extra = ["--build-vocab", "--target-modules", "q_proj,v_proj"] if backend == "hf-ctc" else []
    summary = finetune("-b", backend, "-m", str(base), "--train", str(speech["short"]), "-o", str(out),
                       "--peft", "lora", "--lora-r", "4", "--merge", "--learning-rate", "1e-3", "--max-steps", "4",
                       "--batch-size", "4", *extra)
    assert summary["method"] == "lora" and summary["trainable_share"] < 0.05, summary
    adapter = tensors(out / "adapter_model.safetensors")
    assert sum(t.numel() for t in adapter.values()) == summary["trainable_parameters"]
    assert (base / "model.safetensors").stat().st_size >= 10 * (out / "adapter_model.safetensors").stat().st_size
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base.resolve())
    head = "lm_head" if backend == "hf-ctc" else None
    assert all("lora_" in key or (head and head in key) for key in adapter), sorted(adapter)

    # Merged, every weight outside the adapted layers (and the new head) is the base's, bit for bit.
    before, after = tensors(base / "model.safetensors"), tensors(out / "merged" / "model.safetensors")
    adapted = {"q_proj", "v_proj"} if backend == "hf-ctc" else {"q_proj", "k_proj", "v_proj", "out_proj"}
    changed = {key for key in after if key not in before or not before[key].equal(after[key])}
    assert changed and all(key.split(".")[-2] in adapted or key.startswith(f"{head}.") for key in changed), changed
    assert any(key.split(".")[-2] in adapted for key in changed)

    language = ["--language", "en"] if backend == "hf-whisper" else []
    on_adapter = transcribe(speech["short"], backend, out, tmp_path / "a.jsonl", *language)
    assert on_adapter == transcribe(speech["short"], backend, out / "merged", tmp_path / "m.jsonl", *language)
    assert any(on_adapter)


# -- resume ---------------------------------------------------------------------------------------


def test_two_processes_train_one_model_through_torchrun(speech, ctc_model, tmp_path):
    out = tmp_path / "ddp"
    args = ["-b", "hf-ctc", "-m", str(ctc_model), "--train", str(speech["short"]), "-o", str(out), "--build-vocab",
            "--learning-rate", "2e-3", "--max-steps", "20", "--batch-size", "2", "--nproc-per-node", "2",
            "--set", "training.save_steps=10", "--set", "training.logging_steps=5"]
    result = run_cli("finetune", *args, "--json", env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # one summary: only rank 0 prints and writes the job's files
    assert result.stderr.count("fine-tuning on the CPU") == 1  # so does the warning
    assert summary["processes"] == 2 and summary["steps"] == 20
    # 2 processes x 2 rows per step over 7 rows: twice the epochs one process would cover in 20 steps
    assert summary["epochs"] == 10
    assert result.stderr.count("7 rows") == 1, result.stderr  # the data table is shown once
    losses = [entry["loss"] for entry in log(out) if "loss" in entry]
    assert losses[-1] < losses[0] / 2, losses
    # One checkpoint per save, with each rank's random state in it (processes training apart would
    # each have written the whole checkpoint, with a single random state).
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-20"]
    for checkpoint in out.glob("checkpoint-*"):
        assert {p.name for p in checkpoint.glob("rng_state*")} == {"rng_state_0.pth", "rng_state_1.pth"}
    # mistakes found before the processes start are printed once
    again = run_cli("finetune", *args)
    assert again.returncode == 1 and again.stderr.count("Error:") == 1 and "--resume" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr


def interrupt_at_checkpoint(args, out, step, sig):
    """Start `asrctl finetune ARGS -o OUT`; send `sig` once checkpoint-STEP is complete."""
    code, stderr = interrupt_when(["finetune", "--quiet", *args, "-o", str(out)],
                                  out / f"checkpoint-{step}" / "trainer_state.json", sig, env=ONE_THREAD)
    assert code == (130 if sig == signal.SIGINT else -sig) and not (out / "training_summary.json").exists(), stderr
    return stderr


# 7 rows of 2.5-3.3 s in 3 buckets, 2 to a batch in 6.6 s: 4 batches an epoch, where 4 to a batch made 2
BY_DURATION = ["--batch-seconds", "6.6", "--set", "training.buckets=3"]


def test_batches_by_duration_plan_the_epoch_by_their_own_count(speech, ctc_model, tmp_path):
    durations = [json.loads(line)["duration"] for line in speech["short"].read_text().splitlines()]
    batches = BucketBatches(durations, batch_seconds=6.6, buckets=3)
    assert len(batches) == 4
    summary = finetune("-b", "hf-ctc", "-m", str(ctc_model), "--train", str(speech["short"]), "--build-vocab",
                       "--max-steps", "6", "-o", str(tmp_path / "out"), *BY_DURATION)
    assert summary["steps"] == 6 and summary["epochs"] == 1.5


@pytest.mark.parametrize("batching", [[], BY_DURATION], ids=["fixed count", "by duration"])
def test_a_mix_of_weighted_sources_trains_on_their_rows_together(speech, ctc_model, tmp_path, batching):
    first, second = split_lines(speech["short"], 4, tmp_path / "a.jsonl", tmp_path / "b.jsonl")
    out = tmp_path / "out"
    summary = finetune("-b", "hf-ctc", "-m", str(ctc_model), "--train", f"{first}:0.6", "--train", f"{second}:0.4",
                       "--build-vocab", "--max-steps", "6", "--batch-size", "2", "-o", str(out), *batching)
    jsonschema.validate(summary, json.loads(SUMMARY_SCHEMA.read_text()))
    assert [(part["file"], part["rows"], part["weight"]) for part in summary["data"]["mix"]] == [
        (str(first), 4, 0.6), (str(second), 3, 0.4)]
    assert summary["data"]["train"]["rows"] == 7 and summary["data"]["train"]["file"] == f"{first}:0.6 + {second}:0.4"
    # an epoch draws 7 rows (4 from the first, 3 from the second) in 4 batches of 2 or fewer
    assert summary["steps"] == 6 and summary["epochs"] == 1.5
    assert yaml.safe_load((out / "recipe.yaml").read_text())["data"]["train"] == [
        {"file": str(first), "weight": 0.6}, {"file": str(second), "weight": 0.4}]


@pytest.mark.parametrize("batching", [[], BY_DURATION], ids=["fixed count", "by duration"])
def test_killed_run_resumes_from_its_checkpoint_to_the_same_weights(speech, ctc_model, tmp_path, batching):
    args = ["-b", "hf-ctc", "-m", str(ctc_model), "--train", str(speech["short"]), "--learning-rate", "2e-3",
            "--max-steps", "40", "--batch-size", "4", "--seed", "7", "--set", "training.save_steps=5", *batching]
    killed = tmp_path / "killed"
    interrupt_at_checkpoint(args, killed, 5, signal.SIGKILL)
    saved = [int(p.parent.name.split("-")[1]) for p in killed.glob("checkpoint-*/trainer_state.json")]
    assert saved and max(saved) < 40

    again = run_cli("finetune", *args, "-o", str(killed), env=ONE_THREAD)  # without --resume: refuses to mix two runs
    assert again.returncode == 1 and "--resume" in again.stderr and "Traceback" not in again.stderr
    # interrupted again, with Ctrl-C this time, after it went further
    stderr = interrupt_at_checkpoint([*args, "--resume"], killed, max(saved) + 10, signal.SIGINT)
    assert "Traceback" not in stderr and "run the same command with --resume" in stderr, stderr
    assert "stopping after the current step" in stderr, stderr  # and its checkpoint is saved
    saved = [int(p.parent.name.split("-")[1]) for p in killed.glob("checkpoint-*/trainer_state.json")]
    assert max(saved) < 40
    resumed = finetune(*args, "-o", str(killed), "--resume")
    # the step the Trainer restored from the last complete checkpoint, not 0
    assert resumed["resumed_from_step"] == max(saved) and resumed["steps"] == 40

    straight = tmp_path / "straight"
    finetune(*args, "-o", str(straight))
    resumed_weights, straight_weights = tensors(killed / "model.safetensors"), tensors(straight / "model.safetensors")
    assert resumed_weights.keys() == straight_weights.keys()
    for key, value in straight_weights.items():
        assert value.allclose(resumed_weights[key], atol=1e-6), key


# -- data and settings ----------------------------------------------------------------------------


def test_vocabulary_and_alphabet():
    from transformers import Wav2Vec2CTCTokenizer

    from asrctl_hf.training.vocab import Alphabet, build_vocabulary, character_tokenizer

    vocabulary = build_vocabulary(["Don't stop, Zoë!", "naïve 42"])
    assert list(vocabulary)[0] == "|" and list(vocabulary)[-2:] == ["[UNK]", "[PAD]"]
    assert set(vocabulary) == {"|", *"don'tspzëaïve42", "[UNK]", "[PAD]"}
    tokenizer = character_tokenizer(vocabulary)
    assert isinstance(tokenizer, Wav2Vec2CTCTokenizer) and tokenizer.pad_token_id == len(vocabulary) - 1
    alphabet = Alphabet(tokenizer)
    assert alphabet.case == "lower" and alphabet.fit("Don't  STOP - Zoë!") == "don't stop zoë"
    upper = Alphabet(character_tokenizer({"|": 0, "A": 1, "B": 2, "S": 3, "[UNK]": 4, "[PAD]": 5}))
    assert upper.fit("a b's, c") == "A BS"  # to its case; an apostrophe it cannot spell joins the word


def test_rows_are_dropped_with_reasons(tmp_path, data_dir):
    from asrctl.train.data import read_training_rows
    from asrctl_hf.training.data import select

    audio = data_dir / "speech" / "utt01.flac"
    rows = [{"audio_filepath": str(audio), "duration": 3.3, "text": "kept"},
            {"audio_filepath": str(audio), "text": "no duration: read from the header"},
            {"audio_filepath": str(audio), "duration": 3.3, "text": ""},
            {"audio_filepath": "missing.flac", "duration": 1.0, "text": "gone"},
            {"audio_filepath": str(audio), "duration": 0.2, "text": "short"},
            {"audio_filepath": str(audio), "duration": 3.3, "text": "x" * 50}]
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    records, errors = read_training_rows(str(manifest), None, tmp_path)
    split = select(str(manifest), records, errors, labels=lambda text: list(text),
                   unfit=lambda seconds, labels: "too many labels" if len(labels) > 40 else None,
                   min_duration=0.5, max_duration=None)
    assert [u.text for u in split.utterances] == ["kept", "no duration: read from the header"]
    assert split.utterances[1].duration == pytest.approx(3.265, abs=0.01)
    assert split.dropped == {"no transcript": 1, "audio file missing": 1, "shorter than 0.5 s": 1,
                             "too many labels": 1, "unreadable record": 1}
    assert split.errors[0].endswith(":7: invalid JSON: Expecting value (column 1)")
    with pytest.raises(AsrctlError, match="no such file"):
        read_training_rows(str(tmp_path / "nope.jsonl"), None, tmp_path)
    # any registered format: a CSV whose relative audio path is read against its own folder
    (tmp_path / "utt01.flac").write_bytes(audio.read_bytes())
    (tmp_path / "train.csv").write_text("audio_filepath,duration,text\nutt01.flac,3.265,the quick brown fox\n")
    records, errors = read_training_rows(str(tmp_path / "train.csv"), None, tmp_path)
    assert records == [{"audio_filepath": str(tmp_path / "utt01.flac"), "duration": 3.265,
                        "text": "the quick brown fox"}]


def test_freezing_and_spec_augment(tiny_ctc, tiny_whisper):
    from asrctl_hf.training.ctc_task import CTCTask
    from asrctl_hf.training.whisper_task import WhisperTask

    def trainable(task):
        return {name.split(".")[0] if name.startswith("lm_head") else name.split(".")[1]
                for name, p in task.model.named_parameters() if p.requires_grad}

    ctc = CTCTask(str(tiny_ctc), build_vocab=False, train_texts=[], spec_augment=False)
    assert ctc.model.config.mask_time_prob == 0.0 and not ctc.model.config.apply_spec_augment
    ctc.freeze(encoder=False, feature_encoder=True)
    assert "feature_extractor" not in trainable(ctc) and "encoder" in trainable(ctc)
    ctc.freeze(encoder=True, feature_encoder=False)
    assert trainable(ctc) == {"lm_head"}
    whisper = WhisperTask(str(tiny_whisper), language="de", task=None, spec_augment=True)
    assert whisper.model.config.apply_spec_augment
    whisper.freeze(encoder=True, feature_encoder=False)
    assert trainable(whisper) == {"decoder"}
    with pytest.raises(AsrctlError, match="no convolutional feature encoder"):
        whisper.freeze(encoder=False, feature_encoder=True)
    # labels carry the prompt generation starts from, after <|startoftranscript|> (the model adds that one)
    tokens = whisper.tokenizer.convert_ids_to_tokens(whisper.labels("hi"))
    assert tokens[:3] == ["<|de|>", "<|transcribe|>", "<|notimestamps|>"] and tokens[-1] == "<|endoftext|>"
    assert tokens[3] == "h"  # no leading space: this byte-level vocabulary's lone space cannot start a generation


@pytest.mark.real_model
def test_whisper_labels_begin_with_a_space_as_whisper_writes(test_assets):
    from asrctl_hf.training.whisper_task import WhisperTask

    whisper = WhisperTask(str(test_assets / "whisper-base-hf"), language="en", task=None, spec_augment=None)
    tokens = whisper.tokenizer.convert_ids_to_tokens(whisper.labels("The cat."))
    assert tokens == ["<|en|>", "<|transcribe|>", "<|notimestamps|>", "ĠThe", "Ġcat", ".", "<|endoftext|>"]


@pytest.mark.parametrize(("settings", "message"), [
    ({"training": {"lerning_rate": 1e-4}},
     "training.lerning_rate: not a setting of the hf trainer (did you mean training.learning_rate?)"),
    ({"method": "lora", "freeze": {"encoder": True}}, "freeze.* applies to SFT"),
    ({"backend": "hf-whisper", "data": {"train": "t.jsonl", "build_vocab": True}}, "data.build_vocab is for CTC"),
])
def test_recipe_mistakes_are_one_line_errors_before_loading(settings, message, tmp_path):
    flags = {"backend": "hf-ctc", "model": "m", "output_dir": str(tmp_path), "data.train": "t.jsonl"}
    recipe = build_recipe(None, flags, ())
    for key, value in settings.items():
        recipe[key] = {**recipe[key], **value} if isinstance(value, dict) else value
    spec = trainers().get("hf")
    with pytest.raises(AsrctlError, match=re.escape(message)):
        check_settings(recipe, spec)
        spec.check(recipe, resume=False)


def test_segment_rows_without_a_duration_train_on_their_own_span(tmp_path):
    """A row with an offset and no duration means the file from the offset on (the rule of every
    command), and is decoded from there."""
    from asrctl.testing import write_tone_wav
    from asrctl_hf.training.data import SpeechDataset, select

    audio = str(write_tone_wav(tmp_path / "six.wav", 6.0))
    records = [{"audio_filepath": audio, "offset": 2.5, "text": "the end"}, {"audio_filepath": audio, "text": "all"}]
    split = select("train.jsonl", records, [], labels=lambda text: [1] * len(text), unfit=lambda seconds, ids: None,
                   min_duration=None, max_duration=None)
    assert [(u.offset, u.duration, u.segment) for u in split.utterances] == [(2.5, 3.5, True), (0.0, 6.0, False)]
    dataset = SpeechDataset(split.utterances, features=lambda samples: {"samples": len(samples)})
    assert [dataset[i]["samples"] for i in range(2)] == [3.5 * 16000, 6.0 * 16000]


def test_processes_agree_on_stopping_every_few_steps_and_one_alone_asks_itself_every_step(monkeypatch):
    """Agreeing is a collective, which waits for the device: not a step-by-step cost of training."""
    import torch

    from asrctl.api import STOP_CHECK_STEPS
    from asrctl_hf.training.trainers import stop_agreed

    reduced = []

    def all_reduce(flag, op):
        reduced.append(float(flag))
        flag.fill_(1.0)  # another process was asked

    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    alone = [stop_agreed(step == 7, step, "cpu") for step in range(1, 25)]
    assert alone.index(True) == 6 and reduced == []  # at once, without a collective
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    together = [stop_agreed(False, step, "cpu") for step in range(1, 3 * STOP_CHECK_STEPS + 1)]
    assert [step + 1 for step, stop in enumerate(together) if stop] == [STOP_CHECK_STEPS, 2 * STOP_CHECK_STEPS,
                                                                        3 * STOP_CHECK_STEPS]
    assert reduced == [0.0] * 3
