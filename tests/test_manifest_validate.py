"""`asrctl manifest validate`: every kind of problem found on its line; --fix and --rejects partition the input."""

import json
import os

import pytest
from manifest_helpers import invoke, read_jsonl, write_jsonl, write_wav

from asrctl.prepare.validate import parse_charset


@pytest.fixture
def seeded(tmp_path):
    """A manifest with one row per problem kind (line numbers below) and clean rows between them."""
    audio = tmp_path / "data" / "audio"
    write_wav(audio / "ok1.wav", 1.0)
    write_wav(audio / "ok2.wav", 2.0)
    write_wav(audio / "ok3.wav", 2.0)
    write_wav(audio / "low_rate.wav", 1.0, sr=8000)
    write_wav(audio / "stereo.wav", 1.0, channels=2)
    write_wav(audio / "long.wav", 3.0)
    (audio / "broken.wav").write_bytes(b"RIFF not really audio")
    lines = [
        {"audio_filepath": "audio/ok1.wav", "duration": 1.0, "text": "hello world"},          # 1 clean
        '{"audio_filepath": "audio/ok1.wav", "duration": 1.0, "text": ',                       # 2 malformed
        {"audio_filepath": "audio/missing.wav", "duration": 1.0, "text": "gone"},              # 3 missing_file
        {"audio_filepath": "audio/broken.wav", "duration": 1.0, "text": "broken"},             # 4 unreadable_audio
        {"audio_filepath": "audio/ok2.wav", "duration": 2.5, "text": "too long"},              # 5 duration_mismatch
        {"audio_filepath": "audio/low_rate.wav", "duration": 1.0, "text": "low rate"},         # 6 sample_rate
        {"audio_filepath": "audio/stereo.wav", "duration": 1.0, "text": "two channels"},       # 7 channels
        {"audio_filepath": "audio/long.wav", "duration": 1.0, "offset": 0.5, "text": "   "},   # 8 empty_text
        {"audio_filepath": "audio/long.wav", "duration": 1.0, "offset": 1.5, "text": "Bad!"},  # 9 bad_characters
        {"audio_filepath": "./audio/../audio/ok1.wav", "duration": 1.0, "text": "again"},      # 10 duplicate of 1
        {"audio_filepath": "audio/long.wav", "duration": 0.2, "offset": 2.0, "text": "short"},  # 11 duration_range
        {"audio_filepath": "audio/long.wav", "duration": 2.0, "offset": 2.5, "text": "past end"},  # 12 mismatch
        {"audio_filepath": "audio/ok3.wav", "duration": 2.04, "text": "within tolerance"},     # 13 clean
    ]
    return write_jsonl(tmp_path / "data" / "in.jsonl", lines)


EXPECTED = {
    "malformed": [2], "missing_file": [3], "unreadable_audio": [4], "duration_mismatch": [5, 12],
    "sample_rate": [6], "channels": [7], "empty_text": [8], "bad_characters": [9], "duplicate": [10],
    "duration_range": [11],
}


def test_each_problem_is_found_on_its_line_and_outputs_partition_the_input(tmp_path, seeded):
    fix, rejects = tmp_path / "out" / "clean.jsonl", tmp_path / "rejects.jsonl"
    result = invoke("manifest", "validate", seeded, "--sample-rate", "16000", "--channels", "1",
                    "--charset", "a-z ", "--min-duration", "0.5", "--fix", fix, "--rejects", rejects, "--json")
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert {kind: p["lines"] for kind, p in report["problems"].items()} == EXPECTED
    assert (report["rows"], report["clean"], report["rejected"]) == (13, 2, 11)

    clean, rejected = read_jsonl(fix), read_jsonl(rejects)
    assert [r["text"] for r in clean] == ["hello world", "within tolerance"]
    assert all((fix.parent / r["audio_filepath"]).is_file() for r in clean)  # re-expressed from out/
    malformed = [r for r in rejected if "raw" in r]
    assert malformed == [{"line": 2, "raw": seeded.read_text().splitlines()[1],
                          "reject_reason": malformed[0]["reject_reason"]}]
    assert "invalid JSON" in malformed[0]["reject_reason"]
    rows = [r for r in rejected if "raw" not in r]
    assert all(r.pop("reject_reason") for r in rows)
    # Every input line exactly once: clean rows + rejected rows + the malformed line's raw text.
    original = seeded.read_text().splitlines()
    expected = sorted([canonical(json.loads(line), seeded.parent) for line in original if line.endswith("}")]
                      + [original[1]])
    got = sorted([canonical(r, fix.parent) for r in clean] + [canonical(r, rejects.parent) for r in rows]
                 + [malformed[0]["raw"]])
    assert got == expected


def canonical(record, folder):
    """A row as a string that does not depend on the folder its relative path is written from."""
    return json.dumps({**record, "audio_filepath": os.path.normpath(folder / record["audio_filepath"])}, sort_keys=True)


def test_reasons_name_the_trouble(tmp_path, seeded):
    result = invoke("manifest", "validate", seeded, "--sample-rate", "16000", "--json")
    problems = json.loads(result.stdout)["problems"]
    assert "no such file" in problems["missing_file"]["examples"][0]
    assert "8000 Hz, expected 16000" in problems["sample_rate"]["examples"][0]
    assert "same audio as line 1" in problems["duplicate"]["examples"][0]
    assert "ends after the file" in problems["duration_mismatch"]["examples"][1]
    assert "channels" not in problems and "bad_characters" not in problems  # not asked for


def test_table_report_and_clean_manifest_exit_zero(tmp_path):
    write_wav(tmp_path / "a.wav", 1.0)
    clean = write_jsonl(tmp_path / "ok.jsonl", [{"audio_filepath": "a.wav", "duration": 1.0, "text": "fine"}])
    result = invoke("manifest", "validate", clean)
    assert result.exit_code == 0 and "1 rows: 1 clean, 0 with problems" in result.stdout
    no_text = write_jsonl(tmp_path / "infer.jsonl", [{"audio_filepath": "a.wav"}])
    assert invoke("manifest", "validate", no_text).exit_code == 3
    assert invoke("manifest", "validate", no_text, "--allow-empty-text").exit_code == 0


def test_table_lists_problems_by_kind(tmp_path, seeded):
    result = invoke("manifest", "validate", seeded)
    assert result.exit_code == 3
    assert "audio file missing" in result.stdout and "duplicate audio" in result.stdout
    assert "13 rows: 6 clean, 7 with problems" in result.stdout  # no rate/channel/charset/range checks asked


def test_charset_ranges_literals_and_files(tmp_path):
    assert parse_charset("a-c' ") == frozenset("abc' ")
    assert parse_charset("-a-b") == frozenset("-ab")
    chars = tmp_path / "chars.txt"
    chars.write_text("xy\nz \n")
    assert parse_charset(str(chars)) == frozenset("xyz ")
    with pytest.raises(ValueError):
        parse_charset("z-a")
