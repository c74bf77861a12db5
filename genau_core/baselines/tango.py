"""Tango and Tango 2 (declare-lab), loaded from their released files, plus offline tiny twins.

What the official code does (declare-lab/tango, `tango.py` / `models.py`, same for `tango2/`):
- `snapshot_download("declare-lab/tango")` gives `main_config.json`, `vae_config.json`,
  `stft_config.json`, `pytorch_model_main.bin`, `pytorch_model_vae.bin`, `pytorch_model_stft.bin`.
- `AudioDiffusion(**main_config)`: FLAN-T5-large encoder (`T5EncoderModel`, tokenizer from the
  hub id `google/flan-t5-large`) + a diffusers `UNet2DConditionModel` built from the repo's
  `configs/diffusion_model_config.json` (8 latent channels, cross-attention 1024, linear
  projections, upcast attention). Its state dict is `pytorch_model_main.bin` with the prefixes
  `text_encoder.` and `unet.`.
- AudioLDM's KL-VAE (`audioldm.variational_autoencoder.AutoencoderKL`, LDM layout: `encoder.down.N.block.M`,
  `mid.attn_1.q` ...) with AudioLDM's 16 kHz / 64-mel HiFi-GAN inside it as `vocoder.*` (weight
  norm already removed): `pytorch_model_vae.bin`. The STFT file is only used for training.
- Sampling: `DDPMScheduler` with Stable Diffusion 2.1's scheduler config (v-prediction,
  scaled-linear betas 0.00085..0.012), latents (B, 8, 256, 16) = 10.24 s, classifier-free
  guidance against the empty prompt, T5 attention masks passed to the UNet, decode with
  `latents / scale_factor`, vocoder; defaults in the paper's evaluation: 200 steps, guidance 3.

Our implementation uses maintained library modules with explicit key mappings:
`T5EncoderModel` and `UNet2DConditionModel` take the main file's keys after stripping the
prefix; the LDM VAE maps onto diffusers' `AutoencoderKL` and the HiFi-GAN onto transformers'
`SpeechT5HifiGan` (same computations; `map_ldm_vae_state_dict`, `map_hifigan_state_dict`).

Deliberate differences, all recorded in the plugin notes:
- One torch.Generator per prompt drives its initial latents and every DDPM noise draw, and each
  prompt is text-encoded alone (T5 states zero-padded and masked to the batch length), so a clip
  does not depend on its batch. The official code draws from the global RNG.
- The official `vocoder_infer` returns int16 (x32768, truncated); we return the float waveform.

DDPM timesteps differ between the two releases, because the scheduler code did:
- Tango (the paper's code, until 2023-07-15) vendored diffusers 0.15.0.dev0, whose
  `DDPMScheduler.set_timesteps` ignores the `steps_offset` of SD 2.1's scheduler config:
  timesteps 995, 990, ..., 0 for 200 steps. Our Tango config sets `steps_offset=0` to get them.
- Tango 2 (released 2024-04) lives in a repo that pins `diffusers==0.18.2` (commit 39e4f90 of
  2023-07-15, also `tango2/requirements.txt`), whose `set_timesteps` adds `steps_offset` (1 in SD
  2.1's config): timesteps 996, 991, ..., 1, and the last step (t = 1) draws noise too. Our Tango 2
  config keeps `steps_offset=1`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import torch

from genau_core.audio.hifigan import HiFiGANConfig  # AudioLDM's 16 kHz / 64-mel vocoder by default
from genau_core.baselines import ldm_keys
from genau_core.baselines._common import T5_LARGE_ENCODER_CONFIG, ModuleBundle
from genau_core.baselines._state import CheckpointMappingError, fold_weight_norm, load_strict
from genau_core.checkpoint_io import read_state_dict

# ---------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------

# declare-lab/tango configs/diffusion_model_config.json (the file main_config.json points to)
TANGO_UNET_CONFIG: dict = dict(
    act_fn="silu",
    attention_head_dim=(5, 10, 20, 20),
    block_out_channels=(320, 640, 1280, 1280),
    center_input_sample=False,
    cross_attention_dim=1024,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    downsample_padding=1,
    dual_cross_attention=False,
    flip_sin_to_cos=True,
    freq_shift=0,
    in_channels=8,
    layers_per_block=2,
    mid_block_scale_factor=1,
    norm_eps=1e-5,
    norm_num_groups=32,
    num_class_embeds=None,
    only_cross_attention=False,
    out_channels=8,
    sample_size=(32, 2),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    use_linear_projection=True,
    upcast_attention=True,
)
# The paths main_config.json gives for that file in the official layouts: the repo's configs/ (Tango) and
# tango2/configs/ (Tango 2; the same file), relative to where the official scripts run.
OFFICIAL_UNET_CONFIG_PATHS = ("configs/diffusion_model_config.json", "tango2/configs/diffusion_model_config.json")

# google/flan-t5-large, encoder half (the weights come from pytorch_model_main.bin)
FLAN_T5_LARGE_CONFIG: dict = dict(T5_LARGE_ENCODER_CONFIG)

# stabilityai/stable-diffusion-2-1 scheduler/scheduler_config.json, read by the official code as a
# DDPMScheduler (main_config.json "scheduler_name"); it sets steps_offset 1.
SD21_DDPM_SCHEDULER_CONFIG: dict = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="v_prediction",
    clip_sample=False,
    variance_type="fixed_small",
    timestep_spacing="leading",
    steps_offset=1,
)
# Tango (paper-era code, diffusers 0.15.0.dev0 vendored): DDPMScheduler.set_timesteps ignored steps_offset,
# so the same file gave 995 ... 0; steps_offset=0 reproduces that in today's diffusers.
TANGO_SCHEDULER_CONFIG: dict = dict(SD21_DDPM_SCHEDULER_CONFIG, steps_offset=0)
# Tango 2 (repo pinned to diffusers==0.18.2 since 2023-07-15): set_timesteps adds steps_offset: 996 ... 1.
TANGO2_SCHEDULER_CONFIG: dict = dict(SD21_DDPM_SCHEDULER_CONFIG)


@dataclass(frozen=True)
class LdmVaeConfig:
    """AudioLDM's KL-VAE hyper-parameters, as in the official `vae_config.json`."""

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 8
    embed_dim: int = 8
    in_channels: int = 1
    out_ch: int = 1
    scale_factor: float = 0.9227914214134216
    norm_num_groups: int = 32  # fixed at 32 in the official LDM code; tiny configs use fewer

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    def ldm_layout(self) -> ldm_keys.LdmVaeConfig2D:
        """The same autoencoder in the terms of the LDM key mapping (AudioLDM's VAE has no attention inside levels)."""
        return ldm_keys.LdmVaeConfig2D(
            ch=self.ch,
            ch_mult=self.ch_mult,
            num_res_blocks=self.num_res_blocks,
            z_channels=self.z_channels,
            embed_dim=self.embed_dim,
            in_channels=self.in_channels,
            out_ch=self.out_ch,
            attn_resolutions=(),
            norm_num_groups=self.norm_num_groups,
        )

    @classmethod
    def from_official_json(cls, d: Mapping) -> LdmVaeConfig:
        dd = d["ddconfig"]
        unsupported = []
        if not dd.get("double_z", True):
            unsupported.append("double_z=false")
        if dd.get("attn_resolutions"):
            unsupported.append(f"attn_resolutions={dd['attn_resolutions']}")
        if int(d.get("subband", 1)) != 1:
            unsupported.append(f"subband={d['subband']}")
        if dd.get("downsample_time_stride4_levels"):
            unsupported.append("downsample_time_stride4_levels")
        if int(dd["z_channels"]) != int(d["embed_dim"]):
            unsupported.append(f"z_channels={dd['z_channels']} != embed_dim={d['embed_dim']}")
        if unsupported:
            raise ValueError(f"vae_config.json: unsupported AudioLDM VAE settings: {', '.join(unsupported)}")
        return cls(
            ch=int(dd["ch"]),
            ch_mult=tuple(int(m) for m in dd["ch_mult"]),
            num_res_blocks=int(dd["num_res_blocks"]),
            z_channels=int(dd["z_channels"]),
            embed_dim=int(d["embed_dim"]),
            in_channels=int(dd["in_channels"]),
            out_ch=int(dd["out_ch"]),
            scale_factor=float(d.get("scale_factor", 1.0)),
        )

    def to_official_json(self) -> dict:
        """The official `vae_config.json` layout (used to write test fixtures)."""
        return {
            "image_key": "fbank",
            "subband": 1,
            "embed_dim": self.embed_dim,
            "time_shuffle": 1,
            "ddconfig": {
                "double_z": True,
                "z_channels": self.z_channels,
                "resolution": 256,
                "downsample_time": False,
                "in_channels": self.in_channels,
                "out_ch": self.out_ch,
                "ch": self.ch,
                "ch_mult": list(self.ch_mult),
                "num_res_blocks": self.num_res_blocks,
                "attn_resolutions": [],
                "dropout": 0.0,
            },
            "scale_factor": self.scale_factor,
        }


