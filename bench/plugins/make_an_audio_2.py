"""Make-An-Audio 2: structured captions (issue 7, item 3).

Make-An-Audio 2 conditions on two texts per prompt: the natural caption (to its CLAP text
encoder) and a *structured* caption (to its T5 encoder), e.g.

    <rocket flying by& start>@<loud explosion& mid>@<fire crackling& mid>

events joined by `@`, each `<description& position>` with position one of all / start / mid /
end. The official AudioCaps evaluation (`scripts/txt2audio_for_2cap.py` with
`ldm.data.tsvdataset.TSVDatasetStruct`) reads them from `audiocaps_test_struct.tsv`
(tab-separated; columns `name` = "Y"+youtube_id, `ori_cap` = the AudioCaps caption, `caption`
= the structured caption; 4500 rows = 900 clips x 5 captions). Free prompts are structured by
ChatGPT in the official demo, which we cannot call.

Fallback, documented and deterministic: the caption as one event spanning the whole clip,
`<{caption}& all>`. This is exactly what the official training code feeds for captions that
have no structured version (`ldm/data/joinaudiodataset_struct_sample_anylen.py`), so it is a
form the model has seen. Every prompt records which was used (`source`): "struct-file" (an
exact match), "struct-file:first-of-N" (the caption text appears with N different structured
versions; the first in file order is taken) or "fallback".

Where the plugin takes the structured-caption file from (first that applies):
1. $GENAU_BENCH_MAA2_STRUCT_CAPTIONS: a path to a file in this format;
2. for `make-an-audio-2`: `audiocaps_test_struct.tsv` in the checkpoint folder (beside maa2.ckpt);
   for `make-an-audio-2-tiny`: its checkpoint argument (`--model-checkpoint make-an-audio-2-tiny=FILE.tsv`,
   or a folder holding `audiocaps_test_struct.tsv`);
3. none: every prompt gets the fallback.
The file's sha256 is part of the checkpoint identity (so of the run's settings hash); each clip's
structured caption and its source are the plugin's `prompt_records`.

The network is ours (`genau_core.baselines.make_an_audio_2`), loaded from the released files:

    <folder>/maa2.ckpt                DiT + 1D VAE + CLAP text + T5 weights (hf:ByteDance/Make-An-Audio-2)
    <folder>/bigvgan/args.yml, best_netG.pt   BigVGAN (Google Drive link in the official README)
    tokenizers bert-base-uncased and google/t5-v1_1-large: <folder>/bert-base-uncased/,
    <folder>/t5-v1_1-large/ or the Hugging Face cache

`--model-checkpoint make-an-audio-2=PATH` takes the folder or the maa2.ckpt file; without it,
maa2.ckpt is looked for in $GENAU_BENCH_CHECKPOINTS and ~/.cache/genau-bench/checkpoints.
CLAP_weights_2022.pth is not needed for the released checkpoint (the official embedder reads it but
never loads it). A checkpoint without `cond_stage_model.t5_transformer.*` takes the T5 encoder from
google/t5-v1_1-large's weights in the t5-v1_1-large folder (what the official embedder's
`from_pretrained` loads); one without the CLAP branch takes it from CLAP_weights_2022.pth beside the
checkpoint or in its CLAP/ folder. Such files join the checkpoint identity (see make_an_audio.py).
"""

from __future__ import annotations

import csv
import os
import re
from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from bench.checkpoints import sha256_file
from bench.plugins.base import InferenceSettings, PluginInfo, cpu_generators
from bench.plugins.make_an_audio import (
    ReleaseFiles,
    _MakeAnAudioPlugin,
    _audible_vocoder,
    load_tokenizer,
    locate_release,
    release_extra,
    release_identity,
    tiny_bert_tokenizer,
    tiny_bigvgan_config,
    tiny_clap_text_config,
)

POSITIONS = ("all", "start", "mid", "end")
_EVENT = re.compile(r"<([^<>&@]+)&\s*(all|start|mid|end)>")
STRUCT_TSV_COLUMNS = ("name", "ori_cap", "caption")
FALLBACK_RULE = "<{caption}& all> (the official training fallback for captions without a structured version)"


@dataclass(frozen=True)
class StructuredCaption:
    events: tuple[tuple[str, str], ...]  # (description, position)

    def __str__(self) -> str:
        return "@".join(f"<{text}& {pos}>" for text, pos in self.events)


def parse_struct_caption(text: str) -> StructuredCaption:
    """Parse `<event& position>@<event& position>...`; raises ValueError naming what is wrong."""
    s = text.strip()
    if not s:
        raise ValueError("empty structured caption")
    events = []
    for part in s.split("@"):
        m = _EVENT.fullmatch(part.strip())
        if m is None:
            raise ValueError(
                f"not an event '<description& position>' with position in {POSITIONS}: {part!r} in {text!r}"
            )
        description = m.group(1).strip()
        if not description:
            raise ValueError(f"event without a description in {text!r}")
        events.append((description, m.group(2)))
    return StructuredCaption(tuple(events))


