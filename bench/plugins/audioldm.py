"""AudioLDM-L (hub id cvssp/audioldm-l-full, a diffusers folder) and its offline tiny twin.

The released diffusers folder is read with the diffusers / transformers model classes and run by our
own loop (`genau_core.baselines.audioldm.AudioLDMModel`), not by `AudioLDMPipeline`, which diffusers
moved to its deprecated pipelines in 2026-04. Defaults are the official inference's: DDIM 200 steps,
eta 1.0, guidance 2.5, 256 latent frames (10.24 s) for 10 s, which the base class trims to the
protocol's 10 s. `_DiffusersFolderPlugin` (locating and hashing a diffusers folder) is shared with
AudioLDM 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch

from bench.plugins._hub import folder_identity, resolve_model_dir
from bench.plugins.base import InferenceSettings, PluginInfo, RandomWeightsTwin, TextToAudioPlugin, cpu_generators


class _DiffusersFolderPlugin(TextToAudioPlugin):
    """A model released as a diffusers folder, found through `repo_id` (local folder, hub id or hub cache)."""

    repo_id: ClassVar[str] = ""

    def _model_folder(self) -> Path:
        return self._found_or_raise(*resolve_model_dir(self.checkpoint, self.repo_id, self.name))

    def checkpoint_status(self) -> tuple[bool, str]:
        folder, status = resolve_model_dir(self.checkpoint, self.repo_id, self.name)
        return folder is not None, status

    def checkpoint_identity(self) -> str:
        return folder_identity(self._model_folder())


_AUDIOLDM_NOTES = (
    "Official sampler (haoheliu/AudioLDM ldm.py generate_sample): DDIM, eta 1.0, 256 latent frames (10.24 s; the "
    "protocol keeps the first 10 s). Run by our own loop on the diffusers folder's model classes (AudioLDMPipeline is "
    "deprecated). Official CLI re-ranks 3 candidates with CLAP; the protocol uses 1 candidate, no re-ranking. One "
    "generator per prompt (x_T and every DDIM noise draw; official: global RNG); float output; no 10% random "
    "unconditional drop of the CLAP condition and no latent clipping (see docs/baselines.md)."
)


class _AudioLDMPlugin(_DiffusersFolderPlugin):
    model = None  # genau_core.baselines.audioldm.AudioLDMModel
    eta: ClassVar[float] = 1.0  # official DDIM eta (audioldm/ldm.py generate_sample)

    def load(self) -> None:
        from genau_core.baselines.audioldm import AudioLDMModel

        self.model = AudioLDMModel.from_folder(self._model_folder()).to(self.device)

    def parameter_count(self) -> int:
        self._ensure_loaded()
        return self.model.parameter_count()

    def generation_extra(self) -> dict:
        return {"ddim_eta": self.eta}

    def _generate(self, prompts: Sequence[str], *, seeds, steps, guidance, duration_s) -> list[np.ndarray]:
        waves = self.model.sample(
            list(prompts), cpu_generators(seeds), steps=steps, guidance=guidance, duration_s=duration_s, eta=self.eta
        )
        return [w.numpy().astype(np.float32) for w in waves]


class AudioLDMLarge(_AudioLDMPlugin):
    info = PluginInfo(
        name="audioldm-l",
        family="audioldm",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM (eta 1)", steps=200, guidance=2.5, duration_s=10.0),
        training_data="AudioSet, AudioCaps, Freesound, BBC Sound Effects (AudioLDM paper)",
        text_encoder="LAION-CLAP (RoBERTa) text branch",
        source="hf:cvssp/audioldm-l-full (diffusers folder: unet, vae, text_encoder, tokenizer, vocoder, scheduler)",
        paper_params="739M",
        notes=_AUDIOLDM_NOTES,
    )
    repo_id = "cvssp/audioldm-l-full"


def build_tiny_vocoder(seed: int = 0):
    """Tiny SpeechT5 HiFi-GAN at the real frame rate (hop 160 @ 16 kHz, 16 mel bins), random weights."""
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    torch.manual_seed(seed)
    vocoder = SpeechT5HifiGan(
        SpeechT5HifiGanConfig(
            model_in_dim=16,
            sampling_rate=16_000,
            upsample_initial_channel=16,
            upsample_rates=[10, 4, 4],
            upsample_kernel_sizes=[20, 8, 8],
            resblock_kernel_sizes=[3],
            resblock_dilation_sizes=[[1, 3]],
            normalize_before=False,
        )
    )
    with torch.no_grad():  # random HiFi-GAN output is ~1e-7; scale it to an audible level (~0.1 peak)
        vocoder.conv_post.weight.mul_(6e5)
    return vocoder


def tiny_ddim_scheduler():
    """The scheduler configuration of the released AudioLDM / AudioLDM 2 folders (diffusers'
    scripts/convert_original_audioldm{,2}_to_diffusers.py): LDM's linear 0.0015..0.0195 betas, and
    steps_offset 1 so the DDIM timesteps are LDM's uniform ones (1 + k * 1000 // steps)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.0015,
        beta_end=0.0195,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


