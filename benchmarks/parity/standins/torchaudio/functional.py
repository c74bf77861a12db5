"""Band-limited sinc resampling as torchaudio computes it (stand-in; see ../README.md).

Follows the operation order of torchaudio's `_get_sinc_resample_kernel` (float32 bits matter):
tested equal to a transcription of torchaudio's code in tests/genau_core/audio/test_resamplers.py.

Algorithm (torchaudio docs, :cite:`RESAMPLE`): reduce both rates by their gcd to (o, n);
cut-off f_c = min(o, n) * rolloff; the output sample j of each of the n phases is
    y[j] = sum_i x[i] * sinc(pi * f_c * (i/o - j/n)) * w(f_c * (i/o - j/n)) * f_c / o
with the argument clamped to +-lowpass_filter_width zero crossings and w a Hann (cos^2)
or Kaiser window over that support. The n phase filters are applied as one strided conv1d
(stride o) over the input padded by `width` zeros on the left and `width + o` on the right;
the output is cut to ceil(n * length / o) samples.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["resample", "sinc_resample_kernel"]


def sinc_resample_kernel(
    orig_freq: int,
    new_freq: int,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
    resampling_method: str = "sinc_interp_hann",
    beta: Optional[float] = None,
    dtype: Optional[torch.dtype] = None,
    device=None,
):
    if resampling_method not in ("sinc_interp_hann", "sinc_interp_kaiser"):
        raise ValueError(f"invalid resampling method {resampling_method!r}")
    if lowpass_filter_width <= 0:
        raise ValueError("lowpass_filter_width must be positive")
    g = math.gcd(int(orig_freq), int(new_freq))
    o, n = int(orig_freq) // g, int(new_freq) // g
    cutoff = min(o, n) * rolloff
    width = math.ceil(lowpass_filter_width * o / cutoff)
    # input offsets (in units of input periods) covered by one phase filter
    offsets = (
        torch.arange(-width, width + o, dtype=dtype if dtype is not None else torch.float64, device=device)[None, None]
        / o
    )
    # one row per output phase j = 0..n-1 (time of output sample j is j/n)
    phases = torch.arange(0, -n, -1, dtype=dtype, device=device)[:, None, None] / n
    arg = (phases + offsets) * cutoff
    arg = arg.clamp(-lowpass_filter_width, lowpass_filter_width)
    if resampling_method == "sinc_interp_hann":  # torchaudio's operation order (float32 bits)
        win = torch.cos(arg * math.pi / lowpass_filter_width / 2) ** 2
    else:
        b = torch.tensor(14.769656459379492 if beta is None else float(beta))
        win = torch.i0(b * torch.sqrt(1 - (arg / lowpass_filter_width) ** 2)) / torch.i0(b)
    x = arg * math.pi
    sinc = torch.where(x == 0, torch.ones((), dtype=x.dtype, device=x.device), torch.sin(x) / x)
    kernel = sinc * (win * (cutoff / o))
    if dtype is None:
        kernel = kernel.to(torch.float32)
    return kernel, width, o, n


def resample(
    waveform: torch.Tensor,
    orig_freq: int,
    new_freq: int,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
    resampling_method: str = "sinc_interp_hann",
    beta: Optional[float] = None,
) -> torch.Tensor:
    if orig_freq <= 0 or new_freq <= 0:
        raise ValueError("sample rates must be positive")
    if orig_freq == new_freq:
        return waveform
    if not waveform.is_floating_point():
        raise TypeError("resample expects a floating point waveform")
    kernel, width, o, n = sinc_resample_kernel(
        orig_freq, new_freq, lowpass_filter_width, rolloff, resampling_method, beta, waveform.dtype, waveform.device
    )
    return _apply(waveform, kernel, width, o, n)


def _apply(waveform, kernel, width, o, n):
    shape = waveform.shape
    x = waveform.reshape(-1, shape[-1])
    length = x.shape[-1]
    x = F.pad(x, (width, width + o))
    y = F.conv1d(x[:, None], kernel, stride=o)  # (batch, n phases, steps)
    y = y.transpose(1, 2).reshape(x.shape[0], -1)
    y = y[..., : int(math.ceil(n * length / o))]
    return y.reshape(shape[:-1] + y.shape[-1:])
