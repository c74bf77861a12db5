"""LAION-CLAP with fusion (630k-audioset-fusion-best) on a tiny random configuration (no download).

References transcribed here from reading the official code:
- LAION-AI/CLAP `src/laion_clap/training/data.py::get_audio_features` (data_truncating="fusion",
  data_filling="repeatpad") and `get_mel` (torchaudio MelSpectrogram + AmplitudeToDB), as in laion-clap 1.1.4;
- torchaudio `functional.melscale_fbanks` (HTK, norm None), `functional.spectrogram`, `amplitude_to_DB`;
- torchvision 0.16 `transforms/_functional_tensor.py::resize` on a tensor (bilinear, antialias False) and
  PyTorch's bilinear sampling rule (align_corners=False);
- LAION-AI/CLAP `src/laion_clap/clap_module/htsat.py::PatchEmbed.forward` (fusion_type "aff_2d") and
  `feature_fusion.py::AFF.forward`;
- Stability-AI/stable-audio-metrics `src/clap_score.py::clap_score` (pyloudnorm peak -1 dB, int16 round trip).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.metrics.backbones import backbone_class
from bench.metrics.backbones.laion_clap import LaionClapHtsatTiny
from bench.metrics.backbones.laion_clap_fusion import (
    LaionClapFusion,
    LaionClapFusionStableAudio,
    stable_audio_metrics_clap_input,
)
from genau_core.checkpoint_io import CheckpointFormatError, expected_state
from genau_core.networks.laion_clap import tiny_laion_clap_config
from genau_core.networks.laion_clap_fusion import (
    HTSAT_TINY_FUSION,
    FusionMel,
    LaionClapFusionNet,
    fusion_chunk_seed,
    fusion_chunk_starts,
    fusion_config,
    fusion_features,
)
from genau_core.tokenizers import bpe_roberta_tokenizer


@pytest.fixture(scope="module")
def tok():
    return bpe_roberta_tokenizer()


@pytest.fixture(scope="module")
def cfg(tok):
    return fusion_config(tiny_laion_clap_config(len(tok)))  # 1-s "10 s": max_len 48000, 101 frames, 16 mels


def _perturb(net: torch.nn.Module, seed: int) -> None:
    """Informative BatchNorm statistics and affines everywhere (default ones are identities)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.2 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.3 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))


@pytest.fixture(scope="module")
def model(cfg, tok):
    b = LaionClapFusion(config=cfg, tokenizer=tok).init_random(0)
    _perturb(b.model, 1)
    return b


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(3)
    return [
        (rng.standard_normal(17000) * 0.2).astype(np.float32),  # short: repeat-padded
        (np.sin(np.arange(48000) / 11.0) * 0.5).astype(np.float32),  # exactly max_len
        (rng.standard_normal(48300) * 0.3).astype(np.float32),  # 101 frames: the unfused corner
        (rng.standard_normal(150000) * 0.3).astype(np.float32),  # fused: 313 frames, 3 chunks
        (rng.standard_normal(48600) * 0.3).astype(np.float32),  # fused: 102 frames, 2 starts (empty thirds)
    ]


# -- transcriptions of the official code ---------------------------------------------------------
def _ref_mel(x: np.ndarray, c) -> np.ndarray:
    """torchaudio MelSpectrogram(sr, n_fft=win, hop, center, reflect, power 2, norm None, htk) +
    AmplitudeToDB(top_db=None), in float64 numpy: (frames, n_mels)."""
    n_fft, hop = c.window_size, c.hop_size
    xp = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    frames = 1 + (len(xp) - n_fft) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # hann_window(periodic=True)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(xp[idx] * window, axis=1)) ** 2  # (frames, n_fft // 2 + 1)
    all_freqs = np.linspace(0, c.sample_rate // 2, n_fft // 2 + 1)

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    m_pts = np.linspace(hz_to_mel(c.fmin), hz_to_mel(c.fmax), c.n_mels + 2)
    f_pts = 700.0 * (10.0 ** (m_pts / 2595.0) - 1.0)
    f_diff = np.diff(f_pts)
    slopes = f_pts[None, :] - all_freqs[:, None]
    fb = np.maximum(0.0, np.minimum(-slopes[:, :-2] / f_diff[:-1], slopes[:, 2:] / f_diff[1:]))
    return 10.0 * np.log10(np.maximum(power @ fb, 1e-10))


def _ref_resize_time(mel: np.ndarray, out_frames: int) -> np.ndarray:
    """torchvision 0.16 Resize(size=[out_frames, n_mels]) on a (1, T, n_mels) tensor: interpolate(bilinear,
    align_corners=False, antialias=False); the mel axis keeps its size. PyTorch's rule: src = (dst + 0.5) *
    in / out - 0.5, clamped at 0; linear between floor(src) and the next row (the last row repeated)."""
    t = mel.shape[0]
    src = np.maximum((np.arange(out_frames) + 0.5) * (t / out_frames) - 0.5, 0.0)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, t - 1)
    lam = (src - i0)[:, None]
    return (1 - lam) * mel[i0] + lam * mel[i1]


