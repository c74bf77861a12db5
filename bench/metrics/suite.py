"""Scoring a set of generated clips against references: embeddings once, then every metric.

Audio is decoded once per file and resampled once per backbone rate, centrally, with the
protocol's named resampler; embeddings go through the content-keyed cache. A file that
cannot be read is reported by name and reason and left out of every metric (pairs are
matched by clip id, so it never shifts another file's result). A metric that cannot be
computed is NaN with its reason, never -1 or 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from bench.audio import AudioError, read_audio, resample
from bench.metrics import functional as F
from bench.checkpoints import find_checkpoint, sha256_file, sha256_files
from bench.metrics.backbones import AudioBackbone, BackboneIdentity, TextAudioBackbone, backbone_class
from bench.metrics.backbones._cpu_kernels import active_kernels
from bench.metrics.cache import EmbeddingCache, content_hash
from bench.protocol import PROTOCOL

# Metric -> (role of the backbone it needs). Roles map to concrete backbones in ScoreConfig.
METRICS: dict[str, str] = {
    "FD": "panns",
    "IS": "panns",
    "KL_softmax": "panns",
    "KL_sigmoid": "panns",
    "KAD": "panns",
    "FAD": "vggish",
    "CLAP_LAION": "clap_laion",
    "CLAP_MS": "clap_ms",
}
DEFAULT_BACKBONES = {
    "panns": "panns-cnn14-16k",
    "vggish": "vggish",
    "clap_laion": "laion-clap-htsat-base",
    "clap_ms": "ms-clap-2023",
}
BACKBONE_SHORT = {"panns-cnn14-16k": "panns-cnn14"}


def metric_column(metric: str, backbone: str, sample_rate: int) -> str:
    """e.g. FD_panns-cnn14@16k, FAD_vggish@16k, CLAP_LAION_laion-clap-htsat-base@48k."""
    rate = f"{sample_rate / 1000:g}k"
    return f"{metric}_{BACKBONE_SHORT.get(backbone, backbone)}@{rate}"


@dataclass
class ScoreConfig:
    metrics: Sequence[str] = tuple(METRICS)
    backbones: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BACKBONES))
    weights: str = "official"  # "official": load checkpoint files; "random": fixed-seed random weights
    checkpoints: dict[str, str] = field(default_factory=dict)  # backbone name -> file path
    tokenizers: dict[str, str] = field(default_factory=dict)  # text backbone name -> local tokenizer folder
    random_seed: int = 0
    resampler: str = PROTOCOL.resampler
    bootstrap: int = 100
    confidence: float = 0.95
    bootstrap_seed: int = 0
    batch_files: int = 16
    device: str = "cpu"
    max_duration_s: float = PROTOCOL.duration_s
    min_duration_s: float = PROTOCOL.min_duration_s
    progress: bool = True

    def __post_init__(self) -> None:
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; known: {list(METRICS)}")
        if self.weights not in ("official", "random"):
            raise ValueError(f"weights must be 'official' or 'random', not {self.weights!r}")


@dataclass
class MetricResult:
    metric: str
    column: str
    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    n: int = 0
    backbone: str = ""
    reason: str = ""  # why the value is NaN, if it is

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ScoreResult:
    metrics: list[MetricResult]
    backbones: dict[str, dict]  # name -> identity dict (or {"error": reason})
    failures: list[dict]  # {"file", "side", "reason"}
    n_generated: int
    n_reference: int
    n_paired: int
    resampler: str
    cache_hits: int
    cache_misses: int
    # Which float32 CPU kernels embedded the clips ("onednn-linear+channels-last-conv" or
    # "pytorch-default"): equal numbers up to float32 rounding, recorded for provenance.
    kernels: str = "pytorch-default"

    def table(self) -> dict[str, float]:
        return {m.column: m.value for m in self.metrics}

    @property
    def weights_label(self) -> str:
        kinds = {b.get("weights", "unavailable") for b in self.backbones.values() if "error" not in b}
        return "official" if kinds == {"official"} else "+".join(sorted(kinds)) or "unavailable"

    def to_dict(self) -> dict:
        return {
            "metrics": [m.to_dict() for m in self.metrics],
            "backbones": self.backbones,
            "backbone_weights": self.weights_label,
            "failures": self.failures,
            "n_generated": self.n_generated,
            "n_reference": self.n_reference,
            "n_paired": self.n_paired,
            "resampler": self.resampler,
            "cache": {"hits": self.cache_hits, "misses": self.cache_misses},
            "kernels": self.kernels,
        }


def _in_process_tokenizer(official_name: str):
    """Random-weight text towers never touch the hub: they get an in-process tokenizer of the
    same family (the numbers are labelled random anyway)."""
    from bench.metrics.backbones import _tokenizers as T

    builders = {"roberta": T.build_test_roberta_tokenizer, "gpt2": T.build_test_gpt2_tokenizer, "bert": T.build_test_bert_tokenizer}
    for family, build in builders.items():
        if family in official_name:
            return build()
    raise ValueError(f"no in-process tokenizer for {official_name!r}")


def _random_tokenizer_note(cls) -> str | None:
    official = getattr(getattr(cls, "default_config", None), "tokenizer", None)
    return official if issubclass(cls, TextAudioBackbone) and official else None


def build_backbone(name: str, config: ScoreConfig) -> AudioBackbone:
    cls = backbone_class(name)
    if config.weights == "official":
        if name in config.tokenizers:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(config.tokenizers[name], local_files_only=True)
            return cls(device=config.device, tokenizer=tok).load(config.checkpoints.get(name))
        return cls(device=config.device).load(config.checkpoints.get(name))
    official_tokenizer = _random_tokenizer_note(cls)
    if official_tokenizer:
        bb = cls(device=config.device, tokenizer=_in_process_tokenizer(official_tokenizer)).init_random(config.random_seed)
        bb.identity = replace(bb.identity, checkpoint_id=f"{bb.identity.checkpoint_id}+in-process-tokenizer", source=f"in-process (random weights; tokenizer stands in for {official_tokenizer})")
        return bb
    return cls(device=config.device).init_random(config.random_seed)


def locate_checkpoint(name: str, config: ScoreConfig, shell: AudioBackbone | None = None) -> Path:
    """The official checkpoint file of backbone `name`: --checkpoint NAME=PATH, else the checkpoint dirs."""
    cls = backbone_class(name)
    shell = shell or cls(device=config.device)  # constructors build no network
    filename = getattr(shell, "checkpoint_filename", cls.checkpoint_filename)
    return find_checkpoint(filename, config.checkpoints.get(name), what=f"{name} checkpoint", source=cls.checkpoint_source)


class LazyBackbone:
    """A backbone whose identity (the cache key) is known before its weights are loaded.

    Official: the checkpoint file is found and hashed (memoised), nothing is built; random:
    the identity is the seed. The network is built on the first cache miss only, so a fully
    cached re-score loads no model at all.
    """

    def __init__(self, name: str, config: ScoreConfig):
        self.name, self.config = name, config
        self.cls = backbone_class(name)
        self.sample_rate = self.cls.sample_rate
        self._shell = self.cls(device=config.device)  # constructors build no network
        self._built: AudioBackbone | None = None
        if config.weights == "official":
            path = locate_checkpoint(name, config, self._shell)
            self.identity = BackboneIdentity(name, self.sample_rate, f"sha256:{sha256_file(path)}", "official", str(path))
        else:
            suffix = "+in-process-tokenizer" if _random_tokenizer_note(self.cls) else ""
            self.identity = BackboneIdentity(name, self.sample_rate, f"random:seed={config.random_seed}{suffix}", "random", "in-process")

    @property
    def checkpoint_id(self) -> str:
        return self.identity.checkpoint_id

    @property
    def backbone(self) -> AudioBackbone:
        if self._built is None:
            bb = build_backbone(self.name, self.config)
            if bb.identity.checkpoint_id != self.identity.checkpoint_id:
                raise RuntimeError(f"{self.name}: loaded {bb.identity.checkpoint_id}, expected {self.identity.checkpoint_id}")
            self.identity = bb.identity
            self._built = bb
        return self._built

    def release(self) -> None:
        """Free the network's memory after its last use (it is built again if needed later)."""
        import torch

        model = getattr(self._built, "model", None)
        if isinstance(model, torch.nn.Module):
            model.to("meta")  # frees the weights now: some transformers modules hold reference cycles
        self._built = None

    def prepare(self, waveform: np.ndarray) -> np.ndarray:
        return self._shell.prepare(waveform)

    def embed(self, waveforms):
        return self.backbone.embed(waveforms)

    def embed_text(self, texts: Sequence[str], cache: EmbeddingCache) -> np.ndarray:
        """Text embeddings through the same cache (key: sha256 of the text)."""
        import hashlib

        out: list[np.ndarray | None] = []
        for t in texts:
            digest = hashlib.sha256(("text:" + t).encode()).hexdigest()
            hit = cache.get(digest, self.name, self.checkpoint_id, 0, "text", variant="text")
            out.append(None if hit is None else hit["embedding"])
        todo = [i for i, e in enumerate(out) if e is None]
        if todo:
            model = self.backbone
            assert isinstance(model, TextAudioBackbone)
            fresh = np.asarray(model.embed_text([texts[i] for i in todo]), dtype=np.float32)
            for i, e in zip(todo, fresh):
                digest = hashlib.sha256(("text:" + texts[i]).encode()).hexdigest()
                cache.put(digest, self.name, self.checkpoint_id, 0, "text", {"embedding": e}, variant="text")
                out[i] = e
        return np.stack(out)


