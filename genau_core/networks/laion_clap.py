"""LAION-CLAP (HTS-AT audio tower + RoBERTa text tower), computed as `laion_clap` 1.1.x does.

Audio, per clip (`CLAP_Module.get_audio_embedding_from_data` for a non-fusion model):
1. int16 round trip: clip to [-1, 1], `(x * 32767).astype(int16)` (truncation), `/ 32767`.
2. Length 480000 samples (10 s at 48 kHz): a shorter clip is repeated `480000 // n` whole
   times and zero-padded ("repeatpad", `get_audio_features`); a longer one keeps its
   **first** 480000 samples. Upstream takes a random crop there ("rand_trunc"); our crop is
   deterministic. The harness already cuts clips to 10 s, so this only matters for direct use.
3. Log-mel with torchlibrosa's numerics (the HTSAT module's own front end): reflect-padded
   centred STFT (window 1024 periodic Hann, hop 480) as two Conv1d with DFT kernels, power
   spectrum, librosa Slaney mel matrix (64 mels, 50-14000 Hz), `10*log10(max(x, 1e-10))`,
   no top_db. The kernels and mel matrix are the ones stored in the checkpoint (upstream's
   `load_state_dict` overwrites its computed ones); a file whose stored front end differs from
   this configuration is rejected.
4. HTS-AT (transformers `ClapAudioModel`), 2-layer MLP projection, L2 normalisation.

transformers' `ClapFeatureExtractor` is *not* used: it skips the int16 round trip, crops at
random, defaults to fmin 0 and computes in float64 numpy; with `frequency_min=50,
truncation="rand_trunc"` it matches step 3 to float rounding (checked in the tests).

Text (`get_text_embedding`): RoBERTa tokenizer, padding to `max_length` 77 with truncation;
RoBERTa pooler output (tanh dense on `<s>`), 2-layer MLP projection, L2 normalisation.

Checkpoints are the original `laion_clap` files (`{"state_dict": ...}`, keys optionally under
`module.`); `convert_laion_clap_state_dict` maps them to our module (`LaionClapNet`) and
`to_laion_clap_state_dict` maps back, so random weights can be written in the official layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genau_core.checkpoint_io import (
    CheckpointFormatError,
    check_complete,
    expected_state,
    strip_prefix,
)
from genau_core.errors import TokenizerError
from genau_core.networks.htsat import (
    FRONTEND_KEYS,
    HTSATConfig,
    HTSATHead,
    hf_audio_config_kwargs,
    join_htsat_state_dict,
    relative_position_index,
    split_htsat_state_dict,
)
from genau_core.networks.stft import (
    FRONTEND_TOLERANCE,
    LogMelFilterBank,
    PowerSpectrogram,
    dft_kernels,
    slaney_mel_matrix,
)


@dataclass(frozen=True)
class RobertaTextConfig:
    """The text tower (`RobertaModel`); defaults are roberta-base's."""

    vocab_size: int = 50265
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 514
    type_vocab_size: int = 1
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 1

    def hf_kwargs(self) -> dict:
        return dict(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            layer_norm_eps=self.layer_norm_eps,
            pad_token_id=self.pad_token_id,
            bos_token_id=0,
            eos_token_id=2,
            hidden_act="gelu",
        )


@dataclass(frozen=True)
class LaionClapConfig:
    """One LAION-CLAP model: audio front end, HTS-AT geometry, text tower, joint space."""

    htsat: HTSATConfig = field(default_factory=HTSATConfig)
    text: RobertaTextConfig = field(default_factory=RobertaTextConfig)
    sample_rate: int = 48000
    clip_samples: int = 480000
    window_size: int = 1024
    hop_size: int = 480
    fmin: float = 50.0
    fmax: float = 14000.0
    joint_embed_dim: int = 512
    text_max_length: int = 77
    tokenizer: str = "roberta-base"  # hub id or local directory of the RoBERTa tokenizer

    def __post_init__(self) -> None:
        frames = 1 + self.clip_samples // self.hop_size
        if frames > self.htsat.max_frames:
            raise ValueError(
                f"LAION-CLAP: {self.clip_samples} samples give {frames} frames, more than the "
                f"{self.htsat.max_frames} the HTSAT geometry accepts"
            )
        if self.text_max_length + self.text.pad_token_id + 1 > self.text.max_position_embeddings:
            raise ValueError("LAION-CLAP: text_max_length does not fit the RoBERTa position table")

    @property
    def n_mels(self) -> int:
        return self.htsat.n_mels

    def hf_config(self):
        from transformers import ClapConfig

        return ClapConfig(
            text_config=self.text.hf_kwargs(),
            audio_config=hf_audio_config_kwargs(self.htsat, projection_dim=self.joint_embed_dim),
            projection_dim=self.joint_embed_dim,
            projection_hidden_act="relu",
            logit_scale_init_value=1 / 0.07,
        )


