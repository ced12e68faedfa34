"""`asrctl infer` on audio files, folders and globs: the transcript on stdout, text and subtitle
files per input (parsed back by subtitle libraries), a manifest's rows as files, the defaults of
`asrctl config`, and one line for what is neither audio nor a manifest."""

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
import srt
import webvtt
from hypothesis import given, settings
from hypothesis import strategies as st
from probe_backend import read_jsonl

from asrctl.testing import run_cli
from asrctl.transcripts.cues import CueLimits, _Word, make_cues

SPEECH = Path(__file__).parent / "data" / "speech"


@pytest.fixture
def probe(probe_site, tmp_path):
    """`asrctl ARGS` with the probe backend installed, the defaults in a config of the test's own."""

    def run(*args, env=None, cwd=None):
        env = {"ASRCTL_CONFIG": str(tmp_path / "config.yaml"), "ASRCTL_BACKEND": "", "ASRCTL_MODEL": "",
               **(env or {})}
        return run_cli(*args, pythonpath=probe_site, env=env, cwd=cwd or tmp_path)

    return run


def probe_text(path: Path) -> str:
    audio, _ = sf.read(path, dtype="float32")
    return f"{len(audio)} samples peak {float(abs(audio).max()):.2f}"


def test_one_audio_file_prints_its_transcript_and_leaves_nothing_behind(tmp_path, probe):
    shutil.copy(SPEECH / "utt01.flac", tmp_path / "one.flac")
    result = probe("infer", "one.flac", "-b", "probe", "-m", "none", "--num-workers", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout == probe_text(SPEECH / "utt01.flac") + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.flac"]


def test_files_folders_and_patterns_print_a_line_each(tmp_path, probe):
    (tmp_path / "clips" / "sub").mkdir(parents=True)
    for name in ("utt01", "utt02"):
        shutil.copy(SPEECH / f"{name}.flac", tmp_path / "clips" / "sub" / f"{name}.flac")
    shutil.copy(SPEECH / "utt03.flac", tmp_path / "clips" / "c.flac")
    result = probe("infer", "clips", "clips/sub/*.flac", "-b", "probe", "-m", "none")
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    # each file once (the pattern repeats the folder's), in the folder's sorted order
    assert [Path(path).name for path, _ in lines] == ["c.flac", "utt01.flac", "utt02.flac"]
    assert [text for _, text in lines] == [probe_text(SPEECH / f"{n}.flac") for n in ("utt03", "utt01", "utt02")]


def check_cues(cues, audio_seconds, limits: CueLimits):
    """Cues in order, inside the audio, within the line and duration limits."""
    assert cues, "no cues"
    previous_end = 0.0
    for cue in cues:
        start, end = cue.start.total_seconds(), cue.end.total_seconds()
        assert previous_end - 1e-3 <= start <= end <= audio_seconds + 1e-3
        assert end - start <= limits.cue_seconds + 1e-3
        lines = cue.content.splitlines()
        assert 1 <= len(lines) <= limits.line_count
        assert all(len(line) <= limits.line_width or " " not in line for line in lines)
        previous_end = end


def vtt_cues(path: Path):
    return [srt.Subtitle(i, srt.srt_timestamp_to_timedelta(c.start.replace(".", ",")),
                         srt.srt_timestamp_to_timedelta(c.end.replace(".", ",")), c.text)
            for i, c in enumerate(webvtt.read(str(path)), 1)]


def test_a_folder_with_every_output_format(tmp_path, probe):
    (tmp_path / "clips").mkdir()
    names = ("utt01", "utt02", "long01")
    for name in names:
        shutil.copy(SPEECH / f"{name}.flac", tmp_path / "clips" / f"{name}.flac")
    limits = CueLimits(line_width=12, line_count=1, cue_seconds=5.0)
    result = probe("infer", "clips", "-b", "probe", "-m", "none", "--output-format", "all", "--output-dir", "out",
                   "--max-line-width", "12", "--max-line-count", "1", "--max-cue-seconds", "5",
                   env={"PROBE_TIMES": "1"})
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    rows = read_jsonl(out / "transcripts.jsonl")
    assert [Path(r["audio_filepath"]).stem for r in rows] == ["long01", "utt01", "utt02"]
    for name in names:
        seconds = sf.info(SPEECH / f"{name}.flac").duration
        assert (out / f"{name}.txt").read_text() == probe_text(SPEECH / f"{name}.flac") + "\n"
        subtitles = list(srt.parse((out / f"{name}.srt").read_text()))
        check_cues(subtitles, seconds, limits)
        assert " ".join(c.content.replace("\n", " ") for c in subtitles) == probe_text(SPEECH / f"{name}.flac")
        assert [(c.start, c.end, c.content) for c in vtt_cues(out / f"{name}.vtt")] == \
               [(c.start, c.end, c.content) for c in subtitles]
        tsv = [line.split("\t") for line in (out / f"{name}.tsv").read_text().splitlines()]
        assert tsv[0] == ["start", "end", "text"]
        assert [int(start) for start, _, _ in tsv[1:]] == [round(c.start.total_seconds() * 1000) for c in subtitles]
        assert json.loads((out / f"{name}.json").read_text())["pred_text"] == probe_text(SPEECH / f"{name}.flac")
    # the probe's last word ends with the audio: a 5-s cue limit cuts the 4 words of the 50-s file apart
    assert len(list(srt.parse((out / "long01.srt").read_text()))) == 4


def test_a_manifests_rows_as_subtitle_files(tmp_path, probe):
    manifest = tmp_path / "m.jsonl"
    rows = [{"audio_filepath": str(SPEECH / "utt01.flac")}, {"audio_filepath": str(SPEECH / "utt01.flac"),
                                                              "offset": 0.5, "duration": 1.0}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = probe("infer", "m.jsonl", "-b", "probe", "-m", "none", "--output-format", "srt",
                   "--output-dir", "subs", env={"PROBE_TIMES": "1"})
    assert result.returncode == 0, result.stderr
    # two rows of one file: two subtitle files, the second named apart, its cues inside its 1-s span
    assert sorted(p.name for p in (tmp_path / "subs").iterdir()) == ["utt01-2.srt", "utt01.srt"]
    second = list(srt.parse((tmp_path / "subs" / "utt01-2.srt").read_text()))
    check_cues(second, 1.0, CueLimits())
    assert (tmp_path / "m.pred.jsonl").is_file()


def test_a_manifest_and_audio_together_get_one_line(tmp_path, probe):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": str(SPEECH / "utt01.flac")}) + "\n")
    result = probe("infer", "m.jsonl", str(SPEECH / "utt02.flac"), "-b", "probe", "-m", "none")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: m.jsonl is a manifest and {SPEECH / 'utt02.flac'} is audio: give one manifest, or audio files and "
        "folders, not both (asrctl manifest create makes a manifest of a folder)"]


@pytest.mark.parametrize("name", ["some.wav", "blob.bin"])
def test_a_binary_file_gets_one_line_not_an_error_per_line(tmp_path, probe, name):
    (tmp_path / name).write_bytes(bytes(range(256)) * 40)
    result = probe("infer", name, "-b", "probe", "-m", "none")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {name}: ") and "UTF-8" not in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_csv_named_on_the_command_line_is_told_to_convert(tmp_path, probe):
    (tmp_path / "data.csv").write_text(f"path,text\n{SPEECH / 'utt01.flac'},hello\n")
    result = probe("infer", "data.csv", "-b", "probe", "-m", "none")
    assert result.returncode == 1 and "asrctl manifest convert data.csv" in result.stderr


def test_the_default_backend_and_model_from_config_then_the_variable(tmp_path, probe):
    shutil.copy(SPEECH / "utt01.flac", tmp_path / "one.flac")
    assert probe("config", "set", "backend", "probe").returncode == 0
    assert probe("config", "set", "model", "from-config").returncode == 0
    shown = probe("config").stdout
    assert f"backend: probe    ({tmp_path / 'config.yaml'})" in shown

    def model_used(env=None):
        result = probe("infer", "one.flac", "-o", "out.jsonl", "--overwrite", env=env)
        assert result.returncode == 0, result.stderr
        return json.loads((tmp_path / ".out.jsonl.job").read_text())["model"]

    assert model_used() == "from-config"
    assert model_used({"ASRCTL_MODEL": "from-variable"}) == "from-variable"
    assert "model: from-variable    ($ASRCTL_MODEL)" in probe("config", env={"ASRCTL_MODEL": "from-variable"}).stdout
    assert probe("config", "unset", "model").returncode == 0
    assert "model: base    (built in)" in probe("config").stdout


def test_another_backend_than_the_default_needs_its_model(tmp_path, probe):
    result = probe("infer", str(SPEECH / "utt01.flac"), "-b", "probe")
    assert result.returncode == 2
    assert "-b probe needs -m MODEL (the default model is for faster-whisper, from built in)" in result.stderr


def test_no_partial_output_is_left_when_the_model_fails_to_load(tmp_path, probe):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": str(SPEECH / "utt01.flac")}) + "\n")
    result = probe("infer", "m.jsonl", "-b", "probe", "-m", "none", env={"PROBE_LOAD_FAIL": "1"})
    assert result.returncode != 0 and "probe model failed to load" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]


