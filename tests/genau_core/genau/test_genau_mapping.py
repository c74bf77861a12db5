"""Official GenAU checkpoint -> our modules, proven on state dicts carrying the published key names.

The official layout is written out here independently of `genau_core.genau.official`, from
the module tree of snap-research/GenAU (`src/modules/fit/fit_audio.py` FIT,
`fit/layers/fit_layers.py` FITBlockV5, `fit/layers/rin_layers.py` Attention / FeedForward /
LayerNorm(gamma, beta buffer), `diffusionmodules/model_1d.py` Encoder1D / Decoder1D,
`latent_encoder/autoencoder_1d.py`, `hifigan/models.py`, the LAION-CLAP text branch and
the `GenAu` Lightning module (`model.diffusion_model`, `first_stage_model`, `cond_stage_models`).
A functional re-implementation of the official FIT forward on the official keys checks that
the mapped backbone computes the same function.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from genau_core.genau import GENAU_TINY, GenAuPipeline, build_genau
from genau_core.genau import official as off

CFG = GENAU_TINY


# ---------------------------------------------------------------- official layout (tiny) ---


def _attn(prefix, dim, inner, ctx_dim=None):
    d = {f"{prefix}.norm.gamma": (dim,), f"{prefix}.norm.beta": (dim,)}
    if ctx_dim is not None:
        d |= {f"{prefix}.norm_context.gamma": (ctx_dim,), f"{prefix}.norm_context.beta": (ctx_dim,)}
    kv = ctx_dim if ctx_dim is not None else dim
    d |= {
        f"{prefix}.to_q.weight": (inner, dim),
        f"{prefix}.to_kv.weight": (2 * inner, kv),
        f"{prefix}.to_out.weight": (dim, inner),
    }
    return d


def _ff(prefix, dim, mult, dropout):
    out_idx = 3 if dropout > 0 else 2  # nn.Dropout sits at net.2 when drop_units > 0
    return {
        f"{prefix}.norm.gamma": (dim,),
        f"{prefix}.norm.beta": (dim,),
        f"{prefix}.net.0.weight": (dim * mult, dim),
        f"{prefix}.net.0.bias": (dim * mult,),
        f"{prefix}.net.{out_idx}.weight": (dim, dim * mult),
        f"{prefix}.net.{out_idx}.bias": (dim,),
    }


def official_fit_shapes(c):
    dp, dl, ctx, m = c.patch_channels, c.latent_channels, c.context_channels, c.ff_mult
    s = {
        "latents": (c.latent_count, dl),
        "patches_pe": (c.patches, dp),
        "time_mlp.0.weights": (c.time_fourier_dim // 2,),
        "time_mlp.1.weight": (4 * dp, c.time_fourier_dim + 1),
        "time_mlp.1.bias": (4 * dp,),
        "time_mlp.3.weight": (ctx, 4 * dp),
        "time_mlp.3.bias": (ctx,),
        "dataset_id_conditioning_mlp.0.weight": (ctx, c.dataset_ids_count),
        "dataset_id_conditioning_mlp.0.bias": (ctx,),
        "context_projection_summary_text_embeddings.weight": (ctx, c.summary_channels),
        "to_patches.0.weight": (dp, c.input_channels * c.patch_size),
        "to_patches.0.bias": (dp,),
        "to_patches.1.weight": (dp,),
        "to_patches.1.bias": (dp,),
        "patch_to_pixels.0.gamma": (dp,),
        "patch_to_pixels.0.beta": (dp,),
        "patch_to_pixels.1.weight": (c.input_channels * c.patch_size, dp),
        "patch_to_pixels.1.bias": (c.input_channels * c.patch_size,),
        "self_conditioning_latents_projection.1.gamma": (dl,),
        "self_conditioning_latents_projection.1.beta": (dl,),
    }
    s |= _ff("self_conditioning_latents_projection.0", dl, m, 0.0)
    for b in range(c.blocks + 1):
        p = f"blocks.{b}"
        for j in range(c.local_layers_per_block):
            s |= _attn(f"{p}.local_layers.{j}.0", dp, c.local_attention.inner)
            s |= _ff(f"{p}.local_layers.{j}.1", dp, m, c.dropout)
        if b == c.blocks:
            continue  # the final block is local-only: no read / write / context / global
        # use_cross_attention_feedforward: false -> nn.Identity() (no parameters) in FITBlockV5
        xff = c.cross_attention_feedforward
        s |= _attn(f"{p}.latents_attend_to_patches", dl, c.read_attention.inner, dp)
        s |= _ff(f"{p}.latents_cross_attn_ff", dl, m, 0.0) if xff else {}
        s |= _attn(f"{p}.latents_attend_to_context", dl, c.context_attention.inner, ctx)
        s |= _ff(f"{p}.latents_context_attn_ff", dl, m, 0.0) if xff else {}
        for j in range(c.global_layers_per_block):
            s |= _attn(f"{p}.global_layers.{j}.0", dl, c.global_attention.inner)
            s |= _ff(f"{p}.global_layers.{j}.1", dl, m, c.dropout)
        s |= _attn(f"{p}.patches_attend_to_latents", dp, c.write_attention.inner, dl)
        s |= _ff(f"{p}.patches_cross_attn_ff", dp, m, 0.0) if xff else {}
    return s


def _res(prefix, cin, cout):
    d = {
        f"{prefix}.norm1.weight": (cin,),
        f"{prefix}.norm1.bias": (cin,),
        f"{prefix}.conv1.weight": (cout, cin, 3),
        f"{prefix}.conv1.bias": (cout,),
        f"{prefix}.norm2.weight": (cout,),
        f"{prefix}.norm2.bias": (cout,),
        f"{prefix}.conv2.weight": (cout, cout, 3),
        f"{prefix}.conv2.bias": (cout,),
    }
    if cin != cout:
        d |= {f"{prefix}.nin_shortcut.weight": (cout, cin, 1), f"{prefix}.nin_shortcut.bias": (cout,)}
    return d


def _mid(prefix, c):
    d = _res(f"{prefix}.block_1", c, c) | _res(f"{prefix}.block_2", c, c)
    d |= {f"{prefix}.attn_1.norm.weight": (c,), f"{prefix}.attn_1.norm.bias": (c,)}
    for n in ("q", "k", "v", "proj_out"):
        d |= {f"{prefix}.attn_1.{n}.weight": (c, c, 1), f"{prefix}.attn_1.{n}.bias": (c,)}
    return d


def official_vae_shapes(v):
    s = {"encoder.conv_in.weight": (v.ch, v.mel_bins, 3), "encoder.conv_in.bias": (v.ch,)}
    cin = v.ch
    for i, mult in enumerate(v.ch_mult):
        cout = v.ch * mult
        for j in range(v.num_res_blocks):
            s |= _res(f"encoder.down.{i}.block.{j}", cin, cout)
            cin = cout
        if i != len(v.ch_mult) - 1:
            s |= {
                f"encoder.down.{i}.downsample.conv.weight": (cout, cout, 3),
                f"encoder.down.{i}.downsample.conv.bias": (cout,),
            }
    s |= _mid("encoder.mid", cin)
    s |= {
        "encoder.norm_out.weight": (cin,),
        "encoder.norm_out.bias": (cin,),
        "encoder.conv_out.weight": (2 * v.z_channels, cin, 3),
        "encoder.conv_out.bias": (2 * v.z_channels,),
    }
    top = v.ch * v.ch_mult[-1]
    s |= {"decoder.conv_in.weight": (top, v.z_channels, 3), "decoder.conv_in.bias": (top,)}
    s |= _mid("decoder.mid", top)
    cin = top
    for level in reversed(range(len(v.ch_mult))):  # official up[level], executed from the last level down
        cout = v.ch * v.ch_mult[level]
        for j in range(v.num_res_blocks + 1):
            s |= _res(f"decoder.up.{level}.block.{j}", cin, cout)
            cin = cout
        if level != 0:
            s |= {
                f"decoder.up.{level}.upsample.conv.weight": (cout, cout, 3),
                f"decoder.up.{level}.upsample.conv.bias": (cout,),
            }
    s |= {
        "decoder.norm_out.weight": (cin,),
        "decoder.norm_out.bias": (cin,),
        "decoder.conv_out.weight": (v.mel_bins, cin, 3),
        "decoder.conv_out.bias": (v.mel_bins,),
    }
    s |= {
        "quant_conv.weight": (2 * v.embed_dim, 2 * v.z_channels, 1),
        "quant_conv.bias": (2 * v.embed_dim,),
        "post_quant_conv.weight": (v.z_channels, v.embed_dim, 1),
        "post_quant_conv.bias": (v.z_channels,),
    }
    return s


def official_hifigan_shapes(h, weight_norm: bool):
    def conv(prefix, cout, cin, k, transposed=False):
        shape = (cin, cout, k) if transposed else (cout, cin, k)
        if weight_norm:
            g = (cin, 1, 1) if transposed else (cout, 1, 1)
            return {f"{prefix}.weight_g": g, f"{prefix}.weight_v": shape, f"{prefix}.bias": (cout,)}
        return {f"{prefix}.weight": shape, f"{prefix}.bias": (cout,)}

    ch = h.upsample_initial_channel
    s = conv("conv_pre", ch, h.num_mels, 7)
    flat = 0
    for i, (u, k) in enumerate(zip(h.upsample_rates, h.upsample_kernel_sizes)):
        cin, cout = ch // 2**i, ch // 2 ** (i + 1)
        s |= conv(f"ups.{i}", cout, cin, k, transposed=True)
        for kk, dil in zip(h.resblock_kernel_sizes, h.resblock_dilation_sizes):
            for n in range(len(dil)):
                s |= conv(f"resblocks.{flat}.convs1.{n}", cout, cout, kk)
                s |= conv(f"resblocks.{flat}.convs2.{n}", cout, cout, kk)
            flat += 1
    s |= conv("conv_post", 1, ch // 2 ** len(h.upsample_rates), 7)
    return s


def _roberta_keys():
    from transformers import RobertaConfig, RobertaModel

    t = CFG.conditioning.clap_text
    rc = RobertaConfig(
        **{
            k: t[k]
            for k in (
                "vocab_size",
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
                "max_position_embeddings",
                "type_vocab_size",
                "layer_norm_eps",
                "pad_token_id",
            )
        }
    )
    return {k: tuple(v.shape) for k, v in RobertaModel(rc).state_dict().items()}


def official_clap_shapes():
    t = CFG.conditioning.clap_text
    s = {f"text_branch.{k}": v for k, v in _roberta_keys().items()}
    s |= {"text_branch.embeddings.position_ids": (1, t["max_position_embeddings"])}
    h, p = t["hidden_size"], t["projection_dim"]
    s |= {
        "text_projection.0.weight": (p, h),
        "text_projection.0.bias": (p,),
        "text_projection.2.weight": (p, p),
        "text_projection.2.bias": (p,),
        "text_transform.sequential.0.weight": (p, p),
        "audio_projection.0.weight": (p, 8),
        "audio_branch.patch_embed.proj.weight": (8, 1, 4, 4),
        "logit_scale_a": (),
        "logit_scale_t": (),
    }
    return s


def _t5_keys():
    from transformers import T5Config, T5EncoderModel

    return {k: tuple(v.shape) for k, v in T5EncoderModel(T5Config(**CFG.conditioning.t5)).state_dict().items()}


def _fill(shapes: dict, gen: torch.Generator) -> dict:
    out = {}
    for k, s in shapes.items():
        if k.endswith(".beta"):
            out[k] = torch.zeros(s)
        elif k.endswith("position_ids"):
            out[k] = torch.arange(s[-1])[None]
        elif k.endswith("token_type_ids"):
            out[k] = torch.zeros(s, dtype=torch.long)
        elif k.endswith("weight_g"):
            out[k] = torch.rand(s, generator=gen) + 0.5
        else:
            out[k] = torch.randn(s, generator=gen) * 0.2
    return out


def official_genau_state(gen: torch.Generator, fit=None) -> dict[str, torch.Tensor]:
    sd = {}
    sd |= {f"model.diffusion_model.{k}": v for k, v in _fill(official_fit_shapes(fit or CFG.fit), gen).items()}
    sd |= {f"first_stage_model.{k}": v for k, v in _fill(official_vae_shapes(CFG.vae), gen).items()}
    sd |= {
        f"first_stage_model.vocoder.{k}": v for k, v in _fill(official_hifigan_shapes(CFG.vocoder, False), gen).items()
    }
    sd |= {
        "first_stage_model.loss.logvar": torch.zeros(()),
        "first_stage_model.loss.discriminator.main.0.weight": torch.randn(8, 1, 4, 4, generator=gen),
    }
    sd |= {f"cond_stage_models.0.model.{k}": v for k, v in _fill(official_clap_shapes(), gen).items()}
    sd |= {
        "cond_stage_models.0.mel_transform.spectrogram.window": torch.ones(16),
        "cond_stage_models.0.mel_transform.mel_scale.fb": torch.ones(9, 4),
    }
    sd |= {f"cond_stage_models.1.model.{k}": v for k, v in _fill(_t5_keys(), gen).items()}
    sd["cond_stage_models.1.model.encoder.embed_tokens.weight"] = sd["cond_stage_models.1.model.shared.weight"]
    sd |= {
        "clap.model.audio_branch.patch_embed.proj.weight": torch.randn(8, 1, 4, 4, generator=gen),
        "scale_factor": torch.tensor(0.75),
        "logvar": torch.zeros(1000),
        "alphas_cumprod": torch.rand(1000, generator=gen),
        "alphas_cumprod_prev": torch.rand(1000, generator=gen),
        "sqrt_alphas_cumprod": torch.rand(1000, generator=gen),
        "sqrt_one_minus_alphas_cumprod": torch.rand(1000, generator=gen),
    }
    return sd


LAYOUT = {"clap": 0, "t5": 1, "dataset_ids": 2}


# ------------------------------------------------------ functional reference of the official FIT ---


def _ln(x, sd, p):
    return F.layer_norm(x, x.shape[-1:], sd[f"{p}.gamma"], sd[f"{p}.beta"])


def _ref_attn(sd, p, x, heads, context=None):
    if context is not None:
        context = _ln(context, sd, f"{p}.norm_context")
    x = _ln(x, sd, f"{p}.norm")
    context = x if context is None else context
    q = x @ sd[f"{p}.to_q.weight"].T
    k, v = (context @ sd[f"{p}.to_kv.weight"].T).chunk(2, dim=-1)
    b, n, _ = q.shape
    q, k, v = (t.reshape(b, t.shape[1], heads, -1).permute(0, 2, 1, 3) for t in (q, k, v))
    att = torch.softmax(torch.einsum("bhid,bhjd->bhij", q * q.shape[-1] ** -0.5, k), dim=-1)
    out = torch.einsum("bhij,bhjd->bhid", att, v).permute(0, 2, 1, 3).reshape(b, n, -1)
    return out @ sd[f"{p}.to_out.weight"].T


def _ref_ff(sd, p, x):
    if f"{p}.norm.gamma" not in sd:  # use_cross_attention_feedforward: false -> nn.Identity()
        return x
    x = _ln(x, sd, f"{p}.norm")
    h = F.gelu(F.linear(x, sd[f"{p}.net.0.weight"], sd[f"{p}.net.0.bias"]))
    i = 3 if f"{p}.net.3.weight" in sd else 2
    return F.linear(h, sd[f"{p}.net.{i}.weight"], sd[f"{p}.net.{i}.bias"])


def reference_fit(sd, c, x, t, summary, ds):
    """The official FIT forward (FITBlockV5, conditioning in context), eval mode, on official keys.
    A cross-attention feed-forward absent from `sd` is FITBlockV5's `nn.Identity()`, still added
    as a residual (`latents = self.latents_context_attn_ff(latents) + latents`)."""
    b = x.shape[0]
    w = sd["time_mlp.0.weights"]
    tt = t.float()[:, None]
    f = tt * w[None] * 2 * math.pi
    temb = torch.cat([tt, f.sin(), f.cos()], -1)
    temb = F.linear(
        F.gelu(F.linear(temb, sd["time_mlp.1.weight"], sd["time_mlp.1.bias"])),
        sd["time_mlp.3.weight"],
        sd["time_mlp.3.bias"],
    )
    dsemb = F.linear(
        F.one_hot(ds, c.dataset_ids_count).float(),
        sd["dataset_id_conditioning_mlp.0.weight"],
        sd["dataset_id_conditioning_mlp.0.bias"],
    )
    context = torch.cat(
        [(summary @ sd["context_projection_summary_text_embeddings.weight"].T)[:, None], temb[:, None], dsemb[:, None]],
        1,
    )
    patches = F.linear(x.permute(0, 2, 1), sd["to_patches.0.weight"], sd["to_patches.0.bias"])
    patches = (
        F.layer_norm(patches, patches.shape[-1:], sd["to_patches.1.weight"], sd["to_patches.1.bias"]) + sd["patches_pe"]
    )
    latents = sd["latents"][None].expand(b, -1, -1)
    g, gs, lpg = c.groups, c.group_size, c.latents_per_group
    for blk in range(c.blocks + 1):
        p = f"blocks.{blk}"
        gp = patches.reshape(b * g, gs, -1)
        for j in range(c.local_layers_per_block):
            gp = _ref_attn(sd, f"{p}.local_layers.{j}.0", gp, c.local_attention.heads) + gp
            gp = _ref_ff(sd, f"{p}.local_layers.{j}.1", gp) + gp
        if blk < c.blocks:
            latents = (
                _ref_attn(sd, f"{p}.latents_attend_to_context", latents, c.context_attention.heads, context) + latents
            )
            latents = _ref_ff(sd, f"{p}.latents_context_attn_ff", latents) + latents
            gl = latents.reshape(b * g, lpg, -1)
            gl = _ref_attn(sd, f"{p}.latents_attend_to_patches", gl, c.read_attention.heads, gp) + gl
            gl = _ref_ff(sd, f"{p}.latents_cross_attn_ff", gl) + gl
            latents = gl.reshape(b, c.latent_count, -1)
            for j in range(c.global_layers_per_block):
                latents = _ref_attn(sd, f"{p}.global_layers.{j}.0", latents, c.global_attention.heads) + latents
                latents = _ref_ff(sd, f"{p}.global_layers.{j}.1", latents) + latents
            gl = latents.reshape(b * g, lpg, -1)
            gp = _ref_attn(sd, f"{p}.patches_attend_to_latents", gp, c.write_attention.heads, gl) + gp
            gp = _ref_ff(sd, f"{p}.patches_cross_attn_ff", gp) + gp
        patches = gp.reshape(b, c.patches, -1)
    out = F.linear(_ln(patches, sd, "patch_to_pixels.0"), sd["patch_to_pixels.1.weight"], sd["patch_to_pixels.1.bias"])
    return out.permute(0, 2, 1)


# ------------------------------------------------------------------------------- tests ---


@pytest.fixture(scope="module")
def official_sd():
    return official_genau_state(torch.Generator().manual_seed(123))


@pytest.fixture(scope="module")
def mapped_model(official_sd):
    conv = off.convert_official_genau_state_dict(official_sd, CFG, LAYOUT)
    model = build_genau(CFG)
    own = model.state_dict()
    state = dict(conv.state)
    for k in own:
        if k.endswith(("position_ids", "token_type_ids")):
            state.setdefault(k, own[k])
    model.load_state_dict(state, strict=True)  # every parameter and buffer covered, no extra key
    return model, conv


def test_every_official_key_is_mapped_or_explicitly_ignored(official_sd, mapped_model):
    _, conv = mapped_model
    mapped_sources = len(official_sd) - len(conv.ignored)
    # official vocoder weights fold 1:1; the T5 tied embedding appears twice in both layouts
    assert len(conv.state) == mapped_sources
    expected_ignored = {k for k in official_sd if k.endswith(".beta")}
    expected_ignored |= {
        k
        for k in official_sd
        if k.startswith(("first_stage_model.loss.", "clap.", "cond_stage_models.0.mel_transform."))
    }
    expected_ignored |= {
        k
        for k in official_sd
        if k.startswith("cond_stage_models.0.model.")
        and not k.startswith(("cond_stage_models.0.model.text_branch.", "cond_stage_models.0.model.text_projection."))
    }
    expected_ignored |= {
        "cond_stage_models.0.model.text_branch.embeddings.position_ids",
        "logvar",
        "alphas_cumprod",
        "alphas_cumprod_prev",
        "sqrt_alphas_cumprod",
        "sqrt_one_minus_alphas_cumprod",
    }
    assert set(conv.ignored) == expected_ignored


def test_unknown_official_key_is_an_error(official_sd):
    bad = dict(official_sd)
    bad["model.diffusion_model.blocks.0.mystery.weight"] = torch.zeros(1)
    with pytest.raises(off.OfficialCheckpointError, match="mystery"):
        off.convert_official_genau_state_dict(bad, CFG, LAYOUT)


def test_values_land_where_the_official_modules_use_them(official_sd, mapped_model):
    model, _ = mapped_model
    sd = model.state_dict()
    M, V, C, B = "model.diffusion_model.", "first_stage_model.", "cond_stage_models.", "backbone."
    Q, T5 = "encoder.layer.0.attention.self.query.weight", "encoder.block.0.layer.1.DenseReluDense.wi_0.weight"
    pairs = {
        M + "blocks.0.latents_attend_to_patches.to_kv.weight": B + "blocks.0.read.attn.to_kv.weight",
        M + "blocks.0.patches_attend_to_latents.norm_context.gamma": B + "blocks.0.write.attn.norm_context.weight",
        M + "blocks.0.latents_attend_to_context.to_q.weight": B + "blocks.0.context_read.attn.to_q.weight",
        M + "blocks.1.local_layers.0.1.net.3.weight": B + "blocks.1.local_layers.0.ff.fc2.weight",
        M + "blocks.0.latents_cross_attn_ff.net.2.bias": B + "blocks.0.read.ff.fc2.bias",
        M + "patches_pe": B + "patch_pos",
        M + "self_conditioning_latents_projection.1.gamma": B + "self_cond_norm.weight",
        # official decoder.up is indexed by level (0 = full resolution, run last)
        V + "decoder.up.0.block.0.conv1.weight": "vae.decoder.up_blocks.2.resnets.0.conv1.weight",
        V + "decoder.up.2.upsample.conv.weight": "vae.decoder.up_blocks.0.upsample.conv.weight",
        V + "encoder.down.1.block.0.nin_shortcut.weight": "vae.encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
        V + "encoder.mid.attn_1.proj_out.weight": "vae.encoder.mid_block.attention.to_out.weight",
        V + "vocoder.ups.3.weight": "vocoder.upsamplers.3.weight",
        V + "vocoder.resblocks.2.convs1.1.weight": "vocoder.stacks.2.0.dilated.1.weight",
        C + "0.model.text_projection.2.weight": "conditioner.clap.text_projection.linear2.weight",
        C + "0.model.text_branch." + Q: "conditioner.clap.text_model." + Q,
        C + "1.model." + T5: "conditioner.t5." + T5,
    }
    for src, dst in pairs.items():
        torch.testing.assert_close(sd[dst], official_sd[src], msg=f"{src} -> {dst}")
    assert float(model.scale_factor) == pytest.approx(0.75)


def test_mapped_backbone_computes_the_official_fit_function(official_sd, mapped_model):
    model, _ = mapped_model
    fit_sd = {
        k[len("model.diffusion_model.") :]: v for k, v in official_sd.items() if k.startswith("model.diffusion_model.")
    }
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, CFG.fit.input_channels, CFG.fit.input_length, generator=gen)
    t = torch.tensor([3, 901])
    summary = torch.randn(2, CFG.fit.summary_channels, generator=gen)
    ds = torch.tensor([0, 5])
    with torch.no_grad():
        ours, _ = model.backbone(x, t, summary, ds)
        ref = reference_fit(fit_sd, CFG.fit, x, t, summary, ds)
    torch.testing.assert_close(ours, ref, atol=2e-4, rtol=2e-4)


def test_mapped_clap_tower_equals_laion_text_embedding(official_sd, mapped_model):
    """LAION: normalize(text_projection(roberta(...).pooler_output)) with the official weights."""
    from transformers import RobertaConfig, RobertaModel

    model, _ = mapped_model
    t = CFG.conditioning.clap_text
    rc = RobertaConfig(
        **{
            k: t[k]
            for k in (
                "vocab_size",
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
                "max_position_embeddings",
                "type_vocab_size",
                "layer_norm_eps",
                "pad_token_id",
            )
        }
    )
    rob = RobertaModel(rc).eval()
    pre = "cond_stage_models.0.model."
    rob.load_state_dict(
        {
            k[len(pre) + len("text_branch.") :]: v
            for k, v in official_sd.items()
            if k.startswith(pre + "text_branch.") and not k.endswith("position_ids")
        },
        strict=False,
    )
    tok = model.conditioner.clap_tokenizer
    enc = tok(["a dog barks", "rain"], padding=True, return_tensors="pt")
    with torch.no_grad():
        pooled = rob(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).pooler_output
        h = F.relu(
            F.linear(pooled, official_sd[pre + "text_projection.0.weight"], official_sd[pre + "text_projection.0.bias"])
        )
        ref = F.normalize(
            F.linear(h, official_sd[pre + "text_projection.2.weight"], official_sd[pre + "text_projection.2.bias"]),
            dim=-1,
        )
        ours = model.conditioner.encode_clap(["a dog barks", "rain"])
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_weight_norm_folding_matches_torch_weight_norm():
    from genau_core.audio.hifigan import fold_weight_norm

    gen = torch.Generator().manual_seed(0)
    for conv in (torch.nn.Conv1d(4, 6, 3), torch.nn.ConvTranspose1d(6, 4, 8, 4)):
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
        with warnings.catch_warnings():  # the old API is the one that wrote the official weight_g / weight_v
            warnings.simplefilter("ignore", FutureWarning)
            wn = torch.nn.utils.weight_norm(conv)
        sd = {f"c.{k}": v for k, v in wn.state_dict().items()}
        assert "c.weight_g" in sd and "c.weight_v" in sd
        folded = fold_weight_norm(sd)["c.weight"]
        torch.testing.assert_close(folded, conv.weight.detach(), atol=1e-6, rtol=1e-6)


def _tiny_official_yaml() -> dict:
    """The official yaml layout (settings/simple_runs/genau.yaml) with genau-tiny sizes."""
    f, v, vl = CFG.fit, CFG.vae, CFG.vae_loss
    attn = {"heads": f.local_attention.heads, "dim_head": f.local_attention.dim_head}
    return {
        "preprocessing": {
            "audio": {"sampling_rate": 16000, "max_wav_value": 32768.0, "duration": 10.24},
            "stft": {"filter_length": 1024, "hop_length": 160, "win_length": 1024},
            "mel": {"n_mel_channels": 64, "mel_fmin": 0, "mel_fmax": 8000},
        },
        "model": {
            "target": "src.models.genau_ddpm.GenAu",
            "params": {
                "first_stage_config": {
                    "target": "src.modules.latent_encoder.autoencoder_1d.AutoencoderKL1D",
                    "params": {
                        "embed_dim": v.embed_dim,
                        "lossconfig": {
                            "target": "src.losses.LPIPSWithDiscriminator",
                            "params": {
                                "disc_start": vl.disc_start,
                                "kl_weight": 1000.0,
                                "disc_weight": 0.5,
                                "disc_in_channels": 1,
                            },
                        },
                        "ddconfig": {
                            "double_z": True,
                            "mel_bins": 64,
                            "z_channels": v.z_channels,
                            "resolution": 256,
                            "downsample_time": False,
                            "in_channels": 64,
                            "out_ch": 64,
                            "ch": v.ch,
                            "ch_mult": list(v.ch_mult),
                            "num_res_blocks": v.num_res_blocks,
                            "attn_resolutions": [],
                            "dropout": 0.0,
                        },
                    },
                },
                "linear_start": 0.0015,
                "linear_end": 0.0195,
                "timesteps": 1000,
                "unconditional_prob_cfg": 0.1,
                "parameterization": "eps",
                "backbone_type": "fit",
                "unet_config": {
                    "target": "src.modules.fit.fit_audio.FIT",
                    "params": {
                        "weight_initializer": {
                            "target": "src.modules.initializers.initializers.RINWeightScalerInitializer",
                            "scale": 0.57735026919,
                        },
                        "fit_block_module": "src.modules.fit.layers.fit_layers.FITBlockV5",
                        "context_channels": f.context_channels,
                        "summary_text_embeddings_channels": f.summary_channels,
                        "conditioning_in_context": True,
                        "time_pe_type": "learned",
                        "use_dataset_id_conditioning": True,
                        "use_resolution_conditioning": False,
                        "input_size": [1, f.input_length, 1],
                        "patch_size": [1, f.patch_size, 1],
                        "group_size": [1, f.group_size, 1],
                        "input_channels": f.input_channels,
                        "patch_channels": f.patch_channels,
                        "fit_blocks_count": f.blocks,
                        "local_layers_per_block": f.local_layers_per_block,
                        "global_layers_per_block": f.global_layers_per_block,
                        "latent_count": f.latent_count,
                        "latent_channels": f.latent_channels,
                        "self_conditioning_ff_config": {},
                        "fit_block_config": {
                            "attention_class": "src.modules.fit.layers.rin_layers.Attention",
                            "ff_class": "src.modules.fit.layers.rin_layers.FeedForward",
                            "drop_units": 0.1,
                            "drop_path": 0.0,
                            "use_cross_attention_feedforward": True,
                            "default_attention_config": attn,
                            "read_attention_config": attn,
                            "read_context_attention_config": attn,
                            "read_latent_conditioning_attention_config": attn,
                            "write_attention_config": attn,
                            "local_attention_config": attn,
                            "global_attention_config": attn,
                            "ff_config": {},
                        },
                    },
                },
                "cond_stage_config": {
                    "film_clap_cond1": {
                        "cond_stage_key": "text",
                        "conditioning_key": "film",
                        "target": "src.modules.conditional.conditional_models.CLAPAudioEmbeddingClassifierFreev2",
                        "params": {
                            "pretrained_path": "clap_htsat_tiny",
                            "sampling_rate": 16000,
                            "embed_mode": "text",
                            "amodel": "HTSAT-tiny",
                        },
                    },
                    "film_flan_t5_cond2": {
                        "cond_stage_key": "text",
                        "conditioning_key": "film",
                        "target": "src.modules.conditional.conditional_models.FlanT5HiddenState",
                        "params": {
                            "text_encoder_name": "google/flan-t5-large",
                            "freeze_text_encoder": True,
                            "return_embeds": True,
                            "pool_tokens": True,
                        },
                    },
                    "noncond_dataset_ids": {
                        "cond_stage_key": "all",
                        "conditioning_key": "ignore",
                        "target": "src.modules.conditional.conditional_models.DatasetIDs",
                        "params": {
                            "encode_dataset_ids": False,
                            "dataset2id": {"audiocaps": 0, "clotho": 1, "autocap": 9, "unconditional": 0},
                        },
                    },
                },
                "evaluation_params": {
                    "unconditional_guidance_scale": 3.5,
                    "ddim_sampling_steps": 200,
                    "n_candidates_per_samples": 1,
                },
            },
        },
    }


def _write_yaml_with_module_tags(path, y):
    import yaml

    text = yaml.safe_dump(y, sort_keys=False)
    for target in (
        "src.modules.fit.layers.fit_layers.FITBlockV5",
        "src.modules.fit.layers.rin_layers.Attention",
        "src.modules.fit.layers.rin_layers.FeedForward",
    ):
        text = text.replace(f": {target}", f": !module {target}")
    path.write_text(text)


def test_yaml_to_config_reproduces_the_tiny_layout(tmp_path):
    p = tmp_path / "genau-tiny.yaml"
    _write_yaml_with_module_tags(p, _tiny_official_yaml())
    assert "!module" in p.read_text()
    y = off.load_official_yaml(p)
    cfg = off.config_from_official_yaml(
        y,
        name="genau-tiny",
        vocoder=CFG.vocoder,
        t5_config=CFG.conditioning.t5,
        clap_text_config=CFG.conditioning.clap_text,
    )
    assert cfg.fit == CFG.fit
    assert cfg.vae == CFG.vae
    assert cfg.mel == CFG.mel
    assert cfg.conditioning.summary_order == ("clap", "t5")
    assert cfg.conditioning.dataset_ids["audiocaps"] == 0 and "unconditional" not in cfg.conditioning.dataset_ids
    assert (cfg.diffusion.beta_start, cfg.diffusion.beta_end, cfg.diffusion.steps, cfg.diffusion.guidance) == (
        0.0015,
        0.0195,
        200,
        3.5,
    )
    assert off.cond_stage_layout(y["model"]["params"]) == LAYOUT


def write_release_files(
    folder,
    *,
    size: str = "tiny",
    seed: int = 123,
    stem: str | None = None,
    yaml: dict | None = None,
    extra_state: dict | None = None,
):
    """Release-named files (Lightning ckpt, yaml with !module tags, VAE, HiFi-GAN, CLAP, HF snapshots), tiny sizes.
    `stem` names the ckpt / yaml (default genau-full-{size}); `yaml` replaces the tiny yaml; `extra_state` is
    added to the checkpoint's state_dict (e.g. model_ema.* buffers)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    stem = stem or f"genau-full-{size}"
    gen = torch.Generator().manual_seed(seed)
    sd = official_genau_state(gen)
    torch.save(
        {"state_dict": {**sd, **(extra_state or {})}, "global_step": 1, "hyper_parameters": {"note": "tiny"}},
        folder / f"{stem}.ckpt",
    )
    _write_yaml_with_module_tags(folder / f"{stem}.yaml", yaml or _tiny_official_yaml())
    vae_sd = {k[len("first_stage_model.") :]: v for k, v in sd.items() if k.startswith("first_stage_model.")}
    torch.save({"state_dict": vae_sd}, folder / "1dvae_64_344999.ckpt")
    torch.save(
        {"generator": _fill(official_hifigan_shapes(CFG.vocoder, True), gen)}, folder / "hifigan_16k_64bins.ckpt"
    )
    (folder / "hifigan_16k_64bins.json").write_text(
        json.dumps({"resblock": "1", **CFG.vocoder.to_dict(), "segment_size": 8192})
    )
    clap = {
        f"module.{k[len('cond_stage_models.0.model.') :]}": v
        for k, v in sd.items()
        if k.startswith("cond_stage_models.0.model.")
    }
    torch.save({"state_dict": clap, "epoch": 3}, folder / "clap_htsat_tiny.pt")
    t5_dir, rob_dir = folder / "flan-t5-large", folder / "roberta-base"
    model = build_genau(CFG)
    model.conditioner.t5_tokenizer.save_pretrained(t5_dir)
    model.conditioner.clap_tokenizer.save_pretrained(rob_dir)
    (t5_dir / "config.json").write_text(json.dumps({"model_type": "t5", **CFG.conditioning.t5}))
    t5w = {
        k[len("cond_stage_models.1.model.") :]: v.clone()
        for k, v in sd.items()
        if k.startswith("cond_stage_models.1.model.") and k != "cond_stage_models.1.model.encoder.embed_tokens.weight"
    }
    t5w["decoder.final_layer_norm.weight"] = torch.ones(
        CFG.conditioning.t5["d_model"]
    )  # seq2seq snapshot: decoder dropped
    save_file(t5w, str(t5_dir / "model.safetensors"))
    rc = {k: v for k, v in CFG.conditioning.clap_text.items() if k != "projection_dim"}
    (rob_dir / "config.json").write_text(json.dumps({"model_type": "roberta", **rc}))
    files = off.OfficialFiles(
        ckpt=folder / f"{stem}.ckpt",
        yaml=folder / f"{stem}.yaml",
        vae_ckpt=folder / "1dvae_64_344999.ckpt",
        hifigan_ckpt=folder / "hifigan_16k_64bins.ckpt",
        hifigan_json=folder / "hifigan_16k_64bins.json",
        clap_ckpt=folder / "clap_htsat_tiny.pt",
        t5_dir=t5_dir,
        roberta_dir=rob_dir,
    )
    return files, sd


def test_load_official_files_end_to_end(tmp_path):
    """Release-shaped files on disk -> a model that generates; the main checkpoint overrides component files."""
    files, official = write_release_files(tmp_path, seed=123)
    loaded = off.load_official_genau(files, name="genau-tiny-official")
    assert loaded.cfg.fit == CFG.fit and loaded.cfg.conditioning.clap_dim == CFG.conditioning.clap_dim
    sd = loaded.state_dict()
    torch.testing.assert_close(sd["backbone.latents"], official["model.diffusion_model.latents"])
    # the main checkpoint overrides the HiFi-GAN file, as in the official constructor order
    torch.testing.assert_close(sd["vocoder.conv_pre.weight"], official["first_stage_model.vocoder.conv_pre.weight"])
    assert float(loaded.scale_factor) == pytest.approx(0.75)
    waves = GenAuPipeline(loaded)(["a dog barks"], [0], steps=2, guidance=3.0, duration_s=1.0)
    assert waves[0].shape == (16000,) and np.isfinite(waves[0]).all()
