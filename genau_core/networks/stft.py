"""Log-mel front end with torchlibrosa's numerics and state-dict layout (used by PANNs).

torchlibrosa computes the STFT as two frozen Conv1d layers whose kernels are the real and
imaginary DFT rows multiplied by a periodic Hann window (centre padding by reflection),
takes the power |X|^2, multiplies by librosa's Slaney mel matrix and converts to dB with
`10 * log10(clamp(x, amin)) - 10 * log10(max(amin, ref))` (no top_db clipping in PANNs).

The official PANNs checkpoints store these kernels and the mel matrix in the state dict
(`spectrogram_extractor.stft.conv_real.weight`, `...conv_imag.weight`,
`logmel_extractor.melW`), and the reference code's `load_state_dict` replaces its computed
values with the stored ones. We therefore keep them under the same names, so a loaded
official checkpoint runs with exactly the stored values; `frontend_deviation` lets the loader
check that the stored values are what this configuration computes (a wrong file fails).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def as_mono_float32(waveform, index: int, backbone: str) -> np.ndarray:
    """Validate one clip given to `embed`: 1-D, finite, returned as contiguous float32."""
    x = np.asarray(waveform)
    if x.ndim != 1:
        raise ValueError(f"{backbone}: clip {index} has shape {x.shape}; expected a 1-D mono waveform")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{backbone}: clip {index} has dtype {x.dtype}; expected float samples in [-1, 1]")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{backbone}: clip {index} contains NaN or inf samples")
    return x


def group_by_length(clips: Sequence[np.ndarray], batch_size: int) -> list[list[int]]:
    """Batches of clip indices with identical lengths (so no clip is ever padded for batching)."""
    by_len: dict[int, list[int]] = {}
    for i, c in enumerate(clips):
        by_len.setdefault(len(c), []).append(i)
    batches = []
    for idxs in by_len.values():
        batches.extend(idxs[k : k + batch_size] for k in range(0, len(idxs), batch_size))
    return batches


# librosa's outputs for the protocol's front ends, stored with the package (keys: `table_key`):
# `librosa.filters` imports scipy.signal and numba, 0.8 s of every cold scoring run, for a
# window and four mel matrices. Other configurations call librosa. tests/genau_core/networks/test_librosa_tables.py
# checks every stored array equals what the installed librosa returns, bit for bit;
# `python -m genau_core.networks.stft` rewrites the file.
# A checkpoint's stored front-end tensors (STFT kernels, mel matrices) may differ from ours by float32 rounding
# (other librosa / numpy versions); anything larger means the file was made for another STFT or mel configuration.
FRONTEND_TOLERANCE = 1e-4
LIBROSA_TABLES = Path(__file__).with_name("librosa_tables.npz")
TABLE_WINDOWS = (512, 1024)
TABLE_MELS = (  # (sample_rate, n_fft, n_mels, fmin, fmax): Cnn14 16 kHz, MS-CLAP 2022 / 2023, LAION-CLAP
    (16000, 512, 64, 50.0, 8000.0),
    (32000, 1024, 64, 50.0, 14000.0),
    (44100, 1024, 64, 50.0, 14000.0),
    (48000, 1024, 64, 50.0, 14000.0),
)


def table_key(kind: str, *args) -> str:
    return "_".join([kind, *(f"{a:g}" if isinstance(a, float) else str(a) for a in args)])


@functools.lru_cache(maxsize=1)
def _stored_tables() -> dict[str, np.ndarray]:
    if not LIBROSA_TABLES.exists():
        return {}
    with np.load(LIBROSA_TABLES) as z:
        return {k: z[k] for k in z.files}


def periodic_hann(n_fft: int) -> np.ndarray:
    """librosa.filters.get_window("hann", n_fft, fftbins=True) (float64)."""
    stored = _stored_tables().get(table_key("hann", n_fft))
    if stored is not None:
        return stored.copy()
    import librosa.filters

    return librosa.filters.get_window("hann", n_fft, fftbins=True)


def librosa_mel(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax): (n_mels, n_fft // 2 + 1) float32, Slaney."""
    stored = _stored_tables().get(table_key("mel", sample_rate, n_fft, n_mels, float(fmin), float(fmax)))
    if stored is not None:
        return stored.copy()
    import librosa.filters

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)


def compute_librosa_tables() -> dict[str, np.ndarray]:
    """The stored tables, computed now by the installed librosa."""
    import librosa.filters

    out = {table_key("hann", n): librosa.filters.get_window("hann", n, fftbins=True) for n in TABLE_WINDOWS}
    for sr, n_fft, n_mels, fmin, fmax in TABLE_MELS:
        mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        out[table_key("mel", sr, n_fft, n_mels, fmin, fmax)] = mel
    return out


