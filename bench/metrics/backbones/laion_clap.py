"""The `laion_clap` metric backbones: rate, dims, prepare and embed over `genau_core.networks.laion_clap`
(the network, its configurations and official key maps live there; its docstring says how the reference computes)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch

from bench.checkpoints import find_checkpoint
from bench.metrics.backbones._clap_common import ClapBackbone
from bench.metrics.backbones.base import LIBROSA_LOAD_INPUT
from genau_core.checkpoint_io import (
    build_on_meta,
    materialize,
    read_state_dict,
    state_shapes,
)
from genau_core.networks.laion_clap import (
    HTSAT_BASE,
    HTSAT_TINY,
    LaionClapConfig,
    LaionClapNet,
    convert_laion_clap_state_dict,
    load_roberta_tokenizer,
    prepare_audio,
    save_laion_clap_checkpoint,
    to_laion_clap_state_dict,
)
from genau_core.tokenizers import batches_by_length, check_texts, trim_right_padding


class LaionClapBackbone(ClapBackbone):
    """Shared implementation; use `LaionClapHtsatBase` or `LaionClapHtsatTiny`."""

    sample_rate: ClassVar[int] = 48000
    embedding_dim: ClassVar[int] = 512
    checkpoint_source: ClassVar[str] = "https://huggingface.co/lukewys/laion_clap"
    input_path = LIBROSA_LOAD_INPUT
    default_config: ClassVar[LaionClapConfig]

    def __init__(
        self,
        device: str | torch.device = "cpu",
        *,
        config: LaionClapConfig | None = None,
        checkpoint_filename: str | None = None,
        tokenizer=None,
        batch_size: int | None = None,
        allow_pickle: bool = False,
    ):
        super().__init__(device, config=config, batch_size=batch_size, allow_pickle=allow_pickle)
        if self.config.sample_rate != self.sample_rate or self.config.joint_embed_dim != self.embedding_dim:
            raise ValueError(
                f"{self.name}: configuration must keep {self.sample_rate} Hz and {self.embedding_dim}-d embeddings"
            )
        # The checkpoint file name is a recorded setting (several LAION files share an architecture).
        self.checkpoint_filename = checkpoint_filename or type(self).checkpoint_filename
        self._tokenizer = tokenizer

    # -- settings ---------------------------------------------------------------------
    def settings(self) -> dict:
        """What, besides the weights, decides the numbers (for result records)."""
        c = self.config
        return {
            "checkpoint_filename": self.checkpoint_filename,
            "tokenizer": c.tokenizer if self._tokenizer is None else type(self._tokenizer).__name__,
            "clip_samples": c.clip_samples,
            "long_clips": "first clip_samples kept (upstream: random crop)",
            "short_clips": "repeatpad",
            "int16_round_trip": True,
            "text_max_length": c.text_max_length,
        }

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_roberta_tokenizer(self.config.tokenizer)
        return self._tokenizer

    # -- weights ----------------------------------------------------------------------
    def build_network(self) -> LaionClapNet:
        return LaionClapNet(self.config)

    def load(self, checkpoint: str | Path | None = None) -> "LaionClapBackbone":
        what = f"LAION-CLAP {self.name}"
        path = find_checkpoint(self.checkpoint_filename, checkpoint, what=what, source=self.checkpoint_source)
        state = read_state_dict(path, ("state_dict",), what=what, allow_pickle=self.allow_pickle)
        net = build_on_meta(self.build_network)  # built once: its shapes check the conversion
        converted = convert_laion_clap_state_dict(state, self.config, source=str(path), expected=state_shapes(net))
        return self._install(materialize(net, converted, path, what), self._official_identity(path))

    def state_dict_official(self) -> dict[str, torch.Tensor]:
        self._require_loaded()
        return to_laion_clap_state_dict(self.model)

    def save_official(self, path: str | Path) -> Path:
        self._require_loaded()
        return save_laion_clap_checkpoint(self.model, path)

    # -- inference --------------------------------------------------------------------
    def fit_clip(self, clip: np.ndarray) -> np.ndarray:
        return prepare_audio(clip, self.config.clip_samples)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        texts = check_texts(texts, self.name)
        enc = self.tokenizer(
            texts, padding="max_length", truncation=True, max_length=self.config.text_max_length, return_tensors="pt"
        )
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        self._require_loaded()
        texts = check_texts(texts, self.name)
        result = np.zeros((len(texts), self.embedding_dim), dtype=np.float32)
        if not texts:
            return result
        enc = self.tokenize(texts)
        with torch.inference_mode():
            for batch in batches_by_length(enc["attention_mask"].sum(dim=1).tolist(), self.text_batch_size):
                part = trim_right_padding({k: v[batch] for k, v in enc.items()})
                emb = self.model.embed_text(part["input_ids"].to(self.device), part["attention_mask"].to(self.device))
                result[batch] = emb.float().cpu().numpy()
        return result


class LaionClapHtsatBase(LaionClapBackbone):
    """HTSAT-base + RoBERTa, the checkpoint AudioLDM 2 uses (CLAP_LAION of the protocol)."""

    name = "laion-clap-htsat-base"
    checkpoint_filename = "music_speech_audioset_epoch_15_esc_89.98.pt"
    default_config = HTSAT_BASE


class LaionClapHtsatTiny(LaionClapBackbone):
    """HTSAT-tiny + RoBERTa: `630k-audioset-best.pt` by default; GenAu ships the same
    architecture as `clap_htsat_tiny.pt` (pass checkpoint_filename=...)."""

    name = "laion-clap-htsat-tiny"
    checkpoint_filename = "630k-audioset-best.pt"
    default_config = HTSAT_TINY
