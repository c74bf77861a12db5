"""The released AutoCap files (HF repo `mali6/autocap`) and the pretrained parts it is built from.

Release files (looked for as `bench.checkpoints.find_checkpoint` does: an explicit folder,
$GENAU_BENCH_CHECKPOINTS, ~/.cache/genau-bench/checkpoints):
    autocap-full.ckpt     PyTorch-Lightning checkpoint; `state_dict` holds every weight
    autocap-full.yaml     its configuration (official `settings/*.yaml` layout, `!module` tag)
    bart-base/            a local snapshot of `facebook/bart-base` (tokenizer files + config.json;
                          the BART weights themselves come from the .ckpt)
    music_speech_audioset_epoch_15_esc_89.98.pt
                          only when the .ckpt lacks the frozen CLAP (`clap_model.*`) weights: the
                          official loader drops them and reloads this LAION-CLAP file instead.

Key mapping (official -> ours), applied by `convert_official_state_dict` and inverted exactly by
`to_official_state_dict`:
    encoder.audio_enc.*                            -> htsat.*  (HTSAT: `_htsat.split_htsat_state_dict`;
        audio_feats_extractor.mel_trans.stft.*     -> htsat.spectrogram_extractor.stft.*
        audio_feats_extractor.log_trans.melW       -> htsat.logmel_extractor.melW)
    clap_model.model.*                             -> clap.*   (`laion_clap.convert_laion_clap_state_dict`)
    decoder.*                                      -> bart.*   (transformers names on both sides)
    special_tokens_embed.special_token_embed.weight-> delimiters.weight
    special_tokens_embed.model.*                   (a second registration of decoder.model: checked equal, dropped)
    enc_to_dec_proj.*                              -> htsat_proj.*
    audio_position_embedding.weight                -> audio_positions.weight
    audio_Qfromer_layernorm_embedding.*            -> audio_norm.*
    audio_query_tokens                             -> qformer.query_tokens
    audio_Qformer.bert.embeddings.LayerNorm.*      -> qformer.input_norm.*
    audio_Qformer.bert.embeddings.position_ids     (buffer 0..1023: checked, dropped)
    audio_Qformer.bert.encoder.layer.{i}.X         -> qformer.layers.{i}.Y  (QFORMER_LAYER_NAMES)
    audio_qformer_proj.*                           -> qformer_proj.*
    clap_proj.*, clap_layernorm.*                  -> clap_proj.*, clap_norm.*

Input order, as the released code has it (`pl_htsat_q_bart_captioning.py`): captioning
(`AutoCap.generate`, every official inference script) prepends the CLAP token to the BART
*encoder input*; training (`AutoCap.forward_decoder`) prepends it to the encoder *output*.
`AutoCapModel.generate` / `forward` follow each (tests/genau_core/autocap/test_autocap_official_paths.py).

Differences from the released code that remain, by design (documented, not hidden):
- the audio is cut to its first 10 s (official: a random 10 s window) and resampled with soxr
  (official: torchaudio); multichannel files are averaged (official: first channel);
- the HTSAT is fully frozen and in inference mode (official leaves its `fc1` weights trainable and
  the module in training mode, so SpecAugment and batch-norm updates run during training).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import torch

from genau_core.checkpoints import find_checkpoint, sha256_file
from genau_core.checkpoint_io import check_complete, read_state_dict, strip_prefix
from genau_core.networks.htsat import (
    FRONTEND_KEYS,
    HTSATConfig,
    join_htsat_state_dict,
    relative_position_index,
    split_htsat_state_dict,
)
from genau_core.networks.stft import FRONTEND_TOLERANCE, dft_kernels, slaney_mel_matrix
from genau_core.networks.laion_clap import (
    HTSAT_BASE,
    HTSAT_TINY,
    convert_laion_clap_state_dict,
    to_laion_clap_state_dict,
)
from genau_core.autocap.configs import (
    AUTOCAP,
    OFFICIAL_TAGS,
    AutoCapConfig,
    BartSpec,
    FrontEndConfig,
    GenerationSettings,
    QFormerConfig,
)
from genau_core.errors import OfficialCheckpointError

CKPT_NAME = "autocap-full.ckpt"
YAML_NAME = "autocap-full.yaml"
BART_DIR_NAME = "bart-base"
CLAP_NAME = "music_speech_audioset_epoch_15_esc_89.98.pt"
HTSAT_NAME = "HTSAT.ckpt"  # the AudioSet HTSAT the official training starts from
SOURCE = "https://huggingface.co/mali6/autocap"
WHAT = "AutoCap (autocap-full)"

QFORMER_POSITIONS = 1024  # official BertConfig.max_position_embeddings of the audio Q-Former

QFORMER_LAYER_NAMES = {
    "attention.self.query": "self_attn.q_proj",
    "attention.self.key": "self_attn.k_proj",
    "attention.self.value": "self_attn.v_proj",
    "attention.output.dense": "self_attn.out_proj",
    "attention.output.LayerNorm": "self_attn_norm",
    "crossattention.self.query": "cross_attn.q_proj",
    "crossattention.self.key": "cross_attn.k_proj",
    "crossattention.self.value": "cross_attn.v_proj",
    "crossattention.output.dense": "cross_attn.out_proj",
    "crossattention.output.LayerNorm": "cross_attn_norm",
    "intermediate_query.dense": "ffn_in",
    "output_query.dense": "ffn_out",
    "output_query.LayerNorm": "ffn_norm",
}
TOP_NAMES = {
    "enc_to_dec_proj": "htsat_proj",
    "audio_position_embedding": "audio_positions",
    "audio_Qfromer_layernorm_embedding": "audio_norm",
    "audio_Qformer.bert.embeddings.LayerNorm": "qformer.input_norm",
    "audio_qformer_proj": "qformer_proj",
    "clap_proj": "clap_proj",
    "clap_layernorm": "clap_norm",
    "special_tokens_embed.special_token_embed": "delimiters",
}
HTSAT_FRONTEND_NAMES = {
    "audio_feats_extractor.mel_trans.stft.conv_real.weight": "spectrogram_extractor.stft.conv_real.weight",
    "audio_feats_extractor.mel_trans.stft.conv_imag.weight": "spectrogram_extractor.stft.conv_imag.weight",
    "audio_feats_extractor.log_trans.melW": "logmel_extractor.melW",
}
_QF_LAYER_RE = re.compile(r"audio_Qformer\.bert\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)")
_TOP_RE = re.compile(r"(.+)\.(weight|bias)")


# ----------------------------------------------------------------------------- yaml -> config ---
def _bart_spec_from_dir(bart_dir: Path | None) -> tuple[BartSpec, dict]:
    """bart-base's BartSpec and generation defaults, from `config.json` when the folder has one."""
    if bart_dir is None or not (bart_dir / "config.json").is_file():
        return BartSpec(), {}
    c = json.loads((bart_dir / "config.json").read_text())
    names = {f: c[f] for f in BartSpec.__dataclass_fields__ if f in c}
    gen = {}
    gpath = bart_dir / "generation_config.json"
    g = {**c, **(json.loads(gpath.read_text()) if gpath.is_file() else {})}
    if "no_repeat_ngram_size" in g:
        gen["no_repeat_ngram_size"] = int(g["no_repeat_ngram_size"] or 0)
    if "early_stopping" in g:
        gen["early_stopping"] = bool(g["early_stopping"])
    if "forced_bos_token_id" in g:
        gen["force_bos"] = g["forced_bos_token_id"] is not None
    if "forced_eos_token_id" in g:
        gen["force_eos"] = g["forced_eos_token_id"] is not None
    return BartSpec(**names), gen


