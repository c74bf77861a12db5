"""GenAu release files, completely: raw or EMA weights, the genau-l-full-hq-data model, yaml
options refused or implemented as the official code, and the release yaml as the authority.

References written from snap-research/GenAU (commit 88f4280):
- `lit_ema_buffers` transcribes `LitEma.__init__` (GenAU/src/modules/diffusionmodules/ema.py),
  built by `DDPM.__init__` as `LitEma(self.model)` on the `DiffusionWrapper`, and
  `copy_to_reference` its `copy_to` (what `ema_scope(use_ema=True)` runs before sampling);
- `reference_fit` (tests/genau_core/genau/test_genau_mapping.py) transcribes `FIT` / `FITBlockV5.forward`
  (GenAU/src/modules/fit/fit_audio.py, fit/layers/fit_layers.py), including the
  `nn.Identity()` + residual of `use_cross_attention_feedforward: false`;
- the defaults of genau-l-full-hq-data are those of GenAU/scripts/text_to_audio.py
  (`--model genau-l-full-hq-data`, `--ddim_steps 100`, `--cfg_weight 4.0`, `use_ema = False`).
"""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import pytest
import torch

from genau_core.genau import GENAU_S
from genau_core.genau import official as off
from genau_core.genau.fit import FITBackbone
from tests.genau_core.genau.test_genau_mapping import (
    CFG,
    LAYOUT,
    _tiny_official_yaml,
    official_genau_state,
    reference_fit,
    write_release_files,
)

FIT_PREFIX = "model.diffusion_model."


@pytest.fixture(autouse=True)
def _isolated_checkpoint_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAU_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GENAU_BENCH_CHECKPOINTS", str(tmp_path / "ckpts"))


# ------------------------------------------------------------------ transcriptions of LitEma ---
def lit_ema_buffers(sd: dict, gen: torch.Generator, num_updates: int = 4321) -> dict:
    """`LitEma(self.model)`: `decay`, `num_updates`, and for every trainable parameter of the
    DiffusionWrapper (`diffusion_model.*`; rin_layers.LayerNorm's `beta` is a buffer, not a
    parameter) a buffer `name.replace(".", "")`; here holding values unlike the raw ones."""
    out = {"model_ema.decay": torch.tensor(0.999), "model_ema.num_updates": torch.tensor(num_updates, dtype=torch.int)}
    for key, value in sd.items():
        if key.startswith(FIT_PREFIX) and not key.endswith(".beta"):
            s_name = key[len("model.") :].replace(".", "")
            out[f"model_ema.{s_name}"] = torch.randn(value.shape, generator=gen) * 0.2
    return out


def copy_to_reference(sd: dict, ema: dict) -> dict:
    """`LitEma.copy_to(self.model)`: each trainable parameter takes its shadow buffer's value.
    Returns the FIT's official state (keys without `model.diffusion_model.`)."""
    out = {}
    for key, value in sd.items():
        if key.startswith(FIT_PREFIX):
            shadow = "model_ema." + key[len("model.") :].replace(".", "")
            out[key[len(FIT_PREFIX) :]] = ema[shadow] if not key.endswith(".beta") else value
    return out


def _fit_inputs(c, seed=7):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c.input_channels, c.input_length, generator=gen)
    return x, torch.tensor([3, 901]), torch.randn(2, c.summary_channels, generator=gen), torch.tensor([0, 5])


# ----------------------------------------------------------------------------- EMA weights ---
def test_ema_weights_are_the_lit_ema_copy_raw_is_the_default(tmp_path):
    raw_sd = official_genau_state(torch.Generator().manual_seed(123))
    ema = lit_ema_buffers(raw_sd, torch.Generator().manual_seed(9))
    files, sd = write_release_files(tmp_path, seed=123, extra_state=ema)
    raw = off.load_official_genau(files, name="t")
    emam = off.load_official_genau(files, name="t", weights="ema")
    assert off.DEFAULT_WEIGHTS == "raw" and raw.weight_selection.to_dict() == {"weights": "raw"}
    n_params = sum(1 for k in sd if k.startswith(FIT_PREFIX) and not k.endswith(".beta"))
    assert emam.weight_selection.to_dict() == {
        "weights": "ema",
        "ema_tensors": n_params,
        "ema_num_updates": 4321,
        "ema_decay": pytest.approx(0.999),
    }
    x, t, summary, ds = _fit_inputs(CFG.fit)
    with torch.no_grad():
        ref_raw = reference_fit(
            {k[len(FIT_PREFIX) :]: v for k, v in sd.items() if k.startswith(FIT_PREFIX)}, CFG.fit, x, t, summary, ds
        )
        ref_ema = reference_fit(copy_to_reference(sd, ema), CFG.fit, x, t, summary, ds)
        torch.testing.assert_close(raw.backbone(x, t, summary, ds)[0], ref_raw, atol=2e-4, rtol=2e-4)
        torch.testing.assert_close(emam.backbone(x, t, summary, ds)[0], ref_ema, atol=2e-4, rtol=2e-4)
    assert (ref_raw - ref_ema).abs().max() > 0.1  # the two weight sets really differ
    # EMA covers the FIT only (LitEma(self.model)): VAE, vocoder and text encoders are the raw ones
    a, b = raw.state_dict(), emam.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("backbone."))