def fallback_struct_caption(caption: str) -> str:
    """The caption as one event over the whole clip: `<caption& all>` (whitespace collapsed)."""
    text = " ".join(caption.split())
    for ch in "<>&@":
        text = text.replace(ch, " ")
    text = " ".join(text.split())
    if not text:
        raise ValueError("cannot structure an empty caption")
    return f"<{text}& all>"


def _key(caption: str) -> str:
    return " ".join(caption.split()).casefold()


@dataclass
class StructCaptionTable:
    """Structured captions by natural caption (and by clip), from an `audiocaps_test_struct.tsv`-format file."""

    source: str
    by_caption: dict[str, list[str]] = field(default_factory=dict)  # normalised caption -> distinct structs, file order
    by_clip: dict[tuple[str, str], str] = field(default_factory=dict)  # (youtube_id, normalised caption) -> struct

    @classmethod
    def from_tsv(cls, path: str | Path) -> "StructCaptionTable":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: structured-caption file not found (format of Make-An-Audio 2's audiocaps_test_struct.tsv)"
            )
        table = cls(source=str(path))
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            missing = [c for c in STRUCT_TSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(
                    f"{path}: missing column(s) {', '.join(missing)}; need {', '.join(STRUCT_TSV_COLUMNS)} "
                    "(tab-separated)"
                )
            for line, row in enumerate(reader, start=2):
                caption, struct = row["ori_cap"] or "", row["caption"] or ""
                if not caption.strip():
                    raise ValueError(f"{path}:{line}: empty ori_cap")
                try:
                    struct = str(parse_struct_caption(struct))
                except ValueError as e:
                    raise ValueError(f"{path}:{line}: {e}") from None
                key = _key(caption)
                variants = table.by_caption.setdefault(key, [])
                if struct not in variants:
                    variants.append(struct)
                name = (row["name"] or "").strip()
                youtube_id = name[1:] if name.startswith("Y") and len(name) == 12 else name
                table.by_clip.setdefault((youtube_id, key), struct)
        if not table.by_caption:
            raise ValueError(f"{path}: no rows")
        return table

    def __len__(self) -> int:
        return len(self.by_caption)

    def lookup(self, caption: str, youtube_id: str | None = None) -> tuple[str, str]:
        """(structured caption, source) for one prompt; falls back deterministically."""
        key = _key(caption)
        if youtube_id is not None and (youtube_id, key) in self.by_clip:
            return self.by_clip[(youtube_id, key)], "struct-file"
        variants = self.by_caption.get(key)
        if not variants:
            return fallback_struct_caption(caption), "fallback"
        if len(variants) == 1:
            return variants[0], "struct-file"
        return variants[0], f"struct-file:first-of-{len(variants)}"


def structure_prompts(
    prompts: Sequence[str], table: StructCaptionTable | None, youtube_ids: Sequence[str | None] | None = None
) -> list[dict]:
    """Per prompt: {'prompt', 'struct_caption', 'source'} (the record the plugin writes to its manifest)."""
    ids = list(youtube_ids) if youtube_ids is not None else [None] * len(prompts)
    if len(ids) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(ids)} clip ids")
    out = []
    for prompt, yt in zip(prompts, ids):
        if table is None:
            struct, source = fallback_struct_caption(prompt), "fallback"
        else:
            struct, source = table.lookup(prompt, yt)
        out.append({"prompt": prompt, "struct_caption": struct, "source": source})
    return out


