"""AutoCap (paper section 3.1): frozen HTSAT + LAION-CLAP encoders, Q-Former, metadata-aware BART.

    x_clap  = LN(P_clap(CLAP(a)))                          one token
    x_audio = P_q(QFormer(LN(P_a(HTSAT(a)) + pos)))        `num_queries` tokens (4x fewer than HTSAT's)
    x_meta  = BART's own embeddings of the metadata tokens (delimiters: a small learned table)
    paper layout:    BART(x_clap <AUDIO> x_audio </AUDIO> <TITLE> .. </TITLE> <HQVC> .. </HQVC> <DESC> .. </DESC>)
    official layout, as the released code runs it (snap-research/GenAU
    AutoCap/src/models/pl_htsat_q_bart_captioning.py), which differs between its two paths:
      training (`forward_decoder`): BART-decoder(x_clap ++ BART-encoder(<s> x_audio meta-string </s>))
      captioning (`generate`):      BART-decoder(BART-encoder(x_clap <s> x_audio meta-string </s>))
    `autocap-full.ckpt` was trained with the first and is run by the official scripts with the
    second; `forward` follows the training path, `generate` the captioning path.

One factory (`build_autocap`) builds a model from an `AutoCapConfig`; `save_pretrained` /
`load_pretrained` write and read a folder (config json, safetensors, tokenizer files).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genau_core.autocap.configs import AUDIO_DELIMITERS, AutoCapConfig, GenerationSettings, get_config
from genau_core.autocap.encoders import HTSATEncoder, clap_waveform, prepare_waveform
from genau_core.autocap.qformer import QFormer
from genau_core.autocap.text import build_tokenizer, caption_labels, check_metadata, clean_text, metadata_ids, pad_ids

CONFIG_NAME = "autocap_config.json"
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_DIR = "tokenizer"


@dataclass
class EncoderInput:
    """What enters the BART encoder, plus the x_clap token the official layout's training path
    adds after it (its captioning path puts x_clap first in `embeds` instead)."""

    embeds: torch.Tensor  # (B, L, d)
    mask: torch.Tensor  # (B, L) 0/1
    clap_after: torch.Tensor | None = None  # (B, 1, d), official layout, training path only


@dataclass
class FrozenFeatures:
    """Outputs of the frozen encoders for a batch (deterministic: they can be cached)."""

    htsat_steps: torch.Tensor  # (B, T', C) frequency-pooled HTSAT time steps
    clap: torch.Tensor | None  # (B, joint) unit CLAP embeddings

    def to(self, device) -> "FrozenFeatures":
        return FrozenFeatures(self.htsat_steps.to(device), None if self.clap is None else self.clap.to(device))


@dataclass
class AutoCapBatch:
    """Model inputs of a batch of clips (tensors on CPU until `.to`)."""

    waveform: torch.Tensor | None  # (B, clip_samples) at the front-end rate, prepared
    clap_waveform: torch.Tensor | None  # (B, clap clip_samples) at CLAP's rate
    meta_ids: torch.Tensor  # (B, L) may hold delimiter ids >= vocab_size
    meta_mask: torch.Tensor  # (B, L)
    labels: torch.Tensor | None = None  # (B, T) caption targets, -100 = ignore
    features: FrozenFeatures | None = None  # when given, the waveforms are not needed

    def to(self, device) -> "AutoCapBatch":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return AutoCapBatch(
            move(self.waveform),
            move(self.clap_waveform),
            move(self.meta_ids),
            move(self.meta_mask),
            move(self.labels),
            move(self.features),
        )


class AutoCapModel(nn.Module):
    def __init__(self, cfg: AutoCapConfig, tokenizer):
        super().__init__()
        from transformers import BartForConditionalGeneration

        from genau_core.networks.laion_clap import LaionClapNet

        self.cfg = cfg
        self.tokenizer = tokenizer
        d = cfg.bart.d_model
        self.htsat = HTSATEncoder(cfg.frontend, cfg.htsat)
        self.clap = LaionClapNet(cfg.clap) if cfg.use_clap else None
        self.htsat_proj = nn.Linear(cfg.htsat.num_features, d)
        if cfg.audio_tokens == "qformer":
            self.audio_positions = nn.Embedding(cfg.audio_position_rows, d)
            self.audio_norm = nn.LayerNorm(d)
            self.qformer = QFormer(cfg.qformer, encoder_width=d)
            self.qformer_proj = nn.Linear(cfg.qformer.hidden_size, d)
        if cfg.use_clap:
            self.clap_proj = nn.Linear(cfg.clap.joint_embed_dim, d)
            self.clap_norm = nn.LayerNorm(d)
        self.delimiters = nn.Embedding(len(cfg.delimiter_tokens), d)
        self.bart = BartForConditionalGeneration(cfg.bart.hf_config())
        self.audio_dropout = nn.Dropout(cfg.audio_dropout)
        self.meta_dropout = nn.Dropout(cfg.meta_dropout)
        for enc in self.frozen_encoders():
            enc.requires_grad_(False)
        self.identity = "unknown"  # set by the loaders: sha256:... / random:seed=N

    # -- structure ------------------------------------------------------------------------
    def frozen_encoders(self) -> list[nn.Module]:
        return [self.htsat] + ([self.clap] if self.clap is not None else [])

    def bridge_modules(self) -> dict[str, nn.Module]:
        """What stage 1 trains: the Q-Former, the projections / norms and the delimiter table."""
        names = [
            "htsat_proj",
            "audio_positions",
            "audio_norm",
            "qformer",
            "qformer_proj",
            "clap_proj",
            "clap_norm",
            "delimiters",
        ]
        return {n: getattr(self, n) for n in names if hasattr(self, n)}

    def train(self, mode: bool = True) -> "AutoCapModel":
        super().train(mode)
        for enc in self.frozen_encoders():  # frozen encoders always run in inference mode
            enc.eval()
        return self

    @property
    def device(self) -> torch.device:
        return self.delimiters.weight.device

    @property
    def vocab_size(self) -> int:
        return self.cfg.bart.vocab_size

    def parameter_counts(self) -> dict[str, int]:
        parts = {"htsat": self.htsat, "bart": self.bart, **self.bridge_modules()}
        if self.clap is not None:
            parts["clap"] = self.clap
        return {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}

    @torch.no_grad()
    def init_from_bart(self) -> None:
        """Initialise from BART's current weights, as the official code does: opening delimiters
        = the <s> embedding, closing ones (a '/' in the name) = the </s> embedding; the audio
        position table = the first rows of BART's encoder position table."""
        emb = self.bart.get_encoder().embed_tokens.weight
        b = self.cfg.bart
        for i, name in enumerate(self.cfg.delimiter_tokens):
            self.delimiters.weight[i] = emb[b.eos_token_id if "/" in name else b.bos_token_id]
        if hasattr(self, "audio_positions"):
            table = self.bart.get_encoder().embed_positions.weight
            n = min(table.shape[0], self.audio_positions.weight.shape[0])
            self.audio_positions.weight[:n] = table[:n]

    # -- inputs -----------------------------------------------------------------------------
    def prepare(
        self,
        clips: Sequence[np.ndarray],
        metadata: Sequence[Mapping[str, str]] | None = None,
        captions: Sequence[str] | None = None,
        *,
        resampler: str = "soxr-hq",
    ) -> AutoCapBatch:
        """Mono clips at the front-end rate (any length; the first `clip_seconds` are used) ->
        a batch: prepared waveforms, CLAP waveforms, metadata prompt ids, caption labels."""
        cfg = self.cfg
        waves = [prepare_waveform(c, cfg.frontend) for c in clips]
        clap = [clap_waveform(w, cfg.frontend, cfg.clap, resampler=resampler) for w in waves] if cfg.use_clap else None
        meta = check_metadata(metadata, len(waves))
        meta_ids, meta_mask = pad_ids([metadata_ids(self.tokenizer, cfg, m) for m in meta], cfg.bart.pad_token_id)
        labels = caption_labels(self.tokenizer, cfg, captions) if captions is not None else None
        return AutoCapBatch(
            waveform=torch.from_numpy(np.stack(waves)),
            clap_waveform=torch.from_numpy(np.stack(clap)) if clap is not None else None,
            meta_ids=meta_ids,
            meta_mask=meta_mask,
            labels=labels,
        )

    def embed_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids -> embeddings: BART's embedding layer below `vocab_size`, the delimiter
        table at and above it."""
        special = ids >= self.vocab_size
        base = self.bart.get_encoder().embed_tokens(ids.masked_fill(special, self.cfg.bart.pad_token_id))
        extra = self.delimiters((ids - self.vocab_size).clamp(min=0))
        return torch.where(special[..., None], extra, base)

    def delimiter_id(self, token: str) -> int:
        return self.vocab_size + self.cfg.delimiter_tokens.index(token)

    @torch.no_grad()
    def frozen_features(self, waveform: torch.Tensor, clap_waveform: torch.Tensor | None) -> FrozenFeatures:
        if self.clap is not None and clap_waveform is None:
            raise ValueError("this model uses CLAP: the batch needs clap_waveform")
        clap = self.clap.embed_audio(clap_waveform) if self.clap is not None else None
        return FrozenFeatures(self.htsat.time_steps(waveform), clap)

    def encode_audio(self, batch: AutoCapBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> x_audio (B, audio_token_count, d) and x_clap (B, 1, d) or None."""
        f = batch.features if batch.features is not None else self.frozen_features(batch.waveform, batch.clap_waveform)
        feats, clap = self.htsat.expand(f.htsat_steps), f.clap
        x = self.audio_dropout(self.htsat_proj(feats))
        if self.cfg.audio_tokens == "qformer":
            pos = self.audio_positions(torch.arange(x.shape[1], device=x.device))
            x = self.qformer_proj(self.qformer(self.audio_norm(x + pos)))
        x_clap = self.clap_norm(self.clap_proj(clap))[:, None] if clap is not None else None
        return x, x_clap

    def encoder_input(self, batch: AutoCapBatch, *, generation: bool = False) -> EncoderInput:
        """The encoder input sequence of `batch` in this model's layout. The official layout
        differs between the released code's paths: for training (`generation=False`,
        `forward_decoder`) x_clap joins after the encoder (`clap_after`); for captioning
        (`generation=True`, `generate`) it is prepended to the encoder input, before <s>."""
        x_audio, x_clap = self.encode_audio(batch)
        b, dev = x_audio.shape[0], x_audio.device
        meta = self.meta_dropout(self.embed_ids(batch.meta_ids))
        ones = lambda n: torch.ones((b, n), dtype=torch.long, device=dev)  # noqa: E731
        token = lambda i: self.embed_ids(torch.full((b, 1), i, dtype=torch.long, device=dev))  # noqa: E731
        if self.cfg.layout == "paper":
            boa, eoa = (token(self.delimiter_id(t)) for t in AUDIO_DELIMITERS)
            parts = ([x_clap] if x_clap is not None else []) + [boa, x_audio, eoa, meta]
            head = sum(p.shape[1] for p in parts[:-1])
            return EncoderInput(torch.cat(parts, dim=1), torch.cat([ones(head), batch.meta_mask], dim=1))
        bos = token(self.cfg.bart.bos_token_id)
        embeds = torch.cat([bos, x_audio, meta], dim=1)
        mask = torch.cat([ones(1 + x_audio.shape[1]), batch.meta_mask], dim=1)
        if generation and x_clap is not None:
            # official generate(): add_bos_embds, then torch.cat([clap_embeddings, encoder_outputs])
            # and only then self.decoder.model.encoder(...)
            return EncoderInput(torch.cat([x_clap, embeds], dim=1), torch.cat([ones(1), mask], dim=1))
        return EncoderInput(embeds, mask, x_clap)

    def encode(self, batch: AutoCapBatch, *, generation: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """-> the states the decoder cross-attends to and their mask (`generation`: the
        captioning path's input order, see `encoder_input`)."""
        enc_in = self.encoder_input(batch, generation=generation)
        hidden = self.bart.get_encoder()(inputs_embeds=enc_in.embeds, attention_mask=enc_in.mask).last_hidden_state
        if enc_in.clap_after is None:
            return hidden, enc_in.mask
        ones = torch.ones((hidden.shape[0], 1), dtype=enc_in.mask.dtype, device=hidden.device)
        return torch.cat([enc_in.clap_after, hidden], dim=1), torch.cat([ones, enc_in.mask], dim=1)

    def describe_input(self, metadata: Mapping[str, str] | None = None, *, generation: bool = False) -> list[str]:
        """The symbolic encoder input for one clip (delimiters and metadata tokens by name),
        e.g. ['x_clap', '<AUDIO>', 'x_audio*256', '</AUDIO>', '<TITLE>', 'ĠA', ..., '</TITLE>']
        (`generation`: the captioning path's order, see `encoder_input`)."""
        ids = metadata_ids(self.tokenizer, self.cfg, metadata)
        names = [
            self.cfg.delimiter_tokens[i - self.vocab_size]
            if i >= self.vocab_size
            else self.tokenizer.convert_ids_to_tokens(i)
            for i in ids
        ]
        audio = f"x_audio*{self.cfg.audio_token_count}"
        if self.cfg.layout == "paper":
            return (["x_clap"] if self.cfg.use_clap else []) + [AUDIO_DELIMITERS[0], audio, AUDIO_DELIMITERS[1]] + names
        clap = ["x_clap" if generation else "(after the encoder: x_clap)"] if self.cfg.use_clap else []
        return clap + [self.tokenizer.bos_token, audio] + names

    # -- training ---------------------------------------------------------------------------
    def forward(self, batch: AutoCapBatch, *, label_smoothing: float = 0.0) -> torch.Tensor:
        """Mean token cross-entropy of the caption labels (teacher forcing)."""
        if batch.labels is None:
            raise ValueError("AutoCap forward needs caption labels; use generate() to caption")
        from transformers.models.bart.modeling_bart import shift_tokens_right

        hidden, mask = self.encode(batch)
        b = self.cfg.bart
        decoder_input_ids = shift_tokens_right(batch.labels, b.pad_token_id, b.decoder_start_token_id)
        logits = self.bart(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            batch.labels.reshape(-1),
            ignore_index=-100,
            label_smoothing=label_smoothing,
        )

    # -- inference --------------------------------------------------------------------------
    def generation_config(self, settings: GenerationSettings | None = None, **overrides):
        from transformers import GenerationConfig

        s = settings or self.cfg.generation
        b = self.cfg.bart
        kw = dict(
            num_beams=s.num_beams,
            max_length=s.max_length,
            min_length=s.min_length,
            no_repeat_ngram_size=s.no_repeat_ngram_size,
            early_stopping=s.early_stopping,
            repetition_penalty=s.repetition_penalty,
            length_penalty=s.length_penalty,
            do_sample=False,
            bos_token_id=b.bos_token_id,
            eos_token_id=b.eos_token_id,
            pad_token_id=b.pad_token_id,
            decoder_start_token_id=b.decoder_start_token_id,
            forced_bos_token_id=b.bos_token_id if s.force_bos else None,
            forced_eos_token_id=b.eos_token_id if s.force_eos else None,
        )
        kw.update(overrides)
        return GenerationConfig(**kw)

    @torch.no_grad()
    def generate_ids(
        self, batch: AutoCapBatch, settings: GenerationSettings | None = None, **overrides
    ) -> torch.Tensor:
        """Beam search over BART's encoder run on the captioning-path input (`encoder_input(...,
        generation=True)`: for the official layout x_clap enters the encoder first, as in the
        official `generate()`), through `bart.generate(encoder_outputs=...)` as the official code."""
        from transformers.modeling_outputs import BaseModelOutput

        was_training = self.training
        self.eval()
        try:
            gc = self.generation_config(settings, **overrides)
            hidden, mask = self.encode(batch, generation=True)
            return self.bart.generate(
                encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=mask, generation_config=gc
            )
        finally:
            self.train(was_training)

    def decode(self, ids: torch.Tensor) -> list[str]:
        return [clean_text(t) for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def generate(self, batch: AutoCapBatch, settings: GenerationSettings | None = None, **overrides) -> list[str]:
        return self.decode(self.generate_ids(batch.to(self.device), settings, **overrides))


# -- factory / persistence -------------------------------------------------------------------
def build_autocap(
    cfg: AutoCapConfig | str,
    *,
    seed: int = 0,
    tokenizer=None,
    device: str | torch.device = "cpu",
) -> AutoCapModel:
    """A model with seeded random weights (delimiters and audio positions from BART's)."""
    if isinstance(cfg, str):
        cfg = get_config(cfg)
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer(cfg)
    torch.manual_seed(seed)
    model = AutoCapModel(cfg, tokenizer)
    if cfg.bart.embedding_init_std is not None:
        with torch.no_grad():
            emb = model.bart.get_input_embeddings().weight
            emb.normal_(0.0, cfg.bart.embedding_init_std)
            emb[cfg.bart.pad_token_id].zero_()
    model.init_from_bart()
    model.identity = f"random:seed={seed}"
    return model.to(device).train(False)


# Front-end tensors every model computes from its configuration (STFT kernels, mel matrices):
# not written by `save_pretrained` (for autocap-tiny they would be 90% of the file).
DERIVED_SUFFIXES = ("stft.conv_real.weight", "stft.conv_imag.weight", "melW")


def persisted_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], set[str]]:
    """(state dict to write, names left out): derived front-end tensors and the second and
    later names of tied tensors (BART's shared embedding / lm_head) are left out."""
    out: dict[str, torch.Tensor] = {}
    left_out: set[str] = set()
    seen: set[tuple[int, int]] = set()
    for name, t in model.state_dict().items():
        key = (t.data_ptr(), t.numel())
        if name.endswith(DERIVED_SUFFIXES) or (t.numel() and key in seen):
            left_out.add(name)
            continue
        seen.add(key)
        out[name] = t.detach().cpu().contiguous()
    return out, left_out


