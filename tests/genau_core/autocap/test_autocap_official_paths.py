"""AutoCap's two official input orders: captioning follows the official `generate()`, training
follows the official `forward_decoder()`.

Both references below are transcriptions of snap-research/GenAU
`AutoCap/src/models/pl_htsat_q_bart_captioning.py` (class `AutoCap`), written from reading the
official source at commit 88f4280:
- `official_generate` follows `AutoCap.generate` (lines ~729-819): the CLAP token is prepended
  to the BART *encoder input* (after `add_bos_embds`, before `self.decoder.model.encoder`), then
  `self.decoder.generate(encoder_outputs=..., decoder_input_ids=<decoder start>, ...)`;
- `official_training_loss` follows `AutoCap.forward_decoder` (lines ~585-653): the encoder runs
  on `<s> x_audio meta`, and the CLAP token is prepended to the encoder *output*.
The frozen encoders (HTSAT, LAION-CLAP audio tower) and the Q-Former are the modules of the
model under test (their equality with the official modules is proven in
test_autocap_mapping.py / the backbone tests); the transcriptions call them on the same
weights and inputs in the official order.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genau_core.autocap.configs import GenerationSettings, micro_config
from genau_core.autocap.model import build_autocap

SR = 32000
META = [
    {"title": "rain on a tin roof", "video_caption": "a man walks in the rain"},
    {"title": "engine", "video_caption": ""},
    {"title": "", "video_caption": "a dog runs on a beach while waves crash"},
]


@pytest.fixture(scope="module")
def model():
    return build_autocap(micro_config(layout="official", meta_fields=("video_caption", "title")), seed=3).eval()


def _clips(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    t = np.arange(2 * SR) / SR
    return [
        (0.3 * np.sin(2 * np.pi * (150 + 400 * i) * t) + 0.1 * rng.standard_normal(t.size)).astype(np.float32)
        for i in range(n)
    ]


# ------------------------------------------------------------- transcriptions of the official code ---
def _official_meta_strings(meta):
    """AutoCap.get_meta_dict with meta_keys [video_caption, title] and add_special_tokens: the
    tagged fields in its `ordered_keys` order, joined by ' \\n '."""
    return [f"<HQVC> {m.get('video_caption', '')} </HQVC> \n <TITLE> {m.get('title', '')} </TITLE>" for m in meta]


def _special_tokens_embed(m, token_ids):
    """SpecialTokensEmbeddings.forward: ids >= base vocab from the added table, the rest from BART's."""
    base = m.cfg.bart.vocab_size
    special = token_ids >= base
    emb = m.bart.model.encoder.embed_tokens(torch.where(special, m.tokenizer.pad_token_id, token_ids))
    emb = emb.clone()
    emb.view(-1, emb.shape[-1])[special.view(-1)] = m.delimiters(token_ids[special] - base)
    return emb


def _encode_meta(m, meta_strings):
    """AutoCap.encode_meta(meta, add_bos=False, add_eos=True): tokenize without special tokens,
    append one pad, write </s> at the first pad, unmask it."""
    tok = m.tokenizer
    t = tok(
        meta_strings,
        padding="longest",
        truncation=True,
        max_length=m.cfg.max_prompt_tokens,
        return_tensors="pt",
        add_special_tokens=False,
    )
    ids, att = t["input_ids"], t["attention_mask"]
    ids = torch.cat([ids, torch.full((ids.size(0), 1), tok.pad_token_id, dtype=torch.long)], dim=1)
    att = torch.cat([att, torch.zeros((att.size(0), 1), dtype=torch.long)], dim=1)
    pad_positions = (ids == tok.pad_token_id).long().argmax(dim=1)
    ids.scatter_(1, pad_positions.unsqueeze(1), tok.eos_token_id)
    att.scatter_(1, pad_positions.unsqueeze(1), 1)
    return _special_tokens_embed(m, ids), att


def _audio_tokens(m, waveform):
    """forward_encoder (HTSAT -> enc_to_dec_proj) + encode_audioQformer_audio + audio_qformer_proj."""
    enc = m.htsat_proj(m.htsat(waveform))
    pos = m.audio_positions(torch.arange(enc.shape[1]).unsqueeze(0).expand(enc.shape[0], -1))
    hidden = m.qformer(m.audio_norm(pos + enc))
    return m.qformer_proj(hidden), torch.ones(hidden.shape[:-1], dtype=torch.long)


def _add_bos_embds(m, embeds, attn_mask):
    bos = torch.ones([embeds.shape[0], 1], dtype=torch.long) * m.tokenizer.bos_token_id
    return torch.cat([m.bart.model.encoder.embed_tokens(bos), embeds], dim=1), torch.cat(
        [attn_mask[:, :1], attn_mask], dim=1
    )


def _clap_token(m, clap_waveform):
    """clap_model.get_audio_embedding_from_data -> clap_proj -> clap_layernorm."""
    return m.clap_norm(m.clap_proj(m.clap.embed_audio(clap_waveform)))


@torch.no_grad()
def official_encoder_states(m, batch, meta_strings):
    """AutoCap.generate up to its encoder pass: (encoder outputs, attention mask)."""
    enc, attn = _audio_tokens(m, batch.waveform)
    meta, meta_attn = _encode_meta(m, meta_strings)
    attn = torch.cat([attn, meta_attn], dim=1)
    enc = torch.cat([enc, meta], dim=1)
    enc, attn = _add_bos_embds(m, enc, attn)
    clap = _clap_token(m, batch.clap_waveform)
    attn = torch.cat([torch.ones((clap.shape[0], 1), dtype=torch.long), attn], dim=1)
    enc = torch.cat([clap.unsqueeze(1), enc], dim=1)  # before the encoder
    out = m.bart.model.encoder(input_ids=None, attention_mask=attn, inputs_embeds=enc, return_dict=True)
    return out, attn


