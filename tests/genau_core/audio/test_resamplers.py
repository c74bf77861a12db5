"""Each backbone's input is made as its reference tool makes it (issue 13 item 6).

Compared, bit for bit, against transcriptions of the official code written here from reading it:
- torchaudio `src/torchaudio/functional/functional.py` `_get_sinc_resample_kernel`,
  `_apply_sinc_resample_kernel`, `resample`, and `src/torchaudio/transforms/_transforms.py`
  `Resample` (pytorch/audio 2.x; torchaudio cannot be installed beside torch 2.13 here);
- audioldm_eval `audioldm_eval/datasets/load_mel.py` `WaveDataset.read_from_file` + `pad_short_audio`
  (haoheliu/audioldm_eval PyPI 0.0.3 = commit 48873a9, unchanged on main; the copy vendored in
  snap-research/GenAU `GenAU/audioldm_eval` is the same) - PANNs Cnn14 and VGGish;
- laion_clap `src/laion_clap/hook.py` `get_audio_embedding_from_filelist` (librosa.load(sr=48000) - the
  real librosa of this venv, whose default res_type is soxr_hq - then `training/data.py`
  `int16_to_float32(float32_to_int16(x))` and `get_audio_features` "rand_trunc" / "repeatpad");
- msclap `msclap/CLAPWrapper.py` `read_audio` + `load_audio_into_tensor` (microsoft/CLAP), with its
  `random.randrange` crop offset replaced by 0 (the protocol's deterministic crop).

`torchaudio.load(path)` is transcribed as libsndfile's float32 decode, channels first: for WAV the
same values (PCM scaled by 1/32768, as torchaudio's `normalize=True`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bench.audio import (
    PLAIN_INPUT,
    REFERENCE,
    RESAMPLERS,
    derive_input,
    known_resamplers,
    read_audio_channels,
    resample,
)
from bench.metrics import backbones as registry
from bench.metrics.backbones.base import AudioBackbone, BackboneIdentity
from bench.metrics.backbones.laion_clap import LaionClapHtsatBase
from bench.metrics.backbones.ms_clap import MsClap2023
from bench.metrics.backbones.panns import Cnn14Backbone
from bench.metrics.backbones.vggish import VGGishBackbone
from bench.metrics.cache import EmbeddingCache
from bench.metrics.suite import ScoreConfig, score
from bench.protocol import PROTOCOL
from genau_core.audio.resample import sinc_resample


# ----------------------------------------------------------------------------- transcriptions
def ta_get_sinc_resample_kernel(
    orig_freq,
    new_freq,
    gcd,
    lowpass_filter_width=6,
    rolloff=0.99,
    resampling_method="sinc_interp_hann",
    beta=None,
    device=None,
    dtype=None,
):
    """torchaudio functional.py `_get_sinc_resample_kernel` (the deprecation warning branch left out)."""
    if not (int(orig_freq) == orig_freq and int(new_freq) == new_freq):
        raise Exception("Frequencies must be of integer type")  # noqa: TRY002 - as upstream
    if resampling_method not in ["sinc_interp_hann", "sinc_interp_kaiser"]:
        raise ValueError(f"Invalid resampling method: {resampling_method}")
    orig_freq = int(orig_freq) // gcd
    new_freq = int(new_freq) // gcd
    if lowpass_filter_width <= 0:
        raise ValueError("Low pass filter width should be positive.")
    base_freq = min(orig_freq, new_freq)
    base_freq *= rolloff
    width = math.ceil(lowpass_filter_width * orig_freq / base_freq)
    idx_dtype = dtype if dtype is not None else torch.float64
    idx = torch.arange(-width, width + orig_freq, dtype=idx_dtype, device=device)[None, None] / orig_freq
    t = torch.arange(0, -new_freq, -1, dtype=dtype, device=device)[:, None, None] / new_freq + idx
    t *= base_freq
    t = t.clamp_(-lowpass_filter_width, lowpass_filter_width)
    if resampling_method == "sinc_interp_hann":
        window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    else:
        if beta is None:
            beta = 14.769656459379492
        beta_tensor = torch.tensor(float(beta))
        window = torch.i0(beta_tensor * torch.sqrt(1 - (t / lowpass_filter_width) ** 2)) / torch.i0(beta_tensor)
    t *= math.pi
    scale = base_freq / orig_freq
    kernels = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t)
    kernels *= window * scale
    if dtype is None:
        kernels = kernels.to(dtype=torch.float32)
    return kernels, width


def ta_apply_sinc_resample_kernel(waveform, orig_freq, new_freq, gcd, kernel, width):
    """torchaudio functional.py `_apply_sinc_resample_kernel`."""
    if not waveform.is_floating_point():
        raise TypeError(f"Expected floating point type for waveform tensor, but received {waveform.dtype}.")
    orig_freq = int(orig_freq) // gcd
    new_freq = int(new_freq) // gcd
    shape = waveform.size()
    waveform = waveform.view(-1, shape[-1])
    num_wavs, length = waveform.shape
    waveform = torch.nn.functional.pad(waveform, (width, width + orig_freq))
    resampled = torch.nn.functional.conv1d(waveform[:, None], kernel, stride=orig_freq)
    resampled = resampled.transpose(1, 2).reshape(num_wavs, -1)
    target_length = torch.ceil(torch.as_tensor(new_freq * length / orig_freq)).long()
    resampled = resampled[..., :target_length]
    resampled = resampled.view(shape[:-1] + resampled.shape[-1:])
    return resampled


def ta_functional_resample(
    waveform, orig_freq, new_freq, lowpass_filter_width=6, rolloff=0.99, resampling_method="sinc_interp_hann", beta=None
):
    """torchaudio functional.py `resample`."""
    if orig_freq <= 0.0 or new_freq <= 0.0:
        raise ValueError("Original frequency and desired frequecy should be positive")
    if orig_freq == new_freq:
        return waveform
    gcd = math.gcd(int(orig_freq), int(new_freq))
    kernel, width = ta_get_sinc_resample_kernel(
        orig_freq,
        new_freq,
        gcd,
        lowpass_filter_width,
        rolloff,
        resampling_method,
        beta,
        waveform.device,
        waveform.dtype,
    )
    return ta_apply_sinc_resample_kernel(waveform, orig_freq, new_freq, gcd, kernel, width)


class TaResample(torch.nn.Module):
    """torchaudio transforms/_transforms.py `Resample` (`dtype=None`: the kernel is built in float64)."""

    def __init__(
        self,
        orig_freq=16000,
        new_freq=16000,
        resampling_method="sinc_interp_hann",
        lowpass_filter_width=6,
        rolloff=0.99,
        beta=None,
        *,
        dtype=None,
    ):
        super().__init__()
        self.orig_freq = orig_freq
        self.new_freq = new_freq
        self.gcd = math.gcd(int(self.orig_freq), int(self.new_freq))
        if self.orig_freq != self.new_freq:
            kernel, self.width = ta_get_sinc_resample_kernel(
                self.orig_freq,
                self.new_freq,
                self.gcd,
                lowpass_filter_width,
                rolloff,
                resampling_method,
                beta,
                dtype=dtype,
            )
            self.register_buffer("kernel", kernel)

    def forward(self, waveform):
        if self.orig_freq == self.new_freq:
            return waveform
        return ta_apply_sinc_resample_kernel(waveform, self.orig_freq, self.new_freq, self.gcd, self.kernel, self.width)


def ta_load(path):
    """torchaudio.load(path): float32 (channels, frames), see the module docstring."""
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return torch.from_numpy(np.ascontiguousarray(data.T)), sr


def audioldm_eval_read_from_file(audio_file, sr=16000):
    """audioldm_eval datasets/load_mel.py `WaveDataset.read_from_file` with `pad_short_audio`."""
    audio, file_sr = ta_load(audio_file)
    audio = audio[0:1, ...]
    audio = audio - audio.mean()
    if file_sr != sr:
        audio = ta_functional_resample(audio, orig_freq=file_sr, new_freq=sr)
    min_samples = 32000
    if audio.size(-1) < min_samples:
        audio = torch.nn.functional.pad(audio, (0, min_samples - audio.size(-1)), mode="constant", value=0.0)
    return audio


def msclap_load_audio_into_tensor(audio_path, audio_duration, resample=True, sampling_rate=44100):
    """msclap CLAPWrapper.py `read_audio` + `load_audio_into_tensor` (random.randrange -> 0)."""
    audio_time_series, sample_rate = ta_load(audio_path)
    resample_rate = sampling_rate
    if resample and resample_rate != sample_rate:
        resampler = TaResample(sample_rate, resample_rate)
        audio_time_series = resampler(audio_time_series)
    sample_rate = resample_rate
    audio_time_series = audio_time_series.reshape(-1)
    if audio_duration * sample_rate >= audio_time_series.shape[0]:
        repeat_factor = int(np.ceil((audio_duration * sample_rate) / audio_time_series.shape[0]))
        audio_time_series = audio_time_series.repeat(repeat_factor)
        audio_time_series = audio_time_series[0 : audio_duration * sample_rate]
    else:
        start_index = 0  # random.randrange(audio_time_series.shape[0] - audio_duration * sample_rate)
        audio_time_series = audio_time_series[start_index : start_index + audio_duration * sample_rate]
    return torch.FloatTensor(audio_time_series)


def laion_clap_filelist_input(f, max_len=480000):
    """laion_clap hook.py `get_audio_embedding_from_filelist` up to `get_audio_features`' waveform
    (enable_fusion=False: data_truncating "rand_trunc" with offset 0, data_filling "repeatpad")."""
    import librosa

    audio_waveform, _ = librosa.load(f, sr=48000)
    x = np.clip(audio_waveform, a_min=-1.0, a_max=1.0)  # float32_to_int16
    audio_waveform = ((x * 32767.0).astype("int16") / 32767.0).astype("float32")  # int16_to_float32
    audio_data = torch.from_numpy(audio_waveform).float()
    if len(audio_data) > max_len:
        idx = 0  # np.random.integers(0, overflow + 1)
        audio_data = audio_data[idx : idx + max_len]
    elif len(audio_data) < max_len:
        n_repeat = int(max_len / len(audio_data))
        audio_data = audio_data.repeat(n_repeat)
        audio_data = torch.nn.functional.pad(audio_data, (0, max_len - len(audio_data)), mode="constant", value=0)
    return audio_data


# ----------------------------------------------------------------------------- fixtures
def _write(
    path: Path, sr: int, seconds: float, channels: int = 1, dc: float = 0.0, subtype: str = "FLOAT", seed: int = 0
):
    rng = np.random.default_rng(seed)
    n = round(sr * seconds)
    t = np.arange(n) / sr
    chans = [
        0.3 * np.sin(2 * np.pi * (330 + 170 * c) * t) + 0.05 * rng.standard_normal(n) + (dc if c == 0 else -dc)
        for c in range(channels)
    ]
    sf.write(path, np.stack(chans, 1).astype(np.float32), sr, subtype=subtype)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("resampler_clips")
    return {
        "stereo_44k": _write(d / "stereo_44k.wav", 44100, 3.3, channels=2, dc=0.05, seed=1),
        "short_32k_pcm16": _write(d / "short_32k.wav", 32000, 1.2, dc=0.02, subtype="PCM_16", seed=2),
        "long_16k": _write(d / "long_16k.wav", 16000, 12.5, dc=-0.01, seed=3),
        "stereo_16k": _write(d / "stereo_16k.wav", 16000, 2.0, channels=2, seed=4),
        "odd_22k": _write(d / "odd_22k.wav", 22050, 4.0123, seed=5),
    }


RATE_PAIRS = [
    (16000, 44100),
    (44100, 16000),
    (32000, 16000),
    (48000, 16000),
    (22050, 48000),
    (16000, 48000),
    (8000, 16000),
]


# ----------------------------------------------------------------------------- the resampler itself
@pytest.mark.parametrize("orig,new", RATE_PAIRS)
def test_sinc_kernel_and_output_equal_torchaudio_bit_for_bit(orig, new):
    x = torch.from_numpy(np.random.default_rng(orig + new).standard_normal((2, orig // 3 + 17)).astype(np.float32))
    want_functional = ta_functional_resample(x, orig, new)
    want_transform = TaResample(orig, new)(x)
    assert torch.equal(sinc_resample(x, orig, new), want_functional)
    assert torch.equal(sinc_resample(x, orig, new, kernel_dtype=None), want_transform)
    assert not torch.equal(want_functional, want_transform) or orig % new == 0  # the two kernels differ in float32 bits
    # the numpy entry points of bench.audio, on one clip (a batch of one, as the tools resample a mono file;
    # conv1d's float32 sums depend on the batch size, so rows of a batch of two may differ in the last bit)
    one = x[:1]
    assert np.array_equal(
        resample(one[0].numpy(), orig, new, "torchaudio-functional"), ta_functional_resample(one, orig, new)[0].numpy()
    )
    assert np.array_equal(
        resample(one[0].numpy(), orig, new, "torchaudio-transforms"), TaResample(orig, new)(one)[0].numpy()
    )


def test_kaiser_window_and_other_widths_equal_torchaudio():
    x = torch.from_numpy(np.random.default_rng(3).standard_normal(5000).astype(np.float32))
    assert torch.equal(
        sinc_resample(x, 44100, 16000, method="sinc_interp_kaiser"),
        ta_functional_resample(x, 44100, 16000, resampling_method="sinc_interp_kaiser"),
    )
    assert torch.equal(
        sinc_resample(x, 44100, 16000, lowpass_filter_width=16, rolloff=0.95),
        ta_functional_resample(x, 44100, 16000, lowpass_filter_width=16, rolloff=0.95),
    )


def test_output_length_is_computed_in_float32_as_torchaudio_does():
    """n * length / o in float32: for 2 100 001 samples at 16 kHz -> 44.1 kHz the exact ceil is one sample
    longer than torchaudio's output."""
    n = 2_100_001
    x = torch.zeros(n)
    exact = math.ceil(441 * n / 160)
    got = sinc_resample(x, 16000, 44100)
    assert got.shape[-1] == ta_functional_resample(x, 16000, 44100).shape[-1] == int(np.ceil(np.float32(441 * n / 160)))
    assert got.shape[-1] in (exact, exact - 1)


