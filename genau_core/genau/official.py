"""Loading the official GenAU release (HF repo `mali6/autocap`) into our modules.

Files (all local; nothing is downloaded):
  genau-full-{s,l}.ckpt      Lightning checkpoint of the whole `GenAu` module
  genau-full-{s,l}.yaml      its configuration (with `!module` tags)
  1dvae_64_344999.ckpt       1D-VAE (+ its HiFi-GAN copy and training loss)
  hifigan_16k_64bins.ckpt    HiFi-GAN generator (`{"generator": ...}`, weight norm)
  hifigan_16k_64bins.json    its layout
  clap_htsat_tiny.pt         LAION-CLAP HTSAT-tiny (we use its RoBERTa text tower)
  flan-t5-large/             HF snapshot of google/flan-t5-large (tokenizer, config, weights)
  roberta-base/              HF snapshot of roberta-base (the CLAP tokenizer)

The `.yaml` beside a checkpoint is the authority for its architecture and evaluation defaults:
`config_from_official_yaml` builds the exact configuration from it. Our named `genau-s` /
`genau-l` configs (`configs.py`) are only fitted to the paper's parameter counts, because the
release yamls are not in the official repository; they are never used when a yaml is given.
FIT options of the yaml that we do not implement, and keys the official FIT does not read, are
errors naming the key and the value (`check_fit_options`).

Weights (`weights=`): "raw" (default: `scripts/generate_and_eval.py`'s `--strategy wo_ema`, and
`scripts/text_to_audio.py`; the paper disables EMA) or "ema": the `model_ema.*` buffers the
official `LitEma` (`src/modules/diffusionmodules/ema.py`) keeps for every trainable parameter of
`model` (the FIT), each named with its dots removed, as `scripts/inference_file.py` and the
Gradio demo load them (`select_weights`).

As the official code does, component files are loaded first and the main checkpoint's
weights override them. Every official key goes through an explicit mapping below; keys
that inference does not use are listed in `IGNORED_*` and anything unknown is an error.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from genau_core.audio import hifigan as hifigan_mod
from genau_core.audio.hifigan import HiFiGANConfig
from genau_core.audio.mel import MelConfig
from genau_core.baselines.ldm_sampling import SCHEDULE_BUFFERS
from genau_core.checkpoint_io import parameters_on_meta, read_state_dict
from genau_core.errors import OfficialCheckpointError
from genau_core.genau.configs import (
    FLAN_T5_LARGE,
    LAION_CLAP_TEXT,
    AttentionSpec,
    ConditioningConfig,
    DiffusionConfig,
    FITConfig,
    GenAuConfig,
    VAEConfig,
    VAELossConfig,
)

CLAP_TARGET = "CLAPAudioEmbeddingClassifierFreev2"
T5_TARGET = "FlanT5HiddenState"
DATASET_IDS_TARGET = "DatasetIDs"


# --------------------------------------------------------------------------------------
# yaml -> GenAuConfig
# --------------------------------------------------------------------------------------


def load_official_yaml(path: str | Path) -> dict:
    """Parse the official yaml; `!module a.b.C` tags become the string "a.b.C"."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    def _module(loader, node):
        return loader.construct_scalar(node)

    _Loader.add_constructor("!module", _module)
    with open(path) as f:
        return yaml.load(f, Loader=_Loader)


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise OfficialCheckpointError(msg)


def _attn(d: dict) -> AttentionSpec:
    # official rin_layers.Attention defaults: heads=4, dim_head=32
    return AttentionSpec(int(d.get("heads", 4)), int(d.get("dim_head", 32)))


# ----------------------------------------------------------------- FIT options of the yaml ---

UNET_SECTION = "model.params.unet_config.params"
BLOCK_SECTION = UNET_SECTION + ".fit_block_config"
# Every key the official FIT.__init__ reads (src/modules/fit/fit_audio.py); FIT takes **kwargs,
# so a key outside this set is read by nothing there: we refuse it rather than guess.
FIT_KEYS = frozenset({
    "fit_block_module", "linear_layer_module", "layer_normalization_module", "feed_forward_module",
    "input_size", "patch_size", "group_size", "patch_channels", "input_channels", "fit_blocks_count",
    "local_layers_per_block", "global_layers_per_block", "latent_channels", "latent_count", "time_pe_type",
    "learned_sinusoidal_dim", "self_conditioning_ff_config", "fit_block_config", "extra_average_inputs",
    "mask_non_extra_input", "time_scaling", "classes_count", "context_channels", "summary_text_embeddings_channels",
    "summary_text_embeddings_use_mask_token", "conditioning_in_context", "use_audio_image_conditioning",
    "dataset_ids_count", "use_dataset_id_conditioning", "use_resolution_conditioning", "weight_initializer",
    "output_conv", "input_conv",
})  # fmt: skip
# FITBlockV5.__init__ (src/modules/fit/layers/fit_layers.py): the attention / feed-forward config of
# each layer kind (falling back to the defaults), dropouts, the cross-attention feed-forward switch
# and the layer classes.
BLOCK_ATTENTION_KEYS = {  # yaml key -> our FITConfig field
    "read_attention_config": "read_attention",
    "read_context_attention_config": "context_attention",
    "write_attention_config": "write_attention",
    "local_attention_config": "local_attention",
    "global_attention_config": "global_attention",
}
BLOCK_FF_KEYS = ("read_ff_config", "read_context_ff_config", "write_ff_config", "local_ff_config", "global_ff_config")
BLOCK_KEYS = frozenset({
    "default_attention_config", *BLOCK_ATTENTION_KEYS, "default_ff_config", *BLOCK_FF_KEYS,
    "drop_units", "drop_path", "use_cross_attention_feedforward", "attention_class", "ff_class",
})  # fmt: skip
# Read by nothing in FITBlockV5 (the latent-conditioning read is commented out there; `ff_config`
# is in the official sample yaml but never read): accepted and, like the official code, ignored.
BLOCK_KEYS_IGNORED = frozenset({
    "read_latent_conditioning_attention_config", "read_latent_conditioning_ff_config", "ff_config",
})  # fmt: skip
# rin_layers attention classes that compute softmax(q k^T / sqrt(dim_head)) v with the same
# parameters as ours (the xformers ones differ only in the kernel), with the extra config keys
# each accepts. CosineAttention (magnitude-normalised q, k) and LinearAttention (fused to_qkv,
# linear attention) compute other functions and are refused.
ATTENTION_CLASSES = {
    "Attention": frozenset(),
    "XFormersEfficientAttention": frozenset({"xformers_efficient_attention_fw", "xformers_efficient_attention_bw"}),
    "XFormersAttention": frozenset({"xformers_attention_class"}),
}
FF_KEYS = frozenset({"mult", "conditioning_channels", "use_layer_normalization"})
OFFICIAL_FF_MULT = 4  # rin_layers.FeedForward's default `mult`


