"""MS-CLAP 2022 (Cnn14 + BERT) and 2023 (HTS-AT + GPT-2) on tiny random configurations."""

from __future__ import annotations

import warnings
from dataclasses import replace

import librosa
import numpy as np
import pytest
import torch

from bench.checkpoints import sha256_file
from bench.metrics.backbones.ms_clap import MsClap2022, MsClap2023
from genau_core.checkpoint_io import CheckpointFormatError, expected_state
from genau_core.networks.ms_clap import (
    MS_CLAP_2022,
    MS_CLAP_2023,
    MsClapNet,
    convert_ms_clap_state_dict,
    fit_to_duration,
    tiny_ms_clap_config,
    to_ms_clap_state_dict,
)
from genau_core.networks.stft import slaney_mel_matrix
from genau_core.tokenizers import wordpiece_bert_tokenizer, bpe_gpt2_tokenizer

SR = 44100
TEXTS = ["a dog barks loudly", "rain on a roof", "a man speaks " * 8]  # the last is longer than text_len


@pytest.fixture(scope="module", params=["2022", "2023"])
def setup(request):
    version = request.param
    tok = wordpiece_bert_tokenizer() if version == "2022" else bpe_gpt2_tokenizer()
    cfg = tiny_ms_clap_config(version, len(tok))
    cls = MsClap2022 if version == "2022" else MsClap2023
    return version, cls, cfg, tok, cls(config=cfg, tokenizer=tok).init_random(0)


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    return [
        (rng.standard_normal(15000) * 0.2).astype(np.float32),  # short: repeated
        (np.sin(np.arange(SR) / 5.0) * 0.5).astype(np.float32),  # exactly 1 s (tiny duration)
        (rng.standard_normal(60000) * 0.3).astype(np.float32),  # long: first second kept
    ]


def _emb(backbone, clips):
    return np.stack([o["embedding"] for o in backbone.embed(clips)])


# Keys, shapes, identity, determinism and batch independence (audio and text):
# tests/bench/metrics/backbones/test_backbone_contract.py.


def test_audio_preparation_repeats_and_crops_deterministically(setup, clips):
    x = np.arange(1, 8, dtype=np.float32)
    np.testing.assert_array_equal(fit_to_duration(x, 30), np.tile(x, 5)[:30])  # ceil(30 / 7) = 5 repeats, cut
    np.testing.assert_array_equal(fit_to_duration(np.arange(100, dtype=np.float32), 30), np.arange(30))
    np.testing.assert_array_equal(fit_to_duration(x, 7), x)
    model = setup[-1]
    p = model.model_input(clips[0])
    assert p.shape == (SR,)
    np.testing.assert_array_equal(p, np.tile(clips[0], 3)[:SR])  # no int16 round trip in msclap
    with pytest.raises(ValueError, match="empty"):
        fit_to_duration(np.zeros(0, np.float32), 30)


