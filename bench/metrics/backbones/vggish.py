"""The `vggish` metric backbones: rate, dims, prepare and embed over `genau_core.networks.vggish`
(the network, its configurations and official key maps live there; its docstring says how the reference computes)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from bench.checkpoints import find_checkpoint
from bench.metrics.backbones.base import AUDIOLDM_EVAL_INPUT, AudioBackbone, audioldm_eval_prepare
from genau_core.checkpoint_io import build_from_state
from genau_core.networks.stft import as_mono_float32
from genau_core.networks.vggish import (
    VGGISH_FRONTEND,
    VGGishNet,
    read_vggish_state_dict,
    vggish_examples,
)


class VGGishBackbone(AudioBackbone):
    name = "vggish"
    sample_rate = 16000
    embedding_dim = 128
    outputs = ("frames",)
    checkpoint_filename = "vggish-10086976.pth"
    checkpoint_source = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
    frontend = VGGISH_FRONTEND
    input_path = AUDIOLDM_EVAL_INPUT  # GitHub main / GenAU's FrechetAudioDistance reads through WaveDataset
    default_batch_size = 64  # 0.96 s examples, not clips
    default_cpu_batch_size = None  # 32 examples per pass are 6% slower than 64 on CPU

    def prepare(self, waveform: np.ndarray) -> np.ndarray:
        return audioldm_eval_prepare(waveform)

    # -- weights ---------------------------------------------------------------------
    def load(self, checkpoint: str | Path | None = None) -> "VGGishBackbone":
        path = find_checkpoint(self.checkpoint_filename, checkpoint, what="VGGish", source=self.checkpoint_source)
        state = read_vggish_state_dict(path)
        net = build_from_state(VGGishNet, state, path, "torchvggish VGGish")
        return self._install(net, self._official_identity(path))

    def init_random(self, seed: int = 0) -> "VGGishBackbone":
        torch.manual_seed(seed)
        net = VGGishNet()  # PyTorch default initialisation, drawn under the seed
        return self._install(net, self._random_identity(seed))

    def state_dict_official(self) -> "OrderedDict[str, torch.Tensor]":
        """The weights under torchvggish's key names (CPU tensors)."""
        self._require_loaded()
        return OrderedDict((k, v.detach().cpu().clone()) for k, v in self.model.state_dict().items())

    def save_official(self, path: str | Path) -> Path:
        """Write a bare state dict, the format of torchvggish's vggish-10086976.pth."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict_official(), path)
        return path

    # -- inference -------------------------------------------------------------------
    def embed(self, waveforms: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        self._require_loaded()
        clips = [as_mono_float32(w, i, self.name) for i, w in enumerate(waveforms)]
        for i, c in enumerate(clips):
            if len(c) < self.frontend.min_samples:
                raise ValueError(
                    f"{self.name}: clip {i} has {len(c)} samples; VGGish needs at least "
                    f"{self.frontend.min_samples} ({self.frontend.min_samples / self.sample_rate:.3f} s at "
                    f"{self.sample_rate} Hz) for one {self.frontend.example_window_seconds} s example"
                )
        per_clip = [vggish_examples(c, self.frontend) for c in clips]
        counts = [len(e) for e in per_clip]
        outputs = np.zeros((sum(counts), self.embedding_dim), dtype=np.float32)
        if per_clip:
            examples = np.concatenate(per_clip, axis=0)
            with torch.inference_mode():
                for start in range(0, len(examples), self.batch_size):
                    x = torch.from_numpy(examples[start : start + self.batch_size]).to(self.device)
                    outputs[start : start + len(x)] = self.model(x).cpu().numpy()
        bounds = np.cumsum([0] + counts)
        return [{"frames": outputs[bounds[k] : bounds[k + 1]].copy()} for k in range(len(per_clip))]