def test_librosa_soxr_hq_equals_librosa_resample():
    import librosa

    rng = np.random.default_rng(0)
    for n, (a, b) in [(88213, (44100, 48000)), (48007, (16000, 48000)), (66151, (22050, 48000))]:
        x = (0.1 * rng.standard_normal(n)).astype(np.float32)
        want = librosa.resample(x, orig_sr=a, target_sr=b, res_type="soxr_hq")
        assert np.array_equal(resample(x, a, b, "librosa-soxr-hq"), want)
    assert not np.array_equal(resample(x, 44100, 48000, "soxr-hq"), librosa.resample(x, orig_sr=44100, target_sr=48000))


def test_known_resamplers_and_the_reference_default():
    names = known_resamplers()
    assert set(RESAMPLERS) | {REFERENCE} == set(names) and names[-1] == REFERENCE
    assert {"soxr-hq", "torchaudio-functional", "torchaudio-transforms", "librosa-soxr-hq"} <= set(names)
    assert PROTOCOL.scoring_resampler == REFERENCE == ScoreConfig().resampler
    assert PROTOCOL.resampler == "soxr-hq"  # generation (native rate -> 16 kHz) is unchanged
    with pytest.raises(ValueError, match="resolved per backbone"):
        resample(np.zeros(100, np.float32), 16000, 48000, REFERENCE)


