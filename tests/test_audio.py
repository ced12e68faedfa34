"""asrctl.data.audio: every format decodes to 16 kHz mono float32 with its content intact.

All audio is synthesized here (numpy + soundfile, PyAV's encoders for the FFmpeg-only
containers), so nothing needs ffmpeg/sox binaries or fixture files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from asrctl.data.audio import SAMPLE_RATE, AudioInfo, load_audio, probe
from asrctl.errors import AudioError


def tone(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def tones(freqs: list[float], rate: int, seconds: float = 1.0) -> np.ndarray:
    """One `seconds`-long tone per frequency, back to back: where a segment starts is audible."""
    return np.concatenate([tone(f, rate, seconds) for f in freqs])


def peak_hz(x: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def band_level(x: np.ndarray, freq: float, rate: int = SAMPLE_RATE) -> float:
    """Spectral magnitude near `freq`, relative to the strongest bin."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = round(freq * len(x) / rate)
    return float(spectrum[k - 3 : k + 4].max() / spectrum.max())


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def assert_model_ready(x: np.ndarray, seconds: float, slack: int) -> None:
    """1-D, C-contiguous float32, finite, seconds * 16 kHz long (within `slack` samples)."""
    assert isinstance(x, np.ndarray)
    assert x.dtype == np.float32 and x.ndim == 1 and x.flags.c_contiguous
    assert abs(len(x) - seconds * SAMPLE_RATE) <= slack, len(x)
    assert np.isfinite(x).all()


def encode_av(
    path: Path, fmt: str, codec: str, rate: int, x: np.ndarray, vbr_quality: int | None = None, **options: str
) -> Path:
    """Write planar float `x` (channels x samples) with PyAV's encoder: no ffmpeg binary."""
    layout = "stereo" if x.shape[0] == 2 else "mono"
    with av.open(str(path), "w", format=fmt, options=options) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        if vbr_quality is not None:  # ffmpeg's -q:a
            stream.codec_context.qscale = True
            stream.codec_context.global_quality = vbr_quality * 118  # FF_QP2LAMBDA
        step = stream.codec_context.frame_size or 960  # libopus reports 0 until opened
        for i in range(0, x.shape[1], step):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i : i + step]), format="fltp", layout=layout)
            frame.sample_rate, frame.pts = rate, i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


# (extension, libsndfile subtype, rate, max waveform error vs. an ideal 16 kHz tone or None for
#  lossy codecs, major format as probe() reports it)
SOUNDFILE_CASES = [
    ("wav", "PCM_16", 16000, 1e-4, "WAV"),
    ("wav", "PCM_24", 44100, 2e-3, "WAV"),
    ("wav", "PCM_32", 22050, 2e-3, "WAV"),
    ("wav", "FLOAT", 48000, 2e-3, "WAV"),
    ("wav", "PCM_U8", 8000, 2e-2, "WAV"),  # 8-bit: quantization step 1/128
    ("flac", "PCM_16", 44100, 2e-3, "FLAC"),
    ("flac", "PCM_24", 96000, 2e-3, "FLAC"),
    ("ogg", "VORBIS", 48000, None, "OGG"),
    ("ogg", "OPUS", 48000, None, "OGG"),
]


@pytest.mark.parametrize(
    ("ext", "subtype", "rate", "max_error", "fmt"),
    SOUNDFILE_CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in SOUNDFILE_CASES],
)
def test_soundfile_formats_decode_to_the_same_16k_tone(tmp_path, ext, subtype, rate, max_error, fmt):
    path = tmp_path / f"tone.{ext}"
    sf.write(path, tone(440, rate), rate, subtype=subtype)

    x = load_audio(path)

    assert_model_ready(x, 1.0, slack=2)
    assert abs(peak_hz(x) - 440) <= 1
    assert rms(x) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)
    if max_error is not None:  # lossless: the very waveform, resampled (edges aside: filter ramp)
        np.testing.assert_allclose(x[400:-400], tone(440, SAMPLE_RATE)[400:-400], atol=max_error)
    assert probe(path) == AudioInfo(duration=1.0, sample_rate=rate, channels=1, frames=rate, format=fmt)


