"""Tokenizers for the text encoders: local directories for the real models, in-process ones for tiny twins.

The in-process tokenizers are deterministic (fixed vocabulary / a BPE trained on a fixed
built-in corpus), so a tiny model built from a seed always sees the same token ids.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

TINY_CORPUS = (
    "a dog barks while rain falls on a tin roof",
    "birds chirp and wind blows through the trees",
    "a man speaks and a car engine revs then accelerates away",
    "water flows and splashes in a stream",
    "a bell rings twice and fades out slowly",
    "footsteps on gravel with distant thunder",
    "a crowd cheers and claps loudly in a stadium",
    "a cat meows and a door creaks open",
    "a siren wails as traffic passes by",
    "an engine idles with a low hum",
    "horses growl and clop hooves",
    "people talk in the background while music plays softly",
    "a baby cries and a woman laughs",
    "heavy rain pours with thunder rumbling",
    "a train horn blows as the train passes",
    "typing on a keyboard with mouse clicks",
)

_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()"


@lru_cache(maxsize=None)
def tiny_t5_tokenizer(vocab_size: int = 192):
    """SentencePiece-style Unigram tokenizer in T5's layout: <pad>=0, </s>=1, <unk>=2."""
    from transformers import T5Tokenizer

    words = sorted({w for line in TINY_CORPUS for w in line.split()})
    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [("\u2581" + w, -1.0 - 0.01 * i) for i, w in enumerate(words)]
    pieces += [(c, -5.0) for c in _CHARS]
    if len(pieces) > vocab_size:
        raise ValueError(f"tiny T5 vocabulary needs {len(pieces)} entries, config allows {vocab_size}")
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=512)


def tiny_roberta_tokenizer(vocab_size: int = 320, model_max_length: int = 64):
    """Byte-level BPE in RoBERTa's layout: <s>=0, <pad>=1, </s>=2, <unk>=3, <mask>=4; wraps in <s> ... </s>."""
    from bench.plugins._tiny_text import roberta_style_tokenizer

    return roberta_style_tokenizer(vocab_size, model_max_length, corpus=TINY_CORPUS)


def load_tokenizer(source: str, kind: str, *, vocab_size: int, max_length: int):
    """`source` is "tiny" or a local directory (an HF snapshot: tokenizer files only are needed)."""
    if source == "tiny":
        if kind == "t5":
            return tiny_t5_tokenizer(vocab_size)
        if kind == "clap":
            return tiny_roberta_tokenizer(vocab_size, max_length)
        raise ValueError(kind)
    path = Path(source).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{kind} tokenizer directory not found: {path}")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
