"""OpenL3 (mel256, content type "env", 512-d) behind the backbone interface, as stable-audio-metrics
computes its FD_openl3.

Network, front end and framing: `genau_core.networks.openl3` (torchopenl3's PyTorch port of
marl/openl3; its `torchopenl3_mel256_env_512.pth.tar` is the official file format here).

Stability-AI/stable-audio-metrics `src/openl3_fd.py::extract_embeddings` (the batched path its
AudioCaps example runs: channels=2, samplingrate=44100, content_type="env", hop 0.5 s, batch 4):
1. `librosa.load(file, sr=None, mono=False)`, transposed to (samples, channels);
2. `pyln.normalize.peak(audio, -1.0)`: one gain for all channels, from the native-rate peak;
3. `soxr.resample(audio, sr, 44100)` (soxr "HQ");
4. stereo: channel 0 and channel 1 embedded separately; mono: the one channel used for both;
5. `openl3.get_audio_embedding(..., hop_size=0.5)`: each channel resampled 44.1 -> 48 kHz with
   `resampy.resample(filter="kaiser_best")`, framed into 1-s windows every 0.5 s (centred), embedded;
6. per window, [left 512 | right 512] -> 1024-d; FD pools every window of every clip.
Steps 1-4 are `stable_audio_metrics_openl3_input` (native audio in, the two 48 kHz channels out);
this backbone does step 5-6 on 48 kHz input: `embed` returns per clip "frames" (n_windows, 1024).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from bench.audio import InputPath
from bench.checkpoints import find_checkpoint
from bench.metrics.backbones._cpu_kernels import BatchNormFolder, FastConv2d, _fast_path
from bench.metrics.backbones.base import AudioBackbone
from bench.metrics.backbones.passt import stable_audio_metrics_peak_normalize
from genau_core.checkpoint_io import build_from_state, read_state_dict
from genau_core.networks.openl3 import (
    OPENL3_CHECKPOINT_URL,
    OPENL3_MEL256_ENV_512,
    TARGET_SR,
    OpenL3AudioNet,
    OpenL3Config,
    openl3_frames,
    openl3_state_from_official,
    openl3_state_to_official,
)


class FoldedOpenL3AudioNet(OpenL3AudioNet):
    """`OpenL3AudioNet` whose CPU float32 inference with the fast kernels (`_cpu_kernels`: its convolutions
    swapped for `FastConv2d`) folds each eval-mode BatchNorm into the convolution before it and applies ReLU in
    place (its 2x2 pooling is an `nn.MaxPool2d`, which `_cpu_kernels` swaps for strided maxima as in any other
    network). The same function up to float32 rounding: 9e-7 relative on the embeddings against PyTorch's
    kernels; stable-audio-metrics' FD parity stays at 4.6e-5. Measured per 10-s stereo file (42 windows, 2 idle
    cores): 5.26 -> 5.02 s under `bench`'s allocator policy, 7.63 -> 5.86 s under glibc's defaults (the BatchNorm
    pass was mostly page faults). State dict, modules and every other path are `OpenL3AudioNet`'s."""

    def __init__(self, config: OpenL3Config = OPENL3_MEL256_ENV_512):
        super().__init__(config)
        self._folder = BatchNormFolder()

    def _apply(self, fn, *args, **kwargs):
        self._folder.clear()  # `.to()` (and `release`, which moves to "meta"): the copies go with the weights
        return super()._apply(fn, *args, **kwargs)

    def conv_block(self, i: int, x: torch.Tensor) -> torch.Tensor:
        conv = getattr(self, f"conv2d_{i}")
        if self.training or not isinstance(conv, FastConv2d) or not _fast_path(x, conv.weight):
            return super().conv_block(i, x)
        return F.relu_(self._folder(conv, getattr(self, f"batch_normalization_{i + 1}"))(x))


STABLE_AUDIO_EVAL_RATE = 44100  # stable-audio-metrics' "samplingrate" in its AudioCaps / MusicCaps runs
STABLE_AUDIO_HOP_S = 0.5


