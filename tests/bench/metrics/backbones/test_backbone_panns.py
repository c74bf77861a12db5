"""PANNs Cnn14 16 kHz backbone: shapes, determinism, official key layout, front-end numerics.

All on fixed-seed random weights built in-process (no download)."""

from __future__ import annotations

import copy
import hashlib
import re

import librosa
import numpy as np
import pytest
import scipy.signal
import torch

from bench.checkpoints import CheckpointNotFound
from bench.metrics.backbones.panns import Cnn14Backbone
from genau_core.checkpoint_io import CheckpointFormatError, load_state_dict_exact
from genau_core.networks.panns import CNN14_16K, check_panns_frontend, read_panns_state_dict
from genau_core.networks.stft import ConvSTFT, dft_kernels

SR = 16000


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    # sha256 memo and checkpoint lookup must not touch the user's ~/.cache
    monkeypatch.setenv("GENAU_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENAU_BENCH_CHECKPOINTS", raising=False)


@pytest.fixture(scope="module")
def cnn() -> Cnn14Backbone:
    torch.set_num_threads(1)
    return Cnn14Backbone().init_random(0)


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    rng = np.random.default_rng(1234)
    t = np.arange(int(2.5 * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 0.7 * t)
    return [
        (0.1 * rng.standard_normal(2 * SR)).astype(np.float32),
        (tone + 0.01 * rng.standard_normal(len(t))).astype(np.float32),
        (0.2 * rng.standard_normal(2 * SR)).astype(np.float32),  # same length as clip 0
    ]


def _expected_official_keys() -> set[str]:
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {
        "spectrogram_extractor.stft.conv_real.weight",
        "spectrogram_extractor.stft.conv_imag.weight",
        "logmel_extractor.melW",
        "fc1.weight",
        "fc1.bias",
        "fc_audioset.weight",
        "fc_audioset.bias",
    }
    keys |= {f"bn0.{p}" for p in bn}
    for b in range(1, 7):
        keys |= {f"conv_block{b}.conv1.weight", f"conv_block{b}.conv2.weight"}
        keys |= {f"conv_block{b}.bn{i}.{p}" for i in (1, 2) for p in bn}
    return keys


def test_class_attributes():
    assert Cnn14Backbone.name == "panns-cnn14-16k"
    assert Cnn14Backbone.sample_rate == 16000
    assert Cnn14Backbone.embedding_dim == 2048
    assert Cnn14Backbone.outputs == ("embedding", "logits")
    assert Cnn14Backbone.checkpoint_filename == "Cnn14_16k_mAP=0.438.pth"
    assert "zenodo.org/record/3987831" in Cnn14Backbone.checkpoint_source


def test_requires_weights_before_embed(clips):
    with pytest.raises(RuntimeError, match="init_random"):
        Cnn14Backbone().embed(clips[:1])


def test_embedding_is_relu_output_of_an_eval_float32_network(cnn, clips):
    """Keys, shapes, dtypes, identity, determinism and batch independence:
    tests/bench/metrics/backbones/test_backbone_contract.py."""
    for d in cnn.embed(clips):
        assert d["logits"].shape == (527,)
        assert (d["embedding"] >= 0).all() and (d["embedding"] > 0).any()  # relu(fc1)
    assert not cnn.model.training
    assert all(p.dtype == torch.float32 for p in cnn.model.state_dict().values() if p.is_floating_point())


def test_logits_are_presigmoid_fc_audioset_of_embedding(cnn, clips):
    d = cnn.embed(clips[:1])[0]
    w = cnn.model.fc_audioset.weight.detach().numpy().astype(np.float64)
    b = cnn.model.fc_audioset.bias.detach().numpy().astype(np.float64)
    np.testing.assert_allclose(d["logits"], d["embedding"] @ w.T + b, rtol=0, atol=1e-5)


def test_short_and_bad_clips_rejected(cnn):
    ok = np.zeros(Cnn14Backbone.min_samples, np.float32)
    assert Cnn14Backbone.min_samples == 4960  # 32 frames of hop 160 survive five 2x2 poolings
    cnn.embed([ok])
    with pytest.raises(ValueError, match=r"clip 1 has 4959 samples.*at least 4960"):
        cnn.embed([ok, ok[:-1]])
    with pytest.raises(ValueError, match="1-D"):
        cnn.embed([np.zeros((2, 8000), np.float32)])
    bad = ok.copy()
    bad[10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cnn.embed([bad])


def test_conv_stft_matches_numpy_fft():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SR // 4).astype(np.float32)
    real, imag = ConvSTFT(512, 160)(torch.from_numpy(x)[None])
    padded = np.pad(x.astype(np.float64), 256, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, 512)[::160]
    spec = np.fft.rfft(frames * scipy.signal.get_window("hann", 512, fftbins=True), axis=1)
    assert real.shape == (1, 1, 1 + len(x) // 160, 257)
    np.testing.assert_allclose(real[0, 0].numpy(), spec.real, atol=2e-4)
    np.testing.assert_allclose(imag[0, 0].numpy(), spec.imag, atol=2e-4)


def test_log_mel_matches_independent_computation(cnn, clips):
    # float32 conv-STFT vs float64 FFT: ~1e-5 dB on broadband noise; bands 40 dB below a
    # tone inherit the float32 rounding of the tone's bins, hence the looser bound there.
    for x, atol in zip(clips[:2], (1e-4, 1e-3)):
        ours = cnn.log_mel(x)
        padded = np.pad(x.astype(np.float64), 256, mode="reflect")  # center=True, reflect
        frames = np.lib.stride_tricks.sliding_window_view(padded, 512)[::160]
        power = np.abs(np.fft.rfft(frames * scipy.signal.get_window("hann", 512, fftbins=True), axis=1)) ** 2
        mel = librosa.filters.mel(sr=SR, n_fft=512, n_mels=64, fmin=50, fmax=8000).astype(np.float64)
        ref = 10.0 * np.log10(np.maximum(power @ mel.T, 1e-10))
        assert ours.shape == ref.shape == (1 + len(x) // 160, 64)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=atol)


def test_official_checkpoint_round_trip(tmp_path, cnn, clips):
    src = Cnn14Backbone()
    src.model, src.identity = copy.deepcopy(cnn.model), cnn.identity
    # Non-trivial BN statistics, so a loader that skipped buffers would be caught.
    with torch.no_grad():
        g = torch.Generator().manual_seed(3)
        for m in src.model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    path = src.save_official(tmp_path / Cnn14Backbone.checkpoint_filename)

    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(raw) == {"model"}
    assert set(raw["model"]) == _expected_official_keys()
    assert raw["model"]["spectrogram_extractor.stft.conv_real.weight"].shape == (257, 1, 512)
    assert raw["model"]["logmel_extractor.melW"].shape == (257, 64)
    assert raw["model"]["conv_block1.conv1.weight"].shape == (64, 1, 3, 3)
    assert raw["model"]["fc_audioset.bias"].shape == (527,)
    del raw

    loaded = Cnn14Backbone().load(path)
    assert loaded.identity.weights == "official"
    assert loaded.checkpoint_id == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.identity.source == str(path)
    a, b = src.embed(clips[:1])[0], loaded.embed(clips[:1])[0]
    assert np.array_equal(a["embedding"], b["embedding"])
    assert np.array_equal(a["logits"], b["logits"])
    assert not np.allclose(a["logits"], cnn.embed(clips[:1])[0]["logits"])  # BN stats mattered


def test_checkpoint_with_numpy_training_state_is_read(tmp_path):
    # The published files carry training state next to "model"; weights_only loading must accept it.
    path = tmp_path / "with_state.pth"
    w = torch.arange(6.0).reshape(2, 3)
    torch.save({"iteration": np.int64(660000), "model": {"fc1.weight": w}, "sampler": {"indexes": np.arange(4)}}, path)
    state = read_panns_state_dict(path)
    assert list(state) == ["fc1.weight"] and torch.equal(state["fc1.weight"], w)


def _frontend_state(sr: int, n_fft: int, fmin: float, fmax: float) -> dict[str, torch.Tensor]:
    real, imag = dft_kernels(n_fft)
    melw = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=64, fmin=fmin, fmax=fmax)
    return {
        "spectrogram_extractor.stft.conv_real.weight": torch.from_numpy(real),
        "spectrogram_extractor.stft.conv_imag.weight": torch.from_numpy(imag),
        "logmel_extractor.melW": torch.from_numpy(np.ascontiguousarray(melw.T)),
    }


def test_front_end_of_another_configuration_rejected(tmp_path):
    ours = _frontend_state(16000, 512, fmin=50, fmax=8000)
    check_panns_frontend(ours, CNN14_16K, tmp_path / "x.pth")  # our own values pass
    for name, state in {
        "other_mel.pth": _frontend_state(16000, 512, fmin=0, fmax=8000),  # mel from 0 Hz
        "cnn14_32k.pth": _frontend_state(32000, 1024, fmin=50, fmax=14000),  # Cnn14_mAP=0.431 front end
    }.items():
        path = tmp_path / name
        torch.save({"model": state}, path)
        with pytest.raises(CheckpointFormatError, match=re.escape(name) + r".*not that of a 16000 Hz Cnn14.*melW"):
            Cnn14Backbone().load(path)


def test_wrong_files_give_clear_errors(tmp_path, monkeypatch):
    wrong_keys = tmp_path / "wrong_keys.pth"
    torch.save({"model": {"fc1.weight": torch.zeros(2048, 2048), "head.weight": torch.zeros(3)}}, wrong_keys)
    with pytest.raises(CheckpointFormatError) as e:
        Cnn14Backbone().load(wrong_keys)
    msg = str(e.value)
    assert str(wrong_keys) in msg and "missing keys" in msg and "head.weight" in msg

    no_model = tmp_path / "training_state.pth"
    torch.save({"iteration": 3, "optimizer": {"lr": 1e-3}}, no_model)
    with pytest.raises(CheckpointFormatError, match=r"training_state\.pth.*'model'"):
        Cnn14Backbone().load(no_model)

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"<html>not a checkpoint</html>")
    with pytest.raises(CheckpointFormatError, match=r"garbage\.pth.*cannot read"):
        Cnn14Backbone().load(garbage)

    with pytest.raises(CheckpointNotFound, match=r"Cnn14_16k_mAP=0\.438\.pth.*zenodo"):
        Cnn14Backbone().load()

    # Without a path the file is looked up by its official name in $GENAU_BENCH_CHECKPOINTS.
    found = tmp_path / "dir" / Cnn14Backbone.checkpoint_filename
    found.parent.mkdir()
    found.write_bytes(b"junk")
    monkeypatch.setenv("GENAU_BENCH_CHECKPOINTS", str(found.parent))
    with pytest.raises(CheckpointFormatError, match=re.escape(str(found))):
        Cnn14Backbone().load()


def test_shape_mismatch_names_file(tmp_path):
    net = torch.nn.Linear(4, 3)
    path = tmp_path / "shape.pth"
    with pytest.raises(CheckpointFormatError, match=r"shape\.pth.*size mismatch"):
        load_state_dict_exact(net, {"weight": torch.zeros(5, 4), "bias": torch.zeros(3)}, path, "toy")
