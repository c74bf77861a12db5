"""PaSST (Koutini et al., "Efficient Training of Audio Transformers with Patchout"), as hear21passt runs it.

Architecture, front end and state-dict keys follow kkoutini/passt_hear21 (hear21passt 0.0.26):

- front end `hear21passt/models/preprocess.py::AugmentMelSTFT` in eval mode, built by
  `hear21passt/base.py::get_basic_model`: 32 kHz mono; pre-emphasis `y[n] = x[n+1] - 0.97 x[n]`
  (a valid conv1d, one sample shorter); `torch.stft(n_fft=1024, hop=320, win_length=800,
  window=hann_window(800, periodic=False), center=True, reflect)`; power |X|^2; a Kaldi mel bank
  (`torchaudio.compliance.kaldi.get_mel_banks(128, 1024, 32000, fmin=0, fmax=15000)`, padded with a
  zero column for the Nyquist bin; fmax = sr // 2 - fmax_aug_range // 2 = 16000 - 1000);
  `log(mel + 1e-5)`, then `(x + 4.5) / 5`. SpecAugment masks and fmin/fmax jitter are training-only.
- network `hear21passt/models/passt.py::PaSST` for arch `passt_s_swa_p16_128_ap476` (checkpoint
  `passt-s-f128-p16-s10-ap.476-swa.pt`): 16x16 patches with stride 10x10 over (128 mels, time),
  grid 12 x 99 (input_tdim 998), separate frequency / time position embeddings (time cut to the
  input's length), class + distillation tokens, 12 pre-norm blocks of dim 768 / 12 heads /
  MLP 3072 (GELU), final LayerNorm (eps 1e-6). Outputs, as `PaSST.forward` returns them:
  `features = (norm(x)[:, 0] + norm(x)[:, 1]) / 2` (768-d, the "embedding") and
  `logits = head(features)` with `head = LayerNorm(768) -> Linear(768, 527)` (before the sigmoid).
  `head_dist` is in the checkpoint but unused at inference, exactly as in the reference.

The released file holds the bare `PaSST` state dict (hear21passt loads it strictly through timm's
`load_pretrained` after `checkpoint_filter_fn`). `passt_state_from_official` applies the same
filter (an optional {"model": ...} container, 2-D patch weights of early checkpoints reshaped)
and maps the keys onto `PasstAudio` (prefix "net."); the front end has no stored tensors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class PasstConfig:
    # front end (AugmentMelSTFT as get_basic_model builds it)
    sample_rate: int = 32000
    n_fft: int = 1024
    win_length: int = 800
    hop_length: int = 320
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float = 15000.0
    preemphasis: float = 0.97
    log_offset: float = 1e-5
    norm_shift: float = 4.5
    norm_scale: float = 5.0
    # network (get_model(arch="passt_s_swa_p16_128_ap476") defaults)
    patch_size: int = 16
    fstride: int = 10
    tstride: int = 10
    input_fdim: int = 128
    input_tdim: int = 998
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    num_classes: int = 527

    @property
    def grid_size(self) -> tuple[int, int]:
        """PatchEmbed.grid_size: the position-embedding grid (12, 99) for the released model."""
        return self.input_fdim // self.fstride, self.input_tdim // self.tstride

    def frames(self, n_samples: int) -> int:
        """Spectrogram frames of a clip: the pre-emphasis drops one sample, the STFT is centred."""
        return 1 + (n_samples - 1) // self.hop_length

    @property
    def min_samples(self) -> int:
        """Shortest clip with one patch column (16 frames)."""
        return (self.patch_size - 1) * self.hop_length + 1

    @property
    def max_samples(self) -> int:
        """Longest clip whose patch columns fit the time position embedding (321600 at 32 kHz,
        10.05 s); the reference fails on longer input with a shape error."""
        max_frames = (self.grid_size[1] - 1) * self.tstride + self.patch_size + self.tstride - 1
        return (max_frames - 1) * self.hop_length + self.hop_length


PASST_S_SWA_P16_128_AP476 = PasstConfig()
PASST_CHECKPOINT_FILENAME = "passt-s-f128-p16-s10-ap.476-swa.pt"
PASST_CHECKPOINT_URL = (
    "https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt"
)


def kaldi_mel_banks(num_bins: int, n_fft: int, sample_rate: float, fmin: float, fmax: float) -> torch.Tensor:
    """(num_bins, n_fft // 2) triangular filters on Kaldi's mel scale 1127 ln(1 + f / 700), equally
    spaced in mel between fmin and fmax, evaluated at the FFT bin frequencies k * sr / n_fft, in
    float32 as torchaudio's `compliance.kaldi.get_mel_banks` computes them (no VTLN warp)."""
    if not 0.0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"mel band {fmin}-{fmax} Hz does not fit a {sample_rate} Hz signal")
    mel_low = 1127.0 * math.log(1.0 + fmin / 700.0)
    mel_high = 1127.0 * math.log(1.0 + fmax / 700.0)
    delta = (mel_high - mel_low) / (num_bins + 1)
    b = torch.arange(num_bins).unsqueeze(1)
    left = mel_low + b * delta
    center = mel_low + (b + 1.0) * delta
    right = mel_low + (b + 2.0) * delta
    mel = 1127.0 * (1.0 + (sample_rate / n_fft) * torch.arange(n_fft / 2) / 700.0).log()
    up = (mel.unsqueeze(0) - left) / (center - left)
    down = (right - mel.unsqueeze(0)) / (right - center)
    return torch.clamp(torch.minimum(up, down), min=0.0)


