"""Tango and Tango 2 (declare-lab) as bench plugins: finding the released folders, the plugin classes and
the offline tiny twins. The network, configurations, key maps and sampler are `genau_core.baselines.tango`
(its docstring says what the official code does and where ours differs)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from bench.plugins._hub import cached_snapshot, folder_identity, resolve_model_dir
from bench.plugins.base import InferenceSettings, PluginInfo, RandomWeightsTwin, SamplingModelPlugin
from genau_core.baselines._common import TINY_T5_ENCODER_CONFIG
from genau_core.baselines.tango import (
    HiFiGANConfig,
    LdmVaeConfig,
    REQUIRED_FILES,
    SD21_DDPM_SCHEDULER_CONFIG,
    TANGO2_CONFIG,
    TANGO2_SCHEDULER_CONFIG,
    TANGO_CONFIG,
    TANGO_SCHEDULER_CONFIG,
    TANGO_UNET_CONFIG,
    TOKENIZER_FILES,
    TangoConfig,
    TangoModel,
    build_text_encoder,
    build_unet,
    build_vae,
    build_vocoder,
    load_tango_folder,
    map_hifigan_state_dict,
    map_ldm_vae_state_dict,
    map_tango_main_state_dict,
    resolve_unet_config,
    save_official_tango_folder,
)


def _tokenizer_dir(folder: Path, hub_id: str) -> tuple[Path | None, str]:
    for candidate in (folder / "tokenizer", folder):
        if any((candidate / f).is_file() for f in TOKENIZER_FILES):
            return candidate, f"tokenizer from {candidate}"
    snap = cached_snapshot(hub_id)
    if snap is not None and any((snap / f).is_file() for f in TOKENIZER_FILES):
        return snap, f"tokenizer from hub cache {hub_id}"
    return None, (
        f"FLAN-T5 tokenizer not found: the official code loads it from {hub_id}; download it "
        f"(`huggingface-cli download {hub_id} spiece.model tokenizer.json tokenizer_config.json "
        "special_tokens_map.json`) "
        f"or copy those files into {folder / 'tokenizer'}"
    )


def locate_tango_folder(checkpoint: str | None, repo_id: str, hub_id: str) -> tuple[Path | None, Path | None, str]:
    """(checkpoint folder, tokenizer folder, status); folders are None when something is missing."""
    folder, status = resolve_model_dir(checkpoint, repo_id)
    if folder is None:
        return None, None, status + f" (needs {', '.join(REQUIRED_FILES)})"
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if missing:
        return None, None, f"{folder}: missing {', '.join(missing)} (the files of hf:{repo_id})"
    tok, tok_status = _tokenizer_dir(folder, hub_id)
    if tok is None:
        return None, None, f"{status}; {tok_status}"
    return folder, tok, f"{status}; {tok_status}"


# ---------------------------------------------------------------------------------------
# plugins
# ---------------------------------------------------------------------------------------


class _TangoPlugin(SamplingModelPlugin):
    model: TangoModel | None = None


_NOTES_COMMON = (
    "Generates 10.24 s (256 latent frames, as released); the protocol keeps the first 10 s. "
    "One generator per prompt for the initial latents and every DDPM noise draw (official: global RNG); "
    "each prompt text-encoded alone; float output (official: int16). "
)
_TANGO_NOTES = _NOTES_COMMON + "DDPM timesteps 995...0, as the paper-era code (vendored diffusers 0.15) ran them."
_TANGO2_NOTES = (
    _NOTES_COMMON + "DDPM timesteps 996...1, as the Tango 2 code (diffusers==0.18.2, steps_offset 1) runs them."
)


class Tango(_TangoPlugin):
    info = PluginInfo(
        name="tango",
        family="tango",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDPM (v-prediction)", steps=200, guidance=3.0, duration_s=10.0),
        training_data="AudioCaps (Tango paper)",
        text_encoder="FLAN-T5-large (frozen)",
        source="hf:declare-lab/tango (pytorch_model_main.bin, pytorch_model_vae.bin) + tokenizer google/flan-t5-large",
        paper_params="866M",
        notes=_TANGO_NOTES,
    )
    repo_id = "declare-lab/tango"
    config: TangoConfig = TANGO_CONFIG

    def _locate(self) -> tuple[Path | None, Path | None, str]:
        return locate_tango_folder(self.checkpoint, self.repo_id, self.config.text_encoder_hub_id)

    def checkpoint_status(self) -> tuple[bool, str]:
        folder, _, status = self._locate()
        return folder is not None, status

    def checkpoint_identity(self) -> str:
        folder, _, status = self._locate()
        return folder_identity(self._found_or_raise(folder, status))

    def load(self) -> None:
        folder, tok, status = self._locate()
        self.model = load_tango_folder(self._found_or_raise(folder, status), tok, self.config).to(self.device)


# The sampler string is part of the run's settings hash: clips made with Tango's timesteps are never reused.
_TANGO2_SAMPLER = "DDPM (v-prediction, steps_offset 1)"


class Tango2(Tango):
    info = replace(
        Tango.info,
        name="tango2",
        defaults=replace(Tango.info.defaults, sampler=_TANGO2_SAMPLER),
        training_data="AudioCaps, then DPO on Audio-alpaca preference pairs (Tango 2 paper)",
        source="hf:declare-lab/tango2 (pytorch_model_main.bin, pytorch_model_vae.bin) + tokenizer google/flan-t5-large",
        notes="Same architecture and loader as tango. " + _TANGO2_NOTES,
    )
    repo_id = "declare-lab/tango2"
    config: TangoConfig = TANGO2_CONFIG


# --- tiny twins ---------------------------------------------------------------------------

TANGO_TINY_CONFIG = TangoConfig(
    t5=dict(TINY_T5_ENCODER_CONFIG),
    unet=dict(
        TANGO_UNET_CONFIG,
        attention_head_dim=(2, 4),
        block_out_channels=(16, 32),
        cross_attention_dim=32,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
    ),
    vae=LdmVaeConfig(
        ch=8,
        ch_mult=(1, 2, 4),
        num_res_blocks=1,
        z_channels=4,
        embed_dim=4,
        scale_factor=0.9227914214134216,
        norm_num_groups=8,
    ),
    vocoder=HiFiGANConfig(
        num_mels=16,
        upsample_rates=(10, 4, 4),
        upsample_kernel_sizes=(20, 8, 8),
        upsample_initial_channel=32,
        resblock_kernel_sizes=(3,),
        resblock_dilation_sizes=((1, 3, 5),),
    ),
    tokenizer_max_length=32,
    text_encoder_hub_id="in-process tiny T5 tokenizer",
)


TANGO2_TINY_CONFIG = replace(TANGO_TINY_CONFIG, scheduler=dict(TANGO2_SCHEDULER_CONFIG))


def build_tiny_tango(seed: int = 0, config: TangoConfig = TANGO_TINY_CONFIG) -> TangoModel:
    """Tiny Tango (same code path, hop 160 @ 16 kHz, 16 mels), random weights from `seed`, eval mode."""
    from genau_core.tokenizers import t5_style_tokenizer

    cfg = config
    tokenizer = t5_style_tokenizer(vocab_size=cfg.t5["vocab_size"], model_max_length=cfg.tokenizer_max_length)
    torch.manual_seed(seed)
    text_encoder = build_text_encoder(cfg)
    torch.manual_seed(seed)
    unet = build_unet(cfg)
    torch.manual_seed(seed)
    vae = build_vae(cfg.vae)
    torch.manual_seed(seed)
    vocoder = build_vocoder(cfg.vocoder)
    with torch.no_grad():  # random HiFi-GAN output is ~1e-6; scale it to an audible level
        vocoder.conv_post.weight.mul_(1e5)
    model = TangoModel(cfg, tokenizer, text_encoder, unet, vae, vocoder)
    return model.to("cpu")


class _TangoTiny(RandomWeightsTwin, _TangoPlugin):
    tiny_config: TangoConfig = TANGO_TINY_CONFIG

    def load(self) -> None:
        self.model = build_tiny_tango(self.seed, self.tiny_config).to(self.device)


_TINY_DEFAULTS = InferenceSettings(sampler="DDPM (v-prediction)", steps=10, guidance=3.0, duration_s=10.0)


class TangoTiny(_TangoTiny):
    info = PluginInfo(
        name="tango-tiny",
        family="tango",
        native_sample_rate=16_000,
        defaults=_TINY_DEFAULTS,
        training_data="none (random weights, seed 0)",
        text_encoder="tiny T5 encoder, in-process Unigram tokenizer",
        source="in-process (bench.plugins.tango.build_tiny_tango)",
        tiny=True,
        notes="Offline twin of tango: same sampler (timesteps as tango's: no steps_offset), key mapping and decode "
        "path, tiny random modules (seed 0), 10 DDPM steps instead of 200.",
    )
    seed = 0


class Tango2Tiny(_TangoTiny):
    info = replace(
        TangoTiny.info,
        name="tango2-tiny",
        defaults=replace(_TINY_DEFAULTS, sampler=_TANGO2_SAMPLER),
        training_data="none (random weights, seed 1)",
        notes="Offline twin of tango2. Tango 2 differs from Tango in its weights (DPO fine-tuning) and in its DDPM "
        "timesteps (diffusers 0.18.2 adds steps_offset 1), so this twin is tango-tiny's builder with another seed (1) "
        "and tango2's scheduler: same architecture and code path, different random weights.",
    )
    seed = 1
    tiny_config = TANGO2_TINY_CONFIG


__all__ = [
    "SD21_DDPM_SCHEDULER_CONFIG",
    "TANGO2_CONFIG",
    "TANGO2_SCHEDULER_CONFIG",
    "TANGO2_TINY_CONFIG",
    "TANGO_CONFIG",
    "TANGO_SCHEDULER_CONFIG",
    "TANGO_TINY_CONFIG",
    "HiFiGANConfig",
    "LdmVaeConfig",
    "Tango",
    "Tango2",
    "Tango2Tiny",
    "TangoConfig",
    "TangoModel",
    "TangoTiny",
    "build_tiny_tango",
    "load_tango_folder",
    "map_hifigan_state_dict",
    "map_ldm_vae_state_dict",
    "map_tango_main_state_dict",
    "resolve_unet_config",
    "save_official_tango_folder",
]
