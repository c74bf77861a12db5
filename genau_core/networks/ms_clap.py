"""Microsoft CLAP ("MS-CLAP") 2022 and 2023, computed as `msclap` 1.3.x does.

Architecture (`msclap.models.clap.CLAP`): an audio encoder and a text encoder, each followed
by msclap's `Projection` (`linear1` -> GELU -> `linear2` -> dropout, residual sum of both
linear outputs, `layer_norm`; no biases in the linears) into a 1024-d space. Embeddings are
returned as msclap returns them (not normalised; cosine similarity normalises).

- **ms-clap-2022** (`CLAP_weights_2022.pth`, config_2022.yml): PANNs-style Cnn14 on 44.1 kHz
  audio (torchlibrosa front end: window 1024, hop 320, 64 mels, 50-14000 Hz; the yaml's
  `n_fft: 1028` is unused), 2048-d `relu(fc1)` embedding; text: BERT base uncased, the
  `[CLS]` token of the last hidden layer; `text_len` 100; 5 s clips.
- **ms-clap-2023** (`CLAP_weights_2023.pth`, config_2023.yml): HTS-AT (tiny geometry, 768-d)
  on 44.1 kHz audio; text: GPT-2, the hidden state at index `count(ids != 0) - 1`; texts get
  `" <|endoftext|>"` appended and are padded with `!` (id 0); `text_len` 77; 7 s clips.
  msclap's `HTSATWrapper` ignores the yaml's audio settings and builds its front end from
  `msclap/models/config.py`: a **32 kHz** mel matrix (window 1024, hop 320, 64 mels,
  50-14000 Hz) applied to the 44.1 kHz STFT. We reproduce that. As upstream, the STFT
  kernels and mel matrix stored in the checkpoint are the ones used; if they differ from this
  configuration a warning names the file.

Audio preparation (`CLAPWrapper.load_audio_into_tensor`): a clip no longer than `duration`
seconds is repeated `ceil(target / n)` times and cut to the target length; a longer clip is
cut to its **first** `duration` seconds (upstream picks a random offset: our crop is
deterministic). No int16 round trip (msclap reads float audio).

Text preparation (`CLAPWrapper.preprocess_text`): `padding="max_length"` to `text_len` with
**no truncation** (transformers only defaults to truncation when `padding` is off), so a text
longer than `text_len` tokens is encoded whole, unpadded. Texts are batched by encoded length
(upstream would fail to collate a batch mixing such lengths).

Checkpoints are msclap's `{"model": state_dict}` files (keys `audio_encoder.base.*`,
`audio_encoder.projection.*`, `caption_encoder.base.*`, `caption_encoder.projection.*`,
`logit_scale`); `convert_ms_clap_state_dict` maps them to our module (`MsClapNet`) and
`to_ms_clap_state_dict` maps back.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Union

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
    LogMelFilterBank,
    PowerSpectrogram,
    dft_kernels,
    slaney_mel_matrix,
)


# -- configuration ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MsCnn14Config:
    """msclap `Cnn14` (models/audio.py): six conv blocks, `fc1` to `out_emb`, AudioSet head."""

    channels: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    out_emb: int = 2048
    num_classes: int = 527

    def __post_init__(self) -> None:
        if len(self.channels) != 6:
            raise ValueError(f"Cnn14 has 6 conv blocks, got {len(self.channels)} channel counts")


@dataclass(frozen=True)
class BertTextConfig:
    """`BertModel` (with pooler, as `AutoModel` builds it); defaults are bert-base-uncased's."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    def hf_config(self):
        from transformers import BertConfig

        return BertConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            layer_norm_eps=self.layer_norm_eps,
            pad_token_id=self.pad_token_id,
            hidden_act="gelu",
        )


@dataclass(frozen=True)
class GPT2TextConfig:
    """`GPT2Model`; defaults are gpt2's (124M)."""

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    layer_norm_epsilon: float = 1e-5

    @property
    def hidden_size(self) -> int:
        return self.n_embd

    def hf_config(self):
        from transformers import GPT2Config

        return GPT2Config(
            vocab_size=self.vocab_size,
            n_positions=self.n_positions,
            n_embd=self.n_embd,
            n_layer=self.n_layer,
            n_head=self.n_head,
            layer_norm_epsilon=self.layer_norm_epsilon,
            activation_function="gelu_new",
            bos_token_id=self.vocab_size - 1,
            eos_token_id=self.vocab_size - 1,
        )


