"""TangoFlux plugin (issue 18 item 2): the released file layout through our key mapping, and our sampler against
a transcription of the official inference code.

The reference is written here from reading declare-lab/TangoFlux (HEAD 164420f):
- `tangoflux/model.py`: `TangoFlux.__init__` (the module and its attribute names, incl. `duration_emebdder`),
  `DurationEmbedder` + `StableAudioPositionalEmbedding`, `TangoFlux.encode_text_classifier_free`,
  `TangoFlux.encode_duration`, `TangoFlux.inference_flow` (and `retrieve_timesteps`);
- `tangoflux/__init__.py`: `TangoFluxInference.__init__` (files, `load_state_dict(strict=False)`) and
  `TangoFluxInference.generate` (decode `latents.transpose(2, 1)`, keep `int(duration * rate)` samples);
- the scheduler as the pinned `diffusers==0.30.0` ran it: `FlowMatchEulerDiscreteScheduler.set_timesteps(sigmas=...)`
  and `.step` (src/diffusers/schedulers/scheduling_flow_match_euler_discrete.py at v0.30.0), written out below, so
  a change of the installed diffusers' scheduler would show.
The FLUX transformer is diffusers' `FluxTransformer2DModel` on both sides (the class the official code builds).
The official module is built with its own random weights (seed 0), saved in the released layout, and loaded by
our loader; both sides then generate. `test_matches_the_official_package` also runs the PyPI `tangoflux` 0.1.0
package itself in its own venv (/work/oracles/tangoflux-venv, --no-deps beside our stack) when that venv exists.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import textwrap
from math import pi
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench.errors import MissingFileError, UsageError
from bench.plugins.base import clip_seed
from bench.plugins.tangoflux import (
    TINY_CONFIG,
    TangoFlux,
    TangoFluxTiny,
    build_tiny_tangoflux,
)
from genau_core.baselines._common import TINY_T5_ENCODER_CONFIG
from genau_core.baselines._state import CheckpointMappingError
from genau_core.baselines.tangoflux import (
    OobleckConfig,
    TangoFluxConfig,
    map_tangoflux_state_dict,
)
from tests.plugin_helpers import loaded_tiny

PROMPTS = ["a dog barks while birds chirp", "rain falls on a tin roof with distant thunder", "a bell rings"]
STEPS = 3
# a short model for speed: 24 latent frames = 1.11 s at hop 2048 / 44.1 kHz
SMALL = TangoFluxConfig(**{**TINY_CONFIG.to_official_dict(), "audio_seq_len": 24, "max_duration": 30})
SMALL_VAE = OobleckConfig(
    encoder_hidden_size=4, channel_multiples=(1, 1, 1, 1, 1), decoder_channels=2, decoder_input_channels=64
)
ORACLE_PYTHON = Path(os.environ.get("GENAU_BENCH_TANGOFLUX_PYTHON", "/work/oracles/tangoflux-venv/bin/python"))


# --- the official module and inference, transcribed ----------------------------------------------------------


class OfficialPositionalEmbedding(nn.Module):
    """tangoflux/model.py StableAudioPositionalEmbedding."""

    def __init__(self, dim):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(dim // 2))

    def forward(self, times):
        times = times[..., None]
        freqs = times * self.weights[None] * 2 * pi
        return torch.cat((times, torch.cat((freqs.sin(), freqs.cos()), dim=-1)), dim=-1)


class OfficialDurationEmbedder(nn.Module):
    """tangoflux/model.py DurationEmbedder."""

    def __init__(self, number_embedding_dim, min_value, max_value, internal_dim=256):
        super().__init__()
        self.time_positional_embedding = nn.Sequential(
            OfficialPositionalEmbedding(internal_dim), nn.Linear(internal_dim + 1, number_embedding_dim)
        )
        self.number_embedding_dim, self.min_value, self.max_value = number_embedding_dim, min_value, max_value

    def forward(self, floats):
        floats = floats.clamp(self.min_value, self.max_value)
        normalized = (floats - self.min_value) / (self.max_value - self.min_value)
        normalized = normalized.to(next(self.time_positional_embedding.parameters()).dtype)
        return self.time_positional_embedding(normalized).view(-1, 1, self.number_embedding_dim)


class OfficialTangoFlux(nn.Module):
    """tangoflux/model.py TangoFlux.__init__ (inference parts; the T5 comes from `text_encoder_name`, given here)."""

    def __init__(self, config: dict, text_encoder, tokenizer):
        super().__init__()
        from diffusers import FluxTransformer2DModel

        self.in_channels = config.get("in_channels", 64)
        self.audio_seq_len = config.get("audio_seq_len", 645)
        self.max_duration = config.get("max_duration", 30)
        self.text_encoder, self.tokenizer = text_encoder, tokenizer
        self.text_embedding_dim = text_encoder.config.d_model
        joint = config.get("joint_attention_dim", 1024)
        self.fc = nn.Sequential(nn.Linear(self.text_embedding_dim, joint), nn.ReLU())
        self.duration_emebdder = OfficialDurationEmbedder(
            self.text_embedding_dim, min_value=0, max_value=self.max_duration
        )
        self.transformer = FluxTransformer2DModel(
            in_channels=self.in_channels,
            num_layers=config.get("num_layers", 6),
            num_single_layers=config.get("num_single_layers", 18),
            attention_head_dim=config.get("attention_head_dim", 128),
            num_attention_heads=config.get("num_attention_heads", 8),
            joint_attention_dim=joint,
            pooled_projection_dim=self.text_embedding_dim,
            guidance_embeds=False,
        )


def official_encode_text_classifier_free(m: OfficialTangoFlux, prompt: list[str]):
    """TangoFlux.encode_text_classifier_free (num_samples_per_prompt=1)."""
    batch = m.tokenizer(
        prompt, max_length=m.tokenizer.model_max_length, padding=True, truncation=True, return_tensors="pt"
    )
    prompt_embeds = m.text_encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask)[0]
    uncond = m.tokenizer(
        [""], max_length=prompt_embeds.shape[1], padding="max_length", truncation=True, return_tensors="pt"
    )
    negative = m.text_encoder(input_ids=uncond.input_ids, attention_mask=uncond.attention_mask)[0]
    embeds = torch.cat([negative, prompt_embeds])
    mask = torch.cat([uncond.attention_mask, batch.attention_mask])
    return embeds, mask == 1


def official_flow_match_sigmas(num_inference_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """inference_flow's sigmas through diffusers 0.30.0 FlowMatchEulerDiscreteScheduler.set_timesteps(sigmas=...)
    (shift 1.0, no dynamic shifting): (timesteps, sigmas with the appended 0)."""
    sigmas = np.linspace(1.0, 1 / num_inference_steps, num_inference_steps)
    sigmas = 1.0 * sigmas / (1 + (1.0 - 1) * sigmas)
    sigmas = torch.from_numpy(sigmas).to(dtype=torch.float32)
    timesteps = sigmas * 1000
    return timesteps, torch.cat([sigmas, torch.zeros(1)])


@torch.no_grad()
def official_inference_flow(m: OfficialTangoFlux, prompt: str, *, num_inference_steps, guidance_scale, duration, seed):
    """TangoFlux.inference_flow (the repo HEAD version, which seeds the global RNG; guidance > 1)."""
    torch.manual_seed(seed)
    bsz = 2
    duration = torch.tensor([duration])
    duration_hidden_states = m.duration_emebdder(duration)
    encoder_hidden_states, boolean_encoder_mask = official_encode_text_classifier_free(m, [prompt])
    duration_hidden_states = duration_hidden_states.repeat(bsz, 1, 1)
    mask_expanded = boolean_encoder_mask.unsqueeze(-1).expand_as(encoder_hidden_states)
    masked_data = torch.where(mask_expanded, encoder_hidden_states, torch.tensor(float("nan")))
    pooled_projection = m.fc(torch.nanmean(masked_data, dim=1))
    encoder_hidden_states = torch.cat([encoder_hidden_states, duration_hidden_states], dim=1)
    timesteps, sigmas = official_flow_match_sigmas(num_inference_steps)
    latents = torch.randn(1, m.audio_seq_len, 64)
    txt_ids = torch.zeros(bsz, encoder_hidden_states.shape[1], 3)
    audio_ids = torch.arange(m.audio_seq_len).unsqueeze(0).unsqueeze(-1).repeat(bsz, 1, 3)
    for i, t in enumerate(timesteps):
        noise_pred = m.transformer(
            hidden_states=torch.cat([latents] * 2),
            timestep=torch.tensor([t / 1000]),
            guidance=None,
            pooled_projections=pooled_projection,
            encoder_hidden_states=encoder_hidden_states,
            txt_ids=txt_ids,
            img_ids=audio_ids,
            return_dict=False,
        )[0]
        uncond, text = noise_pred.chunk(2)
        noise_pred = uncond + guidance_scale * (text - uncond)
        # FlowMatchEulerDiscreteScheduler.step (0.30.0): sample + (sigma_next - sigma) * model_output, in float32
        latents = (latents.to(torch.float32) + (sigmas[i + 1] - sigmas[i]) * noise_pred).to(noise_pred.dtype)
    return latents


@torch.no_grad()
def official_generate(m: OfficialTangoFlux, vae, prompt: str, *, steps, duration, guidance_scale, seed) -> torch.Tensor:
    """TangoFluxInference.generate."""
    latents = official_inference_flow(
        m, prompt, num_inference_steps=steps, guidance_scale=guidance_scale, duration=duration, seed=seed
    )
    wave = vae.decode(latents.transpose(2, 1)).sample.cpu()[0]
    return wave[:, : int(duration * vae.config.sampling_rate)]


# --- fixtures: the official module with its own weights, saved in the released layout -----------------------


def _tiny_tokenizer():
    from genau_core.tokenizers import t5_style_tokenizer

    return t5_style_tokenizer(vocab_size=TINY_T5_ENCODER_CONFIG["vocab_size"], model_max_length=32)


def build_official(seed: int = 0, config: TangoFluxConfig = SMALL):
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    t5 = T5EncoderModel(T5Config(**TINY_T5_ENCODER_CONFIG))
    m = OfficialTangoFlux(config.to_official_dict(), t5, _tiny_tokenizer()).eval()
    torch.manual_seed(seed + 100)
    vae = SMALL_VAE.build().eval()
    with torch.no_grad():  # random weights give tiny outputs from the flow; make every module matter
        for p in m.transformer.proj_out.parameters():
            p.mul_(50.0)
    return m, vae


def write_release(
    folder: Path, m: OfficialTangoFlux, vae, config: TangoFluxConfig = SMALL, *, extra=None, drop=()
) -> Path:
    """config.json + tangoflux.safetensors (the official module's state dict, tied T5 embedding left out, as released)
    + vae.safetensors + tokenizer/."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config.to_official_dict()))
    sd = {
        k: v.clone().contiguous() for k, v in m.state_dict().items() if k != "text_encoder.encoder.embed_tokens.weight"
    }
    sd.update(extra or {})
    for k in drop:
        sd.pop(k)
    save_file(sd, str(folder / "tangoflux.safetensors"))
    save_file({k: v.clone().contiguous() for k, v in vae.state_dict().items()}, str(folder / "vae.safetensors"))
    m.tokenizer.save_pretrained(str(folder / "tokenizer"))
    return folder


class SmallTangoFlux(TangoFlux):
    """The real plugin's loader with the test's tiny text-encoder and VAE configs (the released ones are large)."""

    t5_config = TINY_T5_ENCODER_CONFIG
    vae_config = SMALL_VAE
    tokenizer_max_length = 32


@pytest.fixture(scope="module")
def official():
    return build_official()


@pytest.fixture(scope="module")
def release(official, tmp_path_factory):
    return write_release(tmp_path_factory.mktemp("tangoflux") / "TangoFlux", *official)


@pytest.fixture(scope="module")
def loaded(release):
    plugin = SmallTangoFlux(checkpoint=str(release))
    plugin.load()
    plugin._loaded = True
    return plugin


@pytest.fixture(autouse=True)
def _quiet_deprecated_ids():
    """The official code passes 3-D rotary ids; diffusers logs a deprecation warning per step."""
    logger = logging.getLogger("diffusers.models.transformers.transformer_flux")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


# --- the tests -----------------------------------------------------------------------------------------------


def test_sampler_equals_the_official_inference_transcription(official, loaded):
    """Our loader + sampler on the released files == official inference_flow + generate on the official module."""
    m, vae = official
    seeds = [clip_seed(0, p) for p in PROMPTS[:2]]
    ours = loaded.generate(PROMPTS[:2], seed=seeds, steps=STEPS, guidance=4.5, duration=1.0, native=True)
    for prompt, seed, got in zip(PROMPTS, seeds, ours):
        ref = official_generate(m, vae, prompt, steps=STEPS, duration=1, guidance_scale=4.5, seed=seed).numpy()
        assert got.shape == ref.shape == (2, 44_100)
        np.testing.assert_array_equal(got, ref)  # bit for bit
        assert np.abs(ref).max() > 1e-3  # the comparison is not between two silences


def test_guidance_and_duration_reach_the_model(loaded):
    base = loaded.generate(PROMPTS[:1], seed=[5], steps=2, guidance=4.5, duration=1.0, native=True)[0]
    other_g = loaded.generate(PROMPTS[:1], seed=[5], steps=2, guidance=2.0, duration=1.0, native=True)[0]
    longer = loaded.generate(PROMPTS[:1], seed=[5], steps=2, guidance=4.5, duration=1.05, native=True)[0]
    assert not np.array_equal(base, other_g)
    assert longer.shape == (2, 46_305)
    assert not np.array_equal(base, longer[:, :44_100])  # the duration token conditions the whole clip


def test_no_guidance_runs_the_conditional_branch_alone(official, loaded):
    """guidance <= 1: the official non-guided branch raises (encode_text gets an unexpected keyword); ours runs the
    conditional half of the guided computation, which equals guidance 1 of the guided formula."""
    a = loaded.generate(PROMPTS[:1], seed=[3], steps=2, guidance=1.0, duration=1.0, native=True)[0]
    m, vae = official
    ref = official_generate(m, vae, PROMPTS[0], steps=2, duration=1, guidance_scale=1.0, seed=3).numpy()
    np.testing.assert_allclose(a, ref, rtol=0, atol=1e-5)


def test_key_mapping_reports_unknown_and_missing_keys_and_ignores_the_dpo_reference(official, tmp_path):
    m, vae = official
    sd = m.state_dict()
    mapped, ignored = map_tangoflux_state_dict({**sd, "ref_transformer.x_embedder.weight": torch.zeros(1)})
    assert ignored == ["ref_transformer.x_embedder.weight"]
    assert "duration_embedder.time_positional_embedding.0.weights" in mapped and not any(
        "emebdder" in k for k in mapped
    )
    with pytest.raises(CheckpointMappingError, match="vae_stuff.weight"):
        map_tangoflux_state_dict({**sd, "vae_stuff.weight": torch.zeros(1)})
    broken = write_release(tmp_path / "broken", m, vae, drop=("fc.0.bias",))
    with pytest.raises(CheckpointMappingError, match=r"1 missing \['fc.0.bias'\]"):
        SmallTangoFlux(checkpoint=str(broken)).load()


def test_released_folder_status_names_the_exact_files(release, tmp_path):
    ok, status = SmallTangoFlux(checkpoint=str(release)).checkpoint_status()
    assert ok and "tokenizer from" in status
    ident = SmallTangoFlux(checkpoint=str(release)).checkpoint_identity()
    assert ident.startswith("sha256:") and len(ident) == 71
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "tangoflux.safetensors").write_bytes((release / "tangoflux.safetensors").read_bytes())
    ok, status = TangoFlux(checkpoint=str(partial)).checkpoint_status()
    assert not ok and "missing config.json, vae.safetensors" in status and "--model-checkpoint tangoflux=PATH" in status
    with pytest.raises(MissingFileError, match="tangoflux: .*missing config.json"):
        TangoFlux(checkpoint=str(partial)).load()
    no_tok = tmp_path / "no_tok"
    no_tok.mkdir()
    for f in ("config.json", "tangoflux.safetensors", "vae.safetensors"):
        (no_tok / f).write_bytes((release / f).read_bytes())
    ok, status = TangoFlux(checkpoint=str(no_tok)).checkpoint_status()
    if not ok:  # unless google/flan-t5-large happens to be in this machine's hub cache
        assert "FLAN-T5 tokenizer not found" in status and "spiece.model" in status
    ok, status = TangoFlux(checkpoint=str(tmp_path / "nowhere" / "TangoFlux")).checkpoint_status()
    assert not ok and "no such folder" in status and "tangoflux.safetensors" in status