def test_tokenization_as_msclap(setup):
    version, _, cfg, tok, model = setup
    short, long = model.tokenize([TEXTS[0], TEXTS[2]])
    assert len(short["input_ids"]) == cfg.text_len
    assert len(long["input_ids"]) > cfg.text_len  # msclap pads to text_len but never truncates
    if version == "2023":
        eot = model.tokenizer.convert_tokens_to_ids("<|endoftext|>")
        ids = short["input_ids"]
        last = sum(i != 0 for i in ids) - 1  # msclap's index of the pooled token
        assert ids[last] == eot and eot != 0 and ids[-1] == 0  # padded with '!' = id 0
        assert set(short) == {"input_ids", "attention_mask"}
    else:
        assert short["input_ids"][0] == model.tokenizer.cls_token_id and short["input_ids"][-1] == 0
        assert set(short) == {"input_ids", "token_type_ids", "attention_mask"}
    with pytest.raises(ValueError, match="text 1 has .* tokens, more than the 64 positions"):
        model.tokenize(["ok", "a man speaks " * 40])
    # texts of different encoded lengths are batched apart; results do not depend on the batch
    together = model.embed_text(TEXTS)
    alone = np.concatenate([model.embed_text([t]) for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_text_embedding_ignores_padding_length(setup, tmp_path):
    """The pooled token ([CLS] for BERT, the end-of-text token for GPT-2) must not move or
    change when texts are padded further."""
    _, cls, cfg, tok, model = setup
    path = model.save_official(tmp_path / "w.pth")
    longer = cls(config=replace(cfg, text_len=cfg.text_len + 9), tokenizer=tok).load(path)
    np.testing.assert_allclose(longer.embed_text(TEXTS[:2]), model.embed_text(TEXTS[:2]), atol=1e-5)


def test_padding_columns_are_dropped_without_changing_embeddings(setup):
    _, _, _, _, model = setup
    texts = ["a dog barks", "rain falls on a metal roof"]
    encs = model.tokenize(texts)  # padded to text_len, as msclap does
    full = {k: torch.tensor([e[k] for e in encs]) for k in encs[0]}
    assert int(full["attention_mask"].sum(1).max()) < full["input_ids"].shape[1]
    with torch.inference_mode():
        reference = model.model.embed_text(full).numpy()
    np.testing.assert_allclose(model.embed_text(texts), reference, rtol=0, atol=1e-6)


def test_front_end(setup, clips):
    version, _, cfg, _, model = setup
    melw = model.model.logmel_extractor.melW.detach().numpy()
    if version == "2023":
        # msclap's HTSATWrapper builds its mel matrix for 32 kHz (models/config.py), not 44.1 kHz
        np.testing.assert_array_equal(melw, slaney_mel_matrix(32000, 1024, cfg.n_mels, 50, 14000))
        assert np.abs(melw - slaney_mel_matrix(44100, 1024, cfg.n_mels, 50, 14000)).max() > 1e-3
    y = model.model_input(clips[2])
    spec = librosa.stft(
        y.astype(np.float64), n_fft=1024, hop_length=320, window="hann", center=True, pad_mode="reflect"
    )
    stft = np.abs(spec) ** 2
    ref = 10 * np.log10(np.maximum(melw.astype(np.float64).T @ stft, 1e-10)).T
    ours = model.log_mel(clips[2])
    assert ours.shape == ref.shape == (1 + SR // 320, cfg.n_mels)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


OFFICIAL_KEYS = {
    "2022": (
        "logit_scale",
        "audio_encoder.base.spectrogram_extractor.stft.conv_imag.weight",
        "audio_encoder.base.logmel_extractor.melW",
        "audio_encoder.base.bn0.running_var",
        "audio_encoder.base.conv_block1.conv1.weight",
        "audio_encoder.base.conv_block6.bn2.bias",
        "audio_encoder.base.fc1.weight",
        "audio_encoder.base.fc_audioset.bias",
        "audio_encoder.projection.linear1.weight",
        "audio_encoder.projection.layer_norm.bias",
        "caption_encoder.base.embeddings.word_embeddings.weight",
        "caption_encoder.base.encoder.layer.1.attention.self.query.weight",
        "caption_encoder.base.pooler.dense.weight",
        "caption_encoder.projection.linear2.weight",
    ),
    "2023": (
        "logit_scale",
        "audio_encoder.base.htsat.logmel_extractor.melW",
        "audio_encoder.base.htsat.bn0.running_mean",
        "audio_encoder.base.htsat.layers.0.blocks.1.attn.qkv.weight",
        "audio_encoder.base.htsat.layers.0.blocks.1.attn_mask",
        "audio_encoder.base.htsat.layers.0.downsample.norm.weight",
        "audio_encoder.base.htsat.tscam_conv.weight",
        "audio_encoder.base.htsat.head.weight",
        "audio_encoder.projection.linear2.weight",
        "caption_encoder.base.wte.weight",
        "caption_encoder.base.h.1.attn.c_attn.weight",
        "caption_encoder.base.ln_f.bias",
        "caption_encoder.projection.layer_norm.weight",
    ),
}


def test_checkpoint_round_trip_in_official_layout(setup, clips, tmp_path):
    version, cls, cfg, tok, model = setup
    path = model.save_official(tmp_path / f"CLAP_weights_{version}.pth")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert list(raw) == ["model"]
    for key in OFFICIAL_KEYS[version]:
        assert key in raw["model"], key
    assert not any(k.startswith(("audio_model.", "text_model.")) for k in raw["model"])
    loaded = cls(config=cfg, tokenizer=tok).load(path)
    assert loaded.identity.weights == "official"
    assert loaded.identity.checkpoint_id == f"sha256:{sha256_file(path)}"
    np.testing.assert_array_equal(_emb(loaded, clips), _emb(model, clips))
    np.testing.assert_array_equal(loaded.embed_text(TEXTS), model.embed_text(TEXTS))


def test_key_conversion_round_trip_and_legacy_buffers(setup):
    version, _, cfg, _, model = setup
    original = to_ms_clap_state_dict(model.model)
    ours, deviation = convert_ms_clap_state_dict(original, cfg)
    assert deviation and max(deviation.values()) == 0.0
    net = MsClapNet(cfg)
    net.load_state_dict(ours, strict=True)
    back = to_ms_clap_state_dict(net)
    assert list(back) == list(original) and all(torch.equal(back[k], original[k]) for k in original)
    # buffers that older transformers saved in the text tower are accepted, and checked
    legacy = dict(original)
    if version == "2023":
        n = cfg.text.n_positions
        legacy["caption_encoder.base.h.0.attn.bias"] = torch.ones(n, n, dtype=torch.bool).tril()[None, None]
        legacy["caption_encoder.base.h.0.attn.masked_bias"] = torch.tensor(-1e4)
        bad_key, bad_value = "caption_encoder.base.h.1.attn.bias", torch.ones(1, 1, n, n, dtype=torch.bool)
    else:
        n = cfg.text.max_position_embeddings
        legacy["caption_encoder.base.embeddings.position_ids"] = torch.arange(n)[None]
        bad_key, bad_value = "caption_encoder.base.embeddings.position_ids", torch.zeros(1, n, dtype=torch.long)
    again, _ = convert_ms_clap_state_dict(legacy, cfg)
    assert set(again) == set(ours)
    with pytest.raises(CheckpointFormatError, match="legacy.pth"):
        convert_ms_clap_state_dict({**legacy, bad_key: bad_value}, cfg, source="legacy.pth")


def test_bad_checkpoints_are_clear_errors(setup, tmp_path):
    version, cls, cfg, tok, model = setup
    original = to_ms_clap_state_dict(model.model)
    renamed = dict(original)
    renamed["caption_encoder.head.weight"] = renamed.pop("caption_encoder.projection.linear1.weight")
    path = tmp_path / "renamed.pth"
    torch.save({"model": renamed}, path)
    with pytest.raises(CheckpointFormatError) as e:
        cls(config=cfg, tokenizer=tok).load(path)
    msg = str(e.value)
    assert str(path) in msg and "caption_encoder.head.weight" in msg and "text_projection.linear1.weight" in msg
    # a file of the other version is refused, not half-loaded as msclap's strict=False would
    other_version = "2023" if version == "2022" else "2022"
    other_tok = bpe_gpt2_tokenizer() if other_version == "2023" else wordpiece_bert_tokenizer()
    other_cfg = tiny_ms_clap_config(other_version, len(other_tok))
    other = (MsClap2023 if other_version == "2023" else MsClap2022)(config=other_cfg, tokenizer=other_tok)
    good = model.save_official(tmp_path / "good.pth")
    with pytest.raises(CheckpointFormatError, match="good.pth: not a MS-CLAP"):
        other.load(good)


def test_stored_front_end_is_used_with_a_warning(setup, clips, tmp_path):
    _, cls, cfg, tok, model = setup
    state = to_ms_clap_state_dict(model.model)
    key = next(k for k in state if k.endswith("logmel_extractor.melW"))
    state[key] = state[key] * 2.0
    path = tmp_path / "scaled_melw.pth"
    torch.save({"model": state}, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = cls(config=cfg, tokenizer=tok).load(path)
    assert any("scaled_melw.pth" in str(w.message) and "melW" in str(w.message) for w in caught)
    diff = loaded.log_mel(clips[1]) - model.log_mel(clips[1])
    np.testing.assert_allclose(diff[model.log_mel(clips[1]) > -90], 10 * np.log10(2.0), atol=1e-3)
    assert loaded.settings()["frontend_deviation"]["logmel_extractor.melW"] > 0


def test_full_size_configurations_on_meta_device():
    s22 = expected_state(lambda: MsClapNet(MS_CLAP_2022))
    s23 = expected_state(lambda: MsClapNet(MS_CLAP_2023))
    assert s22["audio_model.fc1.weight"] == (2048, 2048)
    assert s22["audio_model.conv_block6.conv2.weight"] == (2048, 2048, 3, 3)
    assert s22["audio_projection.linear1.weight"] == (1024, 2048)
    assert s22["text_model.embeddings.word_embeddings.weight"] == (30522, 768)
    assert s23["audio_model.audio_encoder.norm.weight"] == (768,)
    assert s23["audio_projection.linear1.weight"] == (1024, 768)
    assert s23["text_model.wte.weight"] == (50257, 768)
    assert s23["text_projection.linear2.weight"] == (1024, 1024)
    assert MS_CLAP_2022.clip_samples == 5 * 44100 and MS_CLAP_2023.clip_samples == 7 * 44100
    assert (MS_CLAP_2022.text_len, MS_CLAP_2023.text_len) == (100, 77)
    assert MS_CLAP_2023.frontend_sample_rate == 32000 and MS_CLAP_2022.frontend_sample_rate == 44100
    assert MsClap2022.checkpoint_filename == "CLAP_weights_2022.pth"
