"""AudioLDM (Liu et al., 2023) inference on the diffusers / transformers model classes, without a pipeline.

diffusers moved `AudioLDMPipeline` to its deprecated pipelines (2026-04) and will drop it; this is
the small loop it ran, owned here so the released diffusers folder (`cvssp/audioldm-l-full`) keeps
working. Components, as the folder stores them: `tokenizer/` (RoBERTa), `text_encoder/`
(`ClapTextModelWithProjection`), `unet/` (`UNet2DConditionModel`, the CLAP embedding enters as a
class label: "simple_projection", concatenated to the time embedding), `vae/` (`AutoencoderKL` on
1-channel mel images), `vocoder/` (`SpeechT5HifiGan`), `scheduler/` (DDIM configuration).

What the official code does (haoheliu/AudioLDM `audioldm/pipeline.py` `text_to_audio`, `ldm.py`
`LatentDiffusion.generate_sample`, `latent_diffusion/ddim.py` `DDIMSampler`) and we do:
- Text: the CLAP text branch's projected `[CLS]` state, L2-normalised (`CLAP.get_text_embedding`);
  unconditional = the same for "" (`get_unconditional_condition`).
- Sampler: DDIM with **eta = 1.0** (`generate_sample(ddim_eta=1.0)`), LDM's uniform discretisation
  (timesteps 1 + k * T // S, i.e. diffusers "leading" with steps_offset 1 as the released scheduler
  config sets it), classifier-free guidance eps_u + s * (eps_c - eps_u) over the batch [uc, c].
- Length: `duration_to_latent_t_size` = int(duration * 25.6) latent frames: **256 frames = 10.24 s**
  for 10 s (diffusers' pipeline makes 250 for 10 s). `latent_frames` generalises this to any VAE /
  vocoder; the caller trims to the requested duration.
- Decode `z / scale_factor` with the VAE, vocode the mel with the HiFi-GAN.

The loop is written to be the pipeline's computation operation for operation (same tokenisation,
same normalisation, same noise draws from one generator per prompt, same `1 / scaling_factor`
product), so at the pipeline's settings (eta 0, its length) it reproduces `AudioLDMPipeline` bit
for bit (`tests/bench/plugins/test_plugin_audioldm.py`). Deliberate differences from the official scripts are in
docs/baselines.md (per-clip generators, float output, no CLAP re-ranking, no random unconditional
drop, no latent clipping).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from genau_core.baselines._common import ModuleBundle
from genau_core.errors import MissingFileError

OFFICIAL_ETA = 1.0  # audioldm/ldm.py LatentDiffusion.generate_sample(ddim_eta=1.0)
OFFICIAL_LENGTH_FACTOR = (
    1.024  # audioldm/pipeline.py duration_to_latent_t_size: int(duration * 25.6) = 10.24 s per 10 s
)
FOLDER_PARTS = ("tokenizer", "text_encoder", "unet", "vae", "vocoder", "scheduler")


def latent_frames(duration_s: float, *, mel_frames_per_s: float, vae_scale: int, unet_multiple: int) -> int:
    """Latent time frames the official code generates for `duration_s`, never shorter than the duration.

    Official: int(duration * 102.4) mel frames (100 frames/s x 1.024), i.e. int(duration * 25.6) latent
    frames with the 4x VAE: 256 for 10 s, 128 for 5 s. Rounded up to the UNet's downsampling multiple
    and to at least `duration_s` of audio (the official CLI only allows multiples of 2.5 s, where both
    hold already)."""
    official = int(round(duration_s * OFFICIAL_LENGTH_FACTOR * mel_frames_per_s, 6)) // vae_scale
    enough = math.ceil(round(duration_s * mel_frames_per_s / vae_scale, 6))
    frames = max(official, enough, 1)
    return math.ceil(frames / unet_multiple) * unet_multiple


@dataclass
class AudioLDMModel(ModuleBundle):
    """The components of a diffusers AudioLDM folder and the official sampling loop."""

    tokenizer: object
    text_encoder: torch.nn.Module
    unet: torch.nn.Module
    vae: torch.nn.Module
    vocoder: torch.nn.Module
    scheduler_config: dict = field(default_factory=dict)

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def from_components(cls, *, tokenizer, text_encoder, unet, vae, vocoder, scheduler) -> AudioLDMModel:
        """From in-memory modules (the tiny twins); `scheduler` is a scheduler or its config."""
        config = dict(getattr(scheduler, "config", scheduler))
        return cls(tokenizer, text_encoder, unet, vae, vocoder, config)

    @classmethod
    def from_folder(cls, folder: str | Path) -> AudioLDMModel:
        """A diffusers AudioLDM folder (`save_pretrained` layout, e.g. cvssp/audioldm-l-full)."""
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
        from transformers import AutoTokenizer, ClapTextModelWithProjection, SpeechT5HifiGan

        folder = Path(folder)
        missing = [p for p in FOLDER_PARTS if not (folder / p).is_dir()]
        if missing:
            raise MissingFileError(
                f"{folder}: not a diffusers AudioLDM folder, missing {', '.join(p + '/' for p in missing)} "
                f"(download the whole hub repository, e.g. `huggingface-cli download cvssp/audioldm-l-full`)"
            )
        return cls(
            tokenizer=AutoTokenizer.from_pretrained(str(folder / "tokenizer")),
            text_encoder=ClapTextModelWithProjection.from_pretrained(str(folder / "text_encoder")),
            unet=UNet2DConditionModel.from_pretrained(str(folder), subfolder="unet"),
            vae=AutoencoderKL.from_pretrained(str(folder), subfolder="vae"),
            vocoder=SpeechT5HifiGan.from_pretrained(str(folder / "vocoder")),
            scheduler_config=dict(DDIMScheduler.load_config(str(folder), subfolder="scheduler")),
        )

    def modules(self) -> dict[str, torch.nn.Module]:
        return dict(text_encoder=self.text_encoder, unet=self.unet, vae=self.vae, vocoder=self.vocoder)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def scheduler(self):
        """A fresh DDIM scheduler from the folder's configuration (the official sampler is DDIM)."""
        from diffusers import DDIMScheduler

        return DDIMScheduler.from_config(self.scheduler_config)

    # -- geometry -------------------------------------------------------------------------------
    @property
    def vae_scale(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def hop_length(self) -> int:
        return int(math.prod(self.vocoder.config.upsample_rates))

    @property
    def sample_rate(self) -> int:
        return int(self.vocoder.config.sampling_rate)

    def latent_frames(self, duration_s: float) -> int:
        return latent_frames(
            duration_s,
            mel_frames_per_s=self.sample_rate / self.hop_length,
            vae_scale=self.vae_scale,
            unet_multiple=2 ** (len(self.unet.config.block_out_channels) - 1),
        )

    def latent_shape(self, duration_s: float) -> tuple[int, int, int]:
        """(channels, time, frequency) of one clip's latents."""
        return (
            self.unet.config.in_channels,
            self.latent_frames(duration_s),
            self.vocoder.config.model_in_dim // self.vae_scale,
        )

    # -- inference ------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """(B, D) L2-normalised CLAP text embeddings (padded to the tokenizer's max length, attention-masked)."""
        tok = self.tokenizer(
            list(texts),
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        embeds = self.text_encoder(
            tok.input_ids.to(self.device), attention_mask=tok.attention_mask.to(self.device)
        ).text_embeds
        return torch.nn.functional.normalize(embeds, dim=-1).to(dtype=self.text_encoder.dtype)

    @torch.no_grad()
    def sample(
        self,
        prompts: Sequence[str],
        generators: Sequence[torch.Generator],
        *,
        steps: int,
        guidance: float,
        duration_s: float,
        eta: float = OFFICIAL_ETA,
        latent_time: int | None = None,
    ) -> torch.Tensor:
        """Waveforms (B, samples) at the vocoder rate, `latent_frames(duration_s)` long (or `latent_time`
        frames when given); one generator per prompt for x_T and for every DDIM noise draw."""
        from diffusers.utils.torch_utils import randn_tensor

        gens = list(generators)
        if len(gens) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(gens)} generators")
        cfg = guidance > 1.0
        embeds = self.encode_text(prompts)
        if cfg:
            embeds = torch.cat([self.encode_text([""] * len(prompts)), embeds])
        scheduler = self.scheduler()
        scheduler.set_timesteps(steps, device=self.device)
        c, t, f = self.latent_shape(duration_s)
        t = t if latent_time is None else latent_time
        latents = randn_tensor((len(prompts), c, t, f), generator=gens, device=self.device, dtype=embeds.dtype)
        latents = latents * scheduler.init_noise_sigma
        for timestep in scheduler.timesteps:
            model_in = torch.cat([latents] * 2) if cfg else latents
            model_in = scheduler.scale_model_input(model_in, timestep)
            eps = self.unet(model_in, timestep, encoder_hidden_states=None, class_labels=embeds).sample
            if cfg:
                eps_u, eps_c = eps.chunk(2)
                eps = eps_u + guidance * (eps_c - eps_u)
            latents = scheduler.step(eps, timestep, latents, eta=eta, generator=gens).prev_sample
        mel = self.vae.decode(1 / self.vae.config.scaling_factor * latents).sample
        return self.vocoder(mel.squeeze(1)).cpu().float()


__all__ = ["OFFICIAL_ETA", "AudioLDMModel", "latent_frames"]