def test_unread_config_keys_are_recorded(official, tmp_path):
    m, vae = official
    folder = write_release(tmp_path / "extra_key", m, vae)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "lr": 1e-4}))
    plugin = SmallTangoFlux(checkpoint=str(folder))
    plugin.load()
    assert plugin.generation_extra()["config_keys_not_read"] == ["lr"]


@pytest.fixture(scope="module")
def tiny() -> TangoFluxTiny:
    return loaded_tiny(TangoFluxTiny)


def test_tiny_twin_defaults_identity_and_shapes(tiny):
    info = tiny.info
    assert info.tiny and (info.native_sample_rate, info.native_channels) == (44_100, 2)
    assert (info.defaults.steps, info.defaults.guidance, info.defaults.duration_s) == (10, 4.5, 10.0)
    d = TangoFlux.info.defaults
    assert (d.sampler, d.steps, d.guidance, d.duration_s) == ("flow matching (Euler)", 50, 4.5, 10.0)
    assert "non-commercial" in TangoFlux.info.license
    assert tiny.checkpoint_identity() == "random:seed=0"
    m = tiny.model
    assert tiny.parameter_count() == sum(p.numel() for mod in (m.network, m.vae) for p in mod.parameters()) > 0
    assert m.generated_seconds == pytest.approx(216 * 2048 / 44_100)