def _refuse(section: str, key: str, value, why: str):
    raise OfficialCheckpointError(f"{section}.{key}: {value!r} {why}")


def _is_class(value, module: str, names) -> str | None:
    """The class name when `value` (a `!module` path) names one of `names` in `module`, else None."""
    if not isinstance(value, str) or "." not in value:
        return None
    mod, cls = value.rsplit(".", 1)
    return cls if cls in names and (mod == module or mod.endswith("." + module)) else None


def _check_ff(section: str, key: str, cfg, *, extra: frozenset = frozenset()) -> float:
    """A feed-forward config we implement (rin_layers.FeedForward, GELU, LayerNorm, no FiLM) -> its mult."""
    if not isinstance(cfg, dict):
        _refuse(section, key, cfg, "is not a mapping of FeedForward arguments")
    where = f"{section}.{key}"
    for k, v in cfg.items():
        if k not in FF_KEYS | extra:
            _refuse(where, k, v, "is not a FeedForward argument genau_core implements")
    if cfg.get("conditioning_channels") is not None:
        _refuse(
            where,
            "conditioning_channels",
            cfg["conditioning_channels"],
            "(FiLM-conditioned feed-forward) is not implemented",
        )
    if not cfg.get("use_layer_normalization", True):
        _refuse(
            where,
            "use_layer_normalization",
            cfg["use_layer_normalization"],
            "(feed-forward without its LayerNorm) is not implemented",
        )
    return cfg.get("mult", OFFICIAL_FF_MULT)


def _check_modules(unet: dict) -> None:
    """The layer / norm / feed-forward / block classes and the conditioning switches of the FIT."""
    modules = (
        ("fit_block_module", ("fit.layers.fit_layers",), {"FITBlockV5"}, "FITBlockV5"),
        ("linear_layer_module", ("torch.nn", "torch.nn.modules.linear"), {"Linear"}, "torch.nn.Linear"),
        ("layer_normalization_module", ("fit.layers.rin_layers",), {"LayerNorm"}, "rin_layers.LayerNorm"),
        ("feed_forward_module", ("fit.layers.rin_layers",), {"FeedForward"}, "rin_layers.FeedForward"),
    )
    for key, where, names, what in modules:
        if key in unet and all(_is_class(unet[key], module, names) is None for module in where):
            _refuse(UNET_SECTION, key, unet[key], f"is not implemented (only {what})")
    flags = {
        "time_pe_type": ("learned", "only learned Fourier time features are implemented"),
        "conditioning_in_context": (True, "conditioning outside the context is not implemented"),
        "use_audio_image_conditioning": (False, "audio/image conditioning is not implemented"),
        "use_resolution_conditioning": (False, "resolution conditioning is not implemented"),
        "summary_text_embeddings_use_mask_token": (False, "a summary mask token is not implemented"),
    }
    defaults = {"time_pe_type": "learned", "conditioning_in_context": False}
    for key, (want, why) in flags.items():
        value = unet.get(key, defaults.get(key, False))
        if value != want:
            _refuse(UNET_SECTION, key, value, why)
    for key, why in (("classes_count", "class conditioning is not implemented"),
                     ("extra_average_inputs", "extra average inputs are not implemented"),
                     ("input_conv", "an input convolution is not implemented"),
                     ("output_conv", "an output convolution is not implemented")):  # fmt: skip
        if unet.get(key):
            _refuse(UNET_SECTION, key, unet[key], why)
    init = unet.get("weight_initializer")
    if init is not None:
        target = init.get("target") if isinstance(init, dict) else init
        known = {"RINWeightScalerInitializer", "IdentityInitializer"}
        if _is_class(target, "initializers.initializers", known) is None:
            _refuse(
                UNET_SECTION,
                "weight_initializer.target",
                target,
                "is not implemented (RINWeightScalerInitializer or IdentityInitializer)",
            )


def _check_attention(fb: dict) -> None:
    """`attention_class` and every attention config of the block."""
    attention = fb.get("attention_class", "src.modules.fit.layers.rin_layers.Attention")
    cls = _is_class(attention, "fit.layers.rin_layers", ATTENTION_CLASSES)
    if cls is None:
        implemented = ", ".join("rin_layers." + c for c in ATTENTION_CLASSES)
        _refuse(
            BLOCK_SECTION,
            "attention_class",
            attention,
            f"is not implemented: genau_core computes {implemented} "
            "(CosineAttention and LinearAttention compute other functions)",
        )
    if "ff_class" in fb and _is_class(fb["ff_class"], "fit.layers.rin_layers", {"FeedForward"}) is None:
        _refuse(
            BLOCK_SECTION,
            "ff_class",
            fb["ff_class"],
            "is not implemented (only rin_layers.FeedForward; XFormersFeedForward has other weights)",
        )
    for key in ("default_attention_config", *BLOCK_ATTENTION_KEYS):
        a = fb.get(key, fb["default_attention_config"])
        where = f"{BLOCK_SECTION}.{key}"
        if not isinstance(a, dict):
            _refuse(BLOCK_SECTION, key, a, "is not a mapping of attention arguments")
        for k, v in a.items():
            if k not in {"heads", "dim_head", "conditioning_channels"} | ATTENTION_CLASSES[cls]:
                _refuse(where, k, v, f"is not an argument of rin_layers.{cls} that genau_core implements")
            sdp = _is_class(v, "xformers.components.attention", {"ScaledDotProduct"})
            if k == "xformers_attention_class" and sdp is None:
                _refuse(where, k, v, "is not implemented (only ScaledDotProduct)")
        if a.get("conditioning_channels") is not None:
            _refuse(
                where,
                "conditioning_channels",
                a["conditioning_channels"],
                "(FiLM-conditioned attention) is not implemented",
            )


