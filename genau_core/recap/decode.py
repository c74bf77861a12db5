"""Audio from local media: probe the duration, decode intervals, mono float32 at the native rate.

Audio files that libsndfile reads (WAV, FLAC, OGG, AIFF, MP3, ...) go through soundfile with
exact sample seeking. Everything else (video containers: mp4, mkv, webm, ...) goes through
PyAV, whose wheel ships the FFmpeg libraries. Samples are placed on the media timeline by the
first decoded frame's timestamp (so AAC priming samples with negative time are dropped);
interval [s, e) in ms covers samples round(s * sr / 1000) .. round(e * sr / 1000) - 1.

Long gaps between wanted intervals are skipped by seeking (a keyframe at least `preroll_s`
before the next interval); the same intervals always decode to the same samples.
Channels are averaged (the same mixdown as `bench.audio.read_audio`).

Declared and decoded length (`decode_media`): a file says how long it is (a WAV header's data
size, FLAC's sample count, the container's or the stream's duration) and may decode shorter
(a truncated download) or longer (AAC encoders pad the last frame: a 20.0 s mp4 decodes to
20.032 s, measured with PyAV 18's AAC encoder at 16 kHz). The usable audio ends at the smaller
of the two, and no returned span passes that end. `decode_media(check_end=True)` decodes on
to the end of the track (seeking near the declared end when it is far) to find where the audio
really ends; a decoding error after some audio has decoded ends the audio there (recorded in
`MediaAudio.stop_reason`) instead of failing the whole file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from genau_core.audio.io import AudioError

_SF_FORMATS = {k.lower() for k in sf.available_formats()} | {"aif", "oga", "wave"}


def ms_to_index(ms: int, sr: int) -> int:
    return (int(ms) * int(sr) + 500) // 1000


def _use_soundfile(path: Path) -> bool:
    return path.suffix.lower().lstrip(".") in _SF_FORMATS


def _av():
    try:
        import av
    except ImportError:  # pragma: no cover - depends on the install
        raise ImportError(
            "decoding video containers needs PyAV: pip install 'genau-bench[recap]' (or pip install av)"
        ) from None
    return av


@dataclass
class MediaAudio:
    """Decoded spans, and what the file declares about its length against what decodes."""

    waves: list[np.ndarray]  # mono float32 per span, never past `end_index`
    sample_rate: int
    declared: int | None  # samples the header / container declares (None: it declares nothing)
    decoded: int | None  # where the decoded audio track ends, in samples (None: not checked)
    frame_size: int = 0  # the codec's samples per frame (0: not frame based, e.g. PCM)
    stop_reason: str = ""  # a decoding error that ended the audio early

    @property
    def end_index(self) -> int | None:
        known = [n for n in (self.declared, self.decoded) if n is not None]
        return min(known) if known else None

    def ms(self, n: int | None) -> int | None:
        return None if n is None else int(n) * 1000 // self.sample_rate


def wav_declared_frames(path: str | Path) -> int | None:
    """Frames a RIFF/WAVE header declares (data size / block align); None when the file is no
    plain RIFF WAV or declares no size (streamed WAVs write 0 or 0xFFFFFFFF)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            align = 0
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    body = fh.read(size)
                    if len(body) < 14:
                        return None
                    align = struct.unpack("<H", body[12:14])[0]
                    fh.seek(size % 2, 1)
                elif cid == b"data":
                    return size // align if align and size not in (0, 0xFFFFFFFF) else None
                else:
                    fh.seek(size + size % 2, 1)
    except OSError:
        return None


def _sf_declared(path: Path, info_frames: int) -> int:
    declared = wav_declared_frames(path) if path.suffix.lower() in (".wav", ".wave") else None
    return info_frames if declared is None else declared


