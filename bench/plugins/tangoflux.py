"""TangoFlux (hub id declare-lab/TangoFlux) and its offline tiny twin; 44.1 kHz stereo, up to 30 s.

The model, its key mapping and the official sampler live in `genau_core.baselines.tangoflux` (see its
docstring for what the official code does). This module finds the released files and the FLAN-T5
tokenizer, and sets the defaults:
- 50 steps: the README ("inference with 50 steps yields the best results"; its CLI and Python examples pass
  `steps=50`; `TangoFluxInference.generate` itself defaults to 25, "similar quality at a faster speed").
- guidance 4.5: `TangoFluxInference.generate`'s default (the README: 3.5, 4 and 4.5 "yield similar quality").
- duration 10 s (CLI default); any duration in (0, 30] (config `max_duration`; the CLI accepts 1-30). The model
  always generates 645 latent frames (29.95 s) and keeps the first `duration` seconds, so a 30 s request gives
  29.95 s of audio, zero-padded to 30 s by the protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch

from bench.errors import UsageError
from bench.plugins._hub import cached_snapshot, files_identity, resolve_model_dir
from bench.plugins.base import (
    InferenceSettings,
    PluginInfo,
    RandomWeightsTwin,
    TextToAudioPlugin,
    cpu_generators,
)
from genau_core.baselines._common import T5_LARGE_ENCODER_CONFIG, TINY_T5_ENCODER_CONFIG
from genau_core.baselines.tangoflux import (
    OFFICIAL_FILES,
    OobleckConfig,
    TangoFluxConfig,
    TangoFluxModel,
    build_tangoflux,
    load_tangoflux_folder,
)

REPO_ID = "declare-lab/TangoFlux"
TOKENIZER_HUB_ID = "google/flan-t5-large"
TOKENIZER_FILES = ("spiece.model", "tokenizer.json")
LICENSE = (
    "non-commercial research only: Stability AI Community License (built on Stable Audio Open's VAE) plus WavCaps' "
    "academic-only terms (TangoFlux README, LICENSE.md); not gated"
)
FILES_TEXT = (
    f"{', '.join(OFFICIAL_FILES)} from hf:{REPO_ID}, and the {TOKENIZER_HUB_ID} tokenizer "
    f"({' or '.join(TOKENIZER_FILES)} + tokenizer_config.json) in <folder>/tokenizer/ or the hub cache"
)


def _tokenizer_dir(folder: Path) -> tuple[Path | None, str]:
    """Where the FLAN-T5 tokenizer is: <folder>/tokenizer, the folder itself, or google/flan-t5-large's hub cache."""
    for candidate in (folder / "tokenizer", folder):
        if any((candidate / f).is_file() for f in TOKENIZER_FILES):
            return candidate, f"tokenizer from {candidate}"
    snap = cached_snapshot(TOKENIZER_HUB_ID)
    if snap is not None and any((snap / f).is_file() for f in TOKENIZER_FILES):
        return snap, f"tokenizer from hub cache {TOKENIZER_HUB_ID}"
    return None, (
        f"FLAN-T5 tokenizer not found: the official code loads it from {TOKENIZER_HUB_ID}; download it "
        f"(`huggingface-cli download {TOKENIZER_HUB_ID} spiece.model tokenizer.json tokenizer_config.json "
        f"special_tokens_map.json`) or copy those files into {folder / 'tokenizer'}"
    )


def locate_tangoflux_folder(checkpoint: str | None, model: str) -> tuple[Path | None, Path | None, str]:
    """(checkpoint folder, tokenizer folder, status); folders are None when something is missing."""
    folder, status = resolve_model_dir(checkpoint, REPO_ID, model)
    if folder is None:
        return None, None, f"{status} (needs {FILES_TEXT})"
    missing = [f for f in OFFICIAL_FILES if not (folder / f).is_file()]
    if missing:
        return (
            None,
            None,
            (
                f"{folder}: missing {', '.join(missing)} (the files of hf:{REPO_ID}); "
                f"pass the downloaded folder with --model-checkpoint {model}=PATH"
            ),
        )
    tok, tok_status = _tokenizer_dir(folder)
    if tok is None:
        return None, None, f"{status}; {tok_status}"
    return folder, tok, f"{status}; {tok_status}"


def folder_files_identity(folder: Path) -> str:
    """sha256 over the two weight files the model reads (config.json is recorded in the run's generation facts)."""
    return files_identity(folder, [folder / "tangoflux.safetensors", folder / "vae.safetensors"])


class _TangoFluxPlugin(TextToAudioPlugin):
    model: TangoFluxModel | None = None
    facts: dict | None = None

    def parameter_count(self) -> int:
        self._ensure_loaded()
        return self.model.parameter_count()

    def generation_extra(self) -> dict:
        return dict(self.facts or {})

    @property
    def max_duration_s(self) -> float:
        self._ensure_loaded()
        return float(self.model.config.max_duration)

    def _generate(self, prompts: Sequence[str], *, seeds, steps, guidance, duration_s) -> list[np.ndarray]:
        longest = self.max_duration_s
        if not 0 < duration_s <= longest:
            raise UsageError(f"{self.name}: --duration {duration_s}: this model generates between 0 and {longest:g} s")
        waves = self.model.sample(
            list(prompts), cpu_generators(seeds), steps=steps, guidance=guidance, duration_s=duration_s
        )
        return [w.numpy().astype(np.float32) for w in waves]  # (2, samples) each


