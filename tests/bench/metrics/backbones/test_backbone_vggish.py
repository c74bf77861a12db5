"""VGGish backbone (audioldm_eval variant): framing, front end, network, checkpoint layout.

All on fixed-seed random weights built in-process (no download)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from bench.checkpoints import CheckpointNotFound
from bench.metrics.backbones.vggish import VGGishBackbone
from genau_core.checkpoint_io import CheckpointFormatError
from genau_core.networks.vggish import vggish_examples

SR = 16000

OFFICIAL_KEYS = {f"features.{i}.{p}" for i in (0, 3, 6, 8, 11, 13) for p in ("weight", "bias")} | {
    f"embeddings.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")
}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAU_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENAU_BENCH_CHECKPOINTS", raising=False)


@pytest.fixture(scope="module")
def vgg() -> VGGishBackbone:
    torch.set_num_threads(1)
    return VGGishBackbone().init_random(0)


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    rng = np.random.default_rng(99)
    t = np.arange(3 * SR) / SR
    chirp = 0.5 * np.sin(2 * np.pi * (200 + 600 * t) * t)
    return [
        (0.1 * rng.standard_normal(SR)).astype(np.float32),  # 1 s -> 1 example
        (chirp + 0.01 * rng.standard_normal(len(t))).astype(np.float32),  # 3 s -> 3 examples
        (0.3 * rng.standard_normal(15600)).astype(np.float32),  # shortest clip with one example
    ]


def _reference_examples(x: np.ndarray) -> np.ndarray:
    """A plain-loop transcription of torchvggish's waveform_to_examples at 16 kHz."""
    x = np.asarray(x, dtype=np.float64)
    win, hop, n_fft, n_mels = 400, 160, 512, 64
    window = np.array([0.5 - 0.5 * math.cos(2 * math.pi * n / win) for n in range(win)])
    n_frames = 1 + int(np.floor((len(x) - win) / hop))
    spec = np.stack([np.abs(np.fft.rfft(x[i * hop : i * hop + win] * window, n_fft)) for i in range(n_frames)])

    def mel(f):
        return 1127.0 * math.log(1.0 + f / 700.0)

    n_bins = n_fft // 2 + 1
    edges = np.linspace(mel(125.0), mel(7500.0), n_mels + 2)
    weights = np.zeros((n_bins, n_mels))
    for b in range(1, n_bins):  # DC bin stays zero
        m = mel(b * (SR / 2) / (n_bins - 1))
        for j in range(n_mels):
            lo, c, hi = edges[j], edges[j + 1], edges[j + 2]
            weights[b, j] = max(0.0, min((m - lo) / (c - lo), (hi - m) / (hi - c)))
    log_mel = np.log(spec @ weights + 0.01)
    n_ex = 1 + int(np.floor((n_frames - 96) / 96))
    return np.stack([log_mel[k * 96 : k * 96 + 96] for k in range(n_ex)]).astype(np.float32)


def test_class_attributes():
    assert VGGishBackbone.name == "vggish"
    assert VGGishBackbone.sample_rate == 16000
    assert VGGishBackbone.embedding_dim == 128
    assert VGGishBackbone.outputs == ("frames",)
    assert VGGishBackbone.checkpoint_filename == "vggish-10086976.pth"
    assert VGGishBackbone.checkpoint_source.endswith(
        "harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
    )


@pytest.mark.parametrize("n_samples", [15600, 16000, 30959, 30960, 46320, 160000])
def test_example_framing_matches_reference(n_samples):
    x = np.random.default_rng(n_samples).uniform(-0.5, 0.5, n_samples).astype(np.float32)
    ours = vggish_examples(x)
    ref = _reference_examples(x)
    assert ours.shape == (ref.shape[0], 1, 96, 64) and ours.dtype == np.float32
    np.testing.assert_allclose(ours[:, 0], ref, rtol=0, atol=1e-5)


