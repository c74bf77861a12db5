"""CompVis latent-diffusion modules onto their diffusers equivalents, with explicit key mappings.

Two networks of the LDM code base (`ldm/modules/diffusionmodules/openaimodel.py` `UNetModel`
with `use_spatial_transformer`, and `ldm/modules/diffusionmodules/model.py` `Encoder`/`Decoder`
of the KL autoencoder) compute exactly what diffusers' `UNet2DConditionModel` and
`AutoencoderKL` compute for the matching configuration; only the parameter names differ.

UNet (`model.diffusion_model.` in a LatentDiffusion checkpoint), for channel_mult of length L,
R res blocks per level, levels with attention A (from `attention_resolutions`):

    time_embed.{0,2}                      -> time_embedding.linear_{1,2}
    input_blocks.0.0                      -> conv_in
    input_blocks.{1+l(R+1)+j}.0           -> down_blocks.{l}.resnets.{j}       (ResBlock)
    input_blocks.{1+l(R+1)+j}.1           -> down_blocks.{l}.attentions.{j}    (SpatialTransformer)
    input_blocks.{1+l(R+1)+R}.0.op        -> down_blocks.{l}.downsamplers.0.conv   (l < L-1)
    middle_block.{0,1,2}                  -> mid_block.{resnets.0, attentions.0, resnets.1}
    output_blocks.{u(R+1)+j}.0            -> up_blocks.{u}.resnets.{j}         (u = L-1-level)
    output_blocks.{u(R+1)+j}.1            -> up_blocks.{u}.attentions.{j}      (levels with attention)
    output_blocks.{u(R+1)+R}.{1|2}.conv   -> up_blocks.{u}.upsamplers.0.conv   (level > 0)
    out.{0,2}                             -> conv_norm_out, conv_out
  inside a ResBlock: in_layers.{0,2} -> norm1, conv1; emb_layers.1 -> time_emb_proj;
  out_layers.{0,3} -> norm2, conv2; skip_connection -> conv_shortcut. Inside a SpatialTransformer
  the names are the same in both (norm, proj_in, transformer_blocks.N.{attn1,attn2,ff,norm1-3}, proj_out).

KL autoencoder (`first_stage_model.`), attention inside the levels whose resolution is in
`attn_resolutions` (the resolution halves per level from `resolution`):

    encoder.down.{l}.block.{j}            -> encoder.down_blocks.{l}.resnets.{j}
    encoder.down.{l}.attn.{j}             -> encoder.down_blocks.{l}.attentions.{j}
    encoder.down.{l}.downsample.conv      -> encoder.down_blocks.{l}.downsamplers.0.conv
    decoder.up.{l}.block.{j}              -> decoder.up_blocks.{L-1-l}.resnets.{j}
    decoder.up.{l}.attn.{j}               -> decoder.up_blocks.{L-1-l}.attentions.{j}
    decoder.up.{l}.upsample.conv          -> decoder.up_blocks.{L-1-l}.upsamplers.0.conv
    {encoder,decoder}.mid.block_{1,2}     -> {..}.mid_block.resnets.{0,1}
    {encoder,decoder}.mid.attn_1          -> {..}.mid_block.attentions.0
    {encoder,decoder}.norm_out            -> {..}.conv_norm_out
  resnet: norm1, conv1, norm2, conv2, nin_shortcut -> conv_shortcut; attention (1x1 convs):
  norm -> group_norm, q/k/v -> to_q/to_k/to_v, proj_out -> to_out.0 (weights reshaped to Linear).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import torch

from genau_core.baselines._state import CheckpointMappingError

# -- UNet ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LdmUNetConfig:
    """`UNetModel` parameters (use_spatial_transformer, legacy=False, no scale-shift norm)."""

    in_channels: int = 4
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: tuple[int, ...] = (1, 2)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (1, 2)  # downsampling factors ("ds") with attention
    num_heads: int = 8
    transformer_depth: int = 1
    context_dim: int = 1024
    norm_num_groups: int = 32  # GroupNorm32 in the official code; tiny configs use fewer groups

    @property
    def attention_levels(self) -> tuple[bool, ...]:
        return tuple(2**level in self.attention_resolutions for level in range(len(self.channel_mult)))

    def diffusers_kwargs(self) -> dict:
        down, up = [], []
        for has_attn in self.attention_levels:
            down.append("CrossAttnDownBlock2D" if has_attn else "DownBlock2D")
        for has_attn in reversed(self.attention_levels):
            up.append("CrossAttnUpBlock2D" if has_attn else "UpBlock2D")
        return dict(
            sample_size=None,
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            down_block_types=tuple(down),
            up_block_types=tuple(up),
            block_out_channels=tuple(self.model_channels * m for m in self.channel_mult),
            layers_per_block=self.num_res_blocks,
            attention_head_dim=self.num_heads,  # diffusers' legacy name: the number of heads
            cross_attention_dim=self.context_dim,
            transformer_layers_per_block=self.transformer_depth,
            norm_num_groups=self.norm_num_groups,
            norm_eps=1e-5,
            act_fn="silu",
            flip_sin_to_cos=True,
            freq_shift=0,
            downsample_padding=1,
            mid_block_scale_factor=1,
            use_linear_projection=False,
            upcast_attention=False,
            center_input_sample=False,
        )


def build_ldm_unet(cfg: LdmUNetConfig):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**cfg.diffusers_kwargs())


_RESBLOCK = {
    "in_layers.0": "norm1",
    "in_layers.2": "conv1",
    "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2",
    "out_layers.3": "conv2",
    "skip_connection": "conv_shortcut",
}


def _unet_prefix_table(cfg: LdmUNetConfig) -> tuple[dict[str, str], dict[str, str]]:
    """(module prefix -> module prefix for ResBlocks and plain modules, SpatialTransformer prefix table)."""
    n, r = len(cfg.channel_mult), cfg.num_res_blocks
    plain = {
        "time_embed.0": "time_embedding.linear_1",
        "time_embed.2": "time_embedding.linear_2",
        "input_blocks.0.0": "conv_in",
        "out.0": "conv_norm_out",
        "out.2": "conv_out",
    }
    resblocks: dict[str, str] = {"middle_block.0": "mid_block.resnets.0", "middle_block.2": "mid_block.resnets.1"}
    transformers = {"middle_block.1": "mid_block.attentions.0"}
    levels_attn = cfg.attention_levels
    for level in range(n):
        for j in range(r):
            k = 1 + level * (r + 1) + j
            resblocks[f"input_blocks.{k}.0"] = f"down_blocks.{level}.resnets.{j}"
            if levels_attn[level]:
                transformers[f"input_blocks.{k}.1"] = f"down_blocks.{level}.attentions.{j}"
        if level != n - 1:
            plain[f"input_blocks.{1 + level * (r + 1) + r}.0.op"] = f"down_blocks.{level}.downsamplers.0.conv"
    for u in range(n):
        level = n - 1 - u
        for j in range(r + 1):
            k = u * (r + 1) + j
            resblocks[f"output_blocks.{k}.0"] = f"up_blocks.{u}.resnets.{j}"
            if levels_attn[level]:
                transformers[f"output_blocks.{k}.1"] = f"up_blocks.{u}.attentions.{j}"
        if level != 0:
            idx = 2 if levels_attn[level] else 1
            plain[f"output_blocks.{u * (r + 1) + r}.{idx}.conv"] = f"up_blocks.{u}.upsamplers.0.conv"
    for src, dst in resblocks.items():
        for a, b in _RESBLOCK.items():
            plain[f"{src}.{a}"] = f"{dst}.{b}"
    return plain, transformers


def map_ldm_unet_state_dict(
    sd: Mapping[str, torch.Tensor], cfg: LdmUNetConfig, *, what: str = "UNet"
) -> dict[str, torch.Tensor]:
    """`model.diffusion_model.*` (prefix stripped) -> diffusers `UNet2DConditionModel` state dict."""
    plain, transformers = _unet_prefix_table(cfg)
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in sd.items():
        module, _, param = key.rpartition(".")
        if module in plain:
            out[f"{plain[module]}.{param}"] = value
            continue
        m = re.fullmatch(r"((?:input_blocks|output_blocks)\.\d+\.1|middle_block\.1)\.(.+)", key)
        if m and m.group(1) in transformers:
            out[f"{transformers[m.group(1)]}.{m.group(2)}"] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointMappingError(
            f"{what}: {len(unknown)} keys outside the LDM UNetModel layout (e.g. {unknown[:5]})"
        )
    return out


# -- 2D KL autoencoder ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LdmVaeConfig2D:
    """`AutoencoderKL` ddconfig + embed_dim (double_z, vanilla attention)."""

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 4
    embed_dim: int = 4
    in_channels: int = 1
    out_ch: int = 1
    resolution: int = 624
    attn_resolutions: tuple[int, ...] = (78, 156)
    norm_num_groups: int = 32  # fixed in the official code; tiny configs use fewer

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def attention_levels(self) -> tuple[bool, ...]:
        """Whether level l (encoder order, l = 0 at full resolution) has attention blocks."""
        return tuple(self.resolution // 2**level in self.attn_resolutions for level in range(len(self.ch_mult)))


def build_ldm_vae(cfg: LdmVaeConfig2D):
    from diffusers import AutoencoderKL

    attn = cfg.attention_levels
    return AutoencoderKL(
        in_channels=cfg.in_channels,
        out_channels=cfg.out_ch,
        down_block_types=tuple("AttnDownEncoderBlock2D" if a else "DownEncoderBlock2D" for a in attn),
        up_block_types=tuple("AttnUpDecoderBlock2D" if a else "UpDecoderBlock2D" for a in reversed(attn)),
        block_out_channels=tuple(cfg.ch * m for m in cfg.ch_mult),
        layers_per_block=cfg.num_res_blocks,
        latent_channels=cfg.embed_dim,
        norm_num_groups=cfg.norm_num_groups,
    )


def _vae_resnet(src: str, dst: str) -> dict[str, str]:
    names = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2", "nin_shortcut": "conv_shortcut"}
    return {f"{src}.{a}": f"{dst}.{b}" for a, b in names.items()}


def _vae_tables(cfg: LdmVaeConfig2D) -> tuple[dict[str, str], dict[str, str]]:
    """(plain module prefix table, attention block prefix table)."""
    n = len(cfg.ch_mult)
    table = {
        "encoder.conv_in": "encoder.conv_in",
        "encoder.norm_out": "encoder.conv_norm_out",
        "encoder.conv_out": "encoder.conv_out",
        "decoder.conv_in": "decoder.conv_in",
        "decoder.norm_out": "decoder.conv_norm_out",
        "decoder.conv_out": "decoder.conv_out",
        "quant_conv": "quant_conv",
        "post_quant_conv": "post_quant_conv",
    }
    attn = {}
    for part in ("encoder", "decoder"):
        table.update(_vae_resnet(f"{part}.mid.block_1", f"{part}.mid_block.resnets.0"))
        table.update(_vae_resnet(f"{part}.mid.block_2", f"{part}.mid_block.resnets.1"))
        attn[f"{part}.mid.attn_1"] = f"{part}.mid_block.attentions.0"
    for level in range(n):
        has_attn = cfg.attention_levels[level]
        for j in range(cfg.num_res_blocks):
            table.update(_vae_resnet(f"encoder.down.{level}.block.{j}", f"encoder.down_blocks.{level}.resnets.{j}"))
            if has_attn:
                attn[f"encoder.down.{level}.attn.{j}"] = f"encoder.down_blocks.{level}.attentions.{j}"
        if level != n - 1:
            table[f"encoder.down.{level}.downsample.conv"] = f"encoder.down_blocks.{level}.downsamplers.0.conv"
        up = n - 1 - level
        for j in range(cfg.num_res_blocks + 1):
            table.update(_vae_resnet(f"decoder.up.{level}.block.{j}", f"decoder.up_blocks.{up}.resnets.{j}"))
            if has_attn:
                attn[f"decoder.up.{level}.attn.{j}"] = f"decoder.up_blocks.{up}.attentions.{j}"
        if level != 0:
            table[f"decoder.up.{level}.upsample.conv"] = f"decoder.up_blocks.{up}.upsamplers.0.conv"
    return table, attn


_ATTN_1X1 = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


def map_ldm_vae_state_dict(
    sd: Mapping[str, torch.Tensor], cfg: LdmVaeConfig2D, *, what: str = "VAE"
) -> dict[str, torch.Tensor]:
    """`first_stage_model.*` (prefix stripped) -> diffusers `AutoencoderKL` state dict."""
    table, attn = _vae_tables(cfg)
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in sd.items():
        module, _, param = key.rpartition(".")
        block, _, layer = module.rpartition(".")
        if module in table:
            out[f"{table[module]}.{param}"] = value
        elif block in attn and layer in _ATTN_1X1:
            reshape = layer != "norm" and param == "weight"  # 1x1 Conv2d -> Linear
            out[f"{attn[block]}.{_ATTN_1X1[layer]}.{param}"] = value.reshape(value.shape[0], -1) if reshape else value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointMappingError(
            f"{what}: {len(unknown)} keys outside the LDM AutoencoderKL layout (e.g. {unknown[:5]})"
        )
    return out
