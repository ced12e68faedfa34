"""`asrctl manifest shard`: NeMo tarred datasets and WebDataset shards; resumable; unpacking stays inside its folder."""

import io
import json
import os
import re
import tarfile

import pytest
from manifest_helpers import invoke, read_jsonl, write_jsonl, write_wav

from asrctl.data.formats.safe_tar import UnsafeMember, extract_member
from asrctl.data.formats.shards import STATE_FILE
from asrctl.data.formats.tarred import read_nemo_tarred, read_webdataset


@pytest.fixture
def manifest(tmp_path):
    rows = []
    for i in range(12):
        write_wav(tmp_path / "audio" / f"u{i}.wav", 0.5 + 0.25 * i)
        rows.append({"audio_filepath": f"audio/u{i}.wav", "duration": 0.5 + 0.25 * i, "text": f"utt {i}", "n": i})
    # The same file again, in u0's shard: NeMo stores it once and names it u0-sub1.wav; its duration is probed.
    rows.insert(1, {"audio_filepath": "audio/u0.wav", "text": "same file again"})
    return write_jsonl(tmp_path / "train.jsonl", rows)


def test_nemo_tarred_shards_buckets_and_manifests(tmp_path, manifest):
    out = tmp_path / "tarred"
    result = invoke("manifest", "shard", manifest, "--out-dir", out, "--num-shards", "2", "--buckets", "2", "-q")
    assert result.exit_code == 0, result.output
    seen = []
    for bucket in ("bucket1", "bucket2"):
        rows = read_jsonl(out / bucket / "tarred_audio_manifest.json")
        seen += rows
        for shard in (0, 1):
            with tarfile.open(out / bucket / f"audio_{shard}.tar") as tar:
                members = set(tar.getnames())
            in_shard = [r for r in rows if r["shard_id"] == shard]
            assert in_shard == read_jsonl(out / bucket / "sharded_manifests" / f"manifest_{shard}.json")
            assert {r["audio_filepath"].replace("-sub1", "") for r in in_shard} == members
    assert sorted(r["text"] for r in seen) == sorted(r["text"] for r in read_jsonl(manifest))
    longest_short = max(r["duration"] for r in read_jsonl(out / "bucket1" / "tarred_audio_manifest.json"))
    shortest_long = min(r["duration"] for r in read_jsonl(out / "bucket2" / "tarred_audio_manifest.json"))
    assert longest_short <= shortest_long
    assert any(r["audio_filepath"] == "u0-sub1.wav" and r["duration"] == 0.5 for r in seen)


def test_rerun_skips_finished_shards_and_rewrites_changed_ones(tmp_path, manifest):
    out = tmp_path / "wds"
    args = ("manifest", "shard", manifest, "--out-dir", out, "--num-shards", "3", "--format", "webdataset")
    assert invoke(*args).exit_code == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")}
    assert sorted(stamps) == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    (out / "shard-000001.tar").unlink()  # as if interrupted while writing it
    rows = read_jsonl(manifest)
    rows[-1]["text"] = "changed"  # lands in the last shard
    write_jsonl(manifest, rows)
    again = invoke(*args)
    assert again.exit_code == 0
    assert re.search(r"shards written\s*│\s*2\s", again.stderr) and re.search(r"\(skipped\)\s*│\s*1\s", again.stderr)
    assert set(json.loads((out / STATE_FILE).read_text())) == set(stamps)
    assert (out / "shard-000000.tar").stat().st_mtime_ns == stamps["shard-000000.tar"]
    assert (out / "shard-000002.tar").stat().st_mtime_ns != stamps["shard-000002.tar"]
    assert (out / "shard-000001.tar").is_file()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    texts = [r["text"] for r in read_webdataset(out, print, audio=False)]
    assert "changed" in texts and len(texts) == len(rows)


def test_unreadable_rows_are_reported_and_left_out(tmp_path, manifest):
    rows = read_jsonl(manifest) + [{"audio_filepath": "audio/missing.wav", "duration": 1.0, "text": "gone"}]
    write_jsonl(manifest, rows)
    out = tmp_path / "tarred"
    result = invoke("manifest", "shard", manifest, "--out-dir", out, "--num-shards", "1", "-q")
    assert result.exit_code == 3
    assert f"{manifest}:14:" in result.stderr and "missing.wav" in result.stderr  # file, line, reason
    assert len(read_jsonl(out / "tarred_audio_manifest.json")) == len(rows) - 1


