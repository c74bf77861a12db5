"""AudioLDM 2-L plugin: the official sampler (issue 13 item 1) and the tiny twin against diffusers' pipeline.

- The plugin's default path equals a transcription of the official computation (haoheliu/AudioLDM2
  `audioldm2/pipeline.py` `text_to_audio` -> `latent_diffusion/models/ddpm.py`
  `LatentDiffusion.generate_batch(ddim_eta=1.0)` with the unconditional conditioning of
  `modules/encoders/modules.py` -> `models/ddim.py` `DDIMSampler`): eta 1, 256 latent frames for 10 s,
  the unconditional GPT-2 branch zeros; see tests/audioldm_official.py.
- The plugin text-encodes every prompt on its own (see bench/plugins/audioldm2.py), so its batching is
  checked against one-prompt calls of the diffusers pipeline with the same seed and sampler settings.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.plugins.audioldm2 import AudioLDM2Large, AudioLDM2Tiny, _audioldm2_pipeline_class
from genau_core.tokenizers import t5_style_tokenizer
from tests.audioldm_official import official_alphas_cumprod, official_ddim_sample, official_latent_t_size
from tests.plugin_helpers import loaded_tiny

STEPS = 4  # divides 1000, as the official uniform DDIM discretisation needs
SHORT = 2.0  # seconds; properties that do not depend on length are checked on short clips
# different FLAN-T5 token lengths, so the padding path is exercised
PROMPTS = ["a dog barks while birds chirp", "rain falls on a tin roof with distant thunder", "a bell rings"]


@pytest.fixture(scope="module")
def tiny() -> AudioLDM2Tiny:
    return loaded_tiny(AudioLDM2Tiny)


@pytest.fixture
def diffusers_unconditional(tiny, monkeypatch):
    """The tiny twin with diffusers' unconditional GPT-2 branch (GPT-2 on ""), for comparing its batching
    with direct pipeline calls (a pipeline call that takes a prompt always computes that branch itself)."""
    monkeypatch.setattr(tiny, "zero_unconditional_gpt2", False)
    return tiny


def _direct(tiny, prompts, seeds, *, steps=STEPS, guidance=3.5, duration=10.0) -> np.ndarray:
    """Reference: diffusers' AudioLDM2Pipeline called directly with the plugin's sampler settings."""
    pipe = _audioldm2_pipeline_class()(**tiny.pipe.components)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        prompt=list(prompts),
        num_inference_steps=steps,
        guidance_scale=guidance,
        audio_length_in_s=tiny.official_audio_length(duration),
        eta=1.0,
        num_waveforms_per_prompt=1,
        generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
        output_type="np",
    )
    return np.asarray(out.audios, dtype=np.float32)[:, : round(duration * 16_000)]


def test_info_defaults_identity(tiny):
    d = AudioLDM2Large.info.defaults
    assert (d.sampler, d.steps, d.guidance, d.duration_s) == ("DDIM (eta 1)", 200, 3.5, 10.0)
    assert AudioLDM2Large.eta == 1.0 and AudioLDM2Large.zero_unconditional_gpt2
    t = tiny.info.defaults
    assert (t.sampler, t.steps, t.guidance, t.duration_s) == ("DDIM (eta 1)", 10, 3.5, 10.0)
    assert tiny.info.tiny and tiny.weights == "random" and tiny.checkpoint_identity() == "random:seed=0"
    assert tiny.info.native_sample_rate == 16_000
    pipe = tiny.pipe
    expected = sum(
        p.numel()
        for m in (
            pipe.unet,
            pipe.vae,
            pipe.text_encoder,
            pipe.text_encoder_2,
            pipe.vocoder,
            pipe.projection_model,
            pipe.language_model,
        )
        for p in m.parameters()
    )
    assert tiny.parameter_count() == expected > 0
    # real frame rate: 160 samples per mel frame at 16 kHz
    assert int(np.prod(pipe.vocoder.config.upsample_rates)) == 160 and pipe.vocoder.config.sampling_rate == 16_000


def test_t5_tokenizer_layout():
    tok = t5_style_tokenizer()
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    ids = tok("a dog barks")["input_ids"]
    assert ids[-1] == 1 and 0 not in ids and 2 not in ids
    assert t5_style_tokenizer()("a dog barks")["input_ids"] == ids  # deterministic


def test_generates_ten_seconds_at_16k_without_reranking(tiny, monkeypatch):
    def no_reranking(*args, **kwargs):
        raise AssertionError("CLAP re-ranking must not run under the protocol")

    monkeypatch.setattr(tiny.pipe, "score_waveforms", no_reranking)
    waves = tiny.generate(PROMPTS[:2], seed=0, steps=STEPS)
    assert len(waves) == 2
    for w in waves:
        assert w.dtype == np.float32 and w.shape == (160_000,)
        assert np.isfinite(w).all() and w.std() > 1e-4
    rec = tiny.last_record
    assert (rec.native_sample_rate, rec.output_sample_rate, rec.resampled) == (16_000, 16_000, False)
    assert rec.extra == {"ddim_eta": 1.0, "unconditional_gpt2": "zeros"}


def official_generate_batch(
    pipe, prompt: str, seed: int, *, steps: int, guidance: float, duration: float
) -> torch.Tensor:
    """haoheliu/AudioLDM2, one prompt as the CLI runs it (n_gen 1): `audioldm2/pipeline.py` text_to_audio
    (latent_t_size = int(duration * latent_t_per_second)) -> `latent_diffusion/models/ddpm.py`
    LatentDiffusion.generate_batch(ddim_eta=1.0) -> DDIMSampler (two UNet calls, uncond and cond) ->
    decode_first_stage (1.0 / scale_factor * z) -> mel_spectrogram_to_waveform.

    Unconditional conditioning (generate_batch: each cond model's `get_unconditional_condition`):
    - crossattn_audiomae_generated: `SequenceGenAudioMAECond.get_unconditional_condition` hands on the AudioMAE
      branch's `AudioMAEConditionCTPoolRand.get_unconditional_condition`: zeros of 512 / (8 * 8) = 8 tokens, mask 1;
    - crossattn_flan_t5: `FlanT5HiddenState.get_unconditional_condition`: the encoder on [""] (max_length 128,
      padding=True: one token), mask 1.
    The conditional branch (CLAP -> projection -> GPT-2 generating 8 states; FLAN-T5 states) is taken from the
    diffusers pipeline's `encode_prompt`; it is not what this test is about."""
    with torch.no_grad():
        cond_t5, cond_mask, cond_gpt = pipe.encode_prompt(
            [prompt], torch.device("cpu"), 1, do_classifier_free_guidance=False
        )
        tok = pipe.tokenizer_2([""], max_length=128, padding=True, truncation=True, return_tensors="pt")
        unc_t5 = pipe.text_encoder_2(input_ids=tok.input_ids, attention_mask=tok.attention_mask)[0]
        unc_mask = torch.ones(unc_t5.shape[:2])
        unc_gpt = torch.zeros(1, 512 // (8 * 8), pipe.language_model.config.n_embd)
        assert unc_t5.shape[1] == 1 and unc_gpt.shape == cond_gpt.shape

        def eps(x, t, conditional):
            gpt, t5, mask = (cond_gpt, cond_t5, cond_mask) if conditional else (unc_gpt, unc_t5, unc_mask)
            return pipe.unet(
                x, t, encoder_hidden_states=gpt, encoder_hidden_states_1=t5, encoder_attention_mask_1=mask
            ).sample

        vae_scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
        # 25.6 latent frames/s is 102.4 mel frames/s over the released 4x VAE; the tiny VAE downsamples 2x
        t_size = official_latent_t_size(duration, latent_t_per_second=102.4 / vae_scale)
        shape = (1, pipe.unet.config.in_channels, t_size, pipe.vocoder.config.model_in_dim // vae_scale)
        z = official_ddim_sample(
            eps,
            shape,
            torch.Generator().manual_seed(seed),
            steps=steps,
            eta=1.0,
            guidance=guidance,
            alphas_cumprod=official_alphas_cumprod(0.0015, 0.0195),
        )
        mel = pipe.vae.decode(1.0 / pipe.vae.config.scaling_factor * z).sample
        return pipe.vocoder(mel.squeeze(1))[0]


def test_plugin_follows_the_official_sampler(tiny):
    """Issue 13 item 1: eta 1, official-length latents (int(2.5 * 25.6) = 64 frames = 2.56 s for 2.5 s with the
    released 4x VAE; 256 = 10.24 s for 10 s) and zeros as the unconditional GPT-2 branch. Two prompts of
    different T5 lengths in one batch (the padding path). The old plugin (eta 0, 2.50 s, GPT-2 on "") fails."""
    prompts, seeds = [PROMPTS[1], PROMPTS[2]], [21, 22]
    ours = tiny.generate(prompts, seed=seeds, steps=STEPS, guidance=3.5, duration=2.5)
    for prompt, seed, wave in zip(prompts, seeds, ours):
        ref = official_generate_batch(tiny.pipe, prompt, seed, steps=STEPS, guidance=3.5, duration=2.5)
        assert ref.shape == (40_960,) and wave.shape == (40_000,)
        # float32 rounding only (official schedule float64 -> float32, diffusers' float32; masked T5 padding)
        np.testing.assert_allclose(wave, ref.numpy()[:40_000], atol=2e-6, rtol=0)


def test_official_length_and_unconditional_branch(tiny):
    """256 latent frames (10.24 s) for 10 s, not diffusers' 250; the unconditional GPT-2 states are zeros,
    not diffusers' GPT-2 run on the empty prompt."""
    assert official_latent_t_size(10.0) == 256
    assert tiny.official_audio_length(10.0) == pytest.approx(10.24)  # 512 frames of the tiny 2x VAE = 1024 mel frames
    with torch.no_grad():
        parts = tiny._encode_one(PROMPTS[0], True)
        _, _, diffusers_generated = tiny.pipe.encode_prompt(
            [PROMPTS[0]], torch.device("cpu"), 1, do_classifier_free_guidance=True
        )
    assert parts["neg_gen"].shape == parts["pos_gen"].shape == (1, 8, 16)
    assert torch.count_nonzero(parts["neg_gen"]) == 0
    assert diffusers_generated[0].abs().max() > 1e-3  # what diffusers would have used instead


def test_parity_with_one_prompt_diffusers_calls(diffusers_unconditional):
    tiny = diffusers_unconditional
    prompts, seeds = [PROMPTS[1], PROMPTS[2]], [11, 12]  # longest and shortest: the second is padded
    ours = tiny.generate(prompts, seed=seeds, steps=STEPS, guidance=3.5, duration=SHORT)
    for prompt, seed, wave in zip(prompts, seeds, ours):
        ref = _direct(tiny, [prompt], [seed], duration=SHORT)[0]
        assert ref.shape == wave.shape == (32_000,)
        np.testing.assert_allclose(wave, ref, atol=1e-6, rtol=0)


def test_parity_with_a_batched_diffusers_call_when_lengths_agree(diffusers_unconditional):
    """With equal T5 lengths diffusers' batched call has no padding; ours must equal it."""
    tiny = diffusers_unconditional
    tok = tiny.pipe.tokenizer_2
    prompts = ["a dog barks", "a cat meows"]
    assert len(tok(prompts[0])["input_ids"]) == len(tok(prompts[1])["input_ids"])
    ours = np.stack(tiny.generate(prompts, seed=[4, 5], steps=STEPS, duration=SHORT))
    ref = _direct(tiny, prompts, [4, 5], duration=SHORT)
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)


def test_guidance_one_skips_the_unconditional_branch(tiny):
    a = tiny.generate(PROMPTS[:1], seed=[3], steps=STEPS, guidance=1.0, duration=SHORT)[0]
    ref = _direct(tiny, PROMPTS[:1], [3], guidance=1.0, duration=SHORT)[0]
    np.testing.assert_allclose(a, ref, atol=1e-6, rtol=0)
    b = tiny.generate(PROMPTS[:1], seed=[3], steps=STEPS, guidance=3.5, duration=SHORT)[0]
    assert np.abs(a - b).max() > 1e-4


def test_audioldm2_l_offline_names_the_missing_checkpoint(offline):
    plugin = AudioLDM2Large()
    ok, message = plugin.checkpoint_status()
    assert ok is False and "cvssp/audioldm2-large" in message and "--model-checkpoint audioldm2-l=" in message
    with pytest.raises(FileNotFoundError, match="cvssp/audioldm2-large"):
        plugin.load()


def test_audioldm2_l_loads_a_local_diffusers_folder(tiny, tmp_path, offline):
    folder = tmp_path / "audioldm2-large"
    tiny.pipe.save_pretrained(str(folder))
    plugin = AudioLDM2Large(checkpoint=str(folder))
    assert plugin.checkpoint_status()[0]
    assert plugin.checkpoint_identity().startswith("sha256:")
    assert plugin.parameter_count() == tiny.parameter_count()
    loaded = plugin.generate(PROMPTS[:2], seed=[7, 8], steps=2, duration=SHORT)
    direct = tiny.generate(PROMPTS[:2], seed=[7, 8], steps=2, duration=SHORT)
    for x, y in zip(loaded, direct):
        np.testing.assert_allclose(x, y, atol=1e-6, rtol=0)
