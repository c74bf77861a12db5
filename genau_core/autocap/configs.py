"""Typed, JSON-serialisable configurations of AutoCap (paper section 3.1); one factory builds a
model from any of them (`genau_core.autocap.model.build_autocap`).

Sources of the numbers: the paper and the official `AutoCap/settings/{pretraining,finetuning}.yaml`
and modules of snap-research/GenAU:
- front end: 32 kHz, 10 s, STFT window 1024 / hop 320, 64 Slaney mels 50-14000 Hz (torchlibrosa);
- HTSAT: the HTSAT-tiny geometry (embed 96, depths 2-2-6-2, heads 4-8-16-32, window 8, spec 256);
  its time-aligned output is the "fine_grained_embedding" (frequency-pooled last stage, each of
  the 32 time steps repeated to the 1024 input frames);
- CLAP: LAION-CLAP HTSAT-base (`music_speech_audioset_epoch_15_esc_89.98.pt`), 48 kHz, 512-d;
- Q-Former: 256 learned queries, hidden 256, 8 heads, 2 layers (BERT layers from
  `bert-base-uncased`, hence an intermediate size of 3072 and LayerNorm eps 1e-12);
- decoder: `facebook/bart-base`; prompt (metadata) at most 128 tokens, captions at most 30.

Two input layouts are supported (`layout`):
- "paper" (default for models trained here), equation (3) of the paper:
  `x_clap <AUDIO> x_audio </AUDIO> [bom]_1 meta_1 [eom]_1 ... [bom]_M meta_M [eom]_M` enters the
  BART encoder; every metadata field has its own pair of delimiter tokens.
- "official", what the released code computes and `autocap-full.ckpt` was trained with:
  `<s> x_audio "<HQVC> video caption </HQVC> \\n <TITLE> title </TITLE>" </s>` enters the BART
  encoder. Its training path (`forward_decoder`) prepends `x_clap` to the encoder's *output*;
  its captioning path (`generate`, used by every official inference script) prepends `x_clap` to
  the encoder's *input*, before `<s>`. `AutoCapModel` follows each path where the official code
  runs it (`forward` = training order, `generate` = captioning order).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import asdict, dataclass, field

from genau_core.networks.htsat import HTSATConfig
from genau_core.networks.laion_clap import HTSAT_BASE, LaionClapConfig, RobertaTextConfig

LAYOUTS = ("paper", "official")
AUDIO_TOKEN_MODES = ("qformer", "all")

# Metadata fields a caller may give (the `Captioner` interface).
META_FIELDS = ("title", "video_caption", "description")

# Delimiters of the paper layout: one pair around the audio tokens, one pair per metadata field.
AUDIO_DELIMITERS = ("<AUDIO>", "</AUDIO>")
FIELD_DELIMITERS = {
    "title": ("<TITLE>", "</TITLE>"),
    "video_caption": ("<HQVC>", "</HQVC>"),
    "description": ("<DESC>", "</DESC>"),
}

# The official code: tags per metadata key, the order keys are joined in (`get_meta_dict`:
# "description" is not in that order, so the released code never feeds it), and the 12 added
# special tokens in tokenizer order (ids 50265..50276 for bart-base).
OFFICIAL_TAGS = {
    "labels": ("<LBL>", "</LBL>"),
    "video_caption": ("<HQVC>", "</HQVC>"),
    "title": ("<TITLE>", "</TITLE>"),
    "description": ("<DESC>", "</DESC>"),
    "subtitle": ("<SUB>", "</SUB>"),
    "videollama_caption": ("<AVC>", "</AVC>"),
}
OFFICIAL_META_ORDER = ("labels", "video_caption", "title", "subtitle", "videollama_caption")
OFFICIAL_SPECIAL_TOKENS = (
    "<HQVC>", "</HQVC>", "<AVC>", "</AVC>", "<TITLE>", "</TITLE>",
    "<DESC>", "</DESC>", "<SUB>", "</SUB>", "<LBL>", "</LBL>",
)  # fmt: skip


@dataclass(frozen=True)
class FrontEndConfig:
    """Waveform -> log-mel of the HTSAT branch (torchlibrosa numerics, `genau_core.networks.stft`)."""

    sample_rate: int = 32000
    clip_seconds: float = 10.0
    n_fft: int = 1024
    hop_length: int = 320
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 14000.0

    @property
    def clip_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def frames(self) -> int:
        return 1 + self.clip_samples // self.hop_length


@dataclass(frozen=True)
class QFormerConfig:
    """The audio Q-Former: learned queries that self-attend, then cross-attend to the HTSAT tokens
    (post-LayerNorm BERT layers with separate query feed-forwards, as BLIP-2 / the official code)."""

    num_queries: int = 256
    hidden_size: int = 256
    num_heads: int = 8
    num_layers: int = 2
    intermediate_size: int = 3072
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1
    attention_dropout: float = 0.1
    score_clamp: float = 100.0  # attention logits are clamped to +-this before the softmax (official)

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"Q-Former: hidden size {self.hidden_size} is not a multiple of {self.num_heads} heads")
        if self.num_queries < 1 or self.num_layers < 1:
            raise ValueError("Q-Former: needs at least one query and one layer")


@dataclass(frozen=True)
class BartSpec:
    """The BART encoder-decoder (transformers `BartConfig`); defaults are facebook/bart-base's."""

    vocab_size: int = 50265
    d_model: int = 768
    encoder_layers: int = 6
    decoder_layers: int = 6
    encoder_attention_heads: int = 12
    decoder_attention_heads: int = 12
    encoder_ffn_dim: int = 3072
    decoder_ffn_dim: int = 3072
    max_position_embeddings: int = 1024
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.1
    activation_function: str = "gelu"
    init_std: float = 0.02
    scale_embedding: bool = False
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2
    decoder_start_token_id: int = 2
    # std of the word-embedding init when BART is built from scratch (None: init_std). The
    # tiny model's embeddings stay random and frozen in both stages, so they need a scale that
    # separates tokens (0.02 in 64 dimensions leaves the logits nearly uniform).
    embedding_init_std: float | None = None

    def hf_config(self):
        from transformers import BartConfig

        kw = asdict(self)
        kw.pop("embedding_init_std")
        return BartConfig(**kw, forced_bos_token_id=self.bos_token_id, forced_eos_token_id=self.eos_token_id)


