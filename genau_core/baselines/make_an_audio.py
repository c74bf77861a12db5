"""Make-An-Audio (Huang et al., ICML 2023), from its released `maa1_full.ckpt` + BigVGAN.

What the official inference does (Text-to-Audio/Make-An-Audio `gen_wav.py`,
`configs/text_to_audio/txt2audio_args.yaml`):
- `LatentDiffusion_audio` with an LDM `UNetModel` (320 channels, channel_mult 1,2, 2 res blocks,
  spatial transformers at both levels, 8 heads, context 1024) on the latents of a 2D KL-VAE
  (ch 128, ch_mult 1,2,2,4, attention at resolutions 78 and 156 of 624, 4 latent channels) of
  80-bin mels (16 kHz, hop 256): a 10 s latent is (4, 10, 80).
- Conditioning: `FrozenCLAPEmbedder`, the MS-CLAP 2022 BERT branch per token (77 x 1024), see
  `clap_text`; unconditional = the same encoder on "".
- Schedule: LDM linear 0.00085..0.012 over 1000 steps, eps prediction; `scale_by_std`, so
  `scale_factor` is a buffer of the checkpoint. Sampling: DDIM, 100 steps, eta 0, guidance 3.
- Decode `z / scale_factor` with the VAE; vocode each mel (1, 80, T) with BigVGAN (16 kHz).
- Latent width for a duration: `gen_wav.py`'s `dur_to_size`, int(duration * 7.8) rounded *up* to a
  multiple of 4 (80 for 10 s: 10.24 s of audio). The AudioCaps script `gen_wavs_by_tsv.py`
  rounds *down* (76: 9.73 s) and zero-pads both ends; we follow the README's `gen_wav.py`.

Checkpoint layout (`torch.load(...)["state_dict"]`, loaded there with strict=False):
`model.diffusion_model.*` (UNet), `first_stage_model.*` (VAE), `cond_stage_model.caption_encoder.*`
(CLAP text), `scale_factor`, and the schedule buffers (`betas`, `alphas_cumprod`, ...), which we
check against our schedule. `model_ema.*` and `first_stage_model.loss.*` (training-only) are
skipped and counted. The UNet and VAE map onto diffusers modules (`ldm_keys`). A checkpoint
without `cond_stage_model.*` loads when the CLAP text branch comes from elsewhere
(CLAP_weights_2022.pth, see `_common`); everything else is loaded strictly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

from genau_core.baselines._common import (
    load_release_with_bigvgan,
    split_latent_diffusion_state_dict,
    text_weights_elsewhere,
)
from genau_core.baselines._state import load_strict
from genau_core.baselines.bigvgan import BigVGAN, BigVGANConfig
from genau_core.baselines.clap_text import ClapTextConfig, ClapTextEncoder, load_clap_text
from genau_core.baselines.ldm_keys import (
    LdmUNetConfig,
    LdmVaeConfig2D,
    build_ldm_unet,
    build_ldm_vae,
    map_ldm_unet_state_dict,
    map_ldm_vae_state_dict,
)
from genau_core.baselines.ldm_sampling import LdmSchedule, ddim_sample

IGNORED_PREFIXES = ("model_ema.", "first_stage_model.loss.")


@dataclass(frozen=True)
class MakeAnAudioConfig:
    unet: LdmUNetConfig = field(default_factory=LdmUNetConfig)
    vae: LdmVaeConfig2D = field(default_factory=LdmVaeConfig2D)
    text: ClapTextConfig = field(default_factory=ClapTextConfig)
    vocoder: BigVGANConfig = field(default_factory=BigVGANConfig)
    schedule: LdmSchedule = field(default_factory=LdmSchedule)
    num_mels: int = 80
    latent_rate: float = 7.8  # gen_wav.py dur_to_size: int(duration * 7.8) ...
    latent_multiple: int = 4  # ... rounded up to a multiple of 4

    def __post_init__(self) -> None:
        problems = []
        if self.unet.in_channels != self.vae.embed_dim or self.unet.out_channels != self.vae.embed_dim:
            problems.append(
                f"UNet channels {self.unet.in_channels}/{self.unet.out_channels} != VAE embed_dim {self.vae.embed_dim}"
            )
        if self.unet.context_dim != self.text.d_proj:
            problems.append(f"UNet context_dim {self.unet.context_dim} != CLAP projection {self.text.d_proj}")
        if self.vocoder.num_mels != self.num_mels or self.num_mels % self.vae.downsample:
            problems.append(
                f"{self.num_mels} mel bins vs vocoder {self.vocoder.num_mels} / VAE downsampling {self.vae.downsample}"
            )
        if self.latent_multiple % 2 ** (len(self.unet.channel_mult) - 1):
            problems.append(f"latent width multiple {self.latent_multiple} not divisible by the UNet's downsampling")
        if problems:
            raise ValueError("MakeAnAudioConfig: " + "; ".join(problems))

    def latent_width(self, duration_s: float) -> int:
        width = int(duration_s * self.latent_rate)
        return max(self.latent_multiple, math.ceil(width / self.latent_multiple) * self.latent_multiple)

    def latent_shape(self, duration_s: float) -> tuple[int, int, int]:
        return self.vae.embed_dim, self.num_mels // self.vae.downsample, self.latent_width(duration_s)

    def samples(self, duration_s: float) -> int:
        return self.latent_width(duration_s) * self.vae.downsample * self.vocoder.hop_length


MAKE_AN_AUDIO_CONFIG = MakeAnAudioConfig()


class MakeAnAudioModel(nn.Module):
    def __init__(self, cfg: MakeAnAudioConfig, tokenizer, *, scale_factor: float = 1.0):
        super().__init__()
        self.config = cfg
        self.tokenizer = tokenizer
        self.text_encoder = ClapTextEncoder(cfg.text)
        self.unet = build_ldm_unet(cfg.unet)
        self.vae = build_ldm_vae(cfg.vae)
        self.vocoder = BigVGAN(cfg.vocoder)
        self.register_buffer("scale_factor", torch.tensor(float(scale_factor)))
        self.skipped_keys: dict[str, int] = {}
        self.text_sources: dict[str, str] = {}  # text encoder -> "checkpoint" or the file it came from

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return self.scale_factor.device

    # -- official weights ------------------------------------------------------------------
    def load_official_state_dict(
        self,
        sd: Mapping[str, torch.Tensor],
        *,
        source: str = "maa1_full.ckpt",
        text_sources: Mapping[str, str | Path] | None = None,
    ) -> None:
        """The LatentDiffusion state dict (strict: every model key filled, every file key understood). Without
        `cond_stage_model.*` the CLAP text branch comes from `text_sources["clap"]` (see `_common`)."""
        parts = split_latent_diffusion_state_dict(
            sd,
            groups={"model.diffusion_model.": "unet", "first_stage_model.": "vae", "cond_stage_model.": "text"},
            ignored=IGNORED_PREFIXES,
            schedule=self.config.schedule,
            source=source,
            layout="Make-An-Audio",
            optional=("text",),
        )
        groups = parts.groups
        load_strict(
            self.unet,
            map_ldm_unet_state_dict(groups["unet"], self.config.unet, what=f"{source} UNet"),
            f"{source} UNet",
        )
        load_strict(
            self.vae, map_ldm_vae_state_dict(groups["vae"], self.config.vae, what=f"{source} VAE"), f"{source} VAE"
        )
        text, text_from = groups["text"], "checkpoint"
        if not text:
            text, text_from = text_weights_elsewhere("clap", "cond_stage_model.", text_sources, source=source)
        load_clap_text(self.text_encoder, text, what=f"{text_from} CLAP text encoder")
        self.scale_factor.fill_(parts.scale_factor)
        self.skipped_keys = parts.skipped
        self.text_sources = {"clap": text_from}

    # -- inference -------------------------------------------------------------------------
    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        return self.text_encoder(self.text_encoder.tokenize(self.tokenizer, list(texts), self.device))

    @torch.no_grad()
    def sample(
        self,
        prompts: Sequence[str],
        generators: Sequence[torch.Generator],
        *,
        steps: int,
        guidance: float,
        duration_s: float,
    ) -> torch.Tensor:
        """Waveforms (B, samples) at the vocoder rate; one (CPU) generator per prompt for its x_T."""
        if len(generators) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(generators)} generators")
        cond = self.encode_text(prompts)
        uncond = self.encode_text([""] * len(prompts)) if guidance != 1.0 else None
        shape = self.config.latent_shape(duration_s)
        x_t = torch.stack([torch.randn(shape, generator=g) for g in generators]).to(self.device)

        def eps(x, t, context):
            return self.unet(x, t, encoder_hidden_states=context).sample

        z = ddim_sample(eps, x_t, cond, uncond, schedule=self.config.schedule, steps=steps, guidance=guidance)
        mel = self.vae.decode(z / self.scale_factor).sample  # (B, 1, mels, frames)
        return self.vocoder(mel.squeeze(1)).float().cpu()


CHECKPOINT_FILE = "maa1_full.ckpt"
VOCODER_DIR = "bigvgan"


def load_make_an_audio(
    checkpoint: str | Path,
    vocoder_dir: str | Path,
    tokenizer,
    cfg: MakeAnAudioConfig = MAKE_AN_AUDIO_CONFIG,
    text_sources: Mapping[str, str | Path] | None = None,
) -> MakeAnAudioModel:
    """Build from the released files: `maa1_full.ckpt` and the BigVGAN folder (args.yml, best_netG.pt);
    `text_sources={"clap": CLAP_weights_2022.pth}` serves a checkpoint without `cond_stage_model.*`."""
    return load_release_with_bigvgan(
        checkpoint,
        vocoder_dir,
        cfg,
        lambda c: MakeAnAudioModel(c, tokenizer),
        expected_mels=cfg.num_mels,
        what="Make-An-Audio checkpoint",
        text_sources=text_sources,
    )


__all__ = [
    "CHECKPOINT_FILE",
    "MAKE_AN_AUDIO_CONFIG",
    "VOCODER_DIR",
    "MakeAnAudioConfig",
    "MakeAnAudioModel",
    "load_make_an_audio",
]
