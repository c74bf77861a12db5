"""LAION-CLAP backbone on a tiny random configuration (no download)."""

from __future__ import annotations

from dataclasses import replace

import librosa
import numpy as np
import pytest
import torch

from bench.checkpoints import CheckpointNotFound, sha256_file
from bench.metrics.backbones.laion_clap import LaionClapHtsatBase, LaionClapHtsatTiny
from genau_core.checkpoint_io import CheckpointFormatError, expected_state
from genau_core.networks.laion_clap import (
    HTSAT_BASE,
    HTSAT_TINY,
    LaionClapNet,
    build_frontend,
    convert_laion_clap_state_dict,
    fit_to_clip,
    int16_round_trip,
    tiny_laion_clap_config,
    to_laion_clap_state_dict,
)
from genau_core.tokenizers import bpe_roberta_tokenizer

SR = 48000


@pytest.fixture(scope="module")
def tok():
    return bpe_roberta_tokenizer()


@pytest.fixture(scope="module")
def cfg(tok):
    return tiny_laion_clap_config(len(tok))


@pytest.fixture(scope="module")
def model(cfg, tok):
    return LaionClapHtsatBase(config=cfg, tokenizer=tok).init_random(0)


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    return [
        (rng.standard_normal(17000) * 0.2).astype(np.float32),  # short: repeat-padded
        (np.sin(np.arange(48000) / 11.0) * 0.5).astype(np.float32),  # exactly clip_samples
        (rng.standard_normal(70000) * 0.3).astype(np.float32),  # long: first 48000 kept
    ]


@pytest.fixture(scope="module")
def official_file(model, tmp_path_factory):
    return model.save_official(tmp_path_factory.mktemp("laion") / "random_laion_clap.pt")


TEXTS = ["a dog barks loudly", "rain on a roof", "a man speaks " * 20]


def test_audio_and_text_embeddings_are_unit_vectors(model, clips):
    """Keys, shapes, identity, determinism and batch independence:
    tests/bench/metrics/backbones/test_backbone_contract.py."""
    out = model.embed(clips)  # short (repeat-padded), exact and long (cropped) clips
    for o in out:
        assert abs(np.linalg.norm(o["embedding"]) - 1.0) < 1e-5
    t = model.embed_text(TEXTS)  # the last text is longer than text_max_length
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    # text-audio cosine is just a dot product of these unit vectors
    cos = t @ np.stack([o["embedding"] for o in out]).T
    assert cos.shape == (3, 3) and np.all(np.abs(cos) <= 1 + 1e-5)


def test_audio_preparation_matches_laion_clap():
    x = np.array([0.5, -0.5, 1.7, -3.0, 1e-5, -0.99999], dtype=np.float32)
    q = int16_round_trip(x)
    # float32 * 32767 truncated to int16, then / 32767 (laion_clap float32_to_int16 / int16_to_float32)
    expected = np.array([16383, -16383, 32767, -32767, 0, -32766]) / 32767.0
    np.testing.assert_array_equal(q, expected.astype(np.float32))
    short = np.arange(1, 8, dtype=np.float32)
    padded = fit_to_clip(short, 30)  # 30 // 7 = 4 whole repeats, then zeros ("repeatpad")
    np.testing.assert_array_equal(padded[:28], np.tile(short, 4))
    np.testing.assert_array_equal(padded[28:], 0.0)
    long = np.arange(100, dtype=np.float32)
    np.testing.assert_array_equal(fit_to_clip(long, 30), long[:30])  # deterministic crop: first samples
    with pytest.raises(ValueError, match="empty"):
        fit_to_clip(np.zeros(0, np.float32), 30)


def test_prepare_and_input_validation(model, clips):
    p = model.model_input(clips[0])
    assert p.shape == (48000,) and p.dtype == np.float32
    np.testing.assert_array_equal(p[: 2 * 17000], np.tile(int16_round_trip(clips[0]), 2))
    with pytest.raises(ValueError, match="1-D"):
        model.embed([np.zeros((2, 48000), np.float32)])
    with pytest.raises(ValueError, match="NaN"):
        model.embed([np.full(48000, np.nan, np.float32)])
    with pytest.raises(TypeError, match="sequence of strings"):
        model.embed_text("one string")
    with pytest.raises(RuntimeError, match="init_random"):
        LaionClapHtsatTiny().embed(clips)


def _librosa_log_mel(y: np.ndarray, c) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=y.astype(np.float64),
        sr=c.sample_rate,
        n_fft=c.window_size,
        hop_length=c.hop_size,
        win_length=c.window_size,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=2.0,
        n_mels=c.n_mels,
        fmin=c.fmin,
        fmax=c.fmax,
        htk=False,
        norm="slaney",
    )
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).T