def _check_feedforwards(unet: dict, fb: dict) -> int:
    """Every feed-forward config (blocks and self-conditioning) -> their one shared mult."""
    default_ff = fb.get("default_ff_config", {})
    keys = ("default_ff_config", *BLOCK_FF_KEYS)
    mults = {key: _check_ff(BLOCK_SECTION, key, fb.get(key, default_ff)) for key in keys}
    sc = unet.get("self_conditioning_ff_config", {})
    sc_key = "self_conditioning_ff_config"
    mults[sc_key] = _check_ff(UNET_SECTION, sc_key, sc, extra=frozenset({"drop_units"}))
    if sc.get("drop_units", 0.0):
        _refuse(
            f"{UNET_SECTION}.{sc_key}",
            "drop_units",
            sc["drop_units"],
            "(dropout in the self-conditioning feed-forward) is not implemented",
        )
    mult = mults["default_ff_config"]
    for key, m in mults.items():
        if m != mult:
            where = f"{UNET_SECTION}.{key}" if key == sc_key else f"{BLOCK_SECTION}.{key}"
            _refuse(
                where,
                "mult",
                m,
                f"differs from default_ff_config's mult {mult}; genau_core implements one mult for every feed-forward",
            )
    if float(mult) != int(mult) or int(mult) < 1:
        _refuse(f"{BLOCK_SECTION}.default_ff_config", "mult", mult, "is not implemented (a positive integer)")
    return int(mult)


def check_fit_options(unet: dict) -> int:
    """Refuse every FIT option of the yaml that genau_core does not implement, and every key the
    official FIT / FITBlockV5 does not read; each error names the key and the value. Returns the
    feed-forward multiplier shared by all feed-forwards (one is implemented)."""
    for k, v in unet.items():
        if k not in FIT_KEYS:
            _refuse(UNET_SECTION, k, v, "is not an option of the official FIT (src/modules/fit/fit_audio.py)")
    _check_modules(unet)
    fb = unet.get("fit_block_config")
    if not isinstance(fb, dict) or "default_attention_config" not in fb:
        _refuse(UNET_SECTION, "fit_block_config", fb, "needs at least default_attention_config (FITBlockV5 reads it)")
    for k, v in fb.items():
        if k not in BLOCK_KEYS | BLOCK_KEYS_IGNORED:
            _refuse(BLOCK_SECTION, k, v, "is not an option of the official FITBlockV5 (fit/layers/fit_layers.py)")
    _check_attention(fb)
    mult = _check_feedforwards(unet, fb)
    if not isinstance(fb.get("use_cross_attention_feedforward"), bool):
        _refuse(
            BLOCK_SECTION,
            "use_cross_attention_feedforward",
            fb.get("use_cross_attention_feedforward"),
            "must be true or false",
        )
    return mult


def cond_stage_layout(params: dict) -> dict[str, int]:
    """Index of each conditioner in `cond_stage_models` (the yaml's key order) by kind."""
    layout: dict[str, int] = {}
    for i, (name, spec) in enumerate(params["cond_stage_config"].items()):
        target = str(spec["target"]).rsplit(".", 1)[-1]
        kind = {CLAP_TARGET: "clap", T5_TARGET: "t5", DATASET_IDS_TARGET: "dataset_ids"}.get(target)
        _require(
            kind is not None, f"model.params.cond_stage_config.{name}.target: {spec['target']!r} is not implemented"
        )
        layout[kind] = i
    _require("clap" in layout and "t5" in layout, "GenAu needs both a CLAP and a FLAN-T5 conditioner")
    return layout


def fit_config_from_official_yaml(y: dict) -> FITConfig:
    """The FIT backbone a release yaml describes (`model.params.unet_config.params`), after
    `check_fit_options` has refused whatever we do not implement."""
    params = y["model"]["params"]
    unet = params["unet_config"]["params"]
    backbone = params.get("backbone_type", "fit")
    if str(backbone).lower() != "fit":
        _refuse("model.params", "backbone_type", backbone, "is not implemented (only the FIT backbone)")
    ff_mult = check_fit_options(unet)
    size, patch, group = unet["input_size"], unet["patch_size"], unet["group_size"]
    _require(
        size[0] == 1 and size[2] == 1 and patch[0] == 1 and patch[2] == 1 and group[0] == 1 and group[2] == 1,
        f"expected a 1-D latent layout, got input {size} patch {patch} group {group}",
    )
    fb = unet["fit_block_config"]
    default = fb["default_attention_config"]
    fit = FITConfig(
        input_channels=int(unet["input_channels"]),
        input_length=int(size[1]),
        patch_size=int(patch[1]),
        group_size=int(group[1]),
        patch_channels=int(unet["patch_channels"]),
        latent_channels=int(unet["latent_channels"]),
        latent_count=int(unet["latent_count"]),
        blocks=int(unet["fit_blocks_count"]),
        local_layers_per_block=int(unet["local_layers_per_block"]),
        global_layers_per_block=int(unet["global_layers_per_block"]),
        context_channels=int(unet["context_channels"]),
        summary_channels=int(unet["summary_text_embeddings_channels"]),
        dataset_ids_count=int(unet.get("dataset_ids_count", 32)),
        use_dataset_id=bool(unet.get("use_dataset_id_conditioning", False)),
        time_fourier_dim=int(unet.get("learned_sinusoidal_dim", 16)),
        time_scaling=float(unet.get("time_scaling", 1.0)),
        ff_mult=ff_mult,
        dropout=float(fb["drop_units"]),
        drop_path=float(fb["drop_path"]),
        cross_attention_feedforward=fb["use_cross_attention_feedforward"],  # false: identity + residual, as official
        local_attention=_attn(fb.get("local_attention_config", default)),
        global_attention=_attn(fb.get("global_attention_config", default)),
        read_attention=_attn(fb.get("read_attention_config", default)),
        write_attention=_attn(fb.get("write_attention_config", default)),
        context_attention=_attn(fb.get("read_context_attention_config", default)),
        weight_init_scale=float(unet.get("weight_initializer", {}).get("scale", 1.0)),
    )
    return fit


