"""`asrctl manifest split`: seeded, disjoint splits; --group-by never puts a group in two splits."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from manifest_helpers import invoke, read_jsonl, write_jsonl

from asrctl.prepare.split import assign, split_manifest, strata

rows_strategy = st.lists(
    st.fixed_dictionaries(
        {"duration": st.floats(0.1, 30.0)},
        optional={"speaker": st.sampled_from(["a", "b", "c", "d", "e", "f", "g"])},
    ),
    min_size=1, max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy, ratios=st.lists(st.floats(0.05, 1.0), min_size=2, max_size=4),
       seed=st.integers(0, 10), stratify=st.sampled_from([0, 3]))
def test_group_by_speaker_never_splits_a_speaker_and_splits_partition_the_input(tmp_path_factory, rows, ratios, seed,
                                                                                 stratify):
    folder = tmp_path_factory.mktemp("split")
    records = [{"audio_filepath": f"/audio/{i}.wav", "text": f"row {i}", **r} for i, r in enumerate(rows)]
    manifest = write_jsonl(folder / "all.jsonl", records)
    total = sum(ratios)
    names = tuple(f"s{i}" for i in range(len(ratios)))
    split_manifest(manifest, folder / "out", [r / total for r in ratios], names, seed=seed, group_by="speaker",
                   stratify=stratify, on_error=lambda e: None)
    parts = {name: read_jsonl(folder / "out" / f"{name}.jsonl") for name in names}
    got = sorted(json.dumps(r, sort_keys=True) for part in parts.values() for r in part)
    assert got == sorted(json.dumps(r, sort_keys=True) for r in records)  # nothing lost, nothing twice
    homes: dict[str, set[str]] = {}
    for name, part in parts.items():
        for r in part:
            if "speaker" in r:
                homes.setdefault(r["speaker"], set()).add(name)
    assert all(len(where) == 1 for where in homes.values()), homes


def test_ratios_by_hours_seed_and_report(tmp_path):
    records = [{"audio_filepath": f"{i}.wav", "duration": 1.0 + i % 7, "text": "x"} for i in range(500)]
    manifest = write_jsonl(tmp_path / "all.jsonl", records)
    result = invoke("manifest", "split", manifest, "--ratios", "0.8,0.1,0.1", "--out-dir", tmp_path / "a", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [s["name"] for s in report["splits"]] == ["train", "val", "test"] and report["ratios_of"] == "hours"
    for split, target in zip(report["splits"], (0.8, 0.1, 0.1)):
        assert abs(split["share"] - target) < 0.01
    again = invoke("manifest", "split", manifest, "--ratios", "8,1,1", "--out-dir", tmp_path / "b", "--json")
    assert (tmp_path / "a" / "val.jsonl").read_text() == (tmp_path / "b" / "val.jsonl").read_text()
    other = invoke("manifest", "split", manifest, "--ratios", "8,1,1", "--seed", "1", "--out-dir", tmp_path / "c")
    assert other.exit_code == 0 and again.exit_code == 0
    assert (tmp_path / "a" / "val.jsonl").read_text() != (tmp_path / "c" / "val.jsonl").read_text()


def test_relative_paths_follow_the_rows_into_the_out_dir(tmp_path):
    manifest = write_jsonl(tmp_path / "data" / "all.jsonl",
                           [{"audio_filepath": "audio/a.wav", "duration": 1.0},
                            {"audio_filepath": "/abs/b.wav", "duration": 1.0}])
    invoke("manifest", "split", manifest, "--ratios", "1,1", "--names", "x,y", "--out-dir", tmp_path / "splits")
    rows = read_jsonl(tmp_path / "splits" / "x.jsonl") + read_jsonl(tmp_path / "splits" / "y.jsonl")
    assert sorted(r["audio_filepath"] for r in rows) == ["../data/audio/a.wav", "/abs/b.wav"]


def test_stratified_splits_share_short_and_long_audio():
    durations = [1.0] * 50 + [20.0] * 50
    order = list(range(100))
    bins = strata(durations, 2)
    assert bins == [0] * 50 + [1] * 50
    chosen = [0] * 100
    for b in (0, 1):
        members = [g for g in order if bins[g] == b]
        for g, s in zip(members, assign(durations, [0.5, 0.5], members)):
            chosen[g] = s
    assert sum(chosen[:50]) == 25 and sum(chosen[50:]) == 25


def test_bad_options_are_usage_errors(tmp_path):
    manifest = write_jsonl(tmp_path / "all.jsonl", [{"audio_filepath": "a.wav"}])
    bad = invoke("manifest", "split", manifest, "--ratios", "0.8,x", "--out-dir", tmp_path / "o")
    assert bad.exit_code == 2 and "--ratios" in bad.stderr
    names = invoke("manifest", "split", manifest, "--ratios", "1,1", "--names", "a,b,c", "--out-dir", tmp_path / "o")
    assert names.exit_code == 2 and "2 distinct names" in names.stderr
