"""FIT denoising backbone of GenAu (paper section 3.3; Chen & Li 2023, Menapace et al. 2024).

Block order (each FIT block, `FITBlock.forward`):
  1. local self-attention (+ feed-forward) inside each group of patch tokens;
  2. latent tokens cross-attend to the conditioning context (summary text embedding,
     diffusion time, dataset id);
  3. each group's latents *read* their patch group (cross-attention);
  4. global self-attention over all latent tokens;
  5. patches *write* back: each patch group cross-attends to its group's latents.
N such blocks are followed by one local-only block. Every sub-layer is pre-norm and residual.

The cross-attention layers (2, 3, 5) are followed by a residual feed-forward. With
`cross_attention_feedforward=False` the official FITBlockV5 (`src/modules/fit/layers/fit_layers.py`)
puts an `nn.Identity()` there and still adds the residual (`x = ff(x) + x`), so each of those
steps doubles its input; we do the same (a feed-forward-free identity, no parameters).

The sequence of sub-layer calls can be observed with forward hooks on the named modules
(`local_layers.*`, `context_read`, `read`, `global_layers.*`, `write`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from genau_core.genau.configs import AttentionSpec, FITConfig


class Attention(nn.Module):
    """Pre-norm multi-head (cross-)attention without biases; keys and values from one fused projection."""

    def __init__(self, dim: int, spec: AttentionSpec, context_dim: int | None = None):
        super().__init__()
        self.heads = spec.heads
        inner = spec.inner
        self.norm = nn.LayerNorm(dim, bias=False)
        self.norm_context = nn.LayerNorm(context_dim, bias=False) if context_dim is not None else None
        kv_in = context_dim if context_dim is not None else dim
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(kv_in, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(x)
        if context is None:
            context = x
        elif self.norm_context is not None:
            context = self.norm_context(context)
        q = self.to_q(x)
        k, v = self.to_kv(context).chunk(2, dim=-1)
        b, n, _ = q.shape
        q, k, v = (t.reshape(b, t.shape[1], self.heads, -1).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class FeedForward(nn.Module):
    """Pre-norm GELU MLP (x mult hidden), dropout on the hidden units."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim, bias=False)
        self.fc1 = nn.Linear(dim, dim * mult)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(dim * mult, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(F.gelu(self.fc1(self.norm(x)))))


class DropPath(nn.Module):
    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype) >= self.p
        return x * keep / (1.0 - self.p)


class AttentionLayer(nn.Module):
    """Residual attention + residual feed-forward (`ff` may be `nn.Identity()`: x + x, as the official code)."""

    def __init__(self, attn: Attention, ff: nn.Module | None, drop_path: float = 0.0):
        super().__init__()
        self.attn = attn
        self.ff = ff
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop_path(self.attn(x, context))
        if self.ff is not None:
            x = x + self.drop_path(self.ff(x))
        return x


