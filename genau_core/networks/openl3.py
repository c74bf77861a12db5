"""OpenL3 audio embedding network (Cramer et al. 2019), in torchopenl3's PyTorch layout.

The original OpenL3 (marl/openl3 0.4.2) is a Keras model whose kapre front end and weights
(`openl3_audio_mel256_env.h5`) need TensorFlow; torchopenl3 (torchopenl3/torchopenl3 1.0.1) is
its PyTorch port with converted weights, `torchopenl3_<input_repr>_<content_type>_<size>.pth.tar`
(a bare state dict, loaded strictly). We use torchopenl3's architecture and key layout as the
official format: `torchopenl3/models.py::PytorchOpenl3("env", "mel256", 512)`.

- front end `CustomMelSTFT` (kapre 0.1.4 numerics, which the OpenL3 weights were trained with):
  one 1-s window at 48 kHz, zero padding "same" (982 samples each side), STFT as two frozen
  conv1d banks (n_fft 2048, hop 242, periodic Hann; buffers `speclayer.dft_real_kernels`,
  `speclayer.dft_imag_kernels`), power, 256-band HTK mel matrix (`speclayer.mel_basis`, from
  `librosa.filters.mel(sr=48000, n_fft=2048, n_mels=256, fmin=0, fmax=24000, htk=True, norm=1)`),
  square root (magnitude mel), `10 log10(max(x, 1e-10))` minus the window's maximum, floored
  at -80 dB. The three front-end tensors are stored in the checkpoint and the reference's strict
  `load_state_dict` replaces its computed values with them; so do we (librosa changed the meaning
  of `norm=1` across versions, so the stored matrix, not ours, defines the released model).
- network: BN(1) -> 4 conv blocks (3x3 convs 64, 64 | 128, 128 | 256, 256 | 512, 512 with BN eps
  1e-3 and ReLU; 2x2 max pooling after the first three) -> the last conv `audio_embedding_layer`
  (no BN / ReLU) -> max pool (32, 24) over the (256/8, 199/8) map -> 512-d per window.

`openl3_frames` is openl3's `core._preprocess_audio_batch` framing (same in torchopenl3's
`utils.preprocess_audio_batch`): 1-s windows every `hop_size` seconds, the signal centred on the
first window and zero-padded at the end so every sample is covered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TARGET_SR = 48000


@dataclass(frozen=True)
class OpenL3Config:
    input_repr: str = "mel256"
    content_type: str = "env"
    embedding_size: int = 512
    sample_rate: int = TARGET_SR
    n_fft: int = 2048
    hop_length: int = 242
    n_mels: int = 256
    amin: float = 1e-10
    dynamic_range: float = 80.0
    widths: tuple[int, ...] = (64, 128, 256, 512)
    pool: tuple[int, int] = (32, 24)  # AUDIO_POOLING_SIZES["mel256"][512]

    @property
    def checkpoint_filename(self) -> str:
        return f"torchopenl3_{self.input_repr}_{self.content_type}_{self.embedding_size}.pth.tar"


OPENL3_MEL256_ENV_512 = OpenL3Config()
OPENL3_CHECKPOINT_URL = "https://github.com/torchopenl3/torchopenl3-models/raw/master/"


def kapre_dft_kernels(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_fft // 2 + 1, 1, n_fft) float32 real / imaginary DFT rows times a periodic Hann window
    (kapre 0.1.4's `get_stft_kernels`, as torchopenl3's `CustomSTFT` stores them)."""
    bins = n_fft // 2 + 1
    w = np.arange(bins)[:, None] * 2 * np.pi / float(n_fft) * np.arange(n_fft)[None, :]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    real = (np.cos(w) * window).astype(np.float32)
    imag = (-np.sin(w) * window).astype(np.float32)
    return real[:, None, :], imag[:, None, :]


