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
            out.append(
                {
                    "embedding": bands.astype(np.float32),
                    "logits": bands.astype(np.float32),
                    "frames": frames.astype(np.float32),
                }
            )
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
        backbones={
            "panns": "fake-spectral",
            "vggish": "fake-spectral",
            "clap_laion": "fake-clap",
            "clap_ms": "fake-clap",
        },
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
    assert set(table) == {
        "FD_fake-spectral@16k",
        "IS_fake-spectral@16k",
        "KL_softmax_fake-spectral@16k",
        "KAD_fake-spectral@16k",
        "FAD_fake-spectral@16k",
        "CLAP_LAION_fake-clap@48k",
    }
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
    from genau_core.tokenizers import roberta_style_tokenizer

    monkeypatch.setitem(registry.BACKBONES, "fake-clap-official", f"{__name__}:_OfficialTextSpectral")
    tok_dir = tmp_path / "tok"
    roberta_style_tokenizer().save_pretrained(tok_dir)
    ckpt = tmp_path / "fake-clap.pt"
    ckpt.write_bytes(b"weights")
    g, r, texts = clips
    cfg = ScoreConfig(
        metrics=["CLAP_LAION"],
        backbones={"clap_laion": "fake-clap-official"},
        weights="official",
        checkpoints={"fake-clap-official": str(ckpt)},
        tokenizers={"fake-clap-official": str(tok_dir)},
        bootstrap=0,
        progress=False,
    )
    res = score(g, r, texts, cfg, EmbeddingCache(enabled=False))
    assert np.isfinite(res.metrics[0].value)
    tok = _OfficialTextSpectral.seen_tokenizers[-1]
    assert tok is not None and tok("a dog")["input_ids"] == roberta_style_tokenizer()("a dog")["input_ids"]
    # a checkpoint file whose sha256 is not a published one is named, never called "official"
    import hashlib

    entry = res.backbones["fake-clap-official"]
    assert entry["weights"] == "checkpoint"
    assert entry["checkpoint_file"] == {
        "file": "fake-clap.pt",
        "sha256": hashlib.sha256(b"weights").hexdigest(),
        "published_hash_source": None,
        "path": str(ckpt),
    }
    assert entry["tokenizer"]["source"] == str(tok_dir) and entry["tokenizer"]["sha256"].startswith("sha256:")


# -- issue 15: tokenizer identity, honest weights, cache provenance, unmatched clips, intervals --------------
def _swap_token_ids(tok_dir: Path, a: str, b: str) -> None:
    """Swap the ids of tokens `a` and `b` in a saved tokenizer.json (merges name tokens, so stay valid)."""
    import json

    path = tok_dir / "tokenizer.json"
    data = json.loads(path.read_text())
    vocab = data["model"]["vocab"]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    for added in data.get("added_tokens", []):
        if added["content"] in (a, b):
            added["id"] = vocab[added["content"]]
    path.write_text(json.dumps(data))


def _official_text_config(tmp_path, tok_dir, name="fake-clap-official"):
    ckpt = tmp_path / "fake-clap.pt"
    ckpt.write_bytes(b"weights")
    return ScoreConfig(
        metrics=["CLAP_LAION"],
        backbones={"clap_laion": name},
        weights="official",
        checkpoints={name: str(ckpt)},
        tokenizers={name: str(tok_dir)},
        bootstrap=0,
        progress=False,
    )


SENTENCES = {
    f"c{i}": t
    for i, t in enumerate(
        [
            "a dog barks",
            "rain falls on a roof",
            "a car passes by",
            "birds chirp",
            "a dog barks twice",
            "wind blowing",
            "a bell rings",
            "water runs",
            "a door closes",
            "people talk",
        ]
    )
}


def test_swapped_token_ids_miss_the_text_cache(monkeypatch, clips, tmp_path):
    """Issue 15 item 3: the text-embedding cache key names the tokenizer (hash of its vocabulary and
    rules); two token ids swapped -> the prompts are embedded again and the new score is returned."""
    from genau_core.tokenizers import roberta_style_tokenizer

    monkeypatch.setitem(registry.BACKBONES, "fake-clap-official", f"{__name__}:_OfficialTextSpectral")
    tok_dir = tmp_path / "tok"
    tok = roberta_style_tokenizer()
    tok.save_pretrained(tok_dir)
    g, r, _ = clips
    cfg = _official_text_config(tmp_path, tok_dir)
    first = score(g, r, SENTENCES, cfg, EmbeddingCache(tmp_path / "cache"))
    warm = EmbeddingCache(tmp_path / "cache")
    again = score(g, r, SENTENCES, cfg, warm)
    assert warm.misses == 0 and again.metrics[0].value == first.metrics[0].value
    ids = tok("a dog barks", add_special_tokens=False)["input_ids"]
    a, b = tok.convert_ids_to_tokens(ids[:2])
    _swap_token_ids(tok_dir, a, b)
    swapped = EmbeddingCache(tmp_path / "cache")
    res = score(g, r, SENTENCES, cfg, swapped)
    assert swapped.misses == len(SENTENCES)  # every prompt embedded again; the audio still comes from the cache
    assert res.metrics[0].value != first.metrics[0].value
    fresh = score(g, r, SENTENCES, cfg, EmbeddingCache(enabled=False))
    assert res.metrics[0].value == fresh.metrics[0].value  # the warm run returns what a fresh run computes
    old_tok = first.backbones["fake-clap-official"]["tokenizer"]
    new_tok = res.backbones["fake-clap-official"]["tokenizer"]
    assert old_tok["sha256"] != new_tok["sha256"] and new_tok["class"]


