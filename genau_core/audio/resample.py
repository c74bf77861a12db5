"""torchaudio's band-limited sinc resampler, in plain torch (torchaudio is not needed).

The field's reference tools resample with torchaudio: msclap (`CLAPWrapper.read_audio`:
`transforms.Resample(sr, 44100)`) and audioldm_eval (`WaveDataset.read_from_file`:
`functional.resample(audio, file_sr, 16000)`), both with torchaudio's defaults: a Hann-windowed
sinc ("sinc_interp_hann"), `lowpass_filter_width` 6 zero crossings, `rolloff` 0.99.

The two entry points differ in one detail that changes the last bits: `functional.resample`
builds its kernel in the waveform's dtype (float32 for audio), `transforms.Resample` builds it
in float64 (its `dtype=None`) and stores it as float32. `kernel_dtype` selects which.

Algorithm (torchaudio `functional/functional.py`, `_get_sinc_resample_kernel` and
`_apply_sinc_resample_kernel`): reduce the rates by their gcd to (o, n); the cut-off is
`min(o, n) * rolloff`; output phase j (of n) is a windowed-sinc FIR over input offsets
`-width .. width + o - 1`, with `width = ceil(lowpass_filter_width * o / cutoff)`; the n phase
filters run as one conv1d of stride o over the input zero-padded by `width` on the left and
`width + o` on the right; the output is cut to `ceil(n * length / o)` samples, that length
being computed in float32 as torchaudio does. Tested bit for bit against a transcription of
those two functions (tests/genau_core/audio/test_resamplers.py).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99
KAISER_BETA = 14.769656459379492  # torchaudio's default beta for "sinc_interp_kaiser"
METHODS = ("sinc_interp_hann", "sinc_interp_kaiser")


def _reduced(orig_freq: int, new_freq: int) -> tuple[int, int]:
    if int(orig_freq) != orig_freq or int(new_freq) != new_freq or orig_freq <= 0 or new_freq <= 0:
        raise ValueError(f"sinc resampling needs positive integer rates, got {orig_freq} -> {new_freq}")
    g = math.gcd(int(orig_freq), int(new_freq))
    return int(orig_freq) // g, int(new_freq) // g


def sinc_kernel(
    orig_freq: int,
    new_freq: int,
    *,
    lowpass_filter_width: int = LOWPASS_FILTER_WIDTH,
    rolloff: float = ROLLOFF,
    method: str = "sinc_interp_hann",
    beta: float | None = None,
    kernel_dtype: torch.dtype | None = torch.float32,
) -> tuple[torch.Tensor, int]:
    """(kernel of shape (n, 1, 2 * width + o), width) for resampling orig_freq -> new_freq.

    kernel_dtype: the dtype the kernel is computed in, as torchaudio's `dtype` argument:
    torch.float32 = `functional.resample` on float32 audio; None = `transforms.Resample()`
    (float64 arithmetic, the phase times j / n divided in float32, the result cast to float32).
    """
    if method not in METHODS:
        raise ValueError(f"unknown sinc resampling method {method!r}; choose one of {METHODS}")
    if lowpass_filter_width <= 0:
        raise ValueError(f"lowpass_filter_width must be positive, got {lowpass_filter_width}")
    o, n = _reduced(orig_freq, new_freq)
    cutoff = min(o, n) * rolloff  # a Python float, as upstream
    width = math.ceil(lowpass_filter_width * o / cutoff)
    offsets_dtype = kernel_dtype if kernel_dtype is not None else torch.float64
    # input sample offsets of one phase filter, in input periods
    offsets = torch.arange(-width, width + o, dtype=offsets_dtype)[None, None] / o
    # minus the time of output phase j (j / n); integer arange divided -> default float dtype upstream
    phase = torch.arange(0, -n, -1, dtype=kernel_dtype)[:, None, None] / n
    t = (phase + offsets) * cutoff
    t = t.clamp(-lowpass_filter_width, lowpass_filter_width)
    if method == "sinc_interp_hann":
        window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    else:
        b = torch.tensor(float(KAISER_BETA if beta is None else beta))
        window = torch.i0(b * torch.sqrt(1 - (t / lowpass_filter_width) ** 2)) / torch.i0(b)
    t = t * math.pi
    kernel = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t)
    kernel = kernel * (window * (cutoff / o))
    if kernel_dtype is None:
        kernel = kernel.to(torch.float32)
    return kernel, width


@lru_cache(maxsize=32)
def _cached_kernel(
    orig_freq: int,
    new_freq: int,
    lowpass_filter_width: int,
    rolloff: float,
    method: str,
    beta: float | None,
    kernel_dtype: torch.dtype | None,
) -> tuple[torch.Tensor, int]:
    return sinc_kernel(
        orig_freq,
        new_freq,
        lowpass_filter_width=lowpass_filter_width,
        rolloff=rolloff,
        method=method,
        beta=beta,
        kernel_dtype=kernel_dtype,
    )


def apply_sinc_kernel(
    waveform: torch.Tensor, orig_freq: int, new_freq: int, kernel: torch.Tensor, width: int
) -> torch.Tensor:
    """Resample `waveform` (..., time) with a kernel from `sinc_kernel` (torchaudio's strided conv1d)."""
    if not waveform.is_floating_point():
        raise TypeError(f"sinc resampling needs a floating point waveform, got {waveform.dtype}")
    o, n = _reduced(orig_freq, new_freq)
    shape = waveform.shape
    x = waveform.reshape(-1, shape[-1])
    length = x.shape[-1]
    y = F.conv1d(F.pad(x, (width, width + o))[:, None], kernel.to(x.dtype), stride=o)
    y = y.transpose(1, 2).reshape(x.shape[0], -1)
    # torchaudio: torch.ceil(torch.as_tensor(n * length / o)) - a float32 tensor by default
    target = int(torch.ceil(torch.as_tensor(n * length / o, dtype=torch.float32)))
    return y[..., :target].reshape(shape[:-1] + (-1,))


def sinc_resample(
    waveform: torch.Tensor,
    orig_freq: int,
    new_freq: int,
    *,
    lowpass_filter_width: int = LOWPASS_FILTER_WIDTH,
    rolloff: float = ROLLOFF,
    method: str = "sinc_interp_hann",
    beta: float | None = None,
    kernel_dtype: torch.dtype | None = torch.float32,
) -> torch.Tensor:
    """torchaudio's resample of `waveform` (..., time); see `sinc_kernel` for `kernel_dtype`."""
    if orig_freq == new_freq:
        return waveform
    kernel, width = _cached_kernel(
        int(orig_freq),
        int(new_freq),
        int(lowpass_filter_width),
        float(rolloff),
        method,
        None if beta is None else float(beta),
        kernel_dtype,
    )
    with torch.no_grad():
        return apply_sinc_kernel(waveform, orig_freq, new_freq, kernel, width)


def sinc_resample_numpy(
    x: np.ndarray, orig_freq: int, new_freq: int, *, kernel_dtype: torch.dtype | None = torch.float32
) -> np.ndarray:
    """float32 numpy in, float32 numpy out (torchaudio's default Hann sinc)."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return sinc_resample(t, orig_freq, new_freq, kernel_dtype=kernel_dtype).numpy()