def htk_mel_matrix(config: OpenL3Config) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 mel matrix of torchopenl3's `CustomMelSTFT`:
    `librosa.filters.mel(sr, n_fft, n_mels, fmin=0, fmax=sr // 2, htk=True, norm=1)` as librosa >= 0.8
    computes it (triangles on the HTK scale 2595 log10(1 + f / 700), then each row scaled to unit L1
    norm; all-zero rows, the lowest bands at this resolution, stay zero). Written out here so that
    building the network does not import librosa (seconds on a cold start)."""
    sr, n_fft, n_mels = config.sample_rate, config.n_fft, config.n_mels
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mels = np.linspace(0.0, 2595.0 * np.log10(1.0 + (sr // 2) / 700.0), n_mels + 2)
    mel_f = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    length = np.sum(np.abs(weights).astype(np.float64), axis=-1, keepdims=True)  # librosa.util.normalize
    length[length < np.finfo(np.float32).tiny] = 1.0
    return (weights / length).astype(np.float32)


class KapreMelSpectrogram(nn.Module):
    """(B, 1, 48000) -> (B, 1, n_mels, 199) dB mel, normalised to the window's maximum.
    State-dict keys: `dft_real_kernels`, `dft_imag_kernels`, `mel_basis` (stored in the file)."""

    def __init__(self, config: OpenL3Config = OPENL3_MEL256_ENV_512):
        super().__init__()
        self.config = config
        real, imag = kapre_dft_kernels(config.n_fft)
        self.register_buffer("dft_real_kernels", torch.from_numpy(real))
        self.register_buffer("dft_imag_kernels", torch.from_numpy(imag))
        self.register_buffer("mel_basis", torch.from_numpy(htk_mel_matrix(config)))

    def same_padding(self) -> tuple[int, int]:
        """Keras "same" padding of a 1-s window (torchopenl3's `custom_pad`)."""
        c = self.config
        rem = c.sample_rate % c.hop_length
        total = max(c.n_fft - (c.hop_length if rem == 0 else rem), 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        x = F.pad(x, self.same_padding())
        kernels = torch.cat([self.dft_real_kernels, self.dft_imag_kernels], dim=0)
        spec = F.conv1d(x, kernels, stride=c.hop_length)  # (B, 2 * bins, frames)
        bins = self.dft_real_kernels.shape[0]
        power = spec[:, :bins].square() + spec[:, bins:].square()
        mel = torch.sqrt(torch.matmul(self.mel_basis, power))
        db = 10.0 * torch.log10(torch.clamp(mel, min=c.amin))
        db = db - torch.amax(db, dim=(1, 2), keepdim=True)
        return torch.clamp(db, min=-c.dynamic_range).unsqueeze(1)


class OpenL3AudioNet(nn.Module):
    """`PytorchOpenl3` for mel256 / 512: window (B, 1, 48000) at 48 kHz -> (B, 512)."""

    def __init__(self, config: OpenL3Config = OPENL3_MEL256_ENV_512):
        super().__init__()
        c = self.config = config
        self.speclayer = KapreMelSpectrogram(config)
        self.batch_normalization_1 = nn.BatchNorm2d(1, eps=1e-3, momentum=0.99)
        channels = [1]
        for w in c.widths:
            channels += [w, w]
        # conv2d_1 .. conv2d_7, then audio_embedding_layer; BN 2..8 after conv2d_1 .. conv2d_7
        for i in range(1, 8):
            setattr(self, f"conv2d_{i}", nn.Conv2d(channels[i - 1], channels[i], 3, padding=1))
            setattr(self, f"batch_normalization_{i + 1}", nn.BatchNorm2d(channels[i], eps=1e-3, momentum=0.99))
        self.audio_embedding_layer = nn.Conv2d(channels[7], channels[8], 3, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)  # after conv blocks 2, 4 and 6 (no state-dict keys)

    def conv_block(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """conv2d_i -> batch_normalization_{i+1} -> ReLU."""
        return F.relu(getattr(self, f"batch_normalization_{i + 1}")(getattr(self, f"conv2d_{i}")(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.batch_normalization_1(self.speclayer(x))
        for i in range(1, 8):
            x = self.conv_block(i, x)
            if i in (2, 4, 6):
                x = self.pool(x)
        x = self.audio_embedding_layer(x)
        x = F.max_pool2d(x, kernel_size=self.config.pool, stride=self.config.pool)
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


def openl3_frames(audio: np.ndarray, hop_size: float, center: bool = True, sr: int = TARGET_SR) -> np.ndarray:
    """(n_frames, sr) 1-s windows of a mono signal at 48 kHz, openl3's framing: with `center`,
    sr // 2 zeros in front (the first window is centred on sample 0), then zeros at the end so
    (len - sr) is a multiple of the hop (a clip shorter than the window is padded to one window);
    windows every int(hop_size * sr) samples."""
    x = np.asarray(audio)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"OpenL3 framing needs a non-empty 1-D signal, got shape {x.shape}")
    if not hop_size > 0:
        raise ValueError(f"OpenL3 hop size must be > 0 s, got {hop_size}")
    frame, hop = sr, int(hop_size * sr)
    if center:
        x = np.concatenate([np.zeros(frame // 2, dtype=x.dtype), x])
    n = x.size
    pad = frame - n if n < frame else int(np.ceil((n - frame) / float(hop))) * hop - (n - frame)
    if pad > 0:
        x = np.concatenate([x, np.zeros(pad, dtype=x.dtype)])
    n_frames = 1 + (x.size - frame) // hop
    return np.lib.stride_tricks.sliding_window_view(x, frame)[::hop][:n_frames].copy()


def openl3_state_from_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A torchopenl3 `.pth.tar` state dict -> `OpenL3AudioNet` keys (the same names: torchopenl3's
    module layout is ours). Only a {"state_dict": ...} container is unwrapped."""
    if isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    return dict(state)


def openl3_state_to_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`OpenL3AudioNet.state_dict()` -> the torchopenl3 file's keys (identical)."""
    return dict(state)
