"""Helpers shared by the baseline plugin tests (tests/test_plugin_*.py)."""

from __future__ import annotations

from typing import Sequence, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from bench.plugins.base import TextToAudioPlugin

PluginT = TypeVar("PluginT", bound=TextToAudioPlugin)


def loaded_tiny(plugin_cls: type[PluginT]) -> PluginT:
    """A tiny twin, loaded once (for a module-scoped fixture)."""
    plugin = plugin_cls()
    plugin.load()
    plugin._loaded = True
    return plugin


def direct_diffusers_audio(
    pipeline_cls: type,
    components: dict,
    prompts: Sequence[str],
    seeds: Sequence[int],
    *,
    steps: int,
    guidance: float,
    duration: float,
) -> np.ndarray:
    """Reference: a diffusers audio pipeline called directly, one generator per prompt."""
    pipe = pipeline_cls(**components)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        prompt=list(prompts),
        num_inference_steps=steps,
        guidance_scale=guidance,
        audio_length_in_s=duration,
        num_waveforms_per_prompt=1,
        generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
        output_type="np",
    )
    return np.asarray(out.audios, dtype=np.float32)


# --- the LDM KL autoencoder (`ldm.models.autoencoder.AutoencoderKL`, AudioLDM's VAE), from the official code ---


def official_ldm_vae_shapes(
    cfg, *, resolution: int = 0, attn_resolutions: Sequence[int] = ()
) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the official Encoder/Decoder/quant convs (attention inside the levels whose
    resolution is in `attn_resolutions`; AudioLDM's VAE has none), in the official module order."""
    s: dict[str, tuple[int, ...]] = {}

    def conv(n, i, o, k):
        s[f"{n}.weight"], s[f"{n}.bias"] = (o, i, k, k), (o,)

    def norm(n, c):
        s[f"{n}.weight"], s[f"{n}.bias"] = (c,), (c,)

    def res(n, i, o):
        norm(f"{n}.norm1", i)
        conv(f"{n}.conv1", i, o, 3)
        norm(f"{n}.norm2", o)
        conv(f"{n}.conv2", o, o, 3)
        if i != o:
            conv(f"{n}.nin_shortcut", i, o, 1)

    def attn(n, c):
        norm(f"{n}.norm", c)
        for a in ("q", "k", "v", "proj_out"):
            conv(f"{n}.{a}", c, c, 1)

    ch, mult, nrb, n = cfg.ch, cfg.ch_mult, cfg.num_res_blocks, len(cfg.ch_mult)
    conv("encoder.conv_in", cfg.in_channels, ch, 3)
    in_mult, curr = (1,) + tuple(mult), resolution
    for level in range(n):
        block_in, block_out = ch * in_mult[level], ch * mult[level]
        for j in range(nrb):
            res(f"encoder.down.{level}.block.{j}", block_in, block_out)
            block_in = block_out
            if curr in attn_resolutions:
                attn(f"encoder.down.{level}.attn.{j}", block_in)
        if level != n - 1:
            conv(f"encoder.down.{level}.downsample.conv", block_in, block_in, 3)
            curr //= 2
    res("encoder.mid.block_1", block_in, block_in)
    attn("encoder.mid.attn_1", block_in)
    res("encoder.mid.block_2", block_in, block_in)
    norm("encoder.norm_out", block_in)
    conv("encoder.conv_out", block_in, 2 * cfg.z_channels, 3)
    block_in, curr = ch * mult[-1], resolution // 2 ** (n - 1)
    conv("decoder.conv_in", cfg.z_channels, block_in, 3)
    res("decoder.mid.block_1", block_in, block_in)
    attn("decoder.mid.attn_1", block_in)
    res("decoder.mid.block_2", block_in, block_in)
    for level in reversed(range(n)):
        block_out = ch * mult[level]
        for j in range(nrb + 1):
            res(f"decoder.up.{level}.block.{j}", block_in, block_out)
            block_in = block_out
            if curr in attn_resolutions:
                attn(f"decoder.up.{level}.attn.{j}", block_in)
        if level != 0:
            conv(f"decoder.up.{level}.upsample.conv", block_in, block_in, 3)
            curr *= 2
    norm("decoder.norm_out", block_in)
    conv("decoder.conv_out", block_in, cfg.out_ch, 3)
    conv("quant_conv", 2 * cfg.z_channels, 2 * cfg.embed_dim, 1)
    conv("post_quant_conv", cfg.embed_dim, cfg.z_channels, 1)
    return s


def reference_ldm_vae_decode(sd: dict, cfg, z: torch.Tensor) -> torch.Tensor:
    """The official AutoencoderKL.decode written out with functional ops on the official keys."""
    g = cfg.norm_num_groups

    def gn(x, n):
        return F.group_norm(x, g, sd[f"{n}.weight"], sd[f"{n}.bias"], eps=1e-6)

    def conv(x, n, pad):
        return F.conv2d(x, sd[f"{n}.weight"], sd[f"{n}.bias"], padding=pad)

    def resnet(x, n):
        h = conv(F.silu(gn(x, f"{n}.norm1")), f"{n}.conv1", 1)
        h = conv(F.silu(gn(h, f"{n}.norm2")), f"{n}.conv2", 1)
        return (conv(x, f"{n}.nin_shortcut", 0) if f"{n}.nin_shortcut.weight" in sd else x) + h

    def attn(x, n):
        h = gn(x, f"{n}.norm")
        q, k, v = (conv(h, f"{n}.{a}", 0) for a in ("q", "k", "v"))
        b, c, hh, ww = q.shape
        w = torch.softmax(torch.bmm(q.reshape(b, c, -1).permute(0, 2, 1), k.reshape(b, c, -1)) * c**-0.5, dim=2)
        return x + conv(torch.bmm(v.reshape(b, c, -1), w.permute(0, 2, 1)).reshape(b, c, hh, ww), f"{n}.proj_out", 0)

    x = conv(conv(z, "post_quant_conv", 0), "decoder.conv_in", 1)
    x = resnet(attn(resnet(x, "decoder.mid.block_1"), "decoder.mid.attn_1"), "decoder.mid.block_2")
    for level in reversed(range(len(cfg.ch_mult))):
        for j in range(cfg.num_res_blocks + 1):
            x = resnet(x, f"decoder.up.{level}.block.{j}")
            if f"decoder.up.{level}.attn.{j}.q.weight" in sd:
                x = attn(x, f"decoder.up.{level}.attn.{j}")
        if level != 0:
            x = conv(F.interpolate(x, scale_factor=2.0, mode="nearest"), f"decoder.up.{level}.upsample.conv", 1)
    return conv(F.silu(gn(x, "decoder.norm_out")), "decoder.conv_out", 1)