def _ref_get_audio_features(x: np.ndarray, c, seed: int):
    """get_audio_features(..., max_len, data_truncating="fusion", data_filling="repeatpad") after
    np.random.seed(seed): (mel_fusion (4, chunk, n_mels), longer)."""
    max_len = c.clip_samples
    if len(x) > max_len:
        mel = _ref_mel(x, c)
        chunk_frames = max_len // c.hop_size + 1
        total_frames = mel.shape[0]
        if chunk_frames == total_frames:
            return np.stack([mel, mel, mel, mel]), False
        ranges = np.array_split(list(range(total_frames - chunk_frames + 1)), 3)
        if len(ranges[1]) == 0:
            ranges[1] = [0]
        if len(ranges[2]) == 0:
            ranges[2] = [0]
        np.random.seed(seed)
        idx_front = np.random.choice(ranges[0])
        idx_middle = np.random.choice(ranges[1])
        idx_back = np.random.choice(ranges[2])
        chunks = [mel[i : i + chunk_frames] for i in (idx_front, idx_middle, idx_back)]
        return np.stack([_ref_resize_time(mel, chunk_frames), *chunks]), True
    n_repeat = int(max_len / len(x))
    x = np.tile(x, n_repeat)
    x = np.concatenate([x, np.zeros(max_len - len(x), x.dtype)])
    mel = _ref_mel(x, c)
    return np.stack([mel, mel, mel, mel]), False


def _bn(x, bn):
    shape = (1, -1, 1, 1)
    return (x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps) * bn.weight.view(
        shape
    ) + bn.bias.view(shape)


def _ref_aff(aff, x, residual):
    """feature_fusion.py AFF.forward (type '2D'), eval-mode BatchNorm written out."""
    la, ga = aff.local_att, aff.global_att

    def local(t):
        t = F.relu(_bn(F.conv2d(t, la[0].weight, la[0].bias), la[1]))
        return _bn(F.conv2d(t, la[3].weight, la[3].bias), la[4])

    def glob(t):
        t = t.mean(dim=(2, 3), keepdim=True)
        t = F.relu(_bn(F.conv2d(t, ga[1].weight, ga[1].bias), ga[2]))
        return _bn(F.conv2d(t, ga[4].weight, ga[4].bias), ga[5])

    xa = x + residual
    wei = torch.sigmoid(local(xa) + glob(xa))
    return 2 * x * wei + 2 * residual * (1 - wei)


def _ref_patch_embed(pe, x, longer_idx):
    """htsat.py PatchEmbed.forward, fusion_type 'aff_2d' (patch 4, stride 4: no padding)."""
    global_x = F.conv2d(x[:, 0:1, :, :], pe.proj.weight, pe.proj.bias, stride=4)
    tw = global_x.size(-1)
    if len(longer_idx) > 0:
        local_x = x[longer_idx, 1:, :, :].contiguous()
        b, c, h, w = local_x.shape
        local_x = local_x.view(b * c, 1, h, w)
        local_x = F.conv2d(local_x, pe.mel_conv2d.weight, pe.mel_conv2d.bias, stride=(4, 12))
        local_x = local_x.view(b, c, local_x.size(1), local_x.size(2), local_x.size(3))
        local_x = local_x.permute((0, 2, 3, 1, 4)).contiguous().flatten(3)
        tb, tc, th, _ = local_x.size()
        if local_x.size(-1) < tw:
            local_x = torch.cat([local_x, torch.zeros((tb, tc, th, tw - local_x.size(-1)))], dim=-1)
        else:
            local_x = local_x[:, :, :, :tw]
        global_x[longer_idx] = _ref_aff(pe.fusion_model, global_x[longer_idx], local_x)
    return F.layer_norm(
        global_x.flatten(2).transpose(1, 2), (pe.norm.weight.shape[0],), pe.norm.weight, pe.norm.bias, pe.norm.eps
    )