def config_from_official_yaml(path: str | Path, *, bart_dir: str | Path | None = None) -> AutoCapConfig:
    """The `AutoCapConfig` an official settings yaml describes (the released one or any
    `settings/*.yaml`); options this implementation does not have are an error naming the file."""
    from genau_core.genau.official import load_official_yaml

    path = Path(path)
    try:
        y = load_official_yaml(path)
        model, aq, aa, tok = y["model"], y["audio_qformer"], y["audio_args"], y["tokenizer"]
    except (OSError, KeyError, TypeError) as e:
        raise OfficialCheckpointError(f"{path}: not an AutoCap settings yaml ({type(e).__name__}: {e})") from None
    except Exception as e:  # yaml syntax errors
        raise OfficialCheckpointError(f"{path}: cannot parse ({type(e).__name__}: {e})") from None

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise OfficialCheckpointError(f"{path}: {what} is not supported by genau_core.autocap")

    need(not model.get("use_text_qformer", False), "model.use_text_qformer: true (the text Q-Former)")
    need(model.get("add_special_tokens", True), "model.add_special_tokens: false ('Title ...' prefixes)")
    need(not model.get("resize_token_embeds", False), "model.resize_token_embeds: true")
    enc = y.get("audio_encoder_args", {})
    need(enc.get("model_name", "htsat") == "htsat", f"audio_encoder_args.model_name {enc.get('model_name')!r}")
    meta_fields = tuple(model.get("meta_keys", ())) if model.get("meta_input", False) else ()
    unknown = [k for k in meta_fields if k not in OFFICIAL_TAGS]
    need(not unknown, f"meta_keys {unknown}")
    clap_model = y.get("clap_embeds", {}).get("model", "HTSAT-base")
    need(clap_model in ("HTSAT-base", "HTSAT-tiny"), f"clap_embeds.model {clap_model!r}")
    need(int(y.get("clap_embeds", {}).get("embed_dim", 512)) == 512, "clap_embeds.embed_dim other than 512")
    bart_dir = Path(bart_dir) if bart_dir is not None else None
    name = y.get("text_decoder_args", {}).get("name", "facebook/bart-base")
    bart, gen = _bart_spec_from_dir(bart_dir)
    need(name == "facebook/bart-base" or (bart_dir is not None and (bart_dir / "config.json").is_file()),
         f"decoder {name!r} without its config.json in the BART folder")  # fmt: skip
    audio_tokens = "qformer" if model.get("use_audio_qformer", True) else "all"
    qformer = QFormerConfig(
        num_queries=int(aq["num_audio_query_token"]),
        hidden_size=int(aq["hidden_size"]),
        num_heads=int(aq["num_attention_heads"]),
        num_layers=int(aq["num_hidden_layers"]),
    )
    cfg = replace(
        AUTOCAP,
        frontend=FrontEndConfig(
            sample_rate=int(aa["sr"]),
            clip_seconds=float(aa.get("max_length", 10)),
            n_fft=int(aa["n_fft"]),
            hop_length=int(aa["hop_length"]),
            n_mels=int(aa["n_mels"]),
            fmin=float(aa["f_min"]),
            fmax=float(aa["f_max"]),
        ),
        htsat=HTSATConfig(n_mels=int(aa["n_mels"])),
        clap=HTSAT_BASE if clap_model == "HTSAT-base" else HTSAT_TINY,
        use_clap=bool(model.get("use_clap_embeds", False)),
        qformer=qformer,
        audio_tokens=audio_tokens,
        bart=bart,
        tokenizer=str(bart_dir) if bart_dir is not None else BART_DIR_NAME,
        meta_fields=meta_fields,
        special_tokens=tuple(tok.get("special_tokens", ())),
        max_prompt_tokens=int(y.get("meta", {}).get("max_prompt_len", 128)),
        max_caption_tokens=int(tok.get("max_length", 30)),
        audio_dropout=float(model.get("audio_features_dropout_p", 0.2)),
        meta_dropout=float(model.get("text_features_dropout_p", 0.2)),
        audio_position_rows=bart.max_position_embeddings + 2,
        generation=replace(GenerationSettings(), **gen),
    )
    need(cfg.max_encoder_tokens <= bart.max_position_embeddings, "an encoder input longer than BART's position table")
    return cfg


