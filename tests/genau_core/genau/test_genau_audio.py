"""Mel front end (16 kHz, 64 bins, hop 160) and the HiFi-GAN vocoder."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from genau_core.audio import (
    TINY_HIFIGAN,
    HiFiGANConfig,
    HiFiGANGenerator,
    MelConfig,
    MelSpectrogram,
    fit_frames,
    load_hifigan,
    prepare_waveform,
)
from genau_core.audio.hifigan import official_to_ours


def _numpy_reference_logmel(x: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """Independent numpy version of the official recipe (reflect pad, periodic Hann, |rfft|, Slaney mel, log clamp)."""
    import librosa

    pad = (cfg.n_fft - cfg.hop_length) // 2
    y = np.pad(x, (pad, pad), mode="reflect")
    win = np.hanning(cfg.win_length + 1)[:-1]  # periodic
    n_frames = 1 + (len(y) - cfg.n_fft) // cfg.hop_length
    frames = np.stack([y[i * cfg.hop_length : i * cfg.hop_length + cfg.n_fft] * win for i in range(n_frames)], axis=1)
    mag = np.abs(np.fft.rfft(frames, axis=0))
    fb = librosa.filters.mel(
        sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, norm="slaney", htk=False
    )
    return np.log(np.maximum(fb @ mag, cfg.clip_value))


def test_mel_10_24_s_gives_1024_frames_and_matches_reference():
    cfg = MelConfig()
    assert cfg.target_frames == 1024 and cfg.clip_samples == 163840
    rng = np.random.default_rng(0)
    t = np.arange(cfg.clip_samples) / cfg.sample_rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    mel = MelSpectrogram(cfg)(torch.from_numpy(x)[None])
    assert mel.shape == (1, 64, 1024)
    ref = _numpy_reference_logmel(x.astype(np.float64), cfg)
    np.testing.assert_allclose(mel[0].numpy(), ref, atol=2e-3, rtol=1e-3)
    # the 440 Hz tone dominates the bin holding 440 Hz
    import librosa

    centers = librosa.mel_frequencies(n_mels=cfg.n_mels + 2, fmin=cfg.fmin, fmax=cfg.fmax)[1:-1]
    assert abs(centers[int(mel[0].mean(1).argmax())] - 440) < 80


def test_silence_hits_the_log_floor_and_fit_frames_pads_or_cuts():
    cfg = MelConfig()
    mel = MelSpectrogram(cfg)(torch.zeros(2, 16000))
    assert torch.allclose(mel, torch.full_like(mel, np.log(1e-5)))
    assert fit_frames(mel, 120).shape[-1] == 120 and fit_frames(mel, 50).shape[-1] == 50
    assert torch.equal(fit_frames(mel, 120)[..., mel.shape[-1] :], torch.zeros(2, 64, 120 - mel.shape[-1]))


def test_prepare_waveform_resamples_normalises_and_pads():
    sr = 44100
    x = np.sin(2 * np.pi * 100 * np.arange(sr * 3) / sr).astype(np.float32) * 0.9 + 0.2
    y = prepare_waveform(x, sr)
    assert y.shape == (163840,) and y.dtype == np.float32
    assert np.abs(y).max() == pytest.approx(0.5, abs=1e-3)
    assert abs(y[: 16000 * 3 - 100].mean()) < 1e-2  # mean removed
    assert np.all(y[16000 * 3 + 10 :] == 0)  # zero padded to 10.24 s


def test_hifigan_shapes_and_config_validation():
    g = HiFiGANGenerator(TINY_HIFIGAN).eval()
    with torch.no_grad():
        w = g(torch.randn(2, 64, 100))
    assert w.shape == (2, 1, 100 * TINY_HIFIGAN.hop_factor + 32)
    assert TINY_HIFIGAN.hop_factor == 160
    assert float(w.abs().max()) <= 1.0
    with pytest.raises(ValueError):
        HiFiGANConfig(upsample_rates=(4, 4), upsample_kernel_sizes=(8,))
    full = HiFiGANConfig()
    assert full.hop_factor == 160 and full.num_mels == 64


def _official_layout_from_ours(model: HiFiGANGenerator) -> dict:
    """Our weights re-saved under the official names with weight norm (g = ||v||, v = w)."""
    cfg = model.cfg
    k = len(cfg.resblock_kernel_sizes)
    out = {}
    for name, t in model.state_dict().items():
        p = name.split(".")
        if p[0] == "upsamplers":
            off = ".".join(["ups", *p[1:]])
        elif p[0] == "stacks":
            off = ".".join(
                ["resblocks", str(int(p[1]) * k + int(p[2])), {"dilated": "convs1", "plain": "convs2"}[p[3]], *p[4:]]
            )
        else:
            off = name
        if off.endswith(".weight"):
            stem = off[: -len(".weight")]
            norm = t.flatten(1).norm(dim=1).reshape(-1, *([1] * (t.dim() - 1)))
            out[stem + ".weight_g"] = norm.clone()
            out[stem + ".weight_v"] = t.clone()
        else:
            out[off] = t.clone()
    return out


def test_load_official_hifigan_checkpoint_and_json(tmp_path):
    torch.manual_seed(0)
    ours = HiFiGANGenerator(TINY_HIFIGAN).eval()
    ckpt = tmp_path / "hifigan_16k_64bins.ckpt"
    torch.save({"generator": _official_layout_from_ours(ours), "steps": 10}, ckpt)
    js = tmp_path / "hifigan_16k_64bins.json"
    js.write_text(
        json.dumps(
            {"resblock": "1", "num_gpus": 6, "batch_size": 16, "learning_rate": 0.0002, **TINY_HIFIGAN.to_dict()}
        )
    )
    loaded = load_hifigan(ckpt, js)
    assert loaded.cfg == TINY_HIFIGAN
    mel = torch.randn(1, 64, 40)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mel), ours(mel), atol=1e-5, rtol=1e-5)
    js.write_text(json.dumps({"resblock": "2", **TINY_HIFIGAN.to_dict()}))
    with pytest.raises(ValueError, match="resblock"):
        load_hifigan(ckpt, js)


def test_official_resblock_names_are_spread_over_stages():
    cfg = HiFiGANConfig()  # 5 stages x 3 kernels: official resblocks.0..14
    sd = {"resblocks.7.convs2.2.weight": torch.zeros(1), "resblocks.7.convs2.2.bias": torch.zeros(1)}
    out = official_to_ours(sd, cfg)
    assert set(out) == {"stacks.2.1.plain.2.weight", "stacks.2.1.plain.2.bias"}
    with pytest.raises(KeyError):
        official_to_ours({"mystery.weight": torch.zeros(1)}, cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = HiFiGANGenerator(cfg)
    assert len(full.stacks) == 5 and all(len(s) == 3 for s in full.stacks)


# --- Griffin-Lim (the vocoder of the shipped genau-tiny weights) -------------------------------


def _spectral_peak_and_flatness(x: np.ndarray, sr: int = 16000) -> tuple[float, float]:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    flatness = float(np.exp(np.mean(np.log(spec + 1e-12))) / spec.mean())
    return float(freqs[spec.argmax()]), flatness


def test_griffin_lim_inverts_the_log_mel():
    from genau_core.audio.griffinlim import GriffinLimConfig, GriffinLimVocoder

    cfg = MelConfig(duration_s=2.0)
    t = np.arange(cfg.clip_samples) / cfg.sample_rate
    clips = np.stack(
        [
            0.3 * np.sin(2 * np.pi * 440 * t),
            0.2 * np.sin(2 * np.pi * 2000 * t),
            0.2 * np.random.default_rng(0).standard_normal(len(t)),
        ]
    ).astype(np.float32)
    mel_fn = MelSpectrogram(cfg)
    mel = mel_fn(torch.from_numpy(clips))
    voc = GriffinLimVocoder(cfg, GriffinLimConfig(n_iter=16))
    assert sum(p.numel() for p in voc.parameters()) == 0
    wav = voc(mel)
    assert wav.shape == (3, 1, cfg.clip_samples) and torch.isfinite(wav).all()
    (p440, f440), (p2k, f2k), (_, fnoise) = (_spectral_peak_and_flatness(w[0].numpy()) for w in wav)
    assert abs(p440 - 440) < 30 and abs(p2k - 2000) < 30  # within one mel bin (~45 Hz wide below 1 kHz)
    assert f440 < 0.01 and f2k < 0.01 and fnoise > 0.5  # tones stay tonal, noise stays noise
    # the inversion's own mel is close to the input where there is energy
    loud = mel > -6
    assert (mel_fn(wav[:, 0]) - mel).abs()[loud].mean() < 0.5
    # a clip's output does not depend on the batch it is in
    torch.testing.assert_close(voc(mel[1:2]), wav[1:2])