def test_log_mel_matches_librosa(model, cfg, clips):
    ours = model.log_mel(clips[2])
    ref = _librosa_log_mel(model.model_input(clips[2]), cfg)
    assert ours.shape == ref.shape == (1 + 48000 // 480, 16)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_full_size_front_end_matches_librosa_and_transformers():
    """The 10 s, 64-mel front end of the real models, against librosa and against transformers'
    ClapFeatureExtractor configured like laion_clap (fmin 50, no random crop on 480000 samples)."""
    from transformers import ClapFeatureExtractor

    c = HTSAT_BASE
    rng = np.random.default_rng(3)
    y = int16_round_trip((rng.standard_normal(c.clip_samples) * 0.2).astype(np.float32))
    spec, logmel = build_frontend(c)
    with torch.no_grad():
        ours = logmel(spec(torch.from_numpy(y)[None]))[0, 0].numpy()
    assert ours.shape == (1001, 64)
    np.testing.assert_allclose(ours, _librosa_log_mel(y, c), atol=2e-3)
    fe = ClapFeatureExtractor(frequency_min=50, frequency_max=14000, truncation="rand_trunc", padding="repeatpad")
    hf = fe(y, sampling_rate=48000, return_tensors="np")["input_features"][0, 0]
    np.testing.assert_allclose(ours, hf, atol=2e-3)


def test_checkpoint_round_trip_in_official_layout(model, cfg, tok, clips, official_file):
    raw = torch.load(official_file, map_location="cpu", weights_only=True)
    keys = set(raw["state_dict"])
    for key in (
        "module.logit_scale_a",
        "module.audio_branch.spectrogram_extractor.stft.conv_real.weight",
        "module.audio_branch.logmel_extractor.melW",
        "module.audio_branch.bn0.running_mean",
        "module.audio_branch.patch_embed.proj.weight",
        "module.audio_branch.layers.0.blocks.1.attn.qkv.weight",
        "module.audio_branch.layers.0.blocks.1.attn.relative_position_bias_table",
        "module.audio_branch.layers.0.blocks.1.attn_mask",
        "module.audio_branch.layers.1.downsample.reduction.weight",
        "module.audio_branch.tscam_conv.weight",
        "module.audio_branch.head.bias",
        "module.text_branch.embeddings.word_embeddings.weight",
        "module.text_branch.encoder.layer.1.attention.self.query.weight",
        "module.text_branch.pooler.dense.weight",
        "module.text_projection.0.weight",
        "module.audio_projection.2.bias",
        "module.audio_transform.sequential.3.weight",
        "module.text_transform.sequential.0.bias",
    ):
        assert key in keys, key
    # the last stage (4x4 patches = one window) is never shifted, as in the real geometry
    assert "module.audio_branch.layers.2.blocks.1.attn_mask" not in keys
    assert not any("query" in k and "audio_branch" in k for k in keys)
    loaded = LaionClapHtsatBase(config=cfg, tokenizer=tok).load(official_file)
    assert loaded.identity.weights == "official"
    assert loaded.identity.checkpoint_id == f"sha256:{sha256_file(official_file)}"
    a = np.stack([o["embedding"] for o in model.embed(clips)])
    b = np.stack([o["embedding"] for o in loaded.embed(clips)])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.embed_text(TEXTS), loaded.embed_text(TEXTS))


def test_text_embedding_ignores_padding_length(cfg, tok, model, official_file):
    shorter = LaionClapHtsatBase(config=replace(cfg, text_max_length=12), tokenizer=tok).load(official_file)
    np.testing.assert_allclose(shorter.embed_text(TEXTS[:2]), model.embed_text(TEXTS[:2]), atol=1e-5)
    assert shorter.tokenize(TEXTS)["input_ids"].shape == (3, 12)  # the long text is truncated


def test_padding_columns_are_dropped_without_changing_embeddings(model):
    texts = ["a dog barks", "rain falls on a metal roof"]
    full = model.tokenize(texts)  # padded to text_max_length, as laion_clap does
    assert int(full["attention_mask"].sum(1).max()) < full["input_ids"].shape[1]
    with torch.inference_mode():
        reference = model.model.embed_text(full["input_ids"], full["attention_mask"]).numpy()
    np.testing.assert_allclose(model.embed_text(texts), reference, rtol=0, atol=1e-6)


def test_key_conversion_round_trip_is_identical(model, cfg):
    original = to_laion_clap_state_dict(model.model)
    ours = convert_laion_clap_state_dict(original, cfg)
    net = LaionClapNet(cfg)
    net.load_state_dict(ours, strict=True)
    back = to_laion_clap_state_dict(net)
    assert list(back) == list(original)
    assert all(torch.equal(back[k], original[k]) for k in original)
    # qkv is split row-wise into query / key / value
    qkv = original["audio_branch.layers.1.blocks.0.attn.qkv.weight"]
    d = qkv.shape[0] // 3
    enc = "clap.audio_model.audio_encoder.layers.1.blocks.0.attention.self."
    assert torch.equal(ours[enc + "key.weight"], qkv[d : 2 * d])
    # older files persist the text position ids and carry the DDP prefix: both accepted
    legacy = {"module." + k: v for k, v in original.items()}
    legacy["module.text_branch.embeddings.position_ids"] = torch.arange(cfg.text.max_position_embeddings)[None]
    again = convert_laion_clap_state_dict(legacy, cfg)
    assert set(again) == set(ours) and all(torch.equal(again[k], ours[k]) for k in ours)


