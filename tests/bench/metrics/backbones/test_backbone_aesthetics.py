"""audiobox-aesthetics backbone on a tiny random WavLM (no download).

References transcribed here from reading facebookresearch/audiobox-aesthetics 0.0.4:
- `src/audiobox_aesthetics/model/wavlm.py`: `WavLM.extract_features` (+ `forward_padding_mask`),
  `ConvFeatureExtractionModel.forward` (mode "default"), `TransformerEncoder.extract_features`,
  `TransformerSentenceEncoderLayer.forward` (post-norm), `MultiheadAttention.forward` (its
  `F.multi_head_attention_forward` path with the gated relative position bias, `compute_bias`,
  `_relative_positions_bucket`);
- `src/audiobox_aesthetics/model/aes.py::AesMultiOutput.forward` and `model/utils.py::create_mlp_block`;
- `src/audiobox_aesthetics/infer.py::make_inference_batch` and `AesPredictor.forward` (weighted window mean,
  `Normalize.inverse`).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.metrics.backbones import backbone_class
from bench.metrics.backbones.aesthetics import (
    AESTHETICS_INPUT,
    AestheticsBackbone,
    tiny_aesthetics_config,
)
from genau_core.checkpoint_io import CheckpointFormatError, expected_state
from genau_core.networks.aesthetics import (
    AXES,
    AestheticsConfig,
    AestheticsNet,
    aesthetics_state_from_official,
    aesthetics_windows,
)

TT = {
    "CE": {"mean": 5.5, "std": 1.5},
    "CU": {"mean": 6.0, "std": 1.2},
    "PC": {"mean": 3.0, "std": 2.0},
    "PQ": {"mean": 7.0, "std": 1.1},
}


def _perturb(net: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "norm" in name or "conv_layers.0.2" in name:
                p.add_(0.2 * torch.randn(p.shape, generator=g))
            elif name.startswith("layer_weights.") or name.endswith("grep_a"):
                p.copy_(torch.randn(p.shape, generator=g))
            elif "relative_attention_bias" in name:
                p.mul_(20.0)
        for axis in AXES:
            net.proj_layer[axis][-1].weight.mul_(10.0)


@pytest.fixture(scope="module")
def cfg():
    return tiny_aesthetics_config(target_transform=TT)


@pytest.fixture(scope="module")
def model(cfg):
    b = AestheticsBackbone(config=cfg, batch_size=3).init_random(0)
    _perturb(b.model, 1)
    return b


# -- transcription of the official forward -----------------------------------------------------------
def _ref_buckets(q_len, k_len, num_buckets, max_distance):
    """MultiheadAttention._relative_positions_bucket(memory - context, bidirectional=True)."""
    rel = torch.arange(k_len)[None, :] - torch.arange(q_len)[:, None]
    num_buckets = num_buckets // 2
    buckets = (rel > 0).to(torch.long) * num_buckets
    rel = torch.abs(rel)
    max_exact = num_buckets // 2
    is_small = rel < max_exact
    large = max_exact + (
        torch.log(rel.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    ).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, rel, large)


def _ref_forward(net: AestheticsNet, wav: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """AesMultiOutput.forward({"wav": wav[:, None], "mask": mask[:, None]}) in eval mode, transcribed."""
    w = net.wavlm_model
    cfg = w.config
    padding_mask = ~mask
    # ConvFeatureExtractionModel: conv -> (GroupNorm in fp32 on the first) -> GELU
    x = wav.unsqueeze(1)
    for i, block in enumerate(w.feature_extractor.conv_layers):
        conv = block[0]
        x = F.conv1d(x, conv.weight, stride=conv.stride)
        if i == 0:
            gn = block[2]
            x = F.group_norm(x.float(), gn.num_groups, gn.weight, gn.bias, gn.eps)
        x = F.gelu(x)
    features = F.layer_norm(x.transpose(1, 2), (cfg.conv_dim,), w.layer_norm.weight, w.layer_norm.bias)
    extra = padding_mask.size(1) % features.size(1)  # forward_padding_mask
    if extra > 0:
        padding_mask = padding_mask[:, :-extra]
    padding_mask = padding_mask.view(padding_mask.size(0), features.size(1), -1).all(-1)
    x = F.linear(features, w.post_extract_proj.weight, w.post_extract_proj.bias)
    enc = w.encoder
    x = x.clone()
    x[padding_mask] = 0
    pc = enc.pos_conv._modules["0"]
    v, g = pc.weight_v, pc.weight_g  # torch.nn.utils.weight_norm(dim=2): w = g * v / ||v|| over dims (0, 1)
    weight = g * v / v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()
    x_conv = F.conv1d(x.transpose(1, 2), weight, pc.bias, padding=cfg.conv_pos // 2, groups=cfg.conv_pos_groups)
    x_conv = F.gelu(x_conv[:, :, :-1] if cfg.conv_pos % 2 == 0 else x_conv).transpose(1, 2)  # SamePad, GELU
    x = F.layer_norm(x + x_conv, (cfg.embed_dim,), enc.layer_norm.weight, enc.layer_norm.bias)
    x = x.transpose(0, 1)  # T x B x C
    layer_results = [x]
    t, bsz, c = x.shape
    h = cfg.heads
    pos_bias = None
    for i, layer in enumerate(enc.layers):
        att = layer.self_attn
        if i == 0:  # compute_bias in the layer with has_relative_attention_bias
            values = att.relative_attention_bias(_ref_buckets(t, t, cfg.num_buckets, cfg.max_distance))
            pos_bias = values.permute([2, 0, 1]).unsqueeze(0).repeat(bsz, 1, 1, 1).view(bsz * h, t, t)
        query_layer = x.transpose(0, 1).reshape(bsz, t, h, -1).permute(0, 2, 1, 3)
        gate_a, gate_b = torch.sigmoid(att.grep_linear(query_layer).view(bsz, h, t, 2, 4).sum(-1)).chunk(2, dim=-1)
        gate_a_1 = gate_a * (gate_b * att.grep_a - 1.0) + 2.0
        rel = (gate_a_1.view(bsz * h, -1, 1) * pos_bias).view((-1, t, t))
        y, _ = F.multi_head_attention_forward(
            x,
            x,
            x,
            c,
            h,
            torch.empty([0]),
            torch.cat((att.q_proj.bias, att.k_proj.bias, att.v_proj.bias)),
            None,
            None,
            False,
            0.0,
            att.out_proj.weight,
            att.out_proj.bias,
            False,
            padding_mask,
            False,
            rel,
            use_separate_proj_weight=True,
            q_proj_weight=att.q_proj.weight,
            k_proj_weight=att.k_proj.weight,
            v_proj_weight=att.v_proj.weight,
        )
        x = layer.self_attn_layer_norm(x + y)
        x = layer.final_layer_norm(x + layer.fc2(F.gelu(layer.fc1(x).float()).type_as(x)))
        layer_results.append(x)
    all_outputs = torch.stack(layer_results, dim=-1)  # T B C L
    preds = {}
    for name in AXES:
        norm_weights = F.softmax(net.layer_weights[name], dim=-1)
        audio_embed = torch.einsum("tbcl,l->btc", all_outputs, norm_weights)
        embed_mask = (~padding_mask).unsqueeze(dim=-1).type_as(audio_embed)
        audio_embed = (audio_embed * embed_mask).sum(dim=1) / embed_mask.sum(dim=1).clamp(min=1)
        audio_embed = F.normalize(audio_embed, dim=-1)
        preds[name] = net.proj_layer[name](audio_embed).squeeze(-1)
    return preds


def _ref_make_inference_batch(input_wavs, hop_size=10, window_size=10, sample_rate=16000):
    """infer.py make_inference_batch (pad_zero=True), on (1, N) tensors."""
    wavs, masks, weights, bids = [], [], [], []
    offset, winlen = hop_size * sample_rate, window_size * sample_rate
    for bid, wav in enumerate(input_wavs):
        for ii in range(0, wav.shape[-1], offset):
            wav_ii = wav[..., ii : ii + winlen]
            wav_ii_len = wav_ii.shape[-1]
            if wav_ii_len < winlen:
                wav_ii = F.pad(wav_ii, (0, winlen - wav_ii_len))
            mask_ii = torch.zeros_like(wav_ii, dtype=torch.bool)
            mask_ii[:, 0:wav_ii_len] = True
            wavs.append(wav_ii)
            masks.append(mask_ii)
            weights.append(wav_ii_len / winlen)
            bids.append(bid)
    return wavs, masks, weights, bids


# -- tests -------------------------------------------------------------------------------------------
def test_network_matches_the_transcribed_reference_forward(model):
    rng = np.random.default_rng(0)
    wav = torch.from_numpy((rng.standard_normal((3, 6400)) * 0.3).astype(np.float32))
    mask = torch.ones(3, 6400, dtype=torch.bool)
    mask[1, 3000:] = False  # a padded window: masked attention keys and pooling
    mask[2, 700:] = False
    wav[~mask] = 0.0
    with torch.inference_mode():
        ours = model.model(wav, mask)
        ref = _ref_forward(model.model, wav, mask)
    for a in AXES:
        assert ours[a].shape == (3,)
        torch.testing.assert_close(ours[a], ref[a], atol=1e-5, rtol=1e-5)
    spread = torch.stack([ours[a] for a in AXES])
    assert float(spread.std()) > 0.05  # informative weights: a wrong mask or bias would show


def test_frame_padding_mask_and_windows():
    from genau_core.networks.aesthetics import WavLM

    pad = torch.zeros(1, 160000, dtype=torch.bool)
    pad[0, 71234:] = True
    frames = WavLM.frame_padding(pad, 499)
    assert frames.shape == (1, 499) and int((~frames).sum()) == 71234 // 320 + 1  # a frame with a real sample is kept
    assert aesthetics_windows(8000) == [(0, 8000)]
    assert aesthetics_windows(160000) == [(0, 160000)]
    assert aesthetics_windows(404800) == [(0, 160000), (160000, 160000), (320000, 84800)]
    _, masks, weights, _ = _ref_make_inference_batch([torch.zeros(1, 404800)])
    assert [round(w * 160000) for w in weights] == [n for _, n in aesthetics_windows(404800)]
    assert [int(m.sum()) for m in masks] == [160000, 160000, 84800]
    with pytest.raises(ValueError, match="empty"):
        aesthetics_windows(0)


def test_clip_scores_match_the_transcribed_predictor(model):
    rng = np.random.default_rng(4)
    clips = [(rng.standard_normal(n) * 0.2).astype(np.float32) for n in (9000, 170000)]
    out = model.embed(clips)
    # AesPredictor.forward after audio_resample_mono (already 16 kHz mono here)
    wavs, masks, weights, bids = _ref_make_inference_batch([torch.from_numpy(c)[None] for c in clips])
    with torch.inference_mode():
        preds_all = _ref_forward(model.model, torch.stack(wavs).squeeze(1), torch.stack(masks).squeeze(1))
    weights, bids = torch.tensor(weights), torch.tensor(bids)
    for axis in AXES:
        preds = preds_all[axis] * TT[axis]["std"] + TT[axis]["mean"]  # Normalize.inverse
        for b in range(len(clips)):
            w = weights[bids == b]
            ref = ((preds[bids == b] * w).sum() / w.sum()).item()
            assert out[b][axis].shape == () and out[b][axis].dtype == np.float32
            assert abs(float(out[b][axis]) - ref) < 1e-4
    assert abs(float(out[0]["PQ"]) - float(out[1]["PQ"])) > 1e-3


def test_deterministic_and_batch_independent(model, cfg):
    rng = np.random.default_rng(5)
    clips = [(rng.standard_normal(n) * 0.2).astype(np.float32) for n in (4000, 165000)]
    a = model.embed(clips)
    solo = AestheticsBackbone(config=cfg, batch_size=1)
    solo.model, solo.identity = model.model, model.identity
    b = [solo.embed([c])[0] for c in clips[::-1]][::-1]
    for x, y in zip(a, b):
        for axis in AXES:
            assert abs(float(x[axis]) - float(y[axis])) < 1e-5


def test_official_key_names_and_full_size(cfg):
    """AesMultiOutput's state-dict keys as its modules name them (aes.py, wavlm.py), for the released config."""
    shapes = expected_state(lambda: AestheticsNet(AestheticsConfig()))
    expect = {
        "wavlm_model.mask_emb": (768,),
        "wavlm_model.post_extract_proj.weight": (768, 512),
        "wavlm_model.post_extract_proj.bias": (768,),
        "wavlm_model.layer_norm.weight": (512,),
        "wavlm_model.layer_norm.bias": (512,),
        "wavlm_model.encoder.layer_norm.weight": (768,),
        "wavlm_model.encoder.layer_norm.bias": (768,),
        "wavlm_model.encoder.pos_conv.0.bias": (768,),
        "wavlm_model.encoder.pos_conv.0.weight_g": (1, 1, 128),
        "wavlm_model.encoder.pos_conv.0.weight_v": (768, 48, 128),
        "wavlm_model.feature_extractor.conv_layers.0.0.weight": (512, 1, 10),
        "wavlm_model.feature_extractor.conv_layers.0.2.weight": (512,),
        "wavlm_model.feature_extractor.conv_layers.0.2.bias": (512,),
        "wavlm_model.encoder.layers.0.self_attn.relative_attention_bias.weight": (320, 12),
    }
    for i, k in enumerate((3, 3, 3, 3, 2, 2), start=1):
        expect[f"wavlm_model.feature_extractor.conv_layers.{i}.0.weight"] = (512, 512, k)
    for i in range(12):
        p = f"wavlm_model.encoder.layers.{i}."
        for lin, shape in (
            ("k_proj", (768, 768)),
            ("v_proj", (768, 768)),
            ("q_proj", (768, 768)),
            ("out_proj", (768, 768)),
            ("grep_linear", (8, 64)),
        ):
            expect[p + f"self_attn.{lin}.weight"] = shape
            expect[p + f"self_attn.{lin}.bias"] = shape[:1]
        expect[p + "self_attn.grep_a"] = (1, 12, 1, 1)
        for ln in ("self_attn_layer_norm", "final_layer_norm"):
            expect[p + f"{ln}.weight"] = expect[p + f"{ln}.bias"] = (768,)
        expect[p + "fc1.weight"], expect[p + "fc1.bias"] = (3072, 768), (3072,)
        expect[p + "fc2.weight"], expect[p + "fc2.bias"] = (768, 3072), (768,)
    for axis in AXES:
        expect[f"proj_layer.{axis}.0.weight"], expect[f"proj_layer.{axis}.0.bias"] = (1, 768), (1,)
        expect[f"layer_weights.{axis}"] = (13,)
    assert {k: tuple(v) for k, v in shapes.items()} == expect
    assert sum(math.prod(s) for s in expect.values()) == 94_385_064
    # create_mlp_block(768, 1, 2, "gelu", layer_norm=True, dropout=0.1): Linear, LayerNorm, GELU, Dropout, Linear
    deep = expected_state(
        lambda: AestheticsNet(tiny_aesthetics_config(proj_num_layer=2, proj_ln=True, proj_dropout=0.1))
    )
    assert {k for k in deep if k.startswith("proj_layer.PQ.")} == {
        "proj_layer.PQ.0.weight",
        "proj_layer.PQ.0.bias",
        "proj_layer.PQ.1.weight",
        "proj_layer.PQ.1.bias",
        "proj_layer.PQ.4.weight",
        "proj_layer.PQ.4.bias",
    }