@dataclass(frozen=True)
class TangoConfig:
    t5: dict = field(default_factory=lambda: dict(FLAN_T5_LARGE_CONFIG))
    unet: dict = field(default_factory=lambda: dict(TANGO_UNET_CONFIG))
    vae: LdmVaeConfig = LdmVaeConfig()
    vocoder: HiFiGANConfig = HiFiGANConfig()
    scheduler: dict = field(default_factory=lambda: dict(TANGO_SCHEDULER_CONFIG))
    tokenizer_max_length: int = 512  # google/flan-t5-large model_max_length
    text_encoder_hub_id: str = "google/flan-t5-large"

    @property
    def unet_downsample(self) -> int:
        return 2 ** (len(self.unet["block_out_channels"]) - 1)

    def latent_shape(self, duration_s: float) -> tuple[int, int, int]:
        """(channels, time, freq). 10 s -> 256 time steps (10.24 s), the released Tango shape."""
        frames = math.ceil(duration_s * self.vocoder.sampling_rate / self.vocoder.hop_factor)
        t = math.ceil(frames / self.vae.downsample / self.unet_downsample) * self.unet_downsample
        return self.vae.embed_dim, t, self.vocoder.num_mels // self.vae.downsample


TANGO_CONFIG = TangoConfig()
TANGO2_CONFIG = replace(TANGO_CONFIG, scheduler=dict(TANGO2_SCHEDULER_CONFIG))