# -- tests -------------------------------------------------------------------------------------------
def test_fusion_mel_matches_torchaudio_transcription(cfg):
    x = (np.random.default_rng(1).standard_normal(30000) * 0.3).astype(np.float32)
    with torch.inference_mode():
        ours = FusionMel(cfg)(torch.from_numpy(x)).numpy()
    ref = _ref_mel(x, cfg)
    assert ours.shape == ref.shape == (1 + 30000 // 480, cfg.n_mels)
    np.testing.assert_allclose(ours, ref, atol=2e-3)  # float32 vs float64, in dB
    # the full-size front end (48 kHz, 1024 / 480, 64 mels, 50-14000 Hz)
    x = (np.random.default_rng(2).standard_normal(48000) * 0.3).astype(np.float32)
    with torch.inference_mode():
        ours = FusionMel(HTSAT_TINY_FUSION)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, _ref_mel(x, HTSAT_TINY_FUSION), atol=2e-3)


@pytest.mark.parametrize("n", [17000, 48000, 48300, 48479, 48480, 48600, 49000, 150000])
def test_fusion_features_match_get_audio_features(cfg, n):
    x = (np.random.default_rng(n).standard_normal(n) * 0.3).astype(np.float32)
    with torch.inference_mode():
        ours = fusion_features(x, cfg, FusionMel(cfg))
    seed = fusion_chunk_seed(x)
    ref_mel, ref_longer = _ref_get_audio_features(x, cfg, seed)
    assert ours.longer == ref_longer == (1 + n // 480 > 101)
    assert ours.mel_fusion.shape == (4, 101, cfg.n_mels)
    np.testing.assert_allclose(ours.mel_fusion.numpy(), ref_mel, atol=3e-3)
    if ours.longer:
        assert ours.seed == seed
        np.random.seed(seed)  # seeding the global generator reproduces our draw: what the parity run does
        total = 1 + n // 480
        ranges = np.array_split(list(range(total - 101 + 1)), 3)
        expect = [int(np.random.choice(r if len(r) else [0])) for r in ranges]
        assert list(ours.starts) == expect


def test_chunk_draw_is_seeded_by_content_not_by_call_order(cfg):
    rng = np.random.default_rng(5)
    a, b = [(rng.standard_normal(150000) * 0.3).astype(np.float32) for _ in range(2)]
    mel = FusionMel(cfg)
    with torch.inference_mode():
        first = fusion_features(a, cfg, mel)
        np.random.seed(0)
        fusion_features(b, cfg, mel)
        again = fusion_features(a, cfg, mel)
    assert first.starts == again.starts and torch.equal(first.mel_fusion, again.mel_fusion)
    assert fusion_chunk_seed(a) != fusion_chunk_seed(b)
    starts = {fusion_chunk_starts(313, 101, np.random.RandomState(s)) for s in range(20)}
    assert len(starts) > 10  # the seed matters: chunks are drawn, not fixed


def test_fusion_patch_embed_matches_laion_aff_2d(model):
    pe = model.model.clap.audio_model.audio_encoder.patch_embed
    x = torch.randn(3, 4, 64, 64, generator=torch.Generator().manual_seed(7))
    for longer_idx in (torch.tensor([0, 2]), torch.tensor([1]), torch.tensor([], dtype=torch.long)):
        with torch.inference_mode():
            ours = pe(x.clone(), longer_idx)
            ref = _ref_patch_embed(pe, x.clone(), longer_idx)
        torch.testing.assert_close(ours, ref, atol=2e-5, rtol=1e-5)
    with torch.inference_mode():  # the fused rows really differ from the unfused computation
        fused = pe(x.clone(), torch.tensor([0, 1, 2]))
        plain = pe(x.clone(), torch.tensor([], dtype=torch.long))
    assert float((fused - plain).abs().max()) > 0.1


def test_embeddings_shapes_and_long_clips(model, cfg, tok, clips):
    out = model.embed(clips)
    assert [i.longer for i in model.last_inputs] == [False, False, False, True, True]
    for o in out:
        assert o["embedding"].shape == (512,) and o["embedding"].dtype == np.float32
        assert abs(np.linalg.norm(o["embedding"]) - 1.0) < 1e-5
    # order and batch independence: tests/bench/metrics/backbones/test_backbone_contract.py, for every backbone
    # a long clip is not its first 10 s: the fusion features change the embedding
    first = model.embed([clips[3][: cfg.clip_samples]])[0]["embedding"]
    assert float(np.abs(first - out[3]["embedding"]).max()) > 1e-3
    text = model.embed_text(["a dog barks", "rain falls"])
    assert text.shape == (2, 512)


def test_network_input_is_the_transcribed_pipeline(model, cfg, clips):
    """embed == the fusion network on the transcribed get_audio_features output (int16 round trip first)."""
    x = clips[3]
    q = (np.clip(x, -1, 1) * 32767.0).astype(np.int16)  # laion_clap float32_to_int16 / int16_to_float32
    wave = (q / 32767.0).astype(np.float32)
    ref_mel, longer = _ref_get_audio_features(wave, cfg, fusion_chunk_seed(wave))
    with torch.inference_mode():
        ref = model.model.embed_fusion(torch.from_numpy(ref_mel.astype(np.float32))[None], torch.tensor([longer]))
    np.testing.assert_allclose(model.embed([x])[0]["embedding"], ref[0].numpy(), atol=2e-4)


def test_stable_audio_metrics_input_matches_clap_score(tok, cfg):
    rng = np.random.default_rng(9)
    audio = (rng.standard_normal(60000) * 0.2).astype(np.float32)
    # clap_score.py: pyln.normalize.peak(audio, -1.0) (numpy 1.23.5: float64 gain * float32 array -> float32),
    # then its int16_to_float32(float32_to_int16(audio))
    gain = np.power(10.0, -1.0 / 20.0) / np.max(np.abs(audio))
    peaked = (np.float32(gain) * audio).astype(np.float32)
    ref = (np.clip(peaked, -1.0, 1.0) * 32767.0).astype(np.int16)
    ref = (ref / 32767.0).astype(np.float32)
    ours = stable_audio_metrics_clap_input(audio)
    np.testing.assert_array_equal(ours, ref)
    b = LaionClapFusionStableAudio(config=cfg, tokenizer=tok)
    np.testing.assert_array_equal(b.fit_clip(b.prepare(audio)), ref)  # one round trip, not two
    assert b.input_path.channels == "mean" and b.input_path.resampler == "librosa-soxr-hq"
    with pytest.raises(ValueError, match="silent clip"):
        b.prepare(np.zeros(1000, np.float32))


def test_official_layout_round_trip_and_strict_load(model, cfg, tok, clips, tmp_path):
    path = model.save_official(tmp_path / "630k-audioset-fusion-best.pt")
    saved = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    fusion_keys = {
        k[len("module.audio_branch.patch_embed.") :]
        for k in saved
        if ".patch_embed.mel_conv2d." in k or ".patch_embed.fusion_model." in k
    }
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    expect = {"mel_conv2d.weight", "mel_conv2d.bias"}  # htsat.py PatchEmbed + feature_fusion.py AFF(type='2D')
    for branch, convs, bns in (("local_att", (0, 3), (1, 4)), ("global_att", (1, 4), (2, 5))):
        expect |= {f"fusion_model.{branch}.{i}.{w}" for i in convs for w in ("weight", "bias")}
        expect |= {f"fusion_model.{branch}.{i}.{w}" for i in bns for w in bn}
    assert fusion_keys == expect
    keys = list(saved)
    assert keys.index("module.audio_branch.patch_embed.norm.bias") + 1 == keys.index(
        "module.audio_branch.patch_embed.mel_conv2d.weight"
    )
    loaded = LaionClapFusion(config=cfg, tokenizer=tok).load(path)
    assert loaded.identity.weights == "official"
    for a, b in zip(model.embed(clips), loaded.embed(clips)):
        np.testing.assert_array_equal(a["embedding"], b["embedding"])
    # a non-fusion file is refused by the fusion backbone, a fusion file by the non-fusion one
    plain = {k: v for k, v in saved.items() if ".mel_conv2d." not in k and ".fusion_model." not in k}
    torch.save({"state_dict": plain}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointFormatError, match=r"fusion.*missing weights"):
        LaionClapFusion(config=cfg, tokenizer=tok).load(tmp_path / "plain.pt")
    with pytest.raises(CheckpointFormatError, match="unknown keys"):
        LaionClapHtsatTiny(config=tiny_laion_clap_config(len(tok)), tokenizer=tok).load(path)


def test_full_size_architecture_and_registry():
    shapes = expected_state(lambda: LaionClapFusionNet(HTSAT_TINY_FUSION))
    pe = "clap.audio_model.audio_encoder.patch_embed."
    assert tuple(shapes[pe + "mel_conv2d.weight"]) == (96, 1, 4, 12)
    assert tuple(shapes[pe + "fusion_model.local_att.0.weight"]) == (24, 96, 1, 1)
    assert tuple(shapes[pe + "fusion_model.global_att.5.running_var"]) == (96,)
    assert HTSAT_TINY_FUSION.chunk_frames == 1001 and not HTSAT_TINY_FUSION.resize_antialias
    assert backbone_class("laion-clap-htsat-tiny-fusion-stable-audio") is LaionClapFusionStableAudio
    assert LaionClapFusion.checkpoint_filename == "630k-audioset-fusion-best.pt"


def test_bad_input_is_one_clear_error(model):
    with pytest.raises(ValueError, match="clip 1 is empty"):
        model.embed([np.zeros(100, np.float32), np.zeros(0, np.float32)])
    with pytest.raises(ValueError, match="clip 0 has shape"):
        model.embed([np.zeros((2, 100), np.float32)])
