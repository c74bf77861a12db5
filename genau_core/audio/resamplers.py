"""Named resamplers: soxr (HQ / VHQ / MQ), scipy polyphase, and the reference tools' own.

torchaudio's windowed sinc as `functional.resample` (audioldm_eval) and as `transforms.Resample`
(msclap) compute it (`genau_core.audio.resample`, no torchaudio needed), and librosa.load's
default (soxr HQ, then `fix_length`). Every waveform that changes rate anywhere in genau-bench goes
through `resample` here.
"""

from __future__ import annotations

import numpy as np


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


def _torchaudio_sinc(kernel_dtype: str):
    """torchaudio's default Hann-windowed sinc (width 6, rolloff 0.99), its kernel built in float32
    (`functional.resample` on float32 audio) or in float64 (`transforms.Resample()`)."""

    def run(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
        import torch

        from genau_core.audio.resample import sinc_resample_numpy

        return sinc_resample_numpy(x, sr_in, sr_out, kernel_dtype=torch.float32 if kernel_dtype == "float32" else None)

    return run


def _librosa_soxr_hq(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """`librosa.resample(res_type="soxr_hq")`, as `librosa.load(sr=...)` calls it (librosa >= 0.10):
    soxr HQ, then `util.fix_length` to ceil(n * sr_out / sr_in), which zero-pads soxr's rounded
    length by one sample at the end for some lengths (44100 -> 48000 Hz, 88213 samples: 96014 -> 96015)."""
    import soxr

    y = soxr.resample(x, sr_in, sr_out, quality="HQ")
    n = int(np.ceil(x.shape[-1] * (float(sr_out) / sr_in)))
    return y[:n] if len(y) >= n else np.concatenate([y, np.zeros(n - len(y), dtype=y.dtype)])


RESAMPLERS = {
    "soxr-hq": _soxr("HQ"),
    "soxr-vhq": _soxr("VHQ"),
    "soxr-mq": _soxr("MQ"),
    "scipy-polyphase": _polyphase,
    "torchaudio-functional": _torchaudio_sinc("float32"),  # audioldm_eval WaveDataset.read_from_file
    "torchaudio-transforms": _torchaudio_sinc("float64"),  # msclap CLAPWrapper.read_audio
    "librosa-soxr-hq": _librosa_soxr_hq,  # laion_clap: librosa.load(path, sr=48000)
}


def resample(x: np.ndarray, sr_in: int, sr_out: int, resampler: str = "soxr-hq") -> np.ndarray:
    if sr_in == sr_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    try:
        fn = RESAMPLERS[resampler]
    except KeyError:
        hint = " ('reference' is resolved per backbone: InputPath.resampler_for)" if resampler == "reference" else ""
        raise ValueError(f"unknown resampler {resampler!r}{hint}; choose one of {sorted(RESAMPLERS)}") from None
    return np.ascontiguousarray(fn(np.asarray(x, dtype=np.float32), sr_in, sr_out), dtype=np.float32)