class PasstMelFrontEnd(nn.Module):
    """Waveform (B, N) at 32 kHz -> normalised log-mel (B, 128, frames). No stored tensors."""

    def __init__(self, config: PasstConfig = PASST_S_SWA_P16_128_AP476):
        super().__init__()
        c = self.config = config
        self.register_buffer("window", torch.hann_window(c.win_length, periodic=False), persistent=False)
        self.register_buffer("preemphasis_coefficient", torch.as_tensor([[[-c.preemphasis, 1.0]]]), persistent=False)
        banks = kaldi_mel_banks(c.n_mels, c.n_fft, c.sample_rate, c.fmin, c.fmax)
        self.register_buffer("mel_basis", F.pad(banks, (0, 1)), persistent=False)  # + Nyquist bin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        x = F.conv1d(x.unsqueeze(1), self.preemphasis_coefficient).squeeze(1)
        spec = torch.stft(
            x,
            c.n_fft,
            hop_length=c.hop_length,
            win_length=c.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.mel_basis, power)
        return ((mel + c.log_offset).log() + c.norm_shift) / c.norm_scale


class PatchEmbed(nn.Module):
    """Conv2d patchifier (key `patch_embed.proj`), output kept as (B, E, F', T')."""

    def __init__(self, config: PasstConfig):
        super().__init__()
        c = config
        self.proj = nn.Conv2d(1, c.embed_dim, kernel_size=c.patch_size, stride=(c.fstride, c.tstride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        # softmax(q k^T / sqrt(d)) v: the reference's explicit matmuls, fused (same scale)
        x = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, config: PasstConfig):
        super().__init__()
        d = config.embed_dim
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = Attention(d, config.num_heads)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = Mlp(d, int(d * config.mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PasstNet(nn.Module):
    """`PaSST` with distillation token, eval mode (no patchout, no dropout); keys as released."""

    def __init__(self, config: PasstConfig = PASST_S_SWA_P16_128_AP476):
        super().__init__()
        c = self.config = config
        d = c.embed_dim
        f_grid, t_grid = c.grid_size
        self.patch_embed = PatchEmbed(c)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, d))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, d))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, d, f_grid, 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, d, 1, t_grid))
        self.blocks = nn.Sequential(*[Block(c) for _ in range(c.depth)])
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, c.num_classes))
        self.head_dist = nn.Linear(d, c.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """`PaSST.init_weights('')`: truncated normal (std 0.02) for tokens, position embeddings and
        every Linear weight (zero bias), unit LayerNorms; Conv2d keeps PyTorch's default init."""
        for p in (
            self.new_pos_embed,
            self.freq_new_pos_embed,
            self.time_new_pos_embed,
            self.dist_token,
            self.cls_token,
        ):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, 128, frames) -> (logits (B, classes), embedding (B, embed_dim))."""
        x = self.patch_embed(spec)  # (B, E, F', T')
        b, _, f, t = x.shape
        if t > self.time_new_pos_embed.shape[-1] or f != self.freq_new_pos_embed.shape[2]:
            raise ValueError(
                f"PaSST: input gives a {f} x {t} patch grid; the position embeddings hold "
                f"{self.freq_new_pos_embed.shape[2]} x {self.time_new_pos_embed.shape[-1]} "
                f"(at most {self.config.max_samples} samples at {self.config.sample_rate} Hz per window)"
            )
        x = x + self.time_new_pos_embed[:, :, :, :t] + self.freq_new_pos_embed
        x = x.flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(b, -1, -1) + self.new_pos_embed[:, :1, :]
        dist = self.dist_token.expand(b, -1, -1) + self.new_pos_embed[:, 1:, :]
        x = self.norm(self.blocks(torch.cat((cls, dist, x), dim=1)))
        embedding = (x[:, 0] + x[:, 1]) / 2
        return self.head(embedding), embedding


class PasstAudio(nn.Module):
    """Front end + network: waveform (B, N) at 32 kHz -> (logits (B, 527), embedding (B, 768)),
    hear21passt's `PasstBasicWrapper.forward` in mode "logits" / "embed_only" ("all" concatenates
    logits then embedding)."""

    def __init__(self, config: PasstConfig = PASST_S_SWA_P16_128_AP476):
        super().__init__()
        self.config = config
        self.mel = PasstMelFrontEnd(config)
        self.net = PasstNet(config)

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(self.mel(waveform).unsqueeze(1))


def passt_state_from_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The released PaSST state dict (or {"model": state dict}) -> `PasstAudio` keys, with
    hear21passt's `checkpoint_filter_fn`: 2-D `patch_embed.proj.weight` of early checkpoints is
    reshaped to (E, 1, 16, 16). An ImageNet ViT/DeiT file (a `pos_embed`, no `time_new_pos_embed`)
    is refused: the reference would re-grid it into an untrained audio model. Raises ValueError."""
    if isinstance(state.get("model"), Mapping):
        state = state["model"]
    if "time_new_pos_embed" not in state:
        hint = " (an ImageNet ViT/DeiT checkpoint, not a PaSST AudioSet one)" if "pos_embed" in state else ""
        raise ValueError(f"no 'time_new_pos_embed' entry{hint}; expected {PASST_CHECKPOINT_FILENAME}")
    out = {}
    for key, value in state.items():
        if key == "patch_embed.proj.weight" and value.ndim < 4:
            side = round(math.sqrt(value.shape[-1]))
            value = value.reshape(value.shape[0], -1, side, side)
        out[f"net.{key}"] = value
    return out


def passt_state_to_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`PasstAudio.state_dict()` -> the released file's keys (the bare `PaSST` state dict)."""
    bad = [k for k in state if not k.startswith("net.")]
    if bad:
        raise ValueError(f"not a PasstAudio state dict: keys outside 'net.', e.g. {bad[:3]}")
    return {k[len("net.") :]: v for k, v in state.items()}
