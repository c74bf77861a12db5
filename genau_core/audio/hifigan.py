"""HiFi-GAN generator (V1 layout, "resblock 1") for 16 kHz / 64-bin log-mels.

Loads the official `hifigan_16k_64bins.ckpt` (`{"generator": state_dict}` saved with weight
norm: `*.weight_g` / `*.weight_v`) with its `hifigan_16k_64bins.json` layout. Weight norm is
folded into plain weights at load time (inference only), which is what the official code
does with `remove_weight_norm()`; state dicts that already carry plain `*.weight` load too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

LRELU_SLOPE = 0.1


@dataclass(frozen=True)
class HiFiGANConfig:
    num_mels: int = 64
    upsample_rates: tuple[int, ...] = (5, 4, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 4, 4)
    upsample_initial_channel: int = 1024
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    sampling_rate: int = 16_000
    hop_size: int = 160

    def __post_init__(self):
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes differ in length")
        if self.upsample_initial_channel // 2 ** len(self.upsample_rates) < 1:
            raise ValueError("upsample_initial_channel too small for the number of upsampling stages")

    @property
    def hop_factor(self) -> int:
        f = 1
        for r in self.upsample_rates:
            f *= r
        return f

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "HiFiGANConfig":
        keys = {f for f in cls.__dataclass_fields__}
        d = {k: v for k, v in d.items() if k in keys}
        for k in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
            if k in d:
                d[k] = tuple(int(v) for v in d[k])
        if "resblock_dilation_sizes" in d:
            d["resblock_dilation_sizes"] = tuple(tuple(int(v) for v in ds) for ds in d["resblock_dilation_sizes"])
        return cls(**d)

    @classmethod
    def from_json(cls, path: str | Path) -> "HiFiGANConfig":
        """Official json (AudioLDM / GenAU HiFi-GAN training config); training-only fields are ignored."""
        d = json.loads(Path(path).read_text())
        if str(d.get("resblock", "1")) != "1":
            raise ValueError(f"{path}: only the V1 residual block ('resblock': '1') is implemented")
        return cls.from_dict(d)


TINY_HIFIGAN = HiFiGANConfig(
    upsample_rates=(5, 4, 2, 2, 2),
    upsample_kernel_sizes=(10, 8, 4, 4, 4),
    upsample_initial_channel=64,
    resblock_kernel_sizes=(3,),
    resblock_dilation_sizes=((1, 3),),
)


def _pad(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResidualStack(nn.Module):
    """Pairs of (dilated conv, plain conv), each pair residual; leaky ReLU before every conv."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.dilated = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, 1, dilation=d, padding=_pad(kernel, d)) for d in dilations
        )
        self.plain = nn.ModuleList(nn.Conv1d(channels, channels, kernel, 1, padding=_pad(kernel)) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.dilated, self.plain):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class HiFiGANGenerator(nn.Module):
    """log-mel (B, num_mels, T) -> waveform (B, 1, ~T * hop) in [-1, 1]."""

    def __init__(self, cfg: HiFiGANConfig = HiFiGANConfig()):
        super().__init__()
        self.cfg = cfg
        ch = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(cfg.num_mels, ch, 7, 1, padding=3)
        self.upsamplers = nn.ModuleList()
        self.stacks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            c_in, c_out = ch // 2**i, ch // 2 ** (i + 1)
            self.upsamplers.append(nn.ConvTranspose1d(c_in, c_out, kernel, rate, padding=(kernel - rate) // 2))
            self.stacks.append(
                nn.ModuleList(
                    ResidualStack(c_out, k, tuple(d))
                    for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes)
                )
            )
        self.conv_post = nn.Conv1d(ch // 2 ** len(cfg.upsample_rates), 1, 7, 1, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for up, stacks in zip(self.upsamplers, self.stacks):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            x = sum(s(x) for s in stacks) / len(stacks)
        x = self.conv_post(F.leaky_relu(x))  # default slope 0.01 here, as the reference generator
        return torch.tanh(x)


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace `<p>.weight_g` + `<p>.weight_v` by `<p>.weight = g * v / ||v||` (norm over all dims but 0)."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k.endswith(".weight_g"):
            continue
        if k.endswith(".weight_v"):
            stem = k[: -len(".weight_v")]
            g = state[stem + ".weight_g"].float()
            vv = v.float()
            norm = vv.flatten(1).norm(dim=1).reshape(-1, *([1] * (vv.dim() - 1)))
            out[stem + ".weight"] = g * vv / norm
        else:
            out[k] = v
    return out


def official_to_ours(state: dict[str, torch.Tensor], cfg: HiFiGANConfig) -> dict[str, torch.Tensor]:
    """Rename official generator keys (conv_pre, ups.i, resblocks.(i*K+j).convs{1,2}.n, conv_post)."""
    state = fold_weight_norm(state)
    k_per_stage = len(cfg.resblock_kernel_sizes)
    out: dict[str, torch.Tensor] = {}
    for key, v in state.items():
        parts = key.split(".")
        if parts[0] in ("conv_pre", "conv_post"):
            out[key] = v
        elif parts[0] == "ups":
            out[".".join(["upsamplers", parts[1], *parts[2:]])] = v
        elif parts[0] == "resblocks":
            flat = int(parts[1])
            stage, j = divmod(flat, k_per_stage)
            which = {"convs1": "dilated", "convs2": "plain"}[parts[2]]
            out[".".join(["stacks", str(stage), str(j), which, *parts[3:]])] = v
        else:
            raise KeyError(f"unexpected HiFi-GAN key {key!r}")
    return out


def load_hifigan(
    ckpt_path: str | Path, config_path: str | Path | None = None, cfg: HiFiGANConfig | None = None
) -> HiFiGANGenerator:
    """Build the generator from the official json (or `cfg`) and load `ckpt["generator"]`."""
    if cfg is None:
        cfg = HiFiGANConfig.from_json(config_path) if config_path is not None else HiFiGANConfig()
    from genau_core.checkpoint_io import read_state_dict

    state = read_state_dict(ckpt_path, ("generator",), what="HiFi-GAN generator")
    state = {k.replace("_orig_mod.", ""): v for k, v in state.items()}
    model = HiFiGANGenerator(cfg)
    model.load_state_dict(official_to_ours(state, cfg), strict=True)
    return model.eval()
