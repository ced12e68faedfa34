"""Bad and unusual audio through `asrctl infer`: each row gets its transcript or a one-line error
naming its file, in input order, and the job goes on."""

import subprocess
import sys

import numpy as np
import soundfile as sf
from probe_backend import read_jsonl
from test_audio import encode_av

RATE_OUT = 16000


def tone(rate, seconds=1.0, channels=1):
    t = np.arange(int(rate * seconds)) / rate
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def write(folder, name, data, rate, subtype=None):
    sf.write(folder / name, data, rate, subtype=subtype)
    return name


def fault_files(folder):
    """(file name, what the row must get): a transcript "N samples peak P" (lossy codecs: N only
    roughly, "~N") or an error mentioning the given text."""
    cases = [
        (write(folder, "pcm16.wav", tone(16000), 16000, "PCM_16"), "16000 samples peak 0.50"),
        (write(folder, "pcm8-8k.wav", tone(8000), 8000, "PCM_U8"), "16000 samples peak 0.50"),
        (write(folder, "pcm24-96k.wav", tone(96000), 96000, "PCM_24"), "16000 samples peak 0.50"),
        (write(folder, "float32-44k.wav", tone(44100), 44100, "FLOAT"), "16000 samples peak 0.50"),
        (write(folder, "stereo.flac", tone(48000, channels=2), 48000), "16000 samples peak 0.50"),
        (write(folder, "surround-5.1.wav", tone(16000, channels=6), 16000, "PCM_16"), "16000 samples peak 0.50"),
        (write(folder, "silence.wav", np.zeros(16000, np.float32), 16000), "16000 samples peak 0.00"),
        (write(folder, "voice path ü 音.wav", tone(16000), 16000), "16000 samples peak 0.50"),
        (write(folder, "mp3-44k.mp3", tone(44100), 44100, "MPEG_LAYER_III"), "~16000"),
        (write(folder, "vorbis.ogg", tone(48000), 48000, "VORBIS"), "~16000"),
        (encode_av(folder / "aac.m4a", "mp4", "aac", 44100, tone(44100)[None, :]).name, "~16000"),
        (write(folder, "empty.wav", np.zeros(0, np.float32), 16000), "error: audio is empty"),
        ("missing.wav", "error: missing.wav"),
    ]
    non_finite = tone(16000, channels=1).copy()
    non_finite[100:200], non_finite[300], non_finite[400] = np.nan, np.inf, -np.inf
    cases.append((write(folder, "nan-inf.wav", non_finite, 16000, "FLOAT"), "16000 samples peak 0.50"))
    (folder / "text.wav").write_text("RIFF? no: this is a text file named .wav\n")
    cases.append(("text.wav", "error: text.wav"))
    whole = (folder / "pcm16.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(whole[: 44 + 2 * 8000])  # the header still says 16000 frames
    cases.append(("truncated.wav", "8000 samples peak 0.50"))  # what is there is transcribed
    return cases


def test_every_kind_of_audio_gets_its_transcript_or_its_own_error(tmp_path, infer):
    import json

    cases = fault_files(tmp_path)
    manifest = tmp_path / "in.jsonl"
    manifest.write_text("".join(json.dumps({"audio_filepath": name, "duration": 1.0, "n": i}) + "\n"
                                for i, (name, _) in enumerate(cases)))
    out = tmp_path / "out.jsonl"
    result = infer(manifest, out, "--batch-size", "4")
    assert result.returncode == 3, result.stderr  # some rows failed: the job finished and says so
    assert "Traceback" not in result.stderr
    rows = read_jsonl(out)
    assert [row["n"] for row in rows] == list(range(len(cases)))  # every row once, in input order
    for row, (name, expected) in zip(rows, cases):
        if expected.startswith("error: "):
            assert row["pred_text"] is None and expected[7:] in row["error"], (name, row)
            assert "\n" not in row["error"] and name in row["error"]
        elif expected.startswith("~"):
            samples = int(row["pred_text"].split()[0])
            assert abs(samples - int(expected[1:])) <= 0.05 * int(expected[1:]), (name, row)
        else:
            assert row["pred_text"] == expected, (name, row)


def test_a_two_hour_file_is_transcribed_in_bounded_memory(tmp_path, probe_site):
    """Peak memory of the whole job (the decoding worker included) against the decoded audio's size."""
    rate, seconds = 8000, 2 * 3600
    path = tmp_path / "two-hours.flac"
    block = tone(rate, 60.0)
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for _ in range(seconds // 60):
            f.write(block)
    manifest = tmp_path / "long.jsonl"
    manifest.write_text(f'{{"audio_filepath": "{path.name}", "duration": {seconds}}}\n')
    out = tmp_path / "long-out.jsonl"
    # A wrapper process whose only child is asrctl: its RUSAGE_CHILDREN peak is the job's largest process.
    wrapper = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)")
    command = [sys.executable, "-c", wrapper, sys.executable, "-m", "asrctl", "infer", str(manifest), "-b", "probe",
               "-m", "none", "-o", str(out), "--device", "cpu", "--num-workers", "1", "-q"]
    done = subprocess.run(command, capture_output=True, text=True, env={"PYTHONPATH": str(probe_site),
                                                                         "PATH": "/usr/bin:/bin"})
    peak_kib, code = map(int, done.stdout.split())
    assert code == 0, done.stderr
    assert read_jsonl(out)[0]["pred_text"] == f"{RATE_OUT * seconds} samples peak 0.50"
    decoded_mib = RATE_OUT * seconds * 4 / 2**20  # float32 at 16 kHz: 440 MiB
    print(f"peak RSS {peak_kib / 1024:.0f} MiB for {decoded_mib:.0f} MiB of decoded audio")
    # Measured: 1,487 MiB. The file is decoded whole (the backends take whole utterances), so memory
    # grows with the longest file, not with the manifest: a few copies of it, not more.
    assert peak_kib / 1024 < 4 * decoded_mib