def test_ema_errors_name_what_is_wrong():
    raw_sd = official_genau_state(torch.Generator().manual_seed(1))
    ema = lit_ema_buffers(raw_sd, torch.Generator().manual_seed(2))
    with pytest.raises(off.OfficialCheckpointError, match=r"ckpt: holds no EMA weights .*--weights raw"):
        off.select_weights(raw_sd, "ema", source="ckpt")
    gone = dict(ema)
    del gone["model_ema.diffusion_modelblocks0latents_attend_to_patchesto_kvweight"]
    with pytest.raises(
        off.OfficialCheckpointError,
        match=r"model\.diffusion_model\.blocks\.0\.latents_attend_to_patches\.to_kv\.weight",
    ):
        off.select_weights({**raw_sd, **gone}, "ema", source="ckpt")
    with pytest.raises(off.OfficialCheckpointError, match="model_ema.diffusion_modelmystery"):
        off.select_weights({**raw_sd, **ema, "model_ema.diffusion_modelmystery": torch.zeros(1)}, "ema", source="ckpt")
    with pytest.raises(off.OfficialCheckpointError, match="weights 'best'"):
        off.select_weights(raw_sd, "best")
    same, sel = off.select_weights({**raw_sd, **ema}, "raw")
    assert sel.weights == "raw" and torch.equal(
        same["model.diffusion_model.latents"], raw_sd["model.diffusion_model.latents"]
    )


def test_plugins_offer_raw_and_ema_and_record_the_choice(tmp_path):
    from bench.cli import _weights_option
    from bench.errors import UsageError
    from bench.harness import GenerationConfig, resolve_settings
    from bench.plugins.genau import GenAuSmall, GenAuTiny
    from bench.runs.store import settings_hash

    folder = tmp_path / "ckpts"
    ema = lit_ema_buffers(official_genau_state(torch.Generator().manual_seed(11)), torch.Generator().manual_seed(3))
    write_release_files(folder, size="s", seed=11, extra_state=ema)
    digest = hashlib.sha256((folder / "genau-full-s.ckpt").read_bytes()).hexdigest()
    raw, emap = GenAuSmall(), GenAuSmall(weight_set="ema")
    assert raw.weight_set == "raw" and GenAuSmall.WEIGHT_SETS == ("raw", "ema")
    assert (
        raw.checkpoint_identity() == f"sha256:{digest}" and emap.checkpoint_identity() == f"sha256:{digest}+weights:ema"
    )
    a = raw.generate(["a dog barks"], seed=7, steps=2, duration=1.0)[0]
    b = emap.generate(["a dog barks"], seed=7, steps=2, duration=1.0)[0]
    assert np.abs(a - b).max() > 1e-4
    assert raw.last_record.extra["weights"] == "raw" and "generate_and_eval" in raw.last_record.extra["weights_source"]
    assert emap.last_record.extra["weights"] == "ema" and emap.last_record.extra["ema_num_updates"] == 4321
    assert emap.last_record.to_manifest()["extra"]["weights"] == "ema"  # what the harness writes to the manifest
    cfg = GenerationConfig(seed=0, steps=None, guidance=None, duration_s=None, batch_size=1, limit=None, shard=(0, 1))
    s_raw, s_ema = resolve_settings(raw, cfg), resolve_settings(emap, cfg)
    assert settings_hash(s_raw.audio_settings()) != settings_hash(s_ema.audio_settings())  # never one run folder
    with pytest.raises(ValueError, match="weights 'best'"):
        GenAuSmall(weight_set="best")
    # `bench run --weights`: only for plugins that offer the choice
    assert _weights_option("genau-s", GenAuSmall, None) == {} and _weights_option("genau-s", GenAuSmall, "ema") == {
        "weight_set": "ema"
    }
    with pytest.raises(UsageError, match="--weights ema: genau-tiny has no choice of weight set"):
        _weights_option("genau-tiny", GenAuTiny, "ema")


