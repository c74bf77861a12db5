"""AudioLDM 2-L plugin: the tiny twin against diffusers' own AudioLDM2Pipeline (issue 7, item 5).

The plugin text-encodes every prompt on its own (see bench/plugins/audioldm2.py), so the
reference is a one-prompt call of the diffusers pipeline per prompt with the same seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.plugins.audioldm2 import AudioLDM2Large, AudioLDM2Tiny, _audioldm2_pipeline_class, t5_style_tokenizer
from tests.plugin_helpers import direct_diffusers_audio, loaded_tiny

STEPS = 3
SHORT = 2.0  # seconds; properties that do not depend on length are checked on short clips
# different FLAN-T5 token lengths, so the padding path is exercised
PROMPTS = ["a dog barks while birds chirp", "rain falls on a tin roof with distant thunder", "a bell rings"]


@pytest.fixture(scope="module")
def tiny() -> AudioLDM2Tiny:
    return loaded_tiny(AudioLDM2Tiny)


def _direct(components, prompts, seeds, *, steps=STEPS, guidance=3.5, duration=10.0) -> np.ndarray:
    return direct_diffusers_audio(_audioldm2_pipeline_class(), components, prompts, seeds, steps=steps, guidance=guidance, duration=duration)


def test_info_defaults_identity(tiny):
    d = AudioLDM2Large.info.defaults
    assert (d.sampler, d.steps, d.guidance, d.duration_s) == ("DDIM", 200, 3.5, 10.0)
    t = tiny.info.defaults
    assert (t.sampler, t.steps, t.guidance, t.duration_s) == ("DDIM", 10, 3.5, 10.0)
    assert tiny.info.tiny and tiny.weights == "random" and tiny.checkpoint_identity() == "random:seed=0"
    assert tiny.info.native_sample_rate == 16_000
    pipe = tiny.pipe
    expected = sum(
        p.numel()
        for m in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2, pipe.vocoder, pipe.projection_model, pipe.language_model)
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


def test_parity_with_one_prompt_diffusers_calls(tiny):
    prompts, seeds = [PROMPTS[1], PROMPTS[2]], [11, 12]  # longest and shortest: the second is padded
    ours = tiny.generate(prompts, seed=seeds, steps=STEPS, guidance=3.5, duration=10.0)
    for prompt, seed, wave in zip(prompts, seeds, ours):
        ref = _direct(tiny.pipe.components, [prompt], [seed])[0]
        assert ref.shape == wave.shape == (160_000,)
        np.testing.assert_allclose(wave, ref, atol=1e-6, rtol=0)


def test_parity_with_a_batched_diffusers_call_when_lengths_agree(tiny):
    """With equal T5 lengths diffusers' batched call has no padding; ours must equal it."""
    tok = tiny.pipe.tokenizer_2
    prompts = ["a dog barks", "a cat meows"]
    assert len(tok(prompts[0])["input_ids"]) == len(tok(prompts[1])["input_ids"])
    ours = np.stack(tiny.generate(prompts, seed=[4, 5], steps=STEPS, duration=SHORT))
    ref = _direct(tiny.pipe.components, prompts, [4, 5], duration=SHORT)
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)


def test_outputs_do_not_depend_on_batch_composition(tiny):
    together = tiny.generate(PROMPTS, seed=[1, 2, 3], steps=STEPS, duration=SHORT, batch_size=3)
    alone = tiny.generate(PROMPTS[2:3], seed=[3], steps=STEPS, duration=SHORT)[0]
    pair = tiny.generate([PROMPTS[0], PROMPTS[1]], seed=[1, 2], steps=STEPS, duration=SHORT)
    np.testing.assert_allclose(together[2], alone, atol=1e-6, rtol=0)
    np.testing.assert_allclose(together[0], pair[0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(together[1], pair[1], atol=1e-6, rtol=0)


def test_seed_determinism_across_instances(tiny):
    other = AudioLDM2Tiny()
    a = tiny.generate(PROMPTS[:1], seed=[5], steps=STEPS, duration=SHORT)[0]
    b = other.generate(PROMPTS[:1], seed=[5], steps=STEPS, duration=SHORT)[0]
    c = other.generate(PROMPTS[:1], seed=[6], steps=STEPS, duration=SHORT)[0]
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_guidance_one_skips_the_unconditional_branch(tiny):
    a = tiny.generate(PROMPTS[:1], seed=[3], steps=STEPS, guidance=1.0, duration=SHORT)[0]
    ref = _direct(tiny.pipe.components, PROMPTS[:1], [3], guidance=1.0, duration=SHORT)[0]
    np.testing.assert_allclose(a, ref, atol=1e-6, rtol=0)
    b = tiny.generate(PROMPTS[:1], seed=[3], steps=STEPS, guidance=3.5, duration=SHORT)[0]
    assert np.abs(a - b).max() > 1e-4


def test_audioldm2_l_offline_names_the_missing_checkpoint(offline):
    plugin = AudioLDM2Large()
    ok, message = plugin.checkpoint_status()
    assert ok is False and "cvssp/audioldm2-large" in message
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
