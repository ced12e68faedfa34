"""`asrctl infer` semantics with a toy backend plugin: order, per-row errors, resume, SIGKILL."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from asrctl.data.batching import duration_batches
from asrctl.specs import BackendSpec
from asrctl.testing import make_manifest, make_plugin_dist, run_cli, write_tone_wav

# A backend whose "transcript" is the number of samples it was given: it shows that each row
# got its own audio, whatever the batching and ordering did. Options given to load() follow as JSON.
TOY = """
import json, os, time
from asrctl import BackendSpec, Transcript, hookimpl

class Toy:
    def __init__(self, options):
        self.suffix = f" {json.dumps(options, sort_keys=True)}" if options else ""

    def transcribe(self, batch):
        time.sleep(float(os.environ.get("TOY_SLEEP", "0")))
        if any(len(a) == 16000 * 7 for a in batch):  # 7-second audio makes this backend raise
            raise RuntimeError("toy failure")
        return [Transcript(text=f"samples {len(a)}{self.suffix}") for a in batch]

def load(model, *, device, dtype, **options):
    assert device == "cpu" and dtype == "float32", (device, dtype)
    return Toy(options)

@hookimpl
def register_backends(register):
    register(BackendSpec(name="toy", load=load, options=frozenset({"language"}),
                         extra_options={"flavour": "a word", "rounds": "a count", "loud": "on or off"}))