# ------------------------------------------------------------------- genau-l-full-hq-data ---
def test_hq_data_model_is_a_plugin_and_a_cli_model(tmp_path, capsys):
    import soundfile as sf

    from bench.plugins.genau import GenAuLargeHQ
    from bench.plugins.registry import get_plugin_class
    from genau_core.cli import load_model, main

    cls = get_plugin_class("genau-l-full-hq-data")
    assert cls is GenAuLargeHQ and (cls.info.defaults.sampler, cls.info.defaults.steps, cls.info.defaults.guidance) == (
        "DDIM (eta 1)",
        100,
        4.0,
    )
    ok, msg = cls().checkpoint_status()
    assert not ok and "genau-l-full-hq-data.ckpt" in msg and "genau-l-full-hq-data.yaml" in msg
    folder = tmp_path / "ckpts"
    # yaml evaluation_params: 200 steps, 3.5; a top-level force_use_ema (read by text_to_audio.py only) is recorded
    hq_yaml = {**_tiny_official_yaml(), "force_use_ema": True}
    write_release_files(folder, stem="genau-l-full-hq-data", seed=5, yaml=hq_yaml)
    plugin = cls()
    defaults = plugin.info.defaults
    assert (defaults.steps, defaults.guidance) == (100, 4.0)  # text_to_audio.py's, not the yaml's
    w = plugin.generate(["rain on a roof"], seed=1, steps=2, duration=1.0)[0]
    assert w.shape == (16000,) and np.isfinite(w).all()
    assert plugin.last_record.extra["weights"] == "raw" and plugin.last_record.extra["yaml_force_use_ema"] is True
    model = load_model("genau-l-full-hq-data", str(folder), "cpu")
    assert (model.cfg.diffusion.steps, model.cfg.diffusion.guidance) == (100, 4.0) and model.cfg.fit == CFG.fit
    out = tmp_path / "hq.wav"
    assert (
        main(
            [
                "generate",
                "rain",
                "-o",
                str(out),
                "--model",
                "genau-l-full-hq-data",
                "--checkpoint",
                str(folder),
                "--steps",
                "2",
                "--duration",
                "1",
                "--weights",
                "raw",
            ]
        )
        == 0
    )
    assert sf.read(out)[0].shape == (16000,) and str(out) in capsys.readouterr().out
    # the fixture checkpoint has no model_ema.*: one line naming the file, no traceback
    with pytest.raises(SystemExit, match=r"^error: .*genau-l-full-hq-data\.ckpt: holds no EMA weights"):
        main(["generate", "rain", "-o", str(out), "--model", "genau-l-full-hq-data", "--checkpoint", str(folder),
              "--steps", "2", "--duration", "1", "--weights", "ema"])  # fmt: skip


# ------------------------------------------------------------------------ yaml options ---
def _config(y):
    return off.config_from_official_yaml(
        y,
        name="t",
        vocoder=CFG.vocoder,
        t5_config=CFG.conditioning.t5,
        clap_text_config=CFG.conditioning.clap_text,
        t5_tokenizer="tiny",
        clap_tokenizer="tiny",
    )


def _unet(y):
    return y["model"]["params"]["unet_config"]["params"]


RIN = "src.modules.fit.layers.rin_layers."
REFUSED = [
    ("attention_class", RIN + "CosineAttention", lambda u, v: u["fit_block_config"].__setitem__("attention_class", v)),
    ("attention_class", RIN + "LinearAttention", lambda u, v: u["fit_block_config"].__setitem__("attention_class", v)),
    (
        "attention_class",
        "my.layers.FancyAttention",
        lambda u, v: u["fit_block_config"].__setitem__("attention_class", v),
    ),
    ("ff_class", RIN + "XFormersFeedForward", lambda u, v: u["fit_block_config"].__setitem__("ff_class", v)),
    ("use_flash_everything", "yes", lambda u, v: u.__setitem__("use_flash_everything", v)),
    ("mystery_block_option", 3, lambda u, v: u["fit_block_config"].__setitem__("mystery_block_option", v)),
    ("mult", 2, lambda u, v: u["fit_block_config"].__setitem__("local_ff_config", {"mult": v})),
    ("mult", 8, lambda u, v: u.__setitem__("self_conditioning_ff_config", {"mult": v})),
    ("drop_units", 0.1, lambda u, v: u.__setitem__("self_conditioning_ff_config", {"drop_units": v})),
    (
        "use_layer_normalization",
        False,
        lambda u, v: u["fit_block_config"].__setitem__("default_ff_config", {"use_layer_normalization": v}),
    ),
    (
        "conditioning_channels",
        128,
        lambda u, v: u["fit_block_config"]["global_attention_config"].__setitem__("conditioning_channels", v),
    ),
    ("eps", 0.001, lambda u, v: u["fit_block_config"]["local_attention_config"].__setitem__("eps", v)),
    ("layer_normalization_module", "torch.nn.LayerNorm", lambda u, v: u.__setitem__("layer_normalization_module", v)),
    (
        "fit_block_module",
        "src.modules.fit.layers.fit_layers.FITBlockHierarchical",
        lambda u, v: u.__setitem__("fit_block_module", v),
    ),
    ("time_pe_type", "sinusoidal_pix2seq", lambda u, v: u.__setitem__("time_pe_type", v)),
    ("classes_count", 10, lambda u, v: u.__setitem__("classes_count", v)),
    (
        "weight_initializer.target",
        "src.modules.initializers.initializers.OtherInitializer",
        lambda u, v: u["weight_initializer"].__setitem__("target", v),
    ),
]