@pytest.mark.parametrize("kind", ["lame-vbr", "vbr-without-xing-header"])
def test_mp3_decodes_completely(tmp_path, kind):
    # libsndfile 1.2 reads MP3 wrongly after its first read call and stops early at its length
    # guess when the Xing header is missing; FFmpeg decodes these, so check both halves survive.
    rate = 44100
    signal = tones([440, 1000], rate)
    path = tmp_path / "two.mp3"
    if kind == "lame-vbr":
        sf.write(path, signal, rate, format="MP3")  # libsndfile's LAME writes a Xing/LAME header
    else:
        # libsndfile 1.2.2 guesses about 0.4 s for this file and reads no further.
        encode_av(path, "mp3", "libmp3lame", rate, signal[None], vbr_quality=7, write_xing="0")

    x = load_audio(path)

    padding = 0 if kind == "lame-vbr" else 2 * 1152 * SAMPLE_RATE // rate  # no header: no gapless trim
    assert_model_ready(x, 2.0, slack=2 + padding)
    assert abs(peak_hz(x[:16000]) - 440) <= 1
    assert abs(peak_hz(x[16000:32000]) - 1000) <= 1
    info = probe(path)
    assert (info.sample_rate, info.channels, info.format) == (rate, 1, "mp3")
    assert info.duration == pytest.approx(2.0, abs=0.01 if kind == "lame-vbr" else 0.2)  # else estimated


@pytest.mark.parametrize("rate", [16000, 44100])
def test_stereo_downmixes_to_the_mean_of_its_channels(tmp_path, rate):
    left, right = tone(440, rate, amp=0.6), tone(1000, rate, amp=0.2)
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([left, right], axis=1), rate, subtype="PCM_24")

    x = load_audio(path)

    assert_model_ready(x, 1.0, slack=2)
    mean = (tone(440, SAMPLE_RATE, amp=0.6) + tone(1000, SAMPLE_RATE, amp=0.2)) / 2
    np.testing.assert_allclose(x[400:-400], mean[400:-400], atol=2e-3)
    assert probe(path).channels == 2


def test_target_rate_is_a_parameter(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, tone(440, 44100), 44100)

    x = load_audio(str(path), 8000)  # str and PathLike both work

    assert x.dtype == np.float32 and abs(len(x) - 8000) <= 2
    assert abs(peak_hz(x, 8000) - 440) <= 1


# FFmpeg-only containers: (extension, muxer, encoder, rate, channels). libsndfile cannot read these.
AV_CASES = [
    ("m4a", "ipod", "aac", 44100, 2),
    ("mp4", "mp4", "aac", 22050, 1),
    ("webm", "webm", "libopus", 48000, 1),
]


@pytest.fixture(params=AV_CASES, ids=[c[0] for c in AV_CASES])
def av_file(request, tmp_path) -> tuple[Path, int, int]:
    ext, fmt, codec, rate, channels = request.param
    # Left channel 440 Hz; a stereo file gets a quieter 1000 Hz right channel.
    x = np.stack([tone(440, rate, 2.0, 0.6), tone(1000, rate, 2.0, 0.3)][:channels])
    return encode_av(tmp_path / f"tone.{ext}", fmt, codec, rate, x), rate, channels


