"""The networks of the genau protocol as hkchengrex/av-benchmark feeds them (its `av-benchmark` protocol).

av-benchmark (`av_bench/extract.py::extract`, `av_bench/data/audio_dataset.py::AudioDataset`) reads
every file the same way for PANNs, VGGish and LAION-CLAP: `torchaudio.load`, the mean over channels,
minus the clip's mean, `torchaudio.transforms.Resample(sr, target)` with its defaults, then
`audio[:int(target * audio_length)]` (no padding; `--audio_length`, 10 s for AudioCaps). So:

- `panns-cnn14-16k-av-benchmark`: the same Cnn14_16k network and checkpoint (its `av_bench/panns`
  copy loads `Cnn14_16k_mAP=0.438.pth`; features "2048" and "logits"), no 2 s padding;
- `vggish-av-benchmark`: torchvggish with its `_preprocess` (`waveform_to_examples`) and without the
  last ReLU ("following audioldm_eval"); frames pooled over clips (`unroll_dict(cat=True)`);
- `laion-clap-htsat-base-av-benchmark`: `music_speech_audioset_epoch_15_esc_89.98.pt` through
  `get_audio_embedding_from_data` on the tensor: no int16 round trip (that is the file-list path),
  "repeatpad" for a clip under 10 s.

MS-CLAP goes through msclap's own `get_audio_embeddings(paths)`: the genau protocol's `ms-clap-2023`.
"""

from __future__ import annotations

import numpy as np

from bench.audio import InputPath
from bench.metrics.backbones.laion_clap import LaionClapHtsatBase
from bench.metrics.backbones.panns import Cnn14Backbone
from bench.metrics.backbones.vggish import VGGishBackbone
from genau_core.networks.laion_clap import fit_to_clip

AUDIO_LENGTH_S = 10.0

# av_bench/data/audio_dataset.py AudioDataset.read_from_file: waveform.mean(dim=0), minus its mean,
# torchaudio.transforms.Resample(sample_rate, self.sr) (float64-built kernel, Hann sinc, width 6, rolloff 0.99).
AV_BENCHMARK_INPUT = InputPath(
    "av-benchmark",
    "av-benchmark av_bench/data/audio_dataset.py AudioDataset.read_from_file",
    "mean",
    True,
    "torchaudio-transforms",
)


def av_benchmark_crop(waveform: np.ndarray, sample_rate: int, audio_length: float = AUDIO_LENGTH_S) -> np.ndarray:
    """`audio[:int(self.sr * self.audio_length)]` of AudioDataset.read_from_file (no padding)."""
    return np.ascontiguousarray(np.asarray(waveform, dtype=np.float32)[: int(sample_rate * audio_length)])


class Cnn14AvBenchmark(Cnn14Backbone):
    name = "panns-cnn14-16k-av-benchmark"
    input_path = AV_BENCHMARK_INPUT

    def prepare(self, waveform: np.ndarray) -> np.ndarray:
        return av_benchmark_crop(waveform, self.sample_rate)


class VGGishAvBenchmark(VGGishBackbone):
    name = "vggish-av-benchmark"
    input_path = AV_BENCHMARK_INPUT

    def prepare(self, waveform: np.ndarray) -> np.ndarray:
        return av_benchmark_crop(waveform, self.sample_rate)


class LaionClapHtsatBaseAvBenchmark(LaionClapHtsatBase):
    name = "laion-clap-htsat-base-av-benchmark"
    input_path = AV_BENCHMARK_INPUT

    def prepare(self, waveform: np.ndarray) -> np.ndarray:
        return av_benchmark_crop(waveform, self.sample_rate)

    def fit_clip(self, clip: np.ndarray) -> np.ndarray:
        # get_audio_embedding_from_data: no int16 round trip; 'repeatpad' below 10 s
        return fit_to_clip(np.asarray(clip, dtype=np.float32), self.config.clip_samples)
