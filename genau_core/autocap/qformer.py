"""The audio Q-Former: `num_queries` learned query vectors summarise a long sequence of audio
tokens through cross-attention (BLIP-2's querying transformer, as AutoCap uses it).

Per layer (post-LayerNorm, BERT style, queries only):
    q = LN(q + Drop(SelfAttn(q)))
    q = LN(q + Drop(CrossAttn(q, audio)))
    q = LN(q + Drop(W2 GELU(W1 q)))
after an input LayerNorm on the queries. Attention logits are clamped to +-`score_clamp`
before the softmax, as in the official module. No masks: every query sees every query and
every audio token.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genau_core.autocap.configs import QFormerConfig


class QFormerAttention(nn.Module):
    def __init__(self, hidden: int, kv_width: int, heads: int, dropout: float, clamp: float):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.clamp = clamp
        self.q_proj = nn.Linear(hidden, hidden)
        self.k_proj = nn.Linear(kv_width, hidden)
        self.v_proj = nn.Linear(kv_width, hidden)
        self.out_proj = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.q_proj(x)), self._split(self.k_proj(context)), self._split(self.v_proj(context))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        probs = self.dropout(scores.clamp(-self.clamp, self.clamp).softmax(dim=-1))
        out = (probs @ v).transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
        return self.out_proj(out)


class QFormerLayer(nn.Module):
    def __init__(self, cfg: QFormerConfig, encoder_width: int):
        super().__init__()
        h = cfg.hidden_size
        self.self_attn = QFormerAttention(h, h, cfg.num_heads, cfg.attention_dropout, cfg.score_clamp)
        self.self_attn_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.cross_attn = QFormerAttention(h, encoder_width, cfg.num_heads, cfg.attention_dropout, cfg.score_clamp)
        self.cross_attn_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.ffn_in = nn.Linear(h, cfg.intermediate_size)
        self.ffn_out = nn.Linear(cfg.intermediate_size, h)
        self.ffn_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, q: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        q = self.self_attn_norm(q + self.dropout(self.self_attn(q, q)))
        q = self.cross_attn_norm(q + self.dropout(self.cross_attn(q, audio)))
        return self.ffn_norm(q + self.dropout(self.ffn_out(F.gelu(self.ffn_in(q)))))


class QFormer(nn.Module):
    """(B, N, encoder_width) audio tokens -> (B, num_queries, hidden_size)."""

    def __init__(self, cfg: QFormerConfig, encoder_width: int):
        super().__init__()
        self.cfg = cfg
        self.query_tokens = nn.Parameter(torch.zeros(1, cfg.num_queries, cfg.hidden_size))
        self.input_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.input_dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(QFormerLayer(cfg, encoder_width) for _ in range(cfg.num_layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """BERT initialisation (normal 0.02, zero biases, unit LayerNorms), queries normal 0.02."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.query_tokens, std=0.02)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        q = self.input_dropout(self.input_norm(self.query_tokens.expand(audio.shape[0], -1, -1)))
        for layer in self.layers:
            q = layer(q, audio)
        return q
