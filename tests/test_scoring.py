"""The scoring pipeline (decode once, resample once per rate, cache, bad inputs, pairing),
checked with cheap deterministic stand-in backbones so that only the pipeline is under test."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.metrics import backbones as registry
from bench.metrics.backbones.base import AudioBackbone, BackboneIdentity, TextAudioBackbone
from bench.metrics.cache import EmbeddingCache
from bench.metrics.suite import ScoreConfig, score

CALLS: list[tuple[str, int]] = []


class _Spectral(AudioBackbone):
    """Log-power in 16 bands + 'logits' from band energies: deterministic, fast, content-sensitive."""

    name = "fake-spectral"
    sample_rate = 16000
    embedding_dim = 16
    outputs = ("embedding", "logits", "frames")
    checkpoint_filename = "fake.pth"

    def load(self, checkpoint=None):
        raise FileNotFoundError("fake-spectral: no official checkpoint 'fake.pth'")

    def init_random(self, seed=0):
        CALLS.append((self.name + ":build", 0))
        self.model = object()
        self.identity = BackboneIdentity(self.name, self.sample_rate, f"random:seed={seed}", "random", "in-process")
        return self

    def embed(self, waveforms):
        CALLS.append((self.name, len(waveforms)))
        out = []
        for w in waveforms:
            spec = np.abs(np.fft.rfft(w[: self.sample_rate])) ** 2
            bands = np.log(np.array([b.sum() + 1e-8 for b in np.array_split(spec, 16)]))
            frames = np.stack([bands + k for k in range(3)])
            out.append({"embedding": bands.astype(np.float32), "logits": bands.astype(np.float32), "frames": frames.astype(np.float32)})
        return out


class _Spectral48(_Spectral):
    name = "fake-spectral-48k"
    sample_rate = 48000


class _TextSpectral(_Spectral, TextAudioBackbone):
    name = "fake-clap"
    sample_rate = 48000
    outputs = ("embedding",)

    def embed_text(self, texts):
        return np.stack([np.random.default_rng(len(t)).standard_normal(16) for t in texts]).astype(np.float32)


@pytest.fixture
def fake_backbones(monkeypatch):
    for name, cls in {"fake-spectral": _Spectral, "fake-spectral-48k": _Spectral48, "fake-clap": _TextSpectral}.items():
        monkeypatch.setitem(registry.BACKBONES, name, f"{__name__}:{cls.__name__}")
    CALLS.clear()
    return ScoreConfig(
        metrics=["FD", "IS", "KL_softmax", "KAD", "FAD", "CLAP_LAION"],
        backbones={"panns": "fake-spectral", "vggish": "fake-spectral", "clap_laion": "fake-clap", "clap_ms": "fake-clap"},
        weights="random",
        bootstrap=20,
        progress=False,
    )


def _tone(path: Path, f: float, sr=16000, seconds=2.0, channels=1, amp=0.3):
    t = np.arange(int(sr * seconds)) / sr
    x = amp * np.sin(2 * np.pi * f * t) + 0.01 * np.random.default_rng(int(f)).standard_normal(len(t))
    if channels > 1:
        x = np.stack([x] * channels, axis=1)
    sf.write(path, x.astype(np.float32), sr)
    return path


@pytest.fixture
def clips(tmp_path):
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir(), ref.mkdir()
    g = {f"c{i}": _tone(gen / f"c{i}.wav", 200 + 100 * i) for i in range(10)}
    r = {f"c{i}": _tone(ref / f"c{i}.wav", 210 + 100 * i) for i in range(10)}
    texts = {f"c{i}": "x" * (i + 3) for i in range(10)}
    return g, r, texts


def test_all_metrics_with_intervals_and_labels(fake_backbones, clips, tmp_path):
    g, r, texts = clips
    res = score(g, r, texts, fake_backbones, EmbeddingCache(tmp_path / "cache"))
    table = res.table()
    assert set(table) == {"FD_fake-spectral@16k", "IS_fake-spectral@16k", "KL_softmax_fake-spectral@16k",
                          "KAD_fake-spectral@16k", "FAD_fake-spectral@16k", "CLAP_LAION_fake-clap@48k"}
    for m in res.metrics:
        assert np.isfinite(m.value), m
        assert m.ci_low <= m.ci_high
    assert res.weights_label == "random"
    assert res.backbones["fake-spectral"]["checkpoint_id"] == "random:seed=0"
    assert res.n_paired == 10 and res.failures == []


def test_decode_once_per_file_and_rate_and_cache(fake_backbones, clips, tmp_path):
    g, r, texts = clips
    cache = EmbeddingCache(tmp_path / "cache")
    score(g, r, texts, fake_backbones, cache)
    # fake-spectral (16k) embeds 10 gen + 10 ref; fake-clap (48k) only gen: no file embedded twice per backbone
    assert sum(n for name, n in CALLS if name == "fake-spectral") == 20
    assert sorted(name for name, _ in CALLS if name.endswith(":build")) == ["fake-clap:build", "fake-spectral:build"]
    assert sum(n for name, n in CALLS if name == "fake-clap") == 10
    CALLS.clear()
    warm = EmbeddingCache(tmp_path / "cache")
    first = score(g, r, texts, fake_backbones, EmbeddingCache(tmp_path / "cache"))
    again = score(g, r, texts, fake_backbones, warm)
    assert CALLS == [] and warm.misses == 0  # no embedding and no model built
    assert warm.hits == 30 + 10  # 30 audio + 10 prompt embeddings: nothing recomputed
    assert first.table() == again.table()
    # changed content -> exactly that file recomputed
    _tone(Path(g["c0"]), 999)
    score(g, r, texts, fake_backbones, EmbeddingCache(tmp_path / "cache"))
    assert sum(n for _, n in CALLS) == 2  # c0 for both backbones
    # changed resampler or seed (checkpoint identity) -> miss
    CALLS.clear()
    fake_backbones.resampler = "soxr-vhq"
    score(g, r, texts, fake_backbones, EmbeddingCache(tmp_path / "cache"))
    assert sum(n for _, n in CALLS) == 30
    CALLS.clear()
    fake_backbones.random_seed = 1
    score(g, r, texts, fake_backbones, EmbeddingCache(tmp_path / "cache"))
    assert sum(n for _, n in CALLS) == 30


def test_text_audio_network_is_freed_before_the_references(fake_backbones, clips, monkeypatch):
    import bench.metrics.suite as suite

    release = suite.LazyBackbone.release

    def recording_release(self):
        if self._built is not None:
            CALLS.append((self.name + ":release", 0))
        release(self)

    monkeypatch.setattr(suite.LazyBackbone, "release", recording_release)
    g, r, texts = clips
    score(g, r, texts, fake_backbones, EmbeddingCache(enabled=False))
    events = [name for name, _ in CALLS]
    ref_embed = len(events) - 1 - events[::-1].index("fake-spectral")  # the last batch: references
    assert events.index("fake-clap:release") < ref_embed < events.index("fake-spectral:release")
    assert events.count("fake-clap:build") == 1


def test_text_error_is_the_clap_metrics_reason(fake_backbones, clips, monkeypatch):
    def too_long(self, texts):
        raise ValueError("fake-clap: text 3 has 99 tokens, more than the 77 positions of the text tower")

    monkeypatch.setattr(_TextSpectral, "embed_text", too_long)
    g, r, texts = clips
    res = score(g, r, texts, fake_backbones, EmbeddingCache(enabled=False))
    clap = next(m for m in res.metrics if m.metric == "CLAP_LAION")
    assert np.isnan(clap.value) and "99 tokens" in clap.reason
    assert all(np.isfinite(m.value) for m in res.metrics if m.metric != "CLAP_LAION")


def test_cache_key_includes_rate(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.put("abc", "bb", "random:seed=0", 16000, "soxr-hq", {"embedding": np.ones(3)})
    assert cache.get("abc", "bb", "random:seed=0", 16000, "soxr-hq") is not None
    assert cache.get("abc", "bb", "random:seed=0", 48000, "soxr-hq") is None
    assert cache.get("abc", "bb", "random:seed=1", 16000, "soxr-hq") is None
    assert cache.get("abd", "bb", "random:seed=0", 16000, "soxr-hq") is None


def test_bad_input_corpus(fake_backbones, clips, tmp_path):
    g, r, texts = clips
    base = score(g, r, texts, fake_backbones, EmbeddingCache(enabled=False))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 10)
    (bad / "empty.wav").write_bytes(b"")
    sf.write(bad / "nan.wav", np.full(32000, np.nan, np.float32), 16000, subtype="FLOAT")
    sf.write(bad / "short.wav", np.zeros(8000, np.float32), 16000)
    ok = {
        "silent": (sf.write(bad / "silent.wav", np.zeros(32000, np.float32), 16000), bad / "silent.wav")[1],
        "stereo": _tone(bad / "stereo.wav", 440, channels=2),
        "low_rate": _tone(bad / "low_rate.wav", 440, sr=8000),
        "long": _tone(bad / "long.wav", 440, seconds=15.0),
    }
    g2 = {**g, **{p.stem: p for p in bad.iterdir() if p.stem not in ok}, **ok}
    res = score(g2, r, texts, fake_backbones, EmbeddingCache(enabled=False))
    reasons = {Path(f["file"]).stem: f["reason"] for f in res.failures}
    assert set(reasons) == {"corrupt", "empty", "nan", "short"}
    assert "cannot decode" in reasons["corrupt"] and "cannot decode" in reasons["empty"]
    assert "NaN" in reasons["nan"] and "too short" in reasons["short"]
    # KL pairs by clip id: the extra (good or bad) files do not change it
    kl = lambda res: next(m.value for m in res.metrics if m.metric == "KL_softmax")  # noqa: E731
    assert kl(res) == pytest.approx(kl(base), rel=1e-12)
    fd = next(m for m in res.metrics if m.metric == "FD")
    assert fd.n == 10 + 4  # the four accepted odd files count, the four bad ones do not


def test_missing_backbone_checkpoint_gives_nan_with_reason(fake_backbones, clips):
    g, r, texts = clips
    fake_backbones.weights = "official"
    res = score(g, r, texts, fake_backbones, EmbeddingCache(enabled=False))
    for m in res.metrics:
        assert np.isnan(m.value) and "'fake.pth' not found" in m.reason


def test_missing_references_leave_kl_on_pairs_only(fake_backbones, clips):
    g, r, texts = clips
    r = {k: v for k, v in r.items() if k not in ("c0", "c1")}
    res = score(g, r, texts, fake_backbones, EmbeddingCache(enabled=False))
    kl = next(m for m in res.metrics if m.metric == "KL_softmax")
    assert kl.n == 8 and res.n_paired == 8


class _OfficialTextSpectral(_TextSpectral):
    """Official-mode text backbone: `load` reads the (fake) checkpoint, the tokenizer is passed in."""

    name = "fake-clap-official"
    checkpoint_filename = "fake-clap.pt"
    seen_tokenizers: list = []

    def __init__(self, device="cpu", tokenizer=None):
        super().__init__(device)
        self.tokenizer = tokenizer

    def load(self, checkpoint=None):
        from bench.checkpoints import find_checkpoint

        path = find_checkpoint(self.checkpoint_filename, checkpoint)
        type(self).seen_tokenizers.append(self.tokenizer)
        self.model = object()
        return self._install_identity(path)

    def _install_identity(self, path):
        self.identity = self._official_identity(path)
        return self

    def embed_text(self, texts):
        ids = [self.tokenizer(t)["input_ids"] for t in texts]
        return np.stack([np.resize(np.asarray(i, np.float32), 16) for i in ids])


def test_official_text_tower_uses_a_local_tokenizer_folder(monkeypatch, clips, tmp_path):
    from bench.plugins._tiny_text import roberta_style_tokenizer

    monkeypatch.setitem(registry.BACKBONES, "fake-clap-official", f"{__name__}:_OfficialTextSpectral")
    tok_dir = tmp_path / "tok"
    roberta_style_tokenizer().save_pretrained(tok_dir)
    ckpt = tmp_path / "fake-clap.pt"
    ckpt.write_bytes(b"weights")
    g, r, texts = clips
    cfg = ScoreConfig(metrics=["CLAP_LAION"], backbones={"clap_laion": "fake-clap-official"}, weights="official",
                      checkpoints={"fake-clap-official": str(ckpt)}, tokenizers={"fake-clap-official": str(tok_dir)},
                      bootstrap=0, progress=False)
    res = score(g, r, texts, cfg, EmbeddingCache(enabled=False))
    assert np.isfinite(res.metrics[0].value)
    tok = _OfficialTextSpectral.seen_tokenizers[-1]
    assert tok is not None and tok("a dog")["input_ids"] == roberta_style_tokenizer()("a dog")["input_ids"]
    assert res.backbones["fake-clap-official"]["weights"] == "official"
