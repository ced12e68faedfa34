"""`asrctl manifest filter` (with its --where parser), `merge` and `stats`."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from manifest_helpers import invoke, read_jsonl, write_jsonl

from asrctl.prepare.filter import parse_condition


@pytest.mark.parametrize("text, record, expected", [
    ("wer<=20", {"wer": 20}, True),
    ("wer <= 20", {"wer": 20.5}, False),
    ("wer>1e1", {"wer": 10.5}, True),
    ("wer!=0", {"wer": 0.0}, False),
    ("speaker==1089", {"speaker": "1089"}, True),
    ("speaker==1089", {"speaker": 1089}, True),
    ("speaker == 'spk 1'", {"speaker": "spk 1"}, True),
    ('lang!="en"', {"lang": "de"}, True),
    ("date>=2024-01", {"date": "2024-03-01"}, True),
    ("meta.snr>10", {"meta": {"snr": 12}}, True),
    ("meta.snr>10", {"meta": {}}, False),
    ("wer<20", {}, False),
    ("wer<20", {"wer": True}, False),
    ("wer<20", {"wer": "low"}, False),
])
def test_conditions_compare_numbers_and_strings(text, record, expected):
    assert parse_condition(text)(record) is expected


@pytest.mark.parametrize("text", ["wer", "wer=<3", "<=3", "wer<=", "__import__('os').system('x')", "a b==1"])
def test_anything_else_is_refused_never_evaluated(text):
    with pytest.raises(ValueError):
        parse_condition(text)


@pytest.fixture
def scored(tmp_path):
    rows = [{"audio_filepath": f"audio/{i}.wav", "duration": d, "text": t, "wer": w}
            for i, (d, t, w) in enumerate([(1.0, "good one", 0.0), (25.0, "long one", 10.0), (2.0, "bad one", 50.0),
                                           (3.0, "[noise] one", 5.0), (4.0, "fine", 20.0)])]
    return write_jsonl(tmp_path / "data" / "scored.jsonl", rows + ['{"broken": '])


def rows_of(*specs):
    """Rows of (name, duration, text): the name goes in `id`, to tell what was kept."""
    return [{"audio_filepath": f"{name}.wav", "duration": duration, "text": text, "id": name}
            for name, duration, text in specs]


def kept_ids(tmp_path, rows, *options):
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    result = invoke("manifest", "filter", source, "-o", tmp_path / "out.jsonl", *options)
    assert result.exit_code == 0, result.stderr
    return [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")], result.stderr


@pytest.mark.parametrize("options, keep, reason", [
    # 25 characters in 2 s: 12.5/s; 7 words: 3.5/s
    (["--max-char-rate", "12"], ["slow"], "characters per second > 12"),  # no duration: dropped too
    (["--min-char-rate", "12"], ["normal", "fast"], "characters per second < 12"),
    (["--max-word-rate", "4"], ["slow", "normal"], "words per second > 4"),
    (["--min-word-rate", "2"], ["normal", "fast"], "words per second < 2"),
])
def test_speaking_rates(tmp_path, options, keep, reason):
    rows = rows_of(("slow", 10.0, "the cat sat on the mat ok"), ("normal", 2.0, "the cat sat on the mat ok"),
                   ("fast", 0.5, "the cat sat on the mat ok"), ("none", None, "no duration here"))
    kept, summary = kept_ids(tmp_path, rows, *options)
    assert kept == keep and reason in summary


def test_regex_substitution_drop_and_alphabets(tmp_path):
    rows = rows_of(("quotes", 1.0, "“Hallo”, sagte er."), ("digits", 1.0, "Es ist 1984."), ("noise", 1.0, "[noise] ja"),
                   ("umlaut", 1.0, "Grüße aus Köln"), ("cyrillic", 1.0, "Привет"), ("plain", 1.0, "hello there"))
    kept, summary = kept_ids(tmp_path, rows, "--sub-regex", '[“”]="', "--drop-regex", r"\[noise\]",
                             "--drop-non-alphabet", "de")
    assert kept == ["quotes", "umlaut", "plain"]
    assert read_jsonl(tmp_path / "out.jsonl")[0]["text"] == '"Hallo", sagte er.'  # rewritten, then kept
    assert "changed by --sub-regex [“”]=\"" in summary and "outside the de alphabet" in summary
    kept, _ = kept_ids(tmp_path, rows, "--drop-non-alphabet", "en")
    assert kept == ["quotes", "plain"]  # quotes are punctuation, which every language takes
    kept, _ = kept_ids(tmp_path, rows, "--drop-non-alphabet", "Приветhlo")  # characters given, with spaces
    assert kept == ["cyrillic"]
    kept, _ = kept_ids(tmp_path, rows, "--sub-regex", r"(\w+) there=\1 world", "--text-regex", "world")
    assert kept == ["plain"] and read_jsonl(tmp_path / "out.jsonl")[0]["text"] == "hello world"
    # on another field, e.g. a model's output
    preds = [{**r, "pred_text": r["text"].upper()} for r in rows]
    kept, _ = kept_ids(tmp_path, preds, "--text-field", "pred_text", "--drop-regex", "^HELLO")
    assert "plain" not in kept and len(kept) == 5
    bad = invoke("manifest", "filter", tmp_path / "in.jsonl", "-o", tmp_path / "x.jsonl", "--sub-regex", "(=x")
    assert bad.exit_code == 2 and "not a regular expression" in bad.stderr


def test_hallucination_checks_each_flag_their_own(tmp_path):
    rows = rows_of(("speech", 4.0, "The children waited on the pier and counted the boats."),
                   ("loop", 8.0, "I'm going to go. I'm going to go. I'm going to go. I'm going to go."),
                   ("long", 3.0, "and then aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
                   ("ratio", 3.0, "so we had an extraordinarily"),
                   ("phrase", 2.0, "Thank you for watching!"),
                   ("fast", 1.0, "this is far too much text for one second of audio to hold"),
                   ("short", 1.0, "I understand"), ("empty", 1.0, ""))
    kept, summary = kept_ids(tmp_path, rows, "--hallucination")
    assert kept == ["speech", "short", "empty"]
    for reason in ("distinct words <= 0.4", "a word of 25+ characters or 3x longer", "only a phrase said over",
                   "> 40 characters per second"):
        assert f"hallucination: {reason}" in summary
    (tmp_path / "phrases.txt").write_text("# ours\nI understand\n")
    kept, _ = kept_ids(tmp_path, rows, "--hallucination", "--hallucination-phrases", tmp_path / "phrases.txt",
                       "--unique-words", "0.2", "--hallucination-char-rate", "60")
    assert kept == ["speech", "loop", "phrase", "fast", "empty"]


def test_filter_streams_kept_rows_and_counts_drops(tmp_path, scored):
    out = tmp_path / "out" / "clean.jsonl"
    result = invoke("manifest", "filter", scored, "-o", out, "--where", "wer<=20", "--max-duration", "20",
                    "--exclude-regex", r"\[noise\]")
    assert result.exit_code == 3 and f"{scored}:6: invalid JSON" in result.stderr
    kept = read_jsonl(out)
    assert [r["text"] for r in kept] == ["good one", "fine"]
    assert kept[0]["audio_filepath"] == "../data/audio/0.wav"
    assert "duration > 20" in result.stderr and "not wer<=20" in result.stderr
    only = invoke("manifest", "filter", scored, "-o", out, "--text-regex", "^fine$", "--min-duration", "3.5")
    assert [r["text"] for r in read_jsonl(out)] == ["fine"] and only.exit_code == 3
    bad = invoke("manifest", "filter", scored, "-o", out, "--where", "wer ~ 3")
    assert bad.exit_code == 2 and "FIELD OP VALUE" in bad.stderr


def test_merge_keeps_first_of_each_audio_and_reports_repeats(tmp_path):
    a = write_jsonl(tmp_path / "a" / "a.jsonl", [{"audio_filepath": "../audio/x.wav", "text": "from a"},
                                                 {"audio_filepath": "../audio/x.wav", "offset": 1.0,
                                                  "text": "segment"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"audio_filepath": "audio/./x.wav", "text": "from b"},
                                           {"audio_filepath": "audio/y.wav", "text": "new"},
                                           {"audio_filepath": str(tmp_path / "audio" / "x.wav"), "offset": 1,
                                            "text": "x"}])
    out = tmp_path / "merged" / "all.jsonl"
    result = invoke("manifest", "merge", a, b, "-o", out)
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    assert [r["text"] for r in rows] == ["from a", "segment", "new"]
    assert rows[0]["audio_filepath"] == "../audio/x.wav" and rows[2]["audio_filepath"] == "../audio/y.wav"
    assert f"{b}:1 repeats {a}:1" in result.stderr and f"{b}:3 repeats {a}:2" in result.stderr


def test_stats_numbers_histogram_speakers_and_svg(tmp_path):
    rows = [{"audio_filepath": f"{i}.wav", "duration": float(i + 1), "text": "ab c", "speaker": "s1" if i < 3 else "s2"}
            for i in range(5)] + [{"audio_filepath": "x.wav", "text": ""}]
    manifest = write_jsonl(tmp_path / "m.jsonl", rows)
    plot = tmp_path / "stats.svg"
    result = invoke("manifest", "stats", manifest, "--json", "--bins", "4", "--plot", plot)
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["rows"] == 6 and stats["hours"] == pytest.approx(15 / 3600)
    assert stats["duration"] == {"min": 1.0, "median": 3.0, "mean": 3.0, "max": 5.0, "rows_without": 1}
    assert sum(stats["histogram"]["counts"]) == 5 and len(stats["histogram"]["edges"]) == 5
    assert (stats["words"], stats["characters"], stats["charset"], stats["rows_without_text"]) == (10, 20, " abc", 1)
    assert stats["by_speaker"] == [{"speaker": "s2", "rows": 2, "hours": 9 / 3600},
                                   {"speaker": "s1", "rows": 3, "hours": 6 / 3600}]
    svg = ET.parse(plot).getroot()
    assert svg.tag.endswith("svg") and len(svg.findall("{http://www.w3.org/2000/svg}rect")) == 4
    table = invoke("manifest", "stats", manifest)
    assert "duration histogram" in table.stdout and "█" in table.stdout
    png = invoke("manifest", "stats", manifest, "--plot", tmp_path / "x.png")
    assert png.exit_code == 2 and ".svg" in png.stderr


@pytest.mark.real_model
def test_hallucination_flags_whispers_repetition_loop_over_noise(tmp_path, test_assets):
    import numpy as np
    import soundfile as sf

    from asrctl.serve import load

    # 35 s of a low noise floor: Whisper base's long-form decoding loops on one made-up sentence
    noise = np.random.default_rng(1).normal(0, 0.003, 16000 * 35).astype("float32")
    sf.write(tmp_path / "noise.flac", noise, 16000)
    speech = Path(__file__).parent / "data" / "speech"
    rows = [{"audio_filepath": str(tmp_path / "noise.flac"), "duration": 35.0, "id": "noise"},
            *({"audio_filepath": str(speech / f"utt0{i}.flac"), "duration": sf.info(speech / f"utt0{i}.flac").duration,
               "id": f"utt0{i}"} for i in (1, 2, 3))]
    write_jsonl(tmp_path / "in.jsonl", rows)
    with load("hf-whisper", str(test_assets / "whisper-base-hf"), device="cpu", language="en") as model:
        predicted = model.transcribe_manifest(tmp_path / "in.jsonl")
    loop = predicted[0]["pred_text"].split()
    assert len(loop) > 30, predicted[0]  # the failure this guards against happened
    kept, summary = kept_ids(tmp_path, predicted, "--text-field", "pred_text", "--hallucination")
    assert kept == ["utt01", "utt02", "utt03"] and "hallucination: distinct words" in summary
