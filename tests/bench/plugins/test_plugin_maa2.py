"""Make-An-Audio 2 structured captions (issue 7, item 3): the official TSV format and the fallback."""

from __future__ import annotations

import pytest

from bench.plugins.make_an_audio_2 import (
    StructCaptionTable,
    fallback_struct_caption,
    parse_struct_caption,
    structure_prompts,
    summarise_sources,
)

HEADER = "name\tdataset\tori_cap\taudio_path\tmel_path\tcaption\n"
# rows in the layout of the official audiocaps_test_struct.tsv
ROWS = [
    (
        "Y7fmOlUlwoNg",
        "Constant rattling noise and sharp vibrations",
        "<constant rattling noise& all>@<sharp vibrations& all>",
    ),
    (
        "Y6BJ455B1aAs",
        "A rocket flies by followed by a loud explosion and fire crackling as a truck engine runs idle",
        "<rocket flying by& start>@<loud explosion& mid>@<fire crackling& mid>@<truck engine idle& mid>",
    ),
    ("YVjSEIRnLAh8", "Food is frying, and a woman talks", "<frying food sizzling& all>@<woman talking& all>"),
    ("YAAAAAAAAAAA", "A dog barks", "<dog barking& all>"),
    ("YBBBBBBBBBBB", "A dog barks", "<dog barking& start>@<silence& end>"),
]


def write_tsv(path, rows=ROWS, header=HEADER):
    lines = [header] + [f"{n}\taudiocaps\t{c}\t/x/{n}.wav\t/x/{n}_mel.npy\t{s}\n" for n, c, s in rows]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_parse_round_trip_and_errors():
    s = "<rocket flying by& start>@<loud explosion& mid>"
    parsed = parse_struct_caption(s)
    assert parsed.events == (("rocket flying by", "start"), ("loud explosion", "mid"))
    assert str(parsed) == s
    assert str(parse_struct_caption(" <a&all> @ <b&  end> ")) == "<a& all>@<b& end>"
    for bad in ["", "rocket flying", "<rocket& sometimes>", "<& all>", "<a& all>@", "<a, all>"]:
        with pytest.raises(ValueError):
            parse_struct_caption(bad)


def test_fallback_is_the_official_single_event_form():
    assert fallback_struct_caption("A man  speaks\tloudly") == "<A man speaks loudly& all>"
    assert parse_struct_caption(fallback_struct_caption("cats & dogs <3")).events == (("cats dogs 3", "all"),)
    with pytest.raises(ValueError):
        fallback_struct_caption("  ")


def test_table_lookup_sources(tmp_path):
    table = StructCaptionTable.from_tsv(write_tsv(tmp_path / "audiocaps_test_struct.tsv"))
    assert len(table) == 4
    # exact, whitespace- and case-insensitive
    assert table.lookup("food is frying,  and a woman talks") == (
        "<frying food sizzling& all>@<woman talking& all>",
        "struct-file",
    )
    # same caption text, two clips: by clip id when known, else first in file order (recorded)
    assert table.lookup("A dog barks", youtube_id="BBBBBBBBBBB") == (
        "<dog barking& start>@<silence& end>",
        "struct-file",
    )
    assert table.lookup("A dog barks") == ("<dog barking& all>", "struct-file:first-of-2")
    assert table.lookup("A cat meows") == ("<A cat meows& all>", "fallback")


def test_structure_prompts_records_each_choice(tmp_path):
    table = StructCaptionTable.from_tsv(write_tsv(tmp_path / "s.tsv"))
    prompts = ["Constant rattling noise and sharp vibrations", "Birds sing at dawn", "A dog barks"]
    recs = structure_prompts(prompts, table)
    assert [r["source"] for r in recs] == ["struct-file", "fallback", "struct-file:first-of-2"]
    assert recs[1]["struct_caption"] == "<Birds sing at dawn& all>"
    assert summarise_sources(recs) == {"struct-file": 2, "fallback": 1}
    assert [r["source"] for r in structure_prompts(prompts, None)] == ["fallback"] * 3
    with pytest.raises(ValueError, match="2 clip ids"):
        structure_prompts(prompts, table, youtube_ids=["a", "b"])


