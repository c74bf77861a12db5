"""Scoring protocols and the metric registry: several protocols from one decode, per-clip values,
one table per protocol, and the metric formulas of stable-audio-metrics and av-benchmark checked
against transcriptions of their code.

Stand-in backbones keep this fast; the real networks have their own tests (tests/test_backbone_*.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bench.metrics import backbones as backbone_registry
from bench.metrics import protocols as P
from bench.metrics import registry as R
from bench.metrics import suite
from bench.metrics.backbones.base import AudioBackbone, BackboneIdentity, TextAudioBackbone
from bench.metrics.cache import EmbeddingCache


class _Bands(AudioBackbone):
    name = "fake-bands"
    sample_rate = 16000
    embedding_dim = 8
    outputs = ("embedding", "logits", "frames")
    checkpoint_filename = "fake.pth"

    def load(self, checkpoint=None):
        raise FileNotFoundError("no file")

    def init_random(self, seed=0):
        self.model = object()
        self.identity = BackboneIdentity(self.name, self.sample_rate, f"random:seed={seed}", "random", "in-process")
        return self

    def embed(self, waveforms):
        out = []
        for w in waveforms:
            spec = np.abs(np.fft.rfft(w[: self.sample_rate])) ** 2
            bands = np.log(np.array([b.sum() + 1e-8 for b in np.array_split(spec, 8)])).astype(np.float32)
            out.append({"embedding": bands, "logits": bands, "frames": np.stack([bands, bands + 1])})
        return out


class _Bands32(_Bands):
    name = "fake-bands-32k"
    sample_rate = 32000


class _Quality(_Bands):
    """A reference-free 'aesthetics' stand-in: one score per axis."""

    name = "fake-quality"
    outputs = ("PQ", "PC", "CE", "CU")

    def embed(self, waveforms):
        return [
            {k: np.array([float(np.abs(w).mean()) + i], np.float32) for i, k in enumerate(self.outputs)}
            for w in waveforms
        ]


class _Clap(_Bands, TextAudioBackbone):
    name = "fake-clap"
    sample_rate = 48000
    outputs = ("embedding",)

    def embed_text(self, texts):
        return np.stack([np.random.default_rng(len(t)).standard_normal(8) for t in texts]).astype(np.float32)


FAKES = {"fake-bands": _Bands, "fake-bands-32k": _Bands32, "fake-quality": _Quality, "fake-clap": _Clap}


@pytest.fixture
def fake_protocols(monkeypatch):
    monkeypatch.setattr(backbone_registry, "backbone_class", lambda n: FAKES[n])
    monkeypatch.setattr(suite, "backbone_class", lambda n: FAKES[n])
    one = P.Protocol(
        "t-one",
        "t1",
        "test",
        (
            P.ProtocolMetric("FD", "fake-bands"),
            P.ProtocolMetric("KL_softmax", "fake-bands"),
            P.ProtocolMetric("CLAP_LAION", "fake-clap"),
        ),
    )
    two = P.Protocol(
        "t-two",
        "t2",
        "test",
        (
            P.ProtocolMetric("FD", "fake-bands-32k", (("frames", True),)),
            P.ProtocolMetric("KL_sam", "fake-bands-32k"),
            P.ProtocolMetric("KL_softmax", "fake-bands", (("eps", 0.0),)),
        ),
    )
    quality = P.Protocol(
        "t-quality", "t3", "test", tuple(P.ProtocolMetric(a, "fake-quality") for a in ("PQ", "PC", "CE", "CU"))
    )
    for p in (one, two, quality):
        monkeypatch.setitem(P.PROTOCOLS, p.name, p)
    return one, two, quality


def _clips(folder: Path, n: int = 5, sr: int = 16000, seed: int = 0, channels: int = 1) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i in range(n):
        t = np.arange(int(1.5 * sr)) / sr
        x = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.05 * rng.standard_normal(len(t))
        data = np.stack([x, 0.5 * x], axis=1) if channels == 2 else x
        path = folder / f"c{i}.wav"
        sf.write(path, data.astype(np.float32), sr, subtype="FLOAT")
        out[f"c{i}"] = path
    return out


def _config(*protocols, **kw):
    return suite.ScoreConfig(protocols=protocols, weights="random", bootstrap=20, progress=False, **kw)


def test_every_shipped_protocol_names_declared_metrics_and_known_backbones():
    from bench.metrics.backbones import BACKBONES

    for p in P.PROTOCOLS.values():
        for pm in p.metrics:
            assert pm.metric in R.METRICS
            assert pm.role in suite.DEFAULT_BACKBONES if pm.role else pm.backbone in BACKBONES, (p.name, pm)


def test_several_protocols_decode_each_file_once(fake_protocols, tmp_path, monkeypatch):
    gen = _clips(tmp_path / "gen", seed=1, channels=2, sr=44100)
    ref = _clips(tmp_path / "ref", seed=2)
    texts = {c: f"prompt {c} " * (int(c[1:]) + 1) for c in gen}
    decoded: list[str] = []
    real = suite.read_audio_channels
    monkeypatch.setattr(suite, "read_audio_channels", lambda p: decoded.append(str(p)) or real(p))
    out = suite.score_protocols(gen, ref, texts, _config("t-one", "t-two", "t-quality"), EmbeddingCache(enabled=False))
    assert sorted(decoded) == sorted(str(p) for p in [*gen.values(), *ref.values()])  # once each, all protocols
    assert list(out) == ["t-one", "t-two", "t-quality"]
    one, two, quality = out["t-one"], out["t-two"], out["t-quality"]
    assert one.protocol["name"] == "t-one" and two.protocol["version"] == "t2"
    assert [m.column for m in one.metrics] == [
        "FD_fake-bands@16k",
        "KL_softmax_fake-bands@16k",
        "CLAP_LAION_fake-clap@48k",
    ]
    assert all(np.isfinite(m.value) for r in out.values() for m in r.metrics), [
        m.to_dict() for r in out.values() for m in r.metrics
    ]
    # per-clip values exactly where the metric has them, and their mean is the value
    assert set(one.per_clip) == {"KL_softmax_fake-bands@16k", "CLAP_LAION_fake-clap@48k"}
    kl = next(m for m in one.metrics if m.metric == "KL_softmax")
    assert np.mean(list(one.per_clip[kl.column].values())) == pytest.approx(kl.value, rel=1e-12)
    frame = quality.per_clip_frame()
    assert list(frame.columns) == [
        "clip_id",
        "PQ_fake-quality@16k",
        "PC_fake-quality@16k",
        "CE_fake-quality@16k",
        "CU_fake-quality@16k",
    ]
    assert len(frame) == 5
    # the reference-free protocol records only its own backbone
    assert list(quality.backbones) == ["fake-quality"]


def test_reference_free_backbone_never_embeds_references(fake_protocols, tmp_path, monkeypatch):
    gen, ref = _clips(tmp_path / "gen"), _clips(tmp_path / "ref", seed=3)
    seen: list[int] = []
    monkeypatch.setattr(
        _Quality,
        "embed",
        lambda self, w: seen.append(len(w)) or [{k: np.zeros(1, np.float32) for k in self.outputs} for _ in w],
    )
    suite.score_protocols(gen, ref, {}, _config("t-quality"), EmbeddingCache(enabled=False))
    assert sum(seen) == len(gen)


def test_stable_audio_kl_is_passt_kld_transcription():
    """Stability-AI/stable-audio-metrics src/passt_kld.py, `return_probabilities` (collect='mean':
    F.softmax(mean of window logits)) and `passt_kld` (F.kl_div((ref_p[id] + 1e-6).log(), eval_p,
    reduction='sum', log_target=False), summed over ids, / count)."""
    rng = np.random.default_rng(0)
    gen = {f"c{i}": {"logits": rng.standard_normal(527).astype(np.float32) * 3} for i in range(6)}
    ref = {f"c{i}": {"logits": rng.standard_normal(527).astype(np.float32) * 3} for i in range(6)}
    value = R.metric("KL_sam").compute(R.MetricInputs(gen, ref))
    total = 0.0
    for cid in sorted(gen):
        eval_p = torch.nn.functional.softmax(torch.from_numpy(gen[cid]["logits"]), dim=0)
        ref_p = torch.nn.functional.softmax(torch.from_numpy(ref[cid]["logits"]), dim=0)
        total += torch.nn.functional.kl_div((ref_p + 1e-6).log(), eval_p, reduction="sum", log_target=False)
    assert value.value == pytest.approx(float(total / len(gen)), rel=1e-5)
    assert len(value.per_clip) == 6


def test_av_benchmark_kl_is_compute_kl_transcription():
    """hkchengrex/av-benchmark av_bench/metrics/kl.py `compute_kl`: F.kl_div(F.log_softmax(pred),
    F.log_softmax(gt), reduction='sum', log_target=True) / len(pred): eps 0 (protocol option)."""
    rng = np.random.default_rng(1)
    pred = rng.standard_normal((7, 527)).astype(np.float32) * 2
    gt = rng.standard_normal((7, 527)).astype(np.float32) * 2
    gen = {f"c{i}": {"logits": pred[i]} for i in range(7)}
    ref = {f"c{i}": {"logits": gt[i]} for i in range(7)}
    value = R.metric("KL_softmax").compute(R.MetricInputs(gen, ref, options={"eps": 0.0}))
    tp, tg = torch.from_numpy(pred), torch.from_numpy(gt)
    want = torch.nn.functional.kl_div(
        torch.log_softmax(tp, 1), torch.log_softmax(tg, 1), reduction="sum", log_target=True
    ) / len(tp)
    assert value.value == pytest.approx(float(want), rel=1e-5)
    # and audioldm_eval's eps = 1e-6 (the genau protocol) is a different number on the same logits
    assert R.metric("KL_softmax").compute(R.MetricInputs(gen, ref)).value != pytest.approx(float(want), rel=1e-9)


def test_adding_a_metric_is_one_declaration(fake_protocols, tmp_path, monkeypatch):
    """A new metric: one MetricSpec (here: mean embedding norm of the generated clips), one protocol entry."""
    monkeypatch.setitem(
        R.METRICS,
        "NORM",
        R.MetricSpec(
            "NORM",
            "embedding",
            lambda inp: R.MetricValue(
                float(np.mean([np.linalg.norm(v["embedding"]) for v in inp.gen.values()])), len(inp.gen)
            ),
            higher_is_better=True,
        ),
    )
    monkeypatch.setitem(
        P.PROTOCOLS, "t-norm", P.Protocol("t-norm", "n1", "test", (P.ProtocolMetric("NORM", "fake-bands"),))
    )
    out = suite.score_protocols(_clips(tmp_path / "gen"), {}, {}, _config("t-norm"), EmbeddingCache(enabled=False))
    (m,) = out["t-norm"].metrics
    assert m.column == "NORM_fake-bands@16k" and np.isfinite(m.value)
    assert m.ci_reason == "no interval for this metric"  # it declared none: NaN with the reason, never made up


def test_unknown_protocol_and_metric_are_refused_with_suggestions():
    from bench.arguments import check_metrics, check_protocols
    from bench.errors import UsageError

    with pytest.raises(UsageError, match="stable-audio"):
        check_protocols("genau,stable-audoi")
    with pytest.raises(UsageError, match="KL_sam"):
        check_metrics("KL_samm", ("stable-audio",))
    assert check_protocols(None) == ("genau",)
    assert check_metrics(None, ("genau",)) is None


def _record(protocol: str, version: str, model: str, fd: float, comparable: bool = True) -> dict:
    w = "official" if comparable else "random"
    return {
        "record_version": 2,
        "scoring_key": f"{protocol}-{model}",
        "date": "2026-12-06T00:00:00+00:00",
        "protocol_version": version,
        "protocol": {"name": protocol, "version": version},
        "split": "s",
        "prompt_list_sha256": "p" * 64,
        "split_n_prompts": 4,
        "reference_list_sha256": "r" * 64,
        "model": model,
        "model_weights": w,
        "checkpoint_identity": "sha256:x",
        "parameter_count": 1,
        "training_data": "-",
        "text_encoder": "-",
        "settings": {
            "sampler": "DDIM",
            "steps": 1,
            "guidance": 1.0,
            "seed": 0,
            "output_sample_rate": 16000,
            "duration_s": 10.0,
            "weights": w,
        },
        "settings_hash": model,
        "generation": None,
        "n_prompts": 4,
        "n_generated": 4,
        "n_not_generated": 0,
        "n_failed": 0,
        "n_evaluated": 4,
        "n_missing_reference": 0,
        "backbone_weights": w,
        "backbones": {},
        "failures": [],
        "resampler": "reference",
        "prompt_set": {"sha256": "a" * 64, "n": 4},
        "reference_set": {"sha256": "b" * 64, "n": 4},
        "metrics": [
            {
                "metric": "FD",
                "column": "FD_x@16k",
                "value": fd,
                "ci_low": fd,
                "ci_high": fd,
                "n": 4,
                "backbone": "x",
                "reason": "",
            }
        ],
    }


def test_leaderboard_has_one_table_per_protocol_and_ranks_within_it(tmp_path):
    from bench.leaderboard import build_leaderboard, leaderboard_stem, split_protocols

    for protocol, version, model, fd in (
        ("genau", "gb-2", "a", 3.0),
        ("genau", "gb-2", "b", 1.0),
        ("stable-audio", "sam-1", "a", 0.5),
        ("stable-audio", "sam-1", "b", 9.0),
    ):
        res = tmp_path / "s" / model / model / "results"
        res.mkdir(parents=True, exist_ok=True)
        (res.parent / "manifest.json").write_text("{}")
        (res / f"{protocol}.json").write_text(json.dumps(_record(protocol, version, model, fd)))
    assert split_protocols(tmp_path, "s") == ["genau", "stable-audio"]
    g = build_leaderboard(tmp_path, "s", protocol="genau", with_paper=False)
    s = build_leaderboard(tmp_path, "s", protocol="stable-audio")
    assert dict(zip(g["model"], g["rank"])) == {"b": 1, "a": 2}
    assert dict(zip(s["model"], s["rank"])) == {"a": 1, "b": 2}
    assert set(g["protocol_version"]) == {"gb-2"} and set(s["protocol_version"]) == {"sam-1"}
    assert leaderboard_stem("s", "genau") == "s" and leaderboard_stem("s", "stable-audio") == "s.stable-audio"


def _stereo_plugin_class():
    """A 44.1 kHz stereo model (as Stable Audio Open / TangoFlux are): left a tone, right its octave."""
    from bench.plugins.base import InferenceSettings, PluginInfo, RandomWeightsTwin, TextToAudioPlugin

    class StereoToy(RandomWeightsTwin, TextToAudioPlugin):
        info = PluginInfo(
            name="stereo-toy",
            family="test",
            native_sample_rate=44100,
            native_channels=2,
            defaults=InferenceSettings(sampler="none", steps=1, guidance=1.0, duration_s=2.0),
            training_data="-",
            text_encoder="-",
            source="test",
            tiny=True,
        )

        def load(self):
            self._loaded = True

        def parameter_count(self):
            return 0

        def _generate(self, prompts, *, seeds, steps, guidance, duration_s):
            t = np.arange(int(duration_s * 44100)) / 44100
            return [
                np.stack(
                    [0.3 * np.sin(2 * np.pi * (100 + 10 * s) * t), 0.3 * np.sin(2 * np.pi * (200 + 20 * s) * t)]
                ).astype(np.float32)
                for s in seeds
            ]

    return StereoToy


def test_run_store_keeps_native_stereo_and_each_protocol_derives_its_input(tmp_path, fake_protocols):
    from bench.harness import GenerationConfig, generate_run, score_run_protocols
    from bench.runs.store import RunStore
    from bench.splits import load_split

    try:
        plugin = _stereo_plugin_class()()
    except TypeError as e:  # PluginInfo's required fields changed: the test must be updated, not skipped
        raise AssertionError(e) from None
    split = load_split("demo")
    run = generate_run(
        plugin, split, GenerationConfig(limit=3, batch_size=2, progress=False), RunStore(tmp_path / "runs")
    )
    clip = next(iter(sorted(run.clips_dir.glob("*.wav"))))
    data, sr = sf.read(clip, always_2d=True)
    assert sr == 44100 and data.shape == (2 * 44100, 2)  # what the model produced: 44.1 kHz stereo, 2 s
    assert not np.allclose(data[:, 0], data[:, 1])
    m = run.manifest()
    assert m["settings"]["output_sample_rate"] == 44100 and m["settings"]["output_channels"] == 2
    cfg = suite.ScoreConfig(protocols=("t-one", "t-quality"), weights="random", bootstrap=0, progress=False)
    out = score_run_protocols(run, split, cfg, EmbeddingCache(root=tmp_path / "cache"))
    assert set(out) == {"t-one", "t-quality"}
    for name, (rec, path) in out.items():
        assert rec["protocol"]["name"] == name and path.exists()
        assert rec["n_evaluated"] == 3 and rec["n_failed"] == 0
        per_clip = path.with_name(rec["per_clip_file"])
        assert per_clip.exists()
    import pandas as pd

    frame = pd.read_parquet(path.with_name(out["t-quality"][0]["per_clip_file"]))
    assert len(frame) == 3 and frame["PQ_fake-quality@16k"].notna().all()


@pytest.mark.parametrize(
    "name, rate",
    [
        ("panns-cnn14-16k-av-benchmark", 16000),
        ("vggish-av-benchmark", 16000),
        ("laion-clap-htsat-base-av-benchmark", 48000),
    ],
)
def test_av_benchmark_inputs_follow_its_audio_dataset(name, rate):
    """hkchengrex/av-benchmark av_bench/data/audio_dataset.py `AudioDataset.read_from_file`, transcribed:
    waveform = torchaudio.load(f) -> .mean(dim=0) -> waveform - waveform.mean() ->
    torchaudio.transforms.Resample(sr, self.sr)(waveform) -> [:int(self.sr * self.audio_length)] (audio_length 10).
    transforms.Resample is genau_core.audio.resample.sinc_resample with kernel_dtype=None (its float64-built kernel;
    that function is checked against torchaudio's code in tests/genau_core/audio/test_resamplers.py)."""
    from bench.audio import derive_input
    from bench.metrics.backbones import backbone_class
    from genau_core.audio.resample import sinc_resample

    rng = np.random.default_rng(3)
    sr = 44100
    stereo = (0.2 * rng.standard_normal((int(12.5 * sr), 2)) + 0.05).astype(np.float32)  # DC offset, 12.5 s
    waveform = torch.from_numpy(stereo.T.copy()).mean(dim=0)
    waveform = waveform - waveform.mean()
    want = sinc_resample(waveform, sr, rate, kernel_dtype=None)[: int(rate * 10.0)].numpy()
    cls = backbone_class(name)
    shell = cls.__new__(cls)  # prepare / input_path need no network
    got = shell.prepare(derive_input(stereo, sr, rate, cls.input_path))
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_adding_a_protocol_to_a_scored_run_reembeds_nothing_it_has(fake_protocols, tmp_path):
    gen, ref = _clips(tmp_path / "gen"), _clips(tmp_path / "ref", seed=4)
    cache = EmbeddingCache(root=tmp_path / "cache")
    suite.score_protocols(gen, ref, {c: c for c in gen}, _config("t-one"), cache)
    misses_first = cache.misses
    cache2 = EmbeddingCache(root=tmp_path / "cache")
    out = suite.score_protocols(gen, ref, {c: c for c in gen}, _config("t-one", "t-two"), cache2)
    # t-two adds one backbone (fake-bands-32k: 5 generated + 5 reference clips); fake-bands and fake-clap are cached
    assert cache2.misses == 10 and cache2.hits >= misses_first
    assert out["t-one"].backbones["fake-bands"]["embeddings"] == {"from_cache": 10, "computed": 0}
