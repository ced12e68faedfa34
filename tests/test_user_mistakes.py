"""The mistakes users make get one line that says what is wrong and what to run, and nothing
already written is lost."""

import json
import os
import socket
import subprocess
import sys

import pytest
from manifest_helpers import invoke, write_jsonl, write_wav


@pytest.fixture
def manifest(tmp_path):
    write_wav(tmp_path / "a.wav", 1.0)
    return write_jsonl(tmp_path / "test.jsonl", [{"audio_filepath": "a.wav", "duration": 1.0, "text": "a tone"}])


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("command", [["infer", "IN", "-b", "hf-whisper", "-m", "x", "-o", "OUT"], ["eval", "IN"],
                                     ["manifest", "validate", "IN"], ["manifest", "filter", "IN", "-o", "OUT"]])
def test_another_format_given_as_a_manifest_is_one_line_naming_it(tmp_path, manifest, command):
    csv = tmp_path / "test.csv"
    assert invoke("manifest", "convert", manifest, "--to", "csv", "-o", csv, "-q").exit_code == 0
    array = tmp_path / "rows.json"
    array.write_text(json.dumps([{"audio_filepath": "a.wav"}, {"audio_filepath": "a.wav"}]))
    out = tmp_path / "out.jsonl"
    for given, says in ((csv, f"{csv}: a csv file, not a NeMo JSONL manifest: convert it first "
                              f"(asrctl manifest convert {csv} --to nemo -o {tmp_path / 'test'}.jsonl)"),
                        (array, f"{array}: a JSON array, not a NeMo JSONL manifest")):
        result = invoke(*[{"IN": given, "OUT": out}.get(arg, arg) for arg in command])
        assert result.exit_code == 1 and one_line(result).startswith(f"Error: {says}")
        assert not out.exists()


def test_lhotse_output_without_its_suffix_is_one_line(tmp_path, manifest):
    result = invoke("manifest", "convert", manifest, "--to", "lhotse", "-o", tmp_path / "conv" / "cuts")
    assert result.exit_code == 1
    assert one_line(result) == (f"Error: {tmp_path / 'conv' / 'cuts'}: a Lhotse CutSet is written to a .jsonl.gz "
                                f"(or .jsonl) file: give -o {tmp_path / 'conv' / 'cuts'}.jsonl.gz")


def test_a_where_field_that_no_row_has_is_one_line_and_writes_nothing(tmp_path, manifest):
    out = tmp_path / "kept.jsonl"
    out.write_text("an earlier output\n")
    result = invoke("manifest", "filter", manifest, "-o", out, "--where", "duraton<10")
    assert result.exit_code == 1
    assert one_line(result) == (f"Error: {manifest}: no row has a field 'duraton' (--where duraton<10) (did you mean "
                                "'duration'?); the rows have: audio_filepath, duration, text")
    assert out.read_text() == "an earlier output\n"
    kept = invoke("manifest", "filter", manifest, "-o", out, "--where", "duration<10", "-q")
    assert kept.exit_code == 0 and len(out.read_text().splitlines()) == 1


def test_eval_without_predictions_or_with_a_field_no_row_has(tmp_path, manifest):
    result = invoke("eval", manifest)
    assert result.exit_code == 1 and "WER" not in result.stdout
    assert one_line(result) == (f"Error: {manifest}: no row has predictions ('pred_text'): transcribe it first "
                                f"(asrctl eval {manifest} -b BACKEND -m MODEL), or name the field with --pred-key; "
                                "the rows have: audio_filepath, duration, text")
    predictions = write_jsonl(tmp_path / "pred.jsonl", [{"audio_filepath": "a.wav", "duration": 1.0, "text": "a tone",
                                                         "pred_text": "a tone", "speaker": "s1"}])
    by_typo = invoke("eval", predictions, "--by", "speakr")
    assert by_typo.exit_code == 1 and "no row has a field 'speakr' (--by speakr) (did you mean 'speaker'?)" in \
        one_line(by_typo)
    no_ref = invoke("eval", predictions, "--ref-key", "txt")
    assert no_ref.exit_code == 1 and "no row has a field 'txt' (--ref-key txt) (did you mean 'text'?)" in \
        one_line(no_ref)
    bad_width = invoke("eval", predictions, "--by", "duration:abc")
    assert bad_width.exit_code == 2 and "--by duration:abc: a bin width is a number of seconds" in bad_width.stderr
    assert invoke("eval", predictions, "--by", "speaker", "--by", "duration:5").exit_code == 0