def test_subtitles_need_a_backend_with_timestamps(tmp_path, probe):
    result = probe("infer", str(SPEECH / "utt01.flac"), "-b", "probe", "-m", "none", "-f", "srt")
    assert result.returncode == 2 and "-b probe gives no timestamps, which --output-format srt needs" in result.stderr


words = st.lists(st.tuples(st.text(alphabet="abcdefghij.", min_size=1, max_size=15),
                           st.floats(0, 3), st.floats(0, 2)), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(words, st.integers(5, 50), st.integers(1, 3), st.floats(0.5, 10), st.floats(1, 200))
def test_cues_hold_to_the_limits_whatever_the_words(spec, width, count, seconds, audio_end):
    at, timed = 0.0, []
    for text, gap, length in spec:  # words in order, gaps and lengths as any backend might give
        timed.append(_Word(text, at + gap, at + gap + length))
        at += gap + length
    limits = CueLimits(width, count, seconds)
    cues = make_cues(timed, limits, audio_end)
    assert " ".join(" ".join(c.lines) for c in cues) == " ".join(w.text for w in timed)
    previous_end = 0.0
    for cue in cues:
        assert previous_end <= cue.start <= cue.end <= audio_end
        assert cue.end - cue.start <= seconds + 1e-9
        assert len(cue.lines) <= count or len(cue.lines) == 1
        assert all(len(line) <= width or " " not in line for line in cue.lines)
        previous_end = cue.end


@pytest.mark.real_model
def test_real_subtitles_from_the_default_model_hold_to_the_limits(tmp_path, test_assets):
    """Whisper base on faster-whisper (the default, its local copy standing in): a folder of speech to
    every format, cues re-timed from its word times to small limits."""
    from test_infer_real import corpus_wer

    references = {Path(r["audio_filepath"]).stem: r for r in read_jsonl(SPEECH / "manifest.jsonl")}
    (tmp_path / "clips").mkdir()
    for name in ("utt01", "utt02", "long01"):
        shutil.copy(SPEECH / f"{name}.flac", tmp_path / "clips")
    limits = CueLimits(line_width=20, line_count=1, cue_seconds=3.0)
    env = {"ASRCTL_MODEL": str(test_assets / "whisper-base-ct2"), "ASRCTL_BACKEND": "",
           "ASRCTL_CONFIG": str(tmp_path / "none.yaml")}
    result = run_cli("infer", "clips", "--output-format", "all", "--output-dir", "out", "--language", "en",
                     "--max-line-width", "20", "--max-line-count", "1", "--max-cue-seconds", "3", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(tmp_path / "out" / "transcripts.jsonl")
    assert all(r["pred_words"] for r in rows)  # word times were asked for the subtitles
    for row in rows:
        name = Path(row["audio_filepath"]).stem
        subtitles = list(srt.parse((tmp_path / "out" / f"{name}.srt").read_text()))
        check_cues(subtitles, sf.info(SPEECH / f"{name}.flac").duration, limits)
        assert " ".join(c.content for c in subtitles).split() == row["pred_text"].split()
        assert len(vtt_cues(tmp_path / "out" / f"{name}.vtt")) == len(subtitles)
    short = [{**references[Path(r["audio_filepath"]).stem], **r} for r in rows if "utt" in r["audio_filepath"]]
    assert corpus_wer(short, "pred_text") < 0.15
    # one file, nothing else given: the default model's transcript on stdout
    one = run_cli("infer", "clips/utt01.flac", "--language", "en", env=env, cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert corpus_wer([{"text": references["utt01"]["text"], "p": one.stdout}], "p") < 0.15


def test_an_undecodable_file_in_a_folder_gets_its_line_and_the_others_are_written(tmp_path, probe):
    (tmp_path / "clips").mkdir()
    shutil.copy(SPEECH / "utt01.flac", tmp_path / "clips")
    (tmp_path / "clips" / "broken.wav").write_bytes(b"RIFF" + bytes(200))
    result = probe("infer", "clips", "-b", "probe", "-m", "none", "-f", "txt", "--output-dir", "out")
    assert result.returncode == 3
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        next(line for line in result.stderr.splitlines() if "broken.wav" in line)]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.txt")) == ["utt01.txt"]
