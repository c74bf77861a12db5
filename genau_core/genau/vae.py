"""1D-VAE of GenAu: Conv1d encoder/decoder over time with the mel bins as channels.

log-mel (B, 64, 1024) -> posterior over (B, 64, 256) latents (T / 4 with ch_mult [1, 2, 4])
-> decoded log-mel (B, 64, 1024). Residual blocks with GroupNorm + SiLU, one self-attention
block in the middle of encoder and decoder, stride-2 convolutions down, nearest x2 + conv up.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from genau_core.genau.configs import VAEConfig


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


class ResBlock1D(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = _norm(c_in, groups)
        self.conv1 = nn.Conv1d(c_in, c_out, 3, padding=1)
        self.norm2 = _norm(c_out, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, padding=1)
        self.conv_shortcut = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return x + h


class SelfAttention1D(nn.Module):
    """Single-head attention over time with 1x1-conv projections."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.group_norm = _norm(channels, groups)
        self.to_q = nn.Conv1d(channels, channels, 1)
        self.to_k = nn.Conv1d(channels, channels, 1)
        self.to_v = nn.Conv1d(channels, channels, 1)
        self.to_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.group_norm(x)
        q, k, v = (proj(h).transpose(1, 2)[:, None] for proj in (self.to_q, self.to_k, self.to_v))
        out = F.scaled_dot_product_attention(q, k, v)[:, 0].transpose(1, 2)
        return x + self.to_out(out)


class Downsample1D(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (1, 1)))


class Upsample1D(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class MidBlock1D(nn.Module):
    def __init__(self, channels: int, groups: int, dropout: float, attention: bool):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResBlock1D(channels, channels, groups, dropout), ResBlock1D(channels, channels, groups, dropout)]
        )
        self.attention = SelfAttention1D(channels, groups) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        if self.attention is not None:
            x = self.attention(x)
        return self.resnets[1](x)


class Stage(nn.Module):
    def __init__(self, resnets: list[nn.Module], resample: nn.Module | None, resample_name: str):
        super().__init__()
        self.resnets = nn.ModuleList(resnets)
        self.resample_name = resample_name
        if resample is not None:
            setattr(self, resample_name, resample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for r in self.resnets:
            x = r(x)
        resample = getattr(self, self.resample_name, None)
        return resample(x) if resample is not None else x


class Encoder1D(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        g = cfg.norm_groups
        self.conv_in = nn.Conv1d(cfg.mel_bins, cfg.ch, 3, padding=1)
        blocks = []
        c_in = cfg.ch
        for level, mult in enumerate(cfg.ch_mult):
            c_out = cfg.ch * mult
            resnets = []
            for _ in range(cfg.num_res_blocks):
                resnets.append(ResBlock1D(c_in, c_out, g, cfg.dropout))
                c_in = c_out
            last = level == len(cfg.ch_mult) - 1
            blocks.append(Stage(resnets, None if last else Downsample1D(c_out), "downsample"))
        self.down_blocks = nn.ModuleList(blocks)
        self.mid_block = MidBlock1D(c_in, g, cfg.dropout, cfg.mid_attention)
        self.conv_norm_out = _norm(c_in, g)
        self.conv_out = nn.Conv1d(c_in, 2 * cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for block in self.down_blocks:
            h = block(h)
        h = self.mid_block(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class Decoder1D(nn.Module):
    """up_blocks[0] runs first (lowest time resolution, widest channels)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        g = cfg.norm_groups
        c_in = cfg.ch * cfg.ch_mult[-1]
        self.conv_in = nn.Conv1d(cfg.z_channels, c_in, 3, padding=1)
        self.mid_block = MidBlock1D(c_in, g, cfg.dropout, cfg.mid_attention)
        blocks = []
        levels = list(reversed(range(len(cfg.ch_mult))))
        for level in levels:
            c_out = cfg.ch * cfg.ch_mult[level]
            resnets = []
            for _ in range(cfg.num_res_blocks + 1):
                resnets.append(ResBlock1D(c_in, c_out, g, cfg.dropout))
                c_in = c_out
            blocks.append(Stage(resnets, Upsample1D(c_out) if level != 0 else None, "upsample"))
        self.up_blocks = nn.ModuleList(blocks)
        self.conv_norm_out = _norm(c_in, g)
        self.conv_out = nn.Conv1d(c_in, cfg.mel_bins, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            h = block(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class DiagonalGaussian:
    """Posterior N(mean, exp(logvar)) with logvar clamped to [-30, 20] (as the reference)."""

    def __init__(self, moments: torch.Tensor):
        self.mean, logvar = moments.chunk(2, dim=1)
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * noise  # reparameterised: differentiable in mean and std

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL to N(0, I), averaged over latent elements (reference convention), one value per sample."""
        return 0.5 * (self.mean.pow(2) + self.var - 1.0 - self.logvar).flatten(1).mean(dim=1)


class AutoencoderKL1D(nn.Module):
    def __init__(self, cfg: VAEConfig = VAEConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder1D(cfg)
        self.decoder = Decoder1D(cfg)
        self.quant_conv = nn.Conv1d(2 * cfg.z_channels, 2 * cfg.embed_dim, 1)
        self.post_quant_conv = nn.Conv1d(cfg.embed_dim, cfg.z_channels, 1)

    def encode(self, mel: torch.Tensor) -> DiagonalGaussian:
        """mel (B, mel_bins, T) -> posterior over (B, embed_dim, T / time_downsample)."""
        if mel.shape[-1] % self.cfg.time_downsample:
            raise ValueError(f"mel length {mel.shape[-1]} not divisible by {self.cfg.time_downsample}")
        if self.cfg.mel_mean != 0.0 or self.cfg.mel_std != 1.0:
            mel = (mel - self.cfg.mel_mean) / self.cfg.mel_std
        return DiagonalGaussian(self.quant_conv(self.encoder(mel)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 4:  # official (B, C, T, 1) layout
            z = z[..., 0]
        out = self.decoder(self.post_quant_conv(z))
        if self.cfg.mel_mean != 0.0 or self.cfg.mel_std != 1.0:
            out = out * self.cfg.mel_std + self.cfg.mel_mean
        return out

    def forward(
        self, mel: torch.Tensor, *, sample_posterior: bool = True, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, DiagonalGaussian]:
        posterior = self.encode(mel)
        z = posterior.sample(generator) if sample_posterior else posterior.mode()
        return self.decode(z), posterior

    def last_layer(self) -> torch.Tensor:
        return self.decoder.conv_out.weight