# laion_clap model_configs/HTSAT-base.json and HTSAT-tiny.json (amodel), text "roberta".
HTSAT_BASE = LaionClapConfig(htsat=HTSATConfig(embed_dim=128, depths=(2, 2, 12, 2)))
HTSAT_TINY = LaionClapConfig(htsat=HTSATConfig(embed_dim=96, depths=(2, 2, 6, 2)))


def tiny_laion_clap_config(vocab_size: int, *, text_max_length: int = 16) -> LaionClapConfig:
    """A few-thousand-parameter configuration for tests: 1 s clips, 16 mels, 3 Swin stages
    (the last unshifted, as in the real geometry), a 2-layer RoBERTa; still 512-d output."""
    return LaionClapConfig(
        htsat=HTSATConfig(
            spec_size=64, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 4), window_size=4, num_classes=6, n_mels=16
        ),
        text=RobertaTextConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            num_layers=2,
            num_heads=2,
            intermediate_size=64,
            max_position_embeddings=text_max_length + 2,
        ),
        clip_samples=48000,
        text_max_length=text_max_length,
    )


class _MLPLayers(nn.Module):
    """laion_clap `MLPLayers(units=[d, d, d])` (audio_transform / text_transform): trained with
    the model, stored in checkpoints, not used by the embeddings."""

    def __init__(self, dim: int):
        super().__init__()
        self.sequential = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(0.1), nn.Linear(dim, dim))


def build_frontend(config: LaionClapConfig) -> tuple[PowerSpectrogram, LogMelFilterBank]:
    """The HTSAT module's torchlibrosa front end for this configuration."""
    return (
        PowerSpectrogram(config.window_size, config.hop_size),
        LogMelFilterBank(config.sample_rate, config.window_size, config.n_mels, config.fmin, config.fmax),
    )


