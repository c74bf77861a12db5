"""TangoFlux (declare-lab, ICLR 2026): a FLUX-style transformer trained by rectified flow on Stable Audio
Open's VAE latents, conditioned on FLAN-T5-large text states and a duration embedding; 44.1 kHz stereo.

What the official code does (declare-lab/TangoFlux, `tangoflux/__init__.py` `TangoFluxInference` and
`tangoflux/model.py` `TangoFlux`):
- `snapshot_download("declare-lab/TangoFlux")` gives `config.json`, `tangoflux.safetensors` and
  `vae.safetensors`. `AutoencoderOobleck()` (diffusers' defaults = Stable Audio Open's VAE: hop 2048,
  64 latent channels, 44.1 kHz, 2 channels) loads `vae.safetensors`; `TangoFlux(config)` loads
  `tangoflux.safetensors` with `strict=False` (only `text_encoder.encoder.embed_tokens.weight`, tied to
  `text_encoder.shared.weight`, is missing).
- `TangoFlux`: `T5EncoderModel` + `T5TokenizerFast` of `google/flan-t5-large` (the encoder weights are
  then overwritten by the file's `text_encoder.*`), `fc` = Linear(d_model, joint_attention_dim) + ReLU on
  the masked mean of the text states (the pooled projection), `duration_emebdder` (sic) = Stable Audio's
  number conditioner (Fourier features of duration / max_duration + Linear), and a diffusers
  `FluxTransformer2DModel(in_channels, num_layers, num_single_layers, attention_head_dim,
  num_attention_heads, joint_attention_dim, pooled_projection_dim=d_model, guidance_embeds=False)`.
- `inference_flow(prompt, num_inference_steps, guidance_scale, duration, seed)`: `torch.manual_seed(seed)`;
  text states of the prompt (padded to its own length) and of "" padded to the same length, concatenated
  (unconditional first) with the duration embedding as one more token; latents `torch.randn(1,
  audio_seq_len, 64)` (always the full `audio_seq_len` = 645 frames = 29.95 s, whatever the duration);
  `FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000)` with sigmas `linspace(1, 1/steps, steps)`;
  text ids zeros, audio ids `arange(audio_seq_len)` on all three rotary axes; the transformer gets
  `t / 1000`; `uncond + guidance * (cond - uncond)`; Euler steps. `generate` decodes
  `latents.transpose(2, 1)` with the VAE and keeps the first `int(duration * 44100)` samples.
  Defaults: 50 steps (README: "inference with 50 steps yields the best results"; CLI `--steps 50`),
  guidance 4.5 (`TangoFluxInference.generate`), duration 10 (CLI), 1-30 s (CLI check, config max_duration).

Here the same computation is built from maintained library modules with an explicit key mapping
(`map_tangoflux_state_dict`); `TangoFluxModel.sample` follows `inference_flow` + `generate` per prompt.
Deliberate differences (docs/baselines.md):
- One `torch.Generator` per prompt draws its initial latents on the CPU (the official code draws the same
  numbers from the global RNG after `torch.manual_seed(seed)`), so a clip never depends on its batch;
  prompts run one at a time, as the official code does (its batch path is untested and pads prompts).
- guidance <= 1 runs the conditional branch alone, with the same tokenisation; the official non-guided
  branch calls `encode_text` with an argument it does not take (TypeError).
- Rotary ids are passed 2-D (diffusers deprecated the official 3-D ids; the result is the same).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from genau_core.baselines._state import CheckpointMappingError, load_strict

OFFICIAL_FILES = ("config.json", "tangoflux.safetensors", "vae.safetensors")
# The official `TangoFlux` module's attribute for the duration embedder carries a typo; ours does not.
_OFFICIAL_DURATION_PREFIX = "duration_emebdder."
# Present in checkpoints saved from DPO / CRPO training with a reference model; unused at inference
# (the official `load_state_dict(strict=False)` ignores them too).
_IGNORED_PREFIXES = ("ref_transformer.",)
_TIED_T5_KEY = "text_encoder.encoder.embed_tokens.weight"


@dataclass(frozen=True)
class TangoFluxConfig:
    """The official `config.json` keys, with the defaults `TangoFlux.__init__` falls back to (`config.get`)."""

    num_layers: int = 6
    num_single_layers: int = 18
    in_channels: int = 64
    attention_head_dim: int = 128
    joint_attention_dim: int = 1024
    num_attention_heads: int = 8
    audio_seq_len: int = 645
    max_duration: int = 30
    uncondition: bool = False  # training-time condition dropout; no effect at inference
    text_encoder_name: str = "google/flan-t5-large"

    @classmethod
    def from_official_dict(cls, d: Mapping) -> tuple[TangoFluxConfig, list[str]]:
        """(config, keys the official code does not read). Unknown keys are ignored, as `config.get` does."""
        known = {f.name for f in fields(cls)}
        values = {k: d[k] for k in known if k in d}
        return cls(**values), sorted(k for k in d if k not in known)

    def to_official_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class OobleckConfig:
    """`AutoencoderOobleck` keywords; the defaults are diffusers' (= Stable Audio Open's VAE), which the
    official `TangoFluxInference` builds with `AutoencoderOobleck()`."""

    encoder_hidden_size: int = 128
    downsampling_ratios: tuple[int, ...] = (2, 4, 4, 8, 8)
    channel_multiples: tuple[int, ...] = (1, 2, 4, 8, 16)
    decoder_channels: int = 128
    decoder_input_channels: int = 64
    audio_channels: int = 2
    sampling_rate: int = 44_100

    @property
    def hop_length(self) -> int:
        return int(np.prod(self.downsampling_ratios))

    def build(self):
        from diffusers import AutoencoderOobleck

        d = asdict(self)
        d["downsampling_ratios"], d["channel_multiples"] = list(self.downsampling_ratios), list(self.channel_multiples)
        return AutoencoderOobleck(**d)


class TangoFluxNetwork(nn.Module):
    """The official `TangoFlux` module's inference parts: T5 encoder, pooled projection, duration embedder,
    FLUX transformer (diffusers' `FluxTransformer2DModel`, the class the official code builds)."""

    def __init__(self, config: TangoFluxConfig, t5_config: Mapping):
        super().__init__()
        from diffusers import FluxTransformer2DModel
        from diffusers.pipelines.stable_audio.modeling_stable_audio import (
            StableAudioNumberConditioner,
        )
        from transformers import T5Config, T5EncoderModel

        self.config = config
        self.text_encoder = T5EncoderModel(T5Config(**t5_config))
        width = self.text_encoder.config.d_model
        if width != config.joint_attention_dim:
            # the official code feeds the T5 states (width d_model) to a context embedder of joint_attention_dim
            raise ValueError(
                f"TangoFlux config: joint_attention_dim {config.joint_attention_dim} must equal the text encoder's "
                f"d_model {width} (the official model feeds T5 states straight to the transformer)"
            )
        self.fc = nn.Sequential(nn.Linear(width, config.joint_attention_dim), nn.ReLU())
        # the official DurationEmbedder is Stable Audio's number conditioner (same keys, same computation)
        self.duration_embedder = StableAudioNumberConditioner(width, min_value=0, max_value=config.max_duration)
        self.transformer = FluxTransformer2DModel(
            in_channels=config.in_channels,
            num_layers=config.num_layers,
            num_single_layers=config.num_single_layers,
            attention_head_dim=config.attention_head_dim,
            num_attention_heads=config.num_attention_heads,
            joint_attention_dim=config.joint_attention_dim,
            pooled_projection_dim=width,
            guidance_embeds=False,
        )


def map_tangoflux_state_dict(sd: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """`tangoflux.safetensors` -> (TangoFluxNetwork state dict, ignored keys). Keys outside the official
    module's inference parts are refused (CheckpointMappingError); DPO reference copies are ignored."""
    out: dict[str, torch.Tensor] = {}
    ignored, unknown = [], []
    for key, value in sd.items():
        if key.startswith(_IGNORED_PREFIXES):
            ignored.append(key)
        elif key.startswith(_OFFICIAL_DURATION_PREFIX):
            out["duration_embedder." + key[len(_OFFICIAL_DURATION_PREFIX) :]] = value
        elif key.startswith(("text_encoder.", "fc.", "transformer.")):
            out[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointMappingError(
            f"tangoflux.safetensors: {len(unknown)} keys outside text_encoder./fc./duration_emebdder./transformer. "
            f"(e.g. {unknown[:5]})"
        )
    return out, ignored


@dataclass
class TangoFluxModel:
    """Network + VAE + tokenizer, sampled as the official `inference_flow` + `TangoFluxInference.generate`."""

    config: TangoFluxConfig
    network: TangoFluxNetwork
    vae: nn.Module
    tokenizer: object
    tokenizer_max_length: int = (
        512  # google/flan-t5-large model_max_length (the official CFG path pads/truncates to it)
    )

    def to(self, device) -> TangoFluxModel:
        self.network.to(device).eval()
        self.vae.to(device).eval()
        return self

    def parameter_count(self) -> int:
        return sum(p.numel() for m in (self.network, self.vae) for p in m.parameters())

    @property
    def sample_rate(self) -> int:
        return int(self.vae.config.sampling_rate)

    @property
    def generated_seconds(self) -> float:
        """What one call generates before the crop: audio_seq_len latent frames."""
        return self.config.audio_seq_len * int(self.vae.hop_length) / self.sample_rate

    def load_official_state_dicts(
        self, model_sd: Mapping[str, torch.Tensor], vae_sd: Mapping[str, torch.Tensor]
    ) -> list[str]:
        """Load `tangoflux.safetensors` and `vae.safetensors` contents strictly; returns the ignored keys."""
        mapped, ignored = map_tangoflux_state_dict(model_sd)
        load_strict(self.network, mapped, "tangoflux.safetensors", allow_missing=(_TIED_T5_KEY,))
        load_strict(self.vae, dict(vae_sd), "vae.safetensors")
        return ignored

    # -- inference ------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.network.transformer.parameters()).device

    def _text_states(self, prompt: str, cfg: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(states, boolean mask): [uncond, cond] when `cfg`, else [cond] (official `encode_text_classifier_free`)."""
        dev = self._device()
        enc = self.network.text_encoder
        batch = self.tokenizer(
            [prompt], max_length=self.tokenizer_max_length, padding=True, truncation=True, return_tensors="pt"
        )
        ids, mask = batch.input_ids.to(dev), batch.attention_mask.to(dev)
        states = enc(input_ids=ids, attention_mask=mask)[0]
        if not cfg:
            return states, mask == 1
        neg = self.tokenizer(
            [""], max_length=states.shape[1], padding="max_length", truncation=True, return_tensors="pt"
        )
        neg_ids, neg_mask = neg.input_ids.to(dev), neg.attention_mask.to(dev)
        neg_states = enc(input_ids=neg_ids, attention_mask=neg_mask)[0]
        return torch.cat([neg_states, states]), torch.cat([neg_mask, mask]) == 1

    @torch.no_grad()
    def sample_latents(
        self, prompt: str, generator: torch.Generator, *, steps: int, guidance: float, duration_s: float
    ) -> torch.Tensor:
        """(1, audio_seq_len, in_channels) latents of one prompt (official `inference_flow`)."""
        from diffusers import FlowMatchEulerDiscreteScheduler

        dev, net, cfg = self._device(), self.network, guidance > 1.0
        states, mask = self._text_states(prompt, cfg)
        rows = states.shape[0]
        duration = torch.tensor([duration_s], device=dev)
        duration_states = net.duration_embedder(duration).repeat(rows, 1, 1)
        masked = torch.where(mask.unsqueeze(-1).expand_as(states), states, torch.tensor(float("nan"), device=dev))
        pooled = net.fc(torch.nanmean(masked, dim=1))
        context = torch.cat([states, duration_states], dim=1)

        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000)
        scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), device=dev)
        latents = torch.randn((1, self.config.audio_seq_len, self.config.in_channels), generator=generator).to(dev)
        txt_ids = torch.zeros(context.shape[1], 3, device=dev)
        audio_ids = torch.arange(self.config.audio_seq_len, device=dev).unsqueeze(-1).repeat(1, 3)
        for t in scheduler.timesteps:
            model_in = torch.cat([latents] * 2) if cfg else latents
            pred = net.transformer(
                hidden_states=model_in,
                timestep=(t / 1000).reshape(1),
                guidance=None,
                pooled_projections=pooled,
                encoder_hidden_states=context,
                txt_ids=txt_ids,
                img_ids=audio_ids,
                return_dict=False,
            )[0]
            if cfg:
                uncond, cond = pred.chunk(2)
                pred = uncond + guidance * (cond - uncond)
            latents = scheduler.step(pred, t, latents).prev_sample
        return latents

    @torch.no_grad()
    def sample(
        self,
        prompts: Sequence[str],
        generators: Sequence[torch.Generator],
        *,
        steps: int,
        guidance: float,
        duration_s: float,
    ) -> list[torch.Tensor]:
        """One (channels, samples) float32 waveform per prompt, `int(duration_s * rate)` samples (or all the
        model generated, when that is less), decoded as `TangoFluxInference.generate` decodes."""
        if len(prompts) != len(generators):
            raise ValueError(f"{len(prompts)} prompts but {len(generators)} generators")
        end = int(duration_s * self.sample_rate)
        out = []
        for prompt, gen in zip(prompts, generators):
            latents = self.sample_latents(prompt, gen, steps=steps, guidance=guidance, duration_s=duration_s)
            wave = self.vae.decode(latents.transpose(2, 1)).sample[0]
            out.append(wave[:, :end].float().cpu())
        return out


def build_tangoflux(
    config: TangoFluxConfig,
    t5_config: Mapping,
    vae_config: OobleckConfig,
    tokenizer,
    *,
    tokenizer_max_length: int = 512,
) -> TangoFluxModel:
    """The model with freshly initialised weights (load the official files next, or keep them for a tiny twin)."""
    return TangoFluxModel(
        config, TangoFluxNetwork(config, t5_config), vae_config.build(), tokenizer, tokenizer_max_length
    )


def load_tangoflux_folder(
    folder: Path,
    tokenizer,
    t5_config: Mapping,
    vae_config: OobleckConfig = OobleckConfig(),
    *,
    tokenizer_max_length: int = 512,
) -> tuple[TangoFluxModel, dict]:
    """(model, facts) from a folder with the files of hf:declare-lab/TangoFlux (`OFFICIAL_FILES`). The text encoder's
    config is google/flan-t5-large's (the official code's `T5EncoderModel.from_pretrained`), the VAE's diffusers'
    `AutoencoderOobleck()` defaults (the official `TangoFluxInference`); tests pass tiny ones."""
    from safetensors.torch import load_file

    where = folder / "config.json"
    try:
        raw = json.loads(where.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: not a readable TangoFlux config.json ({e})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a JSON object of model settings")
    config, unread = TangoFluxConfig.from_official_dict(raw)
    model = build_tangoflux(config, t5_config, vae_config, tokenizer, tokenizer_max_length=tokenizer_max_length)
    ignored = model.load_official_state_dicts(
        load_file(str(folder / "tangoflux.safetensors")), load_file(str(folder / "vae.safetensors"))
    )
    facts = {"config": config.to_official_dict(), "config_keys_not_read": unread, "ignored_keys": len(ignored)}
    return model, facts


def save_official_tangoflux_folder(folder: Path, model: TangoFluxModel) -> None:
    """Write a folder in the released layout (official key names), e.g. for tests with tiny weights."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model.config.to_official_dict()))
    sd = {}
    for key, value in model.network.state_dict().items():
        if key == _TIED_T5_KEY:
            continue  # tied to text_encoder.shared.weight; the released file leaves it out
        if key.startswith("duration_embedder."):
            key = _OFFICIAL_DURATION_PREFIX + key[len("duration_embedder.") :]
        sd[key] = value.detach().clone().contiguous()
    save_file(sd, str(folder / "tangoflux.safetensors"))
    save_file(
        {k: v.detach().clone().contiguous() for k, v in model.vae.state_dict().items()}, str(folder / "vae.safetensors")
    )


__all__ = [
    "OFFICIAL_FILES",
    "OobleckConfig",
    "TangoFluxConfig",
    "TangoFluxModel",
    "TangoFluxNetwork",
    "build_tangoflux",
    "load_tangoflux_folder",
    "map_tangoflux_state_dict",
    "save_official_tangoflux_folder",
]