class FITBlock(nn.Module):
    def __init__(self, cfg: FITConfig, *, with_global: bool):
        super().__init__()
        self.cfg = cfg
        dp, dl = cfg.patch_channels, cfg.latent_channels
        self.local_layers = nn.ModuleList(
            AttentionLayer(Attention(dp, cfg.local_attention), FeedForward(dp, cfg.ff_mult, cfg.dropout), cfg.drop_path)
            for _ in range(cfg.local_layers_per_block)
        )
        self.with_global = with_global and cfg.global_layers_per_block > 0
        if self.with_global:
            cross_ff = cfg.cross_attention_feedforward

            def xff(d):
                # official: `ff_class(...) if use_cross_attention_feedforward else nn.Identity()`,
                # applied as `x = ff(x) + x` either way
                return FeedForward(d, cfg.ff_mult, 0.0) if cross_ff else nn.Identity()

            self.context_read = AttentionLayer(Attention(dl, cfg.context_attention, cfg.context_channels), xff(dl))
            self.read = AttentionLayer(Attention(dl, cfg.read_attention, dp), xff(dl))
            self.global_layers = nn.ModuleList(
                AttentionLayer(
                    Attention(dl, cfg.global_attention), FeedForward(dl, cfg.ff_mult, cfg.dropout), cfg.drop_path
                )
                for _ in range(cfg.global_layers_per_block)
            )
            self.write = AttentionLayer(Attention(dp, cfg.write_attention, dl), xff(dp))

    def forward(
        self, patches: torch.Tensor, latents: torch.Tensor, context: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        b = patches.shape[0]
        g = cfg.groups
        grouped = patches.reshape(b * g, cfg.group_size, patches.shape[-1])
        for layer in self.local_layers:
            grouped = layer(grouped)
        if self.with_global:
            latents = self.context_read(latents, context)
            grouped_latents = latents.reshape(b * g, cfg.latents_per_group, latents.shape[-1])
            grouped_latents = self.read(grouped_latents, grouped)
            latents = grouped_latents.reshape(b, cfg.latent_count, -1)
            for layer in self.global_layers:
                latents = layer(latents)
            grouped_latents = latents.reshape(b * g, cfg.latents_per_group, latents.shape[-1])
            grouped = self.write(grouped, grouped_latents)
        return grouped.reshape(b, cfg.patches, -1), latents


class FourierTime(nn.Module):
    """Learned random-Fourier features of the timestep: [t, sin(2 pi w t), cos(2 pi w t)]."""

    def __init__(self, dim: int):
        super().__init__()
        if dim % 2:
            raise ValueError("time_fourier_dim must be even")
        self.weights = nn.Parameter(torch.randn(dim // 2))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = t[:, None]
        f = t * self.weights[None] * 2 * math.pi
        return torch.cat([t, f.sin(), f.cos()], dim=-1)


class FITBackbone(nn.Module):
    """(noisy latent (B, C, T), timesteps (B,), summary (B, S), dataset ids (B,)) -> (epsilon (B, C, T), latents)."""

    def __init__(self, cfg: FITConfig):
        super().__init__()
        self.cfg = cfg
        dp, dl, ctx = cfg.patch_channels, cfg.latent_channels, cfg.context_channels
        self.patch_in = nn.Linear(cfg.input_channels * cfg.patch_size, dp)
        self.patch_in_norm = nn.LayerNorm(dp)
        self.patch_pos = nn.Parameter(torch.zeros(cfg.patches, dp))
        self.latents = nn.Parameter(torch.zeros(cfg.latent_count, dl))
        hidden = 4 * dp
        self.time_embed = nn.Sequential(
            FourierTime(cfg.time_fourier_dim),
            nn.Linear(cfg.time_fourier_dim + 1, hidden),
            nn.GELU(),
            nn.Linear(hidden, ctx),
        )
        self.dataset_embed = nn.Linear(cfg.dataset_ids_count, ctx) if cfg.use_dataset_id else None
        self.summary_proj = nn.Linear(cfg.summary_channels, ctx, bias=False)
        self.self_cond = FeedForward(dl, cfg.ff_mult, 0.0)
        self.self_cond_norm = nn.LayerNorm(dl, bias=False)
        self.blocks = nn.ModuleList(FITBlock(cfg, with_global=True) for _ in range(cfg.blocks))
        if cfg.local_layers_per_block > 0:
            self.blocks.append(FITBlock(cfg, with_global=False))
        self.out_norm = nn.LayerNorm(dp, bias=False)
        self.patch_out = nn.Linear(dp, cfg.input_channels * cfg.patch_size)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.normal_(self.patch_pos, std=0.02)
        nn.init.normal_(self.latents, std=0.02)
        # The official RIN initialiser rescales the patch, attention and feed-forward linear
        # layers by a constant (not the time / dataset / summary embeddings).
        s = self.cfg.weight_init_scale
        skip = {
            id(m)
            for part in (self.time_embed, self.dataset_embed, self.summary_proj)
            if part is not None
            for m in part.modules()
        }
        for m in self.modules():
            if isinstance(m, nn.Linear) and id(m) not in skip and m.weight.device.type != "meta":
                m.weight.mul_(s)
                if m.bias is not None:
                    m.bias.mul_(s)
        # Self-conditioning enters through a zero-initialised norm gain (a no-op until trained).
        nn.init.zeros_(self.self_cond_norm.weight)

    def build_context(
        self, timesteps: torch.Tensor, summary: torch.Tensor, dataset_ids: torch.Tensor | None
    ) -> torch.Tensor:
        """Context tokens in the official order: [summary, time, dataset id]."""
        dtype = self.summary_proj.weight.dtype
        tokens = [self.summary_proj(summary.to(dtype))[:, None]]
        t = timesteps.to(dtype) / self.cfg.time_scaling
        tokens.append(self.time_embed(t)[:, None])
        if self.dataset_embed is not None:
            if dataset_ids is None:
                raise ValueError("this backbone is conditioned on dataset ids; pass dataset_ids")
            one_hot = F.one_hot(dataset_ids.long(), self.cfg.dataset_ids_count).to(dtype)
            tokens.append(self.dataset_embed(one_hot)[:, None])
        return torch.cat(tokens, dim=1)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        p = self.cfg.patch_size
        # channel-major inside a patch: feature index = c * p + position
        return x.reshape(b, c, t // p, p).permute(0, 2, 1, 3).reshape(b, t // p, c * p)

    def unpatchify(self, y: torch.Tensor) -> torch.Tensor:
        b, n, _ = y.shape
        p, c = self.cfg.patch_size, self.cfg.input_channels
        return y.reshape(b, n, c, p).permute(0, 2, 1, 3).reshape(b, c, n * p)

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        summary: torch.Tensor,
        dataset_ids: torch.Tensor | None = None,
        prev_latents: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() == 4:  # (B, C, T, 1) official latent layout
            x = x[..., 0]
        b, c, t = x.shape
        if c != self.cfg.input_channels or t != self.cfg.input_length:
            raise ValueError(
                f"expected latents (B, {self.cfg.input_channels}, {self.cfg.input_length}), got {tuple(x.shape)}"
            )
        if timesteps.dim() == 0:
            timesteps = timesteps.expand(b)
        context = self.build_context(timesteps, summary, dataset_ids)
        patches = self.patch_in_norm(self.patch_in(self.patchify(x))) + self.patch_pos
        latents = self.latents[None].expand(b, -1, -1)
        if prev_latents is not None:
            latents = latents + self.self_cond_norm(self.self_cond(prev_latents))
        for block in self.blocks:
            patches, latents = block(patches, latents, context)
        out = self.patch_out(self.out_norm(patches))
        return self.unpatchify(out), latents
