"""Tokenizers for the text encoders: local directories for the real models, in-process ones for tiny twins.

The in-process tokenizers are deterministic (fixed vocabulary / a BPE trained on a fixed
built-in corpus), so a tiny model built from a seed always sees the same token ids.
"""

from __future__ import annotations

from pathlib import Path

from genau_core.tokenizers import TINY_CORPUS, tiny_roberta_tokenizer, tiny_t5_tokenizer  # noqa: F401


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
