"""The nemo backend: a tiny hybrid RNNT/CTC FastConformer built here, saved as .nemo, through the CLI."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from augment_probe import augment_probe, calls, noise_manifest
from finetune_checks import ON_CPU, assert_closing_table
from manifest_helpers import split_lines
from tiny_models import build_tiny_nemo

from asrctl.data.batching import BucketBatches
from asrctl.testing import interrupt_when, run_cli
from asrctl.train.summary import SCHEMA as SUMMARY_SCHEMA

pytest.importorskip("nemo.collections.asr")
SPEECH = Path(__file__).parent / "data" / "speech"


@pytest.fixture(scope="module")
def tiny_nemo(tmp_path_factory):
    texts = [json.loads(line)["text"] for line in (SPEECH / "manifest.jsonl").read_text().splitlines()]
    return build_tiny_nemo(tmp_path_factory.mktemp("nemo"), texts)


@pytest.fixture(scope="module")
def tiny_nemo_ctc(tmp_path_factory):
    texts = [json.loads(line)["text"] for line in (SPEECH / "manifest.jsonl").read_text().splitlines()]
    return build_tiny_nemo(tmp_path_factory.mktemp("nemo-ctc"), texts, ctc_only=True)


@pytest.fixture(scope="module")
def tiny_nemo_tdt(tmp_path_factory):
    texts = [json.loads(line)["text"] for line in (SPEECH / "manifest.jsonl").read_text().splitlines()]
    return build_tiny_nemo(tmp_path_factory.mktemp("nemo-tdt"), texts, tdt=True)


@pytest.fixture
def manifest(tmp_path):
    rows = [json.loads(line) for line in (SPEECH / "manifest.jsonl").read_text().splitlines()]
    rows = [{**r, "audio_filepath": str(SPEECH / r["audio_filepath"])} for r in rows if r["duration"] < 10]
    (tmp_path / "corrupt.wav").write_text("not audio")
    rows[2:2] = [{"audio_filepath": str(tmp_path / "missing.wav"), "duration": 1.0, "text": "gone"},
                 {"audio_filepath": str(tmp_path / "corrupt.wav"), "duration": 1.0, "text": "broken"}]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


@pytest.mark.parametrize("model, decoder", [("tiny_nemo", "rnnt"), ("tiny_nemo", "ctc"), ("tiny_nemo_tdt", "rnnt")])
def test_every_head_transcribes_through_the_cli_with_bad_rows(request, manifest, tmp_path, model, decoder):
    path, rows = manifest
    out = tmp_path / f"{decoder}.jsonl"
    result = run_cli("infer", str(path), "-b", "nemo", "-m", str(request.getfixturevalue(model)), "-O",
                     f"decoder={decoder}", "--allow-pickle", "--device", "cpu", "--batch-size", "3", "--timestamps",
                     "word", "-o", str(out))
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr and "NeMo I" not in result.stderr  # NeMo's log stays quiet
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["text"] for g in got] == [r["text"] for r in rows]
    for row in got:
        if row["text"] in ("gone", "broken"):
            assert row["pred_text"] is None and Path(row["audio_filepath"]).name in row["error"]
        else:
            assert isinstance(row["pred_text"], str) and "error" not in row
            words = row["pred_words"]  # times in seconds, within the utterance
            assert all(0 <= w["start"] <= w["end"] <= row["duration"] + 0.001 and w["word"] for w in words), words


@pytest.mark.parametrize("model", ["tiny_nemo", "tiny_nemo_ctc"])
def test_a_ctc_model_or_a_hybrids_ctc_head_aligns_a_known_text(request, manifest, tmp_path, model):
    path, rows = manifest
    out = tmp_path / "aligned.jsonl"
    result = run_cli("align", str(path), "-b", "nemo", "-m", str(request.getfixturevalue(model)), "--allow-pickle",
                     "--device", "cpu", "-o", str(out))
    assert result.returncode == 3, result.stderr  # the missing and the corrupt rows fail alone
    for row in [json.loads(line) for line in out.read_text().splitlines()]:
        if row["text"] in ("gone", "broken"):
            assert "words" not in row and row["error"]
            continue
        words = row["words"]
        assert [w["word"] for w in words] == row["text"].split()
        assert all(0 <= w["start"] <= w["end"] <= row["duration"] + 0.1 for w in words)
        assert all(a["end"] <= b["start"] for a, b in zip(words, words[1:]))
        assert " ".join(s["text"] for s in row["segments"]) == row["text"]


def test_a_transducer_without_a_ctc_head_cannot_align(tiny_nemo_tdt, manifest, tmp_path):
    path, _ = manifest
    result = run_cli("align", str(path), "-b", "nemo", "-m", str(tiny_nemo_tdt), "--allow-pickle", "--device", "cpu",
                     "-o", str(tmp_path / "out.jsonl"))
    assert result.returncode == 1 and "a transducer without a CTC head: it cannot align" in result.stderr


def test_a_tdt_model_decodes_greedily_in_batch_with_its_durations(tiny_nemo_tdt):
    from asrctl_nemo.backend import load

    model = load(str(tiny_nemo_tdt), device="cpu", dtype="float32", allow_pickle=True)
    decoding = model.asr.decoding.decoding
    assert type(decoding).__name__ == "GreedyBatchedTDTInfer" and list(decoding.durations) == [0, 1, 2, 3, 4]
    assert model.decoder == "rnnt"


def test_an_hour_of_audio_transcribes_in_bounded_memory(tiny_nemo, tmp_path):
    """Full attention over an hour (45,000 encoder frames) needs more than 17 GB: past 10 minutes
    the backend switches to local attention. CTC head: a random transducer emits up to 10 symbols a
    frame, which would take minutes."""
    import resource

    import numpy as np
    import soundfile as sf

    speech, rate = sf.read(SPEECH / "utt01.flac", dtype="float32")
    hour = 3600 * rate
    path = tmp_path / "hour.flac"
    sf.write(path, np.tile(speech, hour // len(speech) + 1)[:hour], rate)
    manifest = tmp_path / "hour.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": str(path), "duration": 3600.0}) + "\n")
    # A wrapper process whose only child is asrctl: its RUSAGE_CHILDREN peak is the job's largest
    # process; the address-space limit keeps a regression from taking the machine's memory.
    wrapper = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)")
    out = tmp_path / "hour-out.jsonl"
    done = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "asrctl", "infer", str(manifest),
                           "-b", "nemo", "-m", str(tiny_nemo), "--allow-pickle", "-O", "decoder=ctc", "-o", str(out),
                           "-q"], capture_output=True, text=True,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (12 * 2**30, 12 * 2**30)))
    peak_kib, code = map(int, done.stdout.split())
    assert code == 0, done.stderr
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert isinstance(row["pred_text"], str) and "error" not in row
    print(f"peak RSS {peak_kib / 2**10:.0f} MiB")
    assert peak_kib / 2**20 < 6  # measured: 3.0 GiB


def test_a_nemo_file_needs_allow_pickle_and_a_wrong_head_is_one_line(tiny_nemo, manifest, tmp_path):
    path, _ = manifest
    refused = run_cli("infer", str(path), "-b", "nemo", "-m", str(tiny_nemo), "-o", str(tmp_path / "a.jsonl"))
    assert refused.returncode == 1 and "--allow-pickle" in refused.stderr and "Traceback" not in refused.stderr
    wrong = run_cli("infer", str(path), "-b", "nemo", "-m", str(tiny_nemo), "-O", "decoder=tdt", "--allow-pickle",
                    "-o", str(tmp_path / "b.jsonl"))
    assert wrong.returncode == 1 and "decoder='tdt': expected one of rnnt, ctc" in wrong.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--language", "de"], "is a hybrid RNNT/CTC model: --language is for multitask (Canary) models"),
    (["--language-key", "lang"], "this nemo model takes no language per row (--language-key)"),
])
def test_a_canarys_options_for_another_kind_of_model_are_one_line(tiny_nemo, manifest, args, message):
    result = run_cli("infer", str(manifest[0]), "-b", "nemo", "-m", str(tiny_nemo), "--allow-pickle", "--device",
                     "cpu", "-q", "-o", str(manifest[0].with_name("out.jsonl")), *args)
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert message in line


def test_results_of_every_nemo_shape_become_one_text_per_utterance():
    from nemo.collections.asr.parts.utils.rnnt_utils import Hypothesis

    from asrctl_nemo.results import transcripts

    def texts(result, count):
        return [t.text for t in transcripts(result, [1.0] * count, frame_seconds=0.08)]

    def hypothesis(text):
        return Hypothesis(score=0.0, y_sequence=[], text=text)

    assert texts(["a b", ""], 2) == ["a b", ""]
    assert texts([hypothesis("a b"), hypothesis("c")], 2) == ["a b", "c"]
    assert texts(([hypothesis("a")], None), 1) == ["a"]  # (best, all)
    assert texts([[hypothesis("best"), hypothesis("second")], []], 2) == ["best", ""]  # n-best lists
    with pytest.raises(ValueError, match="for 3 utterances"):
        texts(["a"], 3)
    timed = Hypothesis(score=0.0, y_sequence=[], text="a cat", timestamp={
        "word": [{"word": "a", "start_offset": 2, "end_offset": 3},
                 {"word": " cat", "start_offset": 5, "end_offset": 9}],
        "segment": [{"segment": "a cat", "start_offset": 2, "end_offset": 9}]})
    [words] = transcripts([timed], [1.0], frame_seconds=0.08, timestamps="word")
    assert words.words == [{"start": 0.16, "end": 0.24, "word": "a"}, {"start": 0.4, "end": 0.72, "word": "cat"}]
    [segments] = transcripts([timed], [1.0], frame_seconds=0.08, timestamps="segment")
    assert segments.segments == [{"start": 0.16, "end": 0.72, "text": "a cat"}] and segments.text == "a cat"
    [short] = transcripts([timed], [0.5], frame_seconds=0.08, timestamps="word")  # a last token past the audio
    assert short.words[-1] == {"start": 0.4, "end": 0.5, "word": "cat"}


def test_commands_other_than_nemo_inference_do_not_import_nemo(tmp_path):
    for args in (["--help"], ["plugins"], ["manifest", "--help"], ["infer", "--help"]):
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", "asrctl", *args],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        modules = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                   if line.startswith("import time")}
        assert not {m for m in modules if m == "nemo" or m.startswith("nemo.")}, args
        assert args[0] != "plugins" or "nemo" in result.stdout  # the plugin was asked what it provides


@pytest.fixture
def train(tmp_path):
    """The 7 fixture utterances shorter than 4 s, with absolute paths."""
    rows = [json.loads(line) for line in (SPEECH / "manifest.jsonl").read_text().splitlines()]
    rows = [{**r, "audio_filepath": str(SPEECH / r["audio_filepath"])} for r in rows if r["duration"] < 4]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def fixture_wer(model: Path, manifest: Path, tmp_path: Path, decoder: str) -> float:
    """WER of `asrctl infer` with the model's `decoder` head over `manifest`, whisper-en normalised."""
    import jiwer

    from asrctl.score.normalizers import get_normalizer

    preds = tmp_path / f"preds-{decoder}.jsonl"
    infer = run_cli("infer", str(manifest), "-b", "nemo", "-m", str(model), "--allow-pickle", "-O",
                    f"decoder={decoder}", "-o", str(preds), "-q")
    assert infer.returncode == 0, infer.stderr
    normalize = get_normalizer("whisper-en")
    got = [json.loads(line) for line in preds.read_text().splitlines()]
    return jiwer.wer([normalize(r["text"]) for r in got], [normalize(r["pred_text"]) for r in got])