class LaionClapNet(nn.Module):
    """Front end + transformers `ClapModel` + the original's unused trained heads."""

    def __init__(self, config: LaionClapConfig):
        super().__init__()
        from transformers import ClapModel

        self.config = config
        self.spectrogram_extractor, self.logmel_extractor = build_frontend(config)
        self.clap = ClapModel(config.hf_config())
        self.audio_head = HTSATHead(config.htsat)
        self.audio_transform = _MLPLayers(config.joint_embed_dim)
        self.text_transform = _MLPLayers(config.joint_embed_dim)

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, clip_samples) -> (B, 1, frames, n_mels) dB log-mel (the input of bn0)."""
        return self.logmel_extractor(self.spectrogram_extractor(waveform))

    def embed_audio(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, clip_samples) prepared waveforms -> (B, joint) unit vectors."""
        pooled = self.clap.audio_model(input_features=self.log_mel(waveform)).pooler_output
        return F.normalize(self.clap.audio_projection(pooled), dim=-1)

    def embed_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token ids -> (B, joint) unit vectors."""
        pooled = self.clap.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        return F.normalize(self.clap.text_projection(pooled), dim=-1)


# -- audio preparation ----------------------------------------------------------------------
def int16_round_trip(x: np.ndarray) -> np.ndarray:
    """laion_clap `int16_to_float32(float32_to_int16(x))` with its numpy dtypes."""
    q = (np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0) * np.float32(32767.0)).astype(np.int16)
    return (q.astype(np.float64) / 32767.0).astype(np.float32)


def fit_to_clip(x: np.ndarray, clip_samples: int) -> np.ndarray:
    """Keep the first `clip_samples` samples, or "repeatpad" a shorter clip: repeat it
    `clip_samples // len(x)` whole times, then zero-pad (laion_clap `get_audio_features`)."""
    n = len(x)
    if n == 0:
        raise ValueError("LAION-CLAP: empty clip")
    if n >= clip_samples:
        return np.ascontiguousarray(x[:clip_samples])
    tiled = np.tile(x, clip_samples // n)
    return np.concatenate([tiled, np.zeros(clip_samples - len(tiled), dtype=x.dtype)])


def prepare_audio(x: np.ndarray, clip_samples: int) -> np.ndarray:
    """The waveform laion_clap feeds the HTSAT module (steps 1-2 of the module docstring)."""
    return fit_to_clip(int16_round_trip(x), clip_samples)


# -- checkpoint layout -----------------------------------------------------------------------
_PROJ_RE = re.compile(r"(audio|text)_projection\.([02])\.(weight|bias)")
_TRANSFORM_RE = re.compile(r"(audio|text)_transform\.sequential\.([03])\.(weight|bias)")
_ENCODER = "clap.audio_model.audio_encoder."
_TEXT = "clap.text_model."


def _derived_entries(config: LaionClapConfig) -> dict[str, torch.Tensor]:
    """Buffers our module has that follow from the configuration alone (older or newer
    original files may omit them)."""
    c = config
    n_pos = c.text.max_position_embeddings
    out = {
        _TEXT + "embeddings.position_ids": torch.arange(n_pos).expand((1, -1)).clone(),
        _TEXT + "embeddings.token_type_ids": torch.zeros((1, n_pos), dtype=torch.long),
        _ENCODER + "batch_norm.num_batches_tracked": torch.tensor(0),
    }
    index = relative_position_index(c.htsat.window_size)
    for i, depth in enumerate(c.htsat.depths):
        for j in range(depth):
            out[f"{_ENCODER}layers.{i}.blocks.{j}.attention.self.relative_position_index"] = index.clone()
    real, imag = dft_kernels(c.window_size)
    out["spectrogram_extractor.stft.conv_real.weight"] = torch.from_numpy(real)
    out["spectrogram_extractor.stft.conv_imag.weight"] = torch.from_numpy(imag)
    melw = slaney_mel_matrix(c.sample_rate, c.window_size, c.n_mels, c.fmin, c.fmax)
    out["logmel_extractor.melW"] = torch.from_numpy(melw)
    return out


def convert_laion_clap_state_dict(
    state: Mapping[str, torch.Tensor],
    config: LaionClapConfig,
    *,
    source: str = "state dict",
    expected: Mapping[str, torch.Size] | None = None,
    what: str = "LAION-CLAP (HTSAT + RoBERTa, non-fusion)",
) -> dict[str, torch.Tensor]:
    """Original laion_clap state dict (keys optionally under `module.`) -> `LaionClapNet`
    state dict. Unknown, missing or mis-shaped weights, a stored front end or attention mask
    that contradicts `config`, are a `CheckpointFormatError` naming `source`. `expected` (the
    target network's key -> shape) is built on the meta device when not given. `what` names the
    model in errors (laion_clap_fusion.py converts the non-fusion part of a fusion file here)."""
    state = strip_prefix(state, "module.", source=source)
    out: dict[str, torch.Tensor] = {}
    audio: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    problems: list[str] = []
    for key, value in state.items():
        if key.startswith("audio_branch."):
            audio[key[len("audio_branch.") :]] = value
        elif key == "text_branch.embeddings.position_ids":
            # Persisted by transformers < 4.31; laion_clap drops it on newer versions.
            if not torch.equal(value.reshape(-1), torch.arange(value.numel())):
                problems.append(f"{key} is not 0..{value.numel() - 1}")
        elif key.startswith("text_branch."):
            out[_TEXT + key[len("text_branch.") :]] = value
        elif m := _PROJ_RE.fullmatch(key):
            out[f"clap.{m.group(1)}_projection.linear{1 if m.group(2) == '0' else 2}.{m.group(3)}"] = value
        elif key in ("logit_scale_a", "logit_scale_t"):
            out["clap." + key] = value
        elif _TRANSFORM_RE.fullmatch(key):
            out[key] = value
        else:
            unknown.append(key)
    parts = split_htsat_state_dict(audio, config.htsat)
    unknown += ["audio_branch." + k for k in parts.unknown]
    problems += ["audio_branch." + p for p in parts.problems]
    out.update({_ENCODER + k: v for k, v in parts.encoder.items()})
    out.update({"audio_head." + k: v for k, v in parts.head.items()})
    derived = _derived_entries(config)
    for key in FRONTEND_KEYS:
        if key in parts.frontend:
            stored, computed = parts.frontend[key], derived[key]
            same = stored.shape == computed.shape
            if same:
                same = float((stored.float() - computed).abs().max()) <= FRONTEND_TOLERANCE
            if not same:
                problems.append(
                    f"audio_branch.{key} differs from the {config.sample_rate} Hz STFT/mel of this configuration "
                    f"(window {config.window_size}, hop {config.hop_size}, {config.n_mels} mels, "
                    f"{config.fmin:g}-{config.fmax:g} Hz)"
                )
            out[key] = stored
    for key, value in derived.items():
        out.setdefault(key, value)
    if problems:
        raise CheckpointFormatError(f"{source}: not a {what} checkpoint: " + "; ".join(problems[:6]))
    if expected is None:
        expected = expected_state(lambda: LaionClapNet(config))
    check_complete(out, expected, unknown=unknown, source=source, what=what)
    return out


def to_laion_clap_state_dict(net: LaionClapNet) -> dict[str, torch.Tensor]:
    """`LaionClapNet` -> the original laion_clap key layout (no `module.` prefix), in the
    original order; CPU copies. `convert_laion_clap_state_dict` inverts it exactly."""
    sd = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    cfg = net.config
    out: dict[str, torch.Tensor] = {
        "logit_scale_a": sd["clap.logit_scale_a"],
        "logit_scale_t": sd["clap.logit_scale_t"],
    }
    htsat = join_htsat_state_dict(
        {k[len(_ENCODER) :]: v for k, v in sd.items() if k.startswith(_ENCODER)},
        {k: sd[k] for k in FRONTEND_KEYS},
        {k[len("audio_head.") :]: v for k, v in sd.items() if k.startswith("audio_head.")},
        cfg.htsat,
    )
    out.update({"audio_branch." + k: v for k, v in htsat.items()})
    for key, value in sd.items():
        if key.startswith(_TEXT) and not key.endswith(("embeddings.position_ids", "embeddings.token_type_ids")):
            out["text_branch." + key[len(_TEXT) :]] = value
    for branch in ("text", "audio"):
        for idx in ("0", "3"):
            for kind in ("weight", "bias"):
                key = f"{branch}_transform.sequential.{idx}.{kind}"
                out[key] = sd[key]
        for idx, layer in (("0", "linear1"), ("2", "linear2")):
            for kind in ("weight", "bias"):
                out[f"{branch}_projection.{idx}.{kind}"] = sd[f"clap.{branch}_projection.{layer}.{kind}"]
    return out


def save_laion_clap_checkpoint(net: LaionClapNet, path: str | Path, *, module_prefix: bool = True) -> Path:
    """Write `{"state_dict": ...}` as laion_clap training does (keys under `module.` like the
    released DDP-trained files unless `module_prefix=False`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = "module." if module_prefix else ""
    torch.save({"state_dict": {prefix + k: v for k, v in to_laion_clap_state_dict(net).items()}}, path)
    return path


# -- tokenizer -------------------------------------------------------------------------------
def load_roberta_tokenizer(source: str):
    """RoBERTa tokenizer from a local directory or a hub id (needs the network or the cache)."""
    from transformers import RobertaTokenizer

    try:
        return RobertaTokenizer.from_pretrained(source)
    except Exception as e:  # hub / filesystem errors come in many types
        raise TokenizerError(
            f"LAION-CLAP: cannot load the RoBERTa tokenizer {source!r} ({type(e).__name__}: {e}). "
            "Pass tokenizer=<RobertaTokenizer> or config=LaionClapConfig(tokenizer=<local dir>)."
        ) from None
