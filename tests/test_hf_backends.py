"""hf-ctc and hf-whisper (plugin asrctl-hf) on tiny random models, and on real Whisper base when built."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import build_tiny_ctc, build_tiny_parakeet

from asrctl import AsrctlError, Transcript
from asrctl.plugins import backends
from asrctl.specs import INFER_OPTIONS
from asrctl.testing import run_cli
from asrctl_hf.ctc import CPU_WINDOWS_PER_CALL, CTCTranscriber, Window, kept_frames, plan_windows


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # Tiny models run op by op; on a small CPU, waking torch's thread pool costs more than each op.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def load(backend: str, model: Path, **options):
    """Load as `asrctl infer` does: through the registry, by path, on CPU."""
    return backends().get(backend).load(str(model), device="cpu", dtype="float32", **options)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32)


def spy_generate(transcriber, monkeypatch) -> list[dict]:
    """Record what each model.generate() call received: frames of input features, and its options."""
    calls: list[dict] = []
    generate = transcriber.model.generate

    def spy(input_features, **kwargs):
        calls.append({"frames": input_features.shape[-1], **kwargs})
        return generate(input_features, **kwargs)

    monkeypatch.setattr(transcriber.model, "generate", spy)
    return calls


# -- registration ---------------------------------------------------------------------------------


def test_backends_register_without_importing_torch():
    ctc, whisper = backends().get("hf-ctc"), backends().get("hf-whisper")
    assert ctc.options == {"chunk_seconds", "quantize", "trust_remote_code", "allow_pickle"}
    assert whisper.options == {"language", "task", "detect_language", "beam_size", "timestamps", "quantize",
                               "trust_remote_code", "allow_pickle"}
    assert whisper.item_settings == {"language", "task"} and not ctc.item_settings
    assert ctc.options | whisper.options <= set(INFER_OPTIONS)
    code = "import sys, asrctl_hf; heavy = {'torch', 'transformers'} & set(sys.modules); assert not heavy, heavy"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("backend", ["hf-ctc", "hf-whisper"])
def test_missing_model_is_a_one_line_error_naming_it(backend, tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(AsrctlError) as error:
        load(backend, missing)
    assert str(missing) in str(error.value) and "no such folder" in str(error.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AsrctlError) as error:
        load(backend, empty)
    assert str(empty) in str(error.value) and "\n" not in str(error.value)


def test_checkpoint_of_another_family_is_an_error(tiny_whisper):
    with pytest.raises(AsrctlError, match="cannot load model"):
        load("hf-ctc", tiny_whisper)


@pytest.mark.parametrize("backend", ["hf-ctc", "hf-whisper"])
def test_int8_replaces_linear_layers_and_still_transcribes(backend, tiny_ctc, tiny_whisper):
    """CTC models whole; a Whisper's encoder only (its decoder in int8 as well cost 2 WER points)."""
    transcriber = load(backend, tiny_ctc if backend == "hf-ctc" else tiny_whisper, quantize="int8")

    def kinds(module):
        return {(type(m).__module__, type(m).__name__) for m in module.modules()}

    int8, linear = ("torch.ao.nn.quantized.dynamic.modules.linear", "Linear"), ("torch.nn.modules.linear", "Linear")
    quantized = transcriber.model if backend == "hf-ctc" else transcriber.model.model.encoder
    assert int8 in kinds(quantized) and linear not in kinds(quantized)
    if backend == "hf-whisper":
        assert linear in kinds(transcriber.model.model.decoder) and int8 not in kinds(transcriber.model.model.decoder)
    [result] = transcriber.transcribe([noise(1.0)])
    assert isinstance(result.text, str)


@pytest.mark.parametrize(("options", "message"), [
    ({"device": "cuda:0"}, "cannot run on cuda:0"),
    ({"dtype": "bfloat16"}, "float32"),
    ({"quantize": "int4"}, "expected one of none, int8"),
])
def test_int8_is_for_float32_on_cpu(tiny_ctc, options, message):
    settings = {"device": "cpu", "dtype": "float32", "quantize": "int8", **options}
    with pytest.raises(AsrctlError, match=message):
        backends().get("hf-ctc").load(str(tiny_ctc), **settings)