class _MsClapStyleOfficial(_OfficialTextSpectral):
    """Takes its tokenizer through MS-CLAP 2023's own check (pad '!' must be id 0)."""

    name = "fake-msclap-official"

    def __init__(self, device="cpu", tokenizer=None):
        from bench.metrics.backbones.ms_clap import MsClap2023
        from genau_core.networks.ms_clap import prepare_tokenizer

        super().__init__(device, tokenizer)
        if tokenizer is not None:
            self.tokenizer = prepare_tokenizer(tokenizer, MsClap2023.default_config)


def test_refused_tokenizer_is_refused_with_a_warm_cache(monkeypatch, clips, tmp_path):
    """Issue 15 item 3: a tokenizer that a fresh run refuses is refused when every embedding is cached."""
    from genau_core.tokenizers import bpe_gpt2_tokenizer

    name = "fake-msclap-official"
    monkeypatch.setitem(registry.BACKBONES, name, f"{__name__}:_MsClapStyleOfficial")
    good, bad = tmp_path / "good", tmp_path / "bad"
    tok = bpe_gpt2_tokenizer()
    tok.save_pretrained(good)
    tok.save_pretrained(bad)
    _swap_token_ids(bad, "!", tok.convert_ids_to_tokens(5))
    g, r, _ = clips
    ok = score(g, r, SENTENCES, _official_text_config(tmp_path, good, name), EmbeddingCache(tmp_path / "cache"))
    assert np.isfinite(ok.metrics[0].value)
    for cache in (EmbeddingCache(tmp_path / "cache"), EmbeddingCache(enabled=False)):  # warm, then fresh
        res = score(g, r, SENTENCES, _official_text_config(tmp_path, bad, name), cache)
        assert np.isnan(res.metrics[0].value) and "maps '!' to 5, msclap expects 0" in res.metrics[0].reason


def test_a_file_is_official_only_when_its_hash_is_published(monkeypatch, clips, tmp_path):
    """Issue 15 item 3: records name the file (name + sha256); "official" only for a published hash."""
    import hashlib
    import json

    import bench.checkpoints_known as known
    from bench.checkpoints import describe_weights
    from genau_core.tokenizers import roberta_style_tokenizer

    monkeypatch.setitem(registry.BACKBONES, "fake-clap-file", f"{__name__}:_OfficialTextSpectral")
    roberta_style_tokenizer().save_pretrained(tmp_path / "tok")
    g, r, _ = clips
    cfg = _official_text_config(tmp_path, tmp_path / "tok", "fake-clap-file")
    res = score(g, r, SENTENCES, cfg, EmbeddingCache(enabled=False))
    assert res.weights_label == "checkpoint"
    text = json.dumps(res.to_dict()).replace(json.dumps(str(tmp_path))[1:-1], "<tmp>")
    assert "official" not in text.lower()  # the word never appears unverified
    label = describe_weights("checkpoint", res.weights_label)
    assert label.startswith("checkpoint files (sha256 recorded; not matched")
    digest = hashlib.sha256(b"weights").hexdigest()
    published = known.PublishedHash("fake-clap.pt", digest, "https://example.org/README")
    monkeypatch.setattr(known, "PUBLISHED_HASHES", (published,))
    res = score(g, r, SENTENCES, cfg, EmbeddingCache(enabled=False))
    entry = res.backbones["fake-clap-file"]
    assert entry["weights"] == "official"
    assert entry["checkpoint_file"]["published_hash_source"] == "https://example.org/README"
    assert res.weights_label == "official"


def test_backbone_source_says_when_embeddings_came_from_the_cache(fake_backbones, clips, tmp_path):
    """Issue 15 item 6: `backbones.*.source` reflects cache hits (weights not loaded)."""
    g, r, texts = clips
    cold = score(g, r, texts, fake_backbones, EmbeddingCache(tmp_path / "cache"))
    warm = score(g, r, texts, fake_backbones, EmbeddingCache(tmp_path / "cache"))
    assert cold.backbones["fake-spectral"]["source"] == "in-process"
    assert cold.backbones["fake-spectral"]["embeddings"] == {"from_cache": 0, "computed": 20}
    expected = "embedding cache (20 embeddings; weights not loaded in this run)"
    assert warm.backbones["fake-spectral"]["source"] == expected
    assert warm.backbones["fake-clap"]["embeddings"] == {"from_cache": 20, "computed": 0}  # 10 clips + 10 prompts


