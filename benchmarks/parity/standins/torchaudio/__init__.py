"""Stand-in for `torchaudio`, for the parity-oracle venv only (see ../README.md).

Implements just what audioldm_eval, msclap and frechet_audio_distance call at run time:
`load` (via libsndfile) and the sinc resampler. Everything else is absent on purpose.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch

from . import functional, transforms  # noqa: F401

__version__ = "0.0.0+genau-parity-standin"
IS_STANDIN = True


def load(
    uri,
    frame_offset: int = 0,
    num_frames: int = -1,
    normalize: bool = True,
    channels_first: bool = True,
    format=None,
    buffer_size: int = 4096,
    backend=None,
):
    """Decode with libsndfile. Like torchaudio's default (`normalize=True`), integer PCM is
    returned as float32 scaled by 1/2**(bits-1) (libsndfile does the same scaling)."""
    if not normalize:
        raise NotImplementedError("torchaudio stand-in: normalize=False is not implemented")
    stop = None if num_frames is None or num_frames < 0 else frame_offset + num_frames
    data, sr = sf.read(str(uri), dtype="float32", always_2d=True, start=frame_offset, stop=stop)
    t = torch.from_numpy(np.ascontiguousarray(data))
    if channels_first:
        t = t.t().contiguous()
    return t, int(sr)


class AudioMetaData:
    def __init__(self, sample_rate, num_frames, num_channels):
        self.sample_rate, self.num_frames, self.num_channels = sample_rate, num_frames, num_channels


def info(uri, format=None, buffer_size: int = 4096, backend=None):
    i = sf.info(str(uri))
    return AudioMetaData(int(i.samplerate), int(i.frames), int(i.channels))