class _Embedder:
    """Embeds files with several backbones, decoding each file once and resampling once per rate."""

    def __init__(self, backbones: dict[str, LazyBackbone], config: ScoreConfig, cache: EmbeddingCache):
        self.backbones, self.config, self.cache = backbones, config, cache
        self.failures: dict[str, str] = {}
        self._digest: dict[str, str] = {}

    def _decode(self, path: str) -> tuple[np.ndarray, int]:
        x, sr = read_audio(path)
        duration = len(x) / sr
        if duration < self.config.min_duration_s:
            raise AudioError(path, f"too short: {duration:.3f} s < minimum {self.config.min_duration_s} s")
        if self.config.max_duration_s and duration > self.config.max_duration_s:
            x = x[: int(round(self.config.max_duration_s * sr))]
        return x, sr

    def embed(self, files: Sequence[str], desc: str) -> dict[str, dict[str, dict[str, np.ndarray]]]:
        """-> {backbone name: {file: outputs}} for every file that could be read."""
        out: dict[str, dict[str, dict[str, np.ndarray]]] = {name: {} for name in self.backbones}
        step = self.config.batch_files
        for start in tqdm(range(0, len(files), step), desc=desc, unit="batch", disable=not self.config.progress):
            chunk = [f for f in files[start : start + step] if f not in self.failures]
            todo: dict[str, list[str]] = {}
            for f in list(chunk):
                try:
                    digest = self._digest.get(f) or content_hash(f)
                except OSError as e:
                    self.failures[f] = f"cannot read file ({e.strerror})"
                    continue
                self._digest[f] = digest
                for name, bb in self.backbones.items():
                    hit = self.cache.get(digest, name, bb.checkpoint_id, bb.sample_rate, self.config.resampler)
                    if hit is not None:
                        out[name][f] = hit
                    else:
                        todo.setdefault(f, []).append(name)
            decoded: dict[str, tuple[np.ndarray, int]] = {}
            for f in todo:
                try:
                    decoded[f] = self._decode(f)
                except AudioError as e:
                    self.failures[f] = e.reason
            for name, bb in self.backbones.items():
                need = [f for f, names in todo.items() if name in names and f in decoded]
                if not need:
                    continue
                waves = [bb.prepare(resample(decoded[f][0], decoded[f][1], bb.sample_rate, self.config.resampler)) for f in need]
                for f, emb in zip(need, bb.embed(waves)):
                    emb = {k: np.asarray(v, dtype=np.float32) for k, v in emb.items()}
                    self.cache.put(self._digest[f], name, bb.checkpoint_id, bb.sample_rate, self.config.resampler, emb)
                    out[name][f] = emb
        for name in out:
            for f in self.failures:
                out[name].pop(f, None)
        return out


