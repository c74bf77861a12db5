"""Pieces shared by several baselines: the T5 encoder configurations (Tango, Make-An-Audio 2), the
reading of a released LatentDiffusion checkpoint with its BigVGAN folder (Make-An-Audio 1 and 2), and
the text-encoder weights such a checkpoint may leave out.

Text encoders a checkpoint may lack. The official Make-An-Audio scripts load the LatentDiffusion
state dict with `strict=False` (`gen_wav.py` `initialize_model`), so a checkpoint without
`cond_stage_model.*` still runs there, with the text encoders as their constructors built them:
- Make-An-Audio 2's T5: `T5EncoderModel.from_pretrained("google/t5-v1_1-large")`, i.e. the hub
  weights. We take them from the `t5-v1_1-large` folder (`model.safetensors` / `pytorch_model.bin`;
  the folder the tokenizer comes from), which is the same computation.
- The CLAP text branch (`FrozenCLAPEmbedder` / `FrozenCLAPFLANEmbedder`): bert-base-uncased from the
  hub plus a freshly initialised, untrained projection; the constructor reads CLAP_weights_2022.pth's
  `caption_encoder.*` tensors but never loads them. A random projection is nothing we can reproduce
  or would want to score, so we take the whole text branch from CLAP_weights_2022.pth (MS-CLAP 2022,
  `{"model": {"caption_encoder.*": ...}}`, the network these embedders are) and refuse when it is
  not there. The source used is recorded (`text_sources`).
"""

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
    optional: Sequence[str] = (),
) -> LatentDiffusionParts:
    """Skip the `ignored` prefixes (EMA copy, training loss), group the rest by `groups` (prefix -> name; first
    match wins) and insist on nothing else but `scale_factor` and schedule buffers that match `schedule`.
    Groups named in `optional` may be empty (their weights then come from elsewhere, see the module docstring)."""
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
        raise CheckpointMappingError(
            f"{source}: no `scale_factor` (the config uses scale_by_std, so the file must hold it)"
        )
    for name, group in split.items():
        if not group and name not in optional:
            raise CheckpointMappingError(f"{source}: no {name} weights (prefix missing)")
    check_schedule_buffers({k: kept[k] for k in rest}, schedule, what=source)
    return LatentDiffusionParts(split, float(kept["scale_factor"]), {p: n for p, n in skipped.items() if n})


# -- text encoders a checkpoint may leave out ------------------------------------------------------------

CLAP_WEIGHTS_FILE = "CLAP_weights_2022.pth"  # the official configs: useful_ckpts/CLAP/CLAP_weights_2022.pth
T5_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def read_caption_encoder(path: str | Path) -> dict[str, torch.Tensor]:
    """`caption_encoder.*` of an MS-CLAP 2022 file (`{"model": state_dict}`): the CLAP text branch."""
    sd = read_checkpoint(path, what="MS-CLAP 2022 weights", container="model")
    text = {k: v for k, v in sd.items() if k.startswith("caption_encoder.")}
    if not text:
        raise CheckpointMappingError(
            f"{path}: no caption_encoder.* tensors (not an MS-CLAP 2022 file such as {CLAP_WEIGHTS_FILE})"
        )
    return text


def t5_weight_file(folder: str | Path) -> Path | None:
    """The weight file of a transformers T5 folder (google/t5-v1_1-large's hub layout), if there is one."""
    for name in T5_WEIGHT_FILES:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def read_t5_encoder(folder: str | Path) -> dict[str, torch.Tensor]:
    """The encoder half (`shared.*`, `encoder.*`) of a transformers T5 folder, as `T5EncoderModel.from_pretrained`
    takes it."""
    path = t5_weight_file(folder)
    if path is None:
        raise CheckpointMappingError(f"{folder}: no T5 weights ({' or '.join(T5_WEIGHT_FILES)})")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(path))
    else:
        sd = read_checkpoint(path, what="T5 weights", container=None)
    encoder = {k: v for k, v in sd.items() if k.startswith(("shared.", "encoder."))}
    if not encoder:
        raise CheckpointMappingError(f"{path}: no shared.* / encoder.* tensors (not a T5 checkpoint)")
    return encoder


READERS: dict[str, Callable[[str | Path], dict[str, torch.Tensor]]] = {
    "clap": read_caption_encoder,
    "t5": read_t5_encoder,
}
HINTS = {
    "clap": f"put {CLAP_WEIGHTS_FILE} (MS-CLAP 2022, whose caption_encoder is this text branch) beside the checkpoint "
    f"or in its CLAP/ folder",
    "t5": "put google/t5-v1_1-large's files (config.json, model.safetensors or pytorch_model.bin) in the checkpoint "
    "folder's t5-v1_1-large/ folder",
}


def text_weights_elsewhere(
    kind: str, prefix: str, sources: Mapping[str, str | Path] | None, *, source: str
) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict, where from) for a text encoder the checkpoint lacks (`kind` "clap" or "t5")."""
    path = (sources or {}).get(kind)
    if path is None:
        raise CheckpointMappingError(
            f"{source}: no {prefix}* weights in the checkpoint (the official loader, strict=False, would run the "
            f"encoder as its constructor built it); {HINTS[kind]}"
        )
    return READERS[kind](path), str(path)


class _ReleasedModel(Protocol):
    vocoder: torch.nn.Module

    def load_official_state_dict(
        self, sd: Mapping[str, torch.Tensor], *, source: str, text_sources: Mapping[str, str | Path] | None = None
    ) -> None: ...

    def eval(self): ...


class _VocodedConfig(Protocol):
    vocoder: BigVGANConfig


class ModuleBundle:
    """A model made of named torch modules (`modules()`): moved and counted together."""

    def modules(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def to(self, device):
        for m in self.modules().values():
            m.to(device).eval()
        return self

    def parameter_count(self) -> int:
        return sum(p.numel() for m in self.modules().values() for p in m.parameters())


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
    text_sources: Mapping[str, str | Path] | None = None,
) -> ModelT:
    """A model built by `build` and filled from the released checkpoint and BigVGAN folder (args.yml,
    best_netG.pt); the vocoder's hyper-parameters are those of the folder. `text_sources` ("clap" / "t5" ->
    file or folder) supply text encoders the checkpoint lacks (read only then)."""
    vocoder = load_bigvgan_folder(vocoder_dir, expected_mels=expected_mels)
    if vocoder.config != cfg.vocoder:
        cfg = replace(cfg, vocoder=vocoder.config)
    model = build(cfg)
    sd = read_checkpoint(checkpoint, what=what)
    model.load_official_state_dict(sd, source=str(checkpoint), text_sources=text_sources)
    model.vocoder.load_state_dict(vocoder.state_dict(), strict=True)
    return model.eval()