def openl3_resample(x: np.ndarray, sr: int) -> np.ndarray:
    """What openl3's `_preprocess_audio_batch` does to input not at 48 kHz:
    `resampy.resample(x, sr, 48000, filter="kaiser_best")`."""
    if sr == TARGET_SR:
        return np.asarray(x)
    import resampy

    return resampy.resample(np.asarray(x), sr_orig=sr, sr_new=TARGET_SR, filter="kaiser_best")


def stable_audio_metrics_openl3_input(
    audio: np.ndarray, sample_rate: int, eval_rate: int = STABLE_AUDIO_EVAL_RATE
) -> np.ndarray:
    """Native audio, (samples,) or (samples, channels) as read from the file, -> (2, n) float32 at
    48 kHz: stable-audio-metrics' peak normalisation, soxr HQ to `eval_rate`, left / right (mono
    used twice; channels past the second ignored, as there), then openl3's resampy to 48 kHz."""
    import soxr

    x = np.asarray(audio, dtype=np.float32)  # librosa.load's float32 samples
    if x.ndim not in (1, 2) or x.shape[0] == 0:
        raise ValueError(f"expected (samples,) or (samples, channels) audio, got shape {x.shape}")
    # float64 from here on, as in the reference (pyloudnorm's gain is a float64 scalar, soxr and resampy
    # keep the dtype): the band above 22.05 kHz holds only resampling residue at -75..-80 dB of the window
    # peak, where float32 rounding moved the dB mel by up to 4.7 dB and the embeddings by 4 % (measured).
    x = stable_audio_metrics_peak_normalize(x)
    x = soxr.resample(x, sample_rate, eval_rate)
    left = x if x.ndim == 1 else x[:, 0]
    right = left if x.ndim == 1 or x.shape[1] == 1 else x[:, 1]
    if right is left or np.array_equal(left, right):  # mono or dual mono: resampled once, used for both
        mono = openl3_resample(left, eval_rate).astype(np.float32)
        return np.stack([mono, mono])
    return np.stack(_resample_pair(left, right, eval_rate)).astype(np.float32)


def _resample_pair(left: np.ndarray, right: np.ndarray, sr: int) -> list[np.ndarray]:
    """`openl3_resample` of the two channels, side by side in two threads: resampy's numba loop releases
    the GIL and each output sample is computed alone, so the result is bit-identical to one after the other.
    Measured on 10-s 44.1 kHz stereo (2 cores, idle): 0.78 s one after the other, 0.31-0.40 s side by side."""
    if (os.cpu_count() or 1) < 2:
        return [openl3_resample(left, sr), openl3_resample(right, sr)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(openl3_resample, (left, right), (sr, sr)))