@dataclass(frozen=True)
class GenerationSettings:
    """Beam search of `generate`. The official `generate` passes num_beams (2 in its CLI),
    max_length 30, min_length 2 and repetition_penalty 1.0; the rest comes from bart-base's
    config (no_repeat_ngram_size 3, early stopping, forced <s> first and </s> last)."""

    num_beams: int = 2
    max_length: int = 30
    min_length: int = 2
    no_repeat_ngram_size: int = 3
    early_stopping: bool = True
    repetition_penalty: float = 1.0
    length_penalty: float = 1.0
    force_bos: bool = True
    force_eos: bool = True


@dataclass(frozen=True)
class AutoCapConfig:
    name: str
    frontend: FrontEndConfig = field(default_factory=FrontEndConfig)
    htsat: HTSATConfig = field(default_factory=HTSATConfig)  # the HTSAT-tiny geometry
    clap: LaionClapConfig = HTSAT_BASE
    use_clap: bool = True
    qformer: QFormerConfig = field(default_factory=QFormerConfig)
    audio_tokens: str = "qformer"  # "qformer": Q-Former queries; "all": every HTSAT token into BART
    bart: BartSpec = field(default_factory=BartSpec)
    # "tiny:<vocab>" builds the in-process byte-level BPE; anything else is a local directory
    # holding the BART tokenizer files (vocab.json + merges.txt or tokenizer.json).
    tokenizer: str = "bart-base"
    layout: str = "paper"
    meta_fields: tuple[str, ...] = META_FIELDS
    special_tokens: tuple[str, ...] = ()  # delimiter table order; () = derived from layout/meta_fields
    max_prompt_tokens: int = 128
    max_caption_tokens: int = 30
    audio_dropout: float = 0.2
    meta_dropout: float = 0.2
    # rows of the learned position table added to the HTSAT tokens before the Q-Former
    # (official: a copy of BART's 1026-row table, indexed from 0)
    audio_position_rows: int = 1026
    generation: GenerationSettings = field(default_factory=GenerationSettings)

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"AutoCap {self.name}: layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.audio_tokens not in AUDIO_TOKEN_MODES:
            raise ValueError(f"AutoCap {self.name}: audio_tokens must be one of {AUDIO_TOKEN_MODES}")
        if self.frontend.n_mels != self.htsat.n_mels:
            raise ValueError(
                f"AutoCap {self.name}: front end has {self.frontend.n_mels} mels, HTSAT expects {self.htsat.n_mels}"
            )
        if self.frontend.frames > self.htsat.max_frames:
            raise ValueError(
                f"AutoCap {self.name}: {self.frontend.clip_seconds:g} s at hop {self.frontend.hop_length} gives "
                f"{self.frontend.frames} frames; the HTSAT geometry accepts at most {self.htsat.max_frames}"
            )
        known = set(OFFICIAL_TAGS) if self.layout == "official" else set(FIELD_DELIMITERS)
        unknown = [f for f in self.meta_fields if f not in known]
        if unknown:
            raise ValueError(f"AutoCap {self.name}: unknown metadata fields {unknown}; known: {sorted(known)}")
        if self.audio_tokens == "qformer" and self.audio_position_rows < self.htsat_tokens:
            raise ValueError(
                f"AutoCap {self.name}: {self.htsat_tokens} HTSAT tokens but only {self.audio_position_rows} audio "
                "positions"
            )
        needed = self.max_encoder_tokens
        if needed > self.bart.max_position_embeddings:
            raise ValueError(
                f"AutoCap {self.name}: the encoder input can reach {needed} tokens but BART has "
                f"{self.bart.max_position_embeddings} positions"
            )
        if self.generation.max_length > self.max_caption_tokens:
            raise ValueError(f"AutoCap {self.name}: generation max_length exceeds max_caption_tokens")

    # -- derived geometry ---------------------------------------------------------------
    @property
    def htsat_tokens(self) -> int:
        """Time-aligned HTSAT tokens per clip (1024 for the official geometry)."""
        return self.htsat.max_frames

    @property
    def audio_token_count(self) -> int:
        return self.qformer.num_queries if self.audio_tokens == "qformer" else self.htsat_tokens

    @property
    def delimiter_tokens(self) -> tuple[str, ...]:
        if self.special_tokens:
            return self.special_tokens
        if self.layout == "official":
            return OFFICIAL_SPECIAL_TOKENS
        out = list(AUDIO_DELIMITERS)
        for f in self.meta_fields:
            out += FIELD_DELIMITERS[f]
        return tuple(out)

    @property
    def max_encoder_tokens(self) -> int:
        """Longest sequence that enters the BART encoder (its position table must hold it)."""
        if self.layout == "official":
            # <s> audio meta(<= max_prompt) </s>, and x_clap in front when captioning (official
            # generate(); training adds it after the encoder). The official code reserves the
            # CLAP position too: adjust_max_pos_embeds(audio + text + 20 + use_clap_embeds).
            return int(self.use_clap) + 1 + self.audio_token_count + self.max_prompt_tokens + 1
        return int(self.use_clap) + 2 + self.audio_token_count + self.max_prompt_tokens

    # -- (de)serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict:
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "AutoCapConfig":
        return _from_dict(cls, d)

    def replace(self, **changes) -> "AutoCapConfig":
        return dataclasses.replace(self, **changes)


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _from_dict(cls, d: dict):
    """Rebuild nested frozen dataclasses; JSON lists become tuples where the field is a tuple."""
    if not isinstance(d, dict):
        raise TypeError(f"{cls.__name__}: expected a dict, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            continue
        v, t = d[f.name], hints[f.name]
        if dataclasses.is_dataclass(t):
            v = _from_dict(t, v)
        elif typing.get_origin(t) is tuple and isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)


