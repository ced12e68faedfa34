"""`asrctl eval`: corpus rates checked against jiwer, intervals, comparisons, per-utterance output, report."""

import json
import shutil
import subprocess

import jiwer
import numpy as np
import pytest

from asrctl.score.metrics import bootstrap_ci, edit_counts, totals
from asrctl.score.normalizers import get_normalizer
from asrctl.testing import make_plugin_dist, run_cli

ROWS = [
    ("Mr. Smith paid ten dollars.", "mister smith paid $10"),  # equal after whisper-en normalisation
    ("the cat sat on the mat", "the cat sat on mat mat"),  # a substitution
    ("I can't go there today", "i cannot go there"),  # contraction + deletion
    ("hello world", ""),  # empty prediction: two deletions
    ("a b c", "a x b c d"),  # insertions
    ("The 10 Colours!", "the ten colors"),
    ("good morning everyone", None),  # inference error: no prediction
]


def write_preds(path, rows=ROWS, key="pred_text"):
    with open(path, "w") as f:
        for i, (ref, hyp) in enumerate(rows):
            f.write(json.dumps({"audio_filepath": f"{i}.wav", "duration": 1.0 + i, "text": ref, key: hyp,
                                "speaker": "ab"[i % 2]}) + "\n")
    return path


def eval_json(*args):
    result = run_cli("eval", *args, "--json")
    assert result.returncode in (0, 3), result.stderr
    return json.loads(result.stdout), result.returncode


@pytest.mark.parametrize("normalizer", ["whisper-en", "basic", "none"])
def test_corpus_wer_and_cer_match_jiwer(tmp_path, normalizer):
    preds = write_preds(tmp_path / "p.jsonl")
    result, code = eval_json(str(preds), "--cer", "--normalizer", normalizer)
    assert code == 3  # one row had no prediction
    normalize = get_normalizer(normalizer)
    refs = [normalize(r) for r, _ in ROWS]
    hyps = [normalize(h or "") for _, h in ROWS]
    words = jiwer.process_words(refs, hyps)
    assert result["wer"]["rate"] == pytest.approx(100 * words.wer)
    assert (result["wer"]["substitutions"], result["wer"]["deletions"], result["wer"]["insertions"]) == (
        words.substitutions, words.deletions, words.insertions)
    assert result["cer"]["rate"] == pytest.approx(100 * jiwer.cer(refs, hyps))
    assert result["no_prediction"] == 1


def test_normaliser_matters():
    refs, hyps = ["Mr. Smith paid ten dollars."], ["mister smith paid $10"]
    assert totals(edit_counts([get_normalizer("whisper-en")(r) for r in refs], hyps)).errors == 0
    assert totals(edit_counts(refs, hyps)).errors == 4


def test_empty_reference_counts_insertions_and_missing_reference_is_skipped(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps({"audio_filepath": "a.wav", "text": "red blue", "pred_text": "red blue"}) + "\n"
        + json.dumps({"audio_filepath": "b.wav", "text": "", "pred_text": "extra words"}) + "\n"
        + json.dumps({"audio_filepath": "c.wav", "pred_text": "no ref"}) + "\n"
    )
    result, code = eval_json(str(path))
    assert code == 0
    assert result["wer"]["insertions"] == 2 and result["wer"]["reference"] == 2 and result["wer"]["rate"] == 100.0
    assert result["empty_reference"] == 1
    assert result["skipped"] == [f"{path}:3: no reference field 'text'"]


def test_bootstrap_is_reproducible_and_contains_the_estimate(tmp_path):
    rng = np.random.default_rng(1)
    counts = np.column_stack([rng.integers(0, 3, 200), rng.integers(0, 2, 200), rng.integers(0, 2, 200),
                              rng.integers(5, 20, 200)])
    low, high = bootstrap_ci(counts, seed=7)
    assert (low, high) == bootstrap_ci(counts, seed=7)
    assert low < totals(counts).rate < high
    assert bootstrap_ci(counts, seed=8) != (low, high)
    preds = write_preds(tmp_path / "p.jsonl")
    first, _ = eval_json(str(preds), "--ci", "--seed", "3")
    second, _ = eval_json(str(preds), "--ci", "--seed", "3")
    assert first["wer"]["ci"] == second["wer"]["ci"]
    assert first["wer"]["ci"][0] <= first["wer"]["rate"] <= first["wer"]["ci"][1]


def test_against_identical_file_is_zero_difference(tmp_path):
    preds = write_preds(tmp_path / "p.jsonl")
    other = tmp_path / "q.jsonl"
    shutil.copy(preds, other)
    result, _ = eval_json(str(preds), "--against", str(other))
    c = result["comparison"]
    assert c["difference"] == 0 and c["ci"] == [0, 0] and c["b_better_share"] == 0 and c["changed_most"] == []
    assert c["matched"] == len(ROWS)