# ----------------------------------------------------------------------------- each backbone's input path
def test_each_backbone_names_its_reference_tools_input_path():
    assert Cnn14Backbone.input_path.resampler_for(REFERENCE) == "torchaudio-functional"
    assert VGGishBackbone.input_path is Cnn14Backbone.input_path
    assert (Cnn14Backbone.input_path.channels, Cnn14Backbone.input_path.remove_mean) == ("first", True)
    assert (
        LaionClapHtsatBase.input_path.resampler == "librosa-soxr-hq"
        and LaionClapHtsatBase.input_path.channels == "mean"
    )
    assert (
        MsClap2023.input_path.resampler == "torchaudio-transforms" and MsClap2023.input_path.channels == "concatenate"
    )
    assert AudioBackbone.input_path is PLAIN_INPUT
    # a named resampler replaces only the resampling step
    assert Cnn14Backbone.input_path.resampler_for("soxr-hq") == "soxr-hq"
    assert Cnn14Backbone.input_path.key("soxr-hq") == "audioldm_eval.soxr-hq"


@pytest.mark.parametrize("clip", ["stereo_44k", "short_32k_pcm16", "long_16k", "stereo_16k", "odd_22k"])
def test_audioldm_eval_input_equals_wavedataset(files, clip):
    """PANNs / VGGish: first channel, mean removed before resampling, torchaudio sinc, 2 s pad, whole file."""
    want = audioldm_eval_read_from_file(files[clip])[0].numpy()
    data, sr = read_audio_channels(files[clip])
    for cls in (Cnn14Backbone, VGGishBackbone):
        got = cls(device="cpu").prepare(derive_input(data, sr, 16000, cls.input_path))
        assert got.dtype == np.float32 and np.array_equal(got, want), clip


