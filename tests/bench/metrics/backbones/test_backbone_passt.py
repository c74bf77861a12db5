"""PaSST backbone: shapes, determinism, official key layout, front end, network and each protocol's windowing
against transcriptions of the official code. Fixed-seed random weights built in-process (tiny where the
architecture allows; the full-size parity run is benchmarks/parity/passt_parity.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.checkpoints import CheckpointNotFound
from bench.metrics.backbones import backbone_class
from bench.metrics.backbones.passt import (
    PasstAvBenchmark,
    PasstBackbone,
    PasstStableAudio,
    av_benchmark_window,
    stable_audio_metrics_peak_normalize,
    stable_audio_metrics_windows,
)
from genau_core.checkpoint_io import CheckpointFormatError
from genau_core.networks.passt import (
    PASST_S_SWA_P16_128_AP476,
    PasstAudio,
    PasstConfig,
    PasstMelFrontEnd,
    passt_state_from_official,
)

SR = 32000
TINY = PasstConfig(embed_dim=32, depth=2, num_heads=4)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAU_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENAU_BENCH_CHECKPOINTS", raising=False)


@pytest.fixture(scope="module")
def tiny() -> PasstBackbone:
    torch.set_num_threads(1)
    b = PasstBackbone(config=TINY).init_random(0)
    with torch.no_grad():  # unit LayerNorms and 0.02-std heads would hide a mis-wired norm or head
        g = torch.Generator().manual_seed(5)
        for name, p in b.model.named_parameters():
            if "norm" in name or name.startswith("net.head.0"):
                p.add_(0.3 * torch.randn(p.shape, generator=g))
        b.model.net.head[1].weight.mul_(30)
    return b


def _clip(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (300 + 500 * seed) * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


# -- transcriptions of the official code -------------------------------------------------------
def _official_get_mel_banks(num_bins, window_length_padded, sample_freq, low_freq, high_freq):
    """torchaudio/compliance/kaldi.py::get_mel_banks (torchaudio 2.11), vtln_warp_factor = 1.0."""
    num_fft_bins = window_length_padded / 2
    fft_bin_width = sample_freq / window_length_padded
    mel_low_freq = 1127.0 * math.log(1.0 + low_freq / 700.0)
    mel_high_freq = 1127.0 * math.log(1.0 + high_freq / 700.0)
    mel_freq_delta = (mel_high_freq - mel_low_freq) / (num_bins + 1)
    bin = torch.arange(num_bins).unsqueeze(1)
    left_mel = mel_low_freq + bin * mel_freq_delta
    center_mel = mel_low_freq + (bin + 1.0) * mel_freq_delta
    right_mel = mel_low_freq + (bin + 2.0) * mel_freq_delta
    mel = (1127.0 * (1.0 + (fft_bin_width * torch.arange(num_fft_bins)) / 700.0).log()).unsqueeze(0)
    up_slope = (mel - left_mel) / (center_mel - left_mel)
    down_slope = (right_mel - mel) / (right_mel - center_mel)
    return torch.max(torch.zeros(1), torch.min(up_slope, down_slope))


def _official_augment_mel_stft_eval(x: torch.Tensor) -> torch.Tensor:
    """hear21passt/models/preprocess.py::AugmentMelSTFT.forward in eval mode, with the arguments of
    hear21passt/base.py::get_basic_model (n_mels 128, sr 32000, win 800, hop 320, n_fft 1024,
    fmin 0, fmax None -> sr // 2 - fmax_aug_range // 2 with fmax_aug_range 2000)."""
    sr, fmax_aug_range = 32000, 2000
    fmax = sr // 2 - fmax_aug_range // 2
    window = torch.hann_window(800, periodic=False)
    preemphasis_coefficient = torch.as_tensor([[[-0.97, 1]]])
    x = F.conv1d(x.unsqueeze(1), preemphasis_coefficient).squeeze(1)
    x = torch.stft(
        x, 1024, hop_length=320, win_length=800, center=True, normalized=False, window=window, return_complex=True
    )
    x = torch.view_as_real(x)  # the reference's return_complex=False layout
    x = (x**2).sum(dim=-1)
    mel_basis = _official_get_mel_banks(128, 1024, sr, 0.0, fmax)
    mel_basis = F.pad(mel_basis, (0, 1), mode="constant", value=0)
    melspec = torch.matmul(mel_basis, x)
    melspec = (melspec + 0.00001).log()
    return (melspec + 4.5) / 5.0


def _official_passt_forward(sd: dict, spec: torch.Tensor, cfg: PasstConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """hear21passt/models/passt.py::PaSST.forward (eval: no patchout, no dropout, distilled), written
    with explicit attention matmuls as there (Attention.forward, Block.forward, Mlp.forward)."""
    x = F.conv2d(spec, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=(cfg.fstride, cfg.tstride))
    b = x.shape[0]
    time_new_pos_embed = sd["time_new_pos_embed"]
    if x.shape[-1] != time_new_pos_embed.shape[-1]:
        time_new_pos_embed = time_new_pos_embed[:, :, :, : x.shape[-1]]
    x = x + time_new_pos_embed
    x = x + sd["freq_new_pos_embed"]
    x = x.flatten(2).transpose(1, 2)
    cls_tokens = sd["cls_token"].expand(b, -1, -1) + sd["new_pos_embed"][:, :1, :]
    dist_token = sd["dist_token"].expand(b, -1, -1) + sd["new_pos_embed"][:, 1:, :]
    x = torch.cat((cls_tokens, dist_token, x), dim=1)
    c, h = cfg.embed_dim, cfg.num_heads
    for i in range(cfg.depth):
        p = f"blocks.{i}."
        y = F.layer_norm(x, (c,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps=1e-6)
        n = y.shape[1]
        qkv = F.linear(y, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
        qkv = qkv.reshape(b, n, 3, h, c // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * (c // h) ** -0.5).softmax(dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(b, n, c)
        x = x + F.linear(y, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        y = F.layer_norm(x, (c,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps=1e-6)
        y = F.linear(
            F.gelu(F.linear(y, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
            sd[p + "mlp.fc2.weight"],
            sd[p + "mlp.fc2.bias"],
        )
        x = x + y
    x = F.layer_norm(x, (c,), sd["norm.weight"], sd["norm.bias"], eps=1e-6)
    features = (x[:, 0] + x[:, 1]) / 2
    logits = F.linear(
        F.layer_norm(features, (c,), sd["head.0.weight"], sd["head.0.bias"]), sd["head.1.weight"], sd["head.1.bias"]
    )
    return logits, features


def _official_sam_windows(audio: np.ndarray, window_size=10, overlap=5, SAMPLING_RATE=32000) -> list[np.ndarray]:
    """Stability-AI/stable-audio-metrics src/passt_kld.py::return_probabilities, the window loop."""
    step_size = int((window_size - overlap) * SAMPLING_RATE)
    out = []
    for i in range(0, max(step_size, len(audio) - step_size), step_size):
        window = audio[i : i + int(window_size * SAMPLING_RATE)]
        # "if len(window) < win:" then "if len(window) > win * 0.15:" (nested in the original)
        if int(window_size * SAMPLING_RATE) > len(window) > int(window_size * SAMPLING_RATE * 0.15):
            tmp = np.zeros(int(window_size * SAMPLING_RATE))
            tmp[: len(window)] = window
            window = tmp
        out.append(window.astype(np.float32))
    return out


def _official_avb_window(waveform: torch.Tensor, audio_length: float, sr: int = 32000) -> torch.Tensor:
    """hkchengrex/av-benchmark av_bench/data/audio_dataset.py::AudioDataset.read_from_file (crop) +
    av_bench/extract.py::extract (PaSST: crop / pad to 320000)."""
    audio = waveform[: int(sr * audio_length)].unsqueeze(0)
    wav = audio.squeeze(1).float()
    if wav.size(-1) >= 320000:
        wav = wav[..., :320000]
    else:
        wav = torch.nn.functional.pad(wav, (0, 320000 - wav.size(-1)))
    return wav[0]


# -- tests ------------------------------------------------------------------------------------
def test_registered_names_and_attributes():
    for name, cls in [
        ("passt-s-ap476", PasstBackbone),
        ("passt-s-ap476-stable-audio", PasstStableAudio),
        ("passt-s-ap476-av-benchmark", PasstAvBenchmark),
    ]:
        assert backbone_class(name) is cls
        assert (cls.sample_rate, cls.channels, cls.embedding_dim, cls.logits_dim) == (32000, 1, 768, 527)
        assert cls.outputs == ("embedding", "logits")
        assert cls.checkpoint_filename == "passt-s-f128-p16-s10-ap.476-swa.pt"
        assert "kkoutini/PaSST/releases" in cls.checkpoint_source


def test_released_config_and_window_limits():
    c = PASST_S_SWA_P16_128_AP476
    assert (c.patch_size, c.fstride, c.tstride, c.n_mels, c.sample_rate) == (16, 10, 10, 128, 32000)
    assert (c.n_fft, c.win_length, c.hop_length, c.fmin, c.fmax) == (1024, 800, 320, 0.0, 15000.0)
    assert c.grid_size == (12, 99)
    # the oracle run printed "Input image size (128*1005)" for 321600 samples and (128*16) for 4801
    assert (c.frames(c.max_samples), c.frames(c.min_samples)) == (1005, 16)
    assert (c.min_samples, c.max_samples) == (4801, 321600)


def test_front_end_matches_official_transcription():
    x = torch.from_numpy(np.stack([_clip(3.0, 1), _clip(3.0, 2)]))
    ours = PasstMelFrontEnd()(x)
    ref = _official_augment_mel_stft_eval(x)
    assert ours.shape == ref.shape == (2, 128, 1 + (3 * SR - 1) // 320)
    assert torch.equal(PasstMelFrontEnd().mel_basis[:, :512], _official_get_mel_banks(128, 1024, 32000, 0.0, 15000))
    torch.testing.assert_close(ours, ref, rtol=0, atol=2e-5)


def test_network_matches_official_transcription(tiny):
    x = torch.from_numpy(np.stack([_clip(10.0, 3), _clip(10.0, 4)]))
    sd = {k: v.detach() for k, v in tiny.state_dict_official().items()}
    with torch.no_grad():
        spec = _official_augment_mel_stft_eval(x).unsqueeze(1)
        ref_logits, ref_features = _official_passt_forward(sd, spec, TINY)
    logits, emb = tiny.forward_windows([x[0].numpy(), x[1].numpy()])
    assert logits.shape == (2, 527) and emb.shape == (2, 32)
    assert float(ref_logits.abs().max()) > 1.0  # informative logits
    np.testing.assert_allclose(logits, ref_logits.numpy(), rtol=0, atol=2e-4 * float(ref_logits.abs().max()))
    np.testing.assert_allclose(emb, ref_features.numpy(), rtol=0, atol=2e-4 * float(ref_features.abs().max()))


def _official_keys(cfg: PasstConfig) -> set[str]:
    """hear21passt/models/passt.py::PaSST(distilled=True) state-dict names."""
    keys = {
        "cls_token",
        "dist_token",
        "new_pos_embed",
        "freq_new_pos_embed",
        "time_new_pos_embed",
        "patch_embed.proj.weight",
        "patch_embed.proj.bias",
        "norm.weight",
        "norm.bias",
        "head.0.weight",
        "head.0.bias",
        "head.1.weight",
        "head.1.bias",
        "head_dist.weight",
        "head_dist.bias",
    }
    for i in range(cfg.depth):
        for m in ("norm1", "norm2", "attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"):
            keys |= {f"blocks.{i}.{m}.weight", f"blocks.{i}.{m}.bias"}
    return keys


def test_official_key_layout_of_the_released_architecture():
    with torch.device("meta"):
        net = PasstAudio()
    from bench.metrics.backbones.passt import passt_state_to_official

    official = passt_state_to_official(net.state_dict())
    assert set(official) == _official_keys(PASST_S_SWA_P16_128_AP476)
    assert official["time_new_pos_embed"].shape == (1, 768, 1, 99)
    assert official["freq_new_pos_embed"].shape == (1, 768, 12, 1)
    assert official["patch_embed.proj.weight"].shape == (768, 1, 16, 16)
    # what hear21passt's own constructor writes (benchmarks/parity/passt_parity.py): 159 tensors, 86,153,758 values
    assert (len(official), sum(v.numel() for v in official.values())) == (159, 86_153_758)


def test_official_file_round_trip_and_containers(tiny, tmp_path):
    path = tiny.save_official(tmp_path / "passt-s-f128-p16-s10-ap.476-swa.pt")
    state = torch.load(path, weights_only=True)
    assert set(state) == _official_keys(TINY)
    clip = [_clip(5.0, 7)]
    ref = tiny.embed(clip)[0]["logits"]
    loaded = PasstBackbone(config=TINY).load(path)
    assert loaded.identity.weights == "official" and loaded.identity.checkpoint_id.startswith("sha256:")
    np.testing.assert_array_equal(loaded.embed(clip)[0]["logits"], ref)
    # {"model": state dict} (checkpoint_filter_fn unwraps it) and a 2-D patch weight (early checkpoints)
    legacy = dict(state)
    legacy["patch_embed.proj.weight"] = legacy["patch_embed.proj.weight"].reshape(32, -1)
    torch.save({"model": legacy}, tmp_path / "wrapped.pt")
    wrapped = PasstBackbone(config=TINY).load(tmp_path / "wrapped.pt")
    np.testing.assert_array_equal(wrapped.embed(clip)[0]["logits"], ref)


def test_bad_files_are_named(tiny, tmp_path):
    state = dict(tiny.state_dict_official())
    del state["blocks.1.mlp.fc2.bias"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(CheckpointFormatError, match=r"missing\.pt.*blocks\.1\.mlp\.fc2\.bias"):
        PasstBackbone(config=TINY).load(tmp_path / "missing.pt")
    imagenet = {k: v for k, v in tiny.state_dict_official().items() if "new_pos_embed" not in k}
    imagenet["pos_embed"] = torch.zeros(1, 198, 32)
    torch.save(imagenet, tmp_path / "deit.pt")
    with pytest.raises(CheckpointFormatError, match=r"deit\.pt.*ImageNet ViT/DeiT"):
        PasstBackbone(config=TINY).load(tmp_path / "deit.pt")
    with pytest.raises(ValueError, match="time_new_pos_embed"):
        passt_state_from_official({"foo": torch.zeros(1)})
    with pytest.raises(CheckpointNotFound, match=r"passt-s-f128-p16-s10-ap\.476-swa\.pt.*kkoutini"):
        PasstBackbone().load()


def test_single_window_limits_are_clear_errors(tiny):
    with pytest.raises(ValueError, match=r"clip 1 gives a PaSST window of 4800 samples.*4801-321600"):
        tiny.embed([_clip(1.0), np.zeros(4800, np.float32)])
    with pytest.raises(ValueError, match=r"321601 samples.*windowing"):
        tiny.embed([np.zeros(321601, np.float32)])
    with pytest.raises(ValueError, match="1-D mono"):
        tiny.embed([np.zeros((2, 32000), np.float32)])


@pytest.mark.parametrize("seconds", [0.1, 0.5, 1.5, 1.51, 5.0, 10.0, 10.5, 12.0, 15.0, 15.01, 23.0, 60.0])
def test_stable_audio_metrics_windows_match_transcription(seconds):
    x = _clip(seconds, 9)
    ours, ref = stable_audio_metrics_windows(x), _official_sam_windows(x)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seconds,audio_length", [(0.5, 10.0), (8.0, 8.0), (10.0, 10.0), (12.0, 10.0), (12.0, 8.0)])
def test_av_benchmark_window_matches_transcription(seconds, audio_length):
    x = _clip(seconds, 4)
    ref = _official_avb_window(torch.from_numpy(x), audio_length).numpy()
    np.testing.assert_array_equal(av_benchmark_window(x, audio_length), ref)


def test_peak_normalisation_matches_pyloudnorm():
    pyln = pytest.importorskip("pyloudnorm")
    x = np.stack([_clip(2.0, 1), 0.5 * _clip(2.0, 2)], axis=1)
    np.testing.assert_allclose(stable_audio_metrics_peak_normalize(x), pyln.normalize.peak(x, -1.0), rtol=1e-12)
    with pytest.raises(ValueError, match="silent clip"):
        stable_audio_metrics_peak_normalize(np.zeros(100, np.float32))


def test_input_paths_follow_the_reference_loaders():
    from bench.audio import derive_input

    sam, avb = PasstStableAudio.input_path, PasstAvBenchmark.input_path
    assert (sam.channels, sam.remove_mean, sam.resampler) == ("mean", False, "librosa-soxr-hq")
    assert (avb.channels, avb.remove_mean, avb.resampler) == ("mean", True, "torchaudio-transforms")
    stereo = np.stack([_clip(1.0, 1) + 0.1, _clip(1.0, 2) - 0.03], axis=1)  # (samples, channels), with DC
    # av_bench/data/audio_dataset.py::AudioDataset.read_from_file at the model rate (no resampling)
    waveform = torch.from_numpy(stereo.T.copy()).mean(dim=0)
    ref = (waveform - waveform.mean()).numpy()
    np.testing.assert_array_equal(derive_input(stereo, SR, SR, avb), ref)
    np.testing.assert_allclose(derive_input(stereo, SR, SR, sam), stereo.mean(axis=1), rtol=0, atol=1e-7)


def test_stable_audio_protocol_pools_the_windows(tiny):
    sam = PasstStableAudio(config=TINY)
    sam.model, sam.identity = tiny.model, tiny.identity
    x = sam.prepare(_clip(23.0, 6))
    assert np.isclose(np.abs(x).max(), 10 ** (-1 / 20))
    windows = stable_audio_metrics_windows(x)
    assert len(windows) == 4
    logits, emb = tiny.forward_windows(windows)
    out = sam.embed([x])[0]
    np.testing.assert_allclose(out["logits"], logits.mean(axis=0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["embedding"], emb.mean(axis=0), rtol=0, atol=1e-6)


def test_av_benchmark_protocol_crops_and_pads(tiny):
    avb = PasstAvBenchmark(config=TINY, audio_length=8.0)
    avb.model, avb.identity = tiny.model, tiny.identity
    long, short = _clip(12.0, 1), _clip(3.0, 2)
    out = avb.embed([long, short])
    ref = tiny.embed([av_benchmark_window(long, 8.0), av_benchmark_window(short, 8.0)])
    for o, r in zip(out, ref):
        np.testing.assert_array_equal(o["logits"], r["logits"])
    with pytest.raises(ValueError, match="audio_length"):
        PasstAvBenchmark(audio_length=0)


def test_networks_do_not_import_bench():
    """genau_core is the bottom layer: its network modules import with `bench` and `userstudy` unimportable."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['bench'] = None; sys.modules['userstudy'] = None\n"
        "import genau_core.networks.passt, genau_core.networks.openl3\n"
        "assert 'librosa' not in sys.modules\nprint('OK')"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "OK", out.stderr[-2000:]