class OpenL3Backbone(AudioBackbone):
    """OpenL3 mel256 / env / 512 on 48 kHz audio, both channels, 1-s windows every 0.5 s."""

    name = "openl3-mel256-env-512"
    sample_rate = TARGET_SR
    channels: ClassVar[int] = 2
    channel_embedding_dim: ClassVar[int] = 512
    embedding_dim = 1024  # [left 512 | right 512] per window
    outputs = ("frames",)
    checkpoint_filename = OPENL3_MEL256_ENV_512.checkpoint_filename
    checkpoint_source = OPENL3_CHECKPOINT_URL + OPENL3_MEL256_ENV_512.checkpoint_filename
    hop_size: ClassVar[float] = STABLE_AUDIO_HOP_S
    center: ClassVar[bool] = True
    # windows (1 s each) per forward pass; the numbers do not depend on it (eval-mode BN)
    default_batch_size = 64
    default_cpu_batch_size = 16
    config: ClassVar[OpenL3Config] = OPENL3_MEL256_ENV_512
    what: ClassVar[str] = "OpenL3 mel256/env/512 (torchopenl3)"

    def __init__(
        self, device: str | torch.device = "cpu", batch_size: int | None = None, config: OpenL3Config | None = None
    ):
        super().__init__(device, batch_size)
        if config is not None:  # narrower convolutions for tests; official files need the default
            self.config = config

    # -- weights ---------------------------------------------------------------------
    def new_network(self) -> FoldedOpenL3AudioNet:
        """The network this backbone runs, untrained (torchopenl3's layout and keys)."""
        return FoldedOpenL3AudioNet(self.config)

    def load(self, checkpoint: str | Path | None = None) -> OpenL3Backbone:
        path = find_checkpoint(self.checkpoint_filename, checkpoint, what=self.what, source=self.checkpoint_source)
        state = openl3_state_from_official(read_state_dict(path, ("state_dict",), what=self.what))
        net = build_from_state(self.new_network, state, path, self.what)
        return self._install(net, self._official_identity(path))

    def init_random(self, seed: int = 0) -> OpenL3Backbone:
        torch.manual_seed(seed)
        return self._install(self.new_network(), self._random_identity(seed))

    def state_dict_official(self) -> OrderedDict[str, torch.Tensor]:
        """The weights under torchopenl3's key names (CPU tensors), front-end buffers included."""
        self._require_loaded()
        ours = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        return OrderedDict(openl3_state_to_official(ours))

    def save_official(self, path: str | Path) -> Path:
        """Write the bare state dict, the format of torchopenl3's `.pth.tar` files."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict_official(), path)
        return path

    # -- inference -------------------------------------------------------------------
    def _channels(self, index: int, waveform) -> list[np.ndarray]:
        x = np.asarray(waveform)
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{self.name}: clip {index} has dtype {x.dtype}; expected float samples in [-1, 1]")
        if x.ndim == 1:
            chans = [x]  # mono: the same embedding for left and right, as stable-audio-metrics fakes stereo
        elif x.ndim == 2 and x.shape[0] == 2:
            # Two equal channels (a mono source: the stable-audio input of every 16 kHz mono model, or a dual-mono
            # file) are embedded once and used for both: half the forwards, the same embeddings.
            chans = [x[0]] if np.array_equal(x[0], x[1]) else [x[0], x[1]]
        else:
            raise ValueError(
                f"{self.name}: clip {index} has shape {x.shape}; expected (samples,) mono or (2, samples) stereo"
            )
        for c in chans:
            if c.size == 0:
                raise ValueError(f"{self.name}: clip {index} is empty")
            if not np.isfinite(c).all():
                raise ValueError(f"{self.name}: clip {index} contains NaN or inf samples")
        return [np.ascontiguousarray(c, dtype=np.float32) for c in chans]

    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        """(W, 48000) windows -> (W, 512) embeddings."""
        self._require_loaded()
        out = []
        with torch.inference_mode():
            for k in range(0, len(windows), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(windows[k : k + self.batch_size])).to(self.device)
                out.append(self.model(x.unsqueeze(1)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.channel_embedding_dim), np.float32)

    def embed(self, waveforms: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        self._require_loaded()
        per_clip = [self._channels(i, w) for i, w in enumerate(waveforms)]
        frames = [[openl3_frames(c, self.hop_size, self.center) for c in chans] for chans in per_clip]
        flat = [f for clip in frames for f in clip]
        emb = self.embed_windows(np.concatenate(flat)) if flat else None
        results, at = [], 0
        for clip in frames:
            parts = []
            for f in clip:
                parts.append(emb[at : at + len(f)])
                at += len(f)
            if len(parts) == 1:
                parts = parts * self.channels
            results.append({"frames": np.concatenate(parts, axis=1).astype(np.float32)})
        return results


class OpenL3StableAudio(OpenL3Backbone):
    """The stable-audio protocol's OpenL3: the same network, fed as `src/openl3_fd.py::extract_embeddings`
    feeds it. Its input is stereo with one peak gain for both channels taken before resampling, which a
    mono `input_path` cannot express: the suite must build it with `derive_native(audio, sr)` (decoded
    native audio, (samples,) or (samples, channels)) and pass that (2, n) 48 kHz array to `embed`."""

    name = "openl3-mel256-env-512-stable-audio"
    eval_rate: ClassVar[int] = STABLE_AUDIO_EVAL_RATE
    input_path = InputPath(
        "stable-audio-openl3",
        "stable-audio-metrics src/openl3_fd.py extract_embeddings: peak -1 dBFS over both channels, soxr HQ to "
        "44.1 kHz, L / R (mono used twice), openl3's resampy kaiser_best to 48 kHz",
        "native",
        False,
        "soxr-hq",
    )

    def derive_native(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """stable_audio_metrics_openl3_input at this protocol's evaluation rate (44.1 kHz)."""
        return stable_audio_metrics_openl3_input(audio, sample_rate, self.eval_rate)
