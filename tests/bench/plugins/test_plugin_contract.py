"""The contract every model plugin keeps (bench/plugins/base.py), checked for every `-tiny` plugin of the
registry (`bench.plugins.registry.BUILTIN_PLUGINS`), each as the registry builds it (`cls()`):

- offline: its status says available without any file or network, and it builds and generates with
  every socket refused; it is labelled as tiny (weights "random" or "tiny-trained");
- determinism: a second instance with the same seeds gives the same samples, bit for bit;
- batch independence: a clip generated alone is the one generated in a batch of two;
- exact length and rate: `native=True` gives `duration` seconds at `info.native_sample_rate` with
  `info.native_channels` channels (what the run store keeps), the default gives the protocol's
  16 kHz mono, exactly `duration` seconds;
- manifest fields: `last_record` is a `GenerationRecord` saying what happened (rates, resampler,
  downmix, native output), carrying `generation_extra()` and `prompt_records(prompts)`, and its
  manifest part is strict JSON.

Each plugin generates three times (2 clips of 0.73 s in 2 sampler steps: native batch, native alone,
protocol-rate batch from a second instance); the 0.73 s length is not a multiple of any latent hop,
so every plugin's cut / pad to the exact length is exercised.
"""

from __future__ import annotations

import json
import socket
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pytest

from bench.audio import resample
from bench.plugins.base import GenerationRecord, TextToAudioPlugin, _fit_length
from bench.plugins.registry import BUILTIN_PLUGINS, get_plugin_class
from bench.protocol import PROTOCOL

PROMPTS = ["a dog barks while rain falls", "a bell rings twice"]
SEEDS = [11, 12]
STEPS = 2
DURATION = 0.73
TINY = [name for name in BUILTIN_PLUGINS if name.endswith("-tiny")]
# More than ~10 s per plugin on 2 shared CPU cores: genau-tiny's shipped weights decode with Griffin-Lim
# (60 NNLS + 32 phase iterations on every clip; 20-40 s for the three generations, measured under load).
SLOW = {"genau-tiny"}
# A clip alone vs. in a batch: the same computation up to the rounding of batched matrix products
# (measured: <= 1.7e-6 for every plugin but genau-tiny). Griffin-Lim amplifies that rounding ~30x
# (measured: a 1e-6 change of the log-mel moves the waveform by 2.9e-5; alone vs. batch 9.5e-4).
BATCH_ATOL = {"genau-tiny": 2e-3}


def test_every_model_has_a_tiny_twin_in_the_registry():
    assert TINY, "no -tiny plugin registered"
    for name in BUILTIN_PLUGINS:
        if not name.endswith("-tiny") and not name.startswith("genau-"):  # genau-tiny stands in for the three releases
            assert f"{name}-tiny" in BUILTIN_PLUGINS, name


@contextmanager
def no_network():
    """Every socket connection fails: a plugin that reaches for a hub or a download fails loudly."""

    def refuse(*_args, **_kwargs):
        raise OSError("network access in an offline test")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        yield


@dataclass
class Generated:
    name: str
    plugin: TextToAudioPlugin
    status: tuple[bool, str]
    native_batch: list[np.ndarray]
    native_record: GenerationRecord
    native_alone: list[np.ndarray]
    protocol_batch: list[np.ndarray]  # from a second instance
    protocol_record: GenerationRecord
    second: TextToAudioPlugin


@pytest.fixture(scope="module", params=[pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in TINY])
def run(request, tmp_path_factory) -> Generated:
    """One plugin at a time (pytest groups the tests by this module-scoped parameter)."""
    name = request.param
    with pytest.MonkeyPatch.context() as mp, no_network():
        mp.setenv("GENAU_BENCH_CHECKPOINTS", str(tmp_path_factory.mktemp("no-checkpoints")))  # nothing to find
        plugin = get_plugin_class(name)()
        status = plugin.checkpoint_status()
        common = {"steps": STEPS, "duration": DURATION}
        native_batch = plugin.generate(PROMPTS, seed=SEEDS, batch_size=2, native=True, **common)
        native_record = plugin.last_record
        native_alone = plugin.generate(PROMPTS[1:], seed=SEEDS[1:], batch_size=1, native=True, **common)
        second = get_plugin_class(name)()
        protocol_batch = second.generate(PROMPTS, seed=SEEDS, batch_size=2, **common)
    return Generated(
        name, plugin, status, native_batch, native_record, native_alone, protocol_batch, second.last_record, second
    )


