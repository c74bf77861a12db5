"""Griffin-Lim inversion of GenAu's log-mel: a vocoder with no weights.

Used by the shipped `genau-tiny` weights, whose budget (a few CPU minutes of training) does
not buy a neural vocoder that sounds like anything: a random or barely trained HiFi-GAN
turns any mel into broadband buzz, while Griffin-Lim keeps the spectral envelope of the mel
(a 440 Hz line stays a narrow band at 440 Hz; noise stays noise). The official models keep
their HiFi-GAN.

Steps, on the front end's exact analysis (n_fft 1024, hop 160, periodic Hann window,
magnitude mel with Slaney filters, natural log):
1. magnitude mel = exp(log-mel);
2. linear magnitude S >= 0 with mel_basis @ S ~= mel, by multiplicative non-negative least
   squares updates (Lee & Seung) started from mel_basis^T @ mel;
3. `n_iter` iterations of the fast Griffin-Lim algorithm (Perraudin et al. 2013; momentum as
   `librosa.griffinlim`, 0.99) from a fixed-seed random phase, then one inverse STFT.
Frames are centred (`torch.stft(center=True)`); the official front end pads (n_fft - hop) / 2
instead of n_fft / 2, so the waveform is shifted by hop / 2 = 5 ms, which nothing measures.
Every clip starts from the same phase (seeded by `seed`), so outputs do not depend on the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genau_core.audio.mel import MelConfig, mel_filterbank


@dataclass(frozen=True)
class GriffinLimConfig:
    n_iter: int = 32
    momentum: float = 0.99
    nnls_iters: int = 60
    seed: int = 0

    def __post_init__(self):
        if self.n_iter < 0 or self.nnls_iters < 0:
            raise ValueError("n_iter and nnls_iters must be >= 0")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError("momentum must be in [0, 1)")


class GriffinLimVocoder(nn.Module):
    """log-mel (B, n_mels, T) -> waveform (B, 1, T * hop), like `HiFiGANGenerator`."""

    def __init__(self, mel: MelConfig = MelConfig(), cfg: GriffinLimConfig = GriffinLimConfig()):
        super().__init__()
        self.mel_cfg = mel
        self.cfg = cfg
        self.register_buffer("mel_basis", torch.from_numpy(mel_filterbank(mel)), persistent=False)
        self.register_buffer("window", torch.hann_window(mel.win_length), persistent=False)

    def _stft(self, wav: torch.Tensor, frames: int) -> torch.Tensor:
        m = self.mel_cfg
        spec = torch.stft(
            wav,
            m.n_fft,
            hop_length=m.hop_length,
            win_length=m.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        return spec[..., :frames]

    def _istft(self, spec: torch.Tensor, frames: int) -> torch.Tensor:
        m = self.mel_cfg
        return torch.istft(
            spec,
            m.n_fft,
            hop_length=m.hop_length,
            win_length=m.win_length,
            window=self.window,
            center=True,
            length=frames * m.hop_length,
        )

    def linear_magnitude(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Non-negative least-squares magnitude spectrogram (B, n_fft // 2 + 1, T) of a log-mel."""
        target = torch.exp(log_mel.float())
        basis = self.mel_basis
        num = torch.einsum("mf,bmt->bft", basis, target)
        s = num.clone()
        for _ in range(self.cfg.nnls_iters):
            den = torch.einsum("mf,bmt->bft", basis, torch.einsum("mf,bft->bmt", basis, s))
            s = s * num / den.clamp_min(1e-12)
        return s

    @torch.no_grad()
    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        b, _, frames = log_mel.shape
        mag = self.linear_magnitude(log_mel)
        gen = torch.Generator().manual_seed(self.cfg.seed)
        phase = torch.rand(mag.shape[1:], generator=gen, dtype=torch.float32) * (2 * torch.pi)
        angles = torch.polar(torch.ones_like(phase), phase).to(mag.device).expand(b, -1, -1)
        alpha = self.cfg.momentum / (1.0 + self.cfg.momentum)
        rebuilt = torch.zeros_like(angles)
        for _ in range(self.cfg.n_iter):
            previous = rebuilt
            rebuilt = self._stft(self._istft(mag * angles, frames), frames)
            angles = rebuilt - alpha * previous
            angles = angles / (angles.abs() + 1e-16)
        wav = self._istft(mag * angles, frames)
        return wav.clamp(-1.0, 1.0)[:, None]
