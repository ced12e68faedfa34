"""Audio in: decode any file to mono float32 at 16 kHz, and read durations from headers.

libsndfile (through soundfile) reads WAV/FLAC/OGG and friends quickly and seeks exactly.
FFmpeg (through PyAV) takes every other container (m4a/AAC, webm/opus, mp4, ...) and MP3,
which libsndfile 1.2 decodes unreliably (see `_read_soundfile`). Both are wrapped so that
every failure surfaces as one `AudioError` line naming the file.
`av` and `soxr` are imported lazily: the core must import fast, and many runs need neither.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import soundfile as sf

from asrctl.errors import AudioError
from asrctl.specs import SAMPLE_RATE

PathLike = str | os.PathLike[str]

# Decoders need some audio before a seek target to settle (AAC frames overlap their
# predecessor, Opus asks for 80 ms of pre-roll, Vorbis overlaps too): seek this far early
# and drop the excess.
_SEEK_PREROLL_S = 0.5


@dataclass(frozen=True)
class AudioInfo:
    """What the headers say about an audio file."""

    duration: float  # seconds
    sample_rate: int
    channels: int
    frames: int | None  # samples per channel; None when the headers do not say exactly
    format: str  # libsndfile's major format ("WAV", "FLAC", ...) or FFmpeg's ("mp3", "matroska,webm")


def load_audio(
    path: PathLike,
    sample_rate: int = SAMPLE_RATE,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    channel: int | None = None,
) -> np.ndarray:
    """Decode `path` to a 1-D, C-contiguous float32 array, mono, at `sample_rate`.

    `offset` and `duration` (seconds) select a segment, as NeMo manifests do; `channel` (from 0)
    selects one channel, where by default all are averaged. Non-finite samples become 0. An empty
    file (or a segment past the end) gives an empty array.
    """
    name = _existing(path)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not offset >= 0:  # also rejects NaN
        raise AudioError(f"{name}: offset must be >= 0 seconds, got {offset}")
    if duration is not None and not duration >= 0:
        raise AudioError(f"{name}: duration must be >= 0 seconds, got {duration}")
    sf_error: Exception | None = None
    try:
        decoded = _read_soundfile(name, offset, duration)
    except sf.SoundFileError as error:  # not a libsndfile format: let FFmpeg try
        decoded, sf_error = None, error
    if decoded is None:
        import av

        try:
            decoded = _read_av(name, offset, duration)
        except (av.FFmpegError, OSError, ValueError, RuntimeError) as av_error:
            raise AudioError(f"{name}: cannot decode audio ({_reasons(sf_error, av_error)})") from av_error
    data, rate = decoded
    if channel is not None:
        if not 0 <= channel < data.shape[1]:
            raise AudioError(f"{name}: no channel {channel} (the file has {data.shape[1]}, numbered from 0)")
        data = data[:, channel:channel + 1]
    return _to_mono(data, rate, sample_rate)


def probe(path: PathLike) -> AudioInfo:
    """Read duration, rate, channels and format from the headers, without decoding the audio."""
    name = _existing(path)
    sf_error: Exception | None = None
    try:
        info = sf.info(name)
        if info.format != "MP3":  # libsndfile's MP3 length is a poor guess without a Xing header
            return AudioInfo(
                duration=info.frames / info.samplerate,
                sample_rate=info.samplerate,
                channels=info.channels,
                frames=info.frames,
                format=info.format,
            )
    except sf.SoundFileError as error:
        sf_error = error
    import av

    try:
        return _probe_av(name)
    except (av.FFmpegError, OSError, ValueError, RuntimeError) as av_error:
        raise AudioError(f"{name}: cannot read audio headers ({_reasons(sf_error, av_error)})") from av_error


def _existing(path: PathLike) -> str:
    # Checked up front: both libraries would otherwise report these as decode failures.
    name = os.fsdecode(path)
    if not os.path.exists(name):
        raise AudioError(f"{name}: no such file")
    if os.path.isdir(name):
        raise AudioError(f"{name}: is a directory, not an audio file")
    if os.path.getsize(name) == 0:
        raise AudioError(f"{name}: empty file (0 bytes), not audio")
    return name


def _reasons(sf_error: Exception | None, av_error: Exception) -> str:
    # The libraries' own messages repeat the path; their bare reasons read better after ours.
    def bare(error: Exception) -> str:
        text = getattr(error, "error_string", None) or getattr(error, "strerror", None) or str(error)
        return str(text).strip().rstrip(".")

    ffmpeg = f"ffmpeg: {bare(av_error)}"
    return ffmpeg if sf_error is None else f"soundfile: {bare(sf_error)}; {ffmpeg}"


def _read_soundfile(name: str, offset: float, duration: float | None) -> tuple[np.ndarray, int] | None:
    """Frames x channels float32 and the file's rate; None for a file FFmpeg should decode."""
    with sf.SoundFile(name) as f:
        if f.format == "MP3":
            # libsndfile 1.2.2 mis-decodes MP3 (VBR, low bitrates) after a seek or in any read
            # call but the first, and stops at its length guess when there is no Xing header.
            return None
        rate = f.samplerate
        start = round(offset * rate)
        count = -1 if duration is None else round(duration * rate)
        if start and start >= f.frames:
            return np.zeros((0, f.channels), np.float32), rate
        if start:
            lead = min(start, round(_SEEK_PREROLL_S * rate)) if f.seekable() else start
            if lead < start:
                f.seek(start - lead)
            for _ in f.blocks(blocksize=1 << 16, frames=lead, dtype="float32"):
                pass
        return f.read(count, dtype="float32", always_2d=True), rate


