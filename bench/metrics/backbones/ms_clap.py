"""The `ms_clap` metric backbones: rate, dims, prepare and embed over `genau_core.networks.ms_clap`
(the network, its configurations and official key maps live there; its docstring says how the reference computes)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch

from bench.checkpoints import find_checkpoint
from bench.metrics.backbones._clap_common import ClapBackbone
from bench.metrics.backbones.base import MSCLAP_INPUT
from genau_core.checkpoint_io import (
    build_on_meta,
    materialize,
    read_state_dict,
    state_shapes,
)
from genau_core.networks.ms_clap import (
    MS_CLAP_2022,
    MS_CLAP_2023,
    MsClapConfig,
    MsClapNet,
    convert_ms_clap_state_dict,
    fit_to_duration,
    load_text_tokenizer,
    prepare_tokenizer,
    save_ms_clap_checkpoint,
    to_ms_clap_state_dict,
)
from genau_core.networks.stft import FRONTEND_TOLERANCE
from genau_core.tokenizers import batches_by_length, check_texts, trim_right_padding


class MsClapBackbone(ClapBackbone):
    """Shared implementation; use `MsClap2022` or `MsClap2023`."""

    sample_rate: ClassVar[int] = 44100
    embedding_dim: ClassVar[int] = 1024
    checkpoint_source: ClassVar[str] = "https://huggingface.co/microsoft/msclap"
    input_path = MSCLAP_INPUT
    default_config: ClassVar[MsClapConfig]

    def __init__(
        self,
        device: str | torch.device = "cpu",
        *,
        config: MsClapConfig | None = None,
        tokenizer=None,
        batch_size: int | None = None,
        allow_pickle: bool = False,
    ):
        super().__init__(device, config=config, batch_size=batch_size, allow_pickle=allow_pickle)
        if type(self.config.audio) is not type(self.default_config.audio) or type(self.config.text) is not type(
            self.default_config.text
        ):
            raise ValueError(f"{self.name}: configuration has the wrong audio or text encoder type")
        if self.config.sample_rate != self.sample_rate or self.config.d_proj != self.embedding_dim:
            raise ValueError(
                f"{self.name}: configuration must keep {self.sample_rate} Hz and {self.embedding_dim}-d embeddings"
            )
        self._tokenizer = None if tokenizer is None else prepare_tokenizer(tokenizer, self.config)
        self.frontend_deviation: dict[str, float] = {}

    def settings(self) -> dict:
        c = self.config
        return {
            "checkpoint_filename": self.checkpoint_filename,
            "tokenizer": c.tokenizer,
            "duration_s": c.duration_s,
            "long_clips": "first duration_s seconds kept (upstream: random crop)",
            "short_clips": "repeat ceil(target/n) times, cut",
            "frontend_sample_rate": c.frontend_sample_rate,
            "frontend_deviation": dict(self.frontend_deviation),
            "text_len": c.text_len,
            "text_truncation": False,
        }

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_text_tokenizer(self.config)
        return self._tokenizer

    # -- weights ----------------------------------------------------------------------
    def load(self, checkpoint: str | Path | None = None) -> "MsClapBackbone":
        what = f"MS-CLAP {self.name}"
        path = find_checkpoint(self.checkpoint_filename, checkpoint, what=what, source=self.checkpoint_source)
        state = read_state_dict(path, ("model",), what=what, allow_pickle=self.allow_pickle)
        net = build_on_meta(self.build_network)  # built once: its shapes check the conversion
        converted, deviation = convert_ms_clap_state_dict(
            state, self.config, source=str(path), expected=state_shapes(net)
        )
        bad = {k: v for k, v in deviation.items() if not v <= FRONTEND_TOLERANCE}
        if bad:
            warnings.warn(
                f"{path}: stored front end differs from {self.name}'s configuration "
                f"({self.config.frontend_sample_rate} Hz mel matrix, window {self.config.window_size}, "
                f"hop {self.config.hop_size}): max deviation {bad}; using the stored tensors as msclap does",
                stacklevel=2,
            )
        materialize(net, converted, path, what)
        self.frontend_deviation = deviation
        return self._install(net, self._official_identity(path))

    def build_network(self) -> MsClapNet:
        return MsClapNet(self.config)

    def init_random(self, seed: int = 0) -> "MsClapBackbone":
        self.frontend_deviation = {}
        return super().init_random(seed)

    def state_dict_official(self) -> dict[str, torch.Tensor]:
        self._require_loaded()
        return to_ms_clap_state_dict(self.model)

    def save_official(self, path: str | Path) -> Path:
        self._require_loaded()
        return save_ms_clap_checkpoint(self.model, path)

    # -- inference --------------------------------------------------------------------
    def fit_clip(self, clip: np.ndarray) -> np.ndarray:
        return fit_to_duration(clip, self.config.clip_samples)

    def tokenize(self, texts: Sequence[str]) -> list[dict[str, list[int]]]:
        """One encoding per text, as msclap's `preprocess_text` makes it (no truncation)."""
        texts = check_texts(texts, self.name)
        tok = self.tokenizer
        keys = ["input_ids", "attention_mask"]
        if not self.config.is_gpt2:
            keys.insert(1, "token_type_ids")
        out = []
        for t in texts:
            if self.config.is_gpt2:
                t = t + " <|endoftext|>"
            enc = tok(
                t, add_special_tokens=True, max_length=self.config.text_len, padding="max_length", truncation=False
            )
            out.append({k: list(enc[k]) for k in keys})
        limit = self.config.text.n_positions if self.config.is_gpt2 else self.config.text.max_position_embeddings
        for i, e in enumerate(out):
            if len(e["input_ids"]) > limit:
                raise ValueError(
                    f"{self.name}: text {i} has {len(e['input_ids'])} tokens, more than the {limit} positions of "
                    "the text tower (msclap does not truncate texts)"
                )
        return out

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        self._require_loaded()
        encs = self.tokenize(texts)
        result = np.zeros((len(encs), self.embedding_dim), dtype=np.float32)
        by_len: dict[int, list[int]] = {}
        for i, e in enumerate(encs):
            by_len.setdefault(len(e["input_ids"]), []).append(i)
        with torch.inference_mode():
            for idxs in by_len.values():
                lengths = [sum(encs[i]["attention_mask"]) for i in idxs]
                for positions in batches_by_length(lengths, self.text_batch_size):
                    batch = [idxs[p] for p in positions]
                    enc = trim_right_padding(
                        {key: torch.tensor([encs[i][key] for i in batch], device=self.device) for key in encs[batch[0]]}
                    )
                    result[batch] = self.model.embed_text(enc).float().cpu().numpy()
        return result


class MsClap2022(MsClapBackbone):
    """CNN14 + BERT, 5 s clips (the MS-CLAP used by Make-An-Audio)."""

    name = "ms-clap-2022"
    checkpoint_filename = "CLAP_weights_2022.pth"
    default_config = MS_CLAP_2022


class MsClap2023(MsClapBackbone):
    """HTS-AT + GPT-2, 7 s clips."""

    name = "ms-clap-2023"
    checkpoint_filename = "CLAP_weights_2023.pth"
    default_config = MS_CLAP_2023