def test_bad_files_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="audiocaps_test_struct"):
        StructCaptionTable.from_tsv(tmp_path / "missing.tsv")
    with pytest.raises(ValueError, match="missing column"):
        StructCaptionTable.from_tsv(
            write_tsv(tmp_path / "a.tsv", header="name\tori_cap\taudio_path\tmel_path\tstruct\tx\n")
        )
    bad = ROWS[:1] + [("YCCCCCCCCCCC", "A bell", "<bell ringing& twice>")]
    with pytest.raises(ValueError, match=r"b\.tsv:3: .*twice"):
        StructCaptionTable.from_tsv(write_tsv(tmp_path / "b.tsv", rows=bad))


# =====================================================================================================
# the model: official layout, key mappings, the plugins and the tiny twin
# =====================================================================================================

import math  # noqa: E402
import re  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.checkpoints import sha256_file  # noqa: E402
from bench.plugins.make_an_audio_2 import (  # noqa: E402
    STRUCT_ENV,
    MakeAnAudio2,
    MakeAnAudio2Tiny,
    build_tiny_make_an_audio_2,
    make_an_audio_2_tiny_config,
)
from genau_core.baselines._state import CheckpointMappingError  # noqa: E402
from genau_core.baselines.make_an_audio_2 import (  # noqa: E402
    MAKE_AN_AUDIO_2_CONFIG,
    DiTConfig,
    MakeAnAudio2Model,
    Vae1d,
    Vae1dConfig,
    map_dit_state_dict,
    map_vae1d_state_dict,
)
from tests.plugin_helpers import loaded_tiny  # noqa: E402
from tests.bench.plugins.test_plugin_maa import (  # noqa: E402
    ldm_schedule_buffers,
    official_bigvgan_state,
    official_clap_text_state,
    random_state,
    reference_clap_text,
    run_demo_through_cli,
    write_release_folder,
)

MCFG = make_an_audio_2_tiny_config()
SHORT = 2.0
CAPTIONS = ["A dog barks", "Food is frying, and a woman talks", "Birds sing at dawn"]


def official_dit_shapes(c: DiTConfig) -> dict[str, tuple[int, ...]]:
    """`concatDiT.ConcatDiT2MLP` state dict names and shapes."""
    s: dict[str, tuple[int, ...]] = {}
    h = c.hidden_size

    def lin(n, i, o, bias=True):
        s[f"{n}.weight"] = (o, i)
        if bias:
            s[f"{n}.bias"] = (o,)

    def conv(n, i, o, k):
        s[f"{n}.weight"], s[f"{n}.bias"] = (o, i, k), (o,)

    def norm(n, ch):
        s[f"{n}.weight"], s[f"{n}.bias"] = (ch,), (ch,)

    lin("t_embedder.mlp.0", 256, h)
    lin("t_embedder.mlp.2", h, h)
    for n in (1, 2):
        lin(f"c{n}_embedder.mlp.0", c.context_dim, h)
        lin(f"c{n}_embedder.mlp.2", h, h)
        norm(f"c{n}_embedder.mlp.3", h)
    conv("proj_in", c.in_channels, h, 5)
    s["pos_emb.weight"] = (c.max_len, h)
    for i in range(c.depth):
        b, t = f"blocks.{i}", f"blocks.{i}.transformer_blocks.0"
        norm(f"{b}.norm", h)
        conv(f"{b}.proj_in", h, h, 1)
        for a in ("attn1", "attn2"):
            for p in ("to_q", "to_k", "to_v"):
                lin(f"{t}.{a}.{p}", h, h, bias=False)
            lin(f"{t}.{a}.to_out.0", h, h)
        conv(f"{t}.ff.net.0.proj", h, 2 * 4 * h, 9)
        conv(f"{t}.ff.net.2", 4 * h, h, 9)
        for k in (1, 2, 3):
            norm(f"{t}.norm{k}", h)
        conv(f"{b}.proj_out", h, h, 1)
    norm("final_layer.norm_final", h)
    conv("final_layer.conv1d", h, c.in_channels, 1)
    return s