def test_a_finished_infer_run_again_has_nothing_to_do_and_retries_only_its_errors(tmp_path, infer, probe_site):
    write_wav(tmp_path / "a.wav", 1.0)
    manifest = write_jsonl(tmp_path / "in.jsonl", [{"audio_filepath": "a.wav", "duration": 1.0, "text": "one"},
                                                  {"audio_filepath": "b.wav", "duration": 0.5, "text": "two"}])
    out = tmp_path / "out.jsonl"
    first = infer(manifest, out)
    assert first.returncode == 3 and "b.wav: no such file" in first.stderr
    before = out.read_bytes()
    again = infer(manifest, out)
    assert again.returncode == 0 and out.read_bytes() == before
    assert f"{out}: already done by this command (2 rows), nothing to do; --retry-errors redoes its 1 error rows" \
        in " ".join(again.stderr.split())
    write_wav(tmp_path / "b.wav", 0.5)  # the missing file, fixed
    retried = infer(manifest, out, "--retry-errors", env={"PROBE_FAIL_SAMPLES": "16000"})  # a.wav may not be redone
    assert retried.returncode == 0, retried.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["pred_text"] for r in rows] == [json.loads(before.splitlines()[0])["pred_text"], "8000 samples peak 0.10"]
    assert "error" not in rows[1]
    from asrctl.testing import run_cli  # eval -b on a manifest already transcribed: scores the kept predictions

    scored = run_cli("eval", str(manifest), "-b", "probe", "-m", "none", "-o", str(out), "--device", "cpu",
                     "--json", pythonpath=probe_site)
    assert scored.returncode == 0 and json.loads(scored.stdout)["rows"] == 2 and "already done" in scored.stderr
    other = infer(manifest, out, "--pred-key", "hyp")  # another job: it may not take this output
    assert other.returncode == 1 and "written by another command" in other.stderr and out.exists()


def test_a_hub_model_without_network_is_one_line_saying_how_to_go_local(tmp_path, manifest):
    from asrctl.testing import run_cli

    closed = socket.socket()  # a port nothing listens on: connections are refused, as with no network
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    out = tmp_path / "out.jsonl"
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HOME": str(tmp_path / "empty-cache"), "HF_HUB_OFFLINE": ""}
    result = run_cli("infer", str(manifest), "-b", "hf-whisper", "-m", "openai/whisper-tiny", "-o", str(out), "-q",
                     "--device", "cpu", env=env)
    assert result.returncode == 1 and "Retrying" not in result.stderr
    assert one_line(result) == (f"Error: cannot load model 'openai/whisper-tiny': the Hugging Face Hub "
                                f"(http://127.0.0.1:{port}) cannot be reached (Connection refused), and "
                                "'openai/whisper-tiny' is not in the local cache: give a local model folder with -m, "
                                "or fetch the model where there is network (HF_HUB_OFFLINE=1 then uses the cache)")
    assert not out.exists()


def test_a_model_folder_of_another_family_names_the_backend_before_loading(tmp_path, manifest):
    from asrctl.testing import run_cli

    corpus = tmp_path / "corpus"  # audio, not a model
    write_wav(corpus / "a.wav", 0.5)
    ct2 = tmp_path / "whisper-ct2"  # CTranslate2's layout, as ct2-transformers-converter writes it
    ct2.mkdir()
    (ct2 / "model.bin").write_bytes(b"\0" * 16)
    (ct2 / "config.json").write_text(json.dumps({"alignment_heads": [[3, 1]], "suppress_ids": []}))
    (ct2 / "vocabulary.txt").write_text("a\nb\n")
    whisper = tmp_path / "whisper-hf"
    whisper.mkdir()
    (whisper / "config.json").write_text(json.dumps({"model_type": "whisper",
                                                     "architectures": ["WhisperForConditionalGeneration"]}))
    nemo = tmp_path / "model.nemo"
    nemo.write_bytes(b"not read")
    out = tmp_path / "out.jsonl"
    for backend, model, says in (
            ("hf-whisper", corpus, f"-m {corpus}: not a model folder (no config.json)"),
            ("hf-whisper", ct2, f"-m {ct2}: a CTranslate2 model, which -b hf-whisper does not load: "
                                "use -b faster-whisper"),
            ("hf-ctc", whisper, f"-m {whisper}: a Whisper model, which -b hf-ctc does not load: use -b hf-whisper"),
            ("hf-ctc", nemo, f"-m {nemo}: a NeMo model, which -b hf-ctc does not load: use -b nemo")):
        result = run_cli("infer", str(manifest), "-b", backend, "-m", str(model), "-o", str(out), "--device", "cpu")
        assert result.returncode == 1, result.stderr
        assert one_line(result).startswith(f"Error: {says}")  # alone: no progress bar was started
        assert not out.exists()