# -- hf-ctc ---------------------------------------------------------------------------------------


def test_ctc_returns_one_transcript_per_input_in_order(tiny_ctc):
    transcriber = load("hf-ctc", tiny_ctc)
    assert transcriber.sample_rate == 16000
    assert transcriber.model.config._attn_implementation == "sdpa"
    batch = [noise(1.0, 1), noise(0.5, 2), noise(2.0, 3), np.zeros(100, np.float32)]
    results = transcriber.transcribe(batch)
    assert all(isinstance(r, Transcript) and isinstance(r.text, str) for r in results)
    texts = [r.text for r in results]
    assert len(set(texts)) == 4 and texts[-1] == ""  # too short for one frame
    # the same text alone as in a padded batch: padding frames are dropped
    assert texts == [transcriber.transcribe([audio])[0].text for audio in batch]


def test_windows_tile_the_audio():
    assert plan_windows(100, chunk=30, stride=5) == [
        Window(0, 30, 0, 5), Window(20, 50, 5, 5), Window(40, 70, 5, 5), Window(60, 90, 5, 5), Window(80, 100, 5, 0),
    ]
    assert plan_windows(30, chunk=30, stride=5) == [Window(0, 30, 0, 0)]
    for n in range(31, 300):
        windows = plan_windows(n, chunk=30, stride=5)
        kept = [(w.start + w.left, w.end - w.right) for w in windows]
        assert kept[0][0] == 0 and kept[-1][1] == n
        assert all(a_end == b_start and a_start < a_end for (a_start, a_end), (b_start, _) in zip(kept, kept[1:]))
        assert all(w.end - w.start <= 30 for w in windows)
    with pytest.raises(ValueError):
        plan_windows(100, chunk=10, stride=5)


def test_kept_frames_follow_the_frame_grid():
    # 30 s windows, 5 s strides, 320 samples a frame: the conv stack yields 1499 frames for 480 000
    # samples, yet the right stride starts at frame 1250 of the grid, not 1499 - 250.
    assert kept_frames(Window(0, 480_000, 0, 80_000), 1499, 320) == slice(0, 1250)
    assert kept_frames(Window(320_000, 800_000, 80_000, 80_000), 1499, 320) == slice(250, 1250)
    assert kept_frames(Window(640_000, 1_000_000, 80_000, 0), 1124, 320) == slice(250, 1124)


def test_chunked_ctc_equals_one_pass_when_frames_only_see_nearby_audio(tmp_path):
    # No attention layers, per-frame layer norms and no whole-utterance normalisation: each frame
    # depends on ~0.3 s of audio around it, so 0.24 s strides must leave every logit as it was.
    model = build_tiny_ctc(tmp_path, num_hidden_layers=0, do_normalize=False)
    chunked = load("hf-ctc", model, chunk_seconds=1.5)
    audio = noise(5.3)
    assert len(plan_windows(len(audio), chunked.chunk, chunked.stride)) == 5
    pieces = torch.cat(list(chunked.window_logits(audio)))
    whole = chunked.logits([audio])[0]
    assert pieces.shape == whole.shape
    torch.testing.assert_close(pieces, whole, rtol=1e-4, atol=1e-4)
    assert chunked.transcribe([audio]) == load("hf-ctc", model, chunk_seconds=10).transcribe([audio])