# ----------------------------------------------------------------------- state-dict mapping ---
def _htsat_derived(frontend: FrontEndConfig, cfg: HTSATConfig) -> dict[str, torch.Tensor]:
    """HTSAT entries that follow from the configuration (our names under `htsat.`)."""
    out = {"model.audio_encoder.batch_norm.num_batches_tracked": torch.tensor(0)}
    index = relative_position_index(cfg.window_size)
    for i, depth in enumerate(cfg.depths):
        for j in range(depth):
            out[f"model.audio_encoder.layers.{i}.blocks.{j}.attention.self.relative_position_index"] = index.clone()
    real, imag = dft_kernels(frontend.n_fft)
    out["spectrogram_extractor.stft.conv_real.weight"] = torch.from_numpy(real)
    out["spectrogram_extractor.stft.conv_imag.weight"] = torch.from_numpy(imag)
    out["logmel_extractor.melW"] = torch.from_numpy(
        slaney_mel_matrix(frontend.sample_rate, frontend.n_fft, frontend.n_mels, frontend.fmin, frontend.fmax)
    )
    return out


def convert_htsat_state_dict(
    state: Mapping[str, torch.Tensor], cfg: AutoCapConfig, *, source: str, keep_frontend: bool = True
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """An official HTSAT state dict (keys relative to the HTSAT module, front end under
    `audio_feats_extractor.` or torchlibrosa's own names) -> (our `htsat.*` entries, unknown keys).
    A stored front end must match this configuration's (else an error); `keep_frontend=False`
    ignores it, as the official code does when it starts from `HTSAT.ckpt`."""
    renamed = {HTSAT_FRONTEND_NAMES.get(k, k): v for k, v in state.items()}
    parts = split_htsat_state_dict(renamed, cfg.htsat)
    if parts.problems:
        raise OfficialCheckpointError(
            f"{source}: HTSAT weights do not fit this geometry: " + "; ".join(parts.problems[:4])
        )
    out = {"htsat.model.audio_encoder." + k: v for k, v in parts.encoder.items()}
    out.update({"htsat.head." + k: v for k, v in parts.head.items()})
    derived = _htsat_derived(cfg.frontend, cfg.htsat)
    for key in FRONTEND_KEYS:
        if keep_frontend and key in parts.frontend:
            stored, computed = parts.frontend[key], derived[key]
            if stored.shape != computed.shape or float((stored.float() - computed).abs().max()) > FRONTEND_TOLERANCE:
                f = cfg.frontend
                raise OfficialCheckpointError(
                    f"{source}: stored HTSAT front end {key} differs from the {f.sample_rate} Hz STFT/mel of this "
                    f"configuration (window {f.n_fft}, hop {f.hop_length}, {f.n_mels} mels, {f.fmin:g}-{f.fmax:g} Hz)"
                )
            out["htsat." + key] = stored
    for key, value in derived.items():
        out.setdefault("htsat." + key, value)
    return out, parts.unknown


def _from_official_name(key: str) -> str | None:
    if key == "audio_query_tokens":
        return "qformer.query_tokens"
    if m := _QF_LAYER_RE.fullmatch(key):
        i, name, kind = m.groups()
        return f"qformer.layers.{i}.{QFORMER_LAYER_NAMES[name]}.{kind}" if name in QFORMER_LAYER_NAMES else None
    if (m := _TOP_RE.fullmatch(key)) and m.group(1) in TOP_NAMES:
        return f"{TOP_NAMES[m.group(1)]}.{m.group(2)}"
    return None


def convert_official_state_dict(
    state: Mapping[str, torch.Tensor],
    cfg: AutoCapConfig,
    expected: Mapping[str, torch.Size],
    *,
    source: str = "state dict",
    clap_state: Mapping[str, torch.Tensor] | None = None,
    clap_source: str = "",
) -> dict[str, torch.Tensor]:
    """The official `autocap-full.ckpt` state dict -> our `AutoCapModel` state dict.
    `expected` is our model's key -> shape. `clap_state` (a laion_clap file's state dict) is
    used when the checkpoint holds no `clap_model.*` weights (or to replace them)."""
    state = strip_prefix(state, "module.", source=source)
    out: dict[str, torch.Tensor] = {}
    htsat: dict[str, torch.Tensor] = {}
    clap: dict[str, torch.Tensor] = {}
    dup: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state.items():
        if key.startswith("encoder.audio_enc."):
            htsat[key[len("encoder.audio_enc.") :]] = value
        elif key.startswith("clap_model.model."):
            clap[key[len("clap_model.model.") :]] = value
        elif key.startswith("decoder."):
            out["bart." + key[len("decoder.") :]] = value
        elif key.startswith("special_tokens_embed.model."):
            dup[key[len("special_tokens_embed.model.") :]] = value
        elif key == "audio_Qformer.bert.embeddings.position_ids":
            if not torch.equal(value.reshape(-1).long(), torch.arange(value.numel())):
                raise OfficialCheckpointError(f"{source}: {key} is not 0..{value.numel() - 1}")
        elif (ours := _from_official_name(key)) is not None:
            out[ours] = value
        else:
            unknown.append(key)
    for key, value in dup.items():  # SpecialTokensEmbeddings holds BART's model a second time
        twin = out.get("bart.model." + key)
        if twin is None or twin.shape != value.shape or not torch.equal(twin, value):
            raise OfficialCheckpointError(
                f"{source}: special_tokens_embed.model.{key} differs from decoder.model.{key}"
            )
    if htsat:
        converted, extra = convert_htsat_state_dict(htsat, cfg, source=source)
        out.update(converted)
        unknown += ["encoder.audio_enc." + k for k in extra]
    if cfg.use_clap:
        if clap_state is not None:
            clap, src = dict(clap_state), clap_source or "CLAP state dict"
        else:
            src = f"{source} (clap_model.model.*)"
        if not clap:
            raise OfficialCheckpointError(
                f"{source}: holds no CLAP weights (clap_model.model.*); pass the LAION-CLAP file {CLAP_NAME}"
            )
        out.update({"clap." + k: v for k, v in convert_laion_clap_state_dict(clap, cfg.clap, source=src).items()})
    elif clap:
        unknown += ["clap_model.model." + k for k in list(clap)[:3]]
    check_complete(out, expected, unknown=unknown, source=source, what=WHAT)
    return out


def to_official_state_dict(model) -> dict[str, torch.Tensor]:
    """Our `AutoCapModel` -> the official key layout (what `autocap-full.ckpt` holds under
    `state_dict`, including the second registration of BART under `special_tokens_embed.model`);
    `convert_official_state_dict` inverts it exactly. CPU copies."""
    cfg = model.cfg
    sd = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    enc_prefix = "htsat.model.audio_encoder."
    htsat = join_htsat_state_dict(
        {k[len(enc_prefix) :]: v for k, v in sd.items() if k.startswith(enc_prefix)},
        {k: sd["htsat." + k] for k in FRONTEND_KEYS},
        {k[len("htsat.head.") :]: v for k, v in sd.items() if k.startswith("htsat.head.")},
        cfg.htsat,
    )
    back = {v: k for k, v in HTSAT_FRONTEND_NAMES.items()}
    out.update({"encoder.audio_enc." + back.get(k, k): v for k, v in htsat.items()})
    if model.clap is not None:
        out.update({"clap_model.model." + k: v for k, v in to_laion_clap_state_dict(model.clap).items()})
    for k, v in sd.items():
        if k.startswith("bart."):
            out["decoder." + k[len("bart.") :]] = v
            if k.startswith("bart.model."):
                out["special_tokens_embed.model." + k[len("bart.model.") :]] = v
    inverse_top = {v: k for k, v in TOP_NAMES.items()}
    inverse_layer = {v: k for k, v in QFORMER_LAYER_NAMES.items()}
    for k, v in sd.items():
        if k.startswith(("htsat.", "clap.", "bart.")):
            continue
        if k == "qformer.query_tokens":
            out["audio_query_tokens"] = v
        elif m := re.fullmatch(r"qformer\.layers\.(\d+)\.(.+)\.(weight|bias)", k):
            out[f"audio_Qformer.bert.encoder.layer.{m.group(1)}.{inverse_layer[m.group(2)]}.{m.group(3)}"] = v
        else:
            module, kind = k.rsplit(".", 1)
            out[f"{inverse_top[module]}.{kind}"] = v
    if cfg.audio_tokens == "qformer":
        out["audio_Qformer.bert.embeddings.position_ids"] = torch.arange(QFORMER_POSITIONS).expand((1, -1)).clone()
    return out


# ------------------------------------------------------------------------------- loaders ---
@dataclass(frozen=True)
class OfficialFiles:
    ckpt: Path
    yaml: Path
    bart_dir: Path
    clap: Path | None = None  # only needed when the ckpt holds no CLAP weights


def find_official_files(folder: str | Path | None = None) -> OfficialFiles:
    """The release files in `folder` (or the checkpoint directories); a missing one is a
    `CheckpointNotFound` naming every file the model needs and where to get them."""
    from genau_core.checkpoints import CheckpointNotFound, checkpoint_dirs

    dirs = [Path(folder).expanduser()] if folder is not None else checkpoint_dirs()
    found: dict[str, Path] = {}
    for name in (CKPT_NAME, YAML_NAME, BART_DIR_NAME, CLAP_NAME):
        for d in dirs:
            if (d / name).exists():
                found[name] = d / name
                break
    missing = [n for n in (CKPT_NAME, YAML_NAME, BART_DIR_NAME) if n not in found]
    if missing:
        where = " or ".join(str(d) for d in dirs)
        raise CheckpointNotFound(
            f"autocap: missing {', '.join(missing)} in {where}. The model needs {CKPT_NAME} and {YAML_NAME} "
            f"(from {SOURCE}), a {BART_DIR_NAME}/ folder with the facebook/bart-base tokenizer files and config.json, "
            f"and {CLAP_NAME} if the .ckpt holds no CLAP weights. Pass --checkpoint FOLDER or set "
            "$GENAU_BENCH_CHECKPOINTS. "
            "For an offline model use --model autocap-tiny."
        )
    return OfficialFiles(found[CKPT_NAME], found[YAML_NAME], found[BART_DIR_NAME], found.get(CLAP_NAME))


def load_official_autocap(
    files: OfficialFiles,
    *,
    device: str | torch.device = "cpu",
    allow_pickle: bool = False,
    config: AutoCapConfig | None = None,
):
    """Build AutoCap from the release files through the explicit key mapping. `config`
    replaces the configuration the yaml describes (other geometries, tests)."""
    from genau_core.autocap.model import AutoCapModel
    from genau_core.autocap.text import build_tokenizer

    cfg = config or config_from_official_yaml(files.yaml, bart_dir=files.bart_dir)
    model = AutoCapModel(cfg, build_tokenizer(cfg))
    state = read_state_dict(
        files.ckpt, ("state_dict", "model"), what=WHAT, allow_pickle=allow_pickle, inert_objects=True
    )
    clap_state, clap_source = None, ""
    if cfg.use_clap and not any(k.startswith(("clap_model.model.", "module.clap_model.model.")) for k in state):
        clap_path = find_checkpoint(
            CLAP_NAME,
            files.clap,
            what="LAION-CLAP (AutoCap's CLAP encoder)",
            source="https://huggingface.co/lukewys/laion_clap",
        )
        clap_state = strip_prefix(
            read_state_dict(clap_path, ("state_dict",), what="LAION-CLAP", allow_pickle=allow_pickle),
            "module.",
            source=str(clap_path),
        )
        clap_source = str(clap_path)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    converted = convert_official_state_dict(
        state, cfg, expected, source=str(files.ckpt), clap_state=clap_state, clap_source=clap_source
    )
    model.load_state_dict(converted, strict=True)
    model.identity = f"sha256:{sha256_file(files.ckpt)}"
    return model.to(device).train(False)


def load_pretrained_parts(
    model,
    *,
    bart_dir: str | Path,
    htsat_ckpt: str | Path | None = None,
    clap_ckpt: str | Path | None = None,
    allow_pickle: bool = False,
) -> None:
    """Initialise a fresh model for stage 1 as the official training does: BART from a local
    `facebook/bart-base` snapshot, HTSAT from `HTSAT.ckpt` (`sed_model.*`, its stored front end
    ignored), CLAP from the LAION-CLAP file; then delimiters and audio positions from BART."""
    from transformers import BartForConditionalGeneration

    cfg = model.cfg
    bart_dir = Path(bart_dir).expanduser()
    try:
        hf = BartForConditionalGeneration.from_pretrained(str(bart_dir), local_files_only=True)
    except Exception as e:  # missing / malformed snapshot
        raise OfficialCheckpointError(
            f"{bart_dir}: cannot load facebook/bart-base weights ({type(e).__name__}: {e})"
        ) from None
    bart_state = hf.state_dict()
    for table in ("model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight"):
        rows = model.bart.state_dict()[table].shape[0]
        have = bart_state[table]
        if have.shape[0] < rows:  # official `adjust_max_pos_embeds`: extend with copies of the last row
            bart_state[table] = torch.cat([have, have[-1:].expand(rows - have.shape[0], -1)])
    model.bart.load_state_dict(bart_state, strict=True)

    htsat_path = find_checkpoint(HTSAT_NAME, htsat_ckpt, what="HTSAT (AutoCap's audio encoder)")
    raw = read_state_dict(htsat_path, ("state_dict",), what="HTSAT", allow_pickle=allow_pickle)
    sed = {k[len("sed_model.") :]: v for k, v in raw.items() if k.startswith("sed_model.")} or dict(raw)
    converted, unknown = convert_htsat_state_dict(sed, cfg, source=str(htsat_path), keep_frontend=False)
    expected = {k: v.shape for k, v in model.state_dict().items() if k.startswith("htsat.")}
    check_complete(converted, expected, unknown=unknown, source=str(htsat_path), what="HTSAT")
    model.load_state_dict(converted, strict=False)

    if model.clap is not None:
        clap_path = find_checkpoint(
            CLAP_NAME, clap_ckpt, what="LAION-CLAP", source="https://huggingface.co/lukewys/laion_clap"
        )
        raw = read_state_dict(clap_path, ("state_dict",), what="LAION-CLAP", allow_pickle=allow_pickle)
        model.clap.load_state_dict(convert_laion_clap_state_dict(raw, cfg.clap, source=str(clap_path)), strict=True)
    model.init_from_bart()
    model.identity = f"pretrained-parts:bart={bart_dir.name},htsat=sha256:{sha256_file(htsat_path)[:12]}"
