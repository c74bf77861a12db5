"""Decoding, mono mixdown and resampling: the single place audio enters the metric suite.

Bad-input policy (documented in README, "Bad inputs"):
- unreadable / corrupt / zero-length file -> AudioError naming the file
- NaN or inf samples                      -> AudioError
- shorter than the protocol minimum (1 s) -> AudioError
- silent (all zeros)                      -> accepted as is (a valid, if poor, generation)
- stereo / multichannel                   -> averaged to mono
- any sample rate                         -> resampled with the named resampler
- longer than the protocol duration       -> the first `max_duration_s` seconds are kept
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


class AudioError(ValueError):
    """A file that cannot be scored; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _soxr(quality: str):
    def run(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
        import soxr

        return soxr.resample(x, sr_in, sr_out, quality=quality)

    return run


def _polyphase(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(sr_in, sr_out)
    return resample_poly(x, sr_out // g, sr_in // g).astype(np.float32)


RESAMPLERS = {
    "soxr-hq": _soxr("HQ"),
    "soxr-vhq": _soxr("VHQ"),
    "soxr-mq": _soxr("MQ"),
    "scipy-polyphase": _polyphase,
}


def resample(x: np.ndarray, sr_in: int, sr_out: int, resampler: str = "soxr-hq") -> np.ndarray:
    if sr_in == sr_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    try:
        fn = RESAMPLERS[resampler]
    except KeyError:
        raise ValueError(f"unknown resampler {resampler!r}; choose one of {sorted(RESAMPLERS)}") from None
    return np.ascontiguousarray(fn(np.asarray(x, dtype=np.float32), sr_in, sr_out), dtype=np.float32)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a file to mono float32 at its native rate, enforcing the bad-input policy."""
    path = Path(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types for corrupt/unknown files
        raise AudioError(path, f"cannot decode audio ({type(e).__name__}: {e})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "file holds no samples")
    if not np.isfinite(data).all():
        raise AudioError(path, "audio contains NaN or inf samples")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(mono, dtype=np.float32), int(sr)


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
    """Mono 32-bit float WAV with no timestamped chunk (libsndfile adds a PEAK chunk with the
    time of writing), so the same samples always give the same bytes and the same content hash."""
    import struct

    data = np.ascontiguousarray(np.asarray(audio, dtype="<f4").reshape(-1)).tobytes()
    n = len(data) // 4
    fmt = struct.pack("<HHIIHH", 3, 1, sample_rate, sample_rate * 4, 4, 32)
    fact = struct.pack("<I", n)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<I", 4) + fact
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write a float waveform atomically (temp file + rename): a killed run leaves no partial clip."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(wav_bytes(audio, sample_rate))
    os.replace(tmp, path)


def list_audio_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith("."))
