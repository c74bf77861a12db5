"""The two frozen audio encoders of AutoCap.

- `HTSATEncoder`: 32 kHz log-mel front end (torchlibrosa numerics from
  `genau_core.networks.stft`) + HTS-AT (transformers `ClapAudioModel`, the same network
  and state-dict translation the metric suite's LAION-CLAP backbone uses, `_htsat.py`).
  Its output is the official "fine_grained_embedding": the last Swin stage, regrouped into
  (channels, frequency bins, time steps), averaged over frequency, each time step repeated so
  there is one token per input frame of the HTSAT (1024 for the official geometry: 32 steps x 32).
- CLAP: `genau_core.networks.laion_clap.LaionClapNet` itself (front end at 48 kHz, HTSAT,
  projection, L2 norm); AutoCap only calls its `embed_audio`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from genau_core.audio.resamplers import resample
from genau_core.networks.htsat import HTSATConfig, HTSATHead, hf_audio_config_kwargs
from genau_core.networks.stft import LogMelFilterBank, PowerSpectrogram
from genau_core.networks.laion_clap import LaionClapConfig, prepare_audio
from genau_core.autocap.configs import FrontEndConfig


class HTSATEncoder(nn.Module):
    """(B, clip_samples) waveforms at the front-end rate -> (B, max_frames, num_features) tokens."""

    def __init__(self, frontend: FrontEndConfig, cfg: HTSATConfig):
        super().__init__()
        from transformers import ClapAudioConfig, ClapAudioModel

        self.frontend = frontend
        self.cfg = cfg
        self.spectrogram_extractor = PowerSpectrogram(frontend.n_fft, frontend.hop_length)
        self.logmel_extractor = LogMelFilterBank(
            frontend.sample_rate, frontend.n_fft, frontend.n_mels, frontend.fmin, frontend.fmax
        )
        self.model = ClapAudioModel(ClapAudioConfig(**hf_audio_config_kwargs(cfg, projection_dim=cfg.num_features)))
        self.head = HTSATHead(cfg)  # trained with the encoder, stored in checkpoints, unused here

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, 1, frames, n_mels) dB log-mel."""
        return self.logmel_extractor(self.spectrogram_extractor(waveform))

    def time_steps(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, T', C): the last stage pooled over frequency (32 steps per 10 s officially)."""
        hidden = self.model(input_features=self.log_mel(waveform)).last_hidden_state  # (B, C, bins, T')
        return hidden.mean(dim=2).transpose(1, 2)

    def expand(self, steps: torch.Tensor) -> torch.Tensor:
        """(B, T', C) -> (B, max_frames, C): each step repeated (official `interpolate`)."""
        return steps.repeat_interleave(self.cfg.max_frames // steps.shape[1], dim=1)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.expand(self.time_steps(waveform))


# -- waveform preparation (numpy, per clip) ---------------------------------------------------
def prepare_waveform(x: np.ndarray, frontend: FrontEndConfig) -> np.ndarray:
    """A mono clip already at `frontend.sample_rate` -> what the model sees, as the official
    `process_wavform`: mean removed, peak-normalised to 0.5, first `clip_seconds` kept,
    zero-padded at the end to exactly `clip_samples`."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D mono waveform, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("waveform contains NaN or inf samples")
    x = x[: frontend.clip_samples]
    x = x - x.mean() if len(x) else x
    x = x / (np.abs(x).max(initial=0.0) + 1e-8) * 0.5
    out = np.zeros(frontend.clip_samples, dtype=np.float32)
    out[: len(x)] = x
    return out


def clap_waveform(
    prepared: np.ndarray, frontend: FrontEndConfig, clap: LaionClapConfig, *, resampler: str = "soxr-hq"
) -> np.ndarray:
    """The prepared HTSAT-rate clip resampled to CLAP's rate (official: torchaudio `Resample`
    32 -> 48 kHz; here soxr), then laion_clap's int16 round trip and fit to `clip_samples`."""
    return prepare_audio(resample(prepared, frontend.sample_rate, clap.sample_rate, resampler), clap.clip_samples)