def test_checkpoint_round_trip_and_strict_load(model, cfg, tmp_path):
    path = model.save_official(tmp_path / "checkpoint.pt")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    assert set(obj) == {"state_dict", "model_cfg", "target_transform"}
    assert all(k.startswith("model.") for k in obj["state_dict"]) and obj["target_transform"] == TT
    assert obj["model_cfg"]["nth_layer"] == 3 and obj["model_cfg"]["precision"] == "32"
    assert set(aesthetics_state_from_official(obj["state_dict"])) == set(model.model.state_dict())
    loaded = AestheticsBackbone(config=cfg).load(path)
    assert loaded.identity.weights == "official" and loaded.config.target_transform == TT
    clip = (np.random.default_rng(6).standard_normal(5000) * 0.2).astype(np.float32)
    a, b = model.embed([clip])[0], loaded.embed([clip])[0]
    assert all(float(a[k]) == float(b[k]) for k in AXES)
    # missing a tensor, wrong container, unsupported configuration: one error naming the file
    bad = dict(obj, state_dict={k: v for k, v in obj["state_dict"].items() if "grep_a" not in k})
    torch.save(bad, tmp_path / "missing.pt")
    with pytest.raises(CheckpointFormatError, match=r"missing\.pt.*missing keys"):
        AestheticsBackbone(config=cfg).load(tmp_path / "missing.pt")
    torch.save(obj["state_dict"], tmp_path / "bare.pt")
    with pytest.raises(CheckpointFormatError, match=r"bare\.pt.*'model_cfg'"):
        AestheticsBackbone(config=cfg).load(tmp_path / "bare.pt")
    torch.save(dict(obj, model_cfg=dict(obj["model_cfg"], use_weighted_layer_sum=False)), tmp_path / "cfg.pt")
    with pytest.raises(CheckpointFormatError, match="use_weighted_layer_sum"):
        AestheticsBackbone(config=cfg).load(tmp_path / "cfg.pt")


