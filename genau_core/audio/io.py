"""Decoding and writing audio files, with the bad-input policy applied once per file.

- unreadable / corrupt / zero-length file -> AudioError naming the file
- NaN or inf samples                      -> AudioError
- shorter than the minimum (1 s)          -> AudioError (`load_audio`)
- stereo / multichannel                   -> averaged to mono (`read_audio`; `read_audio_channels` keeps them)
- longer than `max_duration_s`            -> the first `max_duration_s` seconds are kept (`load_audio`)

Writes are atomic and byte-deterministic (`wav_bytes`: no timestamped chunk).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from genau_core.audio.resamplers import resample
from genau_core.errors import GenauBenchError
from genau_core.files import atomic_write_bytes

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


class AudioError(GenauBenchError, ValueError):
    """A file that cannot be scored; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def read_audio_channels(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a file to float32 (samples, channels) at its native rate, enforcing the bad-input policy."""
    path = Path(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001 - soundfile raises several types for corrupt/unknown files
        raise AudioError(path, f"cannot decode audio ({type(e).__name__}: {e})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "file holds no samples")
    if not np.isfinite(data).all():
        raise AudioError(path, "audio contains NaN or inf samples")
    return data, int(sr)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a file to mono float32 at its native rate, enforcing the bad-input policy."""
    data, sr = read_audio_channels(path)
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(mono, dtype=np.float32), sr


def load_audio(
    path: str | Path,
    sample_rate: int,
    *,
    resampler: str = "soxr-hq",
    min_duration_s: float = 1.0,
    max_duration_s: float | None = 10.0,
) -> np.ndarray:
    x, sr = read_audio(path)
    duration = len(x) / sr
    if duration < min_duration_s:
        raise AudioError(path, f"too short: {duration:.3f} s < minimum {min_duration_s} s")
    if max_duration_s is not None and duration > max_duration_s:
        x = x[: int(round(max_duration_s * sr))]
    return resample(x, sr, sample_rate, resampler)


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """32-bit float WAV with no timestamped chunk (libsndfile adds a PEAK chunk with the time of
    writing), so the same samples always give the same bytes and the same content hash. `audio` is
    (samples,) mono or (channels, samples), written interleaved (mono bytes are as before)."""
    import struct

    x = np.asarray(audio, dtype="<f4")
    if x.ndim > 2:
        raise ValueError(f"audio must be (samples,) or (channels, samples), got shape {x.shape}")
    channels = 1 if x.ndim == 1 else int(x.shape[0])
    data = np.ascontiguousarray(x.reshape(-1) if x.ndim == 1 else x.T.reshape(-1)).tobytes()
    frames = len(data) // (4 * channels)
    fmt = struct.pack("<HHIIHH", 3, channels, sample_rate, sample_rate * 4 * channels, 4 * channels, 32)
    fact = struct.pack("<I", frames)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<I", 4) + fact
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write a float waveform atomically (temp file + rename): a killed run leaves no partial clip."""
    atomic_write_bytes(path, wav_bytes(audio, sample_rate), clean=False)


class DuplicateClipError(GenauBenchError, ValueError):
    """Two files in one folder give the same clip id (e.g. `a.wav` and `a.flac`)."""


def list_audio_files(folder: str | Path) -> list[Path]:
    """The audio files of `folder` (sorted), one per clip id (the file stem). Two files with one stem
    (`a.wav` and `a.flac`) are an error naming both: keeping either one silently changes the score."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith("."))
    by_stem: dict[str, list[Path]] = {}
    for p in files:
        by_stem.setdefault(p.stem, []).append(p)
    dups = {stem: ps for stem, ps in by_stem.items() if len(ps) > 1}
    if dups:
        first = next(iter(dups.values()))
        more = f" ({len(dups) - 1} more clip ids have several files)" if len(dups) > 1 else ""
        raise DuplicateClipError(
            f"{first[0].parent}: {' and '.join(p.name for p in first)} both give clip id {first[0].stem!r}{more}; "
            "keep one file per clip id (move or rename the others)"
        )
    return files