# ---------------------------------------------------------------------------------------
# building the modules
# ---------------------------------------------------------------------------------------


def build_text_encoder(cfg: TangoConfig):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(**cfg.t5))


def build_unet(cfg: TangoConfig):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**cfg.unet)


def build_vae(cfg: LdmVaeConfig):
    from diffusers import AutoencoderKL

    n = len(cfg.ch_mult)
    return AutoencoderKL(
        in_channels=cfg.in_channels,
        out_channels=cfg.out_ch,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(cfg.ch * m for m in cfg.ch_mult),
        layers_per_block=cfg.num_res_blocks,
        latent_channels=cfg.embed_dim,
        norm_num_groups=cfg.norm_num_groups,
        scaling_factor=cfg.scale_factor,
    )


def build_vocoder(cfg: HiFiGANConfig):
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    return SpeechT5HifiGan(
        SpeechT5HifiGanConfig(
            model_in_dim=cfg.num_mels,
            sampling_rate=cfg.sampling_rate,
            upsample_initial_channel=cfg.upsample_initial_channel,
            upsample_rates=list(cfg.upsample_rates),
            upsample_kernel_sizes=list(cfg.upsample_kernel_sizes),
            resblock_kernel_sizes=list(cfg.resblock_kernel_sizes),
            resblock_dilation_sizes=[list(d) for d in cfg.resblock_dilation_sizes],
            leaky_relu_slope=0.1,
            normalize_before=False,
        )
    )


def build_scheduler(cfg: TangoConfig):
    from diffusers import DDPMScheduler

    return DDPMScheduler(**cfg.scheduler)


# ---------------------------------------------------------------------------------------
# key mappings from the official files
# ---------------------------------------------------------------------------------------