_NOTES = (
    "Official inference (TangoFlux model.py inference_flow + TangoFluxInference.generate): rectified-flow Euler "
    "sampler, sigmas linspace(1, 1/steps, steps), CFG against the empty prompt padded to the prompt's length, duration "
    "token + pooled text projection, 645 latent frames (29.95 s) cut to the duration. Defaults: 50 steps (README), "
    "guidance 4.5 (generate()). One generator per prompt for the initial latents (official: global RNG after "
    "torch.manual_seed); prompts run one at a time as in the official code; float output. Native 44.1 kHz stereo; the "
    "genau protocol scores the channel mean resampled to 16 kHz."
)


class TangoFlux(_TangoFluxPlugin):
    info = PluginInfo(
        name="tangoflux",
        family="tangoflux",
        native_sample_rate=44_100,
        native_channels=2,
        defaults=InferenceSettings(sampler="flow matching (Euler)", steps=50, guidance=4.5, duration_s=10.0),
        training_data="WavCaps, AudioCaps; then CLAP-ranked preference optimisation (CRPO) (TangoFlux paper)",
        text_encoder="FLAN-T5-large (frozen) + duration embedding",
        source=f"hf:{REPO_ID} ({', '.join(OFFICIAL_FILES)}) + tokenizer {TOKENIZER_HUB_ID}",
        paper_params="515M",
        notes=_NOTES,
        license=LICENSE,
    )
    repo_id: ClassVar[str] = REPO_ID
    # google/flan-t5-large's encoder and diffusers' AutoencoderOobleck() defaults, as the official code builds them
    t5_config: ClassVar[dict] = T5_LARGE_ENCODER_CONFIG
    vae_config: ClassVar[OobleckConfig] = OobleckConfig()
    tokenizer_max_length: ClassVar[int] = 512  # google/flan-t5-large model_max_length

    def _locate(self) -> tuple[Path | None, Path | None, str]:
        return locate_tangoflux_folder(self.checkpoint, self.name)

    def checkpoint_status(self) -> tuple[bool, str]:
        folder, _, status = self._locate()
        return folder is not None, status

    def checkpoint_identity(self) -> str:
        folder, _, status = self._locate()
        return folder_files_identity(self._found_or_raise(folder, status))

    def load(self) -> None:
        from transformers import AutoTokenizer

        folder, tok_dir, status = self._locate()
        folder = self._found_or_raise(folder, status)
        n = self.tokenizer_max_length
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), model_max_length=n)
        model, facts = load_tangoflux_folder(folder, tokenizer, self.t5_config, self.vae_config, tokenizer_max_length=n)
        self.model, self.facts = model.to(self.device), facts


# --- the offline tiny twin -----------------------------------------------------------------------

# The released layout at tiny size. Kept as the official code needs it: 64 latent channels (its inference draws
# (1, audio_seq_len, 64) latents), head width 128 (diffusers' default rotary axes 16 + 56 + 56, which the official
# FluxTransformer2DModel call keeps), joint_attention_dim = T5 width.
TINY_CONFIG = TangoFluxConfig(
    num_layers=1,
    num_single_layers=1,
    in_channels=64,
    attention_head_dim=128,
    joint_attention_dim=TINY_T5_ENCODER_CONFIG["d_model"],
    num_attention_heads=1,
    audio_seq_len=216,  # 216 x 2048 / 44100 = 10.03 s (real: 645 = 29.95 s)
    max_duration=10,
)
# decoder: 64 latent channels, hop 2048, 44.1 kHz stereo; the encoder (never run at inference) is cut to width 4
TINY_VAE = OobleckConfig(
    encoder_hidden_size=4, channel_multiples=(1, 1, 1, 1, 1), decoder_channels=2, decoder_input_channels=64
)


def build_tiny_tangoflux(
    seed: int = 0, config: TangoFluxConfig = TINY_CONFIG, vae: OobleckConfig = TINY_VAE
) -> TangoFluxModel:
    """Tiny TangoFlux (same code path; 44.1 kHz stereo VAE layout, hop 2048), random weights from `seed`, eval mode."""
    from genau_core.tokenizers import t5_style_tokenizer

    tokenizer = t5_style_tokenizer(vocab_size=TINY_T5_ENCODER_CONFIG["vocab_size"], model_max_length=32)
    torch.manual_seed(seed)
    model = build_tangoflux(config, TINY_T5_ENCODER_CONFIG, vae, tokenizer, tokenizer_max_length=32)
    return model.to("cpu")


class TangoFluxTiny(RandomWeightsTwin, _TangoFluxPlugin):
    info = PluginInfo(
        name="tangoflux-tiny",
        family="tangoflux",
        native_sample_rate=44_100,
        native_channels=2,
        defaults=InferenceSettings(sampler="flow matching (Euler)", steps=10, guidance=4.5, duration_s=10.0),
        training_data="none (random weights, seed 0)",
        text_encoder="tiny T5 encoder, in-process Unigram tokenizer",
        source="in-process (bench.plugins.tangoflux.build_tiny_tangoflux)",
        tiny=True,
        notes="Offline twin of tangoflux: the same sampler, conditioning and decode path, tiny random modules "
        "(seed 0), "
        "216 latent frames (10.03 s) and max_duration 10 (real: 645 frames, 30 s), 10 steps instead of 50.",
    )
    seed = 0

    def load(self) -> None:
        self.model = build_tiny_tangoflux(self.seed).to(self.device)
        self.facts = {"config": TINY_CONFIG.to_official_dict()}


__all__ = [
    "REPO_ID",
    "TINY_CONFIG",
    "TINY_VAE",
    "TangoFlux",
    "TangoFluxTiny",
    "build_tiny_tangoflux",
    "folder_files_identity",
    "locate_tangoflux_folder",
]
