"""Canary-style multitask models through the nemo backend: a tiny canary2 model built here with NeMo's
own classes, trained a few steps on German, Spanish and English fixtures, saved as .nemo, then
through the CLI. What the model is prompted with is read from the model itself: a probe on the
interpreter's path records what NeMo's encoder and decoding receive."""

import json
from pathlib import Path

import pytest
import soundfile as sf
from tiny_models import build_tiny_canary

from asrctl.testing import run_cli

pytest.importorskip("nemo.collections.asr")
MULTILINGUAL = Path(__file__).parent / "data" / "multilingual"

# Records, per call, the audio lengths NeMo's multitask encoder gets and the encoder frames it gives
# them, and the prompts its decoding gets (as tokens) with the encoder frames of each item and the search.
PROBE = """
import json, os
from nemo.collections.asr.models import EncDecMultiTaskModel
from nemo.collections.asr.parts.submodules.multitask_decoding import MultiTaskDecoding

forward, decode = EncDecMultiTaskModel.forward, MultiTaskDecoding.decode_predictions_tensor

def log(record):
    with open(os.environ["PROMPT_LOG"], "a") as f:
        f.write(json.dumps(record) + "\\n")

def recording_forward(self, *args, **kwargs):
    out = forward(self, *args, **kwargs)
    if kwargs.get("transcript") is None:
        log({"samples": kwargs["input_signal_length"].tolist(), "frames": out[1].tolist()})
    return out

def recording_decode(self, *args, **kwargs):
    prompts = [self.tokenizer.ids_to_tokens(ids) for ids in kwargs["decoder_input_ids"].tolist()]
    log({"prompts": prompts, "frames": kwargs["encoder_input_mask"].sum(-1).int().tolist(),
         "search": type(self.decoding).__name__, "beam": getattr(self.decoding, "beam_size", 1)})
    return decode(self, *args, **kwargs)

EncDecMultiTaskModel.forward = recording_forward
MultiTaskDecoding.decode_predictions_tensor = recording_decode
"""


def fixture_rows() -> list[dict]:
    rows = [json.loads(line) for line in (MULTILINGUAL / "manifest.jsonl").read_text().splitlines()]
    return [{**r, "audio_filepath": str(MULTILINGUAL / r["audio_filepath"])} for r in rows]


@pytest.fixture(scope="module")
def tiny_canary(tmp_path_factory):
    return build_tiny_canary(tmp_path_factory.mktemp("canary"), fixture_rows(), steps=200)


@pytest.fixture
def manifest(tmp_path):
    """The fixtures, two languages or more in a `lang` field, with a missing and a corrupt file among them."""
    rows = fixture_rows()
    (tmp_path / "corrupt.flac").write_text("not audio")
    rows[2:2] = [{"audio_filepath": str(tmp_path / "missing.flac"), "duration": 1.0, "text": "gone", "lang": "de"},
                 {"audio_filepath": str(tmp_path / "corrupt.flac"), "duration": 1.0, "text": "broken", "lang": "es"}]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def infer_probed(tmp_path: Path, manifest: Path, model: Path, *flags: str):
    """`asrctl infer -b nemo` with the probe: its result, output rows, each audio file's prompts, and the
    searches (NeMo's class, beam width) that decoded them."""
    (tmp_path / "probe").mkdir(exist_ok=True)
    (tmp_path / "probe" / "sitecustomize.py").write_text(PROBE)
    log, out = tmp_path / "prompts.jsonl", tmp_path / "pred.jsonl"
    log.unlink(missing_ok=True)
    result = run_cli("infer", str(manifest), "-b", "nemo", "-m", str(model), "--allow-pickle", "--device", "cpu",
                     "--num-workers", "0", "-o", str(out), "--overwrite", *flags, pythonpath=tmp_path / "probe",
                     env={"PROMPT_LOG": str(log)})
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    samples = {}  # encoder frames -> audio length in samples, from the encoder's calls
    for record in records:
        if "samples" in record:
            samples.update(zip(record["frames"], record["samples"]))
    assert len(set(samples.values())) == len(samples), "each fixture must have encoder frames of its own"
    prompts: dict[int, list[list[str]]] = {}  # audio length in samples -> the prompts it was decoded after
    for record in records:
        for frames, prompt in zip(record.get("frames", []), record.get("prompts", [])):
            prompts.setdefault(samples[frames], []).append(prompt)
    got = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    searches = {(record["search"], record["beam"]) for record in records if "search" in record}
    return result, got, searches, {row["audio_filepath"]: prompts.get(sf.info(row["audio_filepath"]).frames)
                         for row in got if row.get("pred_text") is not None}


