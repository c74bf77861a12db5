"""Audio from local media: probe the duration, decode intervals, mono float32 at the native rate.

Audio files that libsndfile reads (WAV, FLAC, OGG, AIFF, MP3, ...) go through soundfile with
exact sample seeking. Everything else (video containers: mp4, mkv, webm, ...) goes through
PyAV, whose wheel ships the FFmpeg libraries. Samples are placed on the media timeline by the
first decoded frame's timestamp (so AAC priming samples with negative time are dropped);
interval [s, e) in ms covers samples round(s * sr / 1000) .. round(e * sr / 1000) - 1.

Long gaps between wanted intervals are skipped by seeking (a keyframe at least `preroll_s`
before the next interval); the same intervals always decode to the same samples.
Channels are averaged (the same mixdown as `bench.audio.read_audio`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from bench.audio import AudioError

_SF_FORMATS = {k.lower() for k in sf.available_formats()} | {"aif", "oga", "wave"}


def ms_to_index(ms: int, sr: int) -> int:
    return (int(ms) * int(sr) + 500) // 1000


def _use_soundfile(path: Path) -> bool:
    return path.suffix.lower().lstrip(".") in _SF_FORMATS


def _av():
    try:
        import av
    except ImportError:  # pragma: no cover - depends on the install
        raise ImportError("decoding video containers needs PyAV: pip install 'genau-bench[recap]' (or pip install av)") from None
    return av


def probe_duration_ms(path: str | Path) -> int:
    """The audio duration in whole milliseconds (metadata; decoding later may find it shorter)."""
    path = Path(path)
    if _use_soundfile(path):
        try:
            info = sf.info(str(path))
            return int(info.frames) * 1000 // int(info.samplerate)
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


def _decode_soundfile(path: Path, spans: list[tuple[int, int]]) -> tuple[list[np.ndarray], int]:
    out = []
    with sf.SoundFile(str(path)) as f:
        sr = int(f.samplerate)
        for s_ms, e_ms in spans:
            i0, i1 = min(ms_to_index(s_ms, sr), f.frames), min(ms_to_index(e_ms, sr), f.frames)
            f.seek(i0)
            data = f.read(i1 - i0, dtype="float32", always_2d=True)
            out.append(np.ascontiguousarray(data.mean(axis=1) if data.shape[1] > 1 else data[:, 0], dtype=np.float32))
    return out, sr


def _decode_av(path: Path, spans: list[tuple[int, int]], seek_threshold_s: float, preroll_s: float) -> tuple[list[np.ndarray], int]:
    av = _av()
    parts: list[list[np.ndarray]] = [[] for _ in spans]
    with av.open(str(path)) as c:
        if not c.streams.audio:
            raise AudioError(path, "no audio stream")
        a = c.streams.audio[0]
        sr = int(a.codec_context.sample_rate or a.rate)
        tb = a.time_base
        lo = [ms_to_index(s, sr) for s, _ in spans]
        hi = [ms_to_index(e, sr) for _, e in spans]
        may_seek = seek_threshold_s < float("inf")
        i, pos, sought, seek_from = 0, None, False, 0

        def frames():
            for packet in c.demux(a):
                yield from packet.decode()

        it = frames()
        while i < len(spans):
            frame = next(it, None)
            if frame is None:
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
    return [np.concatenate(p).astype(np.float32, copy=False) if p else np.zeros(0, np.float32) for p in parts], sr


def decode_spans(
    path: str | Path, spans_ms: Sequence[tuple[int, int]], *, seek_threshold_s: float = 30.0, preroll_s: float = 2.0
) -> tuple[list[np.ndarray], int]:
    """Decode sorted, non-overlapping [start_ms, end_ms) spans -> (mono float32 arrays at the native rate, rate).

    A span past the end of the audio comes back shorter (possibly empty); the caller decides.
    """
    path = Path(path)
    spans = [(int(s), int(e)) for s, e in spans_ms]
    if any(e < s for s, e in spans) or any(b[0] < a[1] for a, b in zip(spans, spans[1:])):
        raise ValueError(f"{path}: spans must be sorted and non-overlapping: {spans[:5]}...")
    if not path.is_file():
        raise AudioError(path, "media file not found")
    try:
        if _use_soundfile(path):
            try:
                waves, sr = _decode_soundfile(path, spans)
            except sf.LibsndfileError:
                waves, sr = _decode_av(path, spans, seek_threshold_s, preroll_s)
        else:
            waves, sr = _decode_av(path, spans, seek_threshold_s, preroll_s)
    except (AudioError, ImportError):
        raise
    except Exception as e:
        raise AudioError(path, f"cannot decode audio ({type(e).__name__}: {e})") from None
    for w in waves:
        if not np.isfinite(w).all():
            raise AudioError(path, "audio contains NaN or inf samples")
    return waves, sr