def dft_kernels(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """(real, imag) Conv1d kernels, each (n_fft // 2 + 1, 1, n_fft) float32: periodic-Hann
    windowed DFT rows, exp(-2*pi*i*k*n/N) * w[n], as torchlibrosa builds them."""
    window = periodic_hann(n_fft)
    k = np.arange(n_fft // 2 + 1)[:, None]
    n = np.arange(n_fft)[None, :]
    # Reduce k*n modulo N first so the angle stays small and exact in float64.
    phase = 2.0 * np.pi * ((k * n) % n_fft) / n_fft
    real = (np.cos(phase) * window)[:, None, :]
    imag = (-np.sin(phase) * window)[:, None, :]
    return real.astype(np.float32), imag.astype(np.float32)


def slaney_mel_matrix(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) float32: librosa.filters.mel (Slaney scale and norm), transposed."""
    mel = librosa_mel(sample_rate, n_fft, n_mels, fmin, fmax)
    return np.ascontiguousarray(mel.T, dtype=np.float32)


class ConvSTFT(nn.Module):
    """Key layout `conv_real.weight`, `conv_imag.weight` (torchlibrosa.stft.STFT)."""

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        n_bins = n_fft // 2 + 1
        self.conv_real = nn.Conv1d(1, n_bins, kernel_size=n_fft, stride=hop_length, bias=False)
        self.conv_imag = nn.Conv1d(1, n_bins, kernel_size=n_fft, stride=hop_length, bias=False)
        real, imag = dft_kernels(n_fft)
        with torch.no_grad():
            self.conv_real.weight.copy_(torch.from_numpy(real))
            self.conv_imag.weight.copy_(torch.from_numpy(imag))
        self.requires_grad_(False)

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) -> real, imag, each (B, 1, frames, n_fft // 2 + 1); frames = 1 + N // hop."""
        x = F.pad(waveform[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        real = self.conv_real(x)[:, None].transpose(2, 3)
        imag = self.conv_imag(x)[:, None].transpose(2, 3)
        return real, imag


class PowerSpectrogram(nn.Module):
    """Key layout `stft.conv_real.weight`, `stft.conv_imag.weight` (torchlibrosa Spectrogram, power 2)."""

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        self.stft = ConvSTFT(n_fft, hop_length)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        real, imag = self.stft(waveform)
        return real**2 + imag**2


class LogMelFilterBank(nn.Module):
    """Key layout `melW` (torchlibrosa LogmelFilterBank with top_db=None)."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        n_mels: int,
        fmin: float,
        fmax: float,
        *,
        ref: float = 1.0,
        amin: float = 1e-10,
    ):
        super().__init__()
        self.ref = ref
        self.amin = amin
        melw = slaney_mel_matrix(sample_rate, n_fft, n_mels, fmin, fmax)
        self.melW = nn.Parameter(torch.from_numpy(melw), requires_grad=False)

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        mel = torch.matmul(power, self.melW)
        db = 10.0 * torch.log10(torch.clamp(mel, min=self.amin))
        return db - 10.0 * float(np.log10(max(self.amin, self.ref)))


def frontend_deviation(
    conv_real: torch.Tensor,
    conv_imag: torch.Tensor,
    melW: torch.Tensor,
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float,
    fmax: float,
) -> dict[str, float]:
    """Max |stored - computed| of each front-end tensor (inf on a shape mismatch), keyed by
    its state-dict suffix under `spectrogram_extractor.` / `logmel_extractor.`."""
    real, imag = dft_kernels(n_fft)
    melw = slaney_mel_matrix(sample_rate, n_fft, n_mels, fmin, fmax)
    pairs = {
        "stft.conv_real.weight": (conv_real, real),
        "stft.conv_imag.weight": (conv_imag, imag),
        "melW": (melW, melw),
    }
    out = {}
    for key, (stored, computed) in pairs.items():
        s = stored.detach().cpu().to(torch.float32).numpy()
        out[key] = float("inf") if s.shape != computed.shape else float(np.abs(s - computed).max())
    return out


if __name__ == "__main__":  # rewrite the stored tables with the installed librosa
    tables = compute_librosa_tables()
    np.savez(LIBROSA_TABLES, **tables)
    print(f"wrote {LIBROSA_TABLES} ({', '.join(sorted(tables))})")