def test_each_row_is_decoded_after_a_prompt_in_its_own_language(tiny_canary, manifest, tmp_path):
    path, rows = manifest
    result, got, searches, prompts = infer_probed(tmp_path, path, tiny_canary, "--language-key", "lang",
                                                  "--timestamps", "word", "--batch-size", "8")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr and "NeMo I" not in result.stderr
    assert searches == {("TransformerAEDGreedyInfer", 1)}
    assert [g["text"] for g in got] == [r["text"] for r in rows]
    for row in got:
        if row["text"] in ("gone", "broken"):
            assert row["pred_text"] is None and Path(row["audio_filepath"]).name in row["error"]
            continue
        code = row["lang"]
        # one decoding, after canary2's prompt: source and target language the row's, punctuation, times
        assert prompts[row["audio_filepath"]] == [["<|startofcontext|>", "<|startoftranscript|>", "<|emo:undefined|>",
                                                   f"<|{code}|>", f"<|{code}|>", "<|pnc|>", "<|noitn|>",
                                                   "<|timestamp|>", "<|nodiarize|>"]]
        assert row["pred_text"] == row["text"] and row["pred_lang"] == code
        words = row["pred_words"]
        assert [w["word"] for w in words] == row["text"].split()
        assert all(0 <= w["start"] <= w["end"] <= row["duration"] + 0.001 for w in words), words
        assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    scored = run_cli("eval", str(tmp_path / "pred.jsonl"), "--by", "pred_lang", "--normalizer", "basic", "--json")
    assert scored.returncode == 3, scored.stderr  # 3: the two rows without a prediction
    by_language = {g["group"]: g for g in json.loads(scored.stdout)["by"]["pred_lang"]}
    assert {code: (g["rows"], g["wer"]) for code, g in by_language.items() if code in ("de", "es", "en")} == \
        {"de": (2, 0.0), "es": (2, 0.0), "en": (1, 0.0)}


def test_translation_and_punctuation_fill_the_prompt(tiny_canary, tmp_path):
    rows = fixture_rows()
    rows[1]["tgt"] = "en"  # this Spanish row to English; the others to --target-language
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result, got, _, prompts = infer_probed(tmp_path, path, tiny_canary, "--language-key", "lang", "--task", "translate",
                                        "--target-language", "de", "--target-language-key", "tgt", "-O", "pnc=false")
    assert result.returncode == 0, result.stderr
    for row in got:
        target = row.get("tgt", "de")
        [prompt] = prompts[row["audio_filepath"]]
        assert prompt[3:6] == [f"<|{row['lang']}|>", f"<|{target}|>", "<|nopnc|>"], prompt
        assert row["pred_lang"] == row["lang"]  # the language spoken


def test_rows_without_a_language_take_the_jobs_and_beam_search_decodes_them(tiny_canary, tmp_path):
    rows = [r for r in fixture_rows() if r["lang"] == "es"]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "lang"}) + "\n" for r in rows))
    result, got, searches, prompts = infer_probed(tmp_path, path, tiny_canary, "--language", "es", "--beam-size", "3")
    assert result.returncode == 0, result.stderr
    assert searches == {("TransformerAEDBeamInfer", 3)}
    assert all(prompts[row["audio_filepath"]][0][3:5] == ["<|es|>", "<|es|>"] for row in got)
    assert [row["pred_text"] for row in got] == [row["text"] for row in rows]


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "translate"], "--task translate needs --target-language"),
    (["--language", "fr"], "does not know language 'fr' (it knows en, de, es)"),
    (["-O", "decoder=ctc"], "-O decoder=ctc: "),
    (["-O", "pnc=maybe"], "-O pnc=maybe: expected true or false"),
])
def test_mistakes_with_a_canary_model_are_one_line(tiny_canary, manifest, args, message):
    result = run_cli("infer", str(manifest[0]), "-b", "nemo", "-m", str(tiny_canary), "--allow-pickle",
                     "--device", "cpu", "-q", *args)
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert message in line


def test_finetuning_a_canary_model_is_refused_before_loading(tiny_canary, tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in fixture_rows()))
    out = tmp_path / "canary"
    result = run_cli("finetune", "-b", "nemo", "-m", str(tiny_canary), "--allow-pickle", "--train", str(train),
                     "-o", str(out), "--max-steps", "2")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "is a multitask (Canary) encoder-decoder model: the nemo trainer fine-tunes CTC, RNNT" in line
    assert not out.exists()  # refused before anything was loaded or written
