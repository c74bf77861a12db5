"""Make-An-Audio 2 (Huang et al., 2023), from its released `maa2.ckpt` + BigVGAN.

What the official inference does (bytedance/Make-An-Audio-2,
`configs/text2audio-ConcatDiT-ae1dnat_Skl20d2_struct2MLPanylen.yaml`, `scripts/gen_wav.py`,
`scripts/txt2audio_for_2cap.py`):
- Latents: a 1D KL-VAE over 80-bin mels (16 kHz, hop 256) with the mel bins as channels
  (`ldm/models/autoencoder1d.py`: ch 384, ch_mult 1,2,4, 2 res blocks, kernel 5, one 2x
  downsampling after level 0, 20 latent channels; attention only in the middle blocks since
  `attn_layers: [3]` names no level). Quirks reproduced: the decoder's res blocks use kernel 3
  (their constructor is not given `kernel_size`), only its conv_in / conv_out use 5; the encoder
  downsamples with a (0, 1) pad + stride-2 conv; the decoder upsamples after level 1.
- Backbone: `ConcatDiT2MLP` (hidden 576, depth 4, 8 heads, max_len 1000): timestep embedding
  (256 sinusoid features [cos, sin] -> MLP), two context embedders (Linear, tanh-GELU, Linear,
  LayerNorm) for the two halves of the context, input Conv1d (kernel 5); the sequence
  [t, context_1, context_2, x] gets a learned position embedding; each of the `depth` blocks is a
  GroupNorm(32) -> 1x1 conv -> transformer layer (self-attention, a second self-attention, a
  GEGLU feed-forward made of kernel-9 Conv1d over the sequence) -> 1x1 conv, residual; the
  latent part goes through GroupNorm(16) and a 1x1 conv (eps prediction).
- Conditioning (`FrozenCLAPFLANEmbedder`): the natural caption through the MS-CLAP 2022 BERT branch
  per token (77 x 1024, see `clap_text`), the structured caption through `google/t5-v1_1-large`'s
  encoder (77 x 1024, tokenizer padded to 77, no attention mask), concatenated to 154 tokens.
  Both encoders are stored in `maa2.ckpt` (T5 was trained with the model). Unconditional: both
  encoders on "".
- LDM linear schedule 0.00085..0.012, DDIM eta 0, 100 steps; `z / scale_factor` -> VAE decoder ->
  BigVGAN per clip.
- Latent length for a duration (`gen_wav.py` `dur_to_size`): int(duration * 31.5) rounded *up* to
  even (316 for 10 s: 10.11 s). `txt2audio_for_2cap.py` (the AudioCaps evaluation) uses a fixed
  312 (9.98 s); we follow `gen_wav.py`, which honours the requested duration.

Checkpoint (`["state_dict"]`): `model.diffusion_model.*`, `first_stage_model.*`,
`cond_stage_model.caption_encoder.*`, `cond_stage_model.t5_transformer.*`, `scale_factor`,
schedule buffers. Our module names differ from the official ones; `map_dit_state_dict` and
`map_vae1d_state_dict` give the correspondence. The official `gen_wav.py` loads it with
strict=False; a checkpoint without `cond_stage_model.t5_transformer.*` (or without the CLAP text
branch) loads here when that encoder comes from elsewhere: google/t5-v1_1-large's weights, which
the official embedder's `T5EncoderModel.from_pretrained` would use, and CLAP_weights_2022.pth for
the CLAP branch (see `_common`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genau_core.baselines._common import (
    T5_LARGE_ENCODER_CONFIG,
    load_release_with_bigvgan,
    split_latent_diffusion_state_dict,
    text_weights_elsewhere,
)
from genau_core.baselines._state import CheckpointMappingError, load_strict
from genau_core.baselines.bigvgan import BigVGAN, BigVGANConfig
from genau_core.baselines.clap_text import ClapTextConfig, ClapTextEncoder, load_clap_text
from genau_core.baselines.ldm_sampling import LdmSchedule, ddim_sample

# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Vae1dConfig:
    """`ldm.models.autoencoder1d.AutoencoderKL` ddconfig + embed_dim."""

    in_channels: int = 80
    out_ch: int = 80
    ch: int = 384
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 20
    embed_dim: int = 20
    kernel_size: int = 5
    attn_layers: tuple[int, ...] = (3,)
    down_layers: tuple[int, ...] = (0,)
    norm_num_groups: int = 32  # fixed in the official code; tiny configs use fewer

    @property
    def downsample(self) -> int:
        return 2 ** len(self.down_layers)


@dataclass(frozen=True)
class DiTConfig:
    """`ConcatDiT2MLP` parameters."""

    in_channels: int = 20
    context_dim: int = 1024
    hidden_size: int = 576
    depth: int = 4
    num_heads: int = 8
    max_len: int = 1000
    n_contexts: int = 2  # ConcatDiT2MLP splits the context in two halves (CLAP, T5), one embedder each
    proj_in_kernel: int = 5
    ff_kernel: int = 9
    ff_mult: int = 4
    block_groups: int = 32  # GroupNorm groups before each block (Normalize)
    final_groups: int = 16  # GroupNorm groups of the final layer

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


# google/t5-v1_1-large (its encoder), trained inside maa2.ckpt
T5_V1_1_LARGE_CONFIG: dict = dict(T5_LARGE_ENCODER_CONFIG)


@dataclass(frozen=True)
class MakeAnAudio2Config:
    dit: DiTConfig = field(default_factory=DiTConfig)
    vae: Vae1dConfig = field(default_factory=Vae1dConfig)
    text: ClapTextConfig = field(default_factory=ClapTextConfig)
    t5: dict = field(default_factory=lambda: dict(T5_V1_1_LARGE_CONFIG))
    t5_max_length: int = 77
    t5_tokenizer: str = "google/t5-v1_1-large"
    vocoder: BigVGANConfig = field(default_factory=BigVGANConfig)
    schedule: LdmSchedule = field(default_factory=LdmSchedule)
    latent_rate: float = 31.5  # gen_wav.py dur_to_size: int(duration * 31.5) ...
    latent_multiple: int = 2  # ... rounded up to even

    def __post_init__(self) -> None:
        problems = []
        if self.dit.in_channels != self.vae.embed_dim:
            problems.append(f"DiT channels {self.dit.in_channels} != VAE embed_dim {self.vae.embed_dim}")
        if not self.text.d_proj == self.t5["d_model"] == self.dit.context_dim:
            problems.append(
                f"context dims differ: CLAP {self.text.d_proj}, T5 {self.t5['d_model']}, DiT {self.dit.context_dim}"
            )
        if self.text.max_length != self.t5_max_length:
            problems.append("CLAP and T5 token counts differ (the DiT splits the context in equal halves)")
        if self.vocoder.num_mels != self.vae.out_ch:
            problems.append(f"vocoder takes {self.vocoder.num_mels} mels, the VAE decodes {self.vae.out_ch}")
        if self.dit.hidden_size % self.dit.num_heads:
            problems.append("hidden_size not divisible by num_heads")
        if problems:
            raise ValueError("MakeAnAudio2Config: " + "; ".join(problems))

    def latent_length(self, duration_s: float) -> int:
        n = int(duration_s * self.latent_rate)
        return max(self.latent_multiple, math.ceil(n / self.latent_multiple) * self.latent_multiple)

    def latent_shape(self, duration_s: float) -> tuple[int, int]:
        return self.vae.embed_dim, self.latent_length(duration_s)

    def samples(self, duration_s: float) -> int:
        return self.latent_length(duration_s) * self.vae.downsample * self.vocoder.hop_length


MAKE_AN_AUDIO_2_CONFIG = MakeAnAudio2Config()

# -- 1D VAE --------------------------------------------------------------------------------------


def _gn(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=1e-6, affine=True)


class ResBlock1d(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int):
        super().__init__()
        self.norm1 = _gn(c_in, groups)
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2)
        self.norm2 = _gn(c_out, groups)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, padding=kernel // 2)
        self.shortcut = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.shortcut is None else self.shortcut(x)) + h


class Attention1d(nn.Module):
    """Single-head self-attention over time, 1x1-conv projections, scale 1/sqrt(channels)."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = _gn(channels, groups)
        self.q = nn.Conv1d(channels, channels, 1)
        self.k = nn.Conv1d(channels, channels, 1)
        self.v = nn.Conv1d(channels, channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        q, k, v = (p(h).transpose(1, 2)[:, None] for p in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)[:, 0].transpose(1, 2)
        return x + self.proj_out(out)


class MidBlock1d(nn.Module):
    def __init__(self, channels: int, kernel: int, groups: int):
        super().__init__()
        self.resnet_1 = ResBlock1d(channels, channels, kernel, groups)
        self.attn = Attention1d(channels, groups)
        self.resnet_2 = ResBlock1d(channels, channels, kernel, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resnet_2(self.attn(self.resnet_1(x)))


class Stage1d(nn.Module):
    """Res blocks (each followed by attention when the level has it), then an optional resampler."""

    def __init__(
        self, channels: list[tuple[int, int]], kernel: int, groups: int, attention: bool, resample: nn.Module | None
    ):
        super().__init__()
        self.resnets = nn.ModuleList(ResBlock1d(a, b, kernel, groups) for a, b in channels)
        self.attns = nn.ModuleList(Attention1d(b, groups) for _, b in channels) if attention else nn.ModuleList()
        self.resample = resample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, r in enumerate(self.resnets):
            x = r(x)
            if len(self.attns):
                x = self.attns[i](x)
        return x if self.resample is None else self.resample(x)


class Downsample1d(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1)))