# UNet layout of the AudioLDM twins (latents of 4 channels, 2 levels, attention in the deeper one)
TINY_UNET_LAYOUT: dict = dict(
    block_out_channels=(16, 32),
    layers_per_block=1,
    sample_size=32,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=4,
    norm_num_groups=8,
)


def build_tiny_vae(seed: int = 0):
    """Tiny KL-VAE of the AudioLDM twins (1-channel mel images, 4 latent channels), random weights."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        block_out_channels=[8, 16],
        in_channels=1,
        out_channels=1,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=8,
    )


def tiny_clap_text_config(vocab_size: int, projection_dim: int = 16):
    """Tiny CLAP text branch (RoBERTa layout: <s>=0, <pad>=1, </s>=2) of the AudioLDM twins."""
    from transformers import ClapTextConfig

    return ClapTextConfig(
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
        hidden_size=16,
        intermediate_size=32,
        num_attention_heads=2,
        num_hidden_layers=2,
        vocab_size=vocab_size,
        projection_dim=projection_dim,
        max_position_embeddings=80,
    )


def build_tiny_audioldm_components(seed: int = 0) -> dict:
    """Tiny AudioLDM components at the real frame rate (hop 160 @ 16 kHz), random weights, eval mode.

    The same classes as the diffusers folder of cvssp/audioldm-l-full (keyword names as there)."""
    from diffusers import UNet2DConditionModel
    from transformers import ClapTextModelWithProjection

    from genau_core.tokenizers import roberta_style_tokenizer

    tokenizer = roberta_style_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        **TINY_UNET_LAYOUT,
        cross_attention_dim=(16, 32),
        class_embed_type="simple_projection",
        projection_class_embeddings_input_dim=16,
        class_embeddings_concat=True,
    )
    vae = build_tiny_vae(seed)
    torch.manual_seed(seed)
    text_encoder = ClapTextModelWithProjection(tiny_clap_text_config(len(tokenizer)))
    vocoder = build_tiny_vocoder(seed)
    scheduler = tiny_ddim_scheduler()
    for module in (unet, vae, text_encoder, vocoder):
        module.eval()  # dropout off: the same seed must give the same clip
    return dict(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, vocoder=vocoder, scheduler=scheduler
    )


class AudioLDMTiny(RandomWeightsTwin, _AudioLDMPlugin):
    info = PluginInfo(
        name="audioldm-l-tiny",
        family="audioldm",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM (eta 1)", steps=10, guidance=2.5, duration_s=10.0),
        training_data="none (random weights, seed 0)",
        text_encoder="tiny CLAP text branch, in-process BPE tokenizer",
        source="in-process (bench.plugins.audioldm.build_tiny_audioldm_components, run by AudioLDMModel)",
        tiny=True,
        notes="Offline twin of audioldm-l: same loop and sampler (DDIM eta 1, 10.24 s per 10 s), tiny random "
        "components (seed 0), 10 DDIM steps instead of 200.",
    )

    def load(self) -> None:
        from genau_core.baselines.audioldm import AudioLDMModel

        self.model = AudioLDMModel.from_components(**build_tiny_audioldm_components(self.seed)).to(self.device)
