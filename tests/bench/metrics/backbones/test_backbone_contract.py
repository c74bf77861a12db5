"""The contract every metric backbone keeps (bench/metrics/backbones/base.py), checked for every name in
`bench.metrics.backbones.BACKBONES`:

- `init_random(seed)` builds the network from a fixed seed, offline, and names itself honestly
  (`identity`: the registry name, its rate, "random:seed=N", weights "random", source "in-process");
- `embed` returns one dict per clip with exactly the keys in `outputs`, float32 and finite, an
  "embedding" of shape (dims,) and "frames" of shape (n, dims);
- the same seed gives the same numbers (a second network built from the seed), another seed others;
- a clip's outputs do not depend on the batch it is embedded in (alone, batch size 1, vs. in a batch
  with a clip of another length); text towers likewise for `embed_text`;
- the checkpoint loader's missing-file error is one `GenauBenchError` line naming the file (and, when
  nothing is given, the file name looked for and where to get it).

Each case uses the smallest configuration the class accepts (`config=`; the test tokenizers for the
text towers). Cnn14 and VGGish take no configuration, so their cases run the full networks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

from bench.errors import GenauBenchError, one_line
from bench.metrics.backbones import BACKBONES, AudioBackbone, TextAudioBackbone, backbone_class

# The last is longer than the tiny configurations' 16-token text length (the towers that cut texts cut it;
# MS-CLAP 2023 refuses a text longer than its 64 positions, as msclap does not truncate).
TEXTS = ["a dog barks loudly", "rain on a roof", "a man speaks " * 8]
SEED = 0


@dataclass(frozen=True)
class Case:
    """How to build backbone `name` small: constructor keywords (made lazily, so collecting the tests
    builds nothing) and the output sizes that a smaller configuration changes."""

    kwargs: Callable[[], dict] = dict
    dims: dict[str, int] = field(default_factory=dict)  # output key -> last dimension, where not `embedding_dim`


def _laion(fusion: bool = False) -> dict:
    from genau_core.networks.laion_clap import tiny_laion_clap_config
    from genau_core.networks.laion_clap_fusion import fusion_config
    from genau_core.tokenizers import bpe_roberta_tokenizer

    tok = bpe_roberta_tokenizer()
    cfg = tiny_laion_clap_config(len(tok))  # 1-s clips, 16 mels, 3 Swin stages, 2-layer RoBERTa; 512-d output
    return {"config": fusion_config(cfg) if fusion else cfg, "tokenizer": tok}


def _ms_clap(version: str) -> dict:
    from genau_core.networks.ms_clap import tiny_ms_clap_config
    from genau_core.tokenizers import wordpiece_bert_tokenizer, bpe_gpt2_tokenizer

    tok = wordpiece_bert_tokenizer() if version == "2022" else bpe_gpt2_tokenizer()
    return {"config": tiny_ms_clap_config(version, len(tok)), "tokenizer": tok}


def _passt() -> dict:
    from bench.metrics.backbones.passt import PasstConfig

    return {"config": PasstConfig(embed_dim=32, depth=2, num_heads=4)}


def _openl3() -> dict:
    from bench.metrics.backbones.openl3 import OPENL3_MEL256_ENV_512

    return {"config": dataclasses.replace(OPENL3_MEL256_ENV_512, widths=(4, 8, 8, 16))}


def _aesthetics() -> dict:
    from bench.metrics.backbones.aesthetics import tiny_aesthetics_config

    return {"config": tiny_aesthetics_config()}


CASES: dict[str, Case] = {
    "panns-cnn14-16k": Case(),
    "vggish": Case(),
    "laion-clap-htsat-base": Case(_laion),
    "laion-clap-htsat-tiny": Case(_laion),
    "laion-clap-htsat-tiny-fusion": Case(lambda: _laion(fusion=True)),
    "laion-clap-htsat-tiny-fusion-stable-audio": Case(lambda: _laion(fusion=True)),
    "panns-cnn14-16k-av-benchmark": Case(),
    "vggish-av-benchmark": Case(),
    "laion-clap-htsat-base-av-benchmark": Case(_laion),
    "ms-clap-2022": Case(lambda: _ms_clap("2022")),
    "ms-clap-2023": Case(lambda: _ms_clap("2023")),
    "passt-s-ap476": Case(_passt, {"embedding": 32}),
    "passt-s-ap476-stable-audio": Case(_passt, {"embedding": 32}),
    "passt-s-ap476-av-benchmark": Case(_passt, {"embedding": 32}),
    "openl3-mel256-env-512": Case(_openl3, {"frames": 32}),  # [left | right] of the 16-wide last block
    "openl3-mel256-env-512-stable-audio": Case(_openl3, {"frames": 32}),
    "audiobox-aesthetics": Case(_aesthetics),
}
# The full Cnn14 (80M parameters, no smaller configuration) takes > 10 s per case on 2 shared cores.
SLOW = {"panns-cnn14-16k", "panns-cnn14-16k-av-benchmark"}
NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in BACKBONES]


def test_every_registered_backbone_has_a_case():
    assert set(CASES) == set(BACKBONES), "add a Case for each new backbone (smallest configuration it accepts)"


def _build(name: str, seed: int = SEED, **extra) -> AudioBackbone:
    return backbone_class(name)(**CASES[name].kwargs(), **extra).init_random(seed)


def _clips(backbone: AudioBackbone) -> list[np.ndarray]:
    """Two clips of different lengths (1.0 s and 1.7 s) at the backbone's rate, prepared as the suite does."""
    sr = backbone.sample_rate
    rng = np.random.default_rng(7)
    waves = []
    for k, seconds in enumerate((1.0, 1.7)):
        t = np.arange(int(seconds * sr)) / sr
        tone = 0.3 * np.sin(2 * np.pi * (220 + 330 * k) * t) + 0.05 * rng.standard_normal(len(t))
        waves.append(tone.astype(np.float32))
    return [backbone.prepare(w) for w in waves]


