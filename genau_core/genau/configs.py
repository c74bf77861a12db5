"""Typed, JSON-serialisable configurations of GenAu: one per model size, one factory (`build_genau`).

Sources of the numbers (paper section 3.3 / appendix D and snap-research/GenAU):
- mel, 1D-VAE, diffusion schedule, conditioning and FIT block layout: the official sample
  config `GenAU/settings/simple_runs/genau.yaml` and the modules it names;
- genau-s / genau-l sizes: FITTED, not read. The release yamls `genau-full-{s,l}.yaml` are not
  in the official repository (only on the HF model repo `mali6/autocap`, which cannot be reached
  from here), so the widths/depths below are chosen so that the FIT backbone matches the paper's
  parameter counts (493M, 1.25B) while keeping the paper's tokenisation (patch 1, group 32, 256
  latent tokens) and the official block layout (2 local + 4 global layers per block, 64-dim
  heads, 1024-d context, 1536-d summary):
    genau-s: patch = latent channels 1024, 4 FIT blocks + 1 local-only block, 16 heads x 64
             -> 493.37M backbone parameters (paper 493M);
    genau-l: patch channels 1024, latent channels 1536 (24 heads x 64 in the global layers),
             6 FIT blocks + 1 local-only block -> 1252.94M (paper 1.25B).
  Every size, parameter count and FLOP figure derived from GENAU_S / GENAU_L (README,
  benchmarks/RESULTS.md, benchmarks/bench_genau_fit_vs_dit.py) inherits that fit. A real release
  yaml is the authority whenever one is given: the release loaders (`bench` plugins genau-s /
  genau-l / genau-l-full-hq-data, `genau generate`) build the model only from
  `genau_core.genau.official.config_from_official_yaml`, never from these two configs, and
  `bench_genau_fit_vs_dit.py --release-yaml genau-s=PATH` counts FLOPs on the yaml's backbone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field

from genau_core.audio.griffinlim import GriffinLimConfig
from genau_core.audio.hifigan import TINY_HIFIGAN, HiFiGANConfig
from genau_core.audio.mel import MelConfig

AUDIOCAPS_DATASET_IDS = {
    "audiocaps": 0,
    "clotho": 1,
    "vggsounds": 2,
    "wavcaps_audioset_strong": 3,
    "wavcaps_bbcsound": 4,
    "wavcaps_freesound": 5,
    "wavcaps_soundbible": 6,
    "fsd50k": 7,
    "caption_audioset": 8,
    "autocap": 9,
}


VOCODER_TYPES = ("hifigan", "griffin-lim")


@dataclass(frozen=True)
class AttentionSpec:
    heads: int = 8
    dim_head: int = 64

    @property
    def inner(self) -> int:
        return self.heads * self.dim_head


@dataclass(frozen=True)
class FITConfig:
    """FIT backbone over a 1-D latent sequence (channels x length)."""

    input_channels: int = 64
    input_length: int = 256
    patch_size: int = 1
    group_size: int = 32  # patches per group
    patch_channels: int = 1024
    latent_channels: int = 1024
    latent_count: int = 256
    blocks: int = 4  # FIT blocks with global layers; one local-only block is appended
    local_layers_per_block: int = 2
    global_layers_per_block: int = 4
    context_channels: int = 1024
    summary_channels: int = 1536  # CLAP (512) + pooled FLAN-T5 (1024)
    dataset_ids_count: int = 32
    use_dataset_id: bool = True
    time_fourier_dim: int = 16
    time_scaling: float = 1.0
    ff_mult: int = 4
    dropout: float = 0.1  # hidden dropout of local / global feed-forwards ("drop_units")
    drop_path: float = 0.0
    cross_attention_feedforward: bool = True
    local_attention: AttentionSpec = AttentionSpec(16, 64)
    global_attention: AttentionSpec = AttentionSpec(16, 64)
    read_attention: AttentionSpec = AttentionSpec(16, 64)
    write_attention: AttentionSpec = AttentionSpec(16, 64)
    context_attention: AttentionSpec = AttentionSpec(16, 64)
    weight_init_scale: float = 0.57735026919  # 1/sqrt(3), the official yaml literal

    def __post_init__(self):
        if self.input_length % self.patch_size:
            raise ValueError(f"input_length {self.input_length} not divisible by patch_size {self.patch_size}")
        if self.patches % self.group_size:
            raise ValueError(f"{self.patches} patches not divisible by group_size {self.group_size}")
        if self.latent_count % self.groups:
            raise ValueError(
                f"latent_count {self.latent_count} must be a multiple of the number of groups {self.groups}"
            )

    @property
    def patches(self) -> int:
        return self.input_length // self.patch_size

    @property
    def groups(self) -> int:
        return self.patches // self.group_size

    @property
    def latents_per_group(self) -> int:
        return self.latent_count // self.groups


@dataclass(frozen=True)
class VAEConfig:
    mel_bins: int = 64
    ch: int = 512
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 3
    z_channels: int = 256
    embed_dim: int = 64
    dropout: float = 0.0
    norm_groups: int = 32
    mid_attention: bool = True
    # The encoder sees (mel - mel_mean) / mel_std and the decoder's output is mapped back by
    # x * mel_std + mel_mean. The official VAE has no such normalisation (0 and 1). A small VAE
    # trained for minutes needs it: raw log-mels sit near -11.5 (the 1e-5 floor) with a std of
    # ~4, and reaching that level through GroupNorm'd features crowds out the spectral detail
    # (stationary tones all decoded to one average spectrum in our genau-tiny runs).
    mel_mean: float = 0.0
    mel_std: float = 1.0

    @property
    def time_downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)


@dataclass(frozen=True)
class VAELossConfig:
    """Reconstruction + KL + hinge adversarial (Esser et al. 2021), as the official `LPIPSWithDiscriminator`.

    The official loss adds an LPIPS term computed by an ImageNet VGG-16 on the mel "image";
    that network is not available offline, so `perceptual_weight` is 0 and the term is absent.
    """

    kl_weight: float = 1000.0
    disc_start: int = 50001
    disc_weight: float = 0.5
    disc_factor: float = 1.0
    disc_in_channels: int = 1
    disc_layers: int = 3
    disc_channels: int = 64
    logvar_init: float = 0.0
    perceptual_weight: float = 0.0


@dataclass(frozen=True)
class ConditioningConfig:
    """FLAN-T5 (pooled token states) + LAION-CLAP text embedding -> one 'summary' vector."""

    t5: dict = field(default_factory=dict)  # transformers T5Config kwargs
    clap_text: dict = field(default_factory=dict)  # transformers ClapTextConfig kwargs
    t5_tokenizer: str = "tiny"  # "tiny" (built in-process) or a local directory
    clap_tokenizer: str = "tiny"
    t5_max_length: int = 128
    clap_max_length: int = 512
    summary_order: tuple[str, ...] = ("clap", "t5")
    cfg_dropout: float = 0.1
    dataset_ids: dict = field(default_factory=lambda: dict(AUDIOCAPS_DATASET_IDS))
    inference_dataset: str = "audiocaps"
    unconditional_dataset_id: int = 0

    @property
    def t5_dim(self) -> int:
        return int(self.t5.get("d_model", 512))

    @property
    def clap_dim(self) -> int:
        return int(self.clap_text.get("projection_dim", 512))

    @property
    def summary_channels(self) -> int:
        return self.t5_dim + self.clap_dim


@dataclass(frozen=True)
class DiffusionConfig:
    num_train_timesteps: int = 1000
    beta_start: float = 0.0015
    beta_end: float = 0.0195
    # The official "linear" schedule is linspace(sqrt(b0), sqrt(b1)) ** 2 = diffusers' "scaled_linear".
    beta_schedule: str = "scaled_linear"
    prediction_type: str = "epsilon"  # GenAu; "v_prediction" for the shipped genau-tiny (see diffusion.py)
    eta: float = 1.0  # official DDIM sampling calls use ddim_eta=1.0
    scale_factor: float = 1.0  # latent scaling (1/std), a buffer of the official checkpoint
    steps: int = 200
    guidance: float = 3.5
    peak_normalize: float | None = 0.8  # official save_waveform scales each clip to peak 0.8

    def __post_init__(self):
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"prediction_type must be 'epsilon' or 'v_prediction', got {self.prediction_type!r}")


@dataclass(frozen=True)
class GenAuConfig:
    name: str
    mel: MelConfig = MelConfig()
    vae: VAEConfig = VAEConfig()
    vae_loss: VAELossConfig = VAELossConfig()
    fit: FITConfig = FITConfig()
    conditioning: ConditioningConfig = ConditioningConfig()
    diffusion: DiffusionConfig = DiffusionConfig()
    vocoder: HiFiGANConfig = HiFiGANConfig()
    # "hifigan" (the official vocoder, `vocoder`) or "griffin-lim" (no weights, `griffin_lim`;
    # used by the shipped genau-tiny weights, see genau_core.audio.griffinlim)
    vocoder_type: str = "hifigan"
    griffin_lim: GriffinLimConfig = GriffinLimConfig()
    init_seed: int = 0

    def __post_init__(self):
        if self.vocoder_type not in VOCODER_TYPES:
            raise ValueError(f"vocoder_type must be one of {', '.join(VOCODER_TYPES)}, got {self.vocoder_type!r}")
        if self.mel.n_mels != self.vae.mel_bins or self.mel.n_mels != self.vocoder.num_mels:
            raise ValueError("mel bins differ between front end, VAE and vocoder")
        if self.fit.input_channels != self.vae.embed_dim:
            raise ValueError(f"FIT input_channels {self.fit.input_channels} != VAE embed_dim {self.vae.embed_dim}")
        frames = self.mel.target_frames
        if frames % self.vae.time_downsample or frames // self.vae.time_downsample != self.fit.input_length:
            raise ValueError(
                f"{frames} mel frames / {self.vae.time_downsample} != FIT input_length {self.fit.input_length}"
            )
        if self.conditioning.summary_channels != self.fit.summary_channels:
            raise ValueError(
                f"summary channels: conditioning gives {self.conditioning.summary_channels}, FIT expects "
                f"{self.fit.summary_channels}"
            )

    @property
    def latent_shape(self) -> tuple[int, int]:
        return (self.vae.embed_dim, self.fit.input_length)

    def to_dict(self) -> dict:
        return _to_jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "GenAuConfig":
        return _from_dict(cls, d)

    def replace(self, **changes) -> "GenAuConfig":
        return dataclasses.replace(self, **changes)


def _to_jsonable(x):
    if isinstance(x, dict):
        return {k: _to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_jsonable(v) for v in x]
    return x


def _from_dict(cls, d):
    """Rebuild nested frozen dataclasses (tuples restored from JSON lists)."""
    import typing

    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            continue
        v = d[f.name]
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            kwargs[f.name] = _from_dict(t, v)
        elif isinstance(v, list):
            kwargs[f.name] = _tupleize(v)
        else:
            kwargs[f.name] = v
    return cls(**kwargs)


def _tupleize(v):
    if isinstance(v, list):
        return tuple(_tupleize(x) for x in v)
    return v


# --- text encoders ------------------------------------------------------------------------

FLAN_T5_LARGE = dict(
    vocab_size=32128,
    d_model=1024,
    d_kv=64,
    d_ff=2816,
    num_layers=24,
    num_heads=16,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    feed_forward_proj="gated-gelu",
    layer_norm_epsilon=1e-6,
    dropout_rate=0.1,
    tie_word_embeddings=False,
    pad_token_id=0,
    eos_token_id=1,
)

# LAION-CLAP HTSAT-tiny text tower = RoBERTa-base + 2-layer ReLU projection to 512.
LAION_CLAP_TEXT = dict(
    vocab_size=50265,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    max_position_embeddings=514,
    type_vocab_size=1,
    layer_norm_eps=1e-5,  # roberta-base's value (LAION-CLAP builds the tower from roberta-base)
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
    projection_dim=512,
    projection_hidden_act="relu",
)

TINY_T5 = dict(
    FLAN_T5_LARGE,
    vocab_size=192,
    d_model=32,
    d_kv=16,
    d_ff=64,
    num_layers=1,
    num_heads=2,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=32,
    dropout_rate=0.0,
)

TINY_CLAP_TEXT = dict(
    LAION_CLAP_TEXT,
    vocab_size=320,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=72,
    projection_dim=16,
)


def _fit_l_attention() -> dict:
    return dict(
        local_attention=AttentionSpec(16, 64),
        global_attention=AttentionSpec(24, 64),
        read_attention=AttentionSpec(16, 64),  # inner = min(patch, latent channels)
        write_attention=AttentionSpec(16, 64),
        context_attention=AttentionSpec(16, 64),  # inner = min(latent, context channels)
    )


GENAU_S = GenAuConfig(
    name="genau-s",
    fit=FITConfig(),  # 1024-d patches and latents, 4 x (2 local + 4 global) + 1 local-only block
    conditioning=ConditioningConfig(
        t5=FLAN_T5_LARGE, clap_text=LAION_CLAP_TEXT, t5_tokenizer="flan-t5-large", clap_tokenizer="roberta-base"
    ),
    diffusion=DiffusionConfig(scale_factor=1.0),
)

GENAU_L = dataclasses.replace(
    GENAU_S,
    name="genau-l",
    fit=FITConfig(latent_channels=1536, blocks=6, **_fit_l_attention()),
)

_TINY_HEADS = AttentionSpec(2, 32)
GENAU_TINY = GenAuConfig(
    name="genau-tiny",
    vae=VAEConfig(ch=32, ch_mult=(1, 2, 4), num_res_blocks=1, z_channels=16, embed_dim=8),
    vae_loss=VAELossConfig(disc_start=50, disc_channels=8, disc_layers=2),
    fit=FITConfig(
        input_channels=8,
        patch_channels=64,
        latent_channels=64,
        latent_count=32,
        blocks=1,
        local_layers_per_block=1,
        global_layers_per_block=1,
        context_channels=64,
        summary_channels=48,
        local_attention=_TINY_HEADS,
        global_attention=_TINY_HEADS,
        read_attention=_TINY_HEADS,
        write_attention=_TINY_HEADS,
        context_attention=_TINY_HEADS,
    ),
    conditioning=ConditioningConfig(t5=TINY_T5, clap_text=TINY_CLAP_TEXT, t5_max_length=64, clap_max_length=64),
    diffusion=DiffusionConfig(steps=10, guidance=3.5),
    vocoder=TINY_HIFIGAN,
)

CONFIGS: dict[str, GenAuConfig] = {c.name: c for c in (GENAU_TINY, GENAU_S, GENAU_L)}


def get_config(name: str) -> GenAuConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown GenAu config {name!r}; known: {', '.join(CONFIGS)}") from None
