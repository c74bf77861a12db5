"""Stand-in `torchaudio.transforms` (see ../README.md): only `Resample` is real."""

from __future__ import annotations

import torch

from .functional import _apply, sinc_resample_kernel


class Resample(torch.nn.Module):
    def __init__(
        self,
        orig_freq: int = 16000,
        new_freq: int = 16000,
        resampling_method: str = "sinc_interp_hann",
        lowpass_filter_width: int = 6,
        rolloff: float = 0.99,
        beta=None,
        *,
        dtype=None,
    ):
        super().__init__()
        self.orig_freq, self.new_freq = int(orig_freq), int(new_freq)
        if self.orig_freq != self.new_freq:
            k, self.width, self.o, self.n = sinc_resample_kernel(
                self.orig_freq, self.new_freq, lowpass_filter_width, rolloff, resampling_method, beta, dtype
            )
            self.register_buffer("kernel", k, persistent=False)

    def forward(self, waveform):
        if self.orig_freq == self.new_freq:
            return waveform
        return _apply(waveform, self.kernel.to(waveform.dtype), self.width, self.o, self.n)


class _Refused(torch.nn.Module):
    def __init__(self, *a, **k):
        raise NotImplementedError(
            f"torchaudio stand-in: {type(self).__name__} is not implemented (only LAION-CLAP's "
            "fusion path uses it; the parity oracle runs the non-fusion model)"
        )


class MelSpectrogram(_Refused):
    pass


class AmplitudeToDB(_Refused):
    pass


class Spectrogram(_Refused):
    pass