def official_vae1d_shapes(c: Vae1dConfig) -> dict[str, tuple[int, ...]]:
    """`autoencoder1d.AutoencoderKL` names and shapes (decoder res blocks built with the default kernel 3)."""
    s: dict[str, tuple[int, ...]] = {}
    k = c.kernel_size

    def conv(n, i, o, kk):
        s[f"{n}.weight"], s[f"{n}.bias"] = (o, i, kk), (o,)

    def norm(n, ch):
        s[f"{n}.weight"], s[f"{n}.bias"] = (ch,), (ch,)

    def res(n, i, o, kk):
        norm(f"{n}.norm1", i)
        conv(f"{n}.conv1", i, o, kk)
        norm(f"{n}.norm2", o)
        conv(f"{n}.conv2", o, o, kk)
        if i != o:
            conv(f"{n}.nin_shortcut", i, o, 1)

    def attn(n, ch):
        norm(f"{n}.norm", ch)
        for a in ("q", "k", "v", "proj_out"):
            conv(f"{n}.{a}", ch, ch, 1)

    conv("encoder.conv_in", c.in_channels, c.ch, k)
    in_mult = (1,) + tuple(c.ch_mult)
    for level, mult in enumerate(c.ch_mult):
        block_in, block_out = c.ch * in_mult[level], c.ch * mult
        for j in range(c.num_res_blocks):
            res(f"encoder.down.{level}.block.{j}", block_in, block_out, k)
            block_in = block_out
            if level in c.attn_layers:
                attn(f"encoder.down.{level}.attn.{j}", block_in)
        if level in c.down_layers:
            conv(f"encoder.down.{level}.downsample.conv", block_in, block_in, 3)
    res("encoder.mid.block_1", block_in, block_in, k)
    attn("encoder.mid.attn_1", block_in)
    res("encoder.mid.block_2", block_in, block_in, k)
    norm("encoder.norm_out", block_in)
    conv("encoder.conv_out", block_in, 2 * c.z_channels, k)
    block_in = c.ch * c.ch_mult[-1]
    conv("decoder.conv_in", c.z_channels, block_in, k)
    res("decoder.mid.block_1", block_in, block_in, 3)
    attn("decoder.mid.attn_1", block_in)
    res("decoder.mid.block_2", block_in, block_in, 3)
    for level in reversed(range(len(c.ch_mult))):
        block_out = c.ch * c.ch_mult[level]
        for j in range(c.num_res_blocks + 1):
            res(f"decoder.up.{level}.block.{j}", block_in, block_out, 3)
            block_in = block_out
            if level in c.attn_layers:
                attn(f"decoder.up.{level}.attn.{j}", block_in)
        if level in {d + 1 for d in c.down_layers}:
            conv(f"decoder.up.{level}.upsample.conv", block_in, block_in, 3)
    norm("decoder.norm_out", block_in)
    conv("decoder.conv_out", block_in, c.out_ch, k)
    conv("quant_conv", 2 * c.z_channels, 2 * c.embed_dim, 1)
    conv("post_quant_conv", c.embed_dim, c.z_channels, 1)
    return s


def official_t5_state(cfg, seed: int) -> dict[str, torch.Tensor]:
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    return {k: v.clone() for k, v in T5EncoderModel(T5Config(**cfg.t5)).state_dict().items()}


def official_maa2_state(seed: int = 7) -> dict[str, torch.Tensor]:
    sd = {f"model.diffusion_model.{k}": v for k, v in random_state(official_dit_shapes(MCFG.dit), seed).items()}
    sd.update({f"first_stage_model.{k}": v for k, v in random_state(official_vae1d_shapes(MCFG.vae), seed + 1).items()})
    sd.update({f"cond_stage_model.{k}": v for k, v in official_clap_text_state(MCFG.text, seed + 2).items()})
    sd.update({f"cond_stage_model.t5_transformer.{k}": v for k, v in official_t5_state(MCFG, seed + 3).items()})
    sd.update(ldm_schedule_buffers(MCFG.schedule))
    sd["scale_factor"] = torch.tensor(0.6)
    return sd


