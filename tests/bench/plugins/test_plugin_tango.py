"""Tango / Tango 2: loading the released file layout through our key mapping, and the tiny twins.

The official-layout state dicts are generated here for the tiny config, following the official
code (declare-lab/tango `audioldm/variational_autoencoder/modules.py`, `audioldm/hifigan/models.py`,
`models.py`): the test enumerates the official module names itself, independently of the mapping
under test, and checks the mapped modules numerically against a functional transcription of the
official decoder and vocoder.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.plugins.tango import TANGO_TINY_CONFIG, Tango, Tango2, Tango2Tiny, TangoTiny, build_tiny_tango
from genau_core.baselines.tango import (
    TANGO2_CONFIG,
    TANGO_CONFIG,
    LdmVaeConfig,
    TangoModel,
    build_scheduler,
    build_text_encoder,
    build_unet,
    map_hifigan_state_dict,
    resolve_unet_config,
    save_official_tango_folder,
)
from genau_core.errors import CheckpointMappingError
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
        if name.endswith(("norm1.weight", "norm2.weight")) or (".norm" in name and name.endswith("weight")):
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
        x = F.conv_transpose1d(
            F.leaky_relu(x, 0.1), sd[f"ups.{i}.weight"], sd[f"ups.{i}.bias"], stride=u, padding=(k - u) // 2
        )
        total = 0
        for j, (rk, dil) in enumerate(zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes)):
            r, h = f"resblocks.{i * kc + j}", x
            for m, d in enumerate(dil):
                t = F.conv1d(
                    F.leaky_relu(h, 0.1),
                    sd[f"{r}.convs1.{m}.weight"],
                    sd[f"{r}.convs1.{m}.bias"],
                    dilation=d,
                    padding=(rk * d - d) // 2,
                )
                t = F.conv1d(
                    F.leaky_relu(t, 0.1),
                    sd[f"{r}.convs2.{m}.weight"],
                    sd[f"{r}.convs2.{m}.bias"],
                    padding=(rk - 1) // 2,
                )
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
    own = {
        **{f"vae.{k}": v for k, v in model.vae.state_dict().items()},
        **{f"voc.{k}": v for k, v in model.vocoder.state_dict().items()},
    }
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
    model.load_official_state_dicts(
        {k: v for k, v in main_sd.items() if k != "text_encoder.encoder.embed_tokens.weight"}, vae_sd
    )


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


# stabilityai/stable-diffusion-2-1 scheduler/scheduler_config.json, which the official code reads as a
# DDPMScheduler (main_config.json "scheduler_name"); written out here, not imported from the plugin
SD21_SCHEDULER_FILE = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="v_prediction",
    clip_sample=False,
    set_alpha_to_one=False,
    skip_prk_steps=True,
    steps_offset=1,
)


def ddpm_timesteps_diffusers_0_15(steps: int, train_steps: int = 1000) -> list[int]:
    """DDPMScheduler.set_timesteps of the diffusers 0.15.0.dev0 copy Tango's paper-era code installed
    (declare-lab/tango before 39e4f90, diffusers/src/diffusers/schedulers/scheduling_ddpm.py): no steps_offset."""
    step_ratio = train_steps // steps
    return [int(t) for t in (np.arange(0, steps) * step_ratio).round()[::-1]]


def ddpm_timesteps_diffusers_0_18_2(steps: int, steps_offset: int, train_steps: int = 1000) -> list[int]:
    """DDPMScheduler.set_timesteps of diffusers v0.18.2 (pinned by declare-lab/tango since 39e4f90, 2023-07-15,
    and by tango2/requirements.txt), timestep_spacing "leading": the same, plus config.steps_offset."""
    step_ratio = train_steps // steps
    return [int(t) + steps_offset for t in (np.arange(0, steps) * step_ratio).round()[::-1]]


def test_real_config_shapes_and_scheduler():
    # 10 s -> 256 x 16 latents with 8 channels: the released (B, 8, 256, 16)
    assert TANGO_CONFIG.latent_shape(10.0) == (8, 256, 16)
    sched = build_scheduler(TANGO_CONFIG)
    assert sched.config.prediction_type == "v_prediction"
    d = Tango.info.defaults
    assert (d.steps, d.guidance, d.duration_s) == (200, 3.0, 10.0) and d.sampler.startswith("DDPM")
    d2 = Tango2.info.defaults
    assert (d2.steps, d2.guidance, d2.duration_s) == (200, 3.0, 10.0) and Tango2.repo_id == "declare-lab/tango2"
    # the sampler name is hashed into the run folder: Tango 2 clips made with Tango's timesteps are not reused
    assert d2.sampler != d.sampler and "steps_offset 1" in d2.sampler


def test_each_tango_gets_its_official_timesteps():
    """Tango (paper-era, diffusers 0.15 copy): 995 ... 0. Tango 2 (diffusers==0.18.2 adds SD 2.1's steps_offset 1):
    996 ... 1. Same for the tiny twins; the plugins use them."""
    assert ddpm_timesteps_diffusers_0_15(200)[:2] == [995, 990] and ddpm_timesteps_diffusers_0_15(200)[-1] == 0
    assert ddpm_timesteps_diffusers_0_18_2(200, SD21_SCHEDULER_FILE["steps_offset"])[::199] == [996, 1]
    cases = [
        (Tango.config, ddpm_timesteps_diffusers_0_15),
        (TangoTiny().tiny_config, ddpm_timesteps_diffusers_0_15),
        (Tango2.config, lambda n: ddpm_timesteps_diffusers_0_18_2(n, SD21_SCHEDULER_FILE["steps_offset"])),
        (Tango2Tiny().tiny_config, lambda n: ddpm_timesteps_diffusers_0_18_2(n, SD21_SCHEDULER_FILE["steps_offset"])),
    ]
    for config, official in cases:
        for steps in (200, 100, 10, 3):
            sched = build_scheduler(config)
            sched.set_timesteps(steps)
            assert sched.timesteps.tolist() == official(steps), (config.scheduler, steps)
    assert TANGO2_CONFIG.scheduler == {**TANGO_CONFIG.scheduler, "steps_offset": 1}


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


@pytest.mark.parametrize(
    "path",
    [
        "configs/diffusion_model_config.json",  # declare-lab/tango main_config.json
        "tango2/configs/diffusion_model_config.json",  # the same file in the repo's tango2/ folder
        "./configs/diffusion_model_config.json",
        "/home/user/tango/tango2/configs/diffusion_model_config.json",  # an absolute path of the training machine
    ],
)
def test_official_unet_config_paths_are_accepted(path, tmp_path):
    """The official AudioDiffusion builds its UNet from `unet_model_config_path` relative to where its scripts run;
    the released layouts point into the repo's configs/ or tango2/configs/ (one file, transcribed as
    TANGO_UNET_CONFIG). Used when the file itself is not in the checkpoint folder."""
    unet, source = resolve_unet_config(tmp_path, {"unet_model_config_path": path}, CFG)
    assert unet == CFG.unet and "built-in copy" in source


def test_plugin_loads_a_folder_in_the_tango2_repo_layout(loaded, offline, tmp_path):
    """A released folder whose main_config.json points at `tango2/configs/diffusion_model_config.json` (the
    path inside declare-lab/tango's tango2/ folder) loads through the real plugin path (the old loader refused
    every path but `configs/diffusion_model_config.json`)."""
    model, main_sd, vae_sd = loaded
    folder = tmp_path / "tango2-layout"
    save_official_tango_folder(folder, main_sd, vae_sd, CFG.vae, tokenizer=model.tokenizer)
    main_cfg = json.loads((folder / "main_config.json").read_text())
    main_cfg["unet_model_config_path"] = "tango2/configs/diffusion_model_config.json"
    (folder / "main_config.json").write_text(json.dumps(main_cfg))
    plugin = Tango2(checkpoint=str(folder))
    plugin.config = CFG
    assert plugin.parameter_count() == model.parameter_count()


def test_unet_config_file_in_the_folder_is_read(loaded, offline, tmp_path):
    """A UNet config file shipped with the checkpoint (at the path main_config.json gives, relative to the folder)
    is the authority: here the plugin's own configuration has a wrong UNet width and the file's is used."""
    model, main_sd, vae_sd = loaded
    folder = tmp_path / "tango-custom"
    save_official_tango_folder(
        folder,
        main_sd,
        vae_sd,
        CFG.vae,
        tokenizer=model.tokenizer,
        unet_model_config_path="my_configs/unet.json",
        unet_config=CFG.unet,
    )
    unet, source = resolve_unet_config(folder, {"unet_model_config_path": "my_configs/unet.json"}, CFG)
    assert source == str(folder / "my_configs" / "unet.json") and unet == CFG.unet
    plugin = Tango(checkpoint=str(folder))
    plugin.config = replace(CFG, unet={**CFG.unet, "block_out_channels": (8, 16)})  # wrong: the file must win
    assert plugin.parameter_count() == model.parameter_count()


def test_unet_config_paths_that_cannot_work_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"'my/unet\.json' is not an official Tango layout.*put that UNet config file"):
        resolve_unet_config(tmp_path, {"unet_model_config_path": "my/unet.json"}, CFG)
    with pytest.raises(ValueError, match="unet_model_name 'stabilityai/stable-diffusion-2-1'.*not supported"):
        resolve_unet_config(tmp_path, {"unet_model_name": "stabilityai/stable-diffusion-2-1"}, CFG)
    with pytest.raises(ValueError, match="no unet_model_config_path"):
        resolve_unet_config(tmp_path, {}, CFG)
    # the repo's XL config (cross-attention 2048) needs a FLAN-T5-XL text encoder, which is not supported
    (tmp_path / "configs").mkdir()
    xl = {k: list(v) if isinstance(v, tuple) else v for k, v in TANGO_CONFIG.unet.items()}
    xl_file = tmp_path / "configs" / "diffusion_model_xl_config.json"
    xl_file.write_text(json.dumps({**xl, "cross_attention_dim": 2048}))
    xl_main = {"unet_model_config_path": "configs/diffusion_model_xl_config.json"}
    with pytest.raises(ValueError, match="cross_attention_dim 2048 does not match the text encoder's width 1024"):
        resolve_unet_config(tmp_path, xl_main, TANGO_CONFIG)
    (tmp_path / "configs" / "bad.json").write_text(json.dumps({"in_channels": 8, "not_a_unet_key": 1}))
    with pytest.raises(ValueError, match="does not take: not_a_unet_key"):
        resolve_unet_config(tmp_path, {"unet_model_config_path": "configs/bad.json"}, TANGO_CONFIG)


# --- the sampler, against a transcription of the official batched inference --------------------


def official_inference(model: TangoModel, prompts, seeds, steps, guidance, duration_s, timesteps) -> torch.Tensor:
    """declare-lab/tango `models.py` AudioDiffusion.inference + `tango.py` decode_first_stage + vocoder, batched as
    released (seeded generators), with the DDPMScheduler built from SD 2.1's scheduler file and the timesteps of the
    diffusers version the release ran (`ddpm_timesteps_diffusers_*`)."""
    from diffusers import DDPMScheduler
    from diffusers.utils.torch_utils import randn_tensor

    tok, enc = model.tokenizer, model.text_encoder
    batch = tok(prompts, max_length=tok.model_max_length, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        pos = enc(input_ids=batch.input_ids, attention_mask=batch.attention_mask)[0]
        unc = tok(
            [""] * len(prompts), max_length=pos.shape[1], padding="max_length", truncation=True, return_tensors="pt"
        )
        neg = enc(input_ids=unc.input_ids, attention_mask=unc.attention_mask)[0]
        embeds = torch.cat([neg, pos])
        mask = torch.cat([unc.attention_mask, batch.attention_mask]) == 1
        sched = DDPMScheduler.from_config(SD21_SCHEDULER_FILE)  # what from_pretrained(..., subfolder="scheduler") does
        sched.set_timesteps(timesteps=timesteps)  # custom timesteps: the previous one is the next in the list
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        lat = (
            randn_tensor((len(prompts), *model.config.latent_shape(duration_s)), generator=gens)
            * sched.init_noise_sigma
        )
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
    ours = tiny.model.sample(
        PROMPTS, [torch.Generator().manual_seed(s) for s in seeds], steps=STEPS, guidance=3.0, duration_s=SHORT
    )
    ref = official_inference(tiny.model, PROMPTS, seeds, STEPS, 3.0, SHORT, ddpm_timesteps_diffusers_0_15(STEPS))
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


def test_tango2_sampler_matches_the_official_inference_with_diffusers_0_18_timesteps():
    """Tango 2 with its own timesteps (996 ... 1 for 200 steps; 667, 334, 1 here), including the noise draw
    at the last step (t = 1 > 0), against the official inference."""
    t2 = loaded_tiny(Tango2Tiny)
    seeds = [31, 32]
    ours = t2.generate(PROMPTS[:2], seed=seeds, steps=STEPS, guidance=3.0, duration=SHORT)
    ref = official_inference(t2.model, PROMPTS[:2], seeds, STEPS, 3.0, SHORT, ddpm_timesteps_diffusers_0_18_2(STEPS, 1))
    for w, r in zip(ours, ref):
        np.testing.assert_allclose(w, r.numpy()[: len(w)], atol=1e-6, rtol=0)


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


def test_tango2_tiny_shares_the_builder_but_not_the_weights(tiny):
    t2 = Tango2Tiny()
    assert t2.checkpoint_identity() == "random:seed=1" and "seed (1)" in t2.info.notes
    assert replace(t2.info.defaults, sampler=tiny.info.defaults.sampler) == tiny.info.defaults and t2.info.tiny
    w1 = tiny.generate(PROMPTS[:1], seed=[5], steps=2, duration=SHORT)[0]
    w2 = t2.generate(PROMPTS[:1], seed=[5], steps=2, duration=SHORT)[0]
    # same architecture; only the DDPM timesteps (steps_offset) differ in the configuration
    assert replace(t2.model.config, scheduler=tiny.model.config.scheduler) == tiny.model.config
    assert t2.parameter_count() == tiny.parameter_count()
    assert np.abs(w1 - w2).max() > 1e-3
