"""What the two CLAP families (LAION-CLAP, MS-CLAP) do alike: construction checks, random
initialisation, and batched audio embedding of clips fitted to the network's input length."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from bench.metrics.backbones.base import TextAudioBackbone
from genau_core.networks.stft import as_mono_float32


class ClapBackbone(TextAudioBackbone):
    """A text-audio backbone whose concrete classes each fix one `default_config`."""

    outputs: ClassVar[tuple[str, ...]] = ("embedding",)
    default_config: ClassVar[Any]

    def __init__(self, device: str | torch.device, *, config: Any, batch_size: int | None, allow_pickle: bool):
        super().__init__(device, batch_size)
        if not hasattr(type(self), "default_config"):
            raise TypeError(f"use one of {type(self).__name__}'s subclasses, not {type(self).__name__} itself")
        self.config = config or self.default_config
        self.allow_pickle = allow_pickle

    @abstractmethod
    def build_network(self) -> nn.Module:
        """The architecture of `self.config` (parameters initialised by PyTorch's defaults)."""

    @abstractmethod
    def fit_clip(self, clip: np.ndarray) -> np.ndarray:
        """One mono clip cropped / padded, deterministically, to the network's input length."""

    def init_random(self, seed: int = 0):
        torch.manual_seed(seed)
        return self._install(self.build_network(), self._random_identity(seed))

    def model_input(self, waveform: np.ndarray, index: int = 0) -> np.ndarray:
        """The waveform the network sees for one clip."""
        return self.fit_clip(as_mono_float32(waveform, index, self.name))

    def embed(self, waveforms: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        self._require_loaded()
        # Validate every clip first; fit (pad / crop) one batch at a time to bound memory.
        clips = [as_mono_float32(w, i, self.name) for i, w in enumerate(waveforms)]
        out: list[dict[str, np.ndarray]] = []
        with torch.inference_mode():
            for k in range(0, len(clips), self.batch_size):
                batch = np.stack([self.fit_clip(c) for c in clips[k : k + self.batch_size]])
                emb = self.model.embed_audio(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()
                out.extend({"embedding": e.copy()} for e in emb)
        return out

    def log_mel(self, waveform: np.ndarray) -> np.ndarray:
        """(frames, n_mels) dB log-mel of one fitted clip, the input of the audio encoder's bn0."""
        self._require_loaded()
        x = torch.from_numpy(self.model_input(waveform)[None]).to(self.device)
        with torch.inference_mode():
            return self.model.log_mel(x)[0, 0].float().cpu().numpy()
