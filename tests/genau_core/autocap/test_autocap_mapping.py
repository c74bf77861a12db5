"""Official `autocap-full.ckpt` key mapping, proven on a state dict carrying the published key
names for a tiny configuration.

The expected official names are enumerated here independently of `official.py`, from the
module tree of snap-research/GenAU `AutoCap/src/models/pl_htsat_q_bart_captioning.py`:
`encoder.audio_enc` (HTSAT_Swin_Transformer with its AudioFeature front end),
`audio_Qformer` (BertLMHeadModel with word/position embeddings, `cls`, and every layer's
`intermediate` / `output` set to None), `audio_query_tokens`, `audio_position_embedding`,
`audio_Qfromer_layernorm_embedding` (sic), `audio_qformer_proj`, `enc_to_dec_proj`,
`clap_proj`, `clap_layernorm`, `decoder` (BartForConditionalGeneration),
`special_tokens_embed` (SpecialTokensEmbeddings: its table plus a second registration of
`decoder.model`) and `clap_model.model` (laion_clap CLAP; its layout is proven in
tests/bench/metrics/backbones/test_backbone_laion_clap.py, reused here).
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from bench.checkpoints import CheckpointNotFound
from genau_core.autocap.configs import AUTOCAP, OFFICIAL_SPECIAL_TOKENS, micro_config
from genau_core.autocap.model import build_autocap
from genau_core.autocap.official import (
    OfficialCheckpointError,
    config_from_official_yaml,
    convert_official_state_dict,
    find_official_files,
    to_official_state_dict,
)
from genau_core.checkpoint_io import CheckpointFormatError
from genau_core.networks.laion_clap import to_laion_clap_state_dict

CFG = micro_config(layout="official", meta_fields=("video_caption", "title"))


@pytest.fixture(scope="module")
def model():
    return build_autocap(CFG, seed=3).eval()


def published_key_shapes(model) -> dict[str, tuple[int, ...]]:
    """Official key -> shape for `CFG`, written from the official module definitions."""
    c = model.cfg
    h, d, q = c.qformer.hidden_size, c.bart.d_model, c.qformer
    out: dict[str, tuple[int, ...]] = {}
    # HTSAT_Swin_Transformer (+ AudioFeature), under encoder.audio_enc
    e, fe = c.htsat, c.frontend
    n_bins = fe.n_fft // 2 + 1
    a = "encoder.audio_enc."
    out[a + "audio_feats_extractor.mel_trans.stft.conv_real.weight"] = (n_bins, 1, fe.n_fft)
    out[a + "audio_feats_extractor.mel_trans.stft.conv_imag.weight"] = (n_bins, 1, fe.n_fft)
    out[a + "audio_feats_extractor.log_trans.melW"] = (n_bins, fe.n_mels)
    for k in ("weight", "bias", "running_mean", "running_var"):
        out[a + f"bn0.{k}"] = (e.n_mels,)
    out[a + "bn0.num_batches_tracked"] = ()
    out[a + "patch_embed.proj.weight"] = (e.embed_dim, 1, e.patch_size, e.patch_size)
    out[a + "patch_embed.proj.bias"] = (e.embed_dim,)
    out[a + "patch_embed.norm.weight"] = out[a + "patch_embed.norm.bias"] = (e.embed_dim,)
    for i, (depth, heads) in enumerate(zip(e.depths, e.num_heads)):
        dim, res = e.embed_dim * 2**i, e.grid // 2**i
        win = min(e.window_size, res)
        for j in range(depth):
            b = a + f"layers.{i}.blocks.{j}."
            out[b + "norm1.weight"] = out[b + "norm1.bias"] = (dim,)
            out[b + "attn.relative_position_bias_table"] = ((2 * e.window_size - 1) ** 2, heads)
            out[b + "attn.relative_position_index"] = (e.window_size**2, e.window_size**2)
            out[b + "attn.qkv.weight"], out[b + "attn.qkv.bias"] = (3 * dim, dim), (3 * dim,)
            out[b + "attn.proj.weight"], out[b + "attn.proj.bias"] = (dim, dim), (dim,)
            out[b + "norm2.weight"] = out[b + "norm2.bias"] = (dim,)
            hidden = int(dim * e.mlp_ratio)
            out[b + "mlp.fc1.weight"], out[b + "mlp.fc1.bias"] = (hidden, dim), (hidden,)
            out[b + "mlp.fc2.weight"], out[b + "mlp.fc2.bias"] = (dim, hidden), (dim,)
            if j % 2 == 1 and res > e.window_size:  # shifted blocks register their attention mask
                out[b + "attn_mask"] = ((res // win) ** 2, win * win, win * win)
        if i < len(e.depths) - 1:
            out[a + f"layers.{i}.downsample.reduction.weight"] = (2 * dim, 4 * dim)
            out[a + f"layers.{i}.downsample.norm.weight"] = out[a + f"layers.{i}.downsample.norm.bias"] = (4 * dim,)
    out[a + "norm.weight"] = out[a + "norm.bias"] = (e.num_features,)
    out[a + "tscam_conv.weight"] = (e.num_classes, e.num_features, e.tscam_kernel_height, 3)
    out[a + "tscam_conv.bias"] = (e.num_classes,)
    out[a + "head.weight"], out[a + "head.bias"] = (e.num_classes, e.num_classes), (e.num_classes,)
    # the audio Q-Former (BertLMHeadModel, hidden h, encoder_width d)
    out["audio_query_tokens"] = (1, q.num_queries, h)
    out["audio_Qformer.bert.embeddings.position_ids"] = (1, 1024)
    out["audio_Qformer.bert.embeddings.LayerNorm.weight"] = out["audio_Qformer.bert.embeddings.LayerNorm.bias"] = (h,)
    for i in range(q.num_layers):
        p = f"audio_Qformer.bert.encoder.layer.{i}."
        for att, width in (("attention", h), ("crossattention", d)):
            out[p + f"{att}.self.query.weight"], out[p + f"{att}.self.query.bias"] = (h, h), (h,)
            for kv in ("key", "value"):
                out[p + f"{att}.self.{kv}.weight"], out[p + f"{att}.self.{kv}.bias"] = (h, width), (h,)
            out[p + f"{att}.output.dense.weight"], out[p + f"{att}.output.dense.bias"] = (h, h), (h,)
            out[p + f"{att}.output.LayerNorm.weight"] = out[p + f"{att}.output.LayerNorm.bias"] = (h,)
        out[p + "intermediate_query.dense.weight"] = (q.intermediate_size, h)
        out[p + "intermediate_query.dense.bias"] = (q.intermediate_size,)
        out[p + "output_query.dense.weight"], out[p + "output_query.dense.bias"] = (h, q.intermediate_size), (h,)
        out[p + "output_query.LayerNorm.weight"] = out[p + "output_query.LayerNorm.bias"] = (h,)
    out["audio_position_embedding.weight"] = (c.audio_position_rows, d)
    out["audio_Qfromer_layernorm_embedding.weight"] = out["audio_Qfromer_layernorm_embedding.bias"] = (d,)
    out["audio_qformer_proj.weight"], out["audio_qformer_proj.bias"] = (d, h), (d,)
    out["enc_to_dec_proj.weight"], out["enc_to_dec_proj.bias"] = (d, e.num_features), (d,)
    out["clap_proj.weight"], out["clap_proj.bias"] = (d, c.clap.joint_embed_dim), (d,)
    out["clap_layernorm.weight"] = out["clap_layernorm.bias"] = (d,)
    out["special_tokens_embed.special_token_embed.weight"] = (len(OFFICIAL_SPECIAL_TOKENS), d)
    # BART (transformers names) twice, and the laion_clap CLAP
    from transformers import BartForConditionalGeneration

    with torch.device("meta"):
        bart = BartForConditionalGeneration(c.bart.hf_config())
    for k, v in bart.state_dict().items():
        out["decoder." + k] = tuple(v.shape)
        if k.startswith("model."):
            out["special_tokens_embed.model." + k[len("model.") :]] = tuple(v.shape)
    out.update({"clap_model.model." + k: tuple(v.shape) for k, v in to_laion_clap_state_dict(model.clap).items()})
    return out


def _clip(seconds=2.0, f=440.0):
    t = np.arange(int(32000 * seconds)) / 32000
    return (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_to_official_produces_exactly_the_published_keys(model):
    official = to_official_state_dict(model)
    published = published_key_shapes(model)
    assert set(official) == set(published), (
        sorted(set(official) - set(published))[:5],
        sorted(set(published) - set(official))[:5],
    )
    wrong = {k: (tuple(v.shape), published[k]) for k, v in official.items() if tuple(v.shape) != published[k]}
    assert not wrong


def test_published_state_dict_loads_through_the_mapping(model):
    official = to_official_state_dict(model)
    fresh = build_autocap(CFG, seed=99).eval()
    expected = {k: v.shape for k, v in fresh.state_dict().items()}
    converted = convert_official_state_dict(official, CFG, expected, source="autocap-full.ckpt")
    fresh.load_state_dict(converted, strict=True)
    b = model.prepare([_clip(), _clip(f=900.0)], [{"title": "a beep"}, {"video_caption": "a man whistles"}])
    with torch.no_grad():
        assert torch.equal(model.encode(b)[0], fresh.encode(b)[0])
    assert model.generate(b) == fresh.generate(b)
    # with a DDP "module." prefix and Lightning's file layout the same
    again = convert_official_state_dict({"module." + k: v for k, v in official.items()}, CFG, expected, source="x")
    assert all(torch.equal(again[k], converted[k]) for k in converted)


def test_mapping_errors_name_the_file_and_the_problem(model):
    official = to_official_state_dict(model)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    broken = dict(official)
    del broken["audio_qformer_proj.weight"]
    with pytest.raises(CheckpointFormatError, match=r"ckpt.*missing weights.*qformer_proj"):
        convert_official_state_dict(broken, CFG, expected, source="ckpt")
    odd = {**official, "text_Qformer.bert.embeddings.word_embeddings.weight": torch.zeros(2, 2)}
    with pytest.raises(CheckpointFormatError, match="unknown keys.*text_Qformer"):
        convert_official_state_dict(odd, CFG, expected, source="ckpt")
    twin = dict(official)
    twin["special_tokens_embed.model.shared.weight"] = twin["special_tokens_embed.model.shared.weight"] + 1
    with pytest.raises(OfficialCheckpointError, match="special_tokens_embed.model.shared.weight differs"):
        convert_official_state_dict(twin, CFG, expected, source="ckpt")
    front = dict(official)
    front["encoder.audio_enc.audio_feats_extractor.log_trans.melW"] = (
        front["encoder.audio_enc.audio_feats_extractor.log_trans.melW"] * 2
    )
    with pytest.raises(OfficialCheckpointError, match="front end.*melW"):
        convert_official_state_dict(front, CFG, expected, source="ckpt")


def test_clap_weights_from_the_separate_laion_file(model):
    official = {k: v for k, v in to_official_state_dict(model).items() if not k.startswith("clap_model.")}
    expected = {k: v.shape for k, v in model.state_dict().items()}
    with pytest.raises(OfficialCheckpointError, match="music_speech_audioset_epoch_15_esc_89.98.pt"):
        convert_official_state_dict(official, CFG, expected, source="ckpt")
    laion = to_laion_clap_state_dict(model.clap)
    converted = convert_official_state_dict(
        official, CFG, expected, source="ckpt", clap_state=laion, clap_source="clap.pt"
    )
    assert all(torch.equal(converted[k], v) for k, v in model.state_dict().items())


RELEASED_YAML = textwrap.dedent(
    """
    target: !module src.models.pl_htsat_q_bart_captioning.AutoCap
    model:
      audio_features_dropout_p: 0.2
      text_features_dropout_p: 0.2
      use_text_qformer: false
      use_audio_qformer: true
      use_clap_embeds: true
      meta_input: true
      add_special_tokens: True
      meta_keys: ['video_caption', 'title']
    meta:
      max_prompt_len : 128
    clap_embeds:
      ckpt: 'pretrained_models/clap/music_speech_audioset_epoch_15_esc_89.98.pt'
      embed_dim: 512
    audio_qformer:
      num_audio_query_token: 256
      frozen_audio_Qformer: false
      hidden_size: 256
      add_cross_attention: true
      num_attention_heads: 8
      num_hidden_layers: 2
    tokenizer:
      max_length: 30
      special_tokens: ['<HQVC>', '</HQVC>', '<AVC>', '</AVC>', '<TITLE>', '</TITLE>', '<DESC>', '</DESC>', '<SUB>',
      '</SUB>', '<LBL>', '</LBL>']
    audio_args:
      sr: 32000
      n_fft: 1024
      hop_length: 320
      f_min: 50
      f_max: 14000
      n_mels: 64
      max_length: 10
      mono: True
    audio_encoder_args:
      model_arch: "transformer"
      model_name: "htsat"
      pretrained: True
      freeze: True
    text_decoder_args:
      name: "facebook/bart-base"
      pretrained: true
      freeze: False
      freeze_embed_layer: False
    """
)


def test_config_from_the_official_yaml(tmp_path):
    y = tmp_path / "autocap-full.yaml"
    y.write_text(RELEASED_YAML)
    cfg = config_from_official_yaml(y, bart_dir=tmp_path / "bart-base")
    assert cfg.replace(tokenizer=AUTOCAP.tokenizer) == AUTOCAP
    assert cfg.qformer.num_queries == 256 and cfg.qformer.hidden_size == 256 and cfg.qformer.num_heads == 8
    assert cfg.qformer.num_layers == 2 and cfg.layout == "official" and cfg.meta_fields == ("video_caption", "title")
    assert cfg.frontend.sample_rate == 32000 and cfg.frontend.hop_length == 320 and cfg.max_prompt_tokens == 128
    assert cfg.bart.d_model == 768 and cfg.audio_position_rows == 1026 and cfg.generation.num_beams == 2
    y.write_text(RELEASED_YAML.replace("use_text_qformer: false", "use_text_qformer: true"))
    with pytest.raises(OfficialCheckpointError, match=r"autocap-full.yaml: model.use_text_qformer"):
        config_from_official_yaml(y)


def test_missing_release_files_are_named(tmp_path):
    (tmp_path / "autocap-full.yaml").write_text(RELEASED_YAML)
    with pytest.raises(CheckpointNotFound, match=r"missing autocap-full.ckpt, bart-base.*mali6/autocap.*autocap-tiny"):
        find_official_files(tmp_path)


def test_release_files_load_end_to_end(model, tmp_path):
    """A Lightning-style .ckpt (state_dict + trainer state) with the published keys, found in a folder."""
    from genau_core.autocap.official import load_official_autocap

    (tmp_path / "autocap-full.yaml").write_text(RELEASED_YAML)
    (tmp_path / "bart-base").mkdir()
    trainer = {"epoch": 19, "global_step": 1234, "pytorch-lightning_version": "2.1.0"}
    torch.save({"state_dict": to_official_state_dict(model), **trainer}, tmp_path / "autocap-full.ckpt")
    files = find_official_files(tmp_path)
    loaded = load_official_autocap(files, config=CFG)
    assert loaded.identity.startswith("sha256:") and files.clap is None
    b = model.prepare([_clip()], [{"title": "a beep"}])
    assert loaded.generate(b) == model.generate(b)


def test_stage_one_start_from_pretrained_parts(model, tmp_path):
    """bart-base snapshot + HTSAT.ckpt (`sed_model.*`) + LAION-CLAP file -> a fresh model, as the
    official stage 1 starts; BART's position table is extended with copies of its last row."""
    from dataclasses import replace

    from transformers import BartForConditionalGeneration

    from genau_core.autocap.official import load_pretrained_parts
    from genau_core.networks.htsat import FRONTEND_KEYS, join_htsat_state_dict
    from genau_core.networks.laion_clap import save_laion_clap_checkpoint

    torch.manual_seed(7)
    short = replace(CFG.bart, max_position_embeddings=150)
    src_bart = BartForConditionalGeneration(short.hf_config())
    src_bart.save_pretrained(tmp_path / "bart-base")
    sd = model.htsat.state_dict()
    enc = "model.audio_encoder."
    body = {k[len(enc) :]: v for k, v in sd.items() if k.startswith(enc)}
    head = {k[len("head.") :]: v for k, v in sd.items() if k.startswith("head.")}
    htsat = join_htsat_state_dict(body, {k: sd[k] for k in FRONTEND_KEYS}, head, CFG.htsat)
    torch.save({"state_dict": {"sed_model." + k: v for k, v in htsat.items()}, "epoch": 3}, tmp_path / "HTSAT.ckpt")
    save_laion_clap_checkpoint(model.clap, tmp_path / "clap.pt")
    fresh = build_autocap(CFG, seed=11)
    load_pretrained_parts(
        fresh, bart_dir=tmp_path / "bart-base", htsat_ckpt=tmp_path / "HTSAT.ckpt", clap_ckpt=tmp_path / "clap.pt"
    )
    assert all(torch.equal(v, model.htsat.state_dict()[k]) for k, v in fresh.htsat.state_dict().items())
    assert all(torch.equal(v, model.clap.state_dict()[k]) for k, v in fresh.clap.state_dict().items())
    pos = fresh.bart.model.encoder.embed_positions.weight
    src = src_bart.model.encoder.embed_positions.weight
    assert torch.equal(pos[: src.shape[0]], src) and torch.equal(pos[-1], src[-1])
    emb = fresh.bart.get_input_embeddings().weight
    assert torch.equal(emb, src_bart.get_input_embeddings().weight)
    assert torch.equal(fresh.delimiters.weight[0], emb[CFG.bart.bos_token_id])  # <HQVC> starts as <s>
    assert torch.equal(fresh.delimiters.weight[1], emb[CFG.bart.eos_token_id])  # </HQVC> starts as </s>
    assert fresh.identity.startswith("pretrained-parts:")
