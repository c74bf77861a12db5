"""Pieces shared by several baselines: the T5 encoder configurations (Tango, Make-An-Audio 2) and the
reading of a released LatentDiffusion checkpoint with its BigVGAN folder (Make-An-Audio 1 and 2)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence, TypeVar

import torch

from genau_core.baselines._state import CheckpointMappingError, read_checkpoint, split_prefixes
from genau_core.baselines.bigvgan import BigVGANConfig, load_bigvgan_folder
from genau_core.baselines.ldm_sampling import SCHEDULE_BUFFERS, LdmSchedule, check_schedule_buffers

# google/flan-t5-large and google/t5-v1_1-large: the same encoder architecture (T5 v1.1 large)
T5_LARGE_ENCODER_CONFIG: dict = dict(
    vocab_size=32128,
    d_model=1024,
    d_kv=64,
    d_ff=2816,
    num_layers=24,
    num_heads=16,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    dropout_rate=0.1,
    layer_norm_epsilon=1e-6,
    feed_forward_proj="gated-gelu",
    tie_word_embeddings=False,
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
)

# the offline tiny twins' T5 encoder (vocabulary of the in-process tiny T5 tokenizer)
TINY_T5_ENCODER_CONFIG: dict = dict(
    T5_LARGE_ENCODER_CONFIG,
    vocab_size=120,
    d_model=32,
    d_kv=8,
    d_ff=48,
    num_layers=2,
    num_heads=4,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=32,
)


# -- released LatentDiffusion checkpoints ---------------------------------------------------------------


@dataclass(frozen=True)
class LatentDiffusionParts:
    """A LatentDiffusion state dict, checked and split by module prefix."""

    groups: dict[str, dict[str, torch.Tensor]]  # group name -> its state dict (prefix stripped)
    scale_factor: float
    skipped: dict[str, int]  # ignored prefix -> how many keys it skipped (prefixes that occurred)


def split_latent_diffusion_state_dict(
    sd: Mapping[str, torch.Tensor],
    *,
    groups: Mapping[str, str],
    ignored: Sequence[str],
    schedule: LdmSchedule,
    source: str,
    layout: str,
) -> LatentDiffusionParts:
    """Skip the `ignored` prefixes (EMA copy, training loss), group the rest by `groups` (prefix -> name; first
    match wins) and insist on nothing else but `scale_factor` and schedule buffers that match `schedule`."""
    skipped = {p: 0 for p in ignored}
    kept = {}
    for key, value in sd.items():
        prefix = next((p for p in ignored if key.startswith(p)), None)
        if prefix is None:
            kept[key] = value
        else:
            skipped[prefix] += 1
    split, rest = split_prefixes(kept, groups)
    unknown = [k for k in rest if k not in SCHEDULE_BUFFERS and k != "scale_factor"]
    if unknown:
        raise CheckpointMappingError(f"{source}: {len(unknown)} keys outside the {layout} layout (e.g. {unknown[:5]})")
    if "scale_factor" not in kept:
        raise CheckpointMappingError(f"{source}: no `scale_factor` (the config uses scale_by_std, so the file must hold it)")
    for name, group in split.items():
        if not group:
            raise CheckpointMappingError(f"{source}: no {name} weights (prefix missing)")
    check_schedule_buffers({k: kept[k] for k in rest}, schedule, what=source)
    return LatentDiffusionParts(split, float(kept["scale_factor"]), {p: n for p, n in skipped.items() if n})


class _ReleasedModel(Protocol):
    vocoder: torch.nn.Module

    def load_official_state_dict(self, sd: Mapping[str, torch.Tensor], *, source: str) -> None: ...

    def eval(self): ...


class _VocodedConfig(Protocol):
    vocoder: BigVGANConfig


ConfigT = TypeVar("ConfigT", bound=_VocodedConfig)
ModelT = TypeVar("ModelT", bound=_ReleasedModel)


def load_release_with_bigvgan(
    checkpoint: str | Path,
    vocoder_dir: str | Path,
    cfg: ConfigT,
    build: Callable[[ConfigT], ModelT],
    *,
    expected_mels: int,
    what: str,
) -> ModelT:
    """A model built by `build` and filled from the released checkpoint and BigVGAN folder (args.yml,
    best_netG.pt); the vocoder's hyper-parameters are those of the folder."""
    vocoder = load_bigvgan_folder(vocoder_dir, expected_mels=expected_mels)
    if vocoder.config != cfg.vocoder:
        cfg = replace(cfg, vocoder=vocoder.config)
    model = build(cfg)
    model.load_official_state_dict(read_checkpoint(checkpoint, what=what), source=str(checkpoint))
    model.vocoder.load_state_dict(vocoder.state_dict(), strict=True)
    return model.eval()
