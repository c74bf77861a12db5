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

As the official code does, component files are loaded first and the main checkpoint's
weights override them. Every official key goes through an explicit mapping below; keys
that inference does not use are listed in `IGNORED_*` and anything unknown is an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.metrics.backbones._checkpoint_io import parameters_on_meta
from genau_core.baselines.ldm_sampling import SCHEDULE_BUFFERS
from genau_core.audio import hifigan as hifigan_mod
from genau_core.audio.hifigan import HiFiGANConfig
from genau_core.audio.mel import MelConfig
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


class OfficialCheckpointError(ValueError):
    pass


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
    return AttentionSpec(int(d["heads"]), int(d["dim_head"]))


def cond_stage_layout(params: dict) -> dict[str, int]:
    """Index of each conditioner in `cond_stage_models` (the yaml's key order) by kind."""
    layout: dict[str, int] = {}
    for i, (_, spec) in enumerate(params["cond_stage_config"].items()):
        target = str(spec["target"]).rsplit(".", 1)[-1]
        kind = {CLAP_TARGET: "clap", T5_TARGET: "t5", DATASET_IDS_TARGET: "dataset_ids"}.get(target)
        _require(kind is not None, f"unsupported conditioner {spec['target']}")
        layout[kind] = i
    _require("clap" in layout and "t5" in layout, "GenAu needs both a CLAP and a FLAN-T5 conditioner")
    return layout


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
    params = y["model"]["params"]
    unet = params["unet_config"]["params"]
    _require(params.get("backbone_type", "fit").lower() == "fit", "only the FIT backbone is supported")
    block_module = str(unet.get("fit_block_module", "FITBlockV5"))
    _require(block_module.endswith("FITBlockV5"), f"unsupported FIT block {block_module}")
    _require(unet.get("time_pe_type", "learned") == "learned", "only learned Fourier time features are supported")
    _require(unet.get("conditioning_in_context", False), "conditioning must be in the context")
    for flag in ("use_audio_image_conditioning", "use_resolution_conditioning", "summary_text_embeddings_use_mask_token"):
        _require(not unet.get(flag, False), f"{flag} is not supported")
    _require(not unet.get("classes_count", 0), "class conditioning is not supported")
    _require(not unet.get("extra_average_inputs"), "extra_average_inputs are not supported")
    _require(not unet.get("input_conv") and not unet.get("output_conv"), "input/output convolutions are not supported")
    size, patch, group = unet["input_size"], unet["patch_size"], unet["group_size"]
    _require(size[0] == 1 and size[2] == 1 and patch[0] == 1 and patch[2] == 1 and group[0] == 1 and group[2] == 1,
             f"expected a 1-D latent layout, got input {size} patch {patch} group {group}")
    fb = unet["fit_block_config"]
    default = fb["default_attention_config"]
    ff_mult = int(fb.get("default_ff_config", {}).get("mult", 4))
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
        cross_attention_feedforward=bool(fb["use_cross_attention_feedforward"]),
        local_attention=_attn(fb.get("local_attention_config", default)),
        global_attention=_attn(fb.get("global_attention_config", default)),
        read_attention=_attn(fb.get("read_attention_config", default)),
        write_attention=_attn(fb.get("write_attention_config", default)),
        context_attention=_attn(fb.get("read_context_attention_config", default)),
        weight_init_scale=float(unet.get("weight_initializer", {}).get("scale", 1.0)),
    )
    fs = params["first_stage_config"]["params"]
    dd = fs["ddconfig"]
    _require(not dd.get("attn_resolutions"), "attention at VAE resolutions is not supported")
    _require(not dd.get("downsample_time_stride4_levels"), "stride-4 VAE levels are not supported")
    _require(bool(dd.get("double_z", True)), "the VAE must predict mean and log-variance")
    _require(int(dd["in_channels"]) == int(dd["out_ch"]) == int(dd["mel_bins"]), "VAE in/out channels must equal mel bins")
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
    _require(params.get("parameterization", "eps") == "eps", "only epsilon prediction is supported")
    _require(params.get("beta_schedule", "linear") == "linear", "only the linear beta schedule is supported")
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
    _require(bool(t5_spec.get("pool_tokens", False)) and bool(t5_spec.get("return_embeds", False)),
             "the FLAN-T5 conditioner must return pooled embeddings")
    clap_spec = csc[layout["clap"]]["params"]
    _require(clap_spec.get("embed_mode", "text") == "text", "the CLAP conditioner must embed text")
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
    """official Attention params: norm.gamma, norm_context.gamma, to_q/to_kv/to_out.weight (norm *.beta: zero buffers)."""
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
    """LAION-CLAP key (no `module.` prefix) -> transformers ClapTextModelWithProjection key; None = not the text tower."""
    p = key.split(".")
    if p[0] == "text_branch":
        if p[-1] == "position_ids":
            return None
        return "text_model." + ".".join(p[1:])
    if p[0] == "text_projection":
        return {"0": "text_projection.linear1", "2": "text_projection.linear2"}[p[1]] + f".{p[2]}"
    if p[0] in ("audio_branch", "audio_projection", "text_transform", "audio_transform", "logit_scale_a", "logit_scale_t"):
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
    "model_ema.",
)
IGNORED_KEYS = {"logvar", "lvlb_weights", *SCHEDULE_BUFFERS}  # derived from the schedule, recomputed by diffusers