def _nan(metric: str, column: str, backbone: str, reason: str) -> MetricResult:
    return MetricResult(metric, column, math.nan, backbone=backbone, reason=reason)


def _with_ci(metric, column, backbone, value, n, ci: Callable[[], tuple[float, float]] | None, config) -> MetricResult:
    low, high = ci() if (ci is not None and config.bootstrap > 0) else (math.nan, math.nan)
    return MetricResult(metric, column, float(value), float(low), float(high), n=n, backbone=backbone)


def _hash_checkpoints_in_parallel(names: Sequence[str], config: ScoreConfig) -> None:
    """Fill the sha256 memo for every checkpoint file found, several files at once (a missing
    or unknown one is reported later, by the backbone that needs it)."""
    paths = []
    for name in names:
        try:
            paths.append(locate_checkpoint(name, config))
        except (FileNotFoundError, KeyError, ImportError, RuntimeError, ValueError):
            continue
    sha256_files(paths)


def score(
    gen: dict[str, str | Path],
    ref: dict[str, str | Path],
    texts: dict[str, str] | None = None,
    config: ScoreConfig | None = None,
    cache: EmbeddingCache | None = None,
) -> ScoreResult:
    """Score generated clips `gen` (clip id -> file) against references `ref` (clip id -> file).

    `texts` (clip id -> prompt) is needed for the CLAP scores. KL pairs gen and ref by clip id.
    """
    config = config or ScoreConfig()
    cache = cache or EmbeddingCache()
    texts = texts or {}
    gen = {k: str(v) for k, v in gen.items()}
    ref = {k: str(v) for k, v in ref.items()}

    roles = {METRICS[m] for m in config.metrics}
    if config.weights == "official":
        _hash_checkpoints_in_parallel([config.backbones[r] for r in roles], config)
    backbones: dict[str, LazyBackbone] = {}
    identities: dict[str, dict] = {}
    role_error: dict[str, str] = {}
    for role in sorted(roles):
        name = config.backbones[role]
        try:
            backbones[name] = LazyBackbone(name, config)
        except (FileNotFoundError, KeyError, ImportError, RuntimeError, ValueError) as e:
            role_error[role] = f"backbone {name} unavailable: {e}"
            identities[name] = {"error": str(e)}

    audio_roles_gen = {r for r in roles if r not in role_error}
    audio_roles_ref = {r for r in audio_roles_gen if r in ("panns", "vggish")}
    embedder = _Embedder(backbones, config, cache)
    gen_bbs = {config.backbones[r]: backbones[config.backbones[r]] for r in sorted(audio_roles_gen)}
    ref_bbs = {config.backbones[r]: backbones[config.backbones[r]] for r in sorted(audio_roles_ref)}
    embedder.backbones = gen_bbs
    gen_emb = embedder.embed(sorted(gen.values()), "embedding generated clips")
    # Prompts now, so each text-audio network is freed before the references are embedded.
    text_emb: dict[str, dict[str, np.ndarray] | ValueError] = {}
    for name, bb in gen_bbs.items():
        if issubclass(bb.cls, TextAudioBackbone):
            ids = [c for c in sorted(gen) if gen[c] in gen_emb[name] and c in texts]
            try:
                text_emb[name] = dict(zip(ids, bb.embed_text([texts[c] for c in ids], cache))) if ids else {}
            except ValueError as e:  # e.g. a prompt longer than the text tower (reported as the metric's reason)
                text_emb[name] = e
        if name not in ref_bbs:
            bb.release()
    embedder.backbones = ref_bbs
    ref_emb = embedder.embed(sorted(ref.values()), "embedding reference clips") if ref_bbs else {}
    for bb in backbones.values():
        bb.release()

    def rows(name: str, side: dict[str, str], emb: dict, key: str) -> tuple[list[str], np.ndarray | None]:
        ids = [cid for cid in sorted(side) if side[cid] in emb.get(name, {})]
        if not ids:
            return ids, None
        return ids, np.stack([emb[name][side[cid]][key] for cid in ids])

    rng_seed = config.bootstrap_seed
    results: list[MetricResult] = []
    for metric in config.metrics:
        role = METRICS[metric]
        name = config.backbones[role]
        sr = backbone_class(name).sample_rate if role not in role_error else 0
        column = metric_column(metric, name, sr) if sr else metric_column(metric, name, 0).replace("@0k", "")
        if role in role_error:
            results.append(_nan(metric, column, name, role_error[role]))
            continue
        try:
            results.append(_compute(metric, column, name, gen, ref, text_emb, gen_emb, ref_emb, backbones[name], rows, config, rng_seed))
        except ValueError as e:
            results.append(_nan(metric, column, name, str(e)))

    for name, bb in backbones.items():
        identities[name] = bb.identity.to_dict()
    failures = [
        {"file": f, "side": "generated" if f in set(gen.values()) else "reference", "reason": r}
        for f, r in sorted(embedder.failures.items())
    ]
    paired = sorted(set(gen) & set(ref))
    return ScoreResult(
        metrics=results,
        backbones=identities,
        failures=failures,
        n_generated=len(gen),
        n_reference=len(ref),
        n_paired=len(paired),
        resampler=config.resampler,
        cache_hits=cache.hits,
        cache_misses=cache.misses,
        kernels=active_kernels(config.device),
    )