def reference_dit(sd: dict, c: DiTConfig, x, t, context) -> torch.Tensor:
    """ConcatDiT2MLP.forward of the official code, written out on the official keys."""
    h = c.hidden_size

    def lin(v, n):
        return F.linear(v, sd[f"{n}.weight"], sd.get(f"{n}.bias"))

    def conv(v, n, pad):
        return F.conv1d(v, sd[f"{n}.weight"], sd[f"{n}.bias"], padding=pad)

    def ln(v, n):
        return F.layer_norm(v, (v.shape[-1],), sd[f"{n}.weight"], sd[f"{n}.bias"])

    def attn(v, n):
        b, L, _ = v.shape
        q, k, vv = (lin(v, f"{n}.{p}").reshape(b, L, c.num_heads, -1).transpose(1, 2) for p in ("to_q", "to_k", "to_v"))
        w = torch.softmax(q @ k.transpose(-1, -2) * (h // c.num_heads) ** -0.5, dim=-1)
        return lin((w @ vv).transpose(1, 2).reshape(b, L, h), f"{n}.to_out.0")

    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    temb = lin(F.silu(lin(torch.cat([torch.cos(args), torch.sin(args)], -1), "t_embedder.mlp.0")), "t_embedder.mlp.2")[
        :, None
    ]
    c1, c2 = context.chunk(2, dim=1)
    embs = [
        ln(
            lin(F.gelu(lin(cc, f"c{n}_embedder.mlp.0"), approximate="tanh"), f"c{n}_embedder.mlp.2"),
            f"c{n}_embedder.mlp.3",
        )
        for n, cc in ((1, c1), (2, c2))
    ]
    seq = torch.cat([temb, *embs, conv(x, "proj_in", 2).transpose(1, 2)], dim=1)
    z = (seq + sd["pos_emb.weight"][: seq.shape[1]]).transpose(1, 2)
    for i in range(c.depth):
        b, tb = f"blocks.{i}", f"blocks.{i}.transformer_blocks.0"
        y = conv(
            F.group_norm(z, c.block_groups, sd[f"{b}.norm.weight"], sd[f"{b}.norm.bias"], eps=1e-6), f"{b}.proj_in", 0
        ).transpose(1, 2)
        y = attn(ln(y, f"{tb}.norm1"), f"{tb}.attn1") + y
        y = attn(ln(y, f"{tb}.norm2"), f"{tb}.attn2") + y
        f = conv(ln(y, f"{tb}.norm3").transpose(1, 2), f"{tb}.ff.net.0.proj", 4)
        val, gate = f.chunk(2, dim=1)
        y = conv(val * F.gelu(gate), f"{tb}.ff.net.2", 4).transpose(1, 2) + y
        z = conv(y.transpose(1, 2), f"{b}.proj_out", 0) + z
    z = z[..., 1 + 2 * c1.shape[1] :]
    z = F.group_norm(
        z, c.final_groups, sd["final_layer.norm_final.weight"], sd["final_layer.norm_final.bias"], eps=1e-5
    )
    return conv(z, "final_layer.conv1d", 0)


def reference_vae1d_decode(sd: dict, c: Vae1dConfig, z) -> torch.Tensor:
    g = c.norm_num_groups

    def gn(x, n):
        return F.group_norm(x, g, sd[f"{n}.weight"], sd[f"{n}.bias"], eps=1e-6)

    def conv(x, n):
        w = sd[f"{n}.weight"]
        return F.conv1d(x, w, sd[f"{n}.bias"], padding=w.shape[-1] // 2)

    def resnet(x, n):
        h = conv(F.silu(gn(x, f"{n}.norm1")), f"{n}.conv1")
        h = conv(F.silu(gn(h, f"{n}.norm2")), f"{n}.conv2")
        return (conv(x, f"{n}.nin_shortcut") if f"{n}.nin_shortcut.weight" in sd else x) + h

    def attn(x, n):
        hh = gn(x, f"{n}.norm")
        q, kk, v = (conv(hh, f"{n}.{a}") for a in ("q", "k", "v"))
        w = torch.softmax(torch.bmm(q.permute(0, 2, 1), kk) * q.shape[1] ** -0.5, dim=2)
        return x + conv(torch.bmm(v, w.permute(0, 2, 1)), f"{n}.proj_out")

    x = conv(conv(z, "post_quant_conv"), "decoder.conv_in")
    x = resnet(attn(resnet(x, "decoder.mid.block_1"), "decoder.mid.attn_1"), "decoder.mid.block_2")
    for level in reversed(range(len(c.ch_mult))):
        for j in range(c.num_res_blocks + 1):
            x = resnet(x, f"decoder.up.{level}.block.{j}")
            if f"decoder.up.{level}.attn.{j}.q.weight" in sd:
                x = attn(x, f"decoder.up.{level}.attn.{j}")
        if f"decoder.up.{level}.upsample.conv.weight" in sd:
            x = conv(F.interpolate(x, scale_factor=2.0, mode="nearest"), f"decoder.up.{level}.upsample.conv")
    return conv(F.silu(gn(x, "decoder.norm_out")), "decoder.conv_out")


@pytest.fixture(scope="module")
def loaded_model() -> tuple[MakeAnAudio2Model, dict]:
    model = build_tiny_make_an_audio_2(seed=3)
    sd = official_maa2_state()
    model.load_official_state_dict(sd)
    return model, sd


def test_official_checkpoint_loads_strictly_and_computes_as_the_official_code(loaded_model):
    model, sd = loaded_model
    assert float(model.scale_factor) == pytest.approx(0.6) and model.skipped_keys == {}
    dit_sd = {k[len("model.diffusion_model.") :]: v for k, v in sd.items() if k.startswith("model.diffusion_model.")}
    vae_sd = {k[len("first_stage_model.") :]: v for k, v in sd.items() if k.startswith("first_stage_model.")}
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(2, MCFG.dit.in_channels, 24, generator=g), torch.tensor([991, 1])
    context = torch.randn(2, 2 * 77, MCFG.dit.context_dim, generator=g)
    z = torch.randn(2, MCFG.vae.embed_dim, 20, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(
            model.dit(x, t, context), reference_dit(dit_sd, MCFG.dit, x, t, context), atol=2e-5, rtol=1e-4
        )
        torch.testing.assert_close(
            model.vae.decode(z), reference_vae1d_decode(vae_sd, MCFG.vae, z), atol=2e-5, rtol=1e-4
        )
        cond = model.encode_text(
            CAPTIONS, ["<dog barking& all>", "<frying& all>@<woman talking& end>", "<birds& start>"]
        )
        clap_sd = {
            k[len("cond_stage_model.") :]: v for k, v in sd.items() if k.startswith("cond_stage_model.caption_encoder.")
        }
        torch.testing.assert_close(
            cond[:, :77], reference_clap_text(clap_sd, MCFG.text, model.clap_tokenizer, CAPTIONS), atol=2e-5, rtol=1e-4
        )
    assert cond.shape == (3, 154, MCFG.dit.context_dim)
    t5_sd = {
        k[len("cond_stage_model.t5_transformer.") :]: v
        for k, v in sd.items()
        if k.startswith("cond_stage_model.t5_transformer.")
    }
    own = model.t5.state_dict()
    assert set(own) == set(t5_sd) and all(torch.equal(own[k], v) for k, v in t5_sd.items())
    assert len(map_dit_state_dict(dit_sd, MCFG.dit)) == len(model.dit.state_dict()) == len(dit_sd)
    assert len(map_vae1d_state_dict(vae_sd, MCFG.vae)) == len(model.vae.state_dict()) == len(vae_sd)


def test_vae1d_with_attention_inside_levels_and_the_encoder_map():
    cfg = Vae1dConfig(
        in_channels=8,
        out_ch=8,
        ch=8,
        ch_mult=(1, 2),
        num_res_blocks=1,
        z_channels=2,
        embed_dim=2,
        kernel_size=5,
        attn_layers=(0, 1),
        down_layers=(0,),
        norm_num_groups=4,
    )
    official = random_state(official_vae1d_shapes(cfg), 5)
    vae = Vae1d(cfg).eval()
    vae.load_state_dict(map_vae1d_state_dict(official, cfg), strict=True)
    z = torch.randn(1, 2, 9, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(vae.decode(z), reference_vae1d_decode(official, cfg, z), atol=2e-5, rtol=1e-4)
        assert vae.encode_moments(torch.randn(1, 8, 18)).shape == (1, 4, 9)  # (0, 1) pad + stride 2: T / 2


def test_mapping_errors_name_the_problem(loaded_model):
    _, sd = loaded_model
    fresh = build_tiny_make_an_audio_2(seed=3)
    with pytest.raises(CheckpointMappingError, match=r"1 missing.*pos_embed"):
        fresh.load_official_state_dict({k: v for k, v in sd.items() if k != "model.diffusion_model.pos_emb.weight"})
    with pytest.raises(CheckpointMappingError, match="c3_embedder"):
        fresh.load_official_state_dict({**sd, "model.diffusion_model.c3_embedder.mlp.0.weight": torch.zeros(1)})
    with pytest.raises(
        CheckpointMappingError, match=r"1 unexpected.*decoder.stages.2.attns.0"
    ):  # official up.0 = our last stage
        fresh.load_official_state_dict({**sd, "first_stage_model.decoder.up.0.attn.0.q.weight": torch.zeros(1)})
    with pytest.raises(CheckpointMappingError, match=r"no cond_stage_model\.t5_transformer\.\* weights.*t5-v1_1-large"):
        fresh.load_official_state_dict({k: v for k, v in sd.items() if ".t5_transformer." not in k})
    with pytest.raises(CheckpointMappingError, match="differ"):
        fresh.load_official_state_dict(
            {
                **sd,
                "cond_stage_model.t5_transformer.shared.weight": torch.zeros_like(
                    sd["cond_stage_model.t5_transformer.shared.weight"]
                ),
            }
        )
    # the tied embedding may be stored once (either name)
    fresh.load_official_state_dict(
        {k: v for k, v in sd.items() if k != "cond_stage_model.t5_transformer.encoder.embed_tokens.weight"}
    )


@pytest.fixture(scope="module")
def tiny2() -> MakeAnAudio2Tiny:
    return loaded_tiny(MakeAnAudio2Tiny)


def test_structured_captions_reach_the_t5_and_are_recorded(tiny2, tmp_path, monkeypatch):
    monkeypatch.delenv(STRUCT_ENV, raising=False)
    base = tiny2.generate(CAPTIONS[:1], seed=[5], steps=2, duration=SHORT)[0]
    assert tiny2.last_record.prompts == [{"struct_caption": "<A dog barks& all>", "struct_caption_source": "fallback"}]
    assert tiny2.checkpoint_identity() == "random:seed=0+struct:none"
    tsv = write_tsv(tmp_path / "audiocaps_test_struct.tsv")
    for how in ("checkpoint", "env"):
        if how == "checkpoint":
            plugin = MakeAnAudio2Tiny(checkpoint=str(tsv))
        else:
            monkeypatch.setenv(STRUCT_ENV, str(tsv))
            plugin = MakeAnAudio2Tiny()
        plugin.model, plugin._loaded = tiny2.model, True
        assert plugin.struct_file() == tsv and re.fullmatch(
            r"random:seed=0\+struct:sha256:[0-9a-f]{64}", plugin.checkpoint_identity()
        )
        waves = plugin.generate(CAPTIONS[:1] + ["Birds sing at dawn"], seed=[5, 6], steps=2, duration=SHORT)
        rec = plugin.last_record
        assert rec.prompts == [
            {"struct_caption": "<dog barking& all>", "struct_caption_source": "struct-file:first-of-2"},
            {"struct_caption": "<Birds sing at dawn& all>", "struct_caption_source": "fallback"},
        ]
        assert rec.extra["struct_captions"]["file"] == str(tsv) and rec.extra["struct_captions"][
            "sha256"
        ] == sha256_file(tsv)
        assert rec.to_manifest()["extra"] == rec.extra and rec.to_manifest()["native_sample_rate"] == 16_000
        assert plugin.prompt_records(CAPTIONS[:1]) == rec.prompts[:1]  # available before generating (for the manifest)
        assert summarise_sources(structure_prompts(CAPTIONS, plugin.struct_table())) == {
            "struct-file": 2,
            "fallback": 1,
        }
        assert np.abs(waves[0] - base).max() > 1e-3  # another structured caption, another clip
    # the same structured caption gives the same clip whichever way it was obtained
    same = write_tsv(tmp_path / "same.tsv", rows=[("YAAAAAAAAAAA", "A dog barks", "<A dog barks& all>")])
    monkeypatch.setenv(STRUCT_ENV, str(same))
    again = MakeAnAudio2Tiny()
    again.model, again._loaded = tiny2.model, True
    np.testing.assert_allclose(
        again.generate(CAPTIONS[:1], seed=[5], steps=2, duration=SHORT)[0], base, atol=1e-6, rtol=0
    )
    assert again.last_record.prompts[0]["struct_caption_source"] == "struct-file"
    monkeypatch.setenv(STRUCT_ENV, str(tmp_path / "nope.tsv"))
    ok, status = MakeAnAudio2Tiny().checkpoint_status()
    assert not ok and "nope.tsv" in status and "audiocaps_test_struct.tsv" in status


def test_plugin_loads_a_released_layout_folder(loaded_model, offline, tmp_path, monkeypatch):
    monkeypatch.delenv(STRUCT_ENV, raising=False)
    model, sd = loaded_model
    voc_sd = official_bigvgan_state(MCFG.vocoder, seed=4)
    folder = write_release_folder(
        tmp_path / "useful_ckpts",
        "maa2.ckpt",
        sd,
        voc_sd,
        MCFG.vocoder,
        {"bert-base-uncased": model.clap_tokenizer, "t5-v1_1-large": model.t5_tokenizer},
    )
    plugin = MakeAnAudio2(checkpoint=str(folder))
    plugin.config = MCFG  # tiny dimensions; files, loader and mappings are the real ones
    ok, status = plugin.checkpoint_status()
    assert ok and "google/t5-v1_1-large tokenizer from" in status and "structured captions: none" in status
    assert plugin.checkpoint_identity().endswith("+struct:none")
    write_tsv(folder / "audiocaps_test_struct.tsv")
    ok, status = plugin.checkpoint_status()
    assert ok and str(folder / "audiocaps_test_struct.tsv") in status
    assert re.fullmatch(
        r"sha256:[0-9a-f]{64}\+bigvgan:sha256:[0-9a-f]{64}\+struct:sha256:[0-9a-f]{64}", plugin.checkpoint_identity()
    )
    prompts = ["Constant rattling noise and sharp vibrations", "A cat meows"]
    waves = plugin.generate(prompts, seed=[1, 2], steps=2, duration=SHORT)
    assert [r["struct_caption_source"] for r in plugin.last_record.prompts] == ["struct-file", "fallback"]
    structs = ["<constant rattling noise& all>@<sharp vibrations& all>", "<A cat meows& all>"]
    direct = plugin.model.sample(
        prompts, structs, [torch.Generator().manual_seed(s) for s in (1, 2)], steps=2, guidance=4.0, duration_s=SHORT
    )
    for w, d in zip(waves, direct):
        np.testing.assert_allclose(w, d.numpy()[: len(w)], atol=1e-6, rtol=0)
    assert all(
        torch.equal(a, b) for a, b in zip(plugin.model.dit.state_dict().values(), model.dit.state_dict().values())
    )


def test_checkpoint_without_t5_takes_it_from_the_t5_v1_1_large_folder(loaded_model, offline, tmp_path, monkeypatch):
    """Issue 13 item 8. The official gen_wav.py loads maa2.ckpt with strict=False; without
    `cond_stage_model.t5_transformer.*` its FrozenCLAPFLANEmbedder keeps `T5EncoderModel.from_pretrained(
    "google/t5-v1_1-large")`. We do the same from the t5-v1_1-large folder (hub layout: model.safetensors of the
    whole T5; the encoder half is taken), hash it into the identity and record it. (The old loader refused.)"""
    from safetensors.torch import save_file

    monkeypatch.delenv(STRUCT_ENV, raising=False)
    model, sd = loaded_model
    no_t5 = {k: v for k, v in sd.items() if ".t5_transformer." not in k}
    t5 = {k[len("cond_stage_model.t5_transformer.") :]: v.clone() for k, v in sd.items() if ".t5_transformer." in k}
    t5.pop("shared.weight")  # a file that stores the tied embedding once, as transformers' safetensors does
    decoder = {"decoder.final_layer_norm.weight": torch.ones(4), "lm_head.weight": torch.zeros(3, 4)}
    voc_sd = official_bigvgan_state(MCFG.vocoder, seed=4)
    folder = write_release_folder(
        tmp_path / "useful_ckpts",
        "maa2.ckpt",
        no_t5,
        voc_sd,
        MCFG.vocoder,
        {"bert-base-uncased": model.clap_tokenizer, "t5-v1_1-large": model.t5_tokenizer},
    )
    plugin = MakeAnAudio2(checkpoint=str(folder))
    plugin.config = MCFG
    with pytest.raises(CheckpointMappingError, match="t5-v1_1-large"):
        plugin.load()
    save_file({**t5, **decoder}, str(folder / "t5-v1_1-large" / "model.safetensors"))
    plugin = MakeAnAudio2(checkpoint=str(folder))
    plugin.config = MCFG
    pattern = r"sha256:[0-9a-f]{64}\+bigvgan:sha256:[0-9a-f]{64}\+t5:sha256:[0-9a-f]{64}\+struct:none"
    assert re.fullmatch(pattern, plugin.checkpoint_identity())
    plugin.load()
    own = plugin.model.t5.state_dict()
    assert all(torch.equal(own[k], v) for k, v in model.t5.state_dict().items())
    assert plugin.generation_extra()["text_encoders"] == {"clap": "checkpoint", "t5": str(folder / "t5-v1_1-large")}


def test_offline_status_names_what_is_missing(offline, tmp_path, monkeypatch):
    monkeypatch.delenv(STRUCT_ENV, raising=False)
    ok, status = MakeAnAudio2().checkpoint_status()
    assert not ok and "maa2.ckpt" in status and "ByteDance/Make-An-Audio-2" in status
    with pytest.raises(FileNotFoundError, match="maa2.ckpt"):
        MakeAnAudio2().load()
    folder = tmp_path / "partial"
    folder.mkdir()
    torch.save({"state_dict": {}}, folder / "maa2.ckpt")
    ok, status = MakeAnAudio2(checkpoint=str(folder)).checkpoint_status()
    assert not ok and "bigvgan/args.yml" in status


def test_released_configuration_and_defaults():
    c = MAKE_AN_AUDIO_2_CONFIG
    assert c.latent_shape(10.0) == (20, 316) and c.samples(10.0) == 161_792  # gen_wav.py: 10.11 s
    assert 1 + 2 * 77 + c.latent_length(10.0) <= c.dit.max_len
    with torch.device("meta"):
        model = MakeAnAudio2Model(c, None, None)
    assert round(model.parameter_count() / 1e6) == 937  # the paper's 937M
    d = MakeAnAudio2.info.defaults
    assert (d.sampler, d.steps, d.guidance, d.duration_s) == ("DDIM (eta 0)", 100, 4.0, 10.0)
    notes = MakeAnAudio2.info.notes
    assert "--scale 4" in notes and "5.0" in notes and "3.0" in notes and STRUCT_ENV in notes


def test_tiny_generates_ten_seconds_at_16k(tiny2, monkeypatch):
    monkeypatch.delenv(STRUCT_ENV, raising=False)
    assert (
        tiny2.info.tiny
        and tiny2.weights == "random"
        and (tiny2.info.defaults.steps, tiny2.info.defaults.guidance) == (10, 4.0)
    )
    waves = tiny2.generate(CAPTIONS[:2], seed=0, steps=2)
    for w in waves:
        assert w.dtype == np.float32 and w.shape == (160_000,) and np.isfinite(w).all() and w.std() > 1e-3
    assert not np.allclose(waves[0], waves[1])
    assert tiny2.last_record.native_sample_rate == 16_000 and not tiny2.last_record.resampled


def test_tiny_runs_through_bench_run_on_the_demo_split(tmp_path, monkeypatch):
    import soundfile as sf

    tsv = write_tsv(tmp_path / "audiocaps_test_struct.tsv")
    monkeypatch.delenv(STRUCT_ENV, raising=False)
    res = run_demo_through_cli(
        tmp_path,
        monkeypatch,
        "make-an-audio-2-tiny",
        "bench.plugins.make_an_audio_2:MakeAnAudio2Tiny",
        "--model-checkpoint",
        f"make-an-audio-2-tiny={tsv}",
    )
    m = res["manifest"]
    s = m["settings"]
    assert (s["model"], s["sampler"], s["steps"], s["guidance"], s["duration_s"]) == (
        "make-an-audio-2-tiny",
        "DDIM (eta 0)",
        2,
        4.0,
        10.0,
    )
    assert s["overrides"] == {"steps": 2} and s["checkpoint_identity"].startswith("random:seed=0+struct:sha256:")
    assert m["generation"]["native_sample_rate"] == 16_000 and m["generation"]["resampled"] is False
    assert "STRUCT" in m["model"]["notes"].upper() and m["parameter_count"] > 0
    # the demo captions are not in the struct file: each clip records the documented fallback
    for rec in m["clips"].values():
        assert rec["struct_caption_source"] == "fallback"
        assert rec["struct_caption"] == f"<{rec['prompt']}& all>"
    assert len(res["clips"]) == 3
    for clip in res["clips"]:
        audio, sr = sf.read(clip)
        assert sr == 16_000 and audio.shape == (160_000,)