@pytest.mark.parametrize("clip", ["stereo_44k", "short_32k_pcm16", "long_16k", "stereo_16k", "odd_22k"])
def test_msclap_input_equals_load_audio_into_tensor(files, clip):
    """MS-CLAP: transforms.Resample to 44.1 kHz, channels concatenated, repeated or cut to 7 s."""
    want = msclap_load_audio_into_tensor(files[clip], 7).numpy()
    data, sr = read_audio_channels(files[clip])
    bb = MsClap2023(device="cpu")
    got = bb.fit_clip(bb.prepare(derive_input(data, sr, 44100, bb.input_path)))
    assert np.array_equal(got, want), clip


@pytest.mark.parametrize("clip", ["stereo_44k", "short_32k_pcm16", "long_16k", "odd_22k"])
def test_laion_clap_input_equals_librosa_load_path(files, clip):
    """LAION-CLAP: librosa.load(sr=48000) (channel mean, soxr HQ, fix_length), int16 round trip, 10 s window."""
    want = laion_clap_filelist_input(files[clip]).numpy()
    data, sr = read_audio_channels(files[clip])
    bb = LaionClapHtsatBase(device="cpu")
    got = bb.fit_clip(bb.prepare(derive_input(data, sr, 48000, bb.input_path)))
    assert np.array_equal(got, want), clip


