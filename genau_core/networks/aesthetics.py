"""Meta Audiobox Aesthetics (Tjandra et al. 2025): a WavLM-Base+ encoder and four score heads, as
facebookresearch/audiobox-aesthetics 0.0.4 runs them.

Network (`audiobox_aesthetics/model/aes.py::AesMultiOutput` with `model/wavlm.py::WavLM` under
`DEFAULT_AUDIO_CFG`), inference only:

- input: 16 kHz mono windows of 10 s (160000 samples), zero-padded, with a boolean mask of the real
  samples (`infer.py::make_inference_batch`); `cfg.normalize` is False (no input layer norm).
- feature extractor: 7 bias-free Conv1d (512 ch; kernels 10,3,3,3,3,2,2; strides 5,2,2,2,2,2,2), the
  first followed by a GroupNorm(512, 512) computed in float32 over the whole padded window, each by an
  exact (erf) GELU -> 499 frames of 512 per 10-s window; LayerNorm(512); Linear(512, 768).
- frame padding mask (`WavLM.forward_padding_mask`): the sample mask without its last `N % frames`
  samples, cut into `frames` equal chunks; a frame is padding when all its samples are padding.
  Padding frames are zeroed before the positional convolution.
- transformer (`TransformerEncoder`, post-norm, `layer_norm_first` False): x + GELU(weight-normed
  grouped Conv1d(768, 768, k=128, groups=16, pad 64) with its last frame removed), LayerNorm; 12 layers
  of 12-head self-attention (768 / FFN 3072, exact GELU) with WavLM's gated relative position bias: a
  bucketed (320 buckets, max distance 800, bidirectional) bias table in layer 0 shared by all layers,
  each layer scaling it per query by `a * (b * grep_a - 1) + 2` where (a, b) = sigmoid of the summed
  halves of `grep_linear(query head)`; padding keys masked with -inf.
- heads (`AesMultiOutput.forward`): for each axis (CE, CU, PC, PQ) a softmax-weighted sum of the 13
  hidden states (the positional-conv output and the 12 layers), the mean over non-padding frames,
  L2 normalisation (`normalize_embed`), then `create_mlp_block` (one Linear(768, 1) in the release).
- outputs are z-scores per axis; the checkpoint's `target_transform` {axis: {mean, std}} maps them back
  (`Normalize.inverse`: x * std + mean) - applied by `AestheticsNet.scores`.

The model's `precision` setting never enables autocast in the reference (`AesMultiOutput.__post_init__`
replaces the string with a torch dtype, then tests the dtype against {"16", "bf16"}), so every released
configuration runs in float32; so do we.

Checkpoint (`checkpoint.pt`, https://dl.fbaipublicfiles.com/audiobox-aesthetics/checkpoint.pt, and the
same weights as `model.safetensors` + `config.json` in the hf repo facebook/audiobox-aesthetics): a dict
with "state_dict" (keys of `AesMultiOutput` under the Lightning prefix "model."), "model_cfg" (the
`AesMultiOutput` fields above) and "target_transform". `AestheticsNet` uses the reference's own key
names, so the mapping is the reference's `re.sub("^model.", "", key)` and a strict load.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

AXES = ("CE", "CU", "PC", "PQ")  # aes.py AXES_NAME order (dict order of every output)
AXIS_NAMES = {
    "CE": "content enjoyment",
    "CU": "content usefulness",
    "PC": "production complexity",
    "PQ": "production quality",
}
SAMPLE_RATE = 16000
WINDOW_SAMPLES = 10 * SAMPLE_RATE  # infer.py: make_inference_batch(wavs, 10, 10, sample_rate=16000)
HOP_SAMPLES = 10 * SAMPLE_RATE
CHECKPOINT_FILENAME = "checkpoint.pt"
CHECKPOINT_URL = "https://dl.fbaipublicfiles.com/audiobox-aesthetics/checkpoint.pt"
# AesPredictor.setup_model passes exactly these model_cfg keys (plus target_transform) to AesMultiOutput
MODEL_CFG_KEYS = (
    "proj_num_layer",
    "proj_ln",
    "proj_act_fn",
    "proj_dropout",
    "nth_layer",
    "use_weighted_layer_sum",
    "precision",
    "normalize_embed",
    "output_dim",
)


@dataclass(frozen=True)
class WavLMConfig:
    """The WavLM encoder geometry (`aes.py::DEFAULT_AUDIO_CFG`, WavLM Base+); smaller values for tests."""

    conv_layers: tuple[tuple[int, int, int], ...] = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2
    embed_dim: int = 768
    ffn_dim: int = 3072
    layers: int = 12
    heads: int = 12
    conv_pos: int = 128
    conv_pos_groups: int = 16
    num_buckets: int = 320
    max_distance: int = 800

    def __post_init__(self) -> None:
        if self.embed_dim % self.heads:
            raise ValueError(f"WavLM: embed_dim {self.embed_dim} is not a multiple of {self.heads} heads")
        if self.embed_dim % self.conv_pos_groups:
            raise ValueError(f"WavLM: embed_dim {self.embed_dim} is not a multiple of {self.conv_pos_groups} groups")
        if len({c[0] for c in self.conv_layers}) != 1:
            raise ValueError("WavLM: every feature-extractor conv has the same width (GroupNorm on the first)")

    @property
    def conv_dim(self) -> int:
        return self.conv_layers[-1][0]

    def frames(self, n_samples: int) -> int:
        """Output frames of the feature extractor for `n_samples` input samples (499 for 160000)."""
        n = n_samples
        for _, k, s in self.conv_layers:
            n = (n - k) // s + 1
        return n


@dataclass(frozen=True)
class AestheticsConfig:
    """`AesMultiOutput` fields as the checkpoint's "model_cfg" stores them, the encoder geometry, and the
    checkpoint's `target_transform` ({axis: {"mean": m, "std": s}}; empty: raw z-scores)."""

    wavlm: WavLMConfig = field(default_factory=WavLMConfig)
    proj_num_layer: int = 1
    proj_ln: bool = False
    proj_act_fn: str = "gelu"
    proj_dropout: float = 0.0
    nth_layer: int = 13
    use_weighted_layer_sum: bool = True
    precision: str = "32"
    normalize_embed: bool = True
    output_dim: int = 1
    target_transform: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not self.use_weighted_layer_sum:
            # aes.py's other branch indexes the stacked (T, B, C, L) tensor as [-1][0]: not a per-clip embedding
            problems.append("use_weighted_layer_sum=False (the reference's branch for it does not run)")
        if self.nth_layer != self.wavlm.layers + 1:
            problems.append(
                f"nth_layer={self.nth_layer} (the weighted sum needs all {self.wavlm.layers + 1} hidden "
                "states; the reference fails on fewer)"
            )
        if self.proj_num_layer < 1:
            problems.append(f"proj_num_layer={self.proj_num_layer}")
        if self.proj_num_layer > 1 and self.proj_act_fn != "gelu":
            problems.append(f"proj_act_fn={self.proj_act_fn!r} (only 'gelu' exists in create_mlp_block)")
        if self.output_dim != 1:
            problems.append(f"output_dim={self.output_dim} (one score per axis)")
        if str(self.precision) not in ("64", "32", "16", "bf16"):
            problems.append(f"precision={self.precision!r}")
        bad = [a for a in self.target_transform if a not in AXES]
        missing = [a for a in AXES if self.target_transform and a not in self.target_transform]
        if bad or missing:
            problems.append(f"target_transform axes {sorted(self.target_transform)} (expected {list(AXES)})")
        for axis, t in self.target_transform.items():
            if not {"mean", "std"} <= set(t):
                problems.append(f"target_transform[{axis!r}] lacks mean/std")
        if problems:
            raise ValueError("audiobox-aesthetics configuration not supported: " + "; ".join(problems))

    def model_cfg(self) -> dict:
        """The checkpoint's "model_cfg" entry."""
        return {k: getattr(self, k) for k in MODEL_CFG_KEYS}


