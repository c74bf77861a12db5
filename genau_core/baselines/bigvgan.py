"""BigVGAN (v1) generator, the vocoder of Make-An-Audio and Make-An-Audio 2.

Layout as in NVIDIA/BigVGAN v1 (vendored by Make-An-Audio as `vocoder/bigvgan/models.py`):
`conv_pre` -> for each stage a transposed-conv upsampler followed by K "AMP" residual blocks
(averaged); `activation_post` -> `conv_post` -> tanh. `args.yml`'s `resblock` picks the block:
- "1" (`AMPBlock1`, what the released Make-An-Audio vocoders use): for each dilation, anti-aliased
  activation -> dilated conv -> anti-aliased activation -> conv, added to its input;
- "2" (`AMPBlock2`): for the first two dilations only (the official block reads `dilation[0]` and
  `dilation[1]`), anti-aliased activation -> dilated conv, added to its input.
The anti-aliased activation upsamples 2x with a Kaiser-windowed sinc filter
(transposed conv, replicate padding), applies Snake / SnakeBeta (log-scale parameters when
`snake_logscale`), and low-passes + decimates 2x with the same kind of filter.

The released vocoder folder holds `args.yml` (hyper-parameters) and `best_netG.pt`
(`{"generator": state_dict}` with weight norm: `*.weight_g` / `*.weight_v`; the official
`VocoderBigVGAN` loads it as is and never removes weight norm, which computes the same
weights). Official key names and ours:

    conv_pre.*                                   -> conv_pre.*
    ups.{i}.0.*                                  -> upsamplers.{i}.*
    resblocks.{i*K+j}.convs1.{m}.*               -> stages.{i}.{j}.dilated.{m}.*
    resblocks.{i*K+j}.convs2.{m}.*               -> stages.{i}.{j}.plain.{m}.*
    resblocks.{i*K+j}.activations.{2m}.*         -> stages.{i}.{j}.acts_dilated.{m}.*
    resblocks.{i*K+j}.activations.{2m+1}.*       -> stages.{i}.{j}.acts_plain.{m}.*
    resblocks.{i*K+j}.convs.{m}.*                -> stages.{i}.{j}.convs.{m}.*        (resblock "2")
    resblocks.{i*K+j}.activations.{m}.*          -> stages.{i}.{j}.acts.{m}.*         (resblock "2")
    activation_post.*                            -> act_post.*
    conv_post.*                                  -> conv_post.*
inside an activation: `act.alpha` / `act.beta` -> `snake.alpha` / `snake.beta`,
`upsample.filter` -> `up_filter`, `downsample.lowpass.filter` -> `down_filter` (the filters are
stored in the file and used as stored, as the official code does).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from genau_core.baselines._state import CheckpointMappingError, fold_weight_norm, load_strict, read_checkpoint


@dataclass(frozen=True)
class BigVGANConfig:
    """`args.yml` of the released vocoder; defaults are Make-An-Audio's 16 kHz / 80-bin BigVGAN."""

    num_mels: int = 80
    upsample_rates: tuple[int, ...] = (4, 4, 2, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (8, 8, 4, 4, 4, 4)
    upsample_initial_channel: int = 1536
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    activation: str = "snakebeta"
    snake_logscale: bool = True
    sampling_rate: int = 16_000
    anti_alias_kernel: int = 12  # Activation1d's up/down kernel size (fixed in the official code)
    resblock: str = "1"  # "1": AMPBlock1, "2": AMPBlock2 (args.yml `resblock`)

    def __post_init__(self) -> None:
        if self.resblock not in ("1", "2"):
            raise ValueError(f"BigVGAN: resblock {self.resblock!r} is not '1' (AMPBlock1) or '2' (AMPBlock2)")
        if self.resblock == "2" and any(len(d) < 2 for d in self.resblock_dilation_sizes):
            raise ValueError(
                "BigVGAN: resblock '2' (AMPBlock2) needs two dilations per block (it uses dilation[0], dilation[1])"
            )
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError("BigVGAN: upsample_rates and upsample_kernel_sizes differ in length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError("BigVGAN: resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        if self.activation not in ("snake", "snakebeta"):
            raise ValueError(f"BigVGAN: activation {self.activation!r} is not snake / snakebeta")
        if self.upsample_initial_channel // 2 ** len(self.upsample_rates) < 1:
            raise ValueError("BigVGAN: upsample_initial_channel too small for the number of upsampling stages")

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_rates)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_args(cls, args: Mapping) -> "BigVGANConfig":
        """From the parsed `args.yml` (other training keys are ignored)."""
        resblock = str(args.get("resblock", "1"))
        if resblock not in ("1", "2"):
            raise ValueError(
                f"BigVGAN args: resblock {args.get('resblock')!r} is not '1' (AMPBlock1) or '2' (AMPBlock2)"
            )
        try:
            return cls(
                num_mels=int(args["num_mels"]),
                upsample_rates=tuple(int(v) for v in args["upsample_rates"]),
                upsample_kernel_sizes=tuple(int(v) for v in args["upsample_kernel_sizes"]),
                upsample_initial_channel=int(args["upsample_initial_channel"]),
                resblock_kernel_sizes=tuple(int(v) for v in args["resblock_kernel_sizes"]),
                resblock_dilation_sizes=tuple(tuple(int(v) for v in d) for d in args["resblock_dilation_sizes"]),
                activation=str(args["activation"]),
                snake_logscale=bool(args.get("snake_logscale", True)),
                sampling_rate=int(args.get("sampling_rate", 16_000)),
                resblock=resblock,
            )
        except KeyError as e:
            raise ValueError(f"BigVGAN args: missing {e.args[0]!r}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> "BigVGANConfig":
        import yaml

        data = yaml.safe_load(Path(path).read_text())
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: not a BigVGAN args.yml mapping")
        try:
            return cls.from_args(data)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def to_args_yaml(self) -> str:
        """The released `args.yml` layout (the generator's keys), for writing test fixtures."""
        import yaml

        d = {
            "resblock": self.resblock,
            "num_mels": self.num_mels,
            "upsample_rates": list(self.upsample_rates),
            "upsample_kernel_sizes": list(self.upsample_kernel_sizes),
            "upsample_initial_channel": self.upsample_initial_channel,
            "resblock_kernel_sizes": list(self.resblock_kernel_sizes),
            "resblock_dilation_sizes": [list(x) for x in self.resblock_dilation_sizes],
            "activation": self.activation,
            "snake_logscale": self.snake_logscale,
        }
        return yaml.safe_dump(d, sort_keys=False)


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass (1, 1, kernel_size), normalised to unit DC gain."""
    even = kernel_size % 2 == 0
    half = kernel_size // 2
    delta_f = 4 * half_width
    a = 2.285 * (half - 1) * math.pi * delta_f + 7.95
    if a > 50.0:
        beta = 0.1102 * (a - 8.7)
    elif a >= 21.0:
        beta = 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    time = (torch.arange(-half, half) + 0.5) if even else (torch.arange(kernel_size) - half)
    filt = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    return (filt / filt.sum()).view(1, 1, kernel_size)


class Snake(nn.Module):
    """x + 1/(beta or alpha) * sin^2(alpha * x); parameters in log scale when `logscale`."""

    def __init__(self, channels: int, *, beta: bool, logscale: bool):
        super().__init__()
        init = torch.zeros(channels) if logscale else torch.ones(channels)
        self.alpha = nn.Parameter(init.clone())
        self.beta = nn.Parameter(init.clone()) if beta else None
        self.logscale = logscale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]
        mag = alpha if self.beta is None else self.beta[None, :, None]
        if self.logscale:
            alpha, mag = alpha.exp(), mag.exp()
        return x + (1.0 / (mag + 1e-9)) * torch.sin(x * alpha).pow(2)


class AntiAliasedActivation(nn.Module):
    """2x upsample (sinc) -> Snake -> low-pass + 2x decimate (BigVGAN's Activation1d)."""

    def __init__(self, channels: int, cfg: BigVGANConfig):
        super().__init__()
        k = cfg.anti_alias_kernel
        self.snake = Snake(channels, beta=cfg.activation == "snakebeta", logscale=cfg.snake_logscale)
        self.register_buffer("up_filter", kaiser_sinc_filter(0.25, 0.3, k))
        self.register_buffer("down_filter", kaiser_sinc_filter(0.25, 0.3, k))
        self.ratio = 2
        self.kernel = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, r, k = x.shape[1], self.ratio, self.kernel
        # upsample: replicate-pad, transposed conv with the filter, trim
        pad = k // r - 1
        left = pad * r + (k - r) // 2
        right = pad * r + (k - r + 1) // 2
        x = F.pad(x, (pad, pad), mode="replicate")
        x = r * F.conv_transpose1d(x, self.up_filter.expand(c, -1, -1), stride=r, groups=c)
        x = x[..., left:-right]
        x = self.snake(x)
        # low-pass + decimate (even kernel: one less sample of padding on the left)
        x = F.pad(x, (k // 2 - int(k % 2 == 0), k // 2), mode="replicate")
        return F.conv1d(x, self.down_filter.expand(c, -1, -1), stride=r, groups=c)


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class AMPBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...], cfg: BigVGANConfig):
        super().__init__()
        self.dilated = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d)) for d in dilations
        )
        self.plain = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=_padding(kernel)) for _ in dilations)
        self.acts_dilated = nn.ModuleList(AntiAliasedActivation(channels, cfg) for _ in dilations)
        self.acts_plain = nn.ModuleList(AntiAliasedActivation(channels, cfg) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2, a1, a2 in zip(self.dilated, self.plain, self.acts_dilated, self.acts_plain):
            x = x + c2(a2(c1(a1(x))))
        return x


class AMPBlock2(nn.Module):
    """BigVGAN's resblock "2": activation -> dilated conv, residual, for dilation[0] and dilation[1]."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...], cfg: BigVGANConfig):
        super().__init__()
        used = dilations[:2]  # the official AMPBlock2 builds its two convs from dilation[0] and dilation[1]
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d)) for d in used
        )
        self.acts = nn.ModuleList(AntiAliasedActivation(channels, cfg) for _ in used)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, act in zip(self.convs, self.acts):
            x = x + conv(act(x))
        return x


class BigVGAN(nn.Module):
    """log-mel (B, num_mels, frames) -> waveform (B, frames * hop) in [-1, 1]."""

    def __init__(self, cfg: BigVGANConfig):
        super().__init__()
        self.config = cfg
        c0 = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(cfg.num_mels, c0, 7, padding=3)
        self.upsamplers = nn.ModuleList()
        self.stages = nn.ModuleList()
        for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            cin, cout = c0 // 2**i, c0 // 2 ** (i + 1)
            self.upsamplers.append(nn.ConvTranspose1d(cin, cout, k, u, padding=(k - u) // 2))
            block = AMPBlock if cfg.resblock == "1" else AMPBlock2
            kernels_dilations = zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes)
            self.stages.append(nn.ModuleList(block(cout, rk, tuple(d), cfg) for rk, d in kernels_dilations))
        self.act_post = AntiAliasedActivation(cout, cfg)
        self.conv_post = nn.Conv1d(cout, 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for up, blocks in zip(self.upsamplers, self.stages):
            x = up(x)
            x = sum(b(x) for b in blocks) / len(blocks)
        x = self.conv_post(self.act_post(x))
        return torch.tanh(x).squeeze(1)


_ACT_PARTS = {
    "act.alpha": "snake.alpha",
    "act.beta": "snake.beta",
    "upsample.filter": "up_filter",
    "downsample.lowpass.filter": "down_filter",
}


def _map_activation(rest: str) -> str | None:
    return _ACT_PARTS.get(rest)


def map_bigvgan_state_dict(sd: Mapping[str, torch.Tensor], cfg: BigVGANConfig) -> dict[str, torch.Tensor]:
    """Official generator state dict (weight-normed or plain) -> `BigVGAN` state dict."""
    k_count = len(cfg.resblock_kernel_sizes)
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in fold_weight_norm(sd, what="BigVGAN generator").items():
        target = None
        if m := re.fullmatch(r"conv_(pre|post)\.(weight|bias)", key):
            target = key
        elif m := re.fullmatch(r"ups\.(\d+)\.0\.(weight|bias)", key):
            target = f"upsamplers.{m.group(1)}.{m.group(2)}"
        elif cfg.resblock == "1" and (
            m := re.fullmatch(r"resblocks\.(\d+)\.(convs1|convs2)\.(\d+)\.(weight|bias)", key)
        ):
            stage, j = divmod(int(m.group(1)), k_count)
            which = "dilated" if m.group(2) == "convs1" else "plain"
            target = f"stages.{stage}.{j}.{which}.{m.group(3)}.{m.group(4)}"
        elif cfg.resblock == "2" and (m := re.fullmatch(r"resblocks\.(\d+)\.convs\.(\d+)\.(weight|bias)", key)):
            stage, j = divmod(int(m.group(1)), k_count)
            target = f"stages.{stage}.{j}.convs.{m.group(2)}.{m.group(3)}"
        elif m := re.fullmatch(r"resblocks\.(\d+)\.activations\.(\d+)\.(.+)", key):
            stage, j = divmod(int(m.group(1)), k_count)
            n, part = int(m.group(2)), _map_activation(m.group(3))
            if part is not None and cfg.resblock == "1":
                which = "acts_dilated" if n % 2 == 0 else "acts_plain"
                target = f"stages.{stage}.{j}.{which}.{n // 2}.{part}"
            elif part is not None:
                target = f"stages.{stage}.{j}.acts.{n}.{part}"
        elif m := re.fullmatch(r"activation_post\.(.+)", key):
            part = _map_activation(m.group(1))
            if part is not None:
                target = f"act_post.{part}"
        if target is None:
            unknown.append(key)
        else:
            out[target] = value
    if unknown:
        raise CheckpointMappingError(f"BigVGAN generator: {len(unknown)} unmapped keys (e.g. {unknown[:5]})")
    return out


VOCODER_FILES = ("args.yml", "best_netG.pt")


def load_bigvgan_folder(folder: str | Path, *, expected_mels: int | None = None) -> BigVGAN:
    """The released vocoder folder (`args.yml`, `best_netG.pt` holding {"generator": ...})."""
    folder = Path(folder)
    missing = [f for f in VOCODER_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: BigVGAN vocoder folder lacks {', '.join(missing)}")
    cfg = BigVGANConfig.from_yaml(folder / "args.yml")
    if expected_mels is not None and cfg.num_mels != expected_mels:
        raise ValueError(
            f"{folder / 'args.yml'}: vocoder takes {cfg.num_mels} mel bins, the model decodes {expected_mels}"
        )
    sd = read_checkpoint(folder / "best_netG.pt", what="BigVGAN generator", container="generator")
    model = BigVGAN(cfg)
    load_strict(model, map_bigvgan_state_dict(sd, cfg), f"BigVGAN ({folder / 'best_netG.pt'})")
    return model.eval()


def save_bigvgan_folder(folder: str | Path, official_sd: Mapping[str, torch.Tensor], cfg: BigVGANConfig) -> Path:
    """Write a vocoder folder in the released layout (for tests with tiny official-keyed weights)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "args.yml").write_text(cfg.to_args_yaml())
    torch.save({"generator": dict(official_sd)}, folder / "best_netG.pt")
    return folder