def map_tango_main_state_dict(sd: Mapping[str, torch.Tensor]) -> tuple[dict, dict]:
    """`pytorch_model_main.bin` -> (T5EncoderModel state dict, UNet2DConditionModel state dict)."""
    t5, unet, unknown = {}, {}, []
    for key, value in sd.items():
        if key.startswith("text_encoder."):
            t5[key[len("text_encoder.") :]] = value
        elif key.startswith("unet."):
            unet[key[len("unet.") :]] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointMappingError(
            f"pytorch_model_main.bin: {len(unknown)} keys outside text_encoder./unet. "
            f"(e.g. {unknown[:5]}); a UNet initialised from Stable Diffusion (group_in/group_out) is not supported"
        )
    return t5, unet


def map_ldm_vae_state_dict(sd: Mapping[str, torch.Tensor], cfg: LdmVaeConfig) -> tuple[dict, dict]:
    """`pytorch_model_vae.bin` -> (diffusers AutoencoderKL state dict,
    official HiFi-GAN state dict under `vocoder.`)."""
    vae = {k: v for k, v in sd.items() if not k.startswith("vocoder.")}
    vocoder = {k[len("vocoder.") :]: v for k, v in sd.items() if k.startswith("vocoder.")}
    return ldm_keys.map_ldm_vae_state_dict(vae, cfg.ldm_layout(), what="pytorch_model_vae.bin"), vocoder


def map_hifigan_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """AudioLDM HiFi-GAN (`conv_pre`, `ups.i`, `resblocks.k.convs{1,2}.j`, `conv_post`) -> SpeechT5HifiGan."""
    out, unknown = {}, []
    for key, value in fold_weight_norm(sd, what="vocoder").items():
        if re.fullmatch(r"conv_(pre|post)\.(weight|bias)", key) or re.fullmatch(
            r"resblocks\.\d+\.convs[12]\.\d+\.(weight|bias)", key
        ):
            out[key] = value
        elif re.fullmatch(r"ups\.\d+\.(weight|bias)", key):
            out["upsampler." + key[len("ups.") :]] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointMappingError(f"vocoder: {len(unknown)} unmapped keys (e.g. {unknown[:5]})")
    return out


# ---------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------


