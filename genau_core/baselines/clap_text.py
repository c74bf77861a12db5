"""The MS-CLAP 2022 text branch as Make-An-Audio (1 and 2) conditions on it.

Same network as our MS-CLAP 2022 backbone's text tower (`genau_core.networks.ms_clap`:
`BertTextConfig` -> transformers `BertModel` with pooler, `MsProjection`), used differently:
Make-An-Audio's `FrozenCLAPEmbedder.encode` tokenises with bert-base-uncased
(`truncation=True, max_length=77, padding="max_length"`), runs BERT on the input ids alone (no
attention mask, so the padding tokens are attended to, and token type ids zero) and projects
*every* token of the last hidden layer: (B, 77, d_proj). The CLAP `[CLS]` pooling is not used.

The weights come from the diffusion checkpoint (`cond_stage_model.caption_encoder.base.*` and
`.projection.*`; msclap's key layout under `caption_encoder.`), not from CLAP_weights_2022.pth:
the official embedder collects that file's `caption_encoder` tensors but never loads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import nn

from genau_core.baselines._state import CheckpointMappingError, load_strict
from genau_core.networks.ms_clap import BertTextConfig, MsProjection


@dataclass(frozen=True)
class ClapTextConfig:
    bert: BertTextConfig = field(default_factory=BertTextConfig)
    d_proj: int = 1024
    max_length: int = 77
    tokenizer: str = "bert-base-uncased"


class ClapTextEncoder(nn.Module):
    """input ids (B, max_length) -> per-token CLAP text embeddings (B, max_length, d_proj)."""

    def __init__(self, cfg: ClapTextConfig):
        super().__init__()
        from transformers import BertModel

        self.config = cfg
        self.bert = BertModel(cfg.bert.hf_config(), add_pooling_layer=True)
        self.projection = MsProjection(cfg.bert.hidden_size, cfg.d_proj)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.projection(self.bert(input_ids=input_ids).last_hidden_state)

    def tokenize(self, tokenizer, texts: list[str], device) -> torch.Tensor:
        enc = tokenizer(
            texts, truncation=True, max_length=self.config.max_length, padding="max_length", return_tensors="pt"
        )
        return enc["input_ids"].to(device)


def map_clap_text_state_dict(
    sd: Mapping[str, torch.Tensor], encoder: ClapTextEncoder, *, what: str
) -> dict[str, torch.Tensor]:
    """`caption_encoder.{base,projection}.*` (the embedder prefix stripped) -> `ClapTextEncoder`.

    Older transformers saved `embeddings.position_ids` (0..n-1) and, in some versions,
    `embeddings.token_type_ids` (zeros) with BERT; they are checked and dropped."""
    own = set(encoder.state_dict())
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in sd.items():
        if key.startswith("caption_encoder.projection."):
            out["projection." + key[len("caption_encoder.projection.") :]] = value
        elif key.startswith("caption_encoder.base."):
            rest = key[len("caption_encoder.base.") :]
            if "bert." + rest in own:
                out["bert." + rest] = value
            elif rest == "embeddings.position_ids":
                if not torch.equal(value.reshape(-1).long(), torch.arange(value.numel())):
                    raise CheckpointMappingError(f"{what}: {key} is not 0..{value.numel() - 1}")
            elif rest == "embeddings.token_type_ids":
                if value.any():
                    raise CheckpointMappingError(f"{what}: {key} is not all zeros")
            else:
                unknown.append(key)
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointMappingError(f"{what}: {len(unknown)} keys outside the CLAP text encoder (e.g. {unknown[:5]})")
    return out


def load_clap_text(encoder: ClapTextEncoder, sd: Mapping[str, torch.Tensor], *, what: str) -> None:
    load_strict(encoder, map_clap_text_state_dict(sd, encoder, what=what), what)
