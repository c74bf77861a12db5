"""HTS-AT (the Swin-transformer audio tower of LAION-CLAP and MS-CLAP 2023) on transformers.

transformers' `ClapAudioModel` implements the HTS-AT network of `laion_clap.clap_module.htsat`
(also copied into `msclap.models.htsat`) for non-fusion inputs: batch norm over mel bins,
bicubic stretch of the frame axis to `spec_size * freq_ratio`, the fold of time into the
frequency axis, patch embedding, Swin stages with (shifted) window attention, the final
layer norm, the "group 2D CNN" regrouping and average pooling to the clip embedding
(`latent_output` upstream, `pooler_output` here).

This module owns the translation between the original state-dict layout (names relative to
the HTSAT module, e.g. `layers.0.blocks.1.attn.qkv.weight`) and transformers' layout
(`layers.0.blocks.1.attention.self.query.weight`, ...). The parts the transformers encoder does
not have are returned separately: the torchlibrosa front end (STFT kernels, mel matrix) and the
token-semantic classification head (`tscam_conv`, `head`), which does not feed the embedding
but is kept so a converted file converts back unchanged. The shifted-window attention masks
that the original stores as buffers are recomputed here and checked, never trusted blindly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn


@dataclass(frozen=True)
class HTSATConfig:
    """Geometry of one HTS-AT network (original `HTSAT_Swin_Transformer` arguments)."""

    spec_size: int = 256
    patch_size: int = 4
    patch_stride: tuple[int, int] = (4, 4)
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window_size: int = 8
    mlp_ratio: float = 4.0
    num_classes: int = 527
    n_mels: int = 64

    def __post_init__(self) -> None:
        if len(self.depths) != len(self.num_heads):
            raise ValueError(f"HTSAT: {len(self.depths)} depths but {len(self.num_heads)} head counts")
        if self.spec_size % self.n_mels:
            raise ValueError(f"HTSAT: spec_size {self.spec_size} is not a multiple of n_mels {self.n_mels}")
        if self.patch_stride[0] != self.patch_stride[1]:
            raise ValueError("HTSAT: only square patch strides are supported")
        last = self.grid // 2 ** (len(self.depths) - 1)
        if last < self.window_size or last % self.window_size:
            # transformers sizes each relative-position table for `window_size`; the original
            # shrinks the window of a smaller stage, which transformers cannot represent.
            raise ValueError(
                f"HTSAT: the last stage is {last}x{last} patches, which must be a multiple of "
                f"window_size {self.window_size}"
            )

    @property
    def num_features(self) -> int:
        """Width of the last stage = size of the clip embedding before projection."""
        return self.embed_dim * 2 ** (len(self.depths) - 1)

    @property
    def freq_ratio(self) -> int:
        return self.spec_size // self.n_mels

    @property
    def max_frames(self) -> int:
        """Longest log-mel (in STFT frames) the network accepts; shorter ones are stretched."""
        return self.spec_size * self.freq_ratio

    @property
    def grid(self) -> int:
        return self.spec_size // self.patch_stride[0]

    @property
    def tscam_kernel_height(self) -> int:
        return self.spec_size // 2 ** (len(self.depths) - 1) // self.patch_stride[0] // self.freq_ratio

    def block_windows(self) -> list[list[tuple[int, int, int]]]:
        """(resolution, window, shift) of every block, as the original SwinTransformerBlock
        decides them: a stage no larger than the window gets one unshifted window."""
        out = []
        for i, depth in enumerate(self.depths):
            res = self.grid // 2**i
            stage = []
            for j in range(depth):
                window, shift = self.window_size, (0 if j % 2 == 0 else self.window_size // 2)
                if res <= window:
                    window, shift = res, 0
                stage.append((res, window, shift))
            out.append(stage)
        return out


def hf_audio_config_kwargs(cfg: HTSATConfig, *, projection_dim: int) -> dict:
    """Keyword arguments of transformers' `ClapAudioConfig` for this geometry (non-fusion)."""
    return dict(
        window_size=cfg.window_size,
        num_mel_bins=cfg.n_mels,
        spec_size=cfg.spec_size,
        patch_size=cfg.patch_size,
        patch_stride=list(cfg.patch_stride),
        num_classes=cfg.num_classes,
        hidden_size=cfg.num_features,
        projection_dim=projection_dim,
        depths=list(cfg.depths),
        num_attention_heads=list(cfg.num_heads),
        enable_fusion=False,
        patch_embeds_hidden_size=cfg.embed_dim,
        enable_patch_layer_norm=True,
        flatten_patch_embeds=True,
        mlp_ratio=cfg.mlp_ratio,
        qkv_bias=True,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        drop_path_rate=0.0,
        projection_hidden_act="relu",
    )


