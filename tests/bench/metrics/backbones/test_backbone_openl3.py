"""OpenL3 backbone: shapes, determinism, official (torchopenl3) key layout, front end, network, framing and
stable-audio-metrics' stereo handling against transcriptions of the official code. Fixed-seed random weights
built in-process (the full-size parity run against torchopenl3 is benchmarks/parity/openl3_parity.py)."""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.checkpoints import CheckpointNotFound
from bench.metrics.backbones import backbone_class
from bench.metrics.backbones.openl3 import (
    OpenL3Backbone,
    OpenL3StableAudio,
    openl3_resample,
    stable_audio_metrics_openl3_input,
)
from genau_core.checkpoint_io import CheckpointFormatError
from genau_core.networks.openl3 import OPENL3_MEL256_ENV_512, KapreMelSpectrogram, OpenL3AudioNet, openl3_frames

TINY = dataclasses.replace(OPENL3_MEL256_ENV_512, widths=(4, 8, 8, 16))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAU_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENAU_BENCH_CHECKPOINTS", raising=False)


def _calibrate(net: OpenL3AudioNet, windows: torch.Tensor) -> OpenL3AudioNet:
    """BatchNorm statistics of a batch (a default-init BN on dB input would saturate) + perturbed affines."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
        net.train()(windows)
        net.eval()
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.mul_(1 + 0.3 * torch.rand(m.weight.shape, generator=g))
                m.bias.add_(0.1 * torch.randn(m.bias.shape, generator=g))
    return net


def _tone(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.4 * np.sin(2 * np.pi * (200 + 700 * seed) * t * (1 + t)) + 0.05 * rng.standard_normal(len(t))).astype(
        np.float32
    )


def _backbone(config=TINY, seed: int = 0) -> OpenL3Backbone:
    torch.manual_seed(seed)
    b = OpenL3Backbone(config=config)
    calibration = torch.from_numpy(np.stack([_tone(1, 48000, s) for s in range(4)]))[:, None]
    net = _calibrate(b.new_network(), calibration)
    return b._install(net, b._random_identity(seed))


@pytest.fixture(scope="module")
def tiny() -> OpenL3Backbone:
    torch.set_num_threads(1)
    return _backbone()


# -- transcriptions of the official code -------------------------------------------------------
def _official_stft_kernels(n_dft):
    """torchopenl3/models.py::CustomSTFT.get_stft_kernels + the buffer reshaping in CustomSTFT.__init__."""
    nb_filter = int(n_dft // 2 + 1)
    timesteps = np.array(range(n_dft))
    w_ks = np.arange(nb_filter) * 2 * np.pi / float(n_dft)
    dft_real_kernels = np.cos(w_ks.reshape(-1, 1) * timesteps.reshape(1, -1))
    dft_imag_kernels = -np.sin(w_ks.reshape(-1, 1) * timesteps.reshape(1, -1))
    dft_window = librosa.filters.get_window("hann", n_dft, fftbins=True).astype(np.float32).reshape((1, -1))
    dft_real_kernels = np.multiply(dft_real_kernels, dft_window).transpose()[:, np.newaxis, np.newaxis, :]
    dft_imag_kernels = np.multiply(dft_imag_kernels, dft_window).transpose()[:, np.newaxis, np.newaxis, :]
    real = torch.tensor(dft_real_kernels.astype(np.float32)).squeeze(1).swapaxes(0, 2)
    imag = torch.tensor(dft_imag_kernels.astype(np.float32)).squeeze(1).swapaxes(0, 2)
    return real, imag


def _official_mel_stft(x, real, imag, mel_basis, sr=48000, n_dft=2048, n_hop=242):
    """torchopenl3/models.py::CustomMelSTFT.forward (padding "same", power_melgram 1, decibel) with
    custom_pad and CustomSTFT.amplitude_to_decibel."""
    in_width = sr
    pad_along_width = max(n_dft - n_hop, 0) if in_width % n_hop == 0 else max(n_dft - (in_width % n_hop), 0)
    pad_left = pad_along_width // 2
    x = torch.nn.ZeroPad2d((pad_left, pad_along_width - pad_left, 0, 0))(x)
    output_real = F.conv1d(x, real, stride=n_hop, padding=0).unsqueeze(3)
    output_imag = F.conv1d(x, imag, stride=n_hop, padding=0).unsqueeze(3)
    output = output_real.pow(2) + output_imag.pow(2)
    output = torch.matmul(mel_basis, output.squeeze(-1)).unsqueeze(-1)
    output = torch.pow(torch.sqrt(output), 1.0)
    log_spec = 10 * torch.log(torch.clamp(output, min=1e-10)) / np.log(10).astype(np.float32)
    log_spec = log_spec - torch.amax(log_spec, dim=tuple(range(output.ndim)[1:]), keepdims=True)
    return torch.clamp(log_spec, min=-80.0)


def _official_forward(sd, x, pool):
    """torchopenl3/models.py::PytorchOpenl3.forward (eval), from the state dict."""

    def bn(name, y):
        return F.batch_norm(
            y,
            sd[f"{name}.running_mean"],
            sd[f"{name}.running_var"],
            sd[f"{name}.weight"],
            sd[f"{name}.bias"],
            False,
            0.0,
            0.001,
        )

    def conv(name, y):
        return F.conv2d(F.pad(y, (1, 1, 1, 1)), sd[f"{name}.weight"], sd[f"{name}.bias"])

    x = _official_mel_stft(
        x, sd["speclayer.dft_real_kernels"], sd["speclayer.dft_imag_kernels"], sd["speclayer.mel_basis"]
    )
    x = bn("batch_normalization_1", x.squeeze(-1).unsqueeze(1))
    for i in range(1, 8):
        x = F.relu(bn(f"batch_normalization_{i + 1}", conv(f"conv2d_{i}", x)))
        if i in (2, 4, 6):
            x = F.max_pool2d(x, kernel_size=(2, 2), stride=(2, 2), padding=0, ceil_mode=False)
    x = conv("audio_embedding_layer", x)
    x = F.max_pool2d(x, kernel_size=pool, stride=pool, padding=0, ceil_mode=False)
    return x.swapaxes(1, 2).swapaxes(2, 3).reshape((x.shape[0], -1))


def _official_frames(audio, sr=48000, center=True, hop_size=0.1):
    """marl/openl3 openl3/core.py::_preprocess_audio_batch (after resampling): _center_audio, _pad_audio,
    librosa-style framing with as_strided."""
    frame_len = 48000
    hop_len = int(hop_size * 48000)
    if center:
        audio = np.pad(audio, (int(frame_len / 2.0), 0), mode="constant", constant_values=0)
    audio_len = audio.size
    if audio_len < frame_len:
        pad_length = frame_len - audio_len
    else:
        pad_length = int(np.ceil((audio_len - frame_len) / float(hop_len))) * hop_len - (audio_len - frame_len)
    if pad_length > 0:
        audio = np.pad(audio, (0, pad_length), mode="constant", constant_values=0)
    n_frames = 1 + int((len(audio) - frame_len) / float(hop_len))
    return np.lib.stride_tricks.as_strided(
        audio, shape=(frame_len, n_frames), strides=(audio.itemsize, hop_len * audio.itemsize)
    ).T


def _official_sam_frames(path_audio, sr, embed_windows):
    """Stability-AI/stable-audio-metrics src/openl3_fd.py::extract_embeddings, channels=2, samplingrate=44100,
    hop 0.5: one file's frames; `path_audio` is what librosa.load(sr=None, mono=False) returns, and the
    network call stands for openl3.get_audio_embedding (its resampy 48 kHz step and framing transcribed)."""
    import pyloudnorm as pyln
    import resampy
    import soxr

    audio = path_audio.T
    audio = pyln.normalize.peak(audio, -1.0)
    audio = soxr.resample(audio, sr, 44100)
    if audio.ndim == 1:
        left, right = audio, audio
    else:
        left, right = audio[:, 0], audio[:, 1]
    embs, frames = [], []
    for channel in (left, right):
        x = resampy.resample(channel, sr_orig=44100, sr_new=48000, filter="kaiser_best")
        frames.append(_official_frames(x, hop_size=0.5).astype(np.float32))
        embs.append(embed_windows(frames[-1]))
    return np.concatenate(embs, axis=1), frames


# -- tests ------------------------------------------------------------------------------------
def test_registered_name_and_attributes():
    assert backbone_class("openl3-mel256-env-512") is OpenL3Backbone
    assert backbone_class("openl3-mel256-env-512-stable-audio") is OpenL3StableAudio
    b = OpenL3Backbone
    assert (b.sample_rate, b.channels, b.channel_embedding_dim, b.embedding_dim) == (48000, 2, 512, 1024)
    assert (b.hop_size, b.center, b.outputs) == (0.5, True, ("frames",))
    assert b.checkpoint_filename == "torchopenl3_mel256_env_512.pth.tar"
    assert b.checkpoint_source.endswith("torchopenl3-models/raw/master/torchopenl3_mel256_env_512.pth.tar")


def test_front_end_matches_official_transcription():
    fe = KapreMelSpectrogram()
    real, imag = _official_stft_kernels(2048)
    assert torch.equal(fe.dft_real_kernels, real) and torch.equal(fe.dft_imag_kernels, imag)
    with pytest.warns(UserWarning, match="Empty filters"):
        mel = librosa.filters.mel(sr=48000, n_fft=2048, n_mels=256, fmin=0, fmax=24000, htk=True, norm=1)
    assert torch.equal(fe.mel_basis, torch.tensor(mel))
    x = torch.from_numpy(np.stack([_tone(1, 48000, 1), _tone(1, 48000, 2)]))[:, None]
    ours = fe(x)
    ref = _official_mel_stft(x, real, imag, torch.tensor(mel))
    assert ours.shape == (2, 1, 256, 199) and ref.shape == (2, 256, 199, 1)
    torch.testing.assert_close(ours[:, 0], ref[..., 0], rtol=0, atol=2e-4)  # dB values in [-80, 0]


def _check_network(bb: OpenL3Backbone, dim: int) -> None:
    windows = np.stack([_tone(1, 48000, s) for s in (5, 6)])
    ours = bb.embed_windows(windows)
    sd = {k: v.detach() for k, v in bb.state_dict_official().items()}
    with torch.no_grad():
        ref = _official_forward(sd, torch.from_numpy(windows)[:, None], (32, 24)).numpy()
    assert ours.shape == ref.shape == (2, dim)
    assert np.abs(ref).max() > 0.1
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4 * np.abs(ref).max())


def test_network_matches_official_transcription(tiny):
    _check_network(tiny, 16)  # narrow convolutions, same layer sequence, pooling and reshape


def test_full_size_network_matches_official_transcription():  # 3 s on 2 idle cores
    torch.set_num_threads(1)
    _check_network(_backbone(OPENL3_MEL256_ENV_512), 512)


@pytest.mark.parametrize("seconds", [0.3, 0.5, 1.0, 1.2, 3.7])
@pytest.mark.parametrize("hop,center", [(0.5, True), (0.1, True), (0.5, False)])
def test_framing_matches_openl3(seconds, hop, center):
    x = _tone(seconds, 48000, 3)
    ref = _official_frames(x, center=center, hop_size=hop)
    ours = openl3_frames(x, hop, center)
    assert ours.shape == ref.shape and ours.shape[1] == 48000
    np.testing.assert_array_equal(ours, ref)


def test_official_key_layout_and_round_trip(tiny, tmp_path):
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    expected = {"speclayer.dft_real_kernels", "speclayer.dft_imag_kernels", "speclayer.mel_basis"}
    expected |= {f"batch_normalization_{i}.{p}" for i in range(1, 9) for p in bn}
    expected |= {
        f"{c}.{p}" for c in [*(f"conv2d_{i}" for i in range(1, 8)), "audio_embedding_layer"] for p in ("weight", "bias")
    }
    with torch.device("meta"):
        full = OpenL3AudioNet()
    # the torchopenl3 names, listed from PytorchOpenl3("env", "mel256", 512).state_dict() in the oracle venv
    assert set(full.state_dict()) == expected
    assert full.state_dict()["audio_embedding_layer.weight"].shape == (512, 512, 3, 3)
    path = tiny.save_official(tmp_path / "torchopenl3_mel256_env_512.pth.tar")
    assert set(torch.load(path, weights_only=True)) == expected
    clip = [np.stack([_tone(1.3, 48000, 1), _tone(1.3, 48000, 2)])]
    b = OpenL3Backbone(config=TINY)
    loaded = b.load(path)
    assert loaded.identity.weights == "official"
    np.testing.assert_array_equal(loaded.embed(clip)[0]["frames"], tiny.embed(clip)[0]["frames"])


def test_stored_front_end_tensors_are_used(tiny, tmp_path):
    state = dict(tiny.state_dict_official())
    state["speclayer.mel_basis"] = state["speclayer.mel_basis"] * 1.5  # e.g. another librosa's norm=1
    torch.save(state, tmp_path / "older.pth.tar")
    b = OpenL3Backbone(config=TINY)
    b.load(tmp_path / "older.pth.tar")
    assert torch.equal(b.model.speclayer.mel_basis, state["speclayer.mel_basis"])
    w = np.stack([_tone(1, 48000, 8)])
    # a uniform gain cancels in the max-normalised dB; the per-window dB maximum does not move
    np.testing.assert_allclose(b.embed_windows(w), tiny.embed_windows(w), rtol=0, atol=1e-4)
    state["speclayer.mel_basis"][:128] *= 3.0
    torch.save(state, tmp_path / "other.pth.tar")
    assert not np.allclose(b.load(tmp_path / "other.pth.tar").embed_windows(w), tiny.embed_windows(w), atol=1e-3)


def test_bad_files_and_inputs_are_named(tiny, tmp_path):
    state = dict(tiny.state_dict_official())
    del state["conv2d_3.bias"]
    torch.save(state, tmp_path / "broken.pth.tar")
    b = OpenL3Backbone(config=TINY)
    with pytest.raises(CheckpointFormatError, match=r"broken\.pth\.tar.*conv2d_3\.bias"):
        b.load(tmp_path / "broken.pth.tar")
    with pytest.raises(CheckpointFormatError, match=r"tiny\.pth\.tar.*shape"):
        torch.save(tiny.state_dict_official(), tmp_path / "tiny.pth.tar")
        OpenL3Backbone().load(tmp_path / "tiny.pth.tar")  # full-size config, tiny file
    with pytest.raises(CheckpointNotFound, match=r"torchopenl3_mel256_env_512\.pth\.tar.*torchopenl3-models"):
        OpenL3Backbone().load()
    with pytest.raises(ValueError, match=r"clip 1 has shape \(3, 100\)"):
        tiny.embed([np.zeros(100, np.float32), np.zeros((3, 100), np.float32)])
    with pytest.raises(ValueError, match="dtype int16"):
        tiny.embed([np.zeros(100, np.int16)])
    with pytest.raises(ValueError, match="NaN"):
        tiny.embed([np.full(100, np.nan, np.float32)])
    with pytest.raises(ValueError, match="silent clip"):
        stable_audio_metrics_openl3_input(np.zeros(4410, np.float32), 44100)


def test_shapes_and_mono_as_fake_stereo(tiny):
    stereo = np.stack([_tone(2.2, 48000, 1), _tone(2.2, 48000, 2)])
    out = tiny.embed([stereo, stereo[0], _tone(0.4, 48000, 3)])
    n = len(openl3_frames(stereo[0], 0.5))
    assert n == 5 and out[0]["frames"].shape == (5, 32) and out[0]["frames"].dtype == np.float32
    left, right = tiny.embed_windows(openl3_frames(stereo[0], 0.5)), tiny.embed_windows(openl3_frames(stereo[1], 0.5))
    np.testing.assert_allclose(out[0]["frames"], np.concatenate([left, right], axis=1), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(out[1]["frames"][:, :16], out[1]["frames"][:, 16:])  # mono: L = R
    assert out[2]["frames"].shape == (1, 32)  # 0.4 s: centred (0.9 s), padded to one window
    # seeds and batch independence: tests/bench/metrics/backbones/test_backbone_contract.py, for every backbone


def test_equal_channels_are_embedded_once(tiny, monkeypatch):
    """A (2, n) input whose channels are equal (a mono source after the stable-audio derivation, or a dual-mono
    file) runs the network on one channel's windows and gives the mono input's frames, L = R exactly."""
    mono = _tone(2.2, 48000, 1)
    seen = []
    real = tiny.embed_windows
    monkeypatch.setattr(tiny, "embed_windows", lambda w: seen.append(len(w)) or real(w))
    dual, single = tiny.embed([np.stack([mono, mono])])[0]["frames"], tiny.embed([mono])[0]["frames"]
    assert seen == [5, 5]  # 5 windows each time, not 10 for the dual-mono clip
    np.testing.assert_array_equal(dual, single)
    np.testing.assert_array_equal(dual[:, :16], dual[:, 16:])
    other = mono.copy()
    other[100] += 1e-6  # one differing sample: both channels embedded
    tiny.embed([np.stack([mono, other])])
    assert seen[-1] == 10


@pytest.mark.parametrize("seconds,sr,channels", [(1.6, 44100, 2), (1.3, 48000, 2), (1.1, 16000, 1), (0.6, 22050, 2)])
def test_stable_audio_metrics_pipeline_matches_transcription(tiny, seconds, sr, channels):
    native = np.stack([_tone(seconds, sr, c + 1) * (0.5 + 0.2 * c) for c in range(channels)])  # (channels, n)
    librosa_layout = native[0] if channels == 1 else native  # librosa.load(mono=False): (n,) or (C, n)
    ref, ref_frames = _official_sam_frames(librosa_layout, sr, tiny.embed_windows)
    x = stable_audio_metrics_openl3_input(native.T if channels > 1 else native[0], sr)
    assert x.shape[0] == 2 and x.dtype == np.float32
    derived = OpenL3StableAudio().derive_native(native.T if channels > 1 else native[0], sr)
    np.testing.assert_array_equal(derived, x)
    # the dB mel of every window: the band above 22.05 kHz holds only resampling residue near the -80 dB
    # floor, where a float32 (instead of float64) peak / soxr / resampy chain moved it by dB (4 % embeddings)
    fe = KapreMelSpectrogram()
    for c in range(2):
        with torch.no_grad():
            ours_db = fe(torch.from_numpy(openl3_frames(x[c], 0.5))[:, None])
            ref_db = fe(torch.from_numpy(np.ascontiguousarray(ref_frames[c]))[:, None])
        torch.testing.assert_close(ours_db, ref_db, rtol=0, atol=0.05)
    ours = tiny.embed([x])[0]["frames"]
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4 * np.abs(ref).max())


def test_openl3_resample_is_resampy_kaiser_best():
    resampy = pytest.importorskip("resampy")
    x = _tone(0.5, 44100, 4)
    np.testing.assert_array_equal(openl3_resample(x, 44100), resampy.resample(x, 44100, 48000, filter="kaiser_best"))
    assert openl3_resample(x, 48000) is not None and len(openl3_resample(x, 48000)) == len(x)


def test_stable_audio_chain_stays_in_float64_until_the_network(monkeypatch):
    """As in the reference (pyloudnorm's float64 gain, soxr and resampy keep the dtype), the peak / soxr /
    resampy chain runs in float64. A float32 chain changed the 48 kHz samples by ~3e-8, the dB mel of the
    empty band above 22.05 kHz by up to 4.7 dB and the OpenL3 embeddings by 4 % (openl3_parity.py, measured)."""
    import bench.metrics.backbones.openl3 as mod

    seen = []
    real = mod.openl3_resample

    def spy(x, sr):
        seen.append(np.asarray(x).dtype)
        return real(x, sr)

    monkeypatch.setattr(mod, "openl3_resample", spy)
    x = stable_audio_metrics_openl3_input(np.stack([_tone(0.3, 48000, 1), _tone(0.3, 48000, 2)], axis=1), 48000)
    assert seen == [np.float64, np.float64] and x.dtype == np.float32


def test_channels_resampled_side_by_side_are_bit_identical_and_mono_once(monkeypatch):
    """Stereo: the two channels go through resampy in two threads, with the same samples as one after the
    other. Mono: resampled once and used for both channels (as the reference's fake stereo)."""
    import soxr

    import bench.metrics.backbones.openl3 as mod

    stereo = np.stack([_tone(0.4, 44100, 1), _tone(0.4, 44100, 2) * 0.5], axis=1)
    x = soxr.resample(mod.stable_audio_metrics_peak_normalize(stereo.astype(np.float32)), 44100, 44100)
    serial = np.stack([openl3_resample(x[:, c], 44100) for c in range(2)]).astype(np.float32)
    np.testing.assert_array_equal(stable_audio_metrics_openl3_input(stereo, 44100), serial)
    calls = []
    real = mod.openl3_resample
    monkeypatch.setattr(mod, "openl3_resample", lambda c, sr: calls.append(len(c)) or real(c, sr))
    mono = stable_audio_metrics_openl3_input(stereo[:, 0], 44100)
    assert len(calls) == 1 and mono.shape[0] == 2
    np.testing.assert_array_equal(mono[0], mono[1])
    dual = stable_audio_metrics_openl3_input(np.stack([stereo[:, 0], stereo[:, 0]], axis=1), 44100)
    assert len(calls) == 2  # a dual-mono file: once too, and the same samples as the mono file
    np.testing.assert_array_equal(dual, mono)


def test_folded_inference_equals_the_network_and_is_released(tiny):
    """The backbone's network folds BatchNorm into the convolutions on CPU with the fast kernels: the same
    embeddings as torchopenl3's layer order (OpenL3AudioNet under PyTorch's kernels) up to float32 rounding."""
    plain = OpenL3AudioNet(TINY)
    plain.load_state_dict(tiny.model.state_dict())
    windows = torch.from_numpy(np.stack([_tone(1, 48000, s) for s in (5, 6, 7)]))[:, None]
    with torch.inference_mode():
        got, want = tiny.model(windows), plain.eval()(windows)
    assert tiny.model._folder._made, "the fast path did not fold"
    assert float((got - want).abs().max() / want.abs().max()) < 1e-5
    copy = _backbone()
    with torch.inference_mode():
        copy.model(windows)
    assert copy.model._folder._made
    copy.model.to("meta")  # LazyBackbone.release: the folded copies go with the weights
    assert not copy.model._folder._made