def test_against_better_system(tmp_path):
    preds = write_preds(tmp_path / "p.jsonl")
    better = write_preds(tmp_path / "b.jsonl", [(r, r) for r, _ in ROWS])
    result, _ = eval_json(str(preds), "--against", str(better))
    c = result["comparison"]
    assert c["wer_b"] == 0 and c["difference"] == -c["wer_a"] < 0
    assert c["b_better_share"] > 0.9
    assert c["changed_most"][0]["error_change"] < 0


def write_pair(tmp_path, rows):
    """Manifests A and B from (speaker, duration, ref, hyp_a, hyp_b) rows; hyp_b None leaves the row out of B."""
    for name, k in (("a", 3), ("b", 4)):
        with open(tmp_path / f"{name}.jsonl", "w") as f:
            for i, row in enumerate(rows):
                if row[k] is not None:
                    f.write(json.dumps({"audio_filepath": f"{i}.wav", "speaker": row[0], "duration": row[1],
                                        "text": row[2], "pred_text": row[k]}) + "\n")
    return str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")


def test_against_by_group(tmp_path):
    a, b = write_pair(tmp_path, [
        ("x", 1.0, "red green blue black", "red green blue block", "red green blue black"),  # A: 1 sub in 4
        ("y", 6.0, "cat dog", "cat dog", "cat"),  # B: 1 deletion in 2
        ("y", 7.0, "sun moon star", "sun moon star", "sun moon star"),
        ("y", 2.0, "tree", "", None),  # only in A: in A's breakdown, not in the comparison
    ])
    result = run_cli("eval", a, "--against", b, "--by", "speaker", "--by", "duration:5", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {g["group"]: g["rows"] for g in summary["by"]["speaker"]} == {"x": 1, "y": 3}
    by = summary["comparison"]["by"]
    x, y = by["speaker"]
    assert (x["group"], x["rows"], x["reference"], x["wer_a"], x["wer_b"], x["difference"]) == ("x", 1, 4, 25, 0, -25)
    assert (y["group"], y["rows"], y["reference"], y["wer_a"], y["wer_b"], y["difference"]) == ("y", 2, 5, 0, 20, 20)
    assert "ci" not in x and "b_better_share" not in y  # too few rows for an interval
    assert [{k: v for k, v in g.items() if k != "group"} for g in by["duration:5"]] == [
        {k: v for k, v in g.items() if k != "group"} for g in (x, y)]
    assert [g["group"] for g in by["duration:5"]] == ["0-5s", "5-10s"]

    # CER: "black" -> "block" is 1 character of 20 (spaces count); "cat dog" -> "cat" deletes 4 of 20
    cer = json.loads(run_cli("eval", a, "--against", b, "--by", "speaker", "--no-wer", "--cer", "--json").stdout)
    x, y = cer["comparison"]["by"]["speaker"]
    assert (x["reference"], x["cer_a"], x["cer_b"], y["reference"], y["cer_a"], y["cer_b"]) == (20, 5, 0, 20, 0, 20)

    report = tmp_path / "report.html"
    shown = run_cli("eval", a, "--against", b, "--by", "speaker", "--report", str(report), env={"COLUMNS": "200"})
    rows = [line.split("│")[1:-1] for line in shown.stdout.splitlines() if line.startswith("│ ")]
    assert [cell.strip() for cell in rows[-2]] == ["x", "1", "4", "25.00", "0.00", "-25.00", "–", "–"]
    assert [cell.strip() for cell in rows[-1]] == ["y", "2", "5", "0.00", "20.00", "+20.00", "–", "–"]
    page = report.read_text()
    assert "B against A by speaker" in page and '<td class="n">-25.00</td>' in page and "+20.00" in page


def test_against_by_group_intervals(tmp_path):
    from asrctl.score.evaluate import MIN_INTERVAL_ROWS

    many, few = MIN_INTERVAL_ROWS + 2, MIN_INTERVAL_ROWS - 1
    a, b = write_pair(tmp_path, [
        *[("better", 1.0, "red green blue black", "red green blue block", "red green blue black")] * many,
        *[("same", 1.0, "red green blue black", "red green blue block", "red green blue block")] * many,
        *[("few", 1.0, "red green blue black", "red green blue block", "red green blue black")] * few,
    ])
    summary, _ = eval_json(a, "--against", b, "--by", "speaker")
    groups = {g["group"]: g for g in summary["comparison"]["by"]["speaker"]}
    # B is one error in four words better on every "better" row, so on every resample of them
    assert groups["better"]["ci"] == [-25, -25] and groups["better"]["b_better_share"] == 1
    assert groups["same"]["ci"] == [0, 0] and groups["same"]["b_better_share"] == 0
    assert groups["few"]["difference"] == -25 and "ci" not in groups["few"]
    assert summary["comparison"]["ci"] != [-25, -25]  # the corpus interval mixes the groups


def test_breakdown_by_field_and_duration_bins(tmp_path):
    preds = write_preds(tmp_path / "p.jsonl")
    result, _ = eval_json(str(preds), "--by", "speaker", "--by", "duration:3")
    speakers = {g["group"]: g for g in result["by"]["speaker"]}
    assert set(speakers) == {"a", "b"} and speakers["a"]["rows"] == 4 and speakers["b"]["rows"] == 3
    normalize = get_normalizer("whisper-en")
    rows_a = [ROWS[i] for i in range(0, len(ROWS), 2)]
    expected = jiwer.wer([normalize(r) for r, _ in rows_a], [normalize(h or "") for _, h in rows_a])
    assert speakers["a"]["wer"] == pytest.approx(100 * expected)
    assert speakers["a"]["hours"] == pytest.approx(sum(1.0 + i for i in range(0, len(ROWS), 2)) / 3600)
    bins = [g["group"] for g in result["by"]["duration:3"]]
    assert bins == ["0-3s", "3-6s", "6-9s"]
    # groups whose names hold numbers are in numeric order, not string order
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    preds.write_text("".join(json.dumps({**row, "snr": [5, 10, 20][i % 3], "duration": 4.0 * i}) + "\n"
                             for i, row in enumerate(rows)))
    result, _ = eval_json(str(preds), "--by", "snr", "--by", "duration:5")
    assert [g["group"] for g in result["by"]["snr"]] == ["5", "10", "20"]
    assert [g["group"] for g in result["by"]["duration:5"]] == ["0-5s", "5-10s", "10-15s", "15-20s", "20-25s"]


def test_worst_per_utt_and_fail_above(tmp_path):
    preds = write_preds(tmp_path / "p.jsonl")
    per_utt = tmp_path / "u.jsonl"
    result = run_cli("eval", str(preds), "--worst", "2", "--per-utt", str(per_utt))
    assert "REF: hello world" in result.stdout and "line 4" in result.stdout
    rows = [json.loads(line) for line in per_utt.read_text().splitlines()]
    normalize = get_normalizer("whisper-en")
    expected = [100 * jiwer.wer(normalize(r), normalize(h or "")) for r, h in ROWS]
    assert [r["wer"] for r in rows] == pytest.approx(expected)
    assert expected[3] == 100.0 and expected[0] == 0.0
    assert rows[3]["del"] == 2 and rows[0]["speaker"] == "a"
    gate = run_cli("eval", str(preds), "--fail-above", "5")
    assert gate.returncode == 4 and "above --fail-above" in gate.stderr
    good = write_preds(tmp_path / "g.jsonl", [(r, r) for r, _ in ROWS])
    assert run_cli("eval", str(good), "--fail-above", "5").returncode == 0


def test_eval_runs_inference_first(tmp_path):
    import soundfile as sf

    site = make_plugin_dist(tmp_path / "site", "asrctl-echo", """
        from asrctl import BackendSpec, Transcript, hookimpl
        class Echo:
            def transcribe(self, batch):
                return [Transcript(text="red blue" if len(a) > 16000 else "green") for a in batch]
        @hookimpl
        def register_backends(register):
            register(BackendSpec(name="echo", load=lambda model, **kw: Echo()))
    """)
    sf.write(tmp_path / "long.wav", np.zeros(32000, dtype=np.float32), 16000)
    sf.write(tmp_path / "short.wav", np.zeros(8000, dtype=np.float32), 16000)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "long.wav", "text": "red blue"}) + "\n"
                        + json.dumps({"audio_filepath": "short.wav", "text": "yellow"}) + "\n")
    result = run_cli("eval", str(manifest), "-b", "echo", "-m", "x", "--device", "cpu", "--json", pythonpath=site)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["wer"]["rate"] == pytest.approx(100 / 3)
    assert (tmp_path / "m.pred.jsonl").exists()