def test_long_ctc_input_runs_in_bounded_batches_of_windows(tiny_ctc, monkeypatch):
    transcriber = load("hf-ctc", tiny_ctc, chunk_seconds=2.0)
    shapes = []
    forward = transcriber.model.forward
    monkeypatch.setattr(transcriber.model, "forward",
                        lambda **inputs: shapes.append(inputs["input_values"].shape) or forward(**inputs))
    audio = noise(20.0)
    [result] = transcriber.transcribe([audio])
    assert result.text
    assert len(shapes) > 2  # 15 windows
    assert all(batch <= CPU_WINDOWS_PER_CALL and length <= transcriber.chunk for batch, length in shapes)
    # with attention the logits differ from one pass, but the windows cover each frame exactly once
    assert sum(len(part) for part in transcriber.window_logits(audio)) == transcriber.logits([audio]).shape[1]
    # an accelerator takes as much audio a call as a default batch holds: a 20-s window 15 at a time
    on_gpu = CTCTranscriber(transcriber.model, transcriber.processor, device="cuda:0", dtype=torch.float32,
                            chunk_seconds=20.0)
    assert (transcriber.windows_per_call, on_gpu.windows_per_call) == (CPU_WINDOWS_PER_CALL, 15)


def test_ctc_checkpoint_whose_processor_is_only_a_tokenizer(tiny_ctc, monkeypatch):
    # AutoProcessor gives just the tokenizer for some families (data2vec-audio); the feature extractor is added.
    import transformers

    expected = load("hf-ctc", tiny_ctc).transcribe([noise(1.0)])
    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", transformers.AutoTokenizer.from_pretrained)
    transcriber = load("hf-ctc", tiny_ctc)
    assert not isinstance(transcriber.processor, transformers.ProcessorMixin)
    assert transcriber.transcribe([noise(1.0)]) == expected


def test_parakeet_ctc_takes_mel_features_and_chunks_on_its_frame_grid(tmp_path):
    transcriber = load("hf-ctc", build_tiny_parakeet(tmp_path), chunk_seconds=4.0)
    assert transcriber.samples_per_frame == 160 * 8  # mel hop x FastConformer subsampling
    batch = [noise(1.0, 1), noise(10.0, 2), noise(0.5, 3)]
    texts = [r.text for r in transcriber.transcribe(batch)]
    assert texts == [transcriber.transcribe([audio])[0].text for audio in batch]
    assert sum(len(part) for part in transcriber.window_logits(batch[1])) == transcriber.logits([batch[1]]).shape[1]


# -- hf-whisper -----------------------------------------------------------------------------------


def test_whisper_returns_one_transcript_per_input_in_order(tiny_whisper):
    transcriber = load("hf-whisper", tiny_whisper)
    assert transcriber.sample_rate == 16000
    assert transcriber.model.config._attn_implementation == "sdpa"
    batch = [noise(1.0, 1), noise(2.0, 2), noise(0.5, 3)]
    results = transcriber.transcribe(batch)
    assert all(isinstance(r.text, str) and r.segments is None and r.words is None for r in results)
    assert all(r.language for r in results)  # detected: no language was given
    texts = [r.text for r in results]
    assert len(set(texts)) == 3
    assert texts == [transcriber.transcribe([audio])[0].text for audio in batch]


def test_whisper_long_input_takes_the_long_form_path(tiny_whisper, monkeypatch):
    transcriber = load("hf-whisper", tiny_whisper)
    calls = spy_generate(transcriber, monkeypatch)
    batch = [noise(35.0, 1), noise(2.0, 2), noise(31.0, 3)]
    results = transcriber.transcribe(batch)
    short, long = calls
    assert short["frames"] == 3000  # padded to 30 s: one pass
    assert long["frames"] == 3500 and long["return_timestamps"]  # un-truncated: sequential long-form
    assert long["attention_mask"].sum(-1).tolist() == [3500, 3100]
    assert all(isinstance(r.text, str) for r in results)
    assert results[0].text == transcriber.transcribe([batch[0]])[0].text


@pytest.mark.parametrize("seconds", [3.0, 35.0])
def test_whisper_segment_and_word_timestamps(tiny_whisper, seconds):
    audio = noise(seconds)
    [result] = load("hf-whisper", tiny_whisper, timestamps="segment").transcribe([audio])
    assert result.words is None and result.segments
    for segment in result.segments:
        assert 0 <= segment["start"] <= segment["end"] <= seconds and isinstance(segment["text"], str)
    transcriber = load("hf-whisper", tiny_whisper, timestamps="word")
    assert transcriber.model.config._attn_implementation == "eager"  # cross-attention weights for DTW
    [result] = transcriber.transcribe([audio])
    assert result.segments and result.words
    for word in result.words:
        assert 0 <= word["start"] <= word["end"] <= seconds and word["word"]