def test_soxr_stays_a_named_option_and_changes_the_input(files):
    data, sr = read_audio_channels(files["stereo_44k"])
    path = Cnn14Backbone.input_path
    ref, sox = derive_input(data, sr, 16000, path), derive_input(data, sr, 16000, path, "soxr-hq")
    assert ref.shape == sox.shape and not np.array_equal(ref, sox)
    first = data[:, 0] - torch.from_numpy(np.ascontiguousarray(data[:, 0])).mean().item()
    assert np.allclose(sox, resample(first.astype(np.float32), sr, 16000, "soxr-hq"), atol=1e-6)


# ----------------------------------------------------------------------------- through the scoring suite
SEEN: dict[str, dict[int, np.ndarray]] = {}


class _Capture(AudioBackbone):
    """Records what the suite hands the network (after `prepare`), keyed by clip length."""

    embedding_dim = 2
    outputs = ("embedding", "logits", "frames")

    def load(self, checkpoint=None):
        raise FileNotFoundError("capture backbones have no checkpoint")

    def init_random(self, seed=0):
        self.model = object()
        self.identity = BackboneIdentity(self.name, self.sample_rate, f"random:seed={seed}", "random", "in-process")
        return self

    def embed(self, waveforms):
        out = []
        for w in waveforms:
            SEEN.setdefault(self.name, {})[len(SEEN.get(self.name, {}))] = np.array(w)
            v = np.array([w.mean(), w.std()], np.float32)
            out.append({"embedding": v, "logits": v, "frames": v[None]})
        return out


class _CaptureAudioldmEval(_Capture):
    name, sample_rate, input_path = "capture-audioldm-eval", 16000, Cnn14Backbone.input_path
    prepare = Cnn14Backbone.prepare


class _CaptureMsclap(_Capture):
    name, sample_rate, input_path = "capture-msclap", 44100, MsClap2023.input_path


class _CaptureLaion(_Capture):
    name, sample_rate, input_path = "capture-laion", 48000, LaionClapHtsatBase.input_path