def test_hf_safetensors_layout_loads(model, cfg, tmp_path):
    import json

    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in model.model.state_dict().items()}
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(dict(cfg.model_cfg(), target_transform=TT, freeze_encoder=True)))
    loaded = AestheticsBackbone(config=cfg).load(tmp_path / "model.safetensors")
    clip = (np.random.default_rng(7).standard_normal(3000) * 0.2).astype(np.float32)
    assert float(loaded.embed([clip])[0]["CE"]) == float(model.embed([clip])[0]["CE"])


def test_registry_input_path_and_bad_input(model):
    assert backbone_class("audiobox-aesthetics") is AestheticsBackbone
    assert AestheticsBackbone.outputs == ("CE", "CU", "PC", "PQ") and AestheticsBackbone.sample_rate == 16000
    assert AESTHETICS_INPUT.channels == "mean" and AESTHETICS_INPUT.resampler == "torchaudio-functional"
    with pytest.raises(ValueError, match="clip 1 is empty"):
        model.embed([np.zeros(10, np.float32), np.zeros(0, np.float32)])
    with pytest.raises(ValueError, match="NaN"):
        model.embed([np.full(10, np.nan, np.float32)])
    with pytest.raises(ValueError, match="nth_layer"):
        AestheticsConfig(nth_layer=5)
