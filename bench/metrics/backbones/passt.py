"""PaSST-S (`passt-s-f128-p16-s10-ap.476-swa.pt`, the checkpoint hear21passt loads) behind the backbone
interface, with the windowing of each protocol that uses it.

The network and its front end live in `genau_core.networks.passt` (32 kHz mono, 128 Kaldi mels,
patch 16 / stride 10, 527 AudioSet logits and the 768-d embedding `(cls + dist) / 2`). One forward
pass takes at most 10.05 s (321600 samples: the time position embedding has 99 columns) and at
least 4801 samples (one 16-frame patch column). How longer or shorter clips become windows is the
protocol's, so each protocol has its own backbone name (the name is part of the embedding-cache key):

- `passt-s-ap476` - one window per clip, as `PasstBasicWrapper.forward` (clips over 10.05 s are an error).
- `passt-s-ap476-stable-audio` - Stability-AI/stable-audio-metrics `src/passt_kld.py::return_probabilities`:
  librosa.load at 32 kHz mono (`input_path`), then peak-normalise to -1 dBFS (`pyln.normalize.peak(audio, -1.0)`),
  10-s windows every 5 s (`stable_audio_metrics_windows`), the mean of the windows' logits
  (collect="mean"); KL then takes softmax of that mean. The embedding is the windows' mean too
  (stable-audio-metrics uses no PaSST embedding).
- `passt-s-ap476-av-benchmark` - hkchengrex/av-benchmark `av_bench/extract.py::extract`: the clip cut to
  the run's `audio_length` (its dataset, `AudioDataset.read_from_file`), then cut or zero-padded to
  exactly 320000 samples (`av_benchmark_window`), one pass in mode "all": logits = [:527] (KL, IS),
  embedding = [527:] (FD). av-benchmark's mono mixdown and DC removal happen before its torchaudio
  resampling, on the native audio: `input_path` (AV_BENCHMARK_INPUT), applied by the suite.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from bench.audio import InputPath
from bench.checkpoints import find_checkpoint
from bench.metrics.backbones.base import AudioBackbone
from genau_core.checkpoint_io import CheckpointFormatError, build_from_state, read_state_dict
from genau_core.networks.passt import (
    PASST_CHECKPOINT_FILENAME,
    PASST_CHECKPOINT_URL,
    PASST_S_SWA_P16_128_AP476,
    PasstAudio,
    PasstConfig,
    passt_state_from_official,
    passt_state_to_official,
)
from genau_core.networks.stft import as_mono_float32, group_by_length

SAMPLE_RATE = 32000
WINDOW_SAMPLES = 10 * SAMPLE_RATE  # the 10-s window every protocol feeds PaSST

# stable-audio-metrics src/passt_kld.py return_probabilities: librosa.load(path, sr=32000, mono=True)
# (channel mean, then librosa's soxr HQ + fix_length); the -1 dBFS peak gain comes after, in `prepare`.
STABLE_AUDIO_PASST_INPUT = InputPath(
    "librosa-load",
    "stable-audio-metrics src/passt_kld.py return_probabilities: librosa.load(path, sr=32000)",
    "mean",
    False,
    "librosa-soxr-hq",
)
# av-benchmark av_bench/data/audio_dataset.py AudioDataset.read_from_file: torchaudio.load, mean over
# channels, minus the clip's mean, torchaudio.transforms.Resample(sr, 32000) with its defaults.
AV_BENCHMARK_INPUT = InputPath(
    "av-benchmark",
    "av-benchmark av_bench/data/audio_dataset.py AudioDataset.read_from_file",
    "mean",
    True,
    "torchaudio-transforms",
)


def stable_audio_metrics_peak_normalize(audio: np.ndarray, target_db: float = -1.0) -> np.ndarray:
    """pyloudnorm's `normalize.peak(audio, target_db)` as stable-audio-metrics calls it (PaSST KL and
    OpenL3 FD): scale so the largest |sample| (over all channels) is 10^(target_db / 20). A silent clip
    has no peak; the reference divides by zero (all-NaN output), we raise."""
    x = np.asarray(audio)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if not peak > 0.0:
        raise ValueError(
            "silent clip: peak normalisation to -1 dBFS is undefined (stable-audio-metrics' pyloudnorm "
            "call divides by zero and yields NaN); the clip cannot be scored under this protocol"
        )
    return (np.power(10.0, target_db / 20.0) / peak) * x


def stable_audio_metrics_windows(
    audio: np.ndarray, window_s: float = 10.0, overlap_s: float = 5.0, sr: int = SAMPLE_RATE
) -> list[np.ndarray]:
    """The analysis windows of `passt_kld.py::return_probabilities` (float32, as fed to PaSST):
    starts at 0, step = (window - overlap) = 5 s, while start < max(step, len - step); each window
    is audio[start:start + 10 s]; a window shorter than 10 s is zero-padded to 10 s when it holds more
    than 15 % of a window (1.5 s), otherwise it is fed at its own length (only a whole clip of at
    most 1.5 s can be such a window)."""
    x = np.asarray(audio)
    win = int(window_s * sr)
    step = int((window_s - overlap_s) * sr)
    windows = []
    for start in range(0, max(step, len(x) - step), step):
        w = x[start : start + win]
        if len(w) < win and len(w) > int(win * 0.15):
            padded = np.zeros(win)
            padded[: len(w)] = w
            w = padded
        windows.append(np.asarray(w, dtype=np.float32))
    return windows


def av_benchmark_window(audio: np.ndarray, audio_length: float = 10.0, sr: int = SAMPLE_RATE) -> np.ndarray:
    """av-benchmark's PaSST input: `audio[:int(sr * audio_length)]` (its AudioDataset), then
    `wav[..., :320000]` if at least 320000 samples, else zero-padded at the end to 320000."""
    x = np.asarray(audio, dtype=np.float32)[: int(sr * audio_length)]
    if len(x) >= WINDOW_SAMPLES:
        return np.ascontiguousarray(x[:WINDOW_SAMPLES])
    return np.concatenate([x, np.zeros(WINDOW_SAMPLES - len(x), np.float32)])


class PasstBackbone(AudioBackbone):
    """One window per clip (at most 10.05 s); subclasses add a protocol's windowing."""

    name = "passt-s-ap476"
    sample_rate = SAMPLE_RATE
    channels: ClassVar[int] = 1
    embedding_dim = 768
    logits_dim: ClassVar[int] = 527
    outputs = ("embedding", "logits")
    checkpoint_filename = PASST_CHECKPOINT_FILENAME
    checkpoint_source = PASST_CHECKPOINT_URL
    # a 10-s window is 20x the attention memory of a Cnn14 clip: 2 windows per pass on CPU
    default_cpu_batch_size = 2
    config: ClassVar[PasstConfig] = PASST_S_SWA_P16_128_AP476
    what: ClassVar[str] = "PaSST-S (passt-s-f128-p16-s10-ap.476-swa)"

    def __init__(
        self, device: str | torch.device = "cpu", batch_size: int | None = None, config: PasstConfig | None = None
    ):
        super().__init__(device, batch_size)
        if config is not None:  # a smaller architecture for tests; official files need the default
            self.config = config

    # -- weights ---------------------------------------------------------------------
    def load(self, checkpoint: str | Path | None = None) -> PasstBackbone:
        path = find_checkpoint(self.checkpoint_filename, checkpoint, what=self.what, source=self.checkpoint_source)
        state = read_state_dict(path, ("model",), what=self.what)
        try:
            state = passt_state_from_official(state)
        except ValueError as e:
            raise CheckpointFormatError(f"{path}: not a {self.what} checkpoint: {e}") from None
        net = build_from_state(lambda: PasstAudio(self.config), state, path, self.what)
        return self._install(net, self._official_identity(path))

    def init_random(self, seed: int = 0) -> PasstBackbone:
        torch.manual_seed(seed)
        return self._install(PasstAudio(self.config), self._random_identity(seed))

    def state_dict_official(self) -> OrderedDict[str, torch.Tensor]:
        """The weights under the released file's key names (CPU tensors)."""
        self._require_loaded()
        ours = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        return OrderedDict(passt_state_to_official(ours))

    def save_official(self, path: str | Path) -> Path:
        """Write the bare state dict, the format of `passt-s-f128-p16-s10-ap.476-swa.pt`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict_official(), path)
        return path

    # -- inference -------------------------------------------------------------------
    def windows(self, clip: np.ndarray) -> list[np.ndarray]:
        """The windows one clip is fed as (this class: the clip itself)."""
        return [clip]

    def _check_window(self, index: int, window: np.ndarray) -> None:
        lo, hi = self.config.min_samples, self.config.max_samples
        if not lo <= len(window) <= hi:
            raise ValueError(
                f"{self.name}: clip {index} gives a PaSST window of {len(window)} samples; one pass takes "
                f"{lo}-{hi} samples ({lo / self.sample_rate:.2f}-{hi / self.sample_rate:.2f} s at "
                f"{self.sample_rate} Hz){' - use a protocol with windowing for long clips' if len(window) > hi else ''}"
            )

    def forward_windows(self, windows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(logits (W, 527), embedding (W, 768)) for windows that are already checked."""
        self._require_loaded()
        logits = [None] * len(windows)
        embedding = [None] * len(windows)
        with torch.inference_mode():
            for batch in group_by_length(windows, self.batch_size):
                x = torch.from_numpy(np.stack([windows[i] for i in batch])).to(self.device)
                lg, emb = self.model(x)
                for j, i in enumerate(batch):
                    logits[i], embedding[i] = lg[j].cpu().numpy(), emb[j].cpu().numpy()
        return np.stack(logits), np.stack(embedding)

    def embed(self, waveforms: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        self._require_loaded()
        owner: list[int] = []
        windows: list[np.ndarray] = []
        for i, w in enumerate(waveforms):
            for win in self.windows(as_mono_float32(w, i, self.name)):
                self._check_window(i, win)
                owner.append(i)
                windows.append(np.ascontiguousarray(win, dtype=np.float32))
        logits, embedding = self.forward_windows(windows) if windows else (np.zeros((0, 0)), np.zeros((0, 0)))
        owner_arr = np.asarray(owner)
        results = []
        for i in range(len(waveforms)):
            rows = owner_arr == i
            # collect="mean": the windows' mean (one window: itself), float32 like the reference
            results.append(
                {
                    "embedding": embedding[rows].mean(axis=0, dtype=np.float32),
                    "logits": logits[rows].mean(axis=0, dtype=np.float32),
                }
            )
        return results


class PasstStableAudio(PasstBackbone):
    """stable-audio-metrics: peak -1 dBFS, 10-s windows every 5 s, mean logits (see module doc)."""

    name = "passt-s-ap476-stable-audio"
    input_path = STABLE_AUDIO_PASST_INPUT

    def prepare(self, waveform: np.ndarray) -> np.ndarray:
        return stable_audio_metrics_peak_normalize(waveform).astype(np.float32)

    def windows(self, clip: np.ndarray) -> list[np.ndarray]:
        return stable_audio_metrics_windows(clip)


class PasstAvBenchmark(PasstBackbone):
    """av-benchmark: the clip cut to `audio_length` s, then cut / zero-padded to 10 s (one window)."""

    name = "passt-s-ap476-av-benchmark"
    input_path = AV_BENCHMARK_INPUT

    def __init__(
        self,
        device: str | torch.device = "cpu",
        batch_size: int | None = None,
        config: PasstConfig | None = None,
        audio_length: float = 10.0,
    ):
        super().__init__(device, batch_size, config)
        if not audio_length > 0:
            raise ValueError(f"{self.name}: audio_length must be > 0 s, got {audio_length}")
        self.audio_length = audio_length

    def windows(self, clip: np.ndarray) -> list[np.ndarray]:
        return [av_benchmark_window(clip, self.audio_length)]