@dataclass
class Embedded:
    name: str
    backbone: AudioBackbone  # built from SEED
    clips: list[np.ndarray]
    out: list[dict[str, np.ndarray]]  # the two clips embedded in one batch


@pytest.fixture(scope="module", params=NAMES)
def case(request) -> Embedded:
    """One backbone at a time (pytest groups the tests by this module-scoped parameter)."""
    backbone = _build(request.param)
    clips = _clips(backbone)
    return Embedded(request.param, backbone, clips, backbone.embed(clips))


def test_random_init_names_itself(case):
    cls = backbone_class(case.name)
    assert case.backbone.name == case.name and case.backbone.sample_rate == cls.sample_rate
    assert case.backbone.identity.to_dict() == {
        "name": case.name,
        "sample_rate": cls.sample_rate,
        "checkpoint_id": f"random:seed={SEED}",
        "weights": "random",
        "source": "in-process",
    }
    assert case.backbone.checkpoint_id == f"random:seed={SEED}"


def test_outputs_have_the_declared_keys_and_shapes(case):
    backbone, out, dims = case.backbone, case.out, CASES[case.name].dims
    assert len(out) == len(case.clips)
    for o in out:
        assert set(o) == set(backbone.outputs), (set(o), backbone.outputs)
        for key, value in o.items():
            assert isinstance(value, np.ndarray) and value.dtype == np.float32, (key, type(value))
            assert np.isfinite(value).all(), key
        if "embedding" in o:
            assert o["embedding"].shape == (dims.get("embedding", backbone.embedding_dim),)
        if "frames" in o:
            frames = o["frames"]
            assert frames.ndim == 2 and frames.shape[0] >= 1
            assert frames.shape[1] == dims.get("frames", backbone.embedding_dim)
    for key in backbone.outputs:  # every output but "frames" has one shape whatever the clip length
        if key != "frames":
            assert out[0][key].shape == out[1][key].shape, key


def test_same_seed_same_numbers_other_seed_others(case):
    again = _build(case.name).embed(case.clips)
    for a, b in zip(case.out, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    other = _build(case.name, seed=SEED + 1).embed(case.clips)
    differs = max(float(np.abs(a[k] - b[k]).max()) for a, b in zip(case.out, other) for k in a)
    assert differs > 1e-4, f"{case.name}: seed {SEED + 1} gives the numbers of seed {SEED}"


def test_a_clip_is_the_same_alone_and_in_a_batch(case):
    backbone = case.backbone
    assert backbone.batch_size >= 2  # the two clips went through one forward pass together
    batch_size, backbone.batch_size = backbone.batch_size, 1
    try:
        alone = backbone.embed([case.clips[1]])[0]
    finally:
        backbone.batch_size = batch_size
    for key, value in case.out[1].items():
        # Batched matrix products may round differently from single ones (measured: <= 1e-6 on every case).
        np.testing.assert_allclose(alone[key], value, rtol=1e-5, atol=1e-6, err_msg=key)


def test_text_embeddings_are_deterministic_and_batch_independent(case):
    backbone = case.backbone
    if not isinstance(backbone, TextAudioBackbone):
        pytest.skip(f"{case.name} has no text tower")
    t = backbone.embed_text(TEXTS)
    assert t.shape == (len(TEXTS), backbone.embedding_dim) and t.dtype == np.float32 and np.isfinite(t).all()
    np.testing.assert_array_equal(_build(case.name).embed_text(TEXTS), t)
    one_by_one = np.concatenate([backbone.embed_text([text]) for text in TEXTS])
    np.testing.assert_allclose(one_by_one, t, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_missing_checkpoint_is_one_error_line(name, tmp_path, monkeypatch):
    monkeypatch.setenv("GENAU_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GENAU_BENCH_CHECKPOINTS", str(tmp_path / "empty"))
    cls = backbone_class(name)
    shell = cls(**CASES[name].kwargs())  # constructors build no network
    missing = tmp_path / "no-such-file.pt"
    with pytest.raises(GenauBenchError) as e:
        shell.load(missing)
    assert isinstance(e.value, FileNotFoundError)  # callers that catch the stdlib type keep working
    assert one_line(e.value) == str(e.value) and str(missing) in str(e.value)
    with pytest.raises(GenauBenchError) as e:
        shell.load()  # looked for in the (empty) checkpoint folders
    message = str(e.value)
    assert one_line(e.value) == message
    assert shell.checkpoint_filename in message and str(tmp_path / "empty") in message
    assert cls.checkpoint_source in message  # where to get it