class Upsample1d(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Encoder1d(nn.Module):
    def __init__(self, c: Vae1dConfig):
        super().__init__()
        k, g = c.kernel_size, c.norm_num_groups
        self.conv_in = nn.Conv1d(c.in_channels, c.ch, k, padding=k // 2)
        stages, c_in = [], c.ch
        for level, mult in enumerate(c.ch_mult):
            c_out = c.ch * mult
            pairs = [(c_in if j == 0 else c_out, c_out) for j in range(c.num_res_blocks)]
            stages.append(
                Stage1d(pairs, k, g, level in c.attn_layers, Downsample1d(c_out) if level in c.down_layers else None)
            )
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        self.mid = MidBlock1d(c_in, k, g)
        self.norm_out = _gn(c_in, g)
        self.conv_out = nn.Conv1d(c_in, 2 * c.z_channels, k, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for s in self.stages:
            h = s(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder1d(nn.Module):
    """stages[0] runs first (deepest level). Res blocks use kernel 3 as the official decoder does."""

    RES_KERNEL = 3

    def __init__(self, c: Vae1dConfig):
        super().__init__()
        k, g, rk = c.kernel_size, c.norm_num_groups, self.RES_KERNEL
        c_in = c.ch * c.ch_mult[-1]
        self.conv_in = nn.Conv1d(c.z_channels, c_in, k, padding=k // 2)
        self.mid = MidBlock1d(c_in, rk, g)
        up_levels = {d + 1 for d in c.down_layers}
        stages = []
        for level in reversed(range(len(c.ch_mult))):
            c_out = c.ch * c.ch_mult[level]
            pairs = [(c_in if j == 0 else c_out, c_out) for j in range(c.num_res_blocks + 1)]
            stages.append(
                Stage1d(pairs, rk, g, level in c.attn_layers, Upsample1d(c_out) if level in up_levels else None)
            )
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        self.norm_out = _gn(c_in, g)
        self.conv_out = nn.Conv1d(c_in, c.out_ch, k, padding=k // 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for s in self.stages:
            h = s(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Vae1d(nn.Module):
    def __init__(self, c: Vae1dConfig):
        super().__init__()
        self.config = c
        self.encoder = Encoder1d(c)
        self.decoder = Decoder1d(c)
        self.quant_conv = nn.Conv1d(2 * c.z_channels, 2 * c.embed_dim, 1)
        self.post_quant_conv = nn.Conv1d(c.embed_dim, c.z_channels, 1)

    def encode_moments(self, mel: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.encoder(mel))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(z))


def _map_vae_resnet(rest: str) -> str | None:
    names = {
        "norm1": "norm1",
        "conv1": "conv1",
        "norm2": "norm2",
        "conv2": "conv2",
        "nin_shortcut": "shortcut",
        "conv_shortcut": "shortcut",
    }
    layer, _, param = rest.partition(".")
    return f"{names[layer]}.{param}" if layer in names and param in ("weight", "bias") else None


def map_vae1d_state_dict(
    sd: Mapping[str, torch.Tensor], c: Vae1dConfig, *, what: str = "1D VAE"
) -> dict[str, torch.Tensor]:
    """Official 1D VAE keys -> `Vae1d`:

    {encoder,decoder}.conv_in/norm_out/conv_out, quant_conv, post_quant_conv: same names
    encoder.down.{l}.block.{j}.*        -> encoder.stages.{l}.resnets.{j}.*  (nin_shortcut -> shortcut)
    encoder.down.{l}.attn.{j}.*         -> encoder.stages.{l}.attns.{j}.*
    encoder.down.{l}.downsample.conv.*  -> encoder.stages.{l}.resample.conv.*
    decoder.up.{l}.block.{j}.*          -> decoder.stages.{L-1-l}.resnets.{j}.*
    decoder.up.{l}.attn.{j}.*           -> decoder.stages.{L-1-l}.attns.{j}.*
    decoder.up.{l}.upsample.conv.*      -> decoder.stages.{L-1-l}.resample.conv.*
    {..}.mid.block_1 / attn_1 / block_2 -> {..}.mid.resnet_1 / attn / resnet_2
    """
    n = len(c.ch_mult)
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in sd.items():
        target = None
        if re.fullmatch(
            r"(encoder|decoder)\.(conv_in|norm_out|conv_out)\.(weight|bias)|(post_)?quant_conv\.(weight|bias)", key
        ):
            target = key
        elif m := re.fullmatch(r"(encoder|decoder)\.mid\.(block_1|block_2)\.(.+)", key):
            sub = _map_vae_resnet(m.group(3))
            if sub:
                target = f"{m.group(1)}.mid.{'resnet_1' if m.group(2) == 'block_1' else 'resnet_2'}.{sub}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid\.attn_1\.((?:norm|q|k|v|proj_out)\.(?:weight|bias))", key):
            target = f"{m.group(1)}.mid.attn.{m.group(2)}"
        elif m := re.fullmatch(r"(encoder\.down|decoder\.up)\.(\d+)\.(block|attn)\.(\d+)\.(.+)", key):
            part = "encoder" if m.group(1) == "encoder.down" else "decoder"
            level = int(m.group(2))
            stage = level if part == "encoder" else n - 1 - level
            if m.group(3) == "block":
                sub = _map_vae_resnet(m.group(5))
                if sub:
                    target = f"{part}.stages.{stage}.resnets.{m.group(4)}.{sub}"
            elif re.fullmatch(r"(norm|q|k|v|proj_out)\.(weight|bias)", m.group(5)):
                target = f"{part}.stages.{stage}.attns.{m.group(4)}.{m.group(5)}"
        elif m := re.fullmatch(r"encoder\.down\.(\d+)\.downsample\.conv\.(weight|bias)", key):
            target = f"encoder.stages.{m.group(1)}.resample.conv.{m.group(2)}"
        elif m := re.fullmatch(r"decoder\.up\.(\d+)\.upsample\.conv\.(weight|bias)", key):
            target = f"decoder.stages.{n - 1 - int(m.group(1))}.resample.conv.{m.group(2)}"
        if target is None:
            unknown.append(key)
        else:
            out[target] = value
    if unknown:
        raise CheckpointMappingError(
            f"{what}: {len(unknown)} keys outside the 1D AutoencoderKL layout (e.g. {unknown[:5]})"
        )
    return out


# -- ConcatDiT2MLP -------------------------------------------------------------------------------


def timestep_features(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """DiT's sinusoidal timestep features, [cos, sin] (zero-padded for odd dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


class TimestepEmbed(nn.Module):
    def __init__(self, hidden: int, features: int = 256):
        super().__init__()
        self.features = features
        self.linear_1 = nn.Linear(features, hidden)
        self.linear_2 = nn.Linear(hidden, hidden)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(timestep_features(t, self.features))))


class ContextEmbed(nn.Module):
    def __init__(self, context_dim: int, hidden: int):
        super().__init__()
        self.linear_1 = nn.Linear(context_dim, hidden)
        self.linear_2 = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return self.norm(self.linear_2(F.gelu(self.linear_1(c), approximate="tanh")))


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, heads * head_dim, bias=False)
        self.to_k = nn.Linear(dim, heads * head_dim, bias=False)
        self.to_v = nn.Linear(dim, heads * head_dim, bias=False)
        self.to_out = nn.Linear(heads * head_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = (p(x).view(b, n, self.heads, -1).transpose(1, 2) for p in (self.to_q, self.to_k, self.to_v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class ConvGegluFeedForward(nn.Module):
    """Conv1d(dim -> 2*inner, k) -> value * gelu(gate) -> Conv1d(inner -> dim, k), over the sequence."""

    def __init__(self, dim: int, mult: int, kernel: int):
        super().__init__()
        inner = dim * mult
        self.proj_in = nn.Conv1d(dim, 2 * inner, kernel, padding=kernel // 2)
        self.proj_out = nn.Conv1d(inner, dim, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, N)
        value, gate = self.proj_in(x).chunk(2, dim=1)
        return self.proj_out(value * F.gelu(gate))


class TransformerLayer(nn.Module):
    def __init__(self, dim: int, cfg: DiTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = SelfAttention(dim, cfg.num_heads, cfg.head_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = SelfAttention(dim, cfg.num_heads, cfg.head_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = ConvGegluFeedForward(dim, cfg.ff_mult, cfg.ff_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, C)
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x))
        return x + self.ff(self.norm3(x).transpose(1, 2)).transpose(1, 2)


class DiTBlock(nn.Module):
    """GroupNorm -> 1x1 conv -> transformer layer -> 1x1 conv, residual (the official TemporalTransformer)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        h = cfg.hidden_size
        self.norm = _gn(h, cfg.block_groups)
        self.proj_in = nn.Conv1d(h, cfg.num_heads * cfg.head_dim, 1)
        self.layer = TransformerLayer(cfg.num_heads * cfg.head_dim, cfg)
        self.proj_out = nn.Conv1d(cfg.num_heads * cfg.head_dim, h, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, N)
        h = self.proj_in(self.norm(x)).transpose(1, 2)
        h = self.layer(h).transpose(1, 2)
        return x + self.proj_out(h)


class ConcatDiT(nn.Module):
    """eps(x (B, C, T), t (B,), context (B, n_contexts * L, context_dim)) -> (B, C, T)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.config = cfg
        h = cfg.hidden_size
        self.time_embed = TimestepEmbed(h)
        self.context_embed = nn.ModuleList(ContextEmbed(cfg.context_dim, h) for _ in range(cfg.n_contexts))
        self.proj_in = nn.Conv1d(cfg.in_channels, h, cfg.proj_in_kernel, padding=cfg.proj_in_kernel // 2)
        self.pos_embed = nn.Parameter(nn.init.xavier_normal_(torch.empty(cfg.max_len, h)))  # the official init
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.depth))
        self.final_norm = nn.GroupNorm(cfg.final_groups, h)  # torch's default eps (1e-5), as the official final layer
        self.final_conv = nn.Conv1d(h, cfg.in_channels, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        parts = context.chunk(self.config.n_contexts, dim=1)
        c = torch.cat([emb(p) for emb, p in zip(self.context_embed, parts)], dim=1)
        seq = torch.cat([self.time_embed(t)[:, None], c, self.proj_in(x).transpose(1, 2)], dim=1)
        n = seq.shape[1]
        if n > self.config.max_len:
            raise ValueError(f"ConcatDiT: sequence of {n} tokens exceeds max_len {self.config.max_len}")
        h = (seq + self.pos_embed[:n]).transpose(1, 2)
        for block in self.blocks:
            h = block(h)
        h = h[..., 1 + c.shape[1] :]
        return self.final_conv(self.final_norm(h))


_DIT_ATTN = {"to_q": "to_q", "to_k": "to_k", "to_v": "to_v", "to_out.0": "to_out"}


def map_dit_state_dict(
    sd: Mapping[str, torch.Tensor], cfg: DiTConfig, *, what: str = "ConcatDiT2MLP"
) -> dict[str, torch.Tensor]:
    """Official `ConcatDiT2MLP` keys -> `ConcatDiT`:

    t_embedder.mlp.{0,2}                         -> time_embed.linear_{1,2}
    c{n}_embedder.mlp.{0,2,3}                    -> context_embed.{n-1}.{linear_1,linear_2,norm}
    proj_in, pos_emb.weight                      -> proj_in, pos_embed
    blocks.{i}.{norm,proj_in,proj_out}           -> blocks.{i}.{norm,proj_in,proj_out}
    blocks.{i}.transformer_blocks.0.norm{1,2,3}  -> blocks.{i}.layer.norm{1,2,3}
    blocks.{i}.transformer_blocks.0.attn{1,2}.{to_q,to_k,to_v,to_out.0}
                                                 -> blocks.{i}.layer.attn{1,2}.{to_q,to_k,to_v,to_out}
    blocks.{i}.transformer_blocks.0.ff.net.{0.proj,2} -> blocks.{i}.layer.ff.{proj_in,proj_out}
    final_layer.{norm_final,conv1d}              -> final_norm, final_conv
    """
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in sd.items():
        target = None
        if m := re.fullmatch(r"t_embedder\.mlp\.(0|2)\.(weight|bias)", key):
            target = f"time_embed.linear_{1 if m.group(1) == '0' else 2}.{m.group(2)}"
        elif m := re.fullmatch(r"c(\d+)_embedder\.mlp\.(0|2|3)\.(weight|bias)", key):
            if 1 <= int(m.group(1)) <= cfg.n_contexts:
                name = {"0": "linear_1", "2": "linear_2", "3": "norm"}[m.group(2)]
                target = f"context_embed.{int(m.group(1)) - 1}.{name}.{m.group(3)}"
        elif re.fullmatch(r"proj_in\.(weight|bias)", key):
            target = key
        elif key == "pos_emb.weight":
            target = "pos_embed"
        elif m := re.fullmatch(r"blocks\.(\d+)\.(norm|proj_in|proj_out)\.(weight|bias)", key):
            target = key
        elif m := re.fullmatch(r"blocks\.(\d+)\.transformer_blocks\.0\.(.+)", key):
            i, rest = m.group(1), m.group(2)
            if mm := re.fullmatch(r"(norm[123])\.(weight|bias)", rest):
                target = f"blocks.{i}.layer.{mm.group(1)}.{mm.group(2)}"
            elif mm := re.fullmatch(r"(attn[12])\.(to_q|to_k|to_v|to_out\.0)\.(weight|bias)", rest):
                target = f"blocks.{i}.layer.{mm.group(1)}.{_DIT_ATTN[mm.group(2)]}.{mm.group(3)}"
            elif mm := re.fullmatch(r"ff\.net\.(0\.proj|2)\.(weight|bias)", rest):
                target = f"blocks.{i}.layer.ff.{'proj_in' if mm.group(1) == '0.proj' else 'proj_out'}.{mm.group(2)}"
        elif m := re.fullmatch(r"final_layer\.(norm_final|conv1d)\.(weight|bias)", key):
            target = f"{'final_norm' if m.group(1) == 'norm_final' else 'final_conv'}.{m.group(2)}"
        if target is None:
            unknown.append(key)
        else:
            out[target] = value
    if unknown:
        raise CheckpointMappingError(
            f"{what}: {len(unknown)} keys outside the ConcatDiT2MLP layout (e.g. {unknown[:5]})"
        )
    return out


# -- the model -------------------------------------------------------------------------------------


def build_t5_encoder(cfg: MakeAnAudio2Config):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(**cfg.t5))


def map_t5_state_dict(sd: Mapping[str, torch.Tensor], *, what: str) -> dict[str, torch.Tensor]:
    """`t5_transformer.*` (T5EncoderModel keys) -> T5EncoderModel; the tied embedding copy may be
    stored under `shared.weight`, `encoder.embed_tokens.weight` or both (then they must agree)."""
    out = dict(sd)
    shared, embed = out.get("shared.weight"), out.get("encoder.embed_tokens.weight")
    if shared is None and embed is None:
        raise CheckpointMappingError(f"{what}: no token embedding (shared.weight / encoder.embed_tokens.weight)")
    if shared is not None and embed is not None and not torch.equal(shared, embed):
        raise CheckpointMappingError(f"{what}: shared.weight and encoder.embed_tokens.weight differ")
    emb = shared if shared is not None else embed
    out["shared.weight"] = emb
    out["encoder.embed_tokens.weight"] = emb
    return out


class MakeAnAudio2Model(nn.Module):
    def __init__(self, cfg: MakeAnAudio2Config, clap_tokenizer, t5_tokenizer, *, scale_factor: float = 1.0):
        super().__init__()
        self.config = cfg
        self.clap_tokenizer = clap_tokenizer
        self.t5_tokenizer = t5_tokenizer
        self.clap_text = ClapTextEncoder(cfg.text)
        self.t5 = build_t5_encoder(cfg)
        self.dit = ConcatDiT(cfg.dit)
        self.vae = Vae1d(cfg.vae)
        self.vocoder = BigVGAN(cfg.vocoder)
        self.register_buffer("scale_factor", torch.tensor(float(scale_factor)))
        self.skipped_keys: dict[str, int] = {}
        self.text_sources: dict[str, str] = {}  # text encoder -> "checkpoint" or the file / folder it came from

    def parameter_count(self) -> int:
        return sum(p.numel() for n, p in self.named_parameters())

    @property
    def device(self) -> torch.device:
        return self.scale_factor.device

    def load_official_state_dict(
        self,
        sd: Mapping[str, torch.Tensor],
        *,
        source: str = "maa2.ckpt",
        text_sources: Mapping[str, str | Path] | None = None,
    ) -> None:
        """Strict, except that a text encoder missing from the checkpoint comes from `text_sources` ("clap", "t5")."""
        parts = split_latent_diffusion_state_dict(
            sd,
            groups={
                "model.diffusion_model.": "dit",
                "first_stage_model.": "vae",
                "cond_stage_model.t5_transformer.": "t5",
                "cond_stage_model.": "clap",
            },
            ignored=("model_ema.", "first_stage_model.loss."),
            schedule=self.config.schedule,
            source=source,
            layout="Make-An-Audio 2",
            optional=("clap", "t5"),
        )
        groups = parts.groups
        load_strict(self.dit, map_dit_state_dict(groups["dit"], self.config.dit, what=f"{source} DiT"), f"{source} DiT")
        load_strict(
            self.vae, map_vae1d_state_dict(groups["vae"], self.config.vae, what=f"{source} VAE"), f"{source} VAE"
        )
        clap, clap_from = groups["clap"], "checkpoint"
        if not clap:
            prefix = "cond_stage_model.caption_encoder."
            clap, clap_from = text_weights_elsewhere("clap", prefix, text_sources, source=source)
        load_clap_text(self.clap_text, clap, what=f"{clap_from} CLAP text encoder")
        t5, t5_from = groups["t5"], "checkpoint"
        if not t5:
            t5, t5_from = text_weights_elsewhere("t5", "cond_stage_model.t5_transformer.", text_sources, source=source)
        load_strict(self.t5, map_t5_state_dict(t5, what=f"{t5_from} T5"), f"{t5_from} T5 encoder")
        self.scale_factor.fill_(parts.scale_factor)
        self.skipped_keys = parts.skipped
        self.text_sources = {"clap": clap_from, "t5": t5_from}

    # -- inference ---------------------------------------------------------------------------
    @torch.no_grad()
    def encode_text(self, captions: Sequence[str], struct_captions: Sequence[str]) -> torch.Tensor:
        """(B, 2 * 77, 1024): CLAP tokens of the captions, then T5 tokens of the structured captions."""
        clap = self.clap_text(self.clap_text.tokenize(self.clap_tokenizer, list(captions), self.device))
        enc = self.t5_tokenizer(
            list(struct_captions),
            truncation=True,
            max_length=self.config.t5_max_length,
            padding="max_length",
            return_tensors="pt",
        )
        t5 = self.t5(input_ids=enc["input_ids"].to(self.device)).last_hidden_state
        return torch.cat([clap, t5], dim=1)

    @torch.no_grad()
    def sample(
        self,
        captions: Sequence[str],
        struct_captions: Sequence[str],
        generators: Sequence[torch.Generator],
        *,
        steps: int,
        guidance: float,
        duration_s: float,
    ) -> torch.Tensor:
        """Waveforms (B, samples) at the vocoder rate; one (CPU) generator per prompt for its x_T."""
        if not len(captions) == len(struct_captions) == len(generators):
            raise ValueError(
                f"{len(captions)} captions, {len(struct_captions)} structured captions, {len(generators)} generators"
            )
        cond = self.encode_text(captions, struct_captions)
        uncond = self.encode_text([""] * len(captions), [""] * len(captions)) if guidance != 1.0 else None
        shape = self.config.latent_shape(duration_s)
        x_t = torch.stack([torch.randn(shape, generator=g) for g in generators]).to(self.device)
        z = ddim_sample(self.dit, x_t, cond, uncond, schedule=self.config.schedule, steps=steps, guidance=guidance)
        mel = self.vae.decode(z / self.scale_factor)  # (B, mels, frames)
        return self.vocoder(mel).float().cpu()


CHECKPOINT_FILE = "maa2.ckpt"
VOCODER_DIR = "bigvgan"


def load_make_an_audio_2(
    checkpoint: str | Path,
    vocoder_dir: str | Path,
    clap_tokenizer,
    t5_tokenizer,
    cfg: MakeAnAudio2Config = MAKE_AN_AUDIO_2_CONFIG,
    text_sources: Mapping[str, str | Path] | None = None,
) -> MakeAnAudio2Model:
    """Build from the released files: `maa2.ckpt` and the BigVGAN folder (args.yml, best_netG.pt);
    `text_sources` ("clap": CLAP_weights_2022.pth, "t5": a t5-v1_1-large folder) serve a checkpoint without them."""
    return load_release_with_bigvgan(
        checkpoint,
        vocoder_dir,
        cfg,
        lambda c: MakeAnAudio2Model(c, clap_tokenizer, t5_tokenizer),
        expected_mels=cfg.vae.out_ch,
        what="Make-An-Audio 2 checkpoint",
        text_sources=text_sources,
    )


__all__ = [
    "CHECKPOINT_FILE",
    "MAKE_AN_AUDIO_2_CONFIG",
    "T5_V1_1_LARGE_CONFIG",
    "VOCODER_DIR",
    "ConcatDiT",
    "DiTConfig",
    "MakeAnAudio2Config",
    "MakeAnAudio2Model",
    "Vae1d",
    "Vae1dConfig",
    "load_make_an_audio_2",
    "map_dit_state_dict",
    "map_t5_state_dict",
    "map_vae1d_state_dict",
]