@pytest.mark.parametrize("key, value, edit", REFUSED, ids=[f"{k}={v}" for k, v, _ in REFUSED])
def test_unimplemented_or_unknown_fit_options_are_errors_naming_key_and_value(key, value, edit):
    y = copy.deepcopy(_tiny_official_yaml())
    edit(_unet(y), value)
    with pytest.raises(off.OfficialCheckpointError) as e:
        _config(y)
    assert f"{key}: {value!r}" in str(e.value), str(e.value)


ACCEPTED = [
    # same function as rin_layers.Attention, another kernel
    lambda u: u["fit_block_config"].__setitem__("attention_class", RIN + "XFormersEfficientAttention"),
    lambda u: (
        u["fit_block_config"].__setitem__("attention_class", RIN + "XFormersAttention"),
        u["fit_block_config"]["local_attention_config"].__setitem__(
            "xformers_attention_class", "xformers.components.attention.ScaledDotProduct"
        ),
    ),
    # read by nothing in the official FITBlockV5: ignored there, ignored here
    lambda u: u["fit_block_config"].__setitem__("ff_config", {"mult": 8}),
    # the official defaults, written out
    lambda u: (
        u.__setitem__("linear_layer_module", "torch.nn.Linear"),
        u.__setitem__("layer_normalization_module", RIN + "LayerNorm"),
        u.__setitem__("feed_forward_module", RIN + "FeedForward"),
        u["fit_block_config"].__setitem__("local_ff_config", {"mult": 4}),
    ),
]


@pytest.mark.parametrize("edit", ACCEPTED)
def test_options_with_the_same_function_are_accepted(edit):
    y = copy.deepcopy(_tiny_official_yaml())
    edit(_unet(y))
    assert _config(y).fit == CFG.fit


def test_cross_attention_feedforward_false_is_identity_plus_residual():
    """`use_cross_attention_feedforward: false`: FITBlockV5 puts nn.Identity() after the context
    read, the read and the write, still added as a residual (x + x); no parameters."""
    y = copy.deepcopy(_tiny_official_yaml())
    _unet(y)["fit_block_config"]["use_cross_attention_feedforward"] = False
    cfg = _config(y)
    assert cfg.fit.cross_attention_feedforward is False
    sd = official_genau_state(torch.Generator().manual_seed(4), fit=cfg.fit)
    assert not any("cross_attn_ff" in k or "context_attn_ff" in k for k in sd)
    conv = off.convert_official_genau_state_dict(sd, cfg, LAYOUT)
    fit = FITBackbone(cfg.fit).eval()
    fit.load_state_dict(
        {k[len("backbone.") :]: v for k, v in conv.state.items() if k.startswith("backbone.")}, strict=True
    )
    x, t, summary, ds = _fit_inputs(cfg.fit)
    with torch.no_grad():
        ours = fit(x, t, summary, ds)[0]
        ref = reference_fit(
            {k[len(FIT_PREFIX) :]: v for k, v in sd.items() if k.startswith(FIT_PREFIX)}, cfg.fit, x, t, summary, ds
        )
    torch.testing.assert_close(ours, ref, atol=2e-4, rtol=2e-4)


# ------------------------------------------------------------------- the yaml is the authority ---
def test_release_yaml_is_the_authority_for_sizes_and_defaults(tmp_path):
    """A genau-full-s.yaml whose sizes and evaluation_params differ from our fitted genau-s:
    the plugin builds the yaml's model and samples with the yaml's steps / guidance
    (scripts/generate_and_eval.py reads evaluation_params from the yaml)."""
    from bench.plugins.genau import GenAuSmall

    y = copy.deepcopy(_tiny_official_yaml())
    y["model"]["params"]["evaluation_params"].update(ddim_sampling_steps=50, unconditional_guidance_scale=2.5)
    write_release_files(tmp_path / "ckpts", size="s", seed=2, yaml=y)
    plugin = GenAuSmall()
    assert (plugin.info.defaults.steps, plugin.info.defaults.guidance) == (50, 2.5)
    assert (GenAuSmall.info.defaults.steps, GenAuSmall.info.defaults.guidance) == (200, 3.5)  # without a yaml
    plugin.generate(["wind"], seed=0, steps=2, duration=1.0)
    assert plugin.model.cfg.fit == CFG.fit != GENAU_S.fit
    assert plugin.parameter_count() == sum(p.numel() for p in plugin.model.parameters()) < 0.01 * 493e6
