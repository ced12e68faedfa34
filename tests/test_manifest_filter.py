"""`asrctl manifest filter` (with its --where parser), `merge` and `stats`."""

import json
import xml.etree.ElementTree as ET

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
