"""In-process tokenizers for the offline `-tiny` twins (no hub access).

A byte-level BPE is trained on a small built-in corpus of sound descriptions; it is
deterministic, so the same tiny model always sees the same token ids.
"""

from __future__ import annotations

from functools import lru_cache

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
    bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>"
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