def _read_av(name: str, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    import av

    with av.open(name, metadata_errors="ignore") as container:
        stream = _audio_stream(container, name)
        origin = stream.start_time or 0
        seeked = False
        # Seek only where timestamps count samples (mp4/m4a/mov, caf). Elsewhere they are coarse
        # (webm, asf: milliseconds) or skewed after a seek (MP3's encoder delay, Opus pre-skip
        # applied again), so decode from the top and count samples: slower, but exact.
        exact_clock = stream.time_base == Fraction(1, stream.codec_context.sample_rate)
        if offset > _SEEK_PREROLL_S and exact_clock:
            target = origin + int((offset - _SEEK_PREROLL_S) / stream.time_base)
            try:  # lands on a packet at or before the target; samples before `offset` are dropped below
                container.seek(target, stream=stream)
                seeked = True
            except av.FFmpegError:
                pass  # unseekable: decode from the top
        # Planar float puts channels in rows whatever the codec's sample format; mixing stays ours.
        to_float = av.AudioResampler(format="fltp")
        rate = first = have = 0
        want = -1
        # Index of the next decoded sample from the start of the stream: counted from 0, or after
        # a seek placed by the first frame's timestamp.
        pos: int | None = None if seeked else 0
        chunks: list[np.ndarray] = []
        for frame in container.decode(stream):
            if not rate:
                rate = frame.sample_rate
                first = round(offset * rate)
                want = -1 if duration is None else round(duration * rate)
            if pos is None:
                known = frame.pts is not None and frame.time_base is not None
                pos = round((frame.pts - origin) * frame.time_base * rate) if known else 0
            planes = [f.to_ndarray() for f in to_float.resample(frame)]
            if not planes:
                continue
            block = np.concatenate(planes, axis=1)
            drop = min(max(0, first - pos), block.shape[1])
            pos += block.shape[1]
            if drop < block.shape[1]:
                chunks.append(block[:, drop:])
                have += block.shape[1] - drop
            if 0 <= want <= have:
                break
        if not chunks:
            channels = stream.codec_context.channels or 1
            return np.zeros((0, channels), np.float32), rate or stream.codec_context.sample_rate
        data = np.concatenate(chunks, axis=1)
        if want >= 0:
            data = data[:, :want]
        return data.T, rate


def _probe_av(name: str) -> AudioInfo:
    import av

    with av.open(name, metadata_errors="ignore") as container:
        stream = _audio_stream(container, name)
        ctx = stream.codec_context
        rate = ctx.sample_rate
        frames: int | None = None
        if stream.duration is not None and stream.time_base:
            seconds = float(stream.duration * stream.time_base)
            if stream.time_base == Fraction(1, rate):  # the header counts samples (mp4, caf)
                frames = stream.duration
        elif container.duration is not None:
            seconds = container.duration / av.time_base
        else:
            seconds = _demuxed_seconds(container, stream)
        return AudioInfo(
            duration=seconds,
            sample_rate=rate,
            channels=ctx.channels,
            frames=frames,
            format=container.format.name,
        )


def _demuxed_seconds(container: Any, stream: Any) -> float:
    # Streamed webm (browser MediaRecorder) has no duration header; packet timestamps still
    # give it without decoding a sample.
    end = None
    for packet in container.demux(stream):
        if packet.pts is not None:
            stop = packet.pts + (packet.duration or 0)
            end = stop if end is None else max(end, stop)
    if end is None or not stream.time_base:
        return 0.0
    return max(0.0, float((end - (stream.start_time or 0)) * stream.time_base))


def _audio_stream(container: Any, name: str) -> Any:
    if not container.streams.audio:
        raise AudioError(f"{name}: no audio stream")
    stream = container.streams.audio[0]
    if stream.codec_context.sample_rate <= 0:  # FFmpeg "opens" some broken files by extension
        raise ValueError("audio stream without a sample rate")
    return stream


def _to_mono(data: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    # A model fed NaN or inf poisons a whole batch; silence in their place is harmless.
    data = np.nan_to_num(data, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if rate != sample_rate and mono.size:
        import soxr

        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)