# -- the named configurations ----------------------------------------------------------------
AUTOCAP = AutoCapConfig(
    name="autocap", layout="official", meta_fields=("video_caption", "title"), special_tokens=OFFICIAL_SPECIAL_TOKENS
)
"""The released model (`autocap-full.ckpt`): official layout, bart-base, 256 queries."""

AUTOCAP_PAPER = AutoCapConfig(name="autocap-paper")
"""The full-size architecture with the paper's input layout, for training from pretrained parts."""


def tiny_clap_config(joint_embed_dim: int = 64) -> LaionClapConfig:
    """A LAION-CLAP geometry small enough to ship: 10 s at 48 kHz with a hop of 1920 (251 frames
    into a 64-wide, 16-mel HTSAT) and a 2-layer 32-d RoBERTa text tower (unused by AutoCap)."""
    return LaionClapConfig(
        htsat=HTSATConfig(
            spec_size=64, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 4), window_size=4, num_classes=6, n_mels=16
        ),
        text=RobertaTextConfig(
            vocab_size=64, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, max_position_embeddings=18
        ),
        clip_samples=480000,
        window_size=2048,
        hop_size=1920,
        joint_embed_dim=joint_embed_dim,
        text_max_length=16,
        tokenizer="tiny",
    )


AUTOCAP_TINY = AutoCapConfig(
    name="autocap-tiny",
    frontend=FrontEndConfig(n_fft=2048, hop_length=1280, n_mels=16),  # 251 frames per 10 s
    htsat=HTSATConfig(
        spec_size=64, embed_dim=16, depths=(2, 2, 2), num_heads=(1, 2, 4), window_size=4, num_classes=6, n_mels=16
    ),
    clap=tiny_clap_config(),
    qformer=QFormerConfig(num_queries=32, hidden_size=32, num_heads=4, num_layers=2, intermediate_size=64),
    bart=BartSpec(
        vocab_size=512,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_position_embeddings=192,
        init_std=0.1,  # a random tiny BART learns to use its cross-attention much faster than at 0.02
        embedding_init_std=0.2,
    ),
    tokenizer="tiny:512",
    audio_position_rows=258,
)
"""Small enough to train on CPU in minutes and ship in the package (see `pretrained.py`)."""

CONFIGS = {c.name: c for c in (AUTOCAP, AUTOCAP_PAPER, AUTOCAP_TINY)}


def get_config(name: str) -> AutoCapConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown AutoCap config {name!r}; known: {', '.join(CONFIGS)}") from None


def micro_config(**changes) -> AutoCapConfig:
    """A configuration for unit tests (builds and runs in well under a second): 2 s clips,
    8 Q-Former queries, a 1+1-layer 32-d BART, the tiny tokenizer. `changes` replace fields."""
    cfg = dataclasses.replace(
        AUTOCAP_TINY,
        name="autocap-micro",
        frontend=FrontEndConfig(clip_seconds=2.0, n_fft=512, hop_length=320, n_mels=16),  # 201 frames
        clap=dataclasses.replace(tiny_clap_config(32), clip_samples=96000, window_size=1024, hop_size=480),
        qformer=QFormerConfig(num_queries=8, hidden_size=16, num_heads=2, num_layers=1, intermediate_size=32),
        bart=dataclasses.replace(
            AUTOCAP_TINY.bart,
            d_model=32,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            max_position_embeddings=160,
        ),
    )
    return dataclasses.replace(cfg, **changes)