# -- WavLM ----------------------------------------------------------------------------------------
class _ConvBlock(nn.Sequential):
    """conv (no bias) -> Dropout (index 1, keeps the reference's key indices) -> [GroupNorm] -> GELU."""

    def __init__(self, n_in: int, n_out: int, kernel: int, stride: int, group_norm: bool):
        layers: list[nn.Module] = [nn.Conv1d(n_in, n_out, kernel, stride=stride, bias=False), nn.Dropout(0.0)]
        if group_norm:
            layers.append(nn.GroupNorm(n_out, n_out, affine=True))
        layers.append(nn.GELU())
        super().__init__(*layers)


class ConvFeatureExtractor(nn.Module):
    """`ConvFeatureExtractionModel(mode="default")`: (B, N) -> (B, 512, frames)."""

    def __init__(self, config: WavLMConfig):
        super().__init__()
        blocks, n_in = [], 1
        for i, (dim, k, s) in enumerate(config.conv_layers):
            blocks.append(_ConvBlock(n_in, dim, k, s, group_norm=i == 0))
            n_in = dim
        self.conv_layers = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)
        for block in self.conv_layers:
            x = block(x)  # GroupNorm runs in float32 here already (the reference's Fp32GroupNorm)
        return x


class PositionalConv(nn.Module):
    """The weight-normed positional convolution `pos_conv.0` (parameters `weight_g`, `weight_v`, `bias`
    as `torch.nn.utils.weight_norm(conv, dim=2)` stores them), SamePad (drop the last frame), GELU."""

    def __init__(self, config: WavLMConfig):
        super().__init__()
        d, k, g = config.embed_dim, config.conv_pos, config.conv_pos_groups
        self.kernel, self.groups = k, g
        v = torch.empty(d, d // g, k)
        nn.init.normal_(v, mean=0.0, std=math.sqrt(4.0 / (k * d)))  # TransformerEncoder's init
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(v, dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, T)."""
        weight = torch._weight_norm(self.weight_v, self.weight_g, 2)  # the weight_norm hook's own op
        y = F.conv1d(x, weight, self.bias, padding=self.kernel // 2, groups=self.groups)
        if self.kernel % 2 == 0:
            y = y[:, :, :-1]
        return F.gelu(y)


class _PosConvSequential(nn.Module):
    """Holds `PositionalConv` at key index 0 (`encoder.pos_conv.0.*`)."""

    def __init__(self, config: WavLMConfig):
        super().__init__()
        self.add_module("0", PositionalConv(config))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._modules["0"](x)


def relative_position_buckets(length: int, num_buckets: int, max_distance: int) -> torch.Tensor:
    """(length, length) bucket of key position - query position (`MultiheadAttention._relative_positions_bucket`,
    bidirectional), with its float32 log as in the reference."""
    pos = torch.arange(length, dtype=torch.long)
    rel = pos[None, :] - pos[:, None]
    half = num_buckets // 2
    buckets = (rel > 0).to(torch.long) * half
    rel = rel.abs()
    max_exact = half // 2
    is_small = rel < max_exact
    large = max_exact + (
        torch.log(rel.float() / max_exact) / math.log(max_distance / max_exact) * (half - max_exact)
    ).to(torch.long)
    large = torch.minimum(large, torch.full_like(large, half - 1))
    return buckets + torch.where(is_small, rel, large)


class SelfAttention(nn.Module):
    """WavLM's `MultiheadAttention` (self-attention, gated relative position bias), inference path."""

    def __init__(self, config: WavLMConfig, has_relative_attention_bias: bool):
        super().__init__()
        d, h = config.embed_dim, config.heads
        self.heads, self.head_dim = h, d // h
        self.num_buckets, self.max_distance = config.num_buckets, config.max_distance
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(config.num_buckets, h)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.q_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)
        self.grep_linear = nn.Linear(self.head_dim, 8)
        self.grep_a = nn.Parameter(torch.ones(1, h, 1, 1))

    def position_bias(self, length: int) -> torch.Tensor:
        """(heads, T, T) relative position bias (`compute_bias`)."""
        buckets = relative_position_buckets(length, self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets.to(self.relative_attention_bias.weight.device)).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor, position_bias: torch.Tensor) -> torch.Tensor:
        """x (B, T, C), key_padding (B, T) True = padding, position_bias (H, T, T) -> (B, T, C)."""
        b, t, c = x.shape
        h, d = self.heads, self.head_dim
        heads_in = x.view(b, t, h, d).permute(0, 2, 1, 3)  # the gate reads the layer input, per head
        gate_a, gate_b = torch.sigmoid(self.grep_linear(heads_in).view(b, h, t, 2, 4).sum(-1)).chunk(2, dim=-1)
        gate = gate_a * (gate_b * self.grep_a - 1.0) + 2.0  # (B, H, T, 1)
        bias = gate * position_bias.unsqueeze(0)
        bias = bias.masked_fill(key_padding[:, None, None, :], float("-inf"))
        q = self.q_proj(x).view(b, t, h, d).transpose(1, 2)
        k = self.k_proj(x).view(b, t, h, d).transpose(1, 2)
        v = self.v_proj(x).view(b, t, h, d).transpose(1, 2)
        # softmax(q k^T / sqrt(d) + bias) v: F.multi_head_attention_forward's computation, fused
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, c))