def probe_duration_ms(path: str | Path) -> int:
    """The declared audio duration in whole milliseconds (metadata: for a WAV its header's data
    size, so a truncated file is planned at its declared length and reported when it decodes short)."""
    path = Path(path)
    if _use_soundfile(path):
        try:
            info = sf.info(str(path))
            return _sf_declared(path, int(info.frames)) * 1000 // int(info.samplerate)
        except Exception:
            pass  # not readable by libsndfile after all: try FFmpeg
    av = _av()
    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                raise AudioError(path, "no audio stream")
            a = c.streams.audio[0]
            if a.duration is not None and a.time_base is not None:
                return int(a.duration * a.time_base * 1000)
            if c.duration is not None:
                return int(c.duration * 1000 // av.time_base)
            n, sr = 0, None
            for frame in c.decode(a):
                n += frame.samples
                sr = frame.sample_rate
            return n * 1000 // sr if sr else 0
    except AudioError:
        raise
    except Exception as e:
        raise AudioError(path, f"cannot open media ({type(e).__name__}: {e})") from None


def _frame_to_mono(frame) -> np.ndarray:
    x = frame.to_ndarray()
    fmt = frame.format
    ch = len(frame.layout.channels) or 1
    if not fmt.is_planar:
        x = x.reshape(-1, ch).T  # packed: (1, n * ch) interleaved
    kind = fmt.name.rstrip("p")
    if kind == "s16":
        x = x.astype(np.float32) / 32768.0
    elif kind == "s32":
        x = x.astype(np.float32) / 2147483648.0
    elif kind == "u8":
        x = (x.astype(np.float32) - 128.0) / 128.0
    elif kind == "s64":
        x = x.astype(np.float64) / 9223372036854775808.0
    x = np.asarray(x, dtype=np.float32)
    return x.mean(axis=0) if x.shape[0] > 1 else x[0]


def _decode_soundfile(path: Path, spans: list[tuple[int, int]], check_end: bool) -> MediaAudio:
    out = []
    with sf.SoundFile(str(path)) as f:
        sr, frames = int(f.samplerate), int(f.frames)  # libsndfile clamps a truncated WAV's frames
        declared = _sf_declared(path, frames)
        for s_ms, e_ms in spans:
            i0, i1 = min(ms_to_index(s_ms, sr), frames), min(ms_to_index(e_ms, sr), frames)
            f.seek(i0)
            data = f.read(i1 - i0, dtype="float32", always_2d=True)
            out.append(np.ascontiguousarray(data.mean(axis=1) if data.shape[1] > 1 else data[:, 0], dtype=np.float32))
        decoded = None
        if check_end:  # read the last second: a compressed file (FLAC, OGG) may end before its header says
            start = max(0, frames - sr)
            f.seek(start)
            decoded = start + len(f.read(frames - start, dtype="float32", always_2d=True))
        elif frames < declared:
            decoded = frames
    return MediaAudio(out, sr, declared, decoded)


def _av_declared(c, a, sr: int, av) -> int | None:
    if a.duration is not None and a.time_base is not None:
        return int(round(float(a.duration * a.time_base) * sr))
    if c.duration is not None:
        return int(round(c.duration * sr / av.time_base))
    return None


def _decode_av(
    path: Path, spans: list[tuple[int, int]], seek_threshold_s: float, preroll_s: float, check_end: bool
) -> MediaAudio:
    av = _av()
    parts: list[list[np.ndarray]] = [[] for _ in spans]
    stop_reason = ""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            raise AudioError(path, "no audio stream")
        a = c.streams.audio[0]
        sr = int(a.codec_context.sample_rate or a.rate)
        tb = a.time_base
        declared = _av_declared(c, a, sr, av)
        frame_size = int(a.codec_context.frame_size or 0)
        lo = [ms_to_index(s, sr) for s, _ in spans]
        hi = [ms_to_index(e, sr) for _, e in spans]
        may_seek = seek_threshold_s < float("inf")
        i, pos, sought, seek_from, eof = 0, None, False, 0, False

        def frames():
            for packet in c.demux(a):
                yield from packet.decode()

        def next_frame(it):
            """The next frame; None at the end, or at a decoding error once some audio has decoded."""
            nonlocal stop_reason
            try:
                return next(it, None)
            except av.FFmpegError as e:
                if pos is None:
                    raise
                stop_reason = f"decoding stopped early ({type(e).__name__}: {e})"
                return None

        it = frames()
        while i < len(spans):
            frame = next_frame(it)
            if frame is None:
                eof = True
                break
            x = _frame_to_mono(frame)
            if pos is None:
                pos = round(float(frame.pts * tb) * sr) if frame.pts is not None and tb is not None else 0
                if frame.pts is None:
                    may_seek = False  # no timestamps: only a linear decode can place samples
                if sought and pos > lo[i]:  # the seek overshot: start over without seeking
                    c.seek(0, stream=a)
                    a.codec_context.flush_buffers()
                    parts = [[] for _ in spans]
                    i, pos, sought, may_seek = 0, None, False, False
                    it = frames()
                    continue
                if sought and pos <= seek_from:  # the seek went nowhere useful: decode on linearly
                    may_seek = False
                sought = False
            start, pos = pos, pos + len(x)
            j = i
            while j < len(spans) and lo[j] < pos:
                a0, a1 = max(lo[j], start), min(hi[j], pos)
                if a1 > a0:
                    parts[j].append(x[a0 - start : a1 - start])
                j += 1
            while i < len(spans) and hi[i] <= pos:
                i += 1
            if may_seek and i < len(spans) and (lo[i] - pos) > seek_threshold_s * sr:
                target = max(0.0, lo[i] / sr - preroll_s)
                c.seek(int(target / float(tb)), stream=a, backward=True)
                a.codec_context.flush_buffers()
                it, seek_from, pos, sought = frames(), pos, None, True
        decoded = None
        if eof:
            decoded = pos or 0
        elif check_end and not stop_reason:
            decoded = _av_track_end(
                c, a, it, frames, next_frame, pos, sr, declared, may_seek, seek_threshold_s, preroll_s
            )
    waves = [np.concatenate(p).astype(np.float32, copy=False) if p else np.zeros(0, np.float32) for p in parts]
    return MediaAudio(waves, sr, declared, decoded, frame_size, stop_reason)


def _av_track_end(c, a, it, frames, next_frame, pos, sr, declared, may_seek, seek_threshold_s, preroll_s) -> int:
    """Decode on from `pos` to the end of the audio track and return the index after its last
    sample; far from the declared end, seek close to it first. A seek that finds nothing at or
    past `pos` (a truncated file whose index points past its end) falls back to decoding on
    linearly from the start."""
    tb = a.time_base

    def run(it, start):
        end = start
        while (frame := next_frame(it)) is not None:
            if end is None:
                if frame.pts is None:
                    return None
                end = round(float(frame.pts * tb) * sr)
            end += frame.samples
        return end

    if may_seek and declared is not None and pos is not None and declared - pos > seek_threshold_s * sr:
        target = max(0.0, declared / sr - preroll_s)
        c.seek(int(target / float(tb)), stream=a, backward=True)
        a.codec_context.flush_buffers()
        end = run(frames(), None)
        if end is not None and end >= pos:
            return end
        c.seek(0, stream=a)
        a.codec_context.flush_buffers()
        end = run(frames(), None)
        return max(end or 0, pos)
    end = run(it, pos)
    return pos or 0 if end is None else end


def decode_spans(
    path: str | Path, spans_ms: Sequence[tuple[int, int]], *, seek_threshold_s: float = 30.0, preroll_s: float = 2.0
) -> tuple[list[np.ndarray], int]:
    """Decode sorted, non-overlapping [start_ms, end_ms) spans -> (mono float32 arrays at the native rate, rate).

    A span past the end of the audio (the declared or the decoded end, whichever comes first)
    comes back shorter (possibly empty); the caller decides.
    """
    m = decode_media(path, spans_ms, check_end=False, seek_threshold_s=seek_threshold_s, preroll_s=preroll_s)
    return m.waves, m.sample_rate


def decode_media(
    path: str | Path,
    spans_ms: Sequence[tuple[int, int]],
    *,
    check_end: bool = True,
    seek_threshold_s: float = 30.0,
    preroll_s: float = 2.0,
) -> MediaAudio:
    """`decode_spans`, plus the declared length and (with `check_end`) where the audio really ends."""
    path = Path(path)
    spans = [(int(s), int(e)) for s, e in spans_ms]
    if any(e < s for s, e in spans) or any(b[0] < a[1] for a, b in zip(spans, spans[1:])):
        raise ValueError(f"{path}: spans must be sorted and non-overlapping: {spans[:5]}...")
    if not path.is_file():
        raise AudioError(path, "media file not found")
    try:
        if _use_soundfile(path):
            try:
                media = _decode_soundfile(path, spans, check_end)
            except sf.LibsndfileError:
                media = _decode_av(path, spans, seek_threshold_s, preroll_s, check_end)
        else:
            media = _decode_av(path, spans, seek_threshold_s, preroll_s, check_end)
    except (AudioError, ImportError):
        raise
    except Exception as e:
        raise AudioError(path, f"cannot decode audio ({type(e).__name__}: {e})") from None
    end = media.end_index
    if end is not None:  # AAC end padding (decoded > declared) or truncation: nothing past the real end
        starts = [ms_to_index(s, media.sample_rate) for s, _ in spans]
        media.waves = [w[: max(0, end - lo)] for w, lo in zip(media.waves, starts)]
    for w in media.waves:
        if not np.isfinite(w).all():
            raise AudioError(path, "audio contains NaN or inf samples")
    return media
