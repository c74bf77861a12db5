"""Tango / Tango 2: loading the released file layout through our key mapping, and the tiny twins.

The official-layout state dicts are generated here for the tiny config, following the official
code (declare-lab/tango `audioldm/variational_autoencoder/modules.py`, `audioldm/hifigan/models.py`,
`models.py`): the test enumerates the official module names itself, independently of the mapping
under test, and checks the mapped modules numerically against a functional transcription of the
official decoder and vocoder.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.plugins.tango import (
    TANGO_CONFIG,
    TANGO_TINY_CONFIG,
    CheckpointMappingError,
    LdmVaeConfig,
    Tango,
    Tango2,
    Tango2Tiny,
    TangoModel,
    TangoTiny,
    build_scheduler,
    build_text_encoder,
    build_tiny_tango,
    build_unet,
    map_hifigan_state_dict,
    save_official_tango_folder,
)
from tests.plugin_helpers import loaded_tiny, official_ldm_vae_shapes, reference_ldm_vae_decode

STEPS = 3
SHORT = 2.0
PROMPTS = ["a dog barks while birds chirp", "rain falls on a tin roof with distant thunder", "a bell rings"]
CFG = TANGO_TINY_CONFIG


# --- the official layout, enumerated from the official code ---------------------------------


def official_hifigan_shapes(cfg) -> dict[str, tuple[int, ...]]:
    """audioldm.hifigan.Generator after remove_weight_norm (as stored under `vocoder.`)."""
    c0 = cfg.upsample_initial_channel
    shapes = {"conv_pre.weight": (c0, cfg.num_mels, 7), "conv_pre.bias": (c0,)}
    k_count = len(cfg.resblock_kernel_sizes)
    for i, k in enumerate(cfg.upsample_kernel_sizes):
        cin, cout = c0 // 2**i, c0 // 2 ** (i + 1)
        shapes[f"ups.{i}.weight"], shapes[f"ups.{i}.bias"] = (cin, cout, k), (cout,)
        for j, rk in enumerate(cfg.resblock_kernel_sizes):
            for conv in ("convs1", "convs2"):
                for m in range(3):  # the official ResBlock always has 3 convs per list
                    shapes[f"resblocks.{i * k_count + j}.{conv}.{m}.weight"] = (cout, cout, rk)
                    shapes[f"resblocks.{i * k_count + j}.{conv}.{m}.bias"] = (cout,)
    shapes["conv_post.weight"], shapes["conv_post.bias"] = (1, cout, 7), (1,)
    return shapes


def random_state(shapes: dict, seed: int, scale: float = 0.2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes.items():
        t = torch.randn(shape, generator=g) * scale
        if name.endswith("norm1.weight") or name.endswith("norm2.weight") or ".norm" in name and name.endswith("weight"):
            t = 1.0 + 0.1 * t
        out[name] = t
    return out


def official_vae_file(seed: int = 3) -> dict[str, torch.Tensor]:
    sd = random_state(official_ldm_vae_shapes(CFG.vae), seed)
    sd.update({f"vocoder.{k}": v for k, v in random_state(official_hifigan_shapes(CFG.vocoder), seed + 1, 0.3).items()})
    return sd


def official_main_file(seed: int = 5) -> dict[str, torch.Tensor]:
    """AudioDiffusion.state_dict(): `text_encoder.` (T5EncoderModel, incl. the tied embed copy) + `unet.`."""
    torch.manual_seed(seed)
    t5 = build_text_encoder(CFG)
    unet = build_unet(CFG)
    sd = {f"text_encoder.{k}": v.clone() for k, v in t5.state_dict().items()}
    sd.update({f"unet.{k}": v.clone() for k, v in unet.state_dict().items()})
    return sd


# --- functional transcription of the official decoder and vocoder ------------------------


def reference_hifigan(sd: dict, cfg, mel: torch.Tensor) -> torch.Tensor:
    """mel (B, mels, T) -> (B, samples), as audioldm.hifigan.Generator.forward."""
    x = F.conv1d(mel, sd["conv_pre.weight"], sd["conv_pre.bias"], padding=3)
    kc = len(cfg.resblock_kernel_sizes)
    for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
        x = F.conv_transpose1d(F.leaky_relu(x, 0.1), sd[f"ups.{i}.weight"], sd[f"ups.{i}.bias"], stride=u, padding=(k - u) // 2)
        total = 0
        for j, (rk, dil) in enumerate(zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes)):
            r, h = f"resblocks.{i * kc + j}", x
            for m, d in enumerate(dil):
                t = F.conv1d(F.leaky_relu(h, 0.1), sd[f"{r}.convs1.{m}.weight"], sd[f"{r}.convs1.{m}.bias"], dilation=d, padding=(rk * d - d) // 2)
                t = F.conv1d(F.leaky_relu(t, 0.1), sd[f"{r}.convs2.{m}.weight"], sd[f"{r}.convs2.{m}.bias"], padding=(rk - 1) // 2)
                h = h + t
            total = total + h
        x = total / kc
    x = F.conv1d(F.leaky_relu(x), sd["conv_post.weight"], sd["conv_post.bias"], padding=3)
    return torch.tanh(x).squeeze(1)


@pytest.fixture(scope="module")
def loaded() -> tuple[TangoModel, dict, dict]:
    """A tiny TangoModel filled from official-layout state dicts."""
    model = build_tiny_tango(seed=9)
    main_sd, vae_sd = official_main_file(), official_vae_file()
    model.load_official_state_dicts(main_sd, vae_sd)
    return model, main_sd, vae_sd


# --- key mapping -----------------------------------------------------------------------------


def test_official_layout_loads_with_no_missing_or_unexpected_keys(loaded):
    model, main_sd, vae_sd = loaded
    own_t5, own_unet = model.text_encoder.state_dict(), model.unet.state_dict()
    for key, value in main_sd.items():
        prefix, _, rest = key.partition(".")
        target = own_t5 if prefix == "text_encoder" else own_unet
        assert torch.equal(target[rest], value), key
    # every official VAE / vocoder tensor landed somewhere, with its values
    own = {**{f"vae.{k}": v for k, v in model.vae.state_dict().items()}, **{f"voc.{k}": v for k, v in model.vocoder.state_dict().items()}}
    landed = {round(float(v.double().sum()), 6) for v in own.values()}
    for key, value in vae_sd.items():
        assert round(float(value.double().sum()), 6) in landed, key
    assert len(vae_sd) == sum(1 for k in own if not k.endswith((".mean", ".scale"))) == len(own) - 2


def test_mapped_decoder_and_vocoder_match_the_official_computation(loaded):
    model, _, vae_sd = loaded
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, CFG.vae.embed_dim, 16, CFG.vocoder.num_mels // CFG.vae.downsample, generator=g)
    with torch.no_grad():
        ours_mel = model.vae.decode(z).sample
        ref_mel = reference_ldm_vae_decode(vae_sd, CFG.vae, z)
        torch.testing.assert_close(ours_mel, ref_mel, atol=1e-5, rtol=1e-4)
        voc_sd = {k[len("vocoder.") :]: v for k, v in vae_sd.items() if k.startswith("vocoder.")}
        ours_wave = model.vocoder(ref_mel.squeeze(1))  # SpeechT5HifiGan takes (B, T, mels)
        ref_wave = reference_hifigan(voc_sd, CFG.vocoder, ref_mel.squeeze(1).transpose(1, 2))
        torch.testing.assert_close(ours_wave, ref_wave, atol=1e-5, rtol=1e-4)
    assert ours_wave.shape == (2, 64 * 160)


def test_mapping_reports_missing_and_unexpected_keys():
    model = build_tiny_tango(seed=9)
    main_sd, vae_sd = official_main_file(), official_vae_file()
    broken = dict(main_sd)
    broken.pop("unet.conv_in.weight")
    with pytest.raises(CheckpointMappingError, match="1 missing.*unet.conv_in.weight|conv_in.weight"):
        model.load_official_state_dicts(broken, vae_sd)
    with pytest.raises(CheckpointMappingError, match="group_in"):
        model.load_official_state_dicts({**main_sd, "group_in.0.weight": torch.zeros(1)}, vae_sd)
    with pytest.raises(CheckpointMappingError, match="encoder.down.9"):
        model.load_official_state_dicts(main_sd, {**vae_sd, "encoder.down.9.block.0.conv1.weight": torch.zeros(1)})
    # the tied T5 embedding copy may be absent (newer saves) without error
    model.load_official_state_dicts({k: v for k, v in main_sd.items() if k != "text_encoder.encoder.embed_tokens.weight"}, vae_sd)


def test_weight_normed_vocoder_is_fused():
    plain = random_state(official_hifigan_shapes(CFG.vocoder), 4)
    normed = {}
    for key, value in plain.items():
        if key.endswith(".weight"):
            v = value * 3.0
            g = value.flatten(1).norm(dim=1).reshape(-1, *([1] * (value.dim() - 1)))
            normed[key[: -len("weight")] + "weight_v"], normed[key[: -len("weight")] + "weight_g"] = v, g
        else:
            normed[key] = value
    fused = map_hifigan_state_dict(normed)
    for key, value in map_hifigan_state_dict(plain).items():
        torch.testing.assert_close(fused[key], value, atol=1e-6, rtol=1e-5)
    assert "upsampler.0.weight" in fused and not any(k.startswith("ups.") for k in fused)


def test_vae_config_json_round_trip_and_unsupported_settings():
    official = TANGO_CONFIG.vae.to_official_json()
    assert LdmVaeConfig.from_official_json(official) == TANGO_CONFIG.vae
    bad = {**official, "ddconfig": {**official["ddconfig"], "attn_resolutions": [32]}}
    with pytest.raises(ValueError, match="attn_resolutions"):
        LdmVaeConfig.from_official_json(bad)


def test_real_config_shapes_and_scheduler():
    # 10 s -> 256 x 16 latents with 8 channels: the released (B, 8, 256, 16)
    assert TANGO_CONFIG.latent_shape(10.0) == (8, 256, 16)
    sched = build_scheduler(TANGO_CONFIG)
    assert sched.config.prediction_type == "v_prediction"
    sched.set_timesteps(200)
    assert sched.timesteps[0].item() == 995 and sched.timesteps[-1].item() == 0 and len(sched.timesteps) == 200
    d = Tango.info.defaults
    assert (d.steps, d.guidance, d.duration_s) == (200, 3.0, 10.0) and d.sampler.startswith("DDPM")
    assert Tango2.info.defaults == d and Tango2.repo_id == "declare-lab/tango2"


# --- loading a folder in the released layout ---------------------------------------------------


@pytest.mark.parametrize("cls,repo", [(Tango, "declare-lab/tango"), (Tango2, "declare-lab/tango2")])
def test_offline_status_names_what_is_missing(cls, repo, offline, tmp_path):
    ok, message = cls().checkpoint_status()
    assert not ok and repo in message and "pytorch_model_main.bin" in message
    with pytest.raises(FileNotFoundError, match=repo):
        cls().load()
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "main_config.json").write_text("{}")
    ok, message = cls(checkpoint=str(partial)).checkpoint_status()
    assert not ok and "pytorch_model_vae.bin" in message and "vae_config.json" in message
    # all files but no tokenizer: names google/flan-t5-large
    save_official_tango_folder(tmp_path / "notok", official_main_file(), official_vae_file(), CFG.vae)
    ok, message = cls(checkpoint=str(tmp_path / "notok")).checkpoint_status()
    assert not ok and "google/flan-t5-large" in message


def test_plugin_loads_a_released_layout_folder(loaded, offline, tmp_path):
    model, main_sd, vae_sd = loaded
    folder = tmp_path / "tango"
    save_official_tango_folder(folder, main_sd, vae_sd, CFG.vae, tokenizer=model.tokenizer)
    plugin = Tango(checkpoint=str(folder))
    plugin.config = CFG  # tiny dimensions; the loader and files are the real ones
    ok, message = plugin.checkpoint_status()
    assert ok and "tokenizer from" in message
    assert plugin.checkpoint_identity().startswith("sha256:")
    assert plugin.parameter_count() == model.parameter_count()
    waves = plugin.generate(PROMPTS[:2], seed=[1, 2], steps=2, duration=SHORT)
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    direct = model.sample(PROMPTS[:2], gens, steps=2, guidance=3.0, duration_s=SHORT)
    for w, d in zip(waves, direct):
        np.testing.assert_allclose(w, d.numpy()[: len(w)], atol=1e-6, rtol=0)


# --- the sampler, against a transcription of the official batched inference --------------------


def official_inference(model: TangoModel, prompts, seeds, steps, guidance, duration_s) -> torch.Tensor:
    """AudioDiffusion.inference + decode_first_stage + vocoder, batched as released (seeded generators)."""
    from diffusers.utils.torch_utils import randn_tensor

    tok, enc = model.tokenizer, model.text_encoder
    batch = tok(prompts, max_length=tok.model_max_length, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        pos = enc(input_ids=batch.input_ids, attention_mask=batch.attention_mask)[0]
        unc = tok([""] * len(prompts), max_length=pos.shape[1], padding="max_length", truncation=True, return_tensors="pt")
        neg = enc(input_ids=unc.input_ids, attention_mask=unc.attention_mask)[0]
        embeds = torch.cat([neg, pos])
        mask = torch.cat([unc.attention_mask, batch.attention_mask]) == 1
        sched = build_scheduler(model.config)
        sched.set_timesteps(steps)
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        lat = randn_tensor((len(prompts), *model.config.latent_shape(duration_s)), generator=gens) * sched.init_noise_sigma
        for t in sched.timesteps:
            inp = sched.scale_model_input(torch.cat([lat] * 2), t)
            out = model.unet(inp, t, encoder_hidden_states=embeds, encoder_attention_mask=mask).sample
            u, c = out.chunk(2)
            lat = sched.step(u + guidance * (c - u), t, lat, generator=gens).prev_sample
        mel = model.vae.decode(lat / model.config.vae.scale_factor).sample
        return model.vocoder(mel.squeeze(1))


@pytest.fixture(scope="module")
def tiny() -> TangoTiny:
    return loaded_tiny(TangoTiny)


def test_sampler_matches_the_official_batched_inference(tiny):
    seeds = [21, 22, 23]
    ours = tiny.model.sample(PROMPTS, [torch.Generator().manual_seed(s) for s in seeds], steps=STEPS, guidance=3.0, duration_s=SHORT)
    ref = official_inference(tiny.model, PROMPTS, seeds, STEPS, 3.0, SHORT)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


# --- tiny twins --------------------------------------------------------------------------------


def test_tiny_generates_ten_seconds_at_16k(tiny):
    assert tiny.info.tiny and tiny.weights == "random" and tiny.checkpoint_identity() == "random:seed=0"
    d = tiny.info.defaults
    assert (d.steps, d.guidance, d.duration_s) == (10, 3.0, 10.0)
    waves = tiny.generate(PROMPTS[:2], seed=0, steps=STEPS)
    for w in waves:
        assert w.dtype == np.float32 and w.shape == (160_000,) and np.isfinite(w).all() and w.std() > 1e-3
    assert not np.allclose(waves[0], waves[1])
    assert tiny.last_record.native_sample_rate == 16_000 and not tiny.last_record.resampled


def test_tiny_determinism_and_batch_independence(tiny):
    other = TangoTiny()
    a = tiny.generate(PROMPTS, seed=[1, 2, 3], steps=STEPS, duration=SHORT, batch_size=3)
    b = other.generate(PROMPTS[1:], seed=[2, 3], steps=STEPS, duration=SHORT)
    c = other.generate(PROMPTS[:1], seed=[1], steps=STEPS, duration=SHORT)
    np.testing.assert_allclose(a[1], b[0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(a[2], b[1], atol=1e-6, rtol=0)
    np.testing.assert_allclose(a[0], c[0], atol=1e-6, rtol=0)
    d = other.generate(PROMPTS[:1], seed=[4], steps=STEPS, duration=SHORT)
    assert np.abs(a[0] - d[0]).max() > 1e-3


def test_tango2_tiny_shares_the_builder_but_not_the_weights(tiny):
    t2 = Tango2Tiny()
    assert t2.checkpoint_identity() == "random:seed=1" and "seed (1)" in t2.info.notes
    assert t2.info.defaults == tiny.info.defaults and t2.info.tiny
    w1 = tiny.generate(PROMPTS[:1], seed=[5], steps=2, duration=SHORT)[0]
    w2 = t2.generate(PROMPTS[:1], seed=[5], steps=2, duration=SHORT)[0]
    assert t2.model.config == tiny.model.config and t2.parameter_count() == tiny.parameter_count()
    assert np.abs(w1 - w2).max() > 1e-3