def config_from_official_yaml(
    y: dict,
    *,
    name: str,
    vocoder: HiFiGANConfig | None = None,
    t5_config: dict | None = None,
    clap_text_config: dict | None = None,
    t5_tokenizer: str = "flan-t5-large",
    clap_tokenizer: str = "roberta-base",
    scale_factor: float | None = None,
) -> GenAuConfig:
    """The whole GenAuConfig a release yaml describes (the authority over our fitted genau-s / -l)."""
    params = y["model"]["params"]
    fit = fit_config_from_official_yaml(y)
    fs = params["first_stage_config"]["params"]
    dd = fs["ddconfig"]
    vae_section = "model.params.first_stage_config.params.ddconfig"
    for key, why in (("attn_resolutions", "(attention at VAE resolutions) is not implemented"),
                     ("downsample_time_stride4_levels", "(stride-4 VAE levels) is not implemented")):  # fmt: skip
        if dd.get(key):
            _refuse(vae_section, key, dd[key], why)
    if not dd.get("double_z", True):
        _refuse(vae_section, "double_z", dd["double_z"], "is not implemented (the VAE predicts mean and log-variance)")
    _require(
        int(dd["in_channels"]) == int(dd["out_ch"]) == int(dd["mel_bins"]),
        f"{vae_section}: in_channels {dd['in_channels']}, out_ch {dd['out_ch']} and mel_bins "
        f"{dd['mel_bins']} must be equal",
    )
    vae = VAEConfig(
        mel_bins=int(dd["mel_bins"]),
        ch=int(dd["ch"]),
        ch_mult=tuple(int(m) for m in dd["ch_mult"]),
        num_res_blocks=int(dd["num_res_blocks"]),
        z_channels=int(dd["z_channels"]),
        embed_dim=int(fs["embed_dim"]),
        dropout=float(dd.get("dropout", 0.0)),
    )
    lp = fs.get("lossconfig", {}).get("params", {})
    vae_loss = VAELossConfig(
        kl_weight=float(lp.get("kl_weight", 1.0)),
        disc_start=int(lp.get("disc_start", 50001)),
        disc_weight=float(lp.get("disc_weight", 1.0)),
        disc_factor=float(lp.get("disc_factor", 1.0)),
        disc_in_channels=int(lp.get("disc_in_channels", 1)),
        disc_layers=int(lp.get("disc_num_layers", 3)),
    )
    pre = y["preprocessing"]
    mel = MelConfig(
        sample_rate=int(pre["audio"]["sampling_rate"]),
        n_fft=int(pre["stft"]["filter_length"]),
        win_length=int(pre["stft"]["win_length"]),
        hop_length=int(pre["stft"]["hop_length"]),
        n_mels=int(pre["mel"]["n_mel_channels"]),
        fmin=float(pre["mel"]["mel_fmin"]),
        fmax=float(pre["mel"]["mel_fmax"]),
        duration_s=float(pre["audio"]["duration"]),
    )
    if params.get("parameterization", "eps") != "eps":
        _refuse("model.params", "parameterization", params["parameterization"], "is not implemented (only eps)")
    if params.get("beta_schedule", "linear") != "linear":
        _refuse("model.params", "beta_schedule", params["beta_schedule"], "is not implemented (only linear)")
    ev = params.get("evaluation_params", {})
    diffusion = DiffusionConfig(
        num_train_timesteps=int(params.get("timesteps", 1000)),
        beta_start=float(params.get("linear_start", 0.0015)),
        beta_end=float(params.get("linear_end", 0.0195)),
        scale_factor=float(scale_factor if scale_factor is not None else params.get("scale_factor", 1.0)),
        steps=int(ev.get("ddim_sampling_steps", 200)),
        guidance=float(ev.get("unconditional_guidance_scale", 3.5)),
    )
    layout = cond_stage_layout(params)
    csc = list(params["cond_stage_config"].values())
    t5_spec = csc[layout["t5"]]["params"]
    for key in ("pool_tokens", "return_embeds"):
        if not t5_spec.get(key, False):
            _refuse(
                "model.params.cond_stage_config.<FlanT5HiddenState>.params",
                key,
                t5_spec.get(key),
                "is not implemented (pooled embeddings only)",
            )
    clap_spec = csc[layout["clap"]]["params"]
    if clap_spec.get("embed_mode", "text") != "text":
        _refuse(
            "model.params.cond_stage_config.<CLAP>.params",
            "embed_mode",
            clap_spec["embed_mode"],
            "is not implemented (text only)",
        )
    dataset_ids = dict(AUDIOCAPS_IDS_DEFAULT)
    if "dataset_ids" in layout:
        dataset_ids = {k: int(v) for k, v in csc[layout["dataset_ids"]]["params"].get("dataset2id", {}).items()}
    uncond_id = int(dataset_ids.pop("unconditional", 0))
    order = tuple(kind for kind in sorted(("clap", "t5"), key=lambda k: layout[k]))
    conditioning = ConditioningConfig(
        t5=dict(t5_config) if t5_config is not None else dict(FLAN_T5_LARGE),
        clap_text=dict(clap_text_config) if clap_text_config is not None else dict(LAION_CLAP_TEXT),
        t5_tokenizer=t5_tokenizer,
        clap_tokenizer=clap_tokenizer,
        summary_order=order,
        cfg_dropout=float(params.get("unconditional_prob_cfg", 0.1)),
        dataset_ids=dataset_ids,
        inference_dataset="audiocaps",
        unconditional_dataset_id=uncond_id,
    )
    return GenAuConfig(
        name=name,
        mel=mel,
        vae=vae,
        vae_loss=vae_loss,
        fit=fit,
        conditioning=conditioning,
        diffusion=diffusion,
        vocoder=vocoder or HiFiGANConfig(),
    )


AUDIOCAPS_IDS_DEFAULT = {"audiocaps": 0}


# --------------------------------------------------------------------------------------
# key mapping: official -> ours
# --------------------------------------------------------------------------------------

