"""The `panns` metric backbones: rate, dims, prepare and embed over `genau_core.networks.panns`
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
from genau_core.networks.panns import (
    CNN14_16K,
    Cnn14Net,
    check_panns_frontend,
    read_panns_state_dict,
)
from genau_core.networks.stft import (
    as_mono_float32,
    group_by_length,
)


class Cnn14Backbone(AudioBackbone):
    name = "panns-cnn14-16k"
    sample_rate = 16000
    embedding_dim = 2048
    outputs = ("embedding", "logits")
    checkpoint_filename = "Cnn14_16k_mAP=0.438.pth"
    checkpoint_source = "https://zenodo.org/record/3987831"
    input_path = AUDIOLDM_EVAL_INPUT
    config = CNN14_16K
    # 32 STFT frames (1 + N // hop) survive the five 2x2 average poolings.
    min_samples = 31 * CNN14_16K.hop_size

    def prepare(self, waveform: np.ndarray) -> np.ndarray:
        return audioldm_eval_prepare(waveform)

    # -- weights ---------------------------------------------------------------------
    def load(self, checkpoint: str | Path | None = None) -> "Cnn14Backbone":
        path = find_checkpoint(
            self.checkpoint_filename, checkpoint, what="PANNs Cnn14 16 kHz", source=self.checkpoint_source
        )
        state = read_panns_state_dict(path)
        check_panns_frontend(state, self.config, path)
        net = build_from_state(lambda: Cnn14Net(self.config), state, path, "PANNs Cnn14 16 kHz")
        return self._install(net, self._official_identity(path))

    def init_random(self, seed: int = 0) -> "Cnn14Backbone":
        torch.manual_seed(seed)
        net = Cnn14Net(self.config)
        return self._install(net, self._random_identity(seed))

    def state_dict_official(self) -> "OrderedDict[str, torch.Tensor]":
        """The weights under the official audioset_tagging_cnn key names (CPU tensors)."""
        self._require_loaded()
        return OrderedDict((k, v.detach().cpu().clone()) for k, v in self.model.state_dict().items())

    def save_official(self, path: str | Path) -> Path:
        """Write {"model": state_dict}, the format audioset_tagging_cnn and audioldm_eval load."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": self.state_dict_official()}, path)
        return path

    # -- inference -------------------------------------------------------------------
    def _clips(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        clips = [as_mono_float32(w, i, self.name) for i, w in enumerate(waveforms)]
        for i, c in enumerate(clips):
            if len(c) < self.min_samples:
                raise ValueError(
                    f"{self.name}: clip {i} has {len(c)} samples; Cnn14 needs at least {self.min_samples} "
                    f"({self.min_samples / self.sample_rate:.2f} s at {self.sample_rate} Hz)"
                )
        return clips

    def embed(self, waveforms: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        self._require_loaded()
        clips = self._clips(waveforms)
        results: list[dict[str, np.ndarray] | None] = [None] * len(clips)
        with torch.inference_mode():
            for batch in group_by_length(clips, self.batch_size):
                x = torch.from_numpy(np.stack([clips[i] for i in batch])).to(self.device)
                embedding, logits = self.model(x)
                embedding = embedding.cpu().numpy()
                logits = logits.cpu().numpy()
                for j, i in enumerate(batch):
                    results[i] = {"embedding": embedding[j].copy(), "logits": logits[j].copy()}
        return results

    def log_mel(self, waveform: np.ndarray) -> np.ndarray:
        """(frames, mel_bins) float32 dB log-mel of one clip, the input of bn0."""
        self._require_loaded()
        x = torch.from_numpy(as_mono_float32(waveform, 0, self.name)[None]).to(self.device)
        with torch.inference_mode():
            return self.model.log_mel(x)[0, 0].cpu().numpy()