@dataclass
class ConvertedState:
    state: dict[str, torch.Tensor]
    ignored: list[str]


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix):]


def convert_official_genau_state_dict(sd: dict[str, torch.Tensor], cfg: GenAuConfig, layout: dict[str, int]) -> ConvertedState:
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
        k = key[len("module."):] if key.startswith("module.") else key
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
    """Load a checkpoint; Lightning checkpoints pickle more than tensors, so fall back to a full unpickle.

    The fallback executes pickle code: only load files you trust (the official release).
    """
    import pickle

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError):
        return torch.load(str(path), map_location="cpu", weights_only=False, mmap=True)


def _state_dict_of(obj: dict) -> dict[str, torch.Tensor]:
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    # torch.compile wraps modules as `_orig_mod`; those names are not part of the layout
    return {k.replace("._orig_mod.", ".").removeprefix("_orig_mod."): v for k, v in sd.items() if isinstance(v, torch.Tensor)}


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
            sd.update(torch.load(str(f), map_location="cpu", weights_only=True))
        return sd
    return {}


def _hf_config(folder: Path, keys) -> dict:
    f = folder / "config.json"
    if not f.exists():
        return {}
    raw = json.loads(f.read_text())
    return {k: raw[k] for k in keys if k in raw}


def official_config(files: OfficialFiles, *, name: str, main_state: dict[str, torch.Tensor], clap_state: dict[str, torch.Tensor]) -> GenAuConfig:
    """GenAuConfig of a release: yaml + HiFi-GAN json + the text encoders' own configs.

    FLAN-T5's config comes from its snapshot; the CLAP text tower is RoBERTa (its snapshot's
    config) with the projection width read from the CLAP checkpoint.
    """
    y = load_official_yaml(files.yaml)
    t5_config = {**FLAN_T5_LARGE, **_hf_config(files.t5_dir, FLAN_T5_LARGE)}
    clap_text = {**LAION_CLAP_TEXT, **_hf_config(files.roberta_dir, [k for k in LAION_CLAP_TEXT if k != "projection_dim"])}
    proj = clap_state.get("text_projection.0.weight", clap_state.get("module.text_projection.0.weight"))
    if proj is not None:
        clap_text["projection_dim"] = int(proj.shape[0])
    scale = main_state.get("scale_factor")
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


def load_official_genau(files: OfficialFiles, *, name: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """Build a GenAuModel from the official release files (see module docstring)."""
    from genau_core.genau.model import GenAuModel
    from genau_core.genau.tokenizers import load_tokenizer

    main = _state_dict_of(torch_load(files.ckpt))
    clap_sd = _state_dict_of(torch_load(files.clap_ckpt))
    cfg = official_config(files, name=name, main_state=main, clap_state=clap_sd)
    c = cfg.conditioning
    t5_tok = load_tokenizer(c.t5_tokenizer, "t5", vocab_size=c.t5["vocab_size"], max_length=c.t5_max_length)
    clap_tok = load_tokenizer(c.clap_tokenizer, "clap", vocab_size=c.clap_text["vocab_size"], max_length=c.clap_max_length)

    state: dict[str, torch.Tensor] = {}
    # 1. component files (the official constructors load these first)
    hf_ckpt = torch_load(files.hifigan_ckpt)
    voc = hf_ckpt.get("generator", hf_ckpt)
    state.update({f"vocoder.{k}": v for k, v in hifigan_mod.official_to_ours(voc, cfg.vocoder).items()})
    state.update(convert_official_vae_state_dict(_state_dict_of(torch_load(files.vae_ckpt)), cfg).state)
    state.update(convert_clap_checkpoint(clap_sd).state)
    state.update(convert_t5_weights(read_hf_weights(files.t5_dir)).state)
    # 2. the main checkpoint overrides
    layout = cond_stage_layout(load_official_yaml(files.yaml)["model"]["params"])
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
    model.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}, strict=True, assign=True)
    if any(p.is_meta for p in model.parameters()):
        raise OfficialCheckpointError("some parameters were not loaded")
    return model.to(device).eval()
