"""PANNs Cnn14 at 16 kHz (Kong et al.), the backbone of FD, IS and KL in the AudioLDM protocol.

Architecture, front end and state-dict keys follow qiuqiangkong/audioset_tagging_cnn
(`Cnn14` built with sample_rate 16000, window 512, hop 160, 64 mels, 50-8000 Hz, 527
classes), exactly as haoheliu/audioldm_eval builds it. Per clip we return:

- "embedding": relu(fc1(x)), 2048-d; audioldm_eval's "2048" feature. In eval mode its
  dropout layers are identities, so before/after dropout is the same tensor.
- "logits": fc_audioset(relu(fc1(x))), 527-d, *before* the sigmoid; audioldm_eval's
  "logits" feature, which its IS (softmax) and KL (softmax and sigmoid) consume.

Each clip is processed at its own length (audioldm_eval runs batch size 1): clips are only
batched with clips of identical length, never padded, because padding would change the
reflect padding of the STFT and the max/mean pooling over time. Clips shorter than
`min_samples` = 4960 (32 STFT frames, needed by the five 2x2 poolings) are rejected with a
ValueError naming the clip; the reference network raises on them too. audioldm_eval's
data loader keeps the first channel, removes the clip's mean and resamples with torchaudio's
sinc (`input_path`, applied by the suite), then zero-pads clips shorter than 2 s to 32000
samples (`prepare`), all before the model.

The STFT kernels and mel matrix are kept as state-dict entries under the official names
(see _stft.py): a loaded checkpoint runs with its stored values, as the reference does,
after checking they match what this configuration computes (max deviation 1e-4).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genau_core.checkpoint_io import CheckpointFormatError, read_state_dict
from genau_core.networks.stft import (
    FRONTEND_TOLERANCE,
    LogMelFilterBank,
    PowerSpectrogram,
    frontend_deviation,
)


@dataclass(frozen=True)
class Cnn14Config:
    sample_rate: int = 16000
    window_size: int = 512
    hop_size: int = 160
    mel_bins: int = 64
    fmin: float = 50.0
    fmax: float = 8000.0
    classes_num: int = 527


CNN14_16K = Cnn14Config()


def _init_layer(layer: nn.Module) -> None:
    nn.init.xavier_uniform_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)


def _init_bn(bn: nn.BatchNorm2d) -> None:
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)


class ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU, then average pooling. Keys conv1/conv2/bn1/bn2."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        _init_layer(self.conv1)
        _init_layer(self.conv2)
        _init_bn(self.bn1)
        _init_bn(self.bn2)

    def forward(self, x: torch.Tensor, pool_size: tuple[int, int]) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool_size)


class Cnn14Net(nn.Module):
    """Cnn14 for inference; attribute names give the official state-dict keys."""

    def __init__(self, config: Cnn14Config = CNN14_16K):
        super().__init__()
        self.config = config
        c = config
        self.spectrogram_extractor = PowerSpectrogram(c.window_size, c.hop_size)
        self.logmel_extractor = LogMelFilterBank(c.sample_rate, c.window_size, c.mel_bins, c.fmin, c.fmax)
        self.bn0 = nn.BatchNorm2d(c.mel_bins)
        widths = [1, 64, 128, 256, 512, 1024, 2048]
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(2048, 2048, bias=True)
        self.fc_audioset = nn.Linear(2048, c.classes_num, bias=True)
        _init_bn(self.bn0)
        _init_layer(self.fc1)
        _init_layer(self.fc_audioset)

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, 1, frames, mel_bins) log-mel in dB, before bn0."""
        return self.logmel_extractor(self.spectrogram_extractor(waveform))

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) -> (embedding (B, 2048), logits (B, classes_num)). Eval-mode semantics:
        spec augmentation, mixup and dropout are training-only and absent here."""
        x = self.log_mel(waveform)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # normalise per mel bin
        for i in range(1, 6):
            x = getattr(self, f"conv_block{i}")(x, pool_size=(2, 2))
        x = self.conv_block6(x, pool_size=(1, 1))
        x = torch.mean(x, dim=3)  # over mel
        x = torch.amax(x, dim=2) + torch.mean(x, dim=2)  # over time
        embedding = F.relu(self.fc1(x))
        logits = self.fc_audioset(embedding)
        return embedding, logits


def read_panns_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of an audioset_tagging_cnn checkpoint: {"model": state_dict, ...} (the
    published files also pickle numpy training state, which weights-only loading accepts)."""
    return read_state_dict(path, ("model",), what="PANNs Cnn14 16 kHz")


def check_panns_frontend(state: dict[str, torch.Tensor], config: Cnn14Config, path: Path) -> None:
    """Stored STFT kernels and mel matrix must be those of `config` (checked before the key
    match, so e.g. a 32 kHz Cnn14 file is named as such). Absent entries are left to the key check."""
    names = (
        "spectrogram_extractor.stft.conv_real.weight",
        "spectrogram_extractor.stft.conv_imag.weight",
        "logmel_extractor.melW",
    )
    if not all(isinstance(state.get(n), torch.Tensor) for n in names):
        return
    c = config
    deviation = frontend_deviation(
        *(state[n] for n in names),
        sample_rate=c.sample_rate,
        n_fft=c.window_size,
        n_mels=c.mel_bins,
        fmin=c.fmin,
        fmax=c.fmax,
    )
    bad = {k: v for k, v in deviation.items() if not v <= FRONTEND_TOLERANCE}
    if bad:
        raise CheckpointFormatError(
            f"{path}: stored STFT/mel front end is not that of a {c.sample_rate} Hz Cnn14 "
            f"(window {c.window_size}, hop {c.hop_size}, {c.mel_bins} mels, {c.fmin:g}-{c.fmax:g} Hz); "
            f"max deviation {bad}"
        )