def save_pretrained(model: AutoCapModel, folder: str | Path) -> Path:
    """Write `autocap_config.json`, `model.safetensors` (parameters and persistent buffers, see
    `persisted_state`) and the tokenizer (with its delimiters) under `tokenizer/`."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_NAME).write_text(json.dumps(model.cfg.to_dict(), indent=2) + "\n")
    state, _ = persisted_state(model)
    # one metadata key only: safetensors writes a map in random order, and the file should be
    # byte-identical when training is (its sha256 is the model identity)
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
    model.tokenizer.save_pretrained(str(folder / TOKENIZER_DIR))
    return folder


def is_pretrained_folder(path: str | Path) -> bool:
    return (Path(path) / CONFIG_NAME).is_file()


def load_pretrained(folder: str | Path, *, device: str | torch.device = "cpu") -> AutoCapModel:
    """Inverse of `save_pretrained`; a missing or malformed file is an error naming it."""
    from safetensors.torch import load_file

    from genau_core.checkpoints import sha256_file

    folder = Path(folder)
    cfg_path, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for p in (cfg_path, weights, folder / TOKENIZER_DIR):
        if not p.exists():
            raise FileNotFoundError(f"{p}: missing (not an AutoCap folder written by save_pretrained)")
    try:
        cfg = AutoCapConfig.from_dict(json.loads(cfg_path.read_text()))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{cfg_path}: not an AutoCap configuration ({e})") from None
    tokenizer = build_tokenizer(cfg, str(folder / TOKENIZER_DIR))
    model = AutoCapModel(cfg, tokenizer)
    try:
        state = load_file(str(weights))
    except Exception as e:  # safetensors raises several types for corrupt files
        raise ValueError(f"{weights}: cannot read ({type(e).__name__}: {e})") from None
    expected, derived = persisted_state(model)
    problems = []
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    for what, items in (("missing", missing), ("unexpected", extra), ("mis-shaped", shapes)):
        if items:
            problems.append(f"{len(items)} {what} tensors, e.g. {items[:4]}")
    if problems:
        raise ValueError(f"{weights}: does not match {cfg_path}: " + "; ".join(problems))
    result = model.load_state_dict(state, strict=False)
    assert set(result.missing_keys) <= derived and not result.unexpected_keys
    model.identity = f"sha256:{sha256_file(weights)}"
    return model.to(device).train(False)