def _compute(metric, column, name, gen, ref, text_emb, gen_emb, ref_emb, bb, rows, config, seed) -> MetricResult:
    boot = dict(n_resamples=config.bootstrap, confidence=config.confidence, seed=seed)
    if metric in ("FD", "KAD"):
        _, x = rows(name, gen, gen_emb, "embedding")
        _, y = rows(name, ref, ref_emb, "embedding")
        if x is None or y is None:
            raise ValueError("no readable generated or reference clips")
        fn = F.frechet_distance if metric == "FD" else F.kernel_distance
        if len(x) < 2 or len(y) < 2:
            raise ValueError(f"needs at least 2 clips per side (have {len(x)} generated, {len(y)} reference)")
        return _with_ci(metric, column, name, fn(x, y), len(x), lambda: F.bootstrap_ci(fn, x, y, **boot), config)
    if metric == "FAD":
        gids, _ = rows(name, gen, gen_emb, "frames")
        rids, _ = rows(name, ref, ref_emb, "frames")
        if not gids or not rids:
            raise ValueError("no readable generated or reference clips")
        gf = [gen_emb[name][gen[c]]["frames"] for c in gids]
        rf = [ref_emb[name][ref[c]]["frames"] for c in rids]
        x, y = np.concatenate(gf), np.concatenate(rf)

        def fad_by_clip(gi, ri):  # bootstrap resamples clips, then pools their frames
            return F.frechet_distance(np.concatenate([gf[i] for i in gi]), np.concatenate([rf[i] for i in ri]))

        ci = lambda: F.bootstrap_ci(fad_by_clip, np.arange(len(gf)), np.arange(len(rf)), **boot)  # noqa: E731
        return _with_ci(metric, column, name, F.frechet_distance(x, y), len(gf), ci, config)
    if metric == "IS":
        _, logits = rows(name, gen, gen_emb, "logits")
        if logits is None:
            raise ValueError("no readable generated clips")
        mean, std = F.inception_score(logits, splits=10, seed=2020)
        res = _with_ci(metric, column, name, mean, len(logits), lambda: F.bootstrap_ci(lambda a: F.inception_score(a, splits=10, seed=2020)[0], logits, **boot), config)
        res.reason = f"std over 10 splits = {std:.4f}"
        return res
    if metric.startswith("KL_"):
        kind = metric.split("_", 1)[1]
        ids = [c for c in sorted(set(gen) & set(ref)) if gen[c] in gen_emb[name] and ref[c] in ref_emb.get(name, {})]
        if not ids:
            raise ValueError("no generated clip has a readable reference with the same clip id")
        p = np.stack([gen_emb[name][gen[c]]["logits"] for c in ids])
        q = np.stack([ref_emb[name][ref[c]]["logits"] for c in ids])
        per = F.kl_divergence_per_clip(p, q, kind=kind)
        return _with_ci(metric, column, name, F.kl_divergence(p, q, kind=kind), len(ids), lambda: F.bootstrap_ci(np.mean, per, **boot), config)
    if metric.startswith("CLAP_"):
        if not issubclass(bb.cls, TextAudioBackbone):
            raise ValueError(f"{name} has no text tower")
        if isinstance(text_emb.get(name), ValueError):
            raise text_emb[name]
        ids = sorted(text_emb.get(name, {}))
        if not ids:
            raise ValueError("no generated clip has a prompt")
        a = np.stack([gen_emb[name][gen[c]]["embedding"] for c in ids])
        t = np.stack([text_emb[name][c] for c in ids])
        per = F.clap_score_per_pair(t, a)
        return _with_ci(metric, column, name, F.clap_score(t, a), len(ids), lambda: F.bootstrap_ci(np.mean, per, **boot), config)
    raise ValueError(f"unknown metric {metric}")