AudioConfig = Union[MsCnn14Config, HTSATConfig]
TextConfig = Union[BertTextConfig, GPT2TextConfig]


@dataclass(frozen=True)
class MsClapConfig:
    audio: AudioConfig
    text: TextConfig
    duration_s: int
    text_len: int
    tokenizer: str  # hub id or local directory
    sample_rate: int = 44100
    # Front end as msclap builds it (for HTSAT: from msclap/models/config.py, not the yaml).
    frontend_sample_rate: int = 44100
    window_size: int = 1024
    hop_size: int = 320
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 14000.0
    d_proj: int = 1024

    def __post_init__(self) -> None:
        frames = 1 + self.clip_samples // self.hop_size
        if isinstance(self.audio, HTSATConfig):
            if self.audio.n_mels != self.n_mels:
                raise ValueError(f"MS-CLAP: HTSAT expects {self.audio.n_mels} mels, front end gives {self.n_mels}")
            if frames > self.audio.max_frames:
                raise ValueError(
                    f"MS-CLAP: {self.duration_s} s give {frames} frames, more than HTSAT's {self.audio.max_frames}"
                )
        elif frames < 32 or self.n_mels < 32:
            raise ValueError("MS-CLAP: Cnn14's five 2x2 poolings need at least 32 frames and 32 mels")

    @property
    def clip_samples(self) -> int:
        return self.duration_s * self.sample_rate

    @property
    def audio_embed_dim(self) -> int:
        return self.audio.num_features if isinstance(self.audio, HTSATConfig) else self.audio.out_emb

    @property
    def is_gpt2(self) -> bool:
        return isinstance(self.text, GPT2TextConfig)


# msclap configs/config_2022.yml and config_2023.yml (+ models/config.py for HTSAT's front end).
MS_CLAP_2022 = MsClapConfig(
    audio=MsCnn14Config(), text=BertTextConfig(), duration_s=5, text_len=100, tokenizer="bert-base-uncased"
)
MS_CLAP_2023 = MsClapConfig(
    audio=HTSATConfig(), text=GPT2TextConfig(), duration_s=7, text_len=77, tokenizer="gpt2", frontend_sample_rate=32000
)


def tiny_ms_clap_config(version: str, vocab_size: int, *, text_len: int = 16) -> MsClapConfig:
    """Small configurations for tests (1 s clips, narrow encoders, 2-layer text towers); the
    projection stays 1024-d."""
    if version == "2022":
        return MsClapConfig(
            audio=MsCnn14Config(channels=(4, 4, 8, 8, 16, 16), out_emb=32, num_classes=6),
            text=BertTextConfig(
                vocab_size=vocab_size,
                hidden_size=32,
                num_layers=2,
                num_heads=2,
                intermediate_size=64,
                max_position_embeddings=64,
            ),
            duration_s=1,
            text_len=text_len,
            tokenizer="in-process",
        )
    if version == "2023":
        return MsClapConfig(
            audio=HTSATConfig(
                spec_size=64,
                embed_dim=8,
                depths=(2, 2, 2),
                num_heads=(1, 2, 4),
                window_size=4,
                num_classes=6,
                n_mels=16,
            ),
            text=GPT2TextConfig(vocab_size=vocab_size, n_positions=64, n_embd=32, n_layer=2, n_head=2),
            duration_s=1,
            text_len=text_len,
            tokenizer="in-process",
            frontend_sample_rate=32000,
            n_mels=16,
        )
    raise ValueError(f"MS-CLAP version must be '2022' or '2023', got {version!r}")


# -- network ---------------------------------------------------------------------------------
class MsProjection(nn.Module):
    """msclap `Projection`: layer_norm(l1(x) + dropout(l2(gelu(l1(x)))))."""

    def __init__(self, d_in: int, d_out: int, p: float = 0.5):
        super().__init__()
        self.linear1 = nn.Linear(d_in, d_out, bias=False)
        self.linear2 = nn.Linear(d_out, d_out, bias=False)
        self.layer_norm = nn.LayerNorm(d_out)
        self.drop = nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embed1 = self.linear1(x)
        embed2 = self.drop(self.linear2(F.gelu(embed1)))
        return self.layer_norm(embed1 + embed2)


