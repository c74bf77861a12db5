"""AutoCap model: stage freezing, metadata in the encoder input, the delimiter layout, prompt
and caption limits, official layout, save / load."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from genau_core.autocap.configs import AUDIO_DELIMITERS, FIELD_DELIMITERS, micro_config
from genau_core.autocap.model import build_autocap, load_pretrained, save_pretrained
from genau_core.autocap.text import metadata_ids, water_fill
from genau_core.autocap.train import set_stage

SR = 32000


@pytest.fixture(scope="module")
def model():
    return build_autocap(micro_config(), seed=0)


def _clips(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(2 * SR) / SR
    return [
        (0.3 * np.sin(2 * np.pi * (200 + 300 * i) * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
        for i in range(n)
    ]


BRIDGE = (
    "htsat_proj.",
    "audio_positions.",
    "audio_norm.",
    "qformer.",
    "qformer_proj.",
    "clap_proj.",
    "clap_norm.",
    "delimiters.",
)


@pytest.mark.parametrize("stage", [1, 2])
def test_stage_freezing_exactly_which_parameters_get_gradients(model, stage):
    trainable = set_stage(model, stage)
    model.train()
    model.zero_grad(set_to_none=True)
    batch = model.prepare(_clips(2), [{"title": "a sine"}, {"description": "noise"}], ["a tone", "some noise"])
    model(batch).backward()
    names = {n for n, p in model.named_parameters()}
    expected = {n for n in names if n.startswith(BRIDGE)}
    if stage == 2:
        expected |= {n for n in names if n.startswith("bart.") and n != "bart.model.shared.weight"}
    got = {n for n, p in model.named_parameters() if p.grad is not None}
    assert got == expected
    assert {n for n, p in model.named_parameters() if p.requires_grad} == expected
    assert len(trainable) == len(expected)
    # every trainable tensor really receives a signal; no frozen one (encoders, word embeddings) does
    assert all(
        float(p.grad.abs().sum()) > 0
        for n, p in model.named_parameters()
        if n in expected and n != "audio_positions.weight"
    )
    assert not any(n.startswith(("htsat.", "clap.")) for n in got)
    assert "bart.model.shared.weight" not in got  # tied with encoder/decoder embed_tokens and lm_head
    assert model.bart.lm_head.weight is model.bart.model.shared.weight
    # frozen encoders stay in inference mode while the rest trains
    assert model.training and not model.htsat.training and not model.clap.training
    model.zero_grad(set_to_none=True)


def test_stage_two_step_leaves_frozen_weights_unchanged():
    m = build_autocap(micro_config(), seed=1)
    trainable = set_stage(m, 2)
    m.train()
    frozen = {n: p.detach().clone() for n, p in m.named_parameters() if not p.requires_grad}
    before_q = m.qformer.query_tokens.detach().clone()
    opt = torch.optim.Adam(trainable, lr=1e-2)
    loss = m(m.prepare(_clips(2), None, ["a tone", "a hum"]))
    loss.backward()
    opt.step()
    assert all(torch.equal(p, frozen[n]) for n, p in m.named_parameters() if n in frozen)
    assert not torch.equal(m.qformer.query_tokens, before_q)


def test_metadata_changes_the_encoder_input(model):
    model.eval()
    clip = _clips(1)
    with torch.no_grad():
        plain = model.encoder_input(model.prepare(clip, [{}]))
        titled = model.encoder_input(model.prepare(clip, [{"title": "rain on a roof"}]))
        other = model.encoder_input(model.prepare(clip, [{"title": "a dog barks"}]))
    head = 1 + 2 + model.cfg.audio_token_count  # x_clap <AUDIO> x_audio </AUDIO>
    assert torch.equal(plain.embeds[:, :head], titled.embeds[:, :head])  # same audio part
    assert titled.embeds.shape[1] > plain.embeds.shape[1]
    n = min(titled.embeds.shape[1], other.embeds.shape[1])
    assert not torch.allclose(titled.embeds[:, head:n], other.embeds[:, head:n])
    # and it reaches the encoder output the decoder reads
    with torch.no_grad():
        h1, _ = model.encode(model.prepare(clip, [{"title": "rain on a roof"}]))
        h2, _ = model.encode(model.prepare(clip, [{"title": "a dog barks"}]))
    assert not torch.allclose(h1[:, :head], h2[:, :head])


def test_delimiter_layout_of_the_input_sequence(model):
    model.eval()
    tok = model.tokenizer
    meta = {"title": "a dog", "description": "barking"}
    title_toks = tok.convert_ids_to_tokens(tok("a dog", add_special_tokens=False)["input_ids"])
    desc_toks = tok.convert_ids_to_tokens(tok("barking", add_special_tokens=False)["input_ids"])
    q = model.cfg.audio_token_count
    assert model.describe_input(meta) == [
        "x_clap", "<AUDIO>", f"x_audio*{q}", "</AUDIO>",
        "<TITLE>", *title_toks, "</TITLE>", "<HQVC>", "</HQVC>", "<DESC>", *desc_toks, "</DESC>",
    ]  # fmt: skip
    # delimiter tokens were added to the tokenizer right after BART's vocabulary, in table order
    v = model.cfg.bart.vocab_size
    assert tok.convert_tokens_to_ids(list(model.cfg.delimiter_tokens)) == list(
        range(v, v + len(model.cfg.delimiter_tokens))
    )
    # the numeric sequence matches the symbolic one
    batch = model.prepare(_clips(1), [meta])
    with torch.no_grad():
        enc = model.encoder_input(batch)
        _, x_clap = model.encode_audio(batch)
        x = enc.embeds[0]
        d = model.delimiters.weight
        row = lambda t: d[model.cfg.delimiter_tokens.index(t)]  # noqa: E731
        assert torch.allclose(x[0], x_clap[0, 0])
        assert torch.equal(x[1], row(AUDIO_DELIMITERS[0])) and torch.equal(x[2 + q], row(AUDIO_DELIMITERS[1]))
        meta_part = x[3 + q :]
        ids = metadata_ids(tok, model.cfg, meta)
        assert meta_part.shape[0] == len(ids) and enc.mask.sum() == x.shape[0]
        assert torch.equal(meta_part[0], row(FIELD_DELIMITERS["title"][0]))
        emb = model.bart.get_input_embeddings()
        assert torch.equal(meta_part[1], emb(torch.tensor(ids[1])))  # metadata uses BART's own embeddings
        assert torch.equal(meta_part[-1], row(FIELD_DELIMITERS["description"][1]))


def test_prompt_and_caption_limits(model):
    cfg, tok = model.cfg, model.tokenizer
    long = " ".join(["thunder"] * 400)
    ids = metadata_ids(tok, cfg, {"title": long, "video_caption": "short one", "description": long})
    assert len(ids) == cfg.max_prompt_tokens == 128
    names = [cfg.delimiter_tokens[i - cfg.bart.vocab_size] for i in ids if i >= cfg.bart.vocab_size]
    assert names == [
        "<TITLE>",
        "</TITLE>",
        "<HQVC>",
        "</HQVC>",
        "<DESC>",
        "</DESC>",
    ]  # every field keeps its delimiters
    assert water_fill([300, 3, 300], 122) == [59, 3, 60] and water_fill([5, 7], 100) == [5, 7]
    batch = model.prepare(_clips(1), None, [" ".join(["beep"] * 100)])
    assert batch.labels.shape[1] == cfg.max_caption_tokens == 30
    out = model.generate_ids(model.prepare(_clips(2), None))
    assert out.shape[1] <= cfg.generation.max_length and cfg.generation.num_beams == 2


def test_batched_metadata_pads_and_masks(model):
    model.eval()
    b = model.prepare(_clips(2), [{"title": "a very long title with many words in it"}, {}])
    assert b.meta_mask[0].sum() > b.meta_mask[1].sum() == 6  # three empty fields: delimiters only
    with torch.no_grad():
        one = model.encode(model.prepare(_clips(2)[1:], [{}]))[0]
        both = model.encode(b)[0]
    assert torch.allclose(both[1, : one.shape[1]], one[0], atol=1e-5)  # padding does not change the clip


def test_official_layout_input_and_clap_after_the_encoder():
    m = build_autocap(micro_config(layout="official", meta_fields=("video_caption", "title")), seed=0).eval()
    tok = m.tokenizer
    ids = metadata_ids(tok, m.cfg, {"title": "a dog", "video_caption": "a man", "description": "ignored"})
    text = tok.decode(ids[:-1])
    assert text == "<HQVC> a man </HQVC> \n <TITLE> a dog </TITLE>" and ids[-1] == tok.eos_token_id
    b = m.prepare(_clips(1), [{"title": "a dog"}])
    with torch.no_grad():
        enc = m.encoder_input(b)
        hidden, mask = m.encode(b)
    bos = m.bart.get_input_embeddings()(torch.tensor([tok.bos_token_id]))
    assert torch.equal(enc.embeds[0, 0], bos[0]) and enc.clap_after is not None
    assert hidden.shape[1] == enc.embeds.shape[1] + 1 and mask.shape[1] == hidden.shape[1]
    assert torch.allclose(hidden[:, :1], enc.clap_after)
    assert len(m.generate(b)) == 1


def test_all_token_variant_feeds_every_htsat_token():
    cfg = micro_config(audio_tokens="all", bart=replace(micro_config().bart, max_position_embeddings=400))
    m = build_autocap(cfg, seed=0).eval()
    assert not hasattr(m, "qformer") and cfg.audio_token_count == cfg.htsat.max_frames == 256
    with torch.no_grad():
        enc = m.encoder_input(m.prepare(_clips(1)))
    assert enc.embeds.shape[1] == 1 + 2 + 256 + 6


def test_save_and_load_round_trip(model, tmp_path):
    model.eval()
    save_pretrained(model, tmp_path / "m")
    again = load_pretrained(tmp_path / "m")
    assert again.identity.startswith("sha256:") and again.cfg == model.cfg
    b = model.prepare(_clips(2), [{"title": "x"}, {}])
    with torch.no_grad():
        assert torch.equal(model.encode(b)[0], again.encode(b)[0])
    assert model.generate(b) == again.generate(b)
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_pretrained(tmp_path / "m")


def test_bad_inputs_are_clear(model):
    with pytest.raises(ValueError, match="2 metadata entries for 1 clips"):
        model.prepare(_clips(1), [{}, {}])
    with pytest.raises(ValueError, match="NaN"):
        model.prepare([np.full(SR, np.nan, dtype=np.float32)])
    with pytest.raises(ValueError, match="caption labels"):
        model(model.prepare(_clips(1)))
