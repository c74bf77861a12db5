"""VGGish (Hershey et al.) as audioldm_eval uses it for FAD: 128-d frame embeddings at 16 kHz.

Architecture and preprocessing follow harritaylor/torchvggish with the two changes
audioldm_eval makes (`FrechetAudioDistance(use_pca=False, use_activation=False)`):
postprocessing (PCA whitening + 8-bit quantisation) is off, and the final ReLU of the
`embeddings` MLP is removed, so embeddings can be negative.

Front end (torchvggish's `waveform_to_examples` with its `mel_features`), computed in
float64 like the reference, which multiplies the float32 frames by a float64 window:
periodic Hann window of 400 samples (25 ms), hop 160 (10 ms), FFT 512, STFT magnitude (not
power), 64 HTK-mel bands 125-7500 Hz with triangles linear in mel and the DC bin zeroed,
log(mel + 0.01); then non-overlapping examples of 96 frames (0.96 s). Incomplete trailing
frames and examples are dropped, as in the reference; examples go to the network as float32.

Per clip, "frames" is (n_examples, 128) with n_examples = 1 + (n_frames - 96) // 96 and
n_frames = 1 + (N - 400) // 160. A clip shorter than 15600 samples (0.975 s) has no
complete example; the reference then raises (below 240 samples a negative frame count in
`frame`, otherwise `view` of an empty batch in `VGG.forward`), and so do we, with a message
naming the clip. (audioldm_eval's loader zero-pads clips to at least 2 s beforehand.)
Examples of all clips are batched together: the network treats each example independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genau_core.checkpoint_io import read_state_dict


@dataclass(frozen=True)
class VGGishFrontEnd:
    sample_rate: int = 16000
    window_seconds: float = 0.025
    hop_seconds: float = 0.010
    num_mel_bins: int = 64
    mel_min_hz: float = 125.0
    mel_max_hz: float = 7500.0
    log_offset: float = 0.01
    example_window_seconds: float = 0.96
    example_hop_seconds: float = 0.96

    @property
    def window_length(self) -> int:
        return int(round(self.sample_rate * self.window_seconds))

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_seconds))

    @property
    def fft_length(self) -> int:
        return 2 ** int(np.ceil(np.log(self.window_length) / np.log(2.0)))

    @property
    def example_frames(self) -> int:
        return int(round(self.example_window_seconds / self.hop_seconds))

    @property
    def example_hop_frames(self) -> int:
        return int(round(self.example_hop_seconds / self.hop_seconds))

    @property
    def min_samples(self) -> int:
        """Shortest clip that yields one example."""
        return self.window_length + (self.example_frames - 1) * self.hop_length


VGGISH_FRONTEND = VGGishFrontEnd()


def _frames(data: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Complete frames only, (n, length, ...); n = 1 + (len - length) // hop, or 0."""
    n = 1 + (data.shape[0] - length) // hop if data.shape[0] >= length else 0
    if n == 0:
        return np.zeros((0, length) + data.shape[1:], dtype=data.dtype)
    windows = np.lib.stride_tricks.sliding_window_view(data, length, axis=0)[::hop][:n]
    # sliding_window_view puts the window axis last; bring it next to the frame axis.
    return np.moveaxis(windows, -1, 1)


def _hz_to_htk_mel(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log(1.0 + hz / 700.0)


def vggish_mel_matrix(fe: VGGishFrontEnd = VGGISH_FRONTEND) -> np.ndarray:
    """(fft_length // 2 + 1, num_mel_bins) float64 HTK-mel weights, linear in mel, DC bin zero."""
    n_bins = fe.fft_length // 2 + 1
    nyquist = fe.sample_rate / 2.0
    if not 0.0 <= fe.mel_min_hz < fe.mel_max_hz <= nyquist:
        raise ValueError(f"VGGish mel range {fe.mel_min_hz}-{fe.mel_max_hz} Hz is invalid at {fe.sample_rate} Hz")
    bins_mel = _hz_to_htk_mel(np.linspace(0.0, nyquist, n_bins))[:, None]
    edges = np.linspace(_hz_to_htk_mel(fe.mel_min_hz), _hz_to_htk_mel(fe.mel_max_hz), fe.num_mel_bins + 2)
    lower, center, upper = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    rising = (bins_mel - lower) / (center - lower)
    falling = (upper - bins_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def vggish_log_mel(waveform: np.ndarray, fe: VGGishFrontEnd = VGGISH_FRONTEND) -> np.ndarray:
    """(n_frames, num_mel_bins) float64 log-mel of a 16 kHz mono waveform."""
    x = np.asarray(waveform, dtype=np.float64)
    frames = _frames(x, fe.window_length, fe.hop_length)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi / fe.window_length * np.arange(fe.window_length))  # periodic Hann
    magnitude = np.abs(np.fft.rfft(frames * window, fe.fft_length))
    return np.log(np.dot(magnitude, vggish_mel_matrix(fe)) + fe.log_offset)


def vggish_examples(waveform: np.ndarray, fe: VGGishFrontEnd = VGGISH_FRONTEND) -> np.ndarray:
    """(n_examples, 1, example_frames, num_mel_bins) float32 network input of one clip."""
    log_mel = vggish_log_mel(waveform, fe)
    examples = _frames(log_mel, fe.example_frames, fe.example_hop_frames)
    return np.ascontiguousarray(examples[:, None], dtype=np.float32)


def _vgg_features() -> nn.Sequential:
    """Keys features.{0,3,6,8,11,13}.{weight,bias}: conv 3x3 + ReLU, max-pool after 64, 128, 256x2, 512x2."""
    layers: list[nn.Module] = []
    in_channels = 1
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_channels = v
    return nn.Sequential(*layers)


class VGGishNet(nn.Module):
    """VGGish without the final embedding ReLU; keys features.* and embeddings.{0,2,4}.*."""

    def __init__(self):
        super().__init__()
        self.features = _vgg_features()
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 128),
        )

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        """(B, 1, 96, 64) -> (B, 128)."""
        x = self.features(examples)  # (B, 512, 6, 4)
        # The TF-converted weights expect the flatten order (time, mel, channel).
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return self.embeddings(x)


def read_vggish_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """torchvggish's vggish-10086976.pth is a bare state dict of tensors."""
    return read_state_dict(path, (), what="torchvggish VGGish")