def test_example_counts():
    # n_frames = 1 + (N - 400) // 160, n_examples = 1 + (n_frames - 96) // 96
    for n, expected in [(15600, 1), (30959, 1), (30960, 2), (46319, 2), (46320, 3), (160000, 10), (163840, 10)]:
        assert len(vggish_examples(np.zeros(n, np.float32))) == expected, n


def test_one_raw_frame_per_example(vgg, clips):
    """Keys, dtypes, identity, determinism and batch independence:
    tests/bench/metrics/backbones/test_backbone_contract.py."""
    out = vgg.embed(clips)
    assert [d["frames"].shape for d in out] == [(1, 128), (3, 128), (1, 128)]  # one per 0.96 s example
    # No PCA/quantisation and no final ReLU: raw, signed, non-integer embeddings.
    frames = np.concatenate([d["frames"] for d in out])
    assert (frames < 0).any() and (frames > 0).any()
    assert not np.allclose(frames, np.round(frames))
    assert not isinstance(vgg.model.embeddings[-1], torch.nn.ReLU)
    assert not vgg.model.training


def test_network_flatten_order_is_torchvggish(vgg, clips):
    ex = torch.from_numpy(vggish_examples(clips[1]))
    with torch.no_grad():
        feats = vgg.model.features(ex)
        assert feats.shape == (3, 512, 6, 4)
        flat = torch.transpose(torch.transpose(feats, 1, 3), 1, 2).contiguous().view(3, -1)
        expected = vgg.model.embeddings(flat)
        got = vgg.model(ex)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_short_and_bad_clips_rejected(vgg):
    with pytest.raises(ValueError, match=r"clip 1 has 15599 samples.*at least 15600"):
        vgg.embed([np.zeros(16000, np.float32), np.zeros(15599, np.float32)])
    with pytest.raises(ValueError, match="1-D"):
        vgg.embed([np.zeros((16000, 2), np.float32)])
    with pytest.raises(ValueError, match="NaN"):
        vgg.embed([np.full(16000, np.nan, np.float32)])
    assert vgg.embed([]) == []


def test_official_checkpoint_round_trip(tmp_path, vgg, clips):
    path = vgg.save_official(tmp_path / VGGishBackbone.checkpoint_filename)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(raw) == OFFICIAL_KEYS
    assert raw["features.0.weight"].shape == (64, 1, 3, 3)
    assert raw["features.13.weight"].shape == (512, 512, 3, 3)
    assert raw["embeddings.0.weight"].shape == (4096, 12288)
    assert raw["embeddings.4.bias"].shape == (128,)
    del raw

    loaded = VGGishBackbone().load(path)
    assert loaded.identity.weights == "official"
    assert loaded.checkpoint_id == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    for x, y in zip(vgg.embed(clips), loaded.embed(clips)):
        assert np.array_equal(x["frames"], y["frames"])


def test_wrong_files_give_clear_errors(tmp_path, monkeypatch):
    pca = tmp_path / "vggish_pca_params.pth"
    torch.save({"pca_eigen_vectors": torch.zeros(128, 128), "pca_means": torch.zeros(128, 1)}, pca)
    with pytest.raises(CheckpointFormatError) as e:
        VGGishBackbone().load(pca)
    msg = str(e.value)
    assert str(pca) in msg and "pca_means" in msg and "missing keys" in msg and "features.0.weight" in msg

    panns_like = tmp_path / "panns.pth"
    torch.save({"model": {"fc1.weight": torch.zeros(1)}}, panns_like)
    with pytest.raises(CheckpointFormatError, match=r"panns\.pth.*expected a state dict"):
        VGGishBackbone().load(panns_like)

    wrong_shape = tmp_path / "shape.pth"
    state = {k: torch.zeros(1) for k in OFFICIAL_KEYS}
    torch.save(state, wrong_shape)
    with pytest.raises(CheckpointFormatError, match=r"shape\.pth.*size mismatch"):
        VGGishBackbone().load(wrong_shape)

    with pytest.raises(CheckpointNotFound, match=r"vggish-10086976\.pth.*torchvggish"):
        VGGishBackbone().load()