def test_whisper_moves_on_from_a_window_that_ends_where_it_began(tiny_whisper, data_dir, tmp_path):
    """A model that says <|0.00|> wherever it may, else ends: generate() goes on from a window's last
    timestamp pair, here its start, and would decode the window again forever. Each clip is decoded
    once. (Through the command line, in its own process: the failure is a hang.)"""
    from transformers import WhisperForConditionalGeneration

    stuck = tmp_path / "stuck"
    shutil.copytree(tiny_whisper, stuck)
    model = WhisperForConditionalGeneration.from_pretrained(stuck)
    config = model.generation_config
    with torch.no_grad():  # every position's output is one direction, closest to <|0.00|>, then to the end
        decoder = model.model.decoder
        decoder.layer_norm.weight.zero_()
        decoder.layer_norm.bias.copy_(torch.eye(decoder.layer_norm.bias.numel())[0])
        embed = decoder.embed_tokens.weight  # the output projection too
        embed[:, 0] = 0
        embed[config.no_timestamps_token_id + 1, 0], embed[config.eos_token_id, 0] = 10, 5
    model.save_pretrained(stuck)
    manifest = tmp_path / "in.jsonl"
    clips = [data_dir / "speech" / name for name in ("utt01.flac", "utt02.flac")]
    manifest.write_text("".join(json.dumps({"audio_filepath": str(clip)}) + "\n" for clip in clips))
    for timestamps in ([], ["--timestamps", "segment"]):
        result = run_cli("infer", str(manifest), "-b", "hf-whisper", "-m", str(stuck), "-o",
                         str(tmp_path / "out.jsonl"), "--device", "cpu", "--language", "en", "--overwrite", "-q",
                         *timestamps, timeout=120)
        assert result.returncode == 0, result.stderr
        rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert [row["pred_text"] for row in rows] == ["", ""]


def test_whisper_language_task_and_beams_reach_generate(tiny_whisper, monkeypatch):
    transcriber = load("hf-whisper", tiny_whisper, language="German", task="translate", beam_size=2)
    calls = spy_generate(transcriber, monkeypatch)
    [result] = transcriber.transcribe([noise(1.0)])
    assert (calls[0]["language"], calls[0]["task"], calls[0]["num_beams"]) == ("de", "translate", 2)
    assert result.language == "de"
    # Without options the task is still given: transformers 5 leaves it out of the prompt otherwise;
    # the language is the one detected, passed on with its probability.
    transcriber = load("hf-whisper", tiny_whisper)
    calls = spy_generate(transcriber, monkeypatch)
    [result] = transcriber.transcribe([noise(1.0)])
    assert calls[0]["task"] == "transcribe" and calls[0]["language"] == result.language and calls[0]["num_beams"] == 1
    assert 0 < result.language_probability <= 1


def test_whisper_takes_a_language_per_item_and_detects_the_others(tiny_whisper, monkeypatch):
    transcriber = load("hf-whisper", tiny_whisper, detect_language=True)
    calls = spy_generate(transcriber, monkeypatch)
    first, second = transcriber.transcribe([noise(1.0), noise(2.0)], language=["German", None])
    assert calls[0]["language"] == ["de", second.language]  # the row's own, and the detected one
    assert first.language_probability is not None and 0 < second.language_probability <= 1
    with pytest.raises(AsrctlError, match="not a Whisper language"):
        transcriber.transcribe([noise(1.0)], language=["klingon"])


def test_whisper_takes_a_task_per_item_one_generate_per_task(tiny_whisper, monkeypatch):
    transcriber = load("hf-whisper", tiny_whisper, language="de")  # a server's request may ask to translate
    calls = spy_generate(transcriber, monkeypatch)
    results = transcriber.transcribe([noise(1.0), noise(2.0), noise(1.5)], task=["translate", None, "translate"])
    assert len(results) == 3 and sorted(call["task"] for call in calls) == ["transcribe", "translate"]
    assert [len(call["attention_mask"]) for call in sorted(calls, key=lambda c: c["task"])] == [1, 2]