def test_offline_status_and_labels(run):
    available, where = run.status
    assert available is True and isinstance(where, str) and where, run.status
    info = run.plugin.info
    assert info.name == run.name and info.tiny
    assert run.plugin.weights in ("random", "tiny-trained")
    assert run.plugin.checkpoint_identity().startswith(("random:", "sha256:"))
    assert isinstance(run.plugin.parameter_count(), int) and run.plugin.parameter_count() > 0
    json.dumps(info.to_dict(), allow_nan=False)  # copied into every manifest and leaderboard row


def test_same_seed_same_samples(run):
    """The second instance's protocol-rate clips are the first instance's native clips taken to the protocol
    rate (the base class's channel mean, named resampler and exact cut), bit for bit."""
    sr, n = run.plugin.info.native_sample_rate, round(DURATION * PROTOCOL.sample_rate)
    for mine, theirs in zip(run.native_batch, run.protocol_batch):
        mono = mine.mean(axis=0, dtype=np.float32) if mine.ndim == 2 else mine
        expected = _fit_length(resample(mono, sr, PROTOCOL.sample_rate, PROTOCOL.resampler), n)
        np.testing.assert_array_equal(expected, theirs)
    assert np.abs(run.native_batch[0] - run.native_batch[1]).max() > 1e-4  # another prompt and seed: another clip


def test_a_clip_is_the_same_alone_and_in_a_batch(run):
    atol = BATCH_ATOL.get(run.name, 1e-5)
    np.testing.assert_allclose(run.native_alone[0], run.native_batch[1], rtol=0, atol=atol)


def test_exact_length_rate_and_channels(run):
    info = run.plugin.info
    n_native = round(DURATION * info.native_sample_rate)
    native_shape = (n_native,) if info.native_channels == 1 else (info.native_channels, n_native)
    for w in [*run.native_batch, *run.native_alone]:
        assert w.shape == native_shape and w.dtype == np.float32 and np.isfinite(w).all()
    for w in run.protocol_batch:
        assert w.shape == (round(DURATION * PROTOCOL.sample_rate),) and w.dtype == np.float32
        assert np.isfinite(w).all() and np.abs(w).max() > 0


def test_manifest_fields(run):
    info, native, protocol = run.plugin.info, run.native_record, run.protocol_record
    assert isinstance(native, GenerationRecord) and isinstance(protocol, GenerationRecord)
    for rec in (native, protocol):
        assert rec.native_sample_rate == info.native_sample_rate and rec.native_channels == info.native_channels
        assert rec.prompts == run.plugin.prompt_records(PROMPTS) and len(rec.prompts) == len(PROMPTS)
        manifest = rec.to_manifest()
        json.dumps(manifest, allow_nan=False)  # strict JSON in the run manifest
        assert manifest.get("extra", {}) == (rec.extra or {})
    assert native.extra == run.plugin.generation_extra() and protocol.extra == run.second.generation_extra()
    # native=True: the model's own audio, as the run store keeps it
    assert native.native_output and native.output_sample_rate == info.native_sample_rate
    assert not native.resampled and native.resampler is None and native.downmix is None
    # default: the protocol's rate and channel count, and how they were reached
    resampled = info.native_sample_rate != PROTOCOL.sample_rate
    assert not protocol.native_output and protocol.output_sample_rate == PROTOCOL.sample_rate
    assert protocol.resampled == resampled and protocol.resampler == (PROTOCOL.resampler if resampled else None)
    assert protocol.downmix == ("mean" if info.native_channels > 1 else None)


def test_prompt_records_need_no_weights(run):
    fresh = get_plugin_class(run.name)()
    assert fresh.prompt_records(PROMPTS) == run.native_record.prompts  # a manifest lists them before generating
    assert not fresh._loaded
