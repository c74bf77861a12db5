"""Tiny tokenizers built in-process, for tests and demos without a model hub.

Each builder trains a small subword model with the `tokenizers` library on a fixed corpus and
wraps it in the transformers tokenizer class the real model uses, with the real model's
special-token conventions:

- RoBERTa (LAION-CLAP): byte-level BPE, `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, `<mask>` last;
  `<s> ... </s>` added around each text (RobertaProcessing).
- BERT uncased (MS-CLAP 2022): WordPiece, `[PAD]`=0, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`,
  lower-casing; `[CLS] ... [SEP]`.
- GPT-2 (MS-CLAP 2023): byte-level BPE, `!`=0 as in GPT-2 (msclap pads with `!` and takes id 0
  for padding), `<|endoftext|>` the last id (never 0), no special tokens added around texts.

The same call returns the same vocabulary every time (BPE training on a fixed corpus; the
WordPiece vocabulary is built directly).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

DEFAULT_CORPUS: tuple[str, ...] = (
    "a dog barks loudly in the distance",
    "rain falls on a metal roof while thunder rumbles",
    "a man speaks and a crowd laughs",
    "birds chirp and a car passes by",
    "water runs from a faucet into a sink",
    "an engine idles then revs up",
    "a woman sings softly with a guitar",
    "footsteps on gravel and wind blowing",
    "a baby cries while people talk",
    "the bell rings twice and a door closes",
    "Some punctuation! Numbers 1 2 3, and CAPITALS.",
)


def check_texts(texts: Sequence[str], name: str) -> list[str]:
    """The texts given to a backbone's `embed_text` as a list of str, or a TypeError naming it."""
    if isinstance(texts, str):
        raise TypeError(f"{name}: embed_text takes a sequence of strings, not one string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{name}: text {i} is a {type(t).__name__}, not a str")
    return texts


def tokenizer_identity(tokenizer) -> str:
    """"sha256:<hex>" naming everything of a tokenizer that decides its token ids: the full `tokenizers`
    serialisation when there is one (vocabulary, merges, normaliser, pre-tokeniser, post-processor,
    added tokens), else the vocabulary, plus the class, the special tokens and the padding /
    truncation sides. Swapping two token ids changes it; saving and reloading the same files does not."""
    import hashlib
    import json

    backend = getattr(tokenizer, "backend_tokenizer", None)
    payload = {
        "class": type(tokenizer).__name__,
        "backend": json.loads(backend.to_str()) if backend is not None else None,
        "vocab": None if backend is not None else sorted(tokenizer.get_vocab().items(), key=lambda kv: (kv[1], kv[0])),
        "merges": None if backend is not None else sorted(map(list, getattr(tokenizer, "bpe_ranks", {}) or {})),
        "special": {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())},
        "pad_token_id": tokenizer.pad_token_id,
        "sides": [getattr(tokenizer, "padding_side", None), getattr(tokenizer, "truncation_side", None)],
        "lower_case": getattr(tokenizer, "do_lower_case", None),
    }
    return "sha256:" + hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def trim_right_padding(enc: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the columns that are padding in every row of a right-padded batch.

    The text towers mask padding out of attention (and GPT-2 is causal, reading the last real
    token), so the kept positions get the same values as in the fixed-length batch the
    reference tools build, at a fraction of the cost (captions are ~15 tokens, padded to 77).
    A batch that is not right-padded is returned unchanged."""
    mask = enc["attention_mask"]
    keep = int(mask.sum(dim=1).max()) if mask.numel() else 0
    if keep == 0 or keep == mask.shape[1] or bool(mask[:, keep:].any()):
        return dict(enc)
    return {k: v[:, :keep] for k, v in enc.items()}


def batches_by_length(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of `batch_size`, texts of similar token length together (stable sort),
    so `trim_right_padding` leaves little padding in each batch. Each text's embedding is the
    same whichever batch it is in (padding is masked out), up to float32 rounding."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[k : k + batch_size] for k in range(0, len(order), batch_size)]


def _corpus(corpus: Iterable[str] | None) -> list[str]:
    texts = list(DEFAULT_CORPUS if corpus is None else corpus)
    if not texts:
        raise ValueError("tokenizer corpus is empty")
    # Repeat so every pair is frequent enough to be merged: the vocabulary fills up.
    return texts * 4


def _train_byte_level_bpe(corpus: Sequence[str], n_merged: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary (byte alphabet first, so '!' is id 0) and merges of a byte-level BPE."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=len(alphabet) + n_merged,
        initial_alphabet=alphabet,
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    import json

    model = json.loads(tok.to_str())["model"]
    vocab = dict(model["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return vocab, merges


def build_test_roberta_tokenizer(corpus: Iterable[str] | None = None, *, n_merged: int = 120):
    """A RobertaTokenizer (byte-level BPE) with RoBERTa's special ids; vocab size is
    256 byte symbols + `n_merged` merges + 5 specials."""
    from transformers import RobertaTokenizer

    bpe_vocab, merges = _train_byte_level_bpe(_corpus(corpus), n_merged)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for piece, _ in sorted(bpe_vocab.items(), key=lambda kv: kv[1]):
        vocab.setdefault(piece, len(vocab))
    vocab["<mask>"] = len(vocab)
    tok = RobertaTokenizer(vocab=vocab, merges=merges)
    assert tok.pad_token_id == 1 and tok.cls_token_id == 0 and tok.sep_token_id == 2
    return tok


def build_test_gpt2_tokenizer(corpus: Iterable[str] | None = None, *, n_merged: int = 120):
    """A GPT2Tokenizer (byte-level BPE): '!' is id 0 as in GPT-2, `<|endoftext|>` is the last id."""
    from transformers import GPT2Tokenizer

    vocab, merges = _train_byte_level_bpe(_corpus(corpus), n_merged)
    if vocab.get("!") != 0:
        raise RuntimeError("byte-level BPE training did not put '!' at id 0 (GPT-2 convention)")
    vocab["<|endoftext|>"] = len(vocab)
    tok = GPT2Tokenizer(vocab=vocab, merges=merges)
    assert tok.eos_token_id == len(vocab) - 1 and tok.eos_token_id != 0
    return tok


def build_test_bert_tokenizer(corpus: Iterable[str] | None = None):
    """A BertTokenizer (uncased WordPiece) with `[PAD]`=0. The vocabulary is built, not
    trained (WordPiece training breaks frequency ties differently from run to run): the
    specials, every character alone and as a `##` continuation, then every whole word."""
    from transformers import BertTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.BertNormalizer(lowercase=True)
    splitter = pre_tokenizers.BertPreTokenizer()
    words = sorted({w for t in _corpus(corpus) for w, _ in splitter.pre_tokenize_str(normalizer.normalize_str(t))})
    chars = sorted({c for w in words for c in w})
    pieces = specials + chars + [f"##{c}" for c in chars] + [w for w in words if len(w) > 1]
    return BertTokenizer(vocab={p: i for i, p in enumerate(pieces)}, do_lower_case=True)