def test_ffmpeg_only_containers_decode_through_pyav(av_file):
    path, rate, channels = av_file
    with pytest.raises(sf.LibsndfileError):
        sf.info(path)  # so the PyAV fallback is what this test exercises

    x = load_audio(path)

    # AAC in mp4 decodes up to one 1024-sample frame of encoder padding past the real end.
    assert_model_ready(x, 2.0, slack=1024 * SAMPLE_RATE // rate + 2)
    assert abs(peak_hz(x) - 440) <= 1
    if channels == 2:  # the right channel made it into the mix, at half its level
        assert band_level(x, 1000) == pytest.approx(0.5, abs=0.1)
    info = probe(path)
    assert info.sample_rate == rate and info.channels == channels
    assert info.duration == pytest.approx(2.0, abs=0.01)
    assert info.format in {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"}


def test_probe_reads_headers_without_decoding(tmp_path, monkeypatch):
    wav = tmp_path / "long.wav"
    sf.write(wav, np.zeros(8000 * 600, np.int16), 8000, subtype="PCM_16")  # 10 minutes
    m4a = encode_av(tmp_path / "a.m4a", "ipod", "aac", 16000, tone(440, 16000, 3.0)[None])
    mp3 = tmp_path / "a.mp3"
    sf.write(mp3, tone(440, 22050, 3.0), 22050, format="MP3")

    def no_decoding(*args, **kwargs):
        raise AssertionError("probe() decoded audio")

    class HeadersOnly:  # an av container whose packets and frames are off limits
        def __init__(self, container):
            self._container = container

        def __getattr__(self, name):
            if name in {"decode", "demux", "seek"}:
                return no_decoding
            return getattr(self._container, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._container.close()

    real_open = av.open
    monkeypatch.setattr(sf.SoundFile, "read", no_decoding)
    monkeypatch.setattr(sf.SoundFile, "buffer_read", no_decoding)
    monkeypatch.setattr(av, "open", lambda *a, **k: HeadersOnly(real_open(*a, **k)))

    assert probe(wav) == AudioInfo(duration=600.0, sample_rate=8000, channels=1, frames=8000 * 600, format="WAV")
    info = probe(m4a)
    assert info.frames == 48000 and info.duration == 3.0 and info.sample_rate == 16000
    assert probe(m4a).duration == 3.0
    assert probe(mp3).duration == pytest.approx(3.0, abs=0.01)


def test_probe_of_a_streamed_webm_without_duration_header(tmp_path):
    # Browser MediaRecorder / live webm carries no duration: packet timestamps give it.
    path = encode_av(tmp_path / "live.webm", "webm", "libopus", 48000, tone(440, 48000, 1.5)[None], live="1")
    with av.open(str(path)) as container:
        assert container.duration is None and container.streams.audio[0].duration is None

    assert probe(path).duration == pytest.approx(1.5, abs=0.01)


@pytest.mark.parametrize("source", ["wav-16k", "flac-44k", "ogg-48k", "mp3-44k", "m4a-44k", "webm-48k"])
def test_offset_and_duration_select_a_segment(tmp_path, source):
    ext, rate = source.split("-")[0], {"16k": 16000, "44k": 44100, "48k": 48000}[source.split("-")[1]]
    signal = tones([440, 1000, 2000], rate)  # one second each
    if ext in {"wav", "flac", "ogg", "mp3"}:
        path = tmp_path / f"three.{ext}"
        sf.write(path, signal, rate)
    else:
        codec = {"m4a": ("ipod", "aac"), "webm": ("webm", "libopus")}[ext]
        path = encode_av(tmp_path / f"three.{ext}", *codec, rate, signal[None])

    middle = load_audio(path, offset=1.0, duration=1.0)
    tail = load_audio(path, offset=2.25)

    assert_model_ready(middle, 1.0, slack=2)
    assert abs(peak_hz(middle) - 1000) <= 1
    assert abs(peak_hz(tail) - 2000) <= 1
    # The segment is the same audio as the whole decode's slice (not just the same pitch):
    # seeking must land on the exact sample, and the decoder must be warmed up by then.
    # (Edges differ a little: the resampler's filter sees different neighbours there.)
    whole = load_audio(path)
    np.testing.assert_allclose(middle[400:-400], whole[16000 + 400 : 32000 - 400], atol=2e-3)
    np.testing.assert_allclose(tail[400:12000], whole[36000 + 400 : 48000], atol=2e-3)


def test_segment_edges(tmp_path):
    path = tmp_path / "ramp.wav"
    ramp = np.linspace(-1, 1, 32000, dtype=np.float32)  # 2 s at 16 kHz: every sample distinct
    sf.write(path, ramp, SAMPLE_RATE, subtype="FLOAT")

    np.testing.assert_array_equal(load_audio(path, offset=0.5, duration=0.25), ramp[8000:12000])
    np.testing.assert_array_equal(load_audio(path, offset=1.5, duration=10), ramp[24000:])  # clipped at the end
    assert load_audio(path, offset=5.0).shape == (0,)  # past the end: empty, not an error
    assert load_audio(path, duration=0).shape == (0,)
    with pytest.raises(AudioError, match="offset must be >= 0"):
        load_audio(path, offset=-1)


def test_zero_length_wav_gives_an_empty_array(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), 44100)

    x = load_audio(path)

    assert x.shape == (0,) and x.dtype == np.float32
    assert probe(path).duration == 0.0 and probe(path).frames == 0


@pytest.mark.parametrize("rate", [16000, 48000])
def test_non_finite_samples_become_zero(tmp_path, rate):
    x = tone(440, rate)
    x[100], x[5000], x[9000] = np.nan, np.inf, -np.inf
    path = tmp_path / "nan.wav"
    sf.write(path, x, rate, subtype="FLOAT")

    y = load_audio(path)

    assert_model_ready(y, 1.0, slack=2)
    if rate == SAMPLE_RATE:  # no resampling: exactly the input with zeros in place of NaN/inf
        expected = x.copy()
        expected[[100, 5000, 9000]] = 0
        np.testing.assert_array_equal(y, expected)
    assert abs(peak_hz(y) - 440) <= 1


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "a.wav"
    for call in (load_audio, probe):
        with pytest.raises(AudioError, match=r"nowhere/a\.wav: no such file$"):
            call(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.wav", b"this is not audio, just text\n" * 20),
        ("noise.mp3", np.random.default_rng(0).bytes(4000)),
        ("empty.flac", b""),
        ("cut.m4a", None),  # a real m4a, truncated in the middle of its header
        ("cut.flac", "flac"),  # a real flac, truncated in its header
    ],
)
def test_undecodable_files_raise_one_line_audio_error(tmp_path, name, content):
    path = tmp_path / name
    if content is None:
        content = encode_av(tmp_path / "whole.m4a", "ipod", "aac", 16000, tone(440, 16000)[None]).read_bytes()[:40]
    elif content == "flac":
        sf.write(tmp_path / "whole.flac", tone(440, 16000), 16000)
        content = (tmp_path / "whole.flac").read_bytes()[:20]
    path.write_bytes(content)

    for call in (load_audio, probe):
        with pytest.raises(AudioError) as caught:
            call(path)
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(f"{path}: cannot ") or message == f"{path}: empty file (0 bytes), not audio"


def test_a_directory_is_not_audio(tmp_path):
    with pytest.raises(AudioError, match="is a directory"):
        load_audio(tmp_path)


def test_a_video_without_audio_says_so(tmp_path):
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width = stream.height = 16
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)

    for call in (load_audio, probe):
        with pytest.raises(AudioError, match=r"silent\.mp4: no audio stream"):
            call(path)


def test_module_imports_without_heavy_dependencies():
    code = "import sys, asrctl.data.audio; print(sorted({'torch', 'av', 'soxr'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_batch_of_arrays_becomes_one_padded_tensor_and_its_lengths():
    import torch

    from asrctl.api import padded_batch

    signal, lengths = padded_batch([np.ones(3, np.float32), np.full(5, 2.0, np.float32)], "cpu")
    assert signal.dtype == torch.float32 and signal.tolist() == [[1, 1, 1, 0, 0], [2, 2, 2, 2, 2]]
    assert lengths.tolist() == [3, 5]
