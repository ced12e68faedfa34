"""Manifest reading and writing: round trips, per-line errors, path resolution, atomic writes."""

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asrctl.atomic import AtomicWriter
from asrctl.data.rows import ManifestReader, read_manifest, write_manifest
from asrctl.errors import AsrctlError

SCHEMA = Path(__file__).parents[1] / "manifests" / "manifest.schema.json"

json_values = st.recursive(
    (st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
     | st.text()),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
records = st.fixed_dictionaries(
    {
        "audio_filepath": st.text(min_size=1).filter(str.strip),
        "duration": st.floats(min_value=0, max_value=1e5, allow_nan=False),
        "text": st.text(),
    },
    optional={"speaker": st.text(), "extra": json_values, "lang": st.sampled_from(["en", "de", "日本語"])},
)


@settings(max_examples=60, deadline=None)
@given(st.lists(records, max_size=8))
def test_round_trip_keeps_every_field_and_unicode(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("m") / "m.jsonl"
    assert write_manifest(path, rows) == len(rows)
    reader = ManifestReader(path)
    assert [row.record for row in reader] == rows
    assert reader.errors == []


def test_unicode_stays_readable_in_the_file(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest(path, [{"audio_filepath": "a.wav", "duration": 1.0, "text": "grüße 日本 — ok"}])
    assert "grüße 日本 — ok" in path.read_text(encoding="utf-8")


def test_bad_lines_are_reported_and_the_rest_is_read(tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [
        json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "one"}),
        '{"audio_filepath": "b.wav", "duration": 1.0, "text": "two"',  # truncated JSON
        json.dumps({"duration": 2.0, "text": "no path"}),
        "",
        json.dumps({"audio_filepath": "c.wav", "duration": "long", "text": "x"}),
        json.dumps({"audio_filepath": "d.wav", "text": 5}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"audio_filepath": "e.wav", "duration": 3.5, "text": "five"}),
    ]
    raw = ("\r\n".join(lines) + "\n").encode() + b'{"audio_filepath": "f.wav", "text": "\xff"}\n'
    path.write_bytes(raw)
    reader = ManifestReader(path)
    rows = list(reader)
    assert [(r.line, r.record["text"]) for r in rows] == [(1, "one"), (8, "five")]
    errors = {e.line: e.reason for e in reader.errors}
    assert sorted(errors) == [2, 3, 5, 6, 7, 9]
    assert "invalid JSON" in errors[2]
    assert "missing 'audio_filepath'" in errors[3]
    assert "duration" in errors[5] and "text" in errors[6] and "JSON object" in errors[7]
    assert "UTF-8" in errors[9]
    assert str(reader.errors[0]) == f"{path}:2: {errors[2]}"


def test_relative_paths_resolve_against_the_manifest_folder(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "sub"
    folder.mkdir(parents=True)
    path = folder / "m.jsonl"
    write_manifest(path, [{"audio_filepath": "audio/x.wav"}, {"audio_filepath": "/abs/y.wav"}])
    monkeypatch.chdir(tmp_path)
    rows = read_manifest(Path("data/sub/m.jsonl"))
    assert rows[0].audio_path == folder.resolve() / "audio" / "x.wav"
    assert rows[1].audio_path == Path("/abs/y.wav")
    assert rows[0].record["audio_filepath"] == "audio/x.wav"  # the record itself is untouched


def test_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"audio_filepath": "a.wav"}).encode() + b"\n")
    assert [r.record for r in read_manifest(path)] == [{"audio_filepath": "a.wav"}]


def test_missing_manifest_is_a_user_error(tmp_path):
    with pytest.raises(AsrctlError, match="no such manifest"):
        ManifestReader(tmp_path / "nope.jsonl")


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "out.jsonl"
    write_manifest(path, [{"audio_filepath": "old.wav"}])

    def broken():
        yield {"audio_filepath": "new.wav"}
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_manifest(path, broken())
    assert [r.record for r in read_manifest(path)] == [{"audio_filepath": "old.wav"}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_atomic_writer_into_unwritable_folder_is_a_user_error(tmp_path):
    target = tmp_path / "file-not-folder"
    target.write_text("x")
    with pytest.raises(AsrctlError, match="cannot write"):
        with AtomicWriter(target / "out.jsonl"):
            pass


def test_numpy_values_are_written_as_numbers(tmp_path):
    np = pytest.importorskip("numpy")
    path = tmp_path / "np.jsonl"
    write_manifest(path, [{"audio_filepath": "a.wav", "duration": np.float32(1.5), "n": np.int64(3)}])
    assert read_manifest(path)[0].record == {"audio_filepath": "a.wav", "duration": 1.5, "n": 3}


def test_example_manifests_match_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    examples = sorted((SCHEMA.parent / "examples").glob("*.jsonl"))
    assert examples
    for example in examples:
        reader = ManifestReader(example)
        for row in reader:
            jsonschema.validate(row.record, schema)
            assert row.audio_path.is_file(), f"{example}:{row.line}: {row.audio_path} is missing"
        assert reader.errors == []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"duration": 1.0}, schema)


def blank(number, line):
    """A line with nothing but ASCII white space, or a byte-order mark on the first line: skipped. Other
    invisible characters (a file separator, a no-break space) are no JSON and no blank: an error line."""
    line = line[3:] if number == 1 and line.startswith(b"\xef\xbb\xbf") else line
    return not line.strip()


lines = st.one_of(st.binary(max_size=40), records.map(lambda r: json.dumps(r, ensure_ascii=False).encode()))


@settings(max_examples=80, deadline=None)
@given(st.lists(lines, max_size=10), st.sampled_from([b"\n", b"\r\n"]))
def test_any_bytes_give_rows_or_line_errors_never_a_crash(tmp_path_factory, raw_lines, newline):
    path = tmp_path_factory.mktemp("m") / "m.jsonl"
    raw_lines = [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in raw_lines]
    path.write_bytes(newline.join(raw_lines))
    reader = ManifestReader(path)
    rows = list(reader)
    numbered = [(n, line) for n, line in enumerate(raw_lines, 1) if not blank(n, line)]
    assert len(rows) + len(reader.errors) == len(numbered)  # each non-blank line: a row or an error
    assert sorted([row.line for row in rows] + [e.line for e in reader.errors]) == [n for n, _ in numbered]
    assert all(str(e).startswith(f"{path}:{e.line}: ") and "\n" not in str(e) for e in reader.errors)


def test_a_killed_writers_scratch_files_are_removed_by_the_next_write(tmp_path):
    from asrctl.scratch import scratch_file

    fd, stale = scratch_file(tmp_path / "out.jsonl", ".tmp")
    os.close(fd)
    dead = stale.with_name(stale.name.replace(f".{os.getpid()}.", ".999999999."))
    stale.rename(dead)
    (tmp_path / ".other.jsonl.host.1.x.tmp").write_text("")  # another output's: left alone
    write_manifest(tmp_path / "out.jsonl", [{"audio_filepath": "a.wav"}])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.jsonl.host.1.x.tmp", "out.jsonl"]