@dataclass
class TangoModel(ModuleBundle):
    config: TangoConfig
    tokenizer: object
    text_encoder: torch.nn.Module
    unet: torch.nn.Module
    vae: torch.nn.Module
    vocoder: torch.nn.Module

    @classmethod
    def build(cls, config: TangoConfig, tokenizer) -> TangoModel:
        return cls(
            config=config,
            tokenizer=tokenizer,
            text_encoder=build_text_encoder(config),
            unet=build_unet(config),
            vae=build_vae(config.vae),
            vocoder=build_vocoder(config.vocoder),
        )

    def modules(self) -> dict[str, torch.nn.Module]:
        return dict(text_encoder=self.text_encoder, unet=self.unet, vae=self.vae, vocoder=self.vocoder)

    def load_official_state_dicts(
        self, main_sd: Mapping[str, torch.Tensor], vae_sd: Mapping[str, torch.Tensor]
    ) -> None:
        """Load `pytorch_model_main.bin` and `pytorch_model_vae.bin` contents; strict, with a clear report."""
        t5_sd, unet_sd = map_tango_main_state_dict(main_sd)
        vae_mapped, vocoder_sd = map_ldm_vae_state_dict(vae_sd, self.config.vae)
        # transformers ties encoder.embed_tokens to shared; older checkpoints store both copies
        load_strict(
            self.text_encoder,
            t5_sd,
            "text_encoder (pytorch_model_main.bin)",
            allow_missing=("encoder.embed_tokens.weight",),
        )
        load_strict(self.unet, unet_sd, "unet (pytorch_model_main.bin)")
        load_strict(self.vae, vae_mapped, "vae (pytorch_model_vae.bin)")
        # mean/scale are SpeechT5HifiGan's input normalisation buffers, unused (normalize_before=False)
        load_strict(
            self.vocoder,
            map_hifigan_state_dict(vocoder_sd),
            "vocoder (pytorch_model_vae.bin)",
            allow_missing=("mean", "scale"),
        )

    # -- inference -----------------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def _encode(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.tokenizer(
            [text], max_length=self.config.tokenizer_max_length, padding=True, truncation=True, return_tensors="pt"
        )
        ids, mask = batch.input_ids.to(self._device()), batch.attention_mask.to(self._device())
        states = self.text_encoder(input_ids=ids, attention_mask=mask)[0]
        return states, mask

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
        """Waveforms (B, samples) at the vocoder rate; one generator per prompt."""
        from diffusers.utils.torch_utils import randn_tensor

        cfg = guidance > 1.0
        pos = [self._encode(p) for p in prompts]
        # the official negative is "" padded to the prompt's length; per prompt here (see module docstring)
        neg = [self._encode_padded("", s.shape[1]) for s, _ in pos] if cfg else []
        length = max(s.shape[1] for s, _ in pos)

        def pad(items):
            states = torch.cat([torch.nn.functional.pad(s, (0, 0, 0, length - s.shape[1])) for s, _ in items])
            masks = torch.cat([torch.nn.functional.pad(m, (0, length - m.shape[1])) for _, m in items])
            return states, masks

        states, masks = pad(neg + pos)
        masks = masks == 1
        scheduler = build_scheduler(self.config)
        scheduler.set_timesteps(steps, device=self._device())
        c, t, f = self.config.latent_shape(duration_s)
        gens = list(generators)
        latents = randn_tensor((len(prompts), c, t, f), generator=gens, device=self._device(), dtype=states.dtype)
        latents = latents * scheduler.init_noise_sigma
        for timestep in scheduler.timesteps:
            model_in = torch.cat([latents] * 2) if cfg else latents
            model_in = scheduler.scale_model_input(model_in, timestep)
            out = self.unet(model_in, timestep, encoder_hidden_states=states, encoder_attention_mask=masks).sample
            if cfg:
                uncond, cond = out.chunk(2)
                out = uncond + guidance * (cond - uncond)
            latents = scheduler.step(out, timestep, latents, generator=gens).prev_sample
        mel = self.vae.decode(latents / self.config.vae.scale_factor).sample  # (B, 1, T, mels)
        return self.vocoder(mel.squeeze(1)).float().cpu()

    def _encode_padded(self, text: str, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.tokenizer([text], max_length=length, padding="max_length", truncation=True, return_tensors="pt")
        ids, mask = batch.input_ids.to(self._device()), batch.attention_mask.to(self._device())
        return self.text_encoder(input_ids=ids, attention_mask=mask)[0], mask


# ---------------------------------------------------------------------------------------
# loading the released folders
# ---------------------------------------------------------------------------------------

REQUIRED_FILES = ("main_config.json", "vae_config.json", "pytorch_model_main.bin", "pytorch_model_vae.bin")
TOKENIZER_FILES = ("spiece.model", "tokenizer.json")


def _normalise_unet_config(raw: Mapping, where: str) -> dict:
    """A diffusers UNet2DConditionModel config file -> constructor keywords (lists as tuples); unknown keys refused."""
    import inspect

    from diffusers import UNet2DConditionModel

    known = set(inspect.signature(UNet2DConditionModel.__init__).parameters) - {"self"}
    cfg = {k: v for k, v in raw.items() if not k.startswith("_")}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f"{where}: keys that diffusers' UNet2DConditionModel does not take: {', '.join(unknown)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}


def resolve_unet_config(folder: Path, main_cfg: Mapping, base: TangoConfig) -> tuple[dict, str]:
    """(UNet constructor keywords, where they came from) for a released folder's `main_config.json`.

    The official `AudioDiffusion` builds its UNet from `unet_model_config_path`, a path relative to where the
    official scripts run (the repo root). Accepted, in this order: that file relative to the checkpoint folder
    (or absolute), the file's name inside the checkpoint folder; else, when the path is one of the official
    layouts (`configs/...`, `tango2/configs/...`, with or without a leading `./` or a repo-root prefix), our
    transcription of that file (`base.unet`). `unet_model_name` (a UNet initialised from Stable Diffusion, with
    extra `group_in` / `group_out` layers) is not supported."""
    where = folder / "main_config.json"
    if main_cfg.get("unet_model_name") and not main_cfg.get("unet_model_config_path"):
        raise ValueError(
            f"{where}: unet_model_name {main_cfg['unet_model_name']!r} (a UNet initialised from Stable Diffusion, with "
            f"group_in/group_out layers) is not supported; the released Tango models use unet_model_config_path"
        )
    path = main_cfg.get("unet_model_config_path")
    if not path:
        raise ValueError(
            f"{where}: no unet_model_config_path (the official AudioDiffusion needs it or unet_model_name)"
        )
    given = Path(str(path))
    candidates = [given] if given.is_absolute() else [folder / given]
    candidates.append(folder / given.name)
    for candidate in candidates:
        if candidate.is_file():
            try:
                raw = json.loads(candidate.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise ValueError(f"{candidate}: not a readable UNet config JSON ({e})") from None
            unet = _normalise_unet_config(raw, str(candidate))
            source = str(candidate)
            break
    else:
        posix = given.as_posix()
        if not any(posix == p or posix.endswith("/" + p) or posix == "./" + p for p in OFFICIAL_UNET_CONFIG_PATHS):
            raise ValueError(
                f"{where}: unet_model_config_path {path!r} is not an official Tango layout "
                f"({' or '.join(OFFICIAL_UNET_CONFIG_PATHS)}) and no such file is there; put that UNet config file at "
                f"{folder / given.name}"
            )
        unet, source = dict(base.unet), f"built-in copy of declare-lab/tango {OFFICIAL_UNET_CONFIG_PATHS[0]}"
    width = base.t5.get("d_model")
    if unet.get("cross_attention_dim") != width:
        raise ValueError(
            f"{source}: UNet cross_attention_dim {unet.get('cross_attention_dim')} does not match the text "
            f"encoder's width {width} (FLAN-T5-large); only Tango's FLAN-T5-large models are supported"
        )
    return unet, source


def load_tango_folder(folder: Path, tokenizer_dir: Path, base: TangoConfig = TANGO_CONFIG) -> TangoModel:
    from transformers import AutoTokenizer

    main_cfg = json.loads((folder / "main_config.json").read_text())
    unet, _ = resolve_unet_config(folder, main_cfg, base)
    vae_cfg = LdmVaeConfig.from_official_json(json.loads((folder / "vae_config.json").read_text()))
    config = replace(base, unet=unet, vae=replace(vae_cfg, norm_num_groups=base.vae.norm_num_groups))
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), model_max_length=config.tokenizer_max_length)
    model = TangoModel.build(config, tokenizer)
    main_sd = read_state_dict(folder / "pytorch_model_main.bin", (), what="Tango text encoder + UNet")
    vae_sd = read_state_dict(folder / "pytorch_model_vae.bin", (), what="Tango VAE + vocoder")
    model.load_official_state_dicts(main_sd, vae_sd)
    return model