_NORM = {"gamma": "weight"}


def _map_attention(rest: list[str]) -> str | None:
    """official Attention params: norm.gamma, norm_context.gamma, to_q/to_kv/to_out.weight (norm *.beta:
    zero buffers)."""
    if rest[-1] == "beta":
        return None
    if rest[0] in ("norm", "norm_context") and rest[1] == "gamma":
        return f"{rest[0]}.weight"
    if rest[0] in ("to_q", "to_kv", "to_out") and rest[1] == "weight":
        return f"{rest[0]}.weight"
    raise KeyError(".".join(rest))


def _map_ff(rest: list[str]) -> str | None:
    """official FeedForward: norm.gamma, net.0 (in), net.2 or net.3 (out; net.2 is Dropout when drop_units > 0)."""
    if rest[-1] == "beta":
        return None
    if rest[0] == "norm" and rest[1] == "gamma":
        return "norm.weight"
    if rest[0] == "net":
        idx = int(rest[1])
        if idx == 0:
            return f"fc1.{rest[2]}"
        if idx in (2, 3):
            return f"fc2.{rest[2]}"
    raise KeyError(".".join(rest))


_CROSS = {
    "latents_attend_to_context": ("context_read", "attn"),
    "latents_context_attn_ff": ("context_read", "ff"),
    "latents_attend_to_patches": ("read", "attn"),
    "latents_cross_attn_ff": ("read", "ff"),
    "patches_attend_to_latents": ("write", "attn"),
    "patches_cross_attn_ff": ("write", "ff"),
}


def map_fit_key(key: str) -> str | None:
    """Official FIT key (no `model.diffusion_model.` prefix) -> our FITBackbone key; None = not a parameter we keep."""
    p = key.split(".")
    head = p[0]
    simple = {
        "latents": "latents",
        "patches_pe": "patch_pos",
        "context_projection_summary_text_embeddings.weight": "summary_proj.weight",
    }
    if key in simple:
        return simple[key]
    if head == "time_mlp":
        return f"time_embed.{p[1]}.{p[2]}"  # 0.weights, 1.weight/bias, 3.weight/bias
    if head == "dataset_id_conditioning_mlp":
        return f"dataset_embed.{p[2]}"
    if head == "to_patches":
        return {"0": "patch_in", "1": "patch_in_norm"}[p[1]] + f".{p[2]}"
    if head == "patch_to_pixels":
        if p[1] == "0":
            return None if p[2] == "beta" else "out_norm.weight"
        return f"patch_out.{p[2]}"
    if head == "self_conditioning_latents_projection":
        if p[1] == "0":
            m = _map_ff(p[2:])
            return None if m is None else f"self_cond.{m}"
        return None if p[2] == "beta" else "self_cond_norm.weight"
    if head == "blocks":
        b = p[1]
        kind = p[2]
        if kind in ("local_layers", "global_layers"):
            j, sub = p[3], p[4]
            m = _map_attention(p[5:]) if sub == "0" else _map_ff(p[5:])
            return None if m is None else f"blocks.{b}.{kind}.{j}.{'attn' if sub == '0' else 'ff'}.{m}"
        if kind in _CROSS:
            layer, part = _CROSS[kind]
            m = _map_attention(p[3:]) if part == "attn" else _map_ff(p[3:])
            return None if m is None else f"blocks.{b}.{layer}.{part}.{m}"
    raise KeyError(key)


_VAE_RES = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2", "nin_shortcut": "conv_shortcut"}
_VAE_ATTN = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out"}


def _map_vae_mid(p: list[str]) -> str:
    if p[0] == "block_1":
        return f"mid_block.resnets.0.{_VAE_RES[p[1]]}.{p[2]}"
    if p[0] == "block_2":
        return f"mid_block.resnets.1.{_VAE_RES[p[1]]}.{p[2]}"
    if p[0] == "attn_1":
        return f"mid_block.attention.{_VAE_ATTN[p[1]]}.{p[2]}"
    raise KeyError(".".join(p))


def map_vae_key(key: str, cfg: VAEConfig) -> str:
    """Official AutoencoderKL1D key (no `first_stage_model.`; encoder/decoder/quant convs only) -> ours."""
    p = key.split(".")
    if p[0] in ("quant_conv", "post_quant_conv"):
        return key
    if p[0] not in ("encoder", "decoder"):
        raise KeyError(key)
    side, rest = p[0], p[1:]
    simple = {"conv_in": "conv_in", "conv_out": "conv_out", "norm_out": "conv_norm_out"}
    if rest[0] in simple:
        return f"{side}.{simple[rest[0]]}.{rest[1]}"
    if rest[0] == "mid":
        return f"{side}.{_map_vae_mid(rest[1:])}"
    levels = len(cfg.ch_mult)
    if side == "encoder" and rest[0] == "down":
        i = rest[1]
        if rest[2] == "block":
            return f"encoder.down_blocks.{i}.resnets.{rest[3]}.{_VAE_RES[rest[4]]}.{rest[5]}"
        if rest[2] == "downsample":
            return f"encoder.down_blocks.{i}.downsample.conv.{rest[4]}"
    if side == "decoder" and rest[0] == "up":
        k = levels - 1 - int(rest[1])  # official up[] is indexed by level; ours by execution order
        if rest[2] == "block":
            return f"decoder.up_blocks.{k}.resnets.{rest[3]}.{_VAE_RES[rest[4]]}.{rest[5]}"
        if rest[2] == "upsample":
            return f"decoder.up_blocks.{k}.upsample.conv.{rest[4]}"
    raise KeyError(key)


def map_clap_text_key(key: str) -> str | None:
    """LAION-CLAP key (no `module.` prefix) -> transformers ClapTextModelWithProjection key;
    None = not the text tower."""
    p = key.split(".")
    if p[0] == "text_branch":
        if p[-1] == "position_ids":
            return None
        return "text_model." + ".".join(p[1:])
    if p[0] == "text_projection":
        return {"0": "text_projection.linear1", "2": "text_projection.linear2"}[p[1]] + f".{p[2]}"
    if p[0] in (
        "audio_branch",
        "audio_projection",
        "text_transform",
        "audio_transform",
        "logit_scale_a",
        "logit_scale_t",
    ):
        return None
    raise KeyError(key)


