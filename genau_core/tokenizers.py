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

import json
from functools import lru_cache
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
    """ "sha256:<hex>" naming everything of a tokenizer that decides its token ids: the full `tokenizers`
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


def bpe_roberta_tokenizer(corpus: Iterable[str] | None = None, *, n_merged: int = 120):
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


def bpe_gpt2_tokenizer(corpus: Iterable[str] | None = None, *, n_merged: int = 120):
    """A GPT2Tokenizer (byte-level BPE): '!' is id 0 as in GPT-2, `<|endoftext|>` is the last id."""
    from transformers import GPT2Tokenizer

    vocab, merges = _train_byte_level_bpe(_corpus(corpus), n_merged)
    if vocab.get("!") != 0:
        raise RuntimeError("byte-level BPE training did not put '!' at id 0 (GPT-2 convention)")
    vocab["<|endoftext|>"] = len(vocab)
    tok = GPT2Tokenizer(vocab=vocab, merges=merges)
    assert tok.eos_token_id == len(vocab) - 1 and tok.eos_token_id != 0
    return tok


def wordpiece_bert_tokenizer(corpus: Iterable[str] | None = None):
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


# -- in-process tokenizers of the `-tiny` twins (no hub access) ------------------------------------
# Every tiny tokenizer is built here, deterministically from a fixed built-in corpus, so the same tiny
# model always sees the same token ids. Each builder is the one its tiny model has been tested with:
# a different vocabulary would change every tiny number recorded so far.

SOUND_CORPUS = (
    "a dog barks while birds chirp in the background",
    "a man speaks and a car engine revs",
    "water flows and splashes in a stream",
    "a pure sine tone at a steady pitch",
    "white noise hisses steadily",
    "a bell rings twice and fades out",
    "rain falls on a tin roof with distant thunder",
    "footsteps on gravel and wind blowing",
    "an engine idles then accelerates away",
    "a crowd cheers and claps loudly",
    "a cat meows and a door creaks open",
    "clicking sounds repeat at a regular rhythm",
    "a low hum with a rising frequency sweep",
    "music plays softly while people talk",
    "a siren wails as traffic passes by",
)


# RoBERTa's special tokens, as the tokenizer classes take them
ROBERTA_SPECIAL_TOKENS: dict[str, str] = dict(
    bos_token="<s>",
    eos_token="</s>",
    unk_token="<unk>",
    pad_token="<pad>",
    mask_token="<mask>",
    cls_token="<s>",
    sep_token="</s>",
)


@lru_cache(maxsize=None)
def roberta_style_tokenizer(vocab_size: int = 300, model_max_length: int = 77, corpus: tuple[str, ...] = SOUND_CORPUS):
    """A RoBERTa-layout tokenizer: <s>=0, <pad>=1, </s>=2, <unk>=3, <mask>=4; wraps in <s> ... </s>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        **ROBERTA_SPECIAL_TOKENS,
        model_max_length=model_max_length,
    )


@lru_cache(maxsize=None)
def roberta_class_tokenizer():
    """The in-process RoBERTa-layout BPE, as a `RobertaTokenizer` (AudioLDM2Pipeline checks the class)."""
    from transformers import RobertaTokenizer

    base = roberta_style_tokenizer()
    return RobertaTokenizer(
        tokenizer_object=base.backend_tokenizer,
        **ROBERTA_SPECIAL_TOKENS,
        model_max_length=base.model_max_length,
    )


@lru_cache(maxsize=None)
def t5_style_tokenizer(vocab_size: int = 120, model_max_length: int = 32):
    """A FLAN-T5-layout SentencePiece-style tokenizer: <pad>=0, </s>=1, <unk>=2; appends </s>.

    A Unigram model trained in-process on the built-in sound-description corpus (deterministic).
    """
    from transformers import T5Tokenizer

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(SOUND_CORPUS, trainer=trainer)
    vocab = [(piece, float(score)) for piece, score in json.loads(tok.to_str())["model"]["vocab"]]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=model_max_length)


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
    return roberta_style_tokenizer(vocab_size, model_max_length, corpus=TINY_CORPUS)