"""


@pytest.fixture
def toy_site(tmp_path):
    return make_plugin_dist(tmp_path / "site", "asrctl-toy", TOY)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def infer(manifest, out, site, *extra, env=None):
    return run_cli("infer", str(manifest), "-b", "toy", "-m", "none", "-o", str(out), "--device", "cpu",
                   "--num-workers", "1", *extra, pythonpath=site, env=env)


def test_order_kept_errors_per_row_and_fields_preserved(tmp_path, toy_site):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "corrupt.wav").write_text("this is not audio")
    bad = [{"audio_filepath": "missing.wav", "duration": 1.0, "text": "gone"},
           {"audio_filepath": "corrupt.wav", "duration": 1.0, "text": "broken"}]
    durations = [0.5, 3.0, 1.25, 2.0, 0.75]
    manifest, rows = make_manifest(tmp_path / "data", durations, bad)
    manifest.write_text(manifest.read_text() + '{"audio_filepath": "x.wav", "text": \n')  # malformed line 8
    out = tmp_path / "out" / "pred.jsonl"
    result = infer(manifest, out, toy_site, "--batch-size", "2")
    assert result.returncode == 3, result.stderr
    got = read_jsonl(out)
    assert [r["text"] for r in got] == [r["text"] for r in rows]
    for row, seconds in zip(got, durations):
        assert row["pred_text"] == f"samples {int(seconds * 16000)}"
        assert "error" not in row and row["id"] == rows[got.index(row)]["id"]
    missing, corrupt = got[5], got[6]
    assert missing["pred_text"] is None and "missing.wav" in missing["error"]
    assert corrupt["pred_text"] is None and "corrupt.wav" in corrupt["error"]
    assert f"{manifest}:6:" in result.stderr and f"{manifest}:7:" in result.stderr
    assert f"{manifest}:8: invalid JSON" in result.stderr
    assert not (out.parent / "pred.jsonl.partial").exists()


def test_failing_batch_is_split_and_only_the_bad_row_fails(tmp_path, toy_site):
    manifest, _ = make_manifest(tmp_path, [7.0, 6.5, 6.0, 5.5])
    out = tmp_path / "pred.jsonl"
    result = infer(manifest, out, toy_site, "--batch-size", "4")
    assert result.returncode == 3
    got = read_jsonl(out)
    assert "toy failure" in got[0]["error"] and got[0]["pred_text"] is None
    assert [r["pred_text"] for r in got[1:]] == [f"samples {int(s * 16000)}" for s in (6.5, 6.0, 5.5)]
    assert "retrying it in halves" in result.stderr


def test_missing_durations_are_probed_and_segments_honoured(tmp_path, toy_site):
    write_tone_wav(tmp_path / "long.wav", 4.0)
    manifest = tmp_path / "in.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "long.wav"}) + "\n"
                        + json.dumps({"audio_filepath": "long.wav", "offset": 1.0, "duration": 2.0}) + "\n")
    out = tmp_path / "pred.jsonl"
    assert infer(manifest, out, toy_site).returncode == 0
    assert [r["pred_text"] for r in read_jsonl(out)] == ["samples 64000", "samples 32000"]


def test_an_output_of_another_job_needs_overwrite_and_options_are_checked(tmp_path, toy_site):
    manifest, _ = make_manifest(tmp_path, [1.0])
    out = tmp_path / "pred.jsonl"
    out.write_text("an output of something else\n")
    again = infer(manifest, out, toy_site)
    assert again.returncode == 1 and "--overwrite" in again.stderr
    assert infer(manifest, out, toy_site, "--overwrite").returncode == 0
    wrong = infer(manifest, tmp_path / "x.jsonl", toy_site, "--beam-size", "4")
    assert wrong.returncode == 1 and "does not take --beam-size" in wrong.stderr and "Traceback" not in wrong.stderr


def test_backend_options_reach_load_as_yaml_scalars(tmp_path, toy_site):
    manifest, _ = make_manifest(tmp_path, [1.0])
    out = tmp_path / "pred.jsonl"
    result = infer(manifest, out, toy_site, "--language", "en", "-O", "flavour=int8", "--backend-option", "rounds=5",
                   "-O", "loud=true")
    assert result.returncode == 0, result.stderr
    [row] = read_jsonl(out)
    assert row["pred_text"] == 'samples 16000 {"flavour": "int8", "language": "en", "loud": true, "rounds": 5}'


def test_unknown_backend_option_is_one_line_with_the_backend_keys(tmp_path, toy_site):
    manifest, _ = make_manifest(tmp_path, [1.0])
    for command in (["infer"], ["eval", "--wer"]):  # eval transcribes with the same options
        result = run_cli(*command, str(manifest), "-b", "toy", "-m", "none", "-o", str(tmp_path / "x.jsonl"),
                         "-O", "flavor=x", pythonpath=toy_site)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        [line] = result.stderr.strip().splitlines()
        assert "backend 'toy': unknown -O option 'flavor' (did you mean 'flavour'?)" in line
        assert line.endswith("known -O options: flavour, loud, rounds")
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize(("option", "message"), [("beam_size=4", "use --beam-size"), ("rounds", "expected KEY=VALUE")])
def test_malformed_backend_option_is_a_usage_error(tmp_path, toy_site, option, message):
    manifest, _ = make_manifest(tmp_path, [1.0])
    result = infer(manifest, tmp_path / "x.jsonl", toy_site, "-O", option)
    assert result.returncode == 2 and message in result.stderr


def test_backend_options_are_listed_by_asrctl_plugins(toy_site):
    rows = {row["name"]: row for row in json.loads(run_cli("plugins", "--json", pythonpath=toy_site).stdout)}
    options = {"flavour": "a word", "rounds": "a count", "loud": "on or off"}
    assert rows["asrctl-toy"]["backend_options"] == {"toy": options}
    table = run_cli("plugins", pythonpath=toy_site, env={"COLUMNS": "250"}).stdout  # no cell wraps
    assert "toy -O: flavour, rounds, loud" in table and re.search(r"\n +rounds +a count", table)


def test_asrctl_plugins_says_which_backends_take_a_language_per_row_detect_and_translate():
    rows = json.loads(run_cli("plugins", "--json").stdout)
    languages = {name: row["backend_languages"][name] for row in rows for name in row["backends"]}
    assert languages["hf-whisper"] == {"per_row": ["language"], "detects": True, "translates": True}
    assert languages["hf-ctc"] == {"per_row": [], "detects": False, "translates": False}
    if "nemo" in languages:  # Canary: a prompt per item, with a target language to translate to
        assert languages["nemo"] == {"per_row": ["language", "target_language"], "detects": False, "translates": True}
    table = run_cli("plugins", env={"COLUMNS": "200"}).stdout
    assert "hf-whisper languages: per row (--language-key), detects, translates" in table
    assert "hf-ctc languages" not in table


@pytest.mark.parametrize("extra", [{"beam_size": "clashes with --beam-size"}, {"compute-type": "not a keyword"}])
def test_a_backend_cannot_declare_an_unusable_option(extra):
    with pytest.raises(ValueError, match="must be an identifier that is not one of INFER_OPTIONS"):
        BackendSpec(name="x", load=print, extra_options=extra)


def test_partial_output_of_another_job_is_refused(tmp_path, toy_site):
    manifest, _ = make_manifest(tmp_path, [1.0, 2.0])
    out = tmp_path / "pred.jsonl"
    (tmp_path / "pred.jsonl.partial").write_text(json.dumps({"job": {"other": 1}}) + "\n" + '0\t{"x": 1}\n')
    result = infer(manifest, out, toy_site)
    assert result.returncode == 1 and "different job" in result.stderr


def test_a_run_that_failed_before_any_row_does_not_block_the_next(tmp_path, toy_site):
    manifest, _ = make_manifest(tmp_path, [1.0])
    out = tmp_path / "pred.jsonl"
    failed = run_cli("infer", str(manifest), "-b", "toy", "-m", "x", "-o", str(out), "--device", "cuda:7",
                     pythonpath=toy_site)
    assert failed.returncode == 1 and "--device cuda:7" in failed.stderr
    assert infer(manifest, out, toy_site, "--dtype", "float32").returncode == 0


def test_sigkill_then_rerun_gives_every_row_exactly_once(tmp_path, toy_site):
    durations = [0.5 + 0.1 * i for i in range(12)]
    manifest, rows = make_manifest(tmp_path, durations)
    clean = tmp_path / "clean.jsonl"
    assert infer(manifest, clean, toy_site).returncode == 0

    out = tmp_path / "pred.jsonl"
    partial = tmp_path / "pred.jsonl.partial"
    args = [sys.executable, "-m", "asrctl", "infer", str(manifest), "-b", "toy", "-m", "none", "-o", str(out),
            "--device", "cpu", "--batch-size", "1", "--num-workers", "1", "-q"]
    env = {**os.environ, "PYTHONPATH": str(toy_site), "TOY_SLEEP": "0.3"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and (not partial.exists() or len(partial.read_text().splitlines()) < 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    done_before = len(partial.read_text().splitlines()) - 1
    assert 3 <= done_before < len(rows)
    with open(partial, "a") as f:  # as if killed in the middle of writing a line
        f.write('3\t{"audio_filepath": "a3.wa')

    result = infer(manifest, out, toy_site)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == clean.read_bytes()
    assert not partial.exists()


@pytest.mark.parametrize(
    ("durations", "size", "seconds", "expected"),
    [
        ([1, 5, 3, 2], 2, 100, [[1, 2], [3, 0]]),
        ([1, 5, 3, 2], 10, 9, [[1], [2, 3, 0]]),
        ([20, 1], 4, 10, [[0], [1]]),
        ([], 4, 10, []),
    ],
)
def test_duration_batches(durations, size, seconds, expected):
    assert duration_batches(durations, size, seconds) == expected


def test_relative_audio_paths_still_resolve_from_the_output_folder(tmp_path, toy_site):
    manifest, _ = make_manifest(tmp_path / "data", [1.0])
    out = tmp_path / "results" / "pred.jsonl"
    assert infer(manifest, out, toy_site).returncode == 0
    row = read_jsonl(out)[0]
    assert row["audio_filepath"] == "../data/a0.wav"
    assert (out.parent / row["audio_filepath"]).resolve() == (tmp_path / "data" / "a0.wav").resolve()


def test_a_dead_decoding_worker_is_not_taken_for_a_failed_batch():
    """torch raises a dead DataLoader worker's error from its SIGCHLD handler, wherever the main thread
    is, so also inside a backend's transcribe(): it must end the job, not be retried as a bad batch
    (the job would then wait for the dead worker's batch for ever)."""
    import numpy as np

    from asrctl.infer.job import WorkItem
    from asrctl.infer.steps import transcribe_safely

    class Model:
        calls = 0

        def transcribe(self, batch):
            self.calls += 1
            raise RuntimeError("DataLoader worker (pid 4242) is killed by signal: Killed. ")

    model = Model()
    items = [WorkItem(i, i + 1, f"a{i}.wav", None, 1.0) for i in range(4)]
    with pytest.raises(RuntimeError, match="DataLoader worker"):
        transcribe_safely(model, items, [np.zeros(16000, np.float32)] * 4)
    assert model.calls == 1


def test_a_backend_that_cannot_mix_settings_gets_one_batch_per_language():
    import numpy as np

    from asrctl.infer.job import WorkItem
    from asrctl.infer.steps import transcribe_batch
    from asrctl.specs import Transcript

    calls = []

    class PerLanguage:
        def transcribe(self, batch, language=None):
            calls.append(language)
            return [Transcript(text=f"{code}") for code in language or [None] * len(batch)]

    items = [WorkItem(i, i + 1, f"{i}.wav", None, 1.0, settings={"language": code} if code else {})
             for i, code in enumerate(["de", "es", "de", None])]
    batch = [(item, np.zeros(160, np.float32), None) for item in items]
    # apart, a row without a language of its own goes without the setting
    for mixed, expected in ((True, [["de", "es", "de", None]]), (False, [["de", "de"], ["es"], None])):
        calls.clear()
        spec = BackendSpec(name="per-language", load=lambda *a, **k: None, item_settings=frozenset({"language"}),
                           mixed_batches=mixed)
        results = transcribe_batch(PerLanguage(), batch, spec)
        assert calls == expected, mixed
        assert {r.index: r.transcript.text for r in results} == {0: "de", 1: "es", 2: "de", 3: "None"}


def test_an_out_of_memory_batch_is_let_go_before_its_halves_run():
    """The failure's traceback holds the failed call's frames and the batch's tensors with them: the
    halves must run once that memory is free (an out-of-memory batch's halves need it)."""
    import weakref

    import numpy as np

    from asrctl.infer.job import WorkItem
    from asrctl.infer.steps import transcribe_safely
    from asrctl.specs import Transcript

    class Activations:  # stands for the batch's tensors on the device
        pass

    held = []

    class Model:
        def transcribe(self, batch):
            if len(batch) > 1:
                activations = Activations()
                held.append(weakref.ref(activations))
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            assert all(ref() is None for ref in held), "the failed batch is still held"
            return [Transcript(text="ok")]

    items = [WorkItem(i, i + 1, f"a{i}.wav", None, 1.0) for i in range(4)]
    results = transcribe_safely(Model(), items, [np.zeros(16000, np.float32)] * 4)
    assert [r.error for r in results] == [None] * 4 and len(held) == 3  # the batch of 4, then both halves of 2


def test_batch_seconds_count_a_padding_backends_short_rows_as_its_window():
    """Whisper computes over 30 s for a 2-s row: --batch-seconds 60 holds two of them, not thirty."""
    from asrctl.infer.job import InferJob, WorkItem
    from asrctl.infer.steps import plan_batches

    items = [WorkItem(i, i + 1, f"a{i}.wav", None, 2.0) for i in range(6)] + [WorkItem(6, 7, "long.wav", None, 45.0)]
    job = InferJob(manifest=None, output=None, backend="b", model="m", batch_size=64, batch_seconds=60.0)
    for pads, sizes in ((False, [1, 6]), (True, [1, 2, 2, 2])):
        spec = BackendSpec(name="b", load=lambda *a, **k: None, window=30.0, pads_to_window=pads)
        assert [len(batch) for batch in plan_batches(job, spec, items)] == sizes, pads


PREPARING = """
import os
from asrctl import BackendSpec, Transcript, hookimpl

class Preparing:
    def prepare(self, audio):  # stands for a model's features: where was it computed?
        if len(audio) == 16000 * 7:
            raise ValueError("cannot prepare seven seconds")
        return {"pid": os.getpid(), "samples": len(audio)}

    def transcribe(self, batch):
        return [Transcript(text=f"{'worker' if item['pid'] != os.getpid() else 'here'} {item['samples']}")
                for item in batch]

@hookimpl
def register_backends(register):
    register(BackendSpec(name="preparing", load=lambda model, **options: Preparing()))
"""


@pytest.mark.parametrize(("workers", "where"), [("1", "worker"), ("0", "here")])
def test_a_models_per_item_step_runs_where_the_audio_is_decoded(tmp_path, workers, where):
    """Transcriber.prepare (a model's features) runs in the decoding workers, beside the model rather
    than in its way; one it fails on fails its own row."""
    site = make_plugin_dist(tmp_path / "site", "asrctl-preparing", PREPARING)
    manifest, _ = make_manifest(tmp_path, [1.0, 7.0, 2.0])
    out = tmp_path / "out.jsonl"
    result = run_cli("infer", str(manifest), "-b", "preparing", "-m", "none", "-o", str(out), "--device", "cpu",
                     "--num-workers", workers, pythonpath=site)
    assert result.returncode == 3, result.stderr
    rows = read_jsonl(out)
    assert [r["pred_text"] for r in rows] == [f"{where} 16000", None, f"{where} 32000"]
    assert "preparing it for the model failed (ValueError: cannot prepare seven seconds)" in rows[1]["error"]