def test_a_model_that_fails_late_leaves_its_one_line_and_no_progress_bar(tmp_path, manifest, tiny_whisper):
    import shutil

    from asrctl.testing import run_cli

    weights_only = tmp_path / "weights-only"  # save_pretrained of the model alone: no processor files
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_whisper / name, weights_only)
    broken = tmp_path / "broken"  # all its files, the weights cut short: transformers finds out after loading
    shutil.copytree(tiny_whisper, broken)
    (broken / "model.safetensors").write_bytes((tiny_whisper / "model.safetensors").read_bytes()[:4096])
    out = tmp_path / "out.jsonl"
    for model, says in ((weights_only, f"-m {weights_only}: a Whisper model folder without the feature extractor's "
                                       "preprocessor_config.json"),
                        (broken, f"cannot load model '{broken}'")):
        result = run_cli("infer", str(manifest), "-b", "hf-whisper", "-m", str(model), "-o", str(out),
                         "--device", "cpu")
        assert result.returncode == 1 and one_line(result).startswith(f"Error: {says}")  # no bar left behind
        assert not out.exists()


def test_settings_that_make_no_sense_here_are_said_and_quiet_is_quiet(tmp_path, manifest, infer, probe_site):
    half = infer(manifest, tmp_path / "half.jsonl", "--dtype", "float16")
    assert half.returncode == 0 and "warning: --dtype float16 on the CPU runs slower than float32" in \
        " ".join(half.stderr.split())
    assert "warning" not in infer(manifest, tmp_path / "full.jsonl").stderr  # --dtype auto: float32 on a CPU
    quiet = invoke("eval", tmp_path / "full.jsonl", "-q")
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""
    gate = invoke("eval", tmp_path / "full.jsonl", "-q", "--fail-above", "5")  # the probe's text is all wrong
    assert gate.exit_code == 4 and gate.stdout == "" and "is above --fail-above 5" in gate.stderr
    no_terminal = subprocess.run([sys.executable, "-m", "asrctl", "uninstall", "asrctl-probe"], capture_output=True,
                                 text=True, stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(probe_site)})
    assert no_terminal.returncode == 1 and "Traceback" not in no_terminal.stderr
    assert "there is no terminal to answer: pass -y" in no_terminal.stderr
    assert (probe_site / "asrctl_probe.py").exists()  # nothing was removed


def test_validate_says_the_range_a_duration_is_outside(tmp_path, manifest):
    result = invoke("manifest", "validate", manifest, "--max-duration", "0.5", "--json")
    examples = json.loads(result.stdout[result.stdout.index("{"):])["problems"]["duration_range"]["examples"]
    assert examples == ["line 1: duration 1.000 s is outside 0–0.5 s"]


def test_built_in_plugins_are_told_apart_in_a_narrow_terminal(monkeypatch):
    from click.testing import CliRunner

    from asrctl.cli import cli

    monkeypatch.setenv("COLUMNS", "80")
    shown = CliRunner().invoke(cli, ["plugins", "--all"]).output
    assert "asrctl.default_plugi" not in shown
    assert all(name in shown for name in ("formats (built-in)", "local_engine", "nemo_manifest", "ray_engine"))


def test_worst_alignments_do_not_wrap_when_piped(tmp_path):
    words = " ".join(f"word{i}" for i in range(30))
    predictions = write_jsonl(tmp_path / "pred.jsonl", [{"audio_filepath": "a.wav", "duration": 1.0, "text": words,
                                                         "pred_text": words.replace("word7", "bird")}])
    shown = invoke("eval", predictions, "--worst", "1", "--normalizer", "none").stdout
    assert any(line.startswith("REF:") and line.rstrip().endswith("word29") for line in shown.splitlines()), shown


def test_error_lines_name_a_file_by_its_normal_path(tmp_path, infer):
    manifest = write_jsonl(tmp_path / "data" / "in.jsonl",
                           [{"audio_filepath": "../corpus/missing.wav", "duration": 1.0}])
    result = infer(manifest, tmp_path / "out.jsonl")
    assert result.returncode == 3 and f"{tmp_path / 'corpus' / 'missing.wav'}: no such file" in result.stderr
    assert "/../" not in result.stderr


def test_a_language_per_row_is_refused_by_a_backend_that_cannot_take_one(tmp_path):
    from asrctl.testing import run_cli

    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "lang": "de"}) + "\n")
    result = run_cli("infer", str(manifest), "-b", "hf-ctc", "-m", "any", "--language-key", "lang")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "backend 'hf-ctc' cannot take a language per row (--language-key); backends that can: hf-whisper" \
        in result.stderr