@pytest.mark.parametrize(("options", "message"), [
    ({"language": "klingon"}, "not a Whisper language"),
    ({"task": "summarize"}, "task='summarize'"),
    ({"timestamps": "char"}, "timestamps='char'"),
    ({"beam_size": 0}, "beam_size"),
])
def test_whisper_rejects_bad_options(tiny_whisper, options, message):
    with pytest.raises(AsrctlError, match=message):
        load("hf-whisper", tiny_whisper, **options)


def test_english_only_whisper(tiny_whisper, tmp_path, monkeypatch):
    english = Path(shutil.copytree(tiny_whisper, tmp_path / "tiny-whisper-en"))
    config = json.loads((english / "generation_config.json").read_text())
    (english / "generation_config.json").write_text(json.dumps({**config, "is_multilingual": False}))
    for options in ({"language": "fr"}, {"task": "translate"}):
        with pytest.raises(AsrctlError, match="English-only"):
            load("hf-whisper", english, **options)
    transcriber = load("hf-whisper", english, language="en")
    calls = spy_generate(transcriber, monkeypatch)
    [result] = transcriber.transcribe([noise(1.0)])
    assert result.language == "en" and "language" not in calls[0] and "task" not in calls[0]


@pytest.mark.real_model
def test_whisper_base_transcribes_english_speech(test_assets, data_dir):
    import jiwer

    from asrctl.data.audio import load_audio
    from asrctl.score.normalizers import get_normalizer

    normalize = get_normalizer("whisper-en")
    speech = data_dir / "speech"
    rows = {row["audio_filepath"]: row for row in map(json.loads, (speech / "manifest.jsonl").read_text().splitlines())}
    names = ["utt01.flac", "long01.flac"]  # 3 s, and 34 s: Whisper's long-form path
    transcriber = load("hf-whisper", test_assets / "whisper-base-hf")
    results = transcriber.transcribe([load_audio(speech / name) for name in names])
    wer = {name: jiwer.wer(normalize(rows[name]["text"]), normalize(r.text)) for name, r in zip(names, results)}
    assert wer["utt01.flac"] < 0.2 and wer["long01.flac"] < 0.25, wer  # measured: 0.0 and 0.08
    assert [r.language for r in results] == ["en", "en"]


def test_whisper_detecting_languages_runs_the_encoder_no_more_than_without(tiny_whisper):
    """Language detection reads the encoder's output: generate() is given it again, not a second pass."""
    batch = [noise(1.0), noise(2.0, seed=1), noise(3.0, seed=2)]
    runs, texts = {}, {}
    for detect in (False, True):
        transcriber = load("hf-whisper", tiny_whisper, detect_language=detect)
        encodings = []  # the encoder's first layer runs once per real encoding
        transcriber.model.model.encoder.conv1.register_forward_hook(lambda *_, seen=encodings: seen.append(1))
        results = transcriber.transcribe(batch, language=["de"] * 3)
        runs[detect], texts[detect] = len(encodings), [r.text for r in results]
        assert all(r.language_probability is not None for r in results) is detect
    assert runs[True] == runs[False] and texts[True] == texts[False]


def test_whisper_features_made_by_the_workers_transcribe_as_audio_does(tiny_whisper):
    transcriber = load("hf-whisper", tiny_whisper)
    batch = [noise(1.0), noise(2.5, seed=1), noise(7.0, seed=2), noise(40.0, seed=3)]  # the last is long-form
    prepared = [transcriber.prepare(audio) for audio in batch]
    assert isinstance(prepared[-1], np.ndarray) and not isinstance(prepared[0], np.ndarray)
    plain, ready = transcriber.transcribe(batch, language=["en"] * 4), transcriber.transcribe(prepared,
                                                                                              language=["en"] * 4)
    assert [t.text for t in ready] == [t.text for t in plain]
