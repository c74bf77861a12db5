"""Log-mel front end of GenAu (and of its HiFi-GAN vocoder): 16 kHz, 64 bins, hop 160.

Matches the official preprocessing (GenAU `videoaudio_dataset.mel_spectrogram_train`):
reflect-pad (n_fft - hop) / 2 on both sides, |STFT| with a periodic Hann window and
`center=False`, Slaney-normalised mel filters from librosa, natural log of the magnitude
mel clamped at 1e-5. 10.24 s at 16 kHz gives exactly 1024 frames.

Waveforms are prepared like the official loader: resample, remove the mean, peak-normalise
to 0.5, then zero-pad / cut to the clip duration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 16_000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 160
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float = 8000.0
    clip_value: float = 1e-5
    duration_s: float = 10.24

    @property
    def target_frames(self) -> int:
        return int(round(self.duration_s * self.sample_rate / self.hop_length))

    @property
    def clip_samples(self) -> int:
        return int(round(self.duration_s * self.sample_rate))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MelConfig":
        return cls(**d)


def mel_filterbank(cfg: MelConfig) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) Slaney mel filters (librosa's defaults, as the official code)."""
    import librosa

    return librosa.filters.mel(
        sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
    ).astype(np.float32)


class MelSpectrogram(nn.Module):
    """waveform (B, N) or (N,) in [-1, 1] -> log-mel (B, n_mels, frames)."""

    def __init__(self, cfg: MelConfig = MelConfig()):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mel_basis", torch.from_numpy(mel_filterbank(cfg)), persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.win_length), persistent=False)

    def magnitude(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() == 1:
            wav = wav[None]
        pad = (self.cfg.n_fft - self.cfg.hop_length) // 2
        wav = torch.nn.functional.pad(wav[:, None], (pad, pad), mode="reflect")[:, 0]
        spec = torch.stft(
            wav,
            self.cfg.n_fft,
            hop_length=self.cfg.hop_length,
            win_length=self.cfg.win_length,
            window=self.window.to(wav.dtype),
            center=False,
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        return spec.abs()

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        mel = torch.matmul(self.mel_basis.to(wav.dtype), self.magnitude(wav))
        return torch.log(torch.clamp(mel, min=self.cfg.clip_value))


def fit_frames(mel: torch.Tensor, frames: int) -> torch.Tensor:
    """Zero-pad or cut the time axis (last) of a (B, n_mels, T) log-mel to `frames`."""
    t = mel.shape[-1]
    if t < frames:
        return torch.nn.functional.pad(mel, (0, frames - t))
    return mel[..., :frames]


def prepare_waveform(
    wav: np.ndarray, sample_rate: int, cfg: MelConfig = MelConfig(), *, peak: float = 0.5
) -> np.ndarray:
    """Mono float32 clip at `cfg.sample_rate`, mean removed, peak-normalised, padded/cut to the clip length."""
    x = np.asarray(wav, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1) if x.shape[1] < x.shape[0] else x.mean(axis=0)
    if sample_rate != cfg.sample_rate:
        import soxr

        x = soxr.resample(x, sample_rate, cfg.sample_rate, quality="HQ").astype(np.float32)
    x = x - x.mean()
    x = x / (np.abs(x).max() + 1e-8) * peak
    n = cfg.clip_samples
    if len(x) >= n:
        return np.ascontiguousarray(x[:n])
    return np.concatenate([x, np.zeros(n - len(x), np.float32)])
