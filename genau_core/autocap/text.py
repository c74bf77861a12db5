"""AutoCap's tokenizer and the token ids of its text inputs (metadata prompt, caption labels).

The tokenizer is BART's byte-level BPE (a local `facebook/bart-base` directory), or for the tiny
model the in-process byte-level BPE of `genau_core.tokenizers` (same special-token layout:
<s>=0, <pad>=1, </s>=2, <unk>=3). The delimiter tokens are *added* to it as special tokens,
so they get ids `vocab_size + i` in the order of `AutoCapConfig.delimiter_tokens`; the model
embeds ids >= `vocab_size` with its own small delimiter table and all others with BART's
embedding layer.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Mapping, Sequence

import torch

from genau_core.autocap.configs import FIELD_DELIMITERS, OFFICIAL_META_ORDER, OFFICIAL_TAGS, AutoCapConfig
from genau_core.errors import TokenizerError  # importable from here (genau_core.autocap.cli catches it)


def clean_text(text) -> str:
    """Whitespace-normalised string ('' for None)."""
    return " ".join(str(text).split()) if text is not None else ""


def _base_tokenizer(source: str, cfg: AutoCapConfig):
    if source.startswith("tiny:"):
        from genau_core.tokenizers import roberta_style_tokenizer

        # the builder is cached: copy before adding tokens to it
        return copy.deepcopy(
            roberta_style_tokenizer(int(source.split(":", 1)[1]), model_max_length=cfg.max_prompt_tokens)
        )
    path = Path(source).expanduser()
    if not path.is_dir():
        from genau_core.checkpoints import find_checkpoint

        path = find_checkpoint(
            source,
            what="BART tokenizer directory (vocab.json + merges.txt)",
            source="https://huggingface.co/facebook/bart-base",
        )
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as e:  # missing / malformed tokenizer files raise many types
        raise TokenizerError(f"{path}: cannot load a BART tokenizer ({type(e).__name__}: {e})") from None


def build_tokenizer(cfg: AutoCapConfig, source: str | None = None):
    """The tokenizer of `cfg` with the delimiter tokens added (or already present, for a saved
    one), checked against the BART configuration: special ids, base vocabulary size, and the
    delimiter ids `vocab_size + i`."""
    source = source or cfg.tokenizer
    tok = _base_tokenizer(source, cfg)
    b = cfg.bart
    for name, want in (("pad", b.pad_token_id), ("bos", b.bos_token_id), ("eos", b.eos_token_id)):
        got = getattr(tok, f"{name}_token_id")
        if got != want:
            raise TokenizerError(f"{source}: {name} token id is {got}, the BART configuration expects {want}")
    delimiters = list(cfg.delimiter_tokens)
    missing = [t for t in delimiters if t not in tok.get_vocab()]
    if missing:
        if len(tok) != b.vocab_size:
            raise TokenizerError(
                f"{source}: {len(tok)} tokens before the delimiters, BART has a vocabulary of {b.vocab_size}"
            )
        tok.add_special_tokens({"additional_special_tokens": delimiters})
    ids = tok.convert_tokens_to_ids(delimiters)
    want = list(range(b.vocab_size, b.vocab_size + len(delimiters)))
    if ids != want:
        raise TokenizerError(f"{source}: delimiter tokens {delimiters} have ids {ids}, expected {want}")
    tok.model_max_length = max(cfg.max_encoder_tokens, cfg.max_caption_tokens)
    return tok


def water_fill(lengths: Sequence[int], budget: int) -> list[int]:
    """Per-item caps with sum <= budget: short items keep everything, long ones share the rest
    equally (a fair truncation of several metadata fields to one prompt length)."""
    caps = [0] * len(lengths)
    remaining = max(0, budget)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for k, i in enumerate(order):
        caps[i] = min(lengths[i], remaining // (len(lengths) - k))
        remaining -= caps[i]
    return caps


def metadata_ids(tok, cfg: AutoCapConfig, item: Mapping[str, str] | None) -> list[int]:
    """Token ids of one clip's metadata prompt (at most `max_prompt_tokens`, + </s> for the
    official layout). Missing or empty fields keep their delimiters with nothing between."""
    item = item or {}
    if cfg.layout == "official":
        keys = [k for k in OFFICIAL_META_ORDER if k in cfg.meta_fields]
        if not keys:
            return []
        text = " \n ".join(f"{OFFICIAL_TAGS[k][0]} {item.get(k) or ''} {OFFICIAL_TAGS[k][1]}" for k in keys)
        ids = tok(text, add_special_tokens=False, truncation=True, max_length=cfg.max_prompt_tokens)["input_ids"]
        return list(ids) + [tok.eos_token_id]
    pieces = [
        tok(clean_text(item.get(f)), add_special_tokens=False, truncation=True, max_length=cfg.max_prompt_tokens)[
            "input_ids"
        ]
        if clean_text(item.get(f))
        else []
        for f in cfg.meta_fields
    ]
    caps = water_fill([len(p) for p in pieces], cfg.max_prompt_tokens - 2 * len(cfg.meta_fields))
    out: list[int] = []
    for f, piece, cap in zip(cfg.meta_fields, pieces, caps):
        open_id, close_id = tok.convert_tokens_to_ids(list(FIELD_DELIMITERS[f]))
        out += [open_id, *piece[:cap], close_id]
    return out


def check_metadata(metadata: Sequence[Mapping[str, str]] | None, n: int) -> list[dict[str, str]]:
    """One dict of strings per clip (empty dicts when `metadata` is None)."""
    if metadata is None:
        return [{} for _ in range(n)]
    metadata = list(metadata)
    if len(metadata) != n:
        raise ValueError(f"{len(metadata)} metadata entries for {n} clips")
    out = []
    for i, m in enumerate(metadata):
        if m is None:
            m = {}
        if not isinstance(m, Mapping):
            raise TypeError(f"metadata {i} is a {type(m).__name__}, not a mapping")
        out.append({str(k): "" if v is None else str(v) for k, v in m.items()})
    return out


def pad_ids(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) ids right-padded with `pad_id` and the (B, L) 0/1 mask; L >= 0."""
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(list(r), dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def caption_labels(tok, cfg: AutoCapConfig, captions: Sequence[str]) -> torch.Tensor:
    """(B, T) target ids `<s> caption </s>` (at most `max_caption_tokens`), padding = -100."""
    enc = tok(
        [clean_text(c) for c in captions],
        truncation=True,
        max_length=cfg.max_caption_tokens,
        padding="longest",
        return_tensors="pt",
    )
    return enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