def test_report_renders_in_chromium(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    preds = write_preds(tmp_path / "p.jsonl")
    report = tmp_path / "report.html"
    result = run_cli("eval", str(preds), "--cer", "--by", "speaker", "--ci", "--worst", "3", "--report", str(report),
                     "--json")
    summary = json.loads(result.stdout)
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=60,
    ).stdout
    assert f"WER {summary['wer']['rate']:.2f}%" in dom
    assert f"CER {summary['cer']['rate']:.2f}%" in dom
    assert "By speaker" in dom and dom.count("<svg") == 2


def test_report_keeps_labels_inside_and_shows_alignments(tmp_path):
    from asrctl.score.report import histogram, render

    svg = histogram([1.0, 70.0, 147.693], "durations")
    assert 'text-anchor="end">147.7s</text>' in svg and 'text-anchor="start">1.0s</text>' in svg
    preds = write_preds(tmp_path / "p.jsonl")
    result = json.loads(run_cli("eval", str(preds), "--by", "speaker", "--worst", "2", "--json").stdout)
    result["durations"] = [1.0, 2.0]
    page = render(result, ["wer"], "note")
    assert page.count("<pre>REF:") == 2  # each worst utterance aligned, as the terminal shows it
    group_hours = [g["hours"] for g in result["by"]["speaker"]]
    assert all(f'<td class="n">{h:.4f}</td>' in page for h in group_hours)  # one precision for the column