class EncoderLayer(nn.Module):
    """`TransformerSentenceEncoderLayer` with `layer_norm_first=False` (post-norm), eval mode."""

    def __init__(self, config: WavLMConfig, has_relative_attention_bias: bool):
        super().__init__()
        d = config.embed_dim
        self.self_attn = SelfAttention(config, has_relative_attention_bias)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, config.ffn_dim)
        self.fc2 = nn.Linear(config.ffn_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor, position_bias: torch.Tensor) -> torch.Tensor:
        x = self.self_attn_layer_norm(x + self.self_attn(x, key_padding, position_bias))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


class TransformerEncoder(nn.Module):
    def __init__(self, config: WavLMConfig):
        super().__init__()
        self.pos_conv = _PosConvSequential(config)
        self.layers = nn.ModuleList([EncoderLayer(config, i == 0) for i in range(config.layers)])
        self.layer_norm = nn.LayerNorm(config.embed_dim)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> list[torch.Tensor]:
        """x (B, T, C) after the projection, padding (B, T) -> the 13 hidden states (B, T, C) the heads
        weigh: the input of layer 0, then each layer's output (`extract_features(tgt_layer=12)`)."""
        x = x.masked_fill(padding.unsqueeze(-1), 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        x = self.layer_norm(x)
        states = [x]
        bias = self.layers[0].self_attn.position_bias(x.shape[1])
        for layer in self.layers:
            x = layer(x, padding, bias)
            states.append(x)
        return states


class WavLM(nn.Module):
    """`WavLM` (keys as the reference's `wavlm_model.*`), inference path of `extract_features`."""

    def __init__(self, config: WavLMConfig):
        super().__init__()
        self.config = config
        self.feature_extractor = ConvFeatureExtractor(config)
        self.post_extract_proj = nn.Linear(config.conv_dim, config.embed_dim)
        self.mask_emb = nn.Parameter(torch.empty(config.embed_dim).uniform_())  # training-time masking only
        self.encoder = TransformerEncoder(config)
        self.layer_norm = nn.LayerNorm(config.conv_dim)

    @staticmethod
    def frame_padding(padding: torch.Tensor, frames: int) -> torch.Tensor:
        """`forward_padding_mask`: (B, N) sample padding -> (B, frames) frame padding."""
        extra = padding.shape[1] % frames
        if extra > 0:
            padding = padding[:, :-extra]
        return padding.view(padding.shape[0], frames, -1).all(-1)

    def forward(self, wav: torch.Tensor, valid: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """wav (B, N), valid (B, N) True on real samples -> (hidden states, frame padding (B, frames))."""
        features = self.layer_norm(self.feature_extractor(wav).transpose(1, 2))
        padding = self.frame_padding(~valid, features.shape[1])
        return self.encoder(self.post_extract_proj(features), padding), padding


# -- heads ------------------------------------------------------------------------------------------
def mlp_block(config: AestheticsConfig, dim: int) -> nn.Sequential:
    """`model/utils.py::create_mlp_block(dim, output_dim, proj_num_layer, act, proj_ln, dropout)` with the
    same module order (so the same key indices)."""
    layers: list[nn.Module] = []
    for i in range(config.proj_num_layer):
        if i == config.proj_num_layer - 1:
            layers.append(nn.Linear(dim, config.output_dim))
        else:
            layers.append(nn.Linear(dim, dim))
            if config.proj_ln:
                layers.append(nn.LayerNorm(dim))
            layers.append(nn.GELU())
            if config.proj_dropout != 0:
                layers.append(nn.Dropout(config.proj_dropout))
    return nn.Sequential(*layers)


class AestheticsNet(nn.Module):
    """`AesMultiOutput` for inference: 16 kHz windows + masks -> per-axis scores."""

    def __init__(self, config: AestheticsConfig | None = None):
        super().__init__()
        self.config = config = config or AestheticsConfig()
        self.wavlm_model = WavLM(config.wavlm)
        dim = config.wavlm.embed_dim
        self.proj_layer = nn.ModuleDict({axis: mlp_block(config, dim) for axis in AXES})
        n = config.nth_layer
        self.layer_weights = nn.ParameterDict({axis: nn.Parameter(torch.ones(n) / n) for axis in AXES})

    def forward(self, wav: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
        """wav (B, N) at 16 kHz, valid (B, N) bool -> {axis: (B,) z-scores} (`AesMultiOutput.forward`)."""
        states, padding = self.wavlm_model(wav, valid)
        stacked = torch.stack(states, dim=-1)  # (B, T, C, L)
        keep = (~padding).unsqueeze(-1).to(stacked.dtype)  # (B, T, 1)
        out = {}
        for axis in AXES:
            weights = torch.softmax(self.layer_weights[axis], dim=-1)
            embed = torch.einsum("btcl,l->btc", stacked, weights)
            embed = (embed * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)
            if self.config.normalize_embed:
                embed = F.normalize(embed, dim=-1)
            out[axis] = self.proj_layer[axis](embed).squeeze(-1)
        return out

    def scores(self, wav: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
        """The forward pass mapped back to the rating scale with the checkpoint's `target_transform`
        (`Normalize.inverse`: x * std + mean); z-scores when the configuration holds none."""
        out = self(wav, valid)
        tt = self.config.target_transform
        return {a: out[a] * tt[a]["std"] + tt[a]["mean"] for a in AXES} if tt else out


# -- windowing ------------------------------------------------------------------------------------
def aesthetics_windows(n_samples: int, window: int = WINDOW_SAMPLES, hop: int = HOP_SAMPLES) -> list[tuple[int, int]]:
    """(start, valid length) of every window of a clip (`infer.py::make_inference_batch`): starts at 0, hop,
    2 hop, ... while start < n; each window holds the next `window` samples, zero-padded to `window`; its
    weight in the clip's score is valid / window."""
    if n_samples < 1:
        raise ValueError("audiobox-aesthetics: empty clip")
    return [(s, min(window, n_samples - s)) for s in range(0, n_samples, hop)]


# -- checkpoint ------------------------------------------------------------------------------------
_LIGHTNING_PREFIX = re.compile("^model.")  # the reference's own pattern (the dot matches any character)


def aesthetics_state_from_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The checkpoint's "state_dict" -> `AestheticsNet` keys, as `AesPredictor.setup_model` renames them."""
    return {_LIGHTNING_PREFIX.sub("", k): v for k, v in state.items()}


def aesthetics_state_to_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`AestheticsNet.state_dict()` -> the checkpoint's "state_dict" keys (Lightning prefix "model.")."""
    return {f"model.{k}": v for k, v in state.items()}


def config_from_checkpoint(
    model_cfg: Mapping, target_transform: Mapping, wavlm: WavLMConfig | None = None
) -> AestheticsConfig:
    """`AestheticsConfig` from a checkpoint's "model_cfg" and "target_transform" (the keys
    `AesPredictor.setup_model` reads; others are ignored there and here). Raises ValueError."""
    missing = [k for k in MODEL_CFG_KEYS if k not in model_cfg]
    if missing:
        raise ValueError(f"model_cfg lacks {missing}")
    tt = {str(a): {"mean": float(v["mean"]), "std": float(v["std"])} for a, v in dict(target_transform).items()}
    return AestheticsConfig(
        wavlm=wavlm or WavLMConfig(), target_transform=tt, **{k: model_cfg[k] for k in MODEL_CFG_KEYS}
    )