class HTSATHead(nn.Module):
    """The token-semantic head of the original HTSAT (`tscam_conv`, `head`): trained,
    stored in every checkpoint, unused by the clip embedding."""

    def __init__(self, cfg: HTSATConfig):
        super().__init__()
        self.tscam_conv = nn.Conv2d(
            cfg.num_features, cfg.num_classes, kernel_size=(cfg.tscam_kernel_height, 3), padding=(0, 1)
        )
        self.head = nn.Linear(cfg.num_classes, cfg.num_classes)


def shifted_window_mask(resolution: int, window: int, shift: int) -> torch.Tensor:
    """The (num_windows, window*window, window*window) float mask of 0 / -100 that the original
    SwinTransformerBlock registers as `attn_mask` for a shifted block."""
    idx = torch.arange(resolution)
    region = (idx >= resolution - window).long() + (idx >= resolution - shift).long()
    label = (region[:, None] * 3 + region[None, :]).float()  # (H, W) region id, H-major
    n = resolution // window
    windows = label.view(n, window, n, window).permute(0, 2, 1, 3).reshape(n * n, window * window)
    diff = windows.unsqueeze(1) - windows.unsqueeze(2)
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


def relative_position_index(window: int) -> torch.Tensor:
    """The (window^2, window^2) index into the relative-position bias table (Swin)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window - 1
    rel[:, :, 1] += window - 1
    rel[:, :, 0] *= 2 * window - 1
    return rel.sum(-1)


FRONTEND_KEYS = (
    "spectrogram_extractor.stft.conv_real.weight",
    "spectrogram_extractor.stft.conv_imag.weight",
    "logmel_extractor.melW",
)
HEAD_KEYS = ("tscam_conv.weight", "tscam_conv.bias", "head.weight", "head.bias")

# Original -> transformers names inside one Swin block (after `layers.i.blocks.j.`).
_BLOCK_RENAMES = {
    "norm1.weight": "layernorm_before.weight",
    "norm1.bias": "layernorm_before.bias",
    "attn.relative_position_bias_table": "attention.self.relative_position_bias_table",
    "attn.relative_position_index": "attention.self.relative_position_index",
    "attn.proj.weight": "attention.output.dense.weight",
    "attn.proj.bias": "attention.output.dense.bias",
    "norm2.weight": "layernorm_after.weight",
    "norm2.bias": "layernorm_after.bias",
    "mlp.fc1.weight": "intermediate.dense.weight",
    "mlp.fc1.bias": "intermediate.dense.bias",
    "mlp.fc2.weight": "output.dense.weight",
    "mlp.fc2.bias": "output.dense.bias",
}
# Order of a block's entries in an original state dict.
_BLOCK_ORDER = (
    "norm1.weight",
    "norm1.bias",
    "attn.relative_position_bias_table",
    "attn.relative_position_index",
    "attn.qkv.weight",
    "attn.qkv.bias",
    "attn.proj.weight",
    "attn.proj.bias",
    "norm2.weight",
    "norm2.bias",
    "mlp.fc1.weight",
    "mlp.fc1.bias",
    "mlp.fc2.weight",
    "mlp.fc2.bias",
)
_TOP_RENAMES = {
    "bn0.weight": "batch_norm.weight",
    "bn0.bias": "batch_norm.bias",
    "bn0.running_mean": "batch_norm.running_mean",
    "bn0.running_var": "batch_norm.running_var",
    "bn0.num_batches_tracked": "batch_norm.num_batches_tracked",
    "patch_embed.proj.weight": "patch_embed.proj.weight",
    "patch_embed.proj.bias": "patch_embed.proj.bias",
    "patch_embed.norm.weight": "patch_embed.norm.weight",
    "patch_embed.norm.bias": "patch_embed.norm.bias",
    "norm.weight": "norm.weight",
    "norm.bias": "norm.bias",
}
_BLOCK_RE = re.compile(r"layers\.(\d+)\.blocks\.(\d+)\.(.+)")
_DOWNSAMPLE_RE = re.compile(r"layers\.(\d+)\.downsample\.(reduction\.weight|norm\.weight|norm\.bias)")
_QKV = ("query", "key", "value")


@dataclass
class HTSATParts:
    """An original HTSAT state dict split by destination."""

    encoder: dict[str, torch.Tensor]  # transformers `ClapAudioEncoder` names
    frontend: dict[str, torch.Tensor]  # torchlibrosa names (FRONTEND_KEYS)
    head: dict[str, torch.Tensor]  # HEAD_KEYS
    unknown: list[str]  # original keys (relative to HTSAT) that are not HTSAT weights
    problems: list[str]  # stored buffers that contradict the geometry


def split_htsat_state_dict(state: Mapping[str, torch.Tensor], cfg: HTSATConfig) -> HTSATParts:
    """Translate an original HTSAT state dict (keys relative to the HTSAT module)."""
    parts = HTSATParts({}, {}, {}, [], [])
    windows = cfg.block_windows()
    for key, value in state.items():
        if key in FRONTEND_KEYS:
            parts.frontend[key] = value
        elif key in HEAD_KEYS:
            parts.head[key] = value
        elif key in _TOP_RENAMES:
            parts.encoder[_TOP_RENAMES[key]] = value
        elif _DOWNSAMPLE_RE.fullmatch(key):
            parts.encoder[key] = value
        elif m := _BLOCK_RE.fullmatch(key):
            i, j, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            prefix = f"layers.{i}.blocks.{j}."
            if rest in ("attn.qkv.weight", "attn.qkv.bias"):
                kind = rest.rsplit(".", 1)[1]
                if value.shape[0] % 3:
                    parts.problems.append(f"{key} has {value.shape[0]} rows, not a multiple of 3")
                    continue
                for name, chunk in zip(_QKV, value.chunk(3, dim=0)):
                    parts.encoder[f"{prefix}attention.self.{name}.{kind}"] = chunk.clone()
            elif rest in _BLOCK_RENAMES:
                parts.encoder[prefix + _BLOCK_RENAMES[rest]] = value
            elif rest == "attn_mask":
                _check_mask(parts, key, value, windows, i, j)
            else:
                parts.unknown.append(key)
        else:
            parts.unknown.append(key)
    return parts


def _check_mask(parts: HTSATParts, key: str, value: torch.Tensor, windows, i: int, j: int) -> None:
    if i >= len(windows) or j >= len(windows[i]):
        parts.unknown.append(key)
        return
    res, window, shift = windows[i][j]
    if shift == 0:
        parts.problems.append(f"{key} is stored but block ({i}, {j}) of this geometry is not shifted")
        return
    expected = shifted_window_mask(res, window, shift)
    if tuple(value.shape) != tuple(expected.shape) or not torch.equal(value.float(), expected):
        parts.problems.append(f"{key} differs from the shifted-window mask of this geometry")


def join_htsat_state_dict(
    encoder: Mapping[str, torch.Tensor],
    frontend: Mapping[str, torch.Tensor],
    head: Mapping[str, torch.Tensor],
    cfg: HTSATConfig,
) -> dict[str, torch.Tensor]:
    """The original HTSAT state dict (keys relative to the HTSAT module) from the parts;
    the inverse of `split_htsat_state_dict`, attention masks regenerated."""
    out: dict[str, torch.Tensor] = {}
    for key in FRONTEND_KEYS:
        out[key] = frontend[key]
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        out[f"bn0.{name}"] = encoder[f"batch_norm.{name}"]
    for name in ("proj.weight", "proj.bias", "norm.weight", "norm.bias"):
        out[f"patch_embed.{name}"] = encoder[f"patch_embed.{name}"]
    windows = cfg.block_windows()
    for i, stage in enumerate(windows):
        for j, (res, window, shift) in enumerate(stage):
            src = f"layers.{i}.blocks.{j}."
            if shift > 0:
                out[src + "attn_mask"] = shifted_window_mask(res, window, shift)
            for suffix in _BLOCK_ORDER:
                if suffix in ("attn.qkv.weight", "attn.qkv.bias"):
                    kind = suffix.rsplit(".", 1)[1]
                    out[src + suffix] = torch.cat([encoder[f"{src}attention.self.{n}.{kind}"] for n in _QKV], dim=0)
                else:
                    out[src + suffix] = encoder[src + _BLOCK_RENAMES[suffix]]
        if i < len(windows) - 1:
            for name in ("reduction.weight", "norm.weight", "norm.bias"):
                out[f"layers.{i}.downsample.{name}"] = encoder[f"layers.{i}.downsample.{name}"]
    out["norm.weight"] = encoder["norm.weight"]
    out["norm.bias"] = encoder["norm.bias"]
    for key in HEAD_KEYS:
        out[key] = head[key]
    return out