def map_t5_key(key: str) -> str | None:
    """T5EncoderModel keys are kept (decoder / lm_head of a seq2seq snapshot are dropped)."""
    if key == "shared.weight" or key.startswith("encoder."):
        return key
    if key.startswith("decoder.") or key.startswith("lm_head."):
        return None
    raise KeyError(key)


IGNORED_PREFIXES = (
    "first_stage_model.loss.",  # VAE training loss (LPIPS, discriminator)
    "clap.",  # HTSAT-base CLAP used by the official code for re-ranking only
    "model_ema.",  # EMA copy of the FIT: read by `select_weights` when weights="ema", unused with "raw"
)
IGNORED_KEYS = {"logvar", "lvlb_weights", *SCHEDULE_BUFFERS}  # derived from the schedule, recomputed by diffusers


@dataclass
class ConvertedState:
    state: dict[str, torch.Tensor]
    ignored: list[str]


# --------------------------------------------------------------------------------------
# raw or EMA weights
# --------------------------------------------------------------------------------------

WEIGHT_SETS = ("raw", "ema")
# scripts/generate_and_eval.py (the official evaluation) defaults to --strategy wo_ema, as does
# scripts/text_to_audio.py (use_ema False unless the yaml sets force_use_ema); the paper: "We also
# disable EMA as found it to make the metrics unstable". inference_file.py (--strategy ema) and
# the Gradio demo (use_ema=True) sample with the EMA copy.
DEFAULT_WEIGHTS = "raw"
EMA_PREFIX = "model_ema."
EMA_BOOKKEEPING = ("decay", "num_updates")  # LitEma's own buffers


@dataclass(frozen=True)
class WeightSelection:
    """Which weights of a release checkpoint the FIT runs with (recorded in manifests)."""

    weights: str
    ema_tensors: int = 0
    ema_num_updates: int | None = None
    ema_decay: float | None = None
    # the release yaml's top-level `force_use_ema`, when it has one: scripts/text_to_audio.py then
    # samples with EMA (use_ema = configs['force_use_ema']); generate_and_eval.py ignores it
    yaml_force_use_ema: bool | None = None

    def to_dict(self) -> dict:
        d = {"weights": self.weights}
        if self.weights == "ema":
            d.update(ema_tensors=self.ema_tensors, ema_num_updates=self.ema_num_updates, ema_decay=self.ema_decay)
        if self.yaml_force_use_ema is not None:
            d["yaml_force_use_ema"] = self.yaml_force_use_ema
        return d


def _is_fit_parameter(key: str) -> bool:
    """An official `model.diffusion_model.*` key that is a parameter (LayerNorm `beta`s are buffers)."""
    try:
        return map_fit_key(key[len("model.diffusion_model.") :]) is not None
    except KeyError:
        return False  # an unknown key: the conversion names it


def check_weights_choice(weights: str) -> str:
    if weights not in WEIGHT_SETS:
        raise OfficialCheckpointError(f"weights {weights!r}: expected one of {', '.join(WEIGHT_SETS)}")
    return weights


def select_weights(
    sd: dict[str, torch.Tensor], weights: str, *, source: str = "checkpoint"
) -> tuple[dict[str, torch.Tensor], WeightSelection]:
    """The official state dict with the FIT's parameters taken from the chosen set.

    "ema" follows the official `LitEma` (`src/modules/diffusionmodules/ema.py`), built as
    `LitEma(self.model)` on the `DiffusionWrapper`: one buffer per trainable parameter, named
    `name.replace(".", "")`, so `model.diffusion_model.blocks.0.latents.x` has its EMA value at
    `model_ema.diffusion_modelblocks0latentsx`; `ema_scope` / `copy_to` copy every one of them onto
    the parameter. A checkpoint without `model_ema.*`, a parameter without its EMA buffer or an
    EMA buffer without its parameter is an error naming it.
    """
    check_weights_choice(weights)
    if weights == "raw":
        return dict(sd), WeightSelection("raw")
    ema = {k[len(EMA_PREFIX) :]: v for k, v in sd.items() if k.startswith(EMA_PREFIX)}
    shadows = {k: v for k, v in ema.items() if k not in EMA_BOOKKEEPING}
    if not shadows:
        raise OfficialCheckpointError(
            f"{source}: holds no EMA weights (no {EMA_PREFIX}* entries; the model was trained with use_ema: false); "
            "use --weights raw"
        )
    out = {k: v for k, v in sd.items() if not k.startswith(EMA_PREFIX)}
    owners: dict[str, str] = {}
    for key in out:
        if key.startswith("model.") and _is_fit_parameter(key):
            dotless = key[len("model.") :].replace(".", "")
            if dotless in owners:
                raise OfficialCheckpointError(
                    f"{source}: {owners[dotless]} and {key} share the EMA name {EMA_PREFIX}{dotless}"
                )
            owners[dotless] = key
    missing = sorted(owners[d] for d in owners if d not in shadows)
    unknown = sorted(EMA_PREFIX + d for d in shadows if d not in owners)
    if missing or unknown:
        raise OfficialCheckpointError(
            f"{source}: EMA weights do not match the model: {len(missing)} parameters without an EMA buffer "
            f"{missing[:4]}, {len(unknown)} EMA buffers without a parameter {unknown[:4]}"
        )
    for dotless, key in owners.items():
        if tuple(shadows[dotless].shape) != tuple(out[key].shape):
            raise OfficialCheckpointError(
                f"{source}: {EMA_PREFIX}{dotless} has shape {tuple(shadows[dotless].shape)}, "
                f"{key} {tuple(out[key].shape)}"
            )
        out[key] = shadows[dotless]
    num = ema.get("num_updates")
    decay = ema.get("decay")
    return out, WeightSelection(
        "ema",
        ema_tensors=len(owners),
        ema_num_updates=int(num) if num is not None else None,
        ema_decay=float(decay) if decay is not None else None,
    )


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix) :]