@torch.no_grad()
def official_generate(m, batch, meta_strings, *, num_beams, max_length=30, min_length=2, repetition_penalty=1.0):
    """AutoCap.generate (beam search branch) -> token ids. The decoding options it does not pass
    come from facebook/bart-base's config.json (no_repeat_ngram_size 3, early_stopping true,
    forced <s> / </s>), written out here."""
    from transformers import GenerationConfig

    out, attn = official_encoder_states(m, batch, meta_strings)
    b = out["last_hidden_state"].size(0)
    input_ids = torch.full((b, 1), m.bart.config.decoder_start_token_id, dtype=torch.long)
    bart_base_defaults = GenerationConfig(
        no_repeat_ngram_size=3,
        early_stopping=True,
        forced_bos_token_id=0,
        forced_eos_token_id=2,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
        decoder_start_token_id=2,
    )
    return m.bart.generate(
        attention_mask=attn,
        decoder_input_ids=input_ids,
        decoder_attention_mask=torch.ones((b, 1), dtype=torch.long),
        encoder_outputs=out,
        max_length=max_length,
        min_length=min_length,
        num_beams=num_beams,
        repetition_penalty=repetition_penalty,
        generation_config=bart_base_defaults,
    )


@torch.no_grad()
def official_training_loss(m, batch, meta_strings, captions):
    """AutoCap.forward_decoder (eval mode: dropouts are identities): the CLAP token joins after
    the encoder; CrossEntropyLoss(ignore_index=-100, label_smoothing=0.1)."""
    enc, attn = _audio_tokens(m, batch.waveform)
    meta, meta_attn = _encode_meta(m, meta_strings)
    attn = torch.cat([attn, meta_attn], dim=1)
    enc, attn = _add_bos_embds(m, torch.cat([enc, meta], dim=1), attn)
    enc = m.bart.model.encoder(input_ids=None, inputs_embeds=enc, attention_mask=attn, return_dict=True)[
        "last_hidden_state"
    ]
    clap = _clap_token(m, batch.clap_waveform)
    attn = torch.cat([torch.ones((clap.shape[0], 1), dtype=torch.long), attn], dim=1)
    enc = torch.cat([clap.unsqueeze(1), enc], dim=1)  # after the encoder
    text = m.tokenizer(
        captions, padding="longest", truncation=True, max_length=m.cfg.max_caption_tokens, return_tensors="pt"
    )
    targets = text["input_ids"].masked_fill(text["input_ids"] == m.tokenizer.pad_token_id, -100)
    dec_in = targets.new_zeros(targets.shape)
    dec_in[:, 1:] = targets[:, :-1].clone()
    dec_in[:, 0] = m.bart.config.decoder_start_token_id
    dec_in.masked_fill_(dec_in == -100, m.bart.config.pad_token_id)
    logits = m.bart(
        input_ids=None,
        attention_mask=attn,
        decoder_input_ids=dec_in,
        decoder_attention_mask=text["attention_mask"],
        encoder_outputs=(enc,),
        return_dict=True,
    )["logits"]
    return F.cross_entropy(
        logits.view(-1, m.cfg.bart.vocab_size), targets.view(-1), ignore_index=-100, label_smoothing=0.1
    )


# ------------------------------------------------------------------------------------ tests ---
def test_caption_encoder_input_is_the_official_generate_order(model):
    """x_clap enters the BART encoder first (official generate), not after it (training)."""
    batch = model.prepare(_clips(3), META)
    ref, ref_mask = official_encoder_states(model, batch, _official_meta_strings(META))
    with torch.no_grad():
        ours, mask = model.encode(batch, generation=True)
    assert torch.equal(mask, ref_mask)
    torch.testing.assert_close(ours, ref["last_hidden_state"], atol=1e-5, rtol=1e-5)
    assert model.describe_input(META[0], generation=True)[:2] == ["x_clap", model.tokenizer.bos_token]


@pytest.mark.parametrize("num_beams", [2, 3])
def test_generate_matches_the_official_generate(model, num_beams):
    """Same weights, same inputs, same beams: the official generate()'s token ids and captions."""
    batch = model.prepare(_clips(3), META)
    ref = official_generate(model, batch, _official_meta_strings(META), num_beams=num_beams)
    ours = model.generate_ids(batch, GenerationSettings(num_beams=num_beams))
    assert ours.tolist() == ref.tolist()
    assert model.generate(batch, GenerationSettings(num_beams=num_beams)) == model.decode(ref)


def test_training_loss_keeps_the_official_forward_decoder_order(model):
    """Training (teacher forcing) still prepends x_clap to the encoder output, as forward_decoder."""
    captions = ["rain falls on a roof", "an engine idles", "a dog barks and waves crash"]
    batch = model.prepare(_clips(3), META, captions)
    ref = official_training_loss(model, batch, _official_meta_strings(META), captions)
    with torch.no_grad():
        ours = model(batch, label_smoothing=0.1)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    # and the two orders really differ on these weights (the test would notice a swap)
    with torch.no_grad():
        train_states, _ = model.encode(batch)
        gen_states, _ = model.encode(batch, generation=True)
    assert train_states.shape == gen_states.shape and not torch.allclose(train_states, gen_states, atol=1e-3)