def save_official_tango_folder(
    folder: Path,
    main_sd: Mapping,
    vae_sd: Mapping,
    vae_cfg: LdmVaeConfig,
    tokenizer=None,
    *,
    unet_model_config_path: str = OFFICIAL_UNET_CONFIG_PATHS[0],
    unet_config: Mapping | None = None,
) -> None:
    """Write a folder in the released layout (used by tests with tiny official-keyed weights); `unet_config`,
    when given, is written as a diffusers UNet config file at `unet_model_config_path` inside the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main_config.json").write_text(
        json.dumps(
            {
                "text_encoder_name": "google/flan-t5-large",
                "scheduler_name": "stabilityai/stable-diffusion-2-1",
                "unet_model_name": None,
                "unet_model_config_path": unet_model_config_path,
                "snr_gamma": 5.0,
            }
        )
    )
    if unet_config is not None:
        target = folder / unet_model_config_path
        target.parent.mkdir(parents=True, exist_ok=True)
        as_json = {k: list(v) if isinstance(v, tuple) else v for k, v in unet_config.items()}
        target.write_text(json.dumps({"_class_name": "UNet2DConditionModel", **as_json}))
    (folder / "vae_config.json").write_text(json.dumps(vae_cfg.to_official_json()))
    torch.save(dict(main_sd), folder / "pytorch_model_main.bin")
    torch.save(dict(vae_sd), folder / "pytorch_model_vae.bin")
    if tokenizer is not None:
        tokenizer.save_pretrained(str(folder / "tokenizer"))