def test_sft_of_a_ctc_model_learns_the_fixtures(tiny_nemo_ctc, train, tmp_path):
    out = tmp_path / "sft"
    args = ["finetune", "-b", "nemo", "-m", str(tiny_nemo_ctc), "--allow-pickle", "--train", str(train),
            "--val", str(train), "-o", str(out), "--max-steps", "300", "--learning-rate", "3e-3", "--batch-size",
            "7", "--eval-steps", "100", "--set", "training.warmup_steps=20", "--set",
            "training.num_workers=0", "-q", "--json"]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["steps"] == 300 and summary["best_val_wer"] <= 30, summary  # percent
    assert "cannot spell" not in result.stderr  # the tokenizer spells every transcript
    assert (out / "model.nemo").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
    again = run_cli(*args)  # the same output folder again, without --resume: refused before NeMo loads
    assert again.returncode == 1 and "--resume" in again.stderr and "Traceback" not in again.stderr
    assert fixture_wer(out / "model.nemo", train, tmp_path, "ctc") <= 0.3


def test_epochs_and_tensorboard_as_for_the_hf_trainer(tiny_nemo_ctc, train, tmp_path):
    out = tmp_path / "epochs"
    result = run_cli("finetune", "-b", "nemo", "-m", str(tiny_nemo_ctc), "--allow-pickle", "--train", str(train),
                     "--val", str(train), "-o", str(out), "--epochs", "3", "--batch-size", "2", "--eval-steps", "4",
                     "--tensorboard", "--set", "training.num_workers=0", "-q", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["steps"] == 12 and summary["epochs"] == 3.0  # 7 rows in batches of 2: 4 steps an epoch
    assert list((out / "runs").glob("events.out.tfevents.*"))
    assert json.loads((out / "training_summary.json").read_text()) == summary
    jsonschema.validate(summary, json.loads(SUMMARY_SCHEMA.read_text()))  # the one shape every trainer writes
    assert summary["data"]["train"] == {"file": str(train), "rows": 7, "hours": summary["data"]["train"]["hours"],
                                        "dropped": 0, "dropped_by_reason": {}}
    assert summary["data"]["train"]["hours"] > 0 and summary["model"] == str(out / "model.nemo")


def test_the_manifests_nemo_reads_keep_the_rows_every_trainer_keeps(train, tmp_path):
    """Duration limits drop training rows, counted by reason (validation keeps all), and a row
    without a duration gets the length of its span, which NeMo's loaders need."""
    from asrctl.api import probe
    from asrctl_nemo.training import write_manifest

    rows = [json.loads(line) for line in train.read_text().splitlines()]
    longest = max(rows, key=lambda r: r["duration"])
    span = {"audio_filepath": longest["audio_filepath"], "offset": 1.0, "text": "the end"}  # no duration
    rows += [span, {"audio_filepath": rows[0]["audio_filepath"], "text": ""}]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lengths = sorted(r["duration"] for r in rows[:-2])
    low, high = lengths[1], lengths[-2]
    spans = lengths + [probe(longest["audio_filepath"]).duration - 1.0]
    settings = {"train": str(data), "val": str(data), "min_duration": low, "max_duration": high}
    manifest, report = write_manifest(settings, "train", tmp_path, [], [])
    written = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert sorted(r["duration"] for r in written) == pytest.approx(sorted(d for d in spans if low <= d <= high))
    assert report["dropped_by_reason"] == {"no transcript": 1,
                                           f"shorter than {low:g} s": sum(d < low for d in spans),
                                           f"longer than {high:g} s": sum(d > high for d in spans)}
    _, val = write_manifest(settings, "val", tmp_path, [], [])
    assert val["rows"] == len(rows) - 1 and val["dropped_by_reason"] == {"no transcript": 1}


def test_early_stopping_ends_training_after_validations_without_a_better_wer(tiny_nemo_ctc, train, tmp_path):
    result = run_cli("finetune", "-b", "nemo", "-m", str(tiny_nemo_ctc), "--allow-pickle", "--train", str(train),
                     "--val", str(train), "-o", str(tmp_path / "stop"), "--max-steps", "50", "--learning-rate", "0",
                     "--batch-size", "7", "--eval-steps", "1", "--early-stopping-patience", "2",
                     "--set", "training.num_workers=0", "-q", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["steps"] == 3  # nothing learnt: the first WER stays the best for 2 more


# The 7 rows (2.5-3.3 s) in 3 duration buckets, 2 to a batch in 6.6 s: 4 batches an epoch, as 2 to a batch make
BY_DURATION = ["--batch-seconds", "6.6", "--set", "training.buckets=3"]


def test_batches_by_duration_plan_the_epoch_by_their_own_count(tiny_nemo_ctc, train, tmp_path):
    durations = [json.loads(line)["duration"] for line in train.read_text().splitlines()]
    assert len(BucketBatches(durations, batch_seconds=6.6, buckets=3)) == 4
    result = run_cli("finetune", "-b", "nemo", "-m", str(tiny_nemo_ctc), "--allow-pickle", "--train", str(train),
                     "-o", str(tmp_path / "out"), "--max-steps", "6", "--set", "training.num_workers=0", "-q",
                     "--json", *BY_DURATION)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # with 16 to a batch (the default count) an epoch would be 1 step
    assert summary["steps"] == 6 and summary["epochs"] == 1.5


@pytest.mark.parametrize("batching", [[], BY_DURATION], ids=["fixed count", "by duration"])
def test_a_mix_of_weighted_sources_trains_on_their_rows_together(tiny_nemo_ctc, train, tmp_path, batching):
    first, second = split_lines(train, 4, tmp_path / "a.jsonl", tmp_path / "b.jsonl")
    rows = train.read_text().splitlines()
    out = tmp_path / "out"
    result = run_cli("finetune", "-b", "nemo", "-m", str(tiny_nemo_ctc), "--allow-pickle", "--train", f"{first}:0.6",
                     "--train", f"{second}:0.4", "-o", str(out), "--max-steps", "6", "--batch-size", "2",
                     "--set", "training.num_workers=0", "-q", "--json", *batching)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    jsonschema.validate(summary, json.loads(SUMMARY_SCHEMA.read_text()))
    assert [(part["file"], part["rows"], part["weight"]) for part in summary["data"]["mix"]] == [
        (str(first), 4, 0.6), (str(second), 3, 0.4)]
    assert summary["data"]["train"]["rows"] == 7 and summary["data"]["train"]["file"] == f"{first}:0.6 + {second}:0.4"
    # an epoch draws 7 rows (4 from the first, 3 from the second) in 4 batches of 2 or fewer
    assert summary["steps"] == 6 and summary["epochs"] == 1.5
    written = [json.loads(line)["audio_filepath"] for line in (out / "train_manifest.json").read_text().splitlines()]
    assert written == [json.loads(row)["audio_filepath"] for row in rows]  # the sources' rows, in their order


@pytest.mark.parametrize("batching", [[], BY_DURATION], ids=["fixed count", "by duration"])
def test_a_killed_run_resumes_from_its_last_checkpoint_to_the_same_weights(train, tmp_path, batching):
    """4 batches an epoch, a checkpoint every 5 steps: the run is killed mid-epoch, then stopped by
    Ctrl-C after it resumed, and the resumed run must go on with the rows of that epoch it had not
    reached, in the same order, and with the dropout masks the uninterrupted run drew. Rows are read
    by a DataLoader worker, as by default, so the loader's state includes its workers'."""
    import torch
    from nemo.collections.asr.models import ASRModel

    texts = [json.loads(line)["text"] for line in train.read_text().splitlines()]
    model = build_tiny_nemo(tmp_path / "model", texts, ctc_only=True, dropout=0.1)
    args = ["finetune", "-b", "nemo", "-m", str(model), "--allow-pickle", "--train", str(train),
            "--max-steps", "60", "--learning-rate", "3e-3", "--batch-size", "2", "--eval-steps", "5", "--set",
            "training.num_workers=1", "-q", "--json", *batching]
    killed = tmp_path / "killed"
    last = killed / "checkpoints" / "last.ckpt"
    code, stderr = interrupt_when([*args, "-o", str(killed)], last, signal.SIGKILL)
    assert code != 0 and not (killed / "training_summary.json").exists(), stderr
    first = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 0 < first < 60 and first % 4, first  # within an epoch
    # interrupted again, with Ctrl-C this time, once it has saved a later checkpoint
    before = last.stat().st_mtime_ns
    code, stderr = interrupt_when([*args, "-o", str(killed), "--resume"],
                                  lambda: last.stat().st_mtime_ns != before, signal.SIGINT)
    assert code == 130 and "--resume" in stderr and "Traceback" not in stderr, stderr
    assert "stopping after the current step" in stderr, stderr  # and its checkpoint is saved
    saved = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert first < saved < 60, saved
    resumed = run_cli(*args, "-o", str(killed), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["resumed_from_step"] == saved and summary["steps"] == 60
    straight = run_cli(*args, "-o", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr
    weights = [ASRModel.restore_from(str(folder / "model.nemo"), map_location="cpu").state_dict()
               for folder in (killed, tmp_path / "straight")]
    for name, value in weights[1].items():
        assert torch.allclose(value.float(), weights[0][name].float(), atol=1e-5), name


def test_sft_of_a_hybrid_model_learns_the_fixtures_on_both_heads(tiny_nemo, train, tmp_path):
    """The tiny hybrid's transducer loss is NeMo's "pytorch" one: on CPUs the fastest NeMo has at
    this size (still ~1 s a step), hence 8x subsampling and a 160-piece vocabulary (short lattices)."""
    out = tmp_path / "sft"
    result = run_cli("finetune", "-b", "nemo", "-m", str(tiny_nemo), "--allow-pickle", "--train", str(train),
                     "--val", str(train), "-o", str(out), "--max-steps", "150", "--learning-rate", "5e-3",
                     "--batch-size", "7", "--eval-steps", "50", "--set", "training.warmup_steps=20", "--set",
                     "training.num_workers=0", "-q", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["best_val_wer"] <= 30  # NeMo's validation WER: the RNNT head's
    for decoder in ("rnnt", "ctc"):
        assert fixture_wer(out / "model.nemo", train, tmp_path, decoder) <= 0.3, decoder


def test_finetuning_a_tdt_model_without_a_gpu_is_refused_before_loading(tiny_nemo_tdt, train, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU trains TDT models")
    out = tmp_path / "tdt"
    for method in ([], ["--peft", "lora"]):  # SFT, LoRA
        result = run_cli("finetune", "-b", "nemo", "-m", str(tiny_nemo_tdt), "--allow-pickle", "--train", str(train),
                         "-o", str(out), *method, "--max-steps", "2")
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert "is a TDT transducer model, which NeMo trains on CUDA GPUs only" in result.stderr
        assert "fine-tunes CTC, RNNT, hybrid RNNT/CTC" in result.stderr and not out.exists()  # nothing was loaded


def test_two_processes_train_one_model_through_lightning_ddp(tiny_nemo_ctc, train, tmp_path):
    """--nproc-per-node on CPUs (gloo): Lightning runs the command again in a second process; one
    job, one data table and one summary."""
    out = tmp_path / "ddp"
    result = run_cli("finetune", "-b", "nemo", "-m", str(tiny_nemo_ctc), "--allow-pickle", "--train", str(train),
                     "--val", str(train), "-o", str(out), "--max-steps", "10", "--eval-steps", "5", "--batch-size",
                     "4", "--set", "training.num_workers=0", "--nproc-per-node", "2", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # a second summary would not parse
    assert result.stderr.count("fine-tuning on the CPU") == 1  # warned by the main process only
    assert summary["processes"] == 2 and summary["steps"] == 10
    assert result.stderr.count("7 rows from") == 2  # train and val, once
    assert (out / "model.nemo").is_file()


def test_recipes_are_listed_and_pass_the_trainers_checks(tmp_path):
    from asrctl.plugins import trainers
    from asrctl.train.recipes import build_recipe, check_before_loading

    [spec] = [t for t in trainers() if t.name == "nemo"]
    families = ("nemo-fastconformer-hybrid-large", "nemo-parakeet-ctc-0.6b")
    assert set(spec.recipes) == {f"{family}-{method}" for family in families for method in ("sft", "lora")}
    train = tmp_path / "train.jsonl"
    train.write_text("")
    for path in spec.recipes.values():
        recipe = build_recipe(path, {"output_dir": str(tmp_path / "out"), "data.train": str(train)}, ())
        check_before_loading(recipe, spec)
        spec.check(recipe, resume=False)
    listed = run_cli("finetune", "--list-recipes")
    assert "nemo-parakeet-ctc-0.6b-sft" in listed.stdout
    bad = run_cli("finetune", "-c", "nemo-parakeet-ctc-0.6b-sft", "--train", str(train), "-o", str(tmp_path / "o"),
                  "--set", "training.lerning_rate=1")
    assert bad.returncode == 1 and "training.lerning_rate: not a setting of the nemo trainer (did you mean" in \
        bad.stderr
    missing = run_cli("finetune", "-b", "nemo", "-m", str(tmp_path / "gone.nemo"), "--train", str(train), "-o",
                      str(tmp_path / "o"))  # found before the data is read
    assert missing.returncode == 1 and "no such .nemo file" in missing.stderr and "rows" not in missing.stderr


def test_augmentation_changes_the_training_audio_only_and_is_drawn_from_the_seed(tiny_nemo_ctc, train, tmp_path):
    rows = train.read_text().splitlines()
    first_rows, val = split_lines(train, 4, tmp_path / "first.jsonl", tmp_path / "val.jsonl")
    probe, noise = augment_probe(tmp_path / "probe"), noise_manifest(tmp_path / "noise")

    def run(name: str) -> list[dict]:
        log = tmp_path / f"{name}.log"
        result = run_cli("finetune", "-b", "nemo", "-m", str(tiny_nemo_ctc), "--allow-pickle", "--train",
                         str(first_rows), "--val", str(val), "-o", str(tmp_path / name), "--max-steps", "3",
                         "--batch-size", "2", "--eval-steps", "3", "--speed-perturb", "0.9,1.1", "--noise", str(noise),
                         "--seed", "1", "--set", "training.num_workers=0", "-q",
                         env={"AUGMENT_LOG": str(log)}, pythonpath=probe)
        assert result.returncode == 0, result.stderr
        return calls(log)

    samples = [round(16000 * json.loads(row)["duration"]) for row in rows]
    first = run("first")
    assert len(first) >= 6  # 3 steps of 2
    # NeMo decodes the audio itself: its length tells a training row (the first 4) from a validation one
    assert all(min(abs(call["samples"] - n) for n in samples[:4]) <= 2 for call in first), first
    assert all(min(abs(call["samples"] - n) for n in samples[4:]) > 2 for call in first), first
    assert all(call["output"] != call["input"] for call in first)
    assert run("again") == first  # the same seed hears the same (another seed not: tests/test_augment.py)


def test_spec_augment_is_switched_off_for_training_and_on_only_where_the_model_has_it(tiny_nemo_ctc):
    from types import SimpleNamespace

    from nemo.collections.asr.models import ASRModel

    from asrctl import AsrctlError
    from asrctl_nemo.augment import switch_spec_augment

    masked = SimpleNamespace(spec_augmentation=object())
    switch_spec_augment(masked, None)
    assert masked.spec_augmentation is not None
    switch_spec_augment(masked, False)
    assert masked.spec_augmentation is None
    plain = ASRModel.restore_from(str(tiny_nemo_ctc), map_location="cpu")  # its config has no spec_augment
    with pytest.raises(AsrctlError, match="has no SpecAugment in its config"):
        switch_spec_augment(plain, True)


def test_baseline_wer_and_the_average_of_the_last_checkpoints(tiny_nemo_ctc, train, tmp_path):
    import torch
    from nemo.collections.asr.models import ASRModel

    out = tmp_path / "averaged"
    result = run_cli("finetune", "-b", "nemo", "-m", str(tiny_nemo_ctc), "--allow-pickle", "--train", str(train),
                     "--val", str(train), "-o", str(out), "--max-steps", "9", "--learning-rate", "3e-3",
                     "--batch-size", "4", "--eval-steps", "3", "--average-last", "2",
                     "--set", "training.num_workers=0", env=ON_CPU)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "training_summary.json").read_text())
    assert_closing_table(result, summary)
    jsonschema.validate(summary, json.loads(SUMMARY_SCHEMA.read_text()))
    assert summary["baseline_val_wer"] >= 90  # the untrained model spells noise
    assert summary["baseline_val_wer"] == json.loads((out / "baseline.json").read_text())["val_wer"]
    used = summary["averaged"]["checkpoints"]
    assert [Path(path).name for path in used] == ["recent-6.ckpt", "recent-9.ckpt"]
    assert summary["averaged"]["val_wer"] is not None

    first, last = (torch.load(path, map_location="cpu", weights_only=False)["state_dict"] for path in used)
    output = ASRModel.restore_from(str(out / "model.nemo"), map_location="cpu").state_dict()
    assert any(value.is_floating_point() and not value.equal(last[key]) for key, value in first.items())
    for key, value in output.items():
        expected = (first[key] + last[key]) / 2 if value.is_floating_point() else last[key]
        assert torch.allclose(value, expected, atol=1e-6), key


def test_lora_trains_adapters_only_and_infer_loads_the_adapter_and_the_merged_model(tiny_nemo, train, tmp_path):
    import torch
    from nemo.collections.asr.models import ASRModel
    from safetensors.torch import load_file

    out = tmp_path / "lora"
    result = run_cli("finetune", "-b", "nemo", "-m", str(tiny_nemo), "--allow-pickle", "--train", str(train),
                     "--val", str(train), "-o", str(out), "--peft", "lora", "--lora-r", "4", "--merge",
                     "--max-steps", "20", "--learning-rate", "3e-3", "--eval-steps", "10",
                     "--set", "training.num_workers=0", "-q", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert adapter and all("lora_" in name for name in adapter)
    assert sum(t.numel() for t in adapter.values()) == summary["trainable_parameters"]
    assert summary["method"] == "lora" and summary["trainable_share"] < 0.2
    # every base weight in the best checkpoint is the base model's own; the adapter did change
    base = ASRModel.restore_from(str(tiny_nemo), map_location="cpu").state_dict()
    trained = torch.load(summary["best_checkpoint"], map_location="cpu", weights_only=False)["state_dict"]
    for name, value in trained.items():
        if "lora_" not in name and not name.endswith("num_batches_tracked"):  # a counter, not a weight
            key = name.replace(".base_layer.", ".")
            assert torch.equal(value, base[key]), name
    assert any(t.abs().sum() > 0 for name, t in adapter.items() if "lora_B" in name)
    # the merged model is a plain NeMo model, its weights the base ones plus the adapters' products
    merged = ASRModel.restore_from(summary["merged_model"], map_location="cpu")
    assert not any("lora_" in name for name in merged.state_dict())
    changed = [name for name, value in merged.state_dict().items()
               if not torch.equal(value, base[name]) and not name.endswith("num_batches_tracked")]
    assert changed and all(name.rsplit(".", 2)[-2] in ("linear_q", "linear_k", "linear_v", "linear_out", "linear1",
                                                        "linear2") for name in changed), changed
    texts = []
    for model in (out, summary["merged_model"]):
        preds = tmp_path / "preds.jsonl"
        preds.unlink(missing_ok=True)
        infer = run_cli("infer", str(train), "-b", "nemo", "-m", str(model), "--allow-pickle", "-o", str(preds), "-q")
        assert infer.returncode == 0, infer.stderr
        texts.append([json.loads(line)["pred_text"] for line in preds.read_text().splitlines()])
    assert texts[0] == texts[1] and all(isinstance(t, str) for t in texts[0])


def test_a_new_tokenizer_replaces_the_vocabulary(tiny_nemo_ctc, train, tmp_path):
    import sentencepiece as spm

    tokenizer = tmp_path / "tokenizer"
    tokenizer.mkdir()
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(json.loads(line)["text"].lower() for line in train.read_text().splitlines()))
    spm.SentencePieceTrainer.train(input=str(texts), model_prefix=str(tokenizer / "tokenizer"), vocab_size=36,
                                   model_type="bpe", character_coverage=1.0, minloglevel=2)
    pieces = spm.SentencePieceProcessor(model_file=str(tokenizer / "tokenizer.model"))
    (tokenizer / "vocab.txt").write_text("".join(pieces.id_to_piece(i) + "\n" for i in range(36)))
    out = tmp_path / "new-vocab"
    result = run_cli("finetune", "-b", "nemo", "-m", str(tiny_nemo_ctc), "--allow-pickle", "--train", str(train),
                     "-o", str(out), "--new-tokenizer", str(tokenizer), "--max-steps", "20", "--batch-size", "7",
                     "--set", "training.num_workers=0", "-q")
    assert result.returncode == 0, result.stderr
    # the new tokenizer is lower-case, the transcripts are not
    assert "7 of 7 transcripts hold characters the model's tokenizer cannot spell ('G' 'I' 'R' 'T')" in result.stderr
    from nemo.collections.asr.models import ASRModel

    tuned = ASRModel.restore_from(str(out / "model.nemo"), map_location="cpu")
    assert tuned.tokenizer.vocab_size == 36 and tuned.decoder.num_classes_with_blank == 37
    lora = run_cli("finetune", "-b", "nemo", "-m", str(tiny_nemo_ctc), "--train", str(train), "-o", str(tmp_path / "x"),
                   "--new-tokenizer", str(tokenizer), "--peft", "lora")
    assert lora.returncode == 1 and "use SFT" in lora.stderr


SLURM_TASK = {"SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "2", "SLURM_JOB_NAME": "train",
              "SLURM_NODEID": "1", "SLURM_PROCID": "1", "SLURM_LOCALID": "0", "SLURM_JOB_ID": "7"}


def test_a_job_takes_its_ranks_from_torchrun_or_lightning_never_from_slurms_one_task_per_node(tmp_path, monkeypatch):
    """Under srun with one asrctl per node, Lightning would read SLURM's variables (one task per node,
    against the processes per GPU it is asked for) and refuse; the ranks come from torchrun (several
    machines) or from Lightning's own launch (one machine)."""
    from lightning.fabric.plugins.environments import LightningEnvironment, TorchElasticEnvironment

    from asrctl_nemo.training import lightning_trainer

    for name, value in SLURM_TASK.items():
        monkeypatch.setenv(name, value)
    settings = {"max_steps": 1, "eval_steps": 1, "gradient_clip_val": 1.0, "precision": "32-true"}
    one_machine, _ = lightning_trainer(settings, {"nproc_per_node": 2}, tmp_path, validate=False, quiet=True)
    assert isinstance(one_machine.strategy.cluster_environment, LightningEnvironment)
    assert (one_machine.num_devices, one_machine.num_nodes) == (2, 1)
    torchrun = {"TORCHELASTIC_RUN_ID": "asrctl", "RANK": "1", "LOCAL_RANK": "0", "WORLD_SIZE": "2",
                "LOCAL_WORLD_SIZE": "1", "GROUP_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
    for name, value in torchrun.items():
        monkeypatch.setenv(name, value)
    second_node, _ = lightning_trainer(settings, {"nproc_per_node": 1, "nnodes": 2}, tmp_path, validate=False,
                                       quiet=True)
    assert isinstance(second_node.strategy.cluster_environment, TorchElasticEnvironment)
    assert (second_node.global_rank, second_node.node_rank, second_node.world_size) == (1, 1, 2)


def test_a_job_of_several_machines_runs_under_torchrun_whoever_starts_each_machines_processes(tmp_path, monkeypatch):
    """The nemo trainer starts the processes of one machine itself (Lightning); the machines of a job
    meet through torchrun's rendezvous at --rdzv-endpoint."""
    from click.testing import CliRunner

    from asrctl.cli import cli
    from asrctl.train import launch

    launched = []

    def torchrun(settings, argv):
        launched.append(settings)
        raise SystemExit(0)

    monkeypatch.setattr(launch, "run_under_torchrun", torchrun)
    (tmp_path / "t.jsonl").write_text("")
    base = ["finetune", "-b", "nemo", "-m", "nvidia/stt_en_fastconformer_ctc_large", "--train",
            str(tmp_path / "t.jsonl"), "-o", str(tmp_path / "out"), "--nproc-per-node", "2"]
    monkeypatch.setattr("asrctl_nemo.training.check", lambda recipe, resume: None)  # no model to look at here
    result = CliRunner().invoke(cli, [*base, "--nnodes", "2", "--rdzv-endpoint", "node0"])
    assert result.exit_code == 0, result.output
    assert launched == [{"nproc_per_node": 2, "nnodes": 2, "rdzv_endpoint": "node0"}]