def convert_official_genau_state_dict(
    sd: dict[str, torch.Tensor], cfg: GenAuConfig, layout: dict[str, int]
) -> ConvertedState:
    """Full official `GenAu` Lightning state dict -> GenAuModel state dict (keys our model owns only)."""
    out: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    vocoder_state: dict[str, torch.Tensor] = {}
    clap_prefix = f"cond_stage_models.{layout['clap']}."
    t5_prefix = f"cond_stage_models.{layout['t5']}."
    for key, v in sd.items():
        try:
            if key in IGNORED_KEYS or key.startswith(IGNORED_PREFIXES):
                ignored.append(key)
            elif key == "scale_factor":
                out["scale_factor"] = v.reshape(())
            elif key.startswith("model.diffusion_model."):
                m = map_fit_key(_strip(key, "model.diffusion_model."))
                (ignored.append(key) if m is None else out.__setitem__(f"backbone.{m}", v))
            elif key.startswith("first_stage_model.vocoder."):
                vocoder_state[_strip(key, "first_stage_model.vocoder.")] = v
            elif key.startswith("first_stage_model."):
                out[f"vae.{map_vae_key(_strip(key, 'first_stage_model.'), cfg.vae)}"] = v
            elif key.startswith(clap_prefix):
                rest = _strip(key, clap_prefix)
                if rest.startswith("mel_transform."):
                    ignored.append(key)
                    continue
                _require(rest.startswith("model."), f"unexpected CLAP conditioner key {key}")
                m = map_clap_text_key(_strip(rest, "model."))
                (ignored.append(key) if m is None else out.__setitem__(f"conditioner.clap.{m}", v))
            elif key.startswith(t5_prefix):
                rest = _strip(key, t5_prefix)
                _require(rest.startswith("model."), f"unexpected FLAN-T5 conditioner key {key}")
                m = map_t5_key(_strip(rest, "model."))
                (ignored.append(key) if m is None else out.__setitem__(f"conditioner.t5.{m}", v))
            else:
                raise KeyError(key)
        except KeyError as e:
            raise OfficialCheckpointError(f"official key without a mapping: {key} ({e})") from None
    if vocoder_state:
        for k, v in hifigan_mod.official_to_ours(vocoder_state, cfg.vocoder).items():
            out[f"vocoder.{k}"] = v
    return ConvertedState(out, ignored)


def convert_official_vae_state_dict(sd: dict[str, torch.Tensor], cfg: GenAuConfig) -> ConvertedState:
    """Standalone 1D-VAE checkpoint (`state_dict` of AutoencoderKL1D) -> `vae.*` (+ `vocoder.*` if present)."""
    out: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    voc: dict[str, torch.Tensor] = {}
    for key, v in sd.items():
        if key.startswith("loss."):
            ignored.append(key)
        elif key.startswith("vocoder."):
            voc[_strip(key, "vocoder.")] = v
        else:
            try:
                out[f"vae.{map_vae_key(key, cfg.vae)}"] = v
            except KeyError:
                raise OfficialCheckpointError(f"official VAE key without a mapping: {key}") from None
    if voc:
        for k, v in hifigan_mod.official_to_ours(voc, cfg.vocoder).items():
            out[f"vocoder.{k}"] = v
    return ConvertedState(out, ignored)


def convert_clap_checkpoint(sd: dict[str, torch.Tensor]) -> ConvertedState:
    """`clap_htsat_tiny.pt` state dict (optionally `module.`-prefixed) -> `conditioner.clap.*`."""
    out, ignored = {}, []
    for key, v in sd.items():
        k = key[len("module.") :] if key.startswith("module.") else key
        try:
            m = map_clap_text_key(k)
        except KeyError:
            raise OfficialCheckpointError(f"CLAP key without a mapping: {key}") from None
        (ignored.append(key) if m is None else out.__setitem__(f"conditioner.clap.{m}", v))
    return ConvertedState(out, ignored)


def convert_t5_weights(sd: dict[str, torch.Tensor]) -> ConvertedState:
    out, ignored = {}, []
    for key, v in sd.items():
        try:
            m = map_t5_key(key)
        except KeyError:
            raise OfficialCheckpointError(f"FLAN-T5 key without a mapping: {key}") from None
        (ignored.append(key) if m is None else out.__setitem__(f"conditioner.t5.{m}", v))
    return ConvertedState(out, ignored)


# --------------------------------------------------------------------------------------
# files -> GenAuModel
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfficialFiles:
    ckpt: Path
    yaml: Path
    vae_ckpt: Path
    hifigan_ckpt: Path
    hifigan_json: Path
    clap_ckpt: Path
    t5_dir: Path
    roberta_dir: Path


def torch_load(path: str | Path) -> dict:
    """A release file's saved object (`genau_core.checkpoint_io.load_checkpoint`). Lightning checkpoints pickle
    more than tensors (callbacks, hyper-parameters): those objects are read as inert stand-ins, so no code from
    the file runs and no training package is needed; GENAU_BENCH_ALLOW_PICKLE=1 allows plain pickle."""
    import os

    from genau_core.checkpoint_io import ALLOW_PICKLE_ENV, load_checkpoint

    return load_checkpoint(
        path,
        what="GenAu release file",
        inert_objects=True,
        allow_pickle=os.environ.get(ALLOW_PICKLE_ENV, "") == "1",
        pickle_hint=f"If you trust the file, {ALLOW_PICKLE_ENV}=1 also tries plain pickle.",
    )


def _state_dict_of(obj: dict) -> dict[str, torch.Tensor]:
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    # torch.compile wraps modules as `_orig_mod`; those names are not part of the layout
    return {
        k.replace("._orig_mod.", ".").removeprefix("_orig_mod."): v
        for k, v in sd.items()
        if isinstance(v, torch.Tensor)
    }