def summarise_sources(records: Sequence[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        kind = "struct-file" if r["source"].startswith("struct-file") else r["source"]
        counts[kind] = counts.get(kind, 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------------
# the plugins
# ---------------------------------------------------------------------------------------------------

STRUCT_ENV = "GENAU_BENCH_MAA2_STRUCT_CAPTIONS"
STRUCT_FILENAME = "audiocaps_test_struct.tsv"
MAA2_SOURCE = (
    "hf:ByteDance/Make-An-Audio-2 (maa2.ckpt) + BigVGAN from the bytedance/Make-An-Audio-2 README (Google Drive)"
)


def _struct_file_from(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / STRUCT_FILENAME
    if not p.is_file():
        raise FileNotFoundError(
            f"{p}: structured-caption file not found (format of Make-An-Audio 2's {STRUCT_FILENAME})"
        )
    return p


class _MakeAnAudio2Plugin(_MakeAnAudioPlugin):
    _struct_table: StructCaptionTable | None = None
    _struct_loaded_from: Path | None = None

    @abstractmethod
    def _default_struct_file(self) -> Path | None:
        """The structured-caption file used when $GENAU_BENCH_MAA2_STRUCT_CAPTIONS is not set."""

    def struct_file(self) -> Path | None:
        """The structured-caption file this plugin uses (see the module docstring), or None."""
        env = os.environ.get(STRUCT_ENV, "").strip()
        if env:
            return _struct_file_from(env)
        return self._default_struct_file()

    def struct_identity(self) -> str:
        f = self.struct_file()
        return "struct:none" if f is None else f"struct:sha256:{sha256_file(f)}"

    def struct_table(self) -> StructCaptionTable | None:
        f = self.struct_file()
        if f is None:
            return None
        if self._struct_table is None or self._struct_loaded_from != f:
            self._struct_table, self._struct_loaded_from = StructCaptionTable.from_tsv(f), f
        return self._struct_table

    def structure(self, prompts: Sequence[str]) -> list[dict]:
        return structure_prompts(list(prompts), self.struct_table())

    def prompt_records(self, prompts: Sequence[str]) -> list[dict]:
        return [
            {"struct_caption": r["struct_caption"], "struct_caption_source": r["source"]}
            for r in self.structure(prompts)
        ]

    def generation_extra(self) -> dict:
        f = self.struct_file()
        extra = {
            "struct_captions": {
                "file": None if f is None else str(f),
                "sha256": None if f is None else sha256_file(f),
                "fallback": FALLBACK_RULE,
            }
        }
        extra.update(release_extra(self.model))
        return extra

    def _generate(self, prompts: Sequence[str], *, seeds, steps, guidance, duration_s) -> list[np.ndarray]:
        structs = [r["struct_caption"] for r in self.structure(prompts)]
        waves = self.model.sample(
            list(prompts), structs, cpu_generators(seeds), steps=steps, guidance=guidance, duration_s=duration_s
        )
        return [w.numpy().astype(np.float32) for w in waves]


_MAA2_NOTES = (
    "DDIM 100 steps, eta 0, guidance 4: the README's AudioCaps command (txt2audio_for_2cap.py --scale 4; also its "
    "gen_wav.py example). Alternatives in the official code: txt2audio_for_2cap.py's default --scale 5.0, gen_wav.py's "
    "default 3.0 (the value REFERENCE.md lists); override with --guidance. Structured captions: "
    f"${STRUCT_ENV}, else audiocaps_test_struct.tsv beside maa2.ckpt, else none; prompts without one use "
    "'<caption& all>' (the official training fallback); each clip records its structured caption and source. "
    "Latent length from gen_wav.py's dur_to_size (int(d*31.5) rounded up to even: 316 = 10.11 s for 10 s; the "
    "AudioCaps script uses 312 = 9.98 s). One generator per prompt for x_T (official: global RNG); float output."
)


class MakeAnAudio2(_MakeAnAudio2Plugin):
    info = PluginInfo(
        name="make-an-audio-2",
        family="make-an-audio-2",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM (eta 0)", steps=100, guidance=4.0, duration_s=10.0),
        training_data="AudioCaps, WavCaps, AudioSet, ... with ChatGPT-structured captions (Make-An-Audio 2 paper)",
        text_encoder="MS-CLAP 2022 BERT branch (caption, 77 x 1024) + T5-v1.1-large encoder, trained (structured "
        "caption, 77 x 1024)",
        source="maa2.ckpt + bigvgan/{args.yml,best_netG.pt} ("
        + MAA2_SOURCE
        + ") + tokenizers bert-base-uncased, google/t5-v1_1-large",
        paper_params="937M",
        notes=_MAA2_NOTES,
    )
    config = None  # None: the released configuration (genau_core.baselines.make_an_audio_2.MAKE_AN_AUDIO_2_CONFIG)
    TOKENIZERS = ("bert-base-uncased", "google/t5-v1_1-large")

    def _locate(self) -> tuple[ReleaseFiles | None, str]:
        from genau_core.baselines.make_an_audio_2 import CHECKPOINT_FILE

        return self._cached_locate(
            lambda: locate_release(
                self.checkpoint,
                CHECKPOINT_FILE,
                self.TOKENIZERS,
                model=self.name,
                what="Make-An-Audio 2 checkpoint",
                source=MAA2_SOURCE,
                text_kinds=("clap", "t5"),
            )
        )

    def _default_struct_file(self) -> Path | None:
        files, _ = self._locate()
        if files is None:
            return None
        f = files.checkpoint.parent / STRUCT_FILENAME
        return f if f.is_file() else None

    def checkpoint_status(self) -> tuple[bool, str]:
        files, status = self._locate()
        if files is None:
            return False, status
        try:
            f = self.struct_file()
        except FileNotFoundError as e:
            return False, str(e)
        return True, f"{status}; structured captions: {f if f is not None else 'none (fallback for every prompt)'}"

    def checkpoint_identity(self) -> str:
        return f"{release_identity(self._found_or_raise(*self._locate()))}+{self.struct_identity()}"

    def load(self) -> None:
        from genau_core.baselines.make_an_audio_2 import MAKE_AN_AUDIO_2_CONFIG, load_make_an_audio_2

        files = self._found_or_raise(*self._locate())
        clap_tok = load_tokenizer(files.tokenizers["bert-base-uncased"])
        t5_tok = load_tokenizer(files.tokenizers["google/t5-v1_1-large"])
        cfg = self.config or MAKE_AN_AUDIO_2_CONFIG
        model = load_make_an_audio_2(files.checkpoint, files.vocoder_dir, clap_tok, t5_tok, cfg, files.text_sources)
        self.model = model.to(self.device)
        self.struct_table()  # a malformed structured-caption file fails here, before any generation


# -- tiny twin -----------------------------------------------------------------------------------------


def make_an_audio_2_tiny_config():
    from genau_core.baselines._common import TINY_T5_ENCODER_CONFIG
    from genau_core.baselines.make_an_audio_2 import DiTConfig, MakeAnAudio2Config, Vae1dConfig

    return MakeAnAudio2Config(
        dit=DiTConfig(
            in_channels=4,
            context_dim=32,
            hidden_size=32,
            depth=2,
            num_heads=4,
            max_len=1000,
            block_groups=8,
            final_groups=8,
        ),
        vae=Vae1dConfig(
            in_channels=16,
            out_ch=16,
            ch=8,
            ch_mult=(1, 2, 4),
            num_res_blocks=1,
            z_channels=4,
            embed_dim=4,
            kernel_size=5,
            norm_num_groups=8,
        ),
        text=tiny_clap_text_config(),
        t5=dict(TINY_T5_ENCODER_CONFIG),
        t5_tokenizer="in-process tiny T5 Unigram",
        vocoder=tiny_bigvgan_config(16),
    )


def build_tiny_make_an_audio_2(seed: int = 0):
    """Tiny Make-An-Audio 2 (same code path: 16 kHz, hop 256, 16 mels), random weights from `seed`, eval mode."""
    from genau_core.tokenizers import t5_style_tokenizer
    from genau_core.baselines.make_an_audio_2 import MakeAnAudio2Model

    cfg = make_an_audio_2_tiny_config()
    clap_tok = tiny_bert_tokenizer(cfg.text.bert.vocab_size)
    t5_tok = t5_style_tokenizer(vocab_size=cfg.t5["vocab_size"], model_max_length=cfg.t5_max_length)
    torch.manual_seed(seed)
    model = MakeAnAudio2Model(cfg, clap_tok, t5_tok, scale_factor=0.8)
    _audible_vocoder(model.vocoder, 20.0)
    return model.eval()


class MakeAnAudio2Tiny(_MakeAnAudio2Plugin):
    info = PluginInfo(
        name="make-an-audio-2-tiny",
        family="make-an-audio-2",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM (eta 0)", steps=10, guidance=4.0, duration_s=10.0),
        training_data="none (random weights, seed 0)",
        text_encoder="tiny BERT + projection (caption) and tiny T5 encoder (structured caption), in-process tokenizers",
        source="in-process (bench.plugins.make_an_audio_2.build_tiny_make_an_audio_2)",
        tiny=True,
        notes="Offline twin of make-an-audio-2: same structured-caption handling, sampler, key mappings and decode "
        "path "
        "(ConcatDiT, 1D VAE, BigVGAN), tiny random modules (seed 0), 16 mel bins, 10 DDIM steps instead of 100. "
        f"Structured captions: ${STRUCT_ENV}, else --model-checkpoint make-an-audio-2-tiny=FILE.tsv, else none.",
    )
    seed = 0

    def _default_struct_file(self) -> Path | None:
        return None if self.checkpoint is None else _struct_file_from(self.checkpoint)

    def checkpoint_status(self) -> tuple[bool, str]:
        try:
            f = self.struct_file()
        except FileNotFoundError as e:
            return False, str(e)
        return (
            True,
            f"built in-process (random weights, seed {self.seed}); structured captions: "
            f"{f if f is not None else 'none'}",
        )

    def checkpoint_identity(self) -> str:
        return f"random:seed={self.seed}+{self.struct_identity()}"

    def load(self) -> None:
        self.model = build_tiny_make_an_audio_2(self.seed).to(self.device)
        self.struct_table()
