"""Text conditioning of GenAu: FLAN-T5 token states (mean-pooled) + LAION-CLAP text embedding.

The official model concatenates, per prompt, the L2-normalised CLAP text embedding (512) and
the FLAN-T5-large encoder states averaged over the tokens (1024) into one 1536-d "summary";
the FIT projects it into its context next to the timestep and the dataset-id embeddings.
Both text encoders are frozen. The unconditional branch of classifier-free guidance uses the
encodings of the empty prompt and the "unconditional" dataset id (0, which is also AudioCaps).

Pooling masks out padding, so a prompt's encoding does not depend on the other prompts of the
batch. (The official code averages over padded positions too; for a prompt encoded alone the
two are identical.) The official CLAP conditioner also swaps each prompt's embedding for the
empty-prompt one with probability 0.1 on every call, inference included; that is not
reproduced at inference here (deterministic conditioning). In training, `drop_conditions`
drops all conditions of a sample together with probability `cfg_dropout` (0.1); the official
code draws that decision once per batch.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from genau_core.genau.configs import ConditioningConfig


class TextConditioner(nn.Module):
    def __init__(self, cfg: ConditioningConfig, t5_tokenizer=None, clap_tokenizer=None):
        super().__init__()
        from transformers import ClapTextConfig, ClapTextModelWithProjection, T5Config, T5EncoderModel

        self.cfg = cfg
        self.t5 = T5EncoderModel(T5Config(**cfg.t5))
        self.clap = ClapTextModelWithProjection(ClapTextConfig(**cfg.clap_text))
        self.t5.requires_grad_(False)
        self.clap.requires_grad_(False)
        self.t5_tokenizer = t5_tokenizer
        self.clap_tokenizer = clap_tokenizer

    def train(self, mode: bool = True):
        super().train(mode)
        # frozen encoders always run in inference mode (no dropout)
        self.t5.eval()
        self.clap.eval()
        return self

    @property
    def device(self) -> torch.device:
        return next(self.t5.parameters()).device

    def _tokens(self, tokenizer, prompts: Sequence[str], max_length: int, name: str):
        if tokenizer is None:
            raise RuntimeError(f"no {name} tokenizer attached to the conditioner")
        enc = tokenizer(list(prompts), max_length=max_length, padding=True, truncation=True, return_tensors="pt")
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    @torch.no_grad()
    def encode_t5(self, prompts: Sequence[str]) -> torch.Tensor:
        ids, mask = self._tokens(self.t5_tokenizer, prompts, self.cfg.t5_max_length, "T5")
        states = self.t5(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask[..., None].to(states.dtype)
        return (states * m).sum(1) / m.sum(1).clamp(min=1.0)

    @torch.no_grad()
    def encode_clap(self, prompts: Sequence[str]) -> torch.Tensor:
        ids, mask = self._tokens(self.clap_tokenizer, prompts, self.cfg.clap_max_length, "CLAP")
        emb = self.clap(input_ids=ids, attention_mask=mask).text_embeds
        return F.normalize(emb, dim=-1)

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """(B, clap_dim + t5_dim) summary vectors in `cfg.summary_order`."""
        parts = {"clap": self.encode_clap, "t5": self.encode_t5}
        return torch.cat([parts[name](prompts).float() for name in self.cfg.summary_order], dim=-1)

    @torch.no_grad()
    def unconditional(self, n: int) -> torch.Tensor:
        return self.encode([""]).expand(n, -1).clone()

    def dataset_ids(self, n: int, dataset: str | None = None) -> torch.Tensor:
        name = dataset or self.cfg.inference_dataset
        if name not in self.cfg.dataset_ids:
            raise KeyError(f"unknown dataset {name!r}; known: {', '.join(self.cfg.dataset_ids)}")
        return torch.full((n,), int(self.cfg.dataset_ids[name]), dtype=torch.long, device=self.device)

    def unconditional_dataset_ids(self, n: int) -> torch.Tensor:
        return torch.full((n,), int(self.cfg.unconditional_dataset_id), dtype=torch.long, device=self.device)

    def drop_conditions(
        self,
        summary: torch.Tensor,
        dataset_ids: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        p: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Classifier-free-guidance training: replace each sample's conditions by the unconditional ones with prob. p.

        Returns (summary, dataset_ids, dropped mask).
        """
        p = self.cfg.cfg_dropout if p is None else p
        n = summary.shape[0]
        dropped = torch.rand(n, generator=generator) < p
        dropped = dropped.to(summary.device)
        if dropped.any():
            uncond = self.unconditional(1).to(summary.dtype)
            summary = torch.where(dropped[:, None], uncond, summary)
            dataset_ids = torch.where(dropped, self.unconditional_dataset_ids(n), dataset_ids)
        return summary, dataset_ids, dropped