class _ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool)


class MsCnn14(nn.Module):
    """msclap's Cnn14 after the front end: log-mel (B, 1, T, M) -> `relu(fc1)` (B, out_emb)."""

    def __init__(self, cfg: MsCnn14Config, n_mels: int):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(n_mels)
        c = (1,) + tuple(cfg.channels)
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", _ConvBlock(c[i], c[i + 1]))
        self.fc1 = nn.Linear(cfg.channels[-1], cfg.out_emb)
        self.fc_audioset = nn.Linear(cfg.out_emb, cfg.num_classes)  # trained, unused by the embedding

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        x = self.bn0(logmel.transpose(1, 3)).transpose(1, 3)
        for i in range(6):
            x = getattr(self, f"conv_block{i + 1}")(x, pool=2 if i < 5 else 1)
        x = x.mean(dim=3)
        x = x.max(dim=2).values + x.mean(dim=2)
        return F.relu(self.fc1(x))


class MsClapNet(nn.Module):
    def __init__(self, config: MsClapConfig):
        super().__init__()
        from transformers import BertModel, ClapAudioConfig, ClapAudioModel, GPT2Model

        self.config = config
        c = config
        self.spectrogram_extractor = PowerSpectrogram(c.window_size, c.hop_size)
        self.logmel_extractor = LogMelFilterBank(c.frontend_sample_rate, c.window_size, c.n_mels, c.fmin, c.fmax)
        if isinstance(c.audio, HTSATConfig):
            hf_config = ClapAudioConfig(**hf_audio_config_kwargs(c.audio, projection_dim=c.d_proj))
            self.audio_model = ClapAudioModel(hf_config)
            self.audio_head = HTSATHead(c.audio)
        else:
            self.audio_model = MsCnn14(c.audio, c.n_mels)
        self.audio_projection = MsProjection(c.audio_embed_dim, c.d_proj)
        if c.is_gpt2:
            self.text_model = GPT2Model(c.text.hf_config())
        else:
            self.text_model = BertModel(c.text.hf_config(), add_pooling_layer=True)
        self.text_projection = MsProjection(c.text.hidden_size, c.d_proj)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.logmel_extractor(self.spectrogram_extractor(waveform))

    def audio_features(self, waveform: torch.Tensor) -> torch.Tensor:
        """The audio encoder's clip embedding before projection (Cnn14 2048-d / HTSAT 768-d)."""
        mel = self.log_mel(waveform)
        if isinstance(self.audio_model, MsCnn14):
            return self.audio_model(mel)
        return self.audio_model(input_features=mel).pooler_output

    def embed_audio(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.audio_projection(self.audio_features(waveform))

    def embed_text(self, enc: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if self.config.is_gpt2:
            ids = enc["input_ids"]
            hidden = self.text_model(input_ids=ids, attention_mask=enc["attention_mask"]).last_hidden_state
            last = torch.ne(ids, 0).sum(-1) - 1  # msclap: id 0 ('!', the pad token) counts as padding
            pooled = hidden[torch.arange(ids.shape[0], device=hidden.device), last]
        else:
            hidden = self.text_model(
                input_ids=enc["input_ids"],
                token_type_ids=enc["token_type_ids"],
                attention_mask=enc["attention_mask"],
            ).last_hidden_state
            pooled = hidden[:, 0, :]
        return self.text_projection(pooled)


# -- audio preparation ----------------------------------------------------------------------
def fit_to_duration(x: np.ndarray, clip_samples: int) -> np.ndarray:
    """msclap `load_audio_into_tensor` with a deterministic crop: repeat a short clip
    `ceil(target / n)` times and cut; keep the first `clip_samples` of a long one."""
    n = len(x)
    if n == 0:
        raise ValueError("MS-CLAP: empty clip")
    if clip_samples >= n:
        return np.ascontiguousarray(np.tile(x, int(np.ceil(clip_samples / n)))[:clip_samples])
    return np.ascontiguousarray(x[:clip_samples])


# -- checkpoint layout -----------------------------------------------------------------------
_GPT2_LEGACY = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")


def _derived_entries(config: MsClapConfig, expected: Mapping[str, torch.Size]) -> dict[str, torch.Tensor]:
    c = config
    out: dict[str, torch.Tensor] = {k: torch.tensor(0) for k in expected if k.endswith("num_batches_tracked")}
    if isinstance(c.audio, HTSATConfig):
        index = relative_position_index(c.audio.window_size)
        for k in expected:
            if k.endswith("attention.self.relative_position_index"):
                out[k] = index.clone()
    real, imag = dft_kernels(c.window_size)
    out["spectrogram_extractor.stft.conv_real.weight"] = torch.from_numpy(real)
    out["spectrogram_extractor.stft.conv_imag.weight"] = torch.from_numpy(imag)
    melw = slaney_mel_matrix(c.frontend_sample_rate, c.window_size, c.n_mels, c.fmin, c.fmax)
    out["logmel_extractor.melW"] = torch.from_numpy(melw)
    return out


def _legacy_text_buffer(key: str, value: torch.Tensor, config: MsClapConfig) -> str | None:
    """Buffers older transformers saved in the text tower and newer ones recompute: None if
    `key` is such a buffer with the expected content, a problem string if the content is
    wrong, "unknown" if `key` is not one of them."""
    if config.is_gpt2:
        m = _GPT2_LEGACY.fullmatch(key)
        if not m:
            return "unknown"
        if m.group(1) == "bias":  # causal mask, (1, 1, n_positions, n_positions)
            n = value.shape[-1]
            ok = value.dim() == 4 and torch.equal(value.reshape(n, n).bool(), torch.ones(n, n).tril().bool())
            return None if ok else f"caption_encoder.base.{key} is not a causal mask"
        return None  # masked_bias: the fill value of the old attention code, unused now
    if key == "embeddings.position_ids":
        ok = torch.equal(value.reshape(-1), torch.arange(value.numel()))
        return None if ok else f"caption_encoder.base.{key} is not 0..{value.numel() - 1}"
    if key == "embeddings.token_type_ids":
        return None if not value.any() else f"caption_encoder.base.{key} is not all zeros"
    return "unknown"


def convert_ms_clap_state_dict(
    state: Mapping[str, torch.Tensor],
    config: MsClapConfig,
    *,
    source: str = "state dict",
    expected: Mapping[str, torch.Size] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """msclap state dict -> (`MsClapNet` state dict, front-end deviation). The deviation maps
    each stored front-end tensor to its max |stored - computed| (empty when the file stores
    none). Unknown, missing or mis-shaped weights are a `CheckpointFormatError` naming `source`.
    `expected` (the target network's key -> shape) is built on the meta device when not given."""
    htsat = isinstance(config.audio, HTSATConfig)
    what = f"MS-CLAP ({'HTSAT' if htsat else 'Cnn14'} + {'GPT-2' if config.is_gpt2 else 'BERT'})"
    state = strip_prefix(state, "module.", source=source)
    if expected is None:
        expected = expected_state(lambda: MsClapNet(config))
    out: dict[str, torch.Tensor] = {}
    htsat_state: dict[str, torch.Tensor] = {}
    frontend: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    problems: list[str] = []
    text_keys = {k[len("text_model.") :] for k in expected if k.startswith("text_model.")}
    for key, value in state.items():
        if htsat and key.startswith("audio_encoder.base.htsat."):
            htsat_state[key[len("audio_encoder.base.htsat.") :]] = value
        elif not htsat and key.startswith("audio_encoder.base."):
            rest = key[len("audio_encoder.base.") :]
            if rest in FRONTEND_KEYS:
                frontend[rest] = value
            else:
                out["audio_model." + rest] = value
        elif key.startswith("audio_encoder.projection."):
            out["audio_projection." + key[len("audio_encoder.projection.") :]] = value
        elif key.startswith("caption_encoder.projection."):
            out["text_projection." + key[len("caption_encoder.projection.") :]] = value
        elif key.startswith("caption_encoder.base."):
            rest = key[len("caption_encoder.base.") :]
            if rest in text_keys:
                out["text_model." + rest] = value
            else:
                verdict = _legacy_text_buffer(rest, value, config)
                if verdict == "unknown":
                    unknown.append(key)
                elif verdict is not None:
                    problems.append(verdict)
        elif key == "logit_scale":
            out[key] = value
        else:
            unknown.append(key)
    if htsat:
        parts = split_htsat_state_dict(htsat_state, config.audio)
        unknown += ["audio_encoder.base.htsat." + k for k in parts.unknown]
        problems += ["audio_encoder.base.htsat." + p for p in parts.problems]
        out.update({"audio_model.audio_encoder." + k: v for k, v in parts.encoder.items()})
        out.update({"audio_head." + k: v for k, v in parts.head.items()})
        frontend = parts.frontend
    derived = _derived_entries(config, expected)
    deviation = {}
    for key, stored in frontend.items():
        if stored.shape != derived[key].shape:
            problems.append(
                f"{key} has shape {tuple(stored.shape)}, this configuration computes {tuple(derived[key].shape)}"
            )
            continue
        deviation[key] = float((stored.float() - derived[key]).abs().max())
        out[key] = stored
    if problems:
        raise CheckpointFormatError(f"{source}: not a {what} checkpoint: " + "; ".join(problems[:6]))
    for key, value in derived.items():
        out.setdefault(key, value)
    check_complete(out, expected, unknown=unknown, source=source, what=what)
    return out, deviation


def to_ms_clap_state_dict(net: MsClapNet) -> dict[str, torch.Tensor]:
    """`MsClapNet` -> msclap's key layout (what `CLAP.state_dict()` holds); CPU copies."""
    sd = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    cfg = net.config
    out: dict[str, torch.Tensor] = {"logit_scale": sd["logit_scale"]}
    if isinstance(cfg.audio, HTSATConfig):
        enc = "audio_model.audio_encoder."
        htsat = join_htsat_state_dict(
            {k[len(enc) :]: v for k, v in sd.items() if k.startswith(enc)},
            {k: sd[k] for k in FRONTEND_KEYS},
            {k[len("audio_head.") :]: v for k, v in sd.items() if k.startswith("audio_head.")},
            cfg.audio,
        )
        out.update({"audio_encoder.base.htsat." + k: v for k, v in htsat.items()})
    else:
        out.update({"audio_encoder.base." + k: sd[k] for k in FRONTEND_KEYS})
        out.update(_renamed(sd, "audio_model.", "audio_encoder.base."))
    out.update(_renamed(sd, "audio_projection.", "audio_encoder.projection."))
    out.update(_renamed(sd, "text_model.", "caption_encoder.base."))
    out.update(_renamed(sd, "text_projection.", "caption_encoder.projection."))
    return out


def _renamed(sd: Mapping[str, torch.Tensor], old: str, new: str) -> dict[str, torch.Tensor]:
    return {new + k[len(old) :]: v for k, v in sd.items() if k.startswith(old)}


def save_ms_clap_checkpoint(net: MsClapNet, path: str | Path) -> Path:
    """Write `{"model": state_dict}`, the format `CLAPWrapper.load_clap` reads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": to_ms_clap_state_dict(net)}, path)
    return path


# -- backbones -------------------------------------------------------------------------------
def prepare_tokenizer(tokenizer, config: MsClapConfig):
    """A copy of `tokenizer` set up as `CLAPWrapper.load_clap` does (GPT-2: pad token '!')."""
    tokenizer = copy.deepcopy(tokenizer)
    if config.is_gpt2:
        tokenizer.add_special_tokens({"pad_token": "!"})
        if tokenizer.pad_token_id != 0:
            raise TokenizerError(
                f"MS-CLAP 2023: the GPT-2 tokenizer maps '!' to {tokenizer.pad_token_id}, msclap expects 0"
            )
    return tokenizer


def load_text_tokenizer(config: MsClapConfig):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(config.tokenizer)
    except Exception as e:  # hub / filesystem errors come in many types
        raise TokenizerError(
            f"MS-CLAP: cannot load the tokenizer {config.tokenizer!r} ({type(e).__name__}: {e}). "
            "Pass tokenizer=<tokenizer> or a config whose tokenizer is a local directory."
        ) from None
    return prepare_tokenizer(tok, config)
