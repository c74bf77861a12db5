"""Bench plugins genau-tiny, genau-s, genau-l (official files by path; clear errors when missing)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from bench.plugins.base import TextToAudioPlugin
from bench.plugins.genau import GenAuLarge, GenAuSmall, GenAuTiny

OFFICIAL_FILES = [
    "genau-full-s.ckpt",
    "genau-full-s.yaml",
    "1dvae_64_344999.ckpt",
    "hifigan_16k_64bins.ckpt",
    "hifigan_16k_64bins.json",
    "clap_htsat_tiny.pt",
    "flan-t5-large",
    "roberta-base",
]


@pytest.fixture(autouse=True)
def _isolated_checkpoint_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAU_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GENAU_BENCH_CHECKPOINTS", str(tmp_path / "ckpts"))


def test_plugin_infos():
    for cls in (GenAuTiny, GenAuSmall, GenAuLarge):
        assert issubclass(cls, TextToAudioPlugin)
        assert cls.info.native_sample_rate == 16000 and cls.info.defaults.sampler == "DDIM (eta 1)"
        assert "eta=1.0" in cls.info.notes and "no CLAP re-ranking" in cls.info.notes
    assert (GenAuSmall.info.name, GenAuSmall.info.paper_params) == ("genau-s", "493M")
    assert (GenAuLarge.info.name, GenAuLarge.info.paper_params) == ("genau-l", "1.25B")
    assert (GenAuSmall.info.defaults.steps, GenAuSmall.info.defaults.guidance) == (200, 3.5)
    steps = GenAuTiny.info.defaults.steps
    assert GenAuTiny.info.tiny and f"{steps} DDIM steps" in GenAuTiny.info.notes
    assert "Griffin-Lim" in GenAuTiny.info.notes and "demo" in GenAuTiny.info.training_data


def test_tiny_random_generates_a_batch_of_four_10_s_clips():
    """The random-weight variant (HiFi-GAN vocoder) at the default 10 s. Determinism, batch independence,
    exact length and the manifest fields of the registry's genau-tiny: tests/bench/plugins/test_plugin_contract.py."""
    plugin = GenAuTiny(checkpoint="random")
    assert plugin.checkpoint_status()[0] and plugin.checkpoint_identity() == "random:seed=0"
    assert plugin.weights == "random"
    prompts = ["a dog barks while rain falls", "a bell rings twice", "birds chirp", "an engine idles"]
    plugin.load()
    plugin._loaded = True
    assert plugin.model.cfg.vocoder_type == "hifigan"
    waves = plugin.generate(prompts, seed=[0, 1, 2, 3], steps=10)  # 10 DDIM steps, guidance 3.5, 10 s
    assert len(waves) == 4 and all(w.shape == (160000,) and w.dtype == np.float32 for w in waves)
    assert all(np.isfinite(w).all() and np.abs(w).max() > 0 for w in waves)
    assert plugin.last_record.native_sample_rate == 16000 and not plugin.last_record.resampled
    assert plugin.parameter_count() == sum(plugin.component_parameters().values()) > 0


def test_tiny_default_is_the_shipped_trained_weights():
    from genau_core.genau.model import WEIGHTS_NAME
    from genau_core.genau.tiny_weights import WEIGHTS_DIR

    plugin = GenAuTiny()
    ok, where = plugin.checkpoint_status()
    assert ok and where == str(WEIGHTS_DIR / WEIGHTS_NAME)
    assert plugin.weights == "tiny-trained"
    assert (
        plugin.checkpoint_identity()
        == "sha256:" + hashlib.sha256((WEIGHTS_DIR / WEIGHTS_NAME).read_bytes()).hexdigest()
    )


def test_tiny_loads_our_saved_weights(tmp_path):
    from genau_core.genau import GENAU_TINY, build_genau, save_pretrained

    save_pretrained(build_genau(GENAU_TINY, seed=3), tmp_path / "trained")
    plugin = GenAuTiny(checkpoint=str(tmp_path / "trained"))
    ok, where = plugin.checkpoint_status()
    assert ok and plugin.weights == "tiny-trained" and plugin.checkpoint_identity().startswith("sha256:")
    a = plugin.generate(["a cat meows"], seed=0, steps=2, duration=1.0)[0]
    b = GenAuTiny(checkpoint="random").generate(["a cat meows"], seed=0, steps=2, duration=1.0)[0]
    assert a.shape == b.shape == (16000,) and np.abs(a - b).max() > 1e-4  # different weights
    missing = GenAuTiny(checkpoint=str(tmp_path / "nowhere"))
    assert not missing.checkpoint_status()[0]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        missing.load()


@pytest.mark.parametrize("cls, size", [(GenAuSmall, "s"), (GenAuLarge, "l")])
def test_official_plugins_name_every_missing_file(cls, size, tmp_path):
    plugin = cls()
    ok, msg = plugin.checkpoint_status()
    assert not ok
    for name in [f.replace("-s.", f"-{size}.") for f in OFFICIAL_FILES]:
        assert name in msg
    assert str(tmp_path / "ckpts") in msg
    with pytest.raises(FileNotFoundError, match=f"genau-full-{size}.ckpt"):
        plugin.load()
    with pytest.raises(FileNotFoundError):
        plugin.checkpoint_identity()


def test_official_plugin_finds_and_loads_release_shaped_files(tmp_path, monkeypatch):
    """Files named as in the release, in $GENAU_BENCH_CHECKPOINTS (tiny sizes, official layouts)."""
    from tests.genau_core.genau.test_genau_mapping import write_release_files

    folder = tmp_path / "ckpts"
    write_release_files(folder, size="s", seed=11)
    plugin = GenAuSmall()
    ok, where = plugin.checkpoint_status()
    assert ok and where == str(folder / "genau-full-s.ckpt")
    assert plugin.checkpoint_identity().startswith("sha256:")
    waves = plugin.generate(["a dog barks"], seed=7, steps=2, guidance=4.0, duration=1.0)
    assert waves[0].shape == (16000,) and np.isfinite(waves[0]).all()
    assert plugin.parameter_count() == sum(p.numel() for p in plugin.model.parameters())
    # the explicit form: a folder holding all files
    monkeypatch.setenv("GENAU_BENCH_CHECKPOINTS", str(tmp_path / "empty"))
    assert not GenAuSmall().checkpoint_status()[0]
    assert GenAuSmall(checkpoint=str(folder)).checkpoint_status()[0]
    assert GenAuSmall(checkpoint=str(folder / "genau-full-s.ckpt")).checkpoint_status()[0]
    torch.testing.assert_close(plugin.model.scale_factor, torch.tensor(0.75))
