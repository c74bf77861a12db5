"""AudioLDM-L plugin: the tiny twin against diffusers' own AudioLDMPipeline (issue 7, item 5).

Everything runs offline on tiny random components (seed 0); steps are kept small so the
file finishes in seconds on 2 CPU cores.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.plugins.audioldm import AudioLDMLarge, AudioLDMTiny, _audioldm_pipeline_class
from tests.plugin_helpers import direct_diffusers_audio, loaded_tiny

STEPS = 3
SHORT = 2.0  # seconds; properties that do not depend on length are checked on short clips
PROMPTS = ["a dog barks while birds chirp", "rain falls on a tin roof with distant thunder", "a bell rings"]


@pytest.fixture(scope="module")
def tiny() -> AudioLDMTiny:
    return loaded_tiny(AudioLDMTiny)


def _direct_pipeline(components, prompts, seeds, *, steps=STEPS, guidance=2.5, duration=10.0) -> np.ndarray:
    """Reference: diffusers' AudioLDMPipeline called directly, one generator per prompt."""
    return direct_diffusers_audio(_audioldm_pipeline_class(), components, prompts, seeds, steps=steps, guidance=guidance, duration=duration)


def test_tiny_info_identity_and_parameter_count(tiny):
    info = tiny.info
    assert info.tiny and info.native_sample_rate == 16_000
    assert (info.defaults.sampler, info.defaults.steps, info.defaults.guidance, info.defaults.duration_s) == ("DDIM", 10, 2.5, 10.0)
    assert tiny.weights == "random"
    assert tiny.checkpoint_identity() == "random:seed=0"
    assert tiny.checkpoint_status()[0] is True
    expected = sum(
        p.numel() for m in (tiny.pipe.unet, tiny.pipe.vae, tiny.pipe.text_encoder, tiny.pipe.vocoder) for p in m.parameters()
    )
    assert tiny.parameter_count() == expected > 0
    # the real model keeps the official settings as its defaults
    d = AudioLDMLarge.info.defaults
    assert (d.sampler, d.steps, d.guidance, d.duration_s) == ("DDIM", 200, 2.5, 10.0)


def test_generates_ten_seconds_at_16k(tiny):
    waves = tiny.generate(PROMPTS[:2], seed=0, steps=STEPS)
    assert len(waves) == 2
    for w in waves:
        assert w.dtype == np.float32 and w.shape == (160_000,)
        assert np.isfinite(w).all() and w.std() > 1e-4
    assert not np.allclose(waves[0], waves[1])
    rec = tiny.last_record
    assert (rec.native_sample_rate, rec.output_sample_rate, rec.resampled, rec.resampler) == (16_000, 16_000, False, None)


def test_parity_with_diffusers_audioldm_pipeline(tiny):
    seeds = [11, 12, 13]
    ours = np.stack(tiny.generate(PROMPTS, seed=seeds, steps=STEPS, guidance=2.5, duration=10.0))
    ref = _direct_pipeline(tiny.pipe.components, PROMPTS, seeds)
    assert ref.shape == ours.shape == (3, 160_000)
    np.testing.assert_array_equal(ours, ref)


def test_seed_determinism_across_instances(tiny):
    """A fresh instance rebuilds identical weights; the same seed gives the same clip."""
    other = AudioLDMTiny()
    a = tiny.generate(PROMPTS[:1], seed=[5], steps=STEPS, duration=SHORT)[0]
    b = other.generate(PROMPTS[:1], seed=[5], steps=STEPS, duration=SHORT)[0]
    c = other.generate(PROMPTS[:1], seed=[6], steps=STEPS, duration=SHORT)[0]
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_outputs_do_not_depend_on_batch_composition(tiny):
    together = tiny.generate(PROMPTS, seed=[1, 2, 3], steps=STEPS, duration=SHORT, batch_size=3)
    alone = tiny.generate(PROMPTS[1:2], seed=[2], steps=STEPS, duration=SHORT)[0]
    reordered = tiny.generate([PROMPTS[2], PROMPTS[0]], seed=[3, 1], steps=STEPS, duration=SHORT, batch_size=2)
    np.testing.assert_allclose(together[1], alone, atol=1e-6, rtol=0)
    np.testing.assert_allclose(together[2], reordered[0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(together[0], reordered[1], atol=1e-6, rtol=0)


def test_guidance_is_passed_through(tiny):
    a = tiny.generate(PROMPTS[:1], seed=[3], steps=STEPS, guidance=2.5, duration=SHORT)[0]
    b = tiny.generate(PROMPTS[:1], seed=[3], steps=STEPS, guidance=1.0, duration=SHORT)[0]
    assert np.abs(a - b).max() > 1e-4


def test_audioldm_l_offline_names_the_missing_checkpoint(offline):
    plugin = AudioLDMLarge()
    ok, message = plugin.checkpoint_status()
    assert ok is False
    assert "cvssp/audioldm-l-full" in message and "--checkpoint" in message
    with pytest.raises(FileNotFoundError, match="cvssp/audioldm-l-full"):
        plugin.load()
    with pytest.raises(FileNotFoundError, match="cvssp/audioldm-l-full"):
        plugin.checkpoint_identity()


def test_audioldm_l_loads_a_local_diffusers_folder(tiny, tmp_path, offline):
    """The real loading path (from_pretrained on a diffusers folder) on a saved tiny pipeline."""
    folder = tmp_path / "audioldm-l-full"
    tiny.pipe.save_pretrained(str(folder))
    plugin = AudioLDMLarge(checkpoint=str(folder))
    ok, message = plugin.checkpoint_status()
    assert ok and "local folder" in message
    identity = plugin.checkpoint_identity()
    assert identity.startswith("sha256:") and len(identity) == len("sha256:") + 64
    assert plugin.parameter_count() == tiny.parameter_count()
    loaded = plugin.generate(PROMPTS[:1], seed=[7], steps=2, duration=SHORT)[0]
    direct = tiny.generate(PROMPTS[:1], seed=[7], steps=2, duration=SHORT)[0]
    assert loaded.shape == (32_000,)
    # save/load round trip: same weights; attention kernels may differ in the last float bits
    np.testing.assert_allclose(loaded, direct, atol=1e-6, rtol=0)