def read_hf_weights(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of an HF snapshot folder (safetensors preferred, sharded or not)."""
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if files:
        sd: dict[str, torch.Tensor] = {}
        for f in files:
            sd.update(load_file(str(f)))
        return sd
    bins = sorted(folder.glob("pytorch_model*.bin"))
    if bins:
        sd = {}
        for f in bins:
            sd.update(read_state_dict(f, (), what=f"weights of {folder}"))
        return sd
    return {}


def _hf_config(folder: Path, keys) -> dict:
    f = folder / "config.json"
    if not f.exists():
        return {}
    raw = json.loads(f.read_text())
    return {k: raw[k] for k in keys if k in raw}


def official_config(
    files: OfficialFiles, *, name: str, main_state: dict[str, torch.Tensor], clap_state: dict[str, torch.Tensor]
) -> GenAuConfig:
    """GenAuConfig of a release: yaml + HiFi-GAN json + the text encoders' own configs.

    FLAN-T5's config comes from its snapshot; the CLAP text tower is RoBERTa (its snapshot's
    config) with the projection width read from the CLAP checkpoint.
    """
    y = read_release_yaml(files.yaml)
    t5_config = {**FLAN_T5_LARGE, **_hf_config(files.t5_dir, FLAN_T5_LARGE)}
    clap_text = {
        **LAION_CLAP_TEXT,
        **_hf_config(files.roberta_dir, [k for k in LAION_CLAP_TEXT if k != "projection_dim"]),
    }
    proj = clap_state.get("text_projection.0.weight", clap_state.get("module.text_projection.0.weight"))
    if proj is not None:
        clap_text["projection_dim"] = int(proj.shape[0])
    scale = main_state.get("scale_factor")
    try:
        return config_from_official_yaml(
            y,
            name=name,
            vocoder=HiFiGANConfig.from_json(files.hifigan_json),
            t5_config=t5_config,
            clap_text_config=clap_text,
            t5_tokenizer=str(files.t5_dir),
            clap_tokenizer=str(files.roberta_dir),
            scale_factor=float(scale) if scale is not None else None,
        )
    except OfficialCheckpointError as e:
        raise OfficialCheckpointError(f"{files.yaml}: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise OfficialCheckpointError(f"{files.yaml}: not a GenAU release yaml ({type(e).__name__}: {e})") from None


def read_release_yaml(path: str | Path) -> dict:
    """The release yaml, or an error naming the file."""
    import yaml

    try:
        y = load_official_yaml(path)
    except OSError as e:
        raise OfficialCheckpointError(f"{path}: cannot read ({e})") from None
    except yaml.YAMLError as e:
        raise OfficialCheckpointError(f"{path}: cannot parse ({type(e).__name__}: {e})") from None
    if not isinstance(y, dict) or not isinstance(y.get("model"), dict):
        raise OfficialCheckpointError(f"{path}: not a GenAU release yaml (no `model` section)")
    return y


def evaluation_defaults(y: dict) -> tuple[int | None, float | None]:
    """(DDIM steps, guidance) of the yaml's `model.params.evaluation_params`, what the official
    `scripts/generate_and_eval.py` samples with (None where the yaml has no value)."""
    ev = (y.get("model", {}).get("params", {}) or {}).get("evaluation_params", {}) or {}
    steps, guidance = ev.get("ddim_sampling_steps"), ev.get("unconditional_guidance_scale")
    return (int(steps) if steps is not None else None, float(guidance) if guidance is not None else None)


def load_official_genau(
    files: OfficialFiles,
    *,
    name: str,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    weights: str = DEFAULT_WEIGHTS,
):
    """Build a GenAuModel from the official release files (see module docstring); `weights`
    "raw" or "ema" (`select_weights`). The choice is kept as `model.weight_selection`."""
    from genau_core.genau.model import GenAuModel
    from genau_core.genau.tokenizers import load_tokenizer

    check_weights_choice(weights)
    main, selection = select_weights(_state_dict_of(torch_load(files.ckpt)), weights, source=str(files.ckpt))
    clap_sd = _state_dict_of(torch_load(files.clap_ckpt))
    cfg = official_config(files, name=name, main_state=main, clap_state=clap_sd)
    c = cfg.conditioning
    t5_tok = load_tokenizer(c.t5_tokenizer, "t5", vocab_size=c.t5["vocab_size"], max_length=c.t5_max_length)
    clap_tok = load_tokenizer(
        c.clap_tokenizer, "clap", vocab_size=c.clap_text["vocab_size"], max_length=c.clap_max_length
    )

    state: dict[str, torch.Tensor] = {}
    # 1. component files (the official constructors load these first)
    hf_ckpt = torch_load(files.hifigan_ckpt)
    voc = hf_ckpt.get("generator", hf_ckpt)
    state.update({f"vocoder.{k}": v for k, v in hifigan_mod.official_to_ours(voc, cfg.vocoder).items()})
    state.update(convert_official_vae_state_dict(_state_dict_of(torch_load(files.vae_ckpt)), cfg).state)
    state.update(convert_clap_checkpoint(clap_sd).state)
    state.update(convert_t5_weights(read_hf_weights(files.t5_dir)).state)
    # 2. the main checkpoint overrides
    y = read_release_yaml(files.yaml)
    layout = cond_stage_layout(y["model"]["params"])
    if "force_use_ema" in y:
        selection = dataclasses.replace(selection, yaml_force_use_ema=bool(y["force_use_ema"]))
    state.update(convert_official_genau_state_dict(main, cfg, layout).state)
    state.setdefault("scale_factor", torch.tensor(float(cfg.diffusion.scale_factor)))

    with parameters_on_meta():
        model = GenAuModel(cfg, t5_tok, clap_tok)
    own = model.state_dict()
    for k in own:  # deterministic buffers transformers registers as persistent (position / token-type ids)
        if k not in state and re.search(r"\.(position_ids|token_type_ids)$", k):
            state[k] = own[k]
    if "conditioner.t5.encoder.embed_tokens.weight" in own and "conditioner.t5.shared.weight" in state:
        state.setdefault("conditioner.t5.encoder.embed_tokens.weight", state["conditioner.t5.shared.weight"])
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise OfficialCheckpointError(
            f"official weights do not cover the model: missing {missing[:10]}{'...' if len(missing) > 10 else ''}, "
            f"unexpected {unexpected[:10]}{'...' if len(unexpected) > 10 else ''}"
        )
    model.load_state_dict(
        {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}, strict=True, assign=True
    )
    if any(p.is_meta for p in model.parameters()):
        raise OfficialCheckpointError("some parameters were not loaded")
    model.weight_selection = selection
    return model.to(device).eval()