def test_duration_beyond_the_released_30_s_is_refused(tiny):
    # determinism, batch independence and the protocol output are tests/bench/plugins/test_plugin_contract.py's, for
    # every twin
    small = build_tiny_tangoflux(0, SMALL, SMALL_VAE)
    plugin = TangoFluxTiny()
    plugin.model, plugin.facts, plugin._loaded = small, {}, True
    with pytest.raises(UsageError, match="between 0 and 30 s"):
        plugin.generate(PROMPTS[:1], seed=[1], steps=1, duration=31.0)


@pytest.mark.slow  # a second interpreter importing torch, diffusers, transformers and datasets: ~40 s here
@pytest.mark.skipif(not ORACLE_PYTHON.is_file(), reason=f"no tangoflux oracle venv at {ORACLE_PYTHON}")
def test_matches_the_official_package(official, loaded, tmp_path):
    """The PyPI `tangoflux` 0.1.0 package itself (its TangoFlux class and inference_flow) on the same released folder.

    0.1.0 predates the repo's `seed` argument (it draws from the global RNG: the oracle seeds it), reads the text
    encoder from `config["text_encoder_name"]` (a local folder with the tiny T5 here) and needs `datasets` at import."""
    m, vae = official
    folder = write_release(tmp_path / "release", m, vae)
    t5_dir = tmp_path / "t5"
    m.text_encoder.save_pretrained(str(t5_dir))
    m.tokenizer.save_pretrained(str(t5_dir))
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "text_encoder_name": str(t5_dir)}))
    script = textwrap.dedent(f"""
        import json, numpy as np, torch
        from safetensors.torch import load_file
        from diffusers import AutoencoderOobleck
        from tangoflux.model import TangoFlux
        folder = {str(folder)!r}
        model = TangoFlux(json.load(open(folder + "/config.json")))
        print(model.load_state_dict(load_file(folder + "/tangoflux.safetensors"), strict=False))
        model.eval()
        vae = AutoencoderOobleck(**{
        json.dumps(
            {
                **SMALL_VAE.__dict__,
                "downsampling_ratios": list(SMALL_VAE.downsampling_ratios),
                "channel_multiples": list(SMALL_VAE.channel_multiples),
            }
        )
    }).eval()
        vae.load_state_dict(load_file(folder + "/vae.safetensors"))
        torch.manual_seed(7)
        with torch.no_grad():
            latents = model.inference_flow({PROMPTS[1]!r}, num_inference_steps={STEPS}, guidance_scale=4.5, duration=1,
                                           disable_progress=True)
            wave = vae.decode(latents.transpose(2, 1)).sample.cpu()[0][:, :44100]
        np.save({str(tmp_path / "oracle.npy")!r}, wave.numpy())
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run(
        [str(ORACLE_PYTHON), "-c", script], check=False, capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "missing_keys=['text_encoder.encoder.embed_tokens.weight'], unexpected_keys=[]" in run.stdout
    oracle = np.load(tmp_path / "oracle.npy")
    ours = loaded.generate([PROMPTS[1]], seed=[7], steps=STEPS, guidance=4.5, duration=1.0, native=True)[0]
    np.testing.assert_array_equal(ours, oracle)