def _hostile_tar(path, absolute):
    """A tar with the classic escapes (`absolute` is the absolute name to try) next to one honest member."""
    def add(tar, name, data=b"x", **attrs):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        for key, value in attrs.items():
            setattr(info, key, value)
        tar.addfile(info, io.BytesIO(data) if info.isfile() else None)

    with tarfile.open(path, "w") as tar:
        add(tar, "../escape.wav")
        add(tar, "../escape.json", b"{}")
        add(tar, str(absolute))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, str(path.parent.parent)
        tar.addfile(link)
        add(tar, "link/escape-through-link.wav")
        hard = tarfile.TarInfo("hard.wav")
        hard.type, hard.linkname = tarfile.LNKTYPE, "/etc/passwd"
        tar.addfile(hard)
        add(tar, "dev.wav", type=tarfile.CHRTYPE, devmajor=1, devminor=3, size=0)
        add(tar, "good.wav", b"RIFFgood")
        add(tar, "good.json", b'{"text": "fine", "duration": 1.0}')


def _files_under(folder):
    return {os.path.join(root, name) for root, _, names in os.walk(folder) for name in names}


def test_unpacking_never_writes_outside_the_target(tmp_path):
    outer = tmp_path / "outer"
    shards = outer / "shards"
    shards.mkdir(parents=True)
    absolute = tmp_path / "absolute-escape.wav"
    _hostile_tar(shards / "shard-000000.tar", absolute)
    target = outer / "target"
    before = _files_under(tmp_path)
    errors = []
    records = list(read_webdataset(shards, errors.append, extract_to=target))
    after = _files_under(tmp_path)  # the link points at tmp_path; the names climb to outer/ and tmp_path
    assert all(os.path.commonpath([p, str(target)]) == str(target) for p in after - before), after - before
    assert not os.path.lexists(outer / "escape.wav") and not absolute.exists()
    assert not os.path.islink(target / "shard-000000" / "link")  # the link was refused: a plain folder now
    # An audio member without .json or .txt is a sample without text; this one landed in the plain folder.
    assert [r.get("text") for r in records] == [None, "fine"]
    assert records[0]["audio_filepath"] == str(target / "shard-000000" / "link" / "escape-through-link.wav")
    assert open(records[1]["audio_filepath"], "rb").read() == b"RIFFgood"
    reasons = " ".join(str(e) for e in errors)
    for expected in ("climbs out with '..'", "absolute name", "symbolic link", "hard link", "device"):
        assert expected in reasons


def test_nemo_tarred_reader_refuses_the_same_members(tmp_path):
    dataset = tmp_path / "tarred"
    dataset.mkdir()
    absolute = tmp_path / "absolute-escape.wav"
    _hostile_tar(dataset / "audio_0.tar", absolute)
    write_jsonl(dataset / "tarred_audio_manifest.json", [
        {"audio_filepath": name, "duration": 1.0, "text": name, "shard_id": 0}
        for name in ("../escape.wav", str(absolute), "link/escape-through-link.wav", "good.wav")
    ])
    target = tmp_path / "target"
    errors = []
    records = list(read_nemo_tarred(dataset, errors.append, extract_to=target))
    # With the link refused, "link/..." is a plain file in a plain folder inside the target.
    assert [r["text"] for r in records] == ["link/escape-through-link.wav", "good.wav"]
    assert all(os.path.commonpath([r["audio_filepath"], str(target)]) == str(target) for r in records)
    assert not os.path.islink(target / "audio_0" / "link")
    assert not os.path.lexists(tmp_path / "escape.wav") and not absolute.exists()
    assert not (tmp_path / "escape-through-link.wav").exists()
    assert sum("member refused" in str(e) for e in errors) == 6 and sum("is not in" in str(e) for e in errors) == 2


def test_extract_member_checks_links_already_in_the_target(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "sneaky").symlink_to(tmp_path)  # left there by someone else
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("sneaky/evil.wav")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    data.seek(0)
    with tarfile.open(fileobj=data) as tar, pytest.raises(UnsafeMember):
        extract_member(tar, tar.getmember("sneaky/evil.wav"), target)
    assert not (tmp_path / "evil.wav").exists()