def test_the_suite_feeds_each_backbone_its_reference_tools_input(files, monkeypatch, tmp_path):
    """Old code: channels averaged, soxr HQ for every backbone, mean removed after resampling, files cut to 10 s."""
    for cls in (_CaptureAudioldmEval, _CaptureMsclap, _CaptureLaion):
        monkeypatch.setitem(registry.BACKBONES, cls.name, f"{__name__}:{cls.__name__}")
    SEEN.clear()
    clips = ["long_16k", "stereo_44k"]  # the suite embeds files in sorted path order
    gen = {c: files[c] for c in clips}
    cfg = ScoreConfig(
        metrics=["FD"], backbones={"panns": "capture-audioldm-eval"}, weights="random", bootstrap=0, progress=False
    )
    res = score(gen, {}, None, cfg, EmbeddingCache(enabled=False))
    got = [SEEN["capture-audioldm-eval"][i] for i in range(2)]
    for c, g in zip(clips, got):  # sorted file order = clips order
        assert np.array_equal(g, audioldm_eval_read_from_file(files[c])[0].numpy()), c
    assert res.backbones["capture-audioldm-eval"]["resampler"] == "torchaudio-functional"
    assert res.backbones["capture-audioldm-eval"]["input"]["channels"] == "first"
    assert res.resampler == REFERENCE
    for name, rate, want in (
        ("capture-msclap", 44100, lambda f: msclap_load_audio_into_tensor(f, 7)),
        ("capture-laion", 48000, laion_clap_filelist_input),
    ):
        cfg = ScoreConfig(metrics=["FD"], backbones={"panns": name}, weights="random", bootstrap=0, progress=False)
        score(gen, {}, None, cfg, EmbeddingCache(enabled=False))
        fit = (MsClap2023 if "msclap" in name else LaionClapHtsatBase)(device="cpu").fit_clip
        for i, c in enumerate(clips):
            assert np.array_equal(fit(SEEN[name][i]), want(files[c]).numpy()), (name, c)


def test_the_cache_key_names_the_input_path_and_resampler(files, monkeypatch, tmp_path):
    monkeypatch.setitem(registry.BACKBONES, _CaptureAudioldmEval.name, f"{__name__}:{_CaptureAudioldmEval.__name__}")
    gen = {"a": files["long_16k"], "b": files["odd_22k"]}
    cache = EmbeddingCache(tmp_path / "cache")
    cfg = ScoreConfig(
        metrics=["FD"], backbones={"panns": _CaptureAudioldmEval.name}, weights="random", bootstrap=0, progress=False
    )
    score(gen, {}, None, cfg, cache)
    score(gen, {}, None, cfg, cache)
    assert cache.hits == 2
    cfg.resampler = "soxr-hq"
    score(gen, {}, None, cfg, cache)
    assert cache.misses == 4  # 2 cold + 2 with the other resampler
    leaves = sorted({p.parent.parent.name for p in (tmp_path / "cache").rglob("*.npz")})
    assert leaves == ["16000-audioldm_eval.soxr-hq", "16000-audioldm_eval.torchaudio-functional"]


def test_parity_oracles_torchaudio_stand_in_equals_torchaudio():
    """benchmarks/parity/standins/torchaudio (the oracle venv's torchaudio) must resample as torchaudio does,
    so the oracle's audioldm_eval / msclap runs and our inputs agree once a clip needs resampling."""
    import importlib.util

    path = Path(__file__).parents[3] / "benchmarks" / "parity" / "standins" / "torchaudio" / "functional.py"
    spec = importlib.util.spec_from_file_location("parity_standin_torchaudio_functional", path)
    standin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(standin)  # imports only math / typing / torch (never shadows a real torchaudio)
    x = torch.from_numpy(np.random.default_rng(7).standard_normal((1, 20011)).astype(np.float32))
    for orig, new in RATE_PAIRS:
        assert torch.equal(standin.resample(x, orig, new), ta_functional_resample(x, orig, new)), (orig, new)
        kernel, width, o, n = standin.sinc_resample_kernel(orig, new)  # transforms.Resample's kernel (dtype None)
        assert torch.equal(standin._apply(x, kernel, width, o, n), TaResample(orig, new)(x)), (orig, new)
