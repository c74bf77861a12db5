"""One small interface per embedding network (after fadtk's ModelLoader).

A backbone knows its name, sample rate and output dimensions, how to load its official
checkpoint (published key layout) and how to embed a batch of mono float32 waveforms that
are already at `sample_rate`. Decoding, resampling and caching are done centrally
(bench.audio, bench.metrics.cache), never inside a backbone; the backbone only names how its
reference tool reads a file (`input_path`: channels, mean removal, resampler), which the suite
follows (bench.audio.derive_input).

Weights are labelled honestly: `weights` is "official" only when an official checkpoint
file was loaded; "random" (fixed seed) or "tiny-trained" otherwise, and results computed
with such weights say so everywhere they appear.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch

from bench.audio import PLAIN_INPUT, InputPath
from bench.errors import UsageError


@dataclass(frozen=True)
class BackboneIdentity:
    name: str
    sample_rate: int
    checkpoint_id: str  # "sha256:<hex>" of the loaded file, or "random:seed=<n>"
    weights: str  # "official" | "random" | "tiny-trained"
    source: str  # file path, hub id, or "in-process"

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class AudioBackbone(ABC):
    name: ClassVar[str]
    sample_rate: ClassVar[int]
    embedding_dim: ClassVar[int]
    # What `embed` returns per clip: e.g. ("embedding", "logits") or ("frames",).
    outputs: ClassVar[tuple[str, ...]] = ("embedding",)
    # Official checkpoint file name and where users get it (shown when it is missing).
    checkpoint_filename: ClassVar[str] = ""
    checkpoint_source: ClassVar[str] = ""

    # How the reference tool turns a file into this network's input (channels, mean removal, and
    # the resampler that scoring's default "reference" resampler means for this backbone).
    input_path: ClassVar[InputPath] = PLAIN_INPUT

    # Clips (or examples) per forward pass unless the caller chooses.
    default_batch_size: ClassVar[int] = 8
    # On CPU, 4 clips of 10 s per pass run as fast per clip as 8 or 16 (measured: Cnn14 84.6 vs
    # 82.9-86.7 ms, LAION-CLAP 106 vs 108, MS-CLAP 2023 55.0 vs 55.2) with half the activation
    # memory. None: the same as on an accelerator.
    default_cpu_batch_size: ClassVar[int | None] = 4

    def __init__(self, device: str | torch.device = "cpu", batch_size: int | None = None):
        try:
            self.device = torch.device(device)
        except RuntimeError as e:  # torch's message for a misspelt device ("Expected one of cpu, cuda, ...")
            raise UsageError(
                f"{self.name}: device {device!r} is not a device name ({e}); use cpu, cuda, cuda:N or mps"
            ) from None
        if batch_size is None:
            on_cpu = self.device.type == "cpu" and self.default_cpu_batch_size is not None
            batch_size = self.default_cpu_batch_size if on_cpu else self.default_batch_size
        self.batch_size = batch_size
        if self.batch_size < 1:
            raise ValueError(f"{self.name}: batch_size must be >= 1, got {self.batch_size}")
        self.model: torch.nn.Module | None = None
        self.identity: BackboneIdentity | None = None
        self.kernels = "pytorch-default"  # set by _install (see _cpu_kernels)

    # -- weights ---------------------------------------------------------------------
    @abstractmethod
    def load(self, checkpoint: str | Path | None = None) -> "AudioBackbone":
        """Load the official checkpoint (path, or found in the checkpoint dirs). Returns self."""

    @abstractmethod
    def init_random(self, seed: int = 0) -> "AudioBackbone":
        """Build the full architecture with fixed-seed random weights (tests, demo). Returns self."""

    # -- inference -------------------------------------------------------------------
    def prepare(self, waveform: np.ndarray) -> np.ndarray:
        """Per-clip conditioning that is part of the metric's definition (applied by the suite
        after central resampling, before `embed`). Identity unless a backbone overrides it."""
        return waveform

    @abstractmethod
    def embed(self, waveforms: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """One dict per clip with the keys in `outputs` (float32 numpy arrays)."""

    @property
    def checkpoint_id(self) -> str:
        self._require_loaded()
        return self.identity.checkpoint_id

    def _official_identity(self, path: Path) -> BackboneIdentity:
        from bench.checkpoints import sha256_file

        return BackboneIdentity(self.name, self.sample_rate, f"sha256:{sha256_file(path)}", "official", str(path))

    def _random_identity(self, seed: int) -> BackboneIdentity:
        return BackboneIdentity(self.name, self.sample_rate, f"random:seed={seed}", "random", "in-process")

    def _install(self, net: torch.nn.Module, identity: BackboneIdentity):
        """Put the network in eval mode, float32, on the device, and record where it came from.
        On CPU its Linear / Conv2d layers get the faster float32 kernels (`_cpu_kernels`)."""
        self.model = net.to(device=self.device, dtype=torch.float32).eval()
        if self.device.type == "cpu":
            from bench.metrics.backbones._cpu_kernels import optimize_for_cpu_inference

            self.kernels = optimize_for_cpu_inference(self.model)
        self.identity = identity
        return self

    def _require_loaded(self) -> None:
        if self.model is None or self.identity is None:
            raise RuntimeError(f"backbone {self.name}: call load(checkpoint) or init_random(seed) first")


# audioldm_eval `datasets/load_mel.py` `WaveDataset.read_from_file` (PyPI 0.0.3, GitHub main, and the
# copy vendored in snap-research/GenAU that the paper's numbers come from): torchaudio.load, keep
# audio[0:1] (the first channel of a stereo file), subtract its mean over the whole file, then
# torchaudio.functional.resample with its defaults; `pad_short_audio` follows (audioldm_eval_prepare).
# No crop: a file longer than 10 s is embedded whole. The FAD path of GitHub main / GenAU reads files
# through the same WaveDataset (PyPI 0.0.3's FAD read int16 + resampy instead: docs/metrics.md).
AUDIOLDM_EVAL_INPUT = InputPath(
    "audioldm_eval",
    "audioldm_eval datasets/load_mel.py WaveDataset.read_from_file",
    "first",
    True,
    "torchaudio-functional",
)
# laion_clap `hook.py` `get_audio_embedding_from_filelist`: librosa.load(path, sr=48000) (librosa's
# to_mono average, res_type soxr_hq since librosa 0.10; laion_clap pins no librosa), then the int16
# round trip and the 10 s window inside the backbone.
LIBROSA_LOAD_INPUT = InputPath(
    "librosa-load",
    "laion_clap hook.py get_audio_embedding_from_filelist: librosa.load(path, sr=48000)",
    "mean",
    False,
    "librosa-soxr-hq",
)
# msclap `CLAPWrapper.py` `read_audio` + `load_audio_into_tensor`: torchaudio.load, transforms.Resample
# (sr, 44100) with its defaults, then reshape(-1) (a stereo file becomes channel 0 followed by channel 1)
# before the repeat / crop to the window inside the backbone.
MSCLAP_INPUT = InputPath(
    "msclap", "msclap CLAPWrapper.py read_audio + load_audio_into_tensor", "concatenate", False, "torchaudio-transforms"
)


def audioldm_eval_prepare(waveform: np.ndarray, min_samples: int = 32_000) -> np.ndarray:
    """audioldm_eval's `pad_short_audio` for PANNs / VGGish: zero-pad at the end to at least 2 s at
    16 kHz. (Its mean removal comes before resampling: AUDIOLDM_EVAL_INPUT.) Part of FD / IS / KL / FAD."""
    x = np.asarray(waveform, dtype=np.float32)
    if len(x) < min_samples:
        x = np.concatenate([x, np.zeros(min_samples - len(x), np.float32)])
    return x


class TextAudioBackbone(AudioBackbone):
    """A contrastive model (CLAP) that also embeds text into the audio embedding space."""

    # Text is cheap per item and benefits from large batches (measured 1.7x from 4 to 16).
    text_batch_size: int = 32

    @abstractmethod
    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """(N, embedding_dim) float32 text embeddings (not necessarily normalised)."""
