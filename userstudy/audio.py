"""Preparing clips for playback: decode, loudness-normalise, low-pass anchors, write WAV.

Loudness: integrated loudness (ITU-R BS.1770-4, K-weighted and gated) measured with
pyloudnorm and matched to the target (-23 LUFS by default). Without pyloudnorm, or for clips
shorter than one 400 ms gating block, the RMS level in dBFS is matched to the same target
instead (no K-weighting or gating); the method used is recorded per clip. When the gain
would push the peak above the ceiling, the gain is lowered so the peak sits at the ceiling
(recorded as ``peak_limited``). Silent clips are copied unchanged.

One format per study (protocol gb-2): every clip is resampled to the study's rate (the highest
source rate; ``scipy.signal.resample_poly``, which adds nothing above a clip's own Nyquist
frequency) before loudness normalisation, and the clips of one prompt are padded with trailing
digital silence to the longest of them, so neither the WAV header nor the byte length of a
served clip tells which system made it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from genau_core.files import file_sha256  # noqa: F401 (userstudy callers import it from here)

from .protocol import LoudnessRule

ANCHOR_CUTOFF_HZ = 3500.0


class ClipError(ValueError):
    """A clip that cannot be used in a study; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        super().__init__(f"{path}: {reason}")


def pyloudnorm_available() -> bool:
    try:
        import pyloudnorm  # noqa: F401
    except ImportError:
        return False
    return True


def read_clip(path: Path) -> tuple[np.ndarray, int]:
    """Mono float64 samples and rate; a ClipError names the file for anything unusable."""
    try:
        data, sr = sf.read(str(path), dtype="float64", always_2d=True)
    except Exception as e:  # soundfile raises several types for corrupt files
        raise ClipError(path, f"cannot decode audio ({type(e).__name__}: {e})") from None
    if data.shape[0] == 0:
        raise ClipError(path, "file holds no samples")
    if not np.isfinite(data).all():
        raise ClipError(path, "audio contains NaN or inf samples")
    return data.mean(axis=1), int(sr)


def clip_info(path: Path) -> tuple[int, int]:
    """(frames, sample rate) from the file header; a ClipError names the file when unreadable."""
    try:
        info = sf.info(str(path))
    except Exception as e:  # noqa: BLE001 - soundfile raises several types for corrupt files
        raise ClipError(path, f"cannot decode audio ({type(e).__name__}: {e})") from None
    if info.frames <= 0:
        raise ClipError(path, "file holds no samples")
    return int(info.frames), int(info.samplerate)


def resampled_length(n: int, sr: int, target_sr: int) -> int:
    """Samples after ``resample_to`` (resample_poly's documented ceil(n * up / down))."""
    if sr == target_sr:
        return n
    g = math.gcd(sr, target_sr)
    up, down = target_sr // g, sr // g
    return -(-n * up // down)


def resample_to(x: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling (Kaiser window, scipy's default) to `target_sr`; a no-op at the same rate."""
    if sr == target_sr:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(sr, target_sr)
    return resample_poly(x, target_sr // g, sr // g)


def pad_to(x: np.ndarray, n: int) -> np.ndarray:
    """`x` followed by digital silence up to `n` samples (never truncates)."""
    if len(x) > n:
        raise ValueError(f"cannot pad {len(x)} samples to {n}")
    return np.concatenate([x, np.zeros(n - len(x), dtype=x.dtype)]) if len(x) < n else x


@dataclass(frozen=True)
class Normalised:
    samples: np.ndarray
    loudness_in: float | None  # None for a silent clip
    gain_db: float
    method: str
    peak_limited: bool


def measure_loudness(x: np.ndarray, sr: int, method: str) -> tuple[float, str]:
    """(level, method actually used); -inf for silence."""
    if method == "pyloudnorm-bs1770" and len(x) >= int(0.4 * sr) and pyloudnorm_available():
        import pyloudnorm

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyloudnorm warns on silence / clipping
            return float(pyloudnorm.Meter(sr).integrated_loudness(x)), "pyloudnorm-bs1770"
    rms = float(np.sqrt(np.mean(np.square(x))))
    return (20.0 * np.log10(rms) if rms > 0 else float("-inf")), "rms"


def normalise_loudness(x: np.ndarray, sr: int, rule: LoudnessRule) -> Normalised:
    level, method = measure_loudness(x, sr, rule.method)
    if not np.isfinite(level):
        return Normalised(x.copy(), None, 0.0, method, False)
    gain_db = rule.target_lufs - level
    peak = float(np.max(np.abs(x)))
    limited = False
    if peak * 10 ** (gain_db / 20) > rule.peak_ceiling:
        gain_db = 20 * np.log10(rule.peak_ceiling / peak)
        limited = True
    return Normalised(x * 10 ** (gain_db / 20), level, float(gain_db), method, limited)


def lowpass(x: np.ndarray, sr: int, cutoff_hz: float = ANCHOR_CUTOFF_HZ) -> np.ndarray:
    """Zero-phase 8th-order Butterworth low-pass (the MUSHRA-style 3.5 kHz anchor)."""
    from scipy.signal import butter, sosfiltfilt

    if cutoff_hz >= sr / 2:
        raise ValueError(f"cannot low-pass at {cutoff_hz} Hz a clip sampled at {sr} Hz")
    sos = butter(8, cutoff_hz, btype="low", fs=sr, output="sos")
    return sosfiltfilt(sos, x)


def write_wav(path: Path, x: np.ndarray, sr: int) -> None:
    sf.write(str(path), np.clip(x, -1.0, 1.0).astype(np.float32), sr, subtype="PCM_16", format="WAV")


def duration_s(path: Path) -> float:
    info = sf.info(str(path))
    return info.frames / float(info.samplerate)