def test_columns_keep_backbone_and_rate_when_a_backbone_is_missing(fake_backbones, clips):
    """Issue 15 item 6: the column name is the same whether or not the backbone could be loaded."""
    g, r, texts = clips
    fake_backbones.weights = "official"
    res = score(g, r, texts, fake_backbones, EmbeddingCache(enabled=False))
    assert set(res.table()) == {
        "FD_fake-spectral@16k",
        "IS_fake-spectral@16k",
        "KL_softmax_fake-spectral@16k",
        "KAD_fake-spectral@16k",
        "FAD_fake-spectral@16k",
        "CLAP_LAION_fake-clap@48k",
    }
    assert all(m.ci_reason == "no value" for m in res.metrics)


def test_clips_on_one_side_only_are_named_and_listed(fake_backbones, clips, capsys):
    """Issue 15 item 3: a reference without generated clip and a generated clip without reference are
    named on the console (first ids + count) and all listed in the record."""
    from bench.cli import _print_record

    g, r, texts = clips
    g = {k: v for k, v in g.items() if k not in ("c0", "c1")}
    r = {k: v for k, v in r.items() if k != "c9"}
    res = score(g, r, texts, fake_backbones, EmbeddingCache(enabled=False))
    rec = res.to_dict()
    assert rec["reference_only"] == ["c0", "c1"] and rec["n_reference_only"] == 2
    assert rec["generated_only"] == ["c9"] and rec["n_generated_only"] == 1
    _print_record(
        {
            **rec,
            "model": "folder",
            "split": "x",
            "protocol_version": "p",
            "model_weights": "random",
            "n_evaluated": 8,
            "n_missing_reference": 1,
            "n_failed": 0,
        }
    )
    out = capsys.readouterr().out
    assert "2 reference clips have no generated clip: c0, c1" in out
    assert "1 generated clips have no reference clip: c9" in out
    many = {"reference_only": [f"r{i}" for i in range(12)]}
    from bench.metrics.suite import unmatched_lines

    expected = (
        "12 reference clips have no generated clip: r0, r1, r2, r3, r4, ... (7 more in the record's `reference_only`)"
    )
    assert unmatched_lines(many) == [expected]


def test_prompt_and_reference_sets_name_the_clips_and_their_content(fake_backbones, clips):
    g, r, texts = clips
    a = score(g, r, texts, fake_backbones, EmbeddingCache(enabled=False))
    assert a.prompt_set["n"] == 10 and a.reference_set["n"] == 10
    fewer = score({k: g[k] for k in ("c0", "c1")}, r, texts, fake_backbones, EmbeddingCache(enabled=False))
    assert fewer.prompt_set["n"] == 2 and fewer.prompt_set["sha256"] != a.prompt_set["sha256"]
    _tone(Path(r["c3"]), 777)  # same file name, other content
    b = score(g, r, texts, fake_backbones, EmbeddingCache(enabled=False))
    assert b.prompt_set == a.prompt_set and b.reference_set["sha256"] != a.reference_set["sha256"]


def test_point_outside_its_bootstrap_interval_is_explained():
    """Issue 15 item 6: the percentile interval is reported as computed; a point outside it carries a note
    (FD / FAD replicates are biased upward: demo FAD 1.7e-05 vs [1.9e-05, 9.5e-05])."""
    from bench.metrics.suite import CI_OUTSIDE_NOTE, _with_ci

    cfg = ScoreConfig(bootstrap=10, progress=False)
    outside = _with_ci("FAD", "FAD_vggish@16k", "vggish", 1.7e-05, 10, lambda: (1.9e-05, 9.5e-05), cfg)
    inside = _with_ci("FAD", "FAD_vggish@16k", "vggish", 2.0e-05, 10, lambda: (1.9e-05, 9.5e-05), cfg)
    assert outside.ci_note == CI_OUTSIDE_NOTE and "biased upward" in outside.ci_note
    assert (outside.ci_low, outside.ci_high) == (1.9e-05, 9.5e-05) and inside.ci_note == ""
    off = _with_ci("FD", "FD_x@16k", "x", 1.0, 10, lambda: (0.5, 2.0), ScoreConfig(bootstrap=0, progress=False))
    assert np.isnan(off.ci_low) and off.ci_reason == "bootstrap off (--bootstrap 0)"


def test_stale_cache_temporaries_are_removed(tmp_path):
    """Issue 15 item 7: a writer killed mid-put leaves `.<key>.<pid>.tmp.npz`; the next put into that
    folder removes it."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead = done.stdout.strip()
    cache = EmbeddingCache(tmp_path)
    cache.put("abc", "bb", "random:seed=0", 16000, "soxr-hq", {"embedding": np.ones(3)})
    leaf = next(tmp_path.rglob("abc.npz")).parent
    stale = leaf / f".abd.{dead}.tmp.npz"
    stale.write_bytes(b"")
    EmbeddingCache(tmp_path).put("abe", "bb", "random:seed=0", 16000, "soxr-hq", {"embedding": np.ones(3)})
    assert not stale.exists() and sorted(p.name for p in leaf.iterdir()) == ["abc.npz", "abe.npz"]