def _save(state: dict, path):
    torch.save({"state_dict": state}, path)
    return path


def test_bad_checkpoints_are_clear_errors(model, cfg, tok, tmp_path):
    original = to_laion_clap_state_dict(model.model)
    backbone = LaionClapHtsatBase(config=cfg, tokenizer=tok)

    renamed = dict(original)
    renamed["audio_branch.final_norm.weight"] = renamed.pop("audio_branch.norm.weight")
    path = _save(renamed, tmp_path / "renamed.pt")
    with pytest.raises(CheckpointFormatError) as e:
        backbone.load(path)
    msg = str(e.value)
    assert str(path) in msg and "audio_branch.final_norm.weight" in msg
    assert "clap.audio_model.audio_encoder.norm.weight" in msg and "missing" in msg

    mask = dict(original)
    key = "audio_branch.layers.0.blocks.1.attn_mask"
    mask[key] = torch.zeros_like(mask[key])
    with pytest.raises(CheckpointFormatError, match="attn_mask differs"):
        backbone.load(_save(mask, tmp_path / "mask.pt"))

    melw = dict(original)
    melw["audio_branch.logmel_extractor.melW"] = melw["audio_branch.logmel_extractor.melW"] * 1.5
    with pytest.raises(CheckpointFormatError, match="melW differs"):
        backbone.load(_save(melw, tmp_path / "melw.pt"))

    good = _save(original, tmp_path / "good.pt")
    wider = replace(cfg, htsat=replace(cfg.htsat, embed_dim=16))
    with pytest.raises(CheckpointFormatError, match="shape mismatches"):
        LaionClapHtsatBase(config=wider, tokenizer=tok).load(good)
    deeper = replace(cfg, htsat=replace(cfg.htsat, depths=(2, 2, 4)))
    with pytest.raises(CheckpointFormatError, match="missing weights.*layers.2.blocks.2"):
        LaionClapHtsatBase(config=deeper, tokenizer=tok).load(good)

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointFormatError, match="garbage.pt: cannot read"):
        backbone.load(garbage)
    with pytest.raises(CheckpointNotFound, match="missing.pt"):
        backbone.load(tmp_path / "missing.pt")


def test_full_size_configurations_on_meta_device():
    base = expected_state(lambda: LaionClapNet(HTSAT_BASE))
    tiny = expected_state(lambda: LaionClapNet(HTSAT_TINY))
    enc = "clap.audio_model.audio_encoder."
    assert base[enc + "norm.weight"] == (1024,) and tiny[enc + "norm.weight"] == (768,)
    assert enc + "layers.2.blocks.11.attention.self.query.weight" in base
    assert enc + "layers.2.blocks.6.attention.self.query.weight" not in tiny
    assert base["clap.audio_projection.linear2.weight"] == (512, 512)
    assert base["clap.text_model.embeddings.word_embeddings.weight"] == (50265, 768)
    assert base["audio_head.tscam_conv.weight"] == (527, 1024, 2, 3)
    assert HTSAT_BASE.clip_samples == 480000 and 1 + 480000 // 480 <= HTSAT_BASE.htsat.max_frames
    assert LaionClapHtsatBase.checkpoint_filename == "music_speech_audioset_epoch_15_esc_89.98.pt"
    chosen = LaionClapHtsatTiny(checkpoint_filename="clap_htsat_tiny.pt")
    assert chosen.settings()["checkpoint_filename"] == "clap_htsat_tiny.pt"


def test_model_input_is_prepared_once_inside_embed():
    """The suite's per-clip `prepare` hook is the identity for CLAP: cropping / padding / int16
    quantisation happen once, inside `embed` (`model_input` exposes them for checks)."""
    from bench.metrics.backbones.base import AudioBackbone
    from bench.metrics.backbones.ms_clap import MsClap2022, MsClap2023

    for cls in (LaionClapHtsatBase, LaionClapHtsatTiny, MsClap2022, MsClap2023):
        assert cls.prepare is AudioBackbone.prepare


def test_texts_batched_by_length_come_back_in_input_order(model, monkeypatch):
    """Prompts are batched by token length (less padding); each row must still be its own
    prompt's embedding, as embedded alone in the fixed-length layout laion_clap uses."""
    from genau_core.tokenizers import batches_by_length

    assert batches_by_length([5, 2, 9, 2, 7], 2) == [[1, 3], [0, 4], [2]]
    texts = ["rain falls on a metal roof while thunder rolls", "a dog", "birds sing", "an engine idles loudly"]
    monkeypatch.setattr(model, "text_batch_size", 2)
    with torch.inference_mode():
        alone = []
        for t in texts:
            full = model.tokenize([t])
            alone.append(model.model.embed_text(full["input_ids"], full["attention_mask"]).numpy()[0])
    np.testing.assert_allclose(model.embed_text(texts), np.stack(alone), rtol=0, atol=1e-5)
