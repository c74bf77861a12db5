"""Scoring a set of generated clips against references: embeddings once, then every metric.

Audio is decoded once per file; each backbone's input is derived from it centrally as that
backbone's reference tool reads a file (`bench.audio.derive_input` with the backbone's
`input_path`: channels, mean removal, and its resampler unless --resampler names another), once
per input path and rate; embeddings go through the content-keyed cache. A file that
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

from bench.audio import AudioError, derive_input, read_audio_channels
from bench.checkpoints import (
    combined_weights_label,
    file_provenance,
    file_weights_label,
    find_checkpoint,
    sha256_file,
    sha256_files,
)
from bench.errors import GenauBenchError, TokenizerError
from bench.metrics.backbones import AudioBackbone, BackboneIdentity, TextAudioBackbone, backbone_class
from bench.metrics.backbones._cpu_kernels import active_kernels
from bench.metrics.cache import EmbeddingCache, content_hash
from bench.metrics.protocols import GENAU, Protocol, ProtocolMetric
from bench.metrics.protocols import protocol as protocol_named
from bench.metrics.registry import MetricInputs
from bench.metrics.registry import metric as metric_spec
from bench.protocol import PROTOCOL
from bench.splits.base import clip_set_identity, content_set_identity
from genau_core.tokenizers import tokenizer_identity

# The genau protocol's metric -> role of the backbone it needs (roles map to concrete backbones in
# ScoreConfig.backbones, so --backbones / the config file can swap one). Other protocols name their
# backbones directly (bench.metrics.protocols).
METRICS: dict[str, str] = {m.metric: m.role for m in GENAU.metrics}
DEFAULT_BACKBONES = {
    "panns": "panns-cnn14-16k",
    "vggish": "vggish",
    "clap_laion": "laion-clap-htsat-base",
    "clap_ms": "ms-clap-2023",
}
# Column names: the network, not the protocol's variant of its input (the record names the protocol).
BACKBONE_SHORT = {
    "panns-cnn14-16k": "panns-cnn14",
    "panns-cnn14-16k-av-benchmark": "panns-cnn14",
    "vggish-av-benchmark": "vggish",
    "laion-clap-htsat-base-av-benchmark": "laion-clap-htsat-base",
    "passt-s-ap476-stable-audio": "passt",
    "passt-s-ap476-av-benchmark": "passt",
    "passt-s-ap476": "passt",
    "openl3-mel256-env-512-stable-audio": "openl3",
    "openl3-mel256-env-512": "openl3",
    "laion-clap-htsat-tiny-fusion-stable-audio": "laion-clap-fusion",
    "laion-clap-htsat-tiny-fusion": "laion-clap-fusion",
    "audiobox-aesthetics": "aesthetics",
}


def metric_column(metric: str, backbone: str, sample_rate: int) -> str:
    """e.g. FD_panns-cnn14@16k, FAD_vggish@16k, CLAP_LAION_laion-clap-htsat-base@48k, KL_sam_passt@32k."""
    rate = f"{sample_rate / 1000:g}k"
    return f"{metric}_{BACKBONE_SHORT.get(backbone, backbone)}@{rate}"


@dataclass
class ScoreConfig:
    # None: every metric of each protocol; else the metric names to keep (e.g. ("FD", "CLAP_LAION")).
    metrics: Sequence[str] | None = None
    backbones: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BACKBONES))
    weights: str = "official"  # "official": load checkpoint files; "random": fixed-seed random weights
    checkpoints: dict[str, str] = field(default_factory=dict)  # backbone name -> file path
    tokenizers: dict[str, str] = field(default_factory=dict)  # text backbone name -> local tokenizer folder
    random_seed: int = 0
    resampler: str = PROTOCOL.scoring_resampler  # "reference": each backbone's input_path.resampler
    bootstrap: int = 100
    confidence: float = 0.95
    bootstrap_seed: int = 0
    batch_files: int = 16
    device: str = "cpu"
    # None: as the reference tools (audioldm_eval embeds the whole file; the CLAP backbones take their
    # first window after resampling). A number cuts every file to its first max_duration_s seconds first.
    max_duration_s: float | None = None
    min_duration_s: float = PROTOCOL.min_duration_s
    progress: bool = True
    protocols: Sequence[str] = ("genau",)  # names in bench.metrics.protocols.PROTOCOLS, scored from one decode

    def __post_init__(self) -> None:
        for name in self.protocols:
            protocol_named(name)  # KeyError naming the closest protocol
        if self.metrics is not None:
            self.metrics = tuple(self.metrics)
            known = {pm.metric for name in self.protocols for pm in protocol_named(name).metrics}
            unknown = [m for m in self.metrics if m not in known]
            if unknown:
                raise ValueError(
                    f"unknown metric(s) {unknown} for protocol(s) {', '.join(self.protocols)}; known: {sorted(known)}"
                )
        if self.weights not in ("official", "random"):
            raise ValueError(f"weights must be 'official' or 'random', not {self.weights!r}")

    def entries(self) -> list[tuple[Protocol, ProtocolMetric, str]]:
        """(protocol, metric, concrete backbone name) for every metric scored, in protocol order."""
        out = []
        for name in self.protocols:
            p = protocol_named(name)
            for pm in p.metrics:
                if self.metrics is not None and pm.metric not in self.metrics:
                    continue
                out.append(
                    (p, pm, self.backbones.get(pm.role, DEFAULT_BACKBONES.get(pm.role, "")) if pm.role else pm.backbone)
                )
        return out


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
    ci_reason: str = ""  # why the interval is NaN, if it is
    ci_note: str = ""  # e.g. the point value lies outside its bootstrap interval (see CI_OUTSIDE_NOTE)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# Documented choice (docs/records.md, "Intervals"): intervals are plain percentile bootstrap intervals, reported as
# computed. FD / FAD / KAD are biased upward in small samples, and a resample drawn with replacement
# holds duplicate clips (fewer distinct ones), so its replicates sit above the full-set value: on the
# 10-clip demo, FAD 1.7e-05 vs replicates in [1.9e-05, 9.5e-05]. Shifting the interval (basic / BCa)
# would need a bias model the field does not use; we keep the interval and say so in the record.
CI_OUTSIDE_NOTE = (
    "the point value lies outside its percentile bootstrap interval: this metric is biased upward in small "
    "samples and resampled sets (with duplicate clips) are more so; the interval shows resampling spread, "
    "not a bias-corrected range"
)


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
    # Exactly which clips the numbers cover: {"sha256", "n"} of the generated ids, and of the
    # (id, content sha256) pairs of the references embedded (see bench.splits.base).
    prompt_set: dict = field(default_factory=lambda: clip_set_identity([]))
    reference_set: dict = field(default_factory=lambda: content_set_identity({}))
    reference_only: list[str] = field(default_factory=list)  # reference clips with no generated clip
    generated_only: list[str] = field(default_factory=list)  # generated clips with no reference clip
    protocol: dict = field(default_factory=GENAU.to_dict)  # the protocol these metrics belong to
    # Per-clip values of the metrics that have them (KL, CLAP, aesthetics): column -> {clip id: value}.
    per_clip: dict[str, dict[str, float]] = field(default_factory=dict)

    def table(self) -> dict[str, float]:
        return {m.column: m.value for m in self.metrics}

    @property
    def weights_label(self) -> str:
        return combined_weights_label(
            b.get("weights", "unavailable") for b in self.backbones.values() if "error" not in b
        )

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
            "prompt_set": self.prompt_set,
            "reference_set": self.reference_set,
            "n_reference_only": len(self.reference_only),
            "reference_only": self.reference_only,
            "n_generated_only": len(self.generated_only),
            "generated_only": self.generated_only,
            "protocol": self.protocol,
        }

    def per_clip_frame(self):
        """pandas DataFrame: one row per clip id ("clip_id"), one float column per per-clip metric column."""
        import pandas as pd

        ids = sorted({c for values in self.per_clip.values() for c in values})
        data = {"clip_id": ids}
        for column, values in self.per_clip.items():
            data[column] = [float(values.get(c, math.nan)) for c in ids]
        return pd.DataFrame(data)


def unmatched_lines(record: dict, shown: int = 5) -> list[str]:
    """Console lines naming the clips present on one side only (first ids and the count; the record lists all)."""
    lines = []
    for key, what in (
        ("reference_only", "reference clips have no generated clip"),
        ("generated_only", "generated clips have no reference clip"),
    ):
        ids = record.get(key) or []
        if ids:
            more = f", ... ({len(ids) - shown} more in the record's `{key}`)" if len(ids) > shown else ""
            lines.append(f"{len(ids)} {what}: {', '.join(ids[:shown])}{more}")
    return lines


def _in_process_tokenizer(official_name: str):
    """Random-weight text towers never touch the hub: they get an in-process tokenizer of the
    same family (the numbers are labelled random anyway)."""
    from genau_core import tokenizers as T

    builders = {
        "roberta": T.bpe_roberta_tokenizer,
        "gpt2": T.bpe_gpt2_tokenizer,
        "bert": T.wordpiece_bert_tokenizer,
    }
    for family, build in builders.items():
        if family in official_name:
            return build()
    raise ValueError(f"no in-process tokenizer for {official_name!r}")


def _random_tokenizer_note(cls) -> str | None:
    official = getattr(getattr(cls, "default_config", None), "tokenizer", None)
    return official if issubclass(cls, TextAudioBackbone) and official else None


def _local_tokenizer(folder: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as e:  # noqa: BLE001  (filesystem / format errors come in many types; all are reported)
        raise TokenizerError(
            f"tokenizer folder {folder}: cannot load ({type(e).__name__}: {e}); "
            "give a folder written by save_pretrained (tokenizer.json or vocab files)"
        ) from None


def resolve_tokenizer(name: str, config: ScoreConfig):
    """(tokenizer or None, where it comes from) for backbone `name`: --tokenizer NAME=DIR, else (official)
    None, meaning the backbone's own hub id / HF cache, else (random) an in-process stand-in."""
    cls = backbone_class(name)
    if config.weights == "official":
        if name in config.tokenizers:
            return _local_tokenizer(config.tokenizers[name]), config.tokenizers[name]
        official = getattr(getattr(cls, "default_config", None), "tokenizer", None)
        return None, f"{official} (hub id / HF cache)" if official else "the backbone's own"
    official_tokenizer = _random_tokenizer_note(cls)
    if official_tokenizer:
        return _in_process_tokenizer(official_tokenizer), f"in-process (stands in for {official_tokenizer})"
    return None, "the backbone's own"


def build_backbone(name: str, config: ScoreConfig, tokenizer=None) -> AudioBackbone:
    """The network of backbone `name`; `tokenizer` (text towers) as resolved by `resolve_tokenizer`."""
    cls = backbone_class(name)
    if config.weights == "official":
        if tokenizer is None and name in config.tokenizers:
            tokenizer = _local_tokenizer(config.tokenizers[name])
        if tokenizer is not None:
            return cls(device=config.device, tokenizer=tokenizer).load(config.checkpoints.get(name))
        return cls(device=config.device).load(config.checkpoints.get(name))
    official_tokenizer = _random_tokenizer_note(cls)
    if official_tokenizer:
        tok = tokenizer if tokenizer is not None else _in_process_tokenizer(official_tokenizer)
        bb = cls(device=config.device, tokenizer=tok).init_random(config.random_seed)
        bb.identity = replace(
            bb.identity,
            checkpoint_id=f"{bb.identity.checkpoint_id}+in-process-tokenizer",
            source=f"in-process (random weights; tokenizer stands in for {official_tokenizer})",
        )
        return bb
    return cls(device=config.device).init_random(config.random_seed)


def locate_checkpoint(name: str, config: ScoreConfig, shell: AudioBackbone | None = None) -> Path:
    """The official checkpoint file of backbone `name`: --checkpoint NAME=PATH, else the checkpoint dirs."""
    cls = backbone_class(name)
    shell = shell or cls(device=config.device)  # constructors build no network
    filename = getattr(shell, "checkpoint_filename", cls.checkpoint_filename)
    return find_checkpoint(
        filename,
        config.checkpoints.get(name),
        what=f"{name} checkpoint",
        source=cls.checkpoint_source,
        flag=f"--checkpoint {name}=PATH",
    )


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
        self._built: AudioBackbone | None = None
        self.loaded = False  # whether the network was built in this run (else every embedding came from the cache)
        self.from_cache = 0
        self.computed = 0
        self._tokenizer, self.tokenizer_info = None, None
        if issubclass(self.cls, TextAudioBackbone):
            # The tokenizer decides the text embeddings, so its identity is part of their cache key. It is
            # loaded (and checked: MS-CLAP refuses a GPT-2 tokenizer whose '!' is not id 0) whether or not
            # the cache is warm, so a warm run accepts exactly what a fresh run accepts.
            self._tokenizer, where = resolve_tokenizer(name, config)
            with_tok = {"tokenizer": self._tokenizer} if self._tokenizer is not None else {}
            shell = self.cls(device=config.device, **with_tok)
            tok = getattr(shell, "tokenizer", None)
            self.tokenizer_info = {
                "sha256": tokenizer_identity(tok) if tok is not None else None,
                "source": where,
                "class": type(tok).__name__ if tok is not None else None,
            }
            self._shell = shell
        else:
            self._shell = self.cls(device=config.device)  # constructors build no network
        if config.weights == "official":
            path = locate_checkpoint(name, config, self._shell)
            digest = sha256_file(path)
            self.file = {**file_provenance(path, digest), "path": str(path)}
            self.identity = BackboneIdentity(
                name, self.sample_rate, f"sha256:{digest}", file_weights_label(digest), str(path)
            )
        else:
            self.file = None
            note = _random_tokenizer_note(self.cls)
            suffix = "+in-process-tokenizer" if note else ""
            source = f"in-process (random weights; tokenizer stands in for {note})" if note else "in-process"
            self.identity = BackboneIdentity(
                name, self.sample_rate, f"random:seed={config.random_seed}{suffix}", "random", source
            )

    @property
    def checkpoint_id(self) -> str:
        return self.identity.checkpoint_id

    @property
    def text_variant(self) -> str:
        """The text-embedding cache leaf: names the tokenizer, so another tokenizer never reads these entries."""
        sha = (self.tokenizer_info or {}).get("sha256")
        return f"text-tok{sha[:16]}" if sha else "text"

    @property
    def backbone(self) -> AudioBackbone:
        if self._built is None:
            bb = build_backbone(self.name, self.config, self._tokenizer)
            if bb.identity.checkpoint_id != self.identity.checkpoint_id:
                raise RuntimeError(
                    f"{self.name}: loaded {bb.identity.checkpoint_id}, expected {self.identity.checkpoint_id}"
                )
            self._built = bb
            self.loaded = True
        return self._built

    @property
    def shell(self) -> AudioBackbone:
        """The backbone object without its network (constructors build none): prepare / derive_native."""
        return self._shell

    @property
    def input_key(self) -> str:
        """The input path and resampler that make this backbone's input (part of the embedding-cache key)."""
        return self.cls.input_path.key(self.config.resampler)

    def record(self) -> dict:
        """The record's entry: identity, the file (name, sha256, published or not), the tokenizer, and where
        this run's embeddings came from. `source` is the weights' location only when they were loaded."""
        out = self.identity.to_dict()
        out["input"] = self.cls.input_path.describe(self.config.resampler)
        out["resampler"] = out["input"]["resampler"]
        if self.file is not None:
            out["checkpoint_file"] = self.file
        if self.tokenizer_info is not None:
            out["tokenizer"] = self.tokenizer_info
        out["embeddings"] = {"from_cache": self.from_cache, "computed": self.computed}
        if not self.loaded:  # nothing computed: every embedding of this run came from the cache
            out["source"] = f"embedding cache ({self.from_cache} embeddings; weights not loaded in this run)"
        return out

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
        variant = self.text_variant
        for t in texts:
            digest = hashlib.sha256(("text:" + t).encode()).hexdigest()
            hit = cache.get(digest, self.name, self.checkpoint_id, 0, "text", variant=variant)
            out.append(None if hit is None else hit["embedding"])
        todo = [i for i, e in enumerate(out) if e is None]
        self.from_cache += len(texts) - len(todo)
        if todo:
            model = self.backbone
            assert isinstance(model, TextAudioBackbone)
            fresh = np.asarray(model.embed_text([texts[i] for i in todo]), dtype=np.float32)
            self.computed += len(todo)
            for i, e in zip(todo, fresh):
                digest = hashlib.sha256(("text:" + texts[i]).encode()).hexdigest()
                cache.put(digest, self.name, self.checkpoint_id, 0, "text", {"embedding": e}, variant=variant)
                out[i] = e
        return np.stack(out)


class _Embedder:
    """Embeds files with several backbones, decoding each file once and resampling once per rate."""

    def __init__(self, backbones: dict[str, LazyBackbone], config: ScoreConfig, cache: EmbeddingCache):
        self.backbones, self.config, self.cache = backbones, config, cache
        self.failures: dict[str, str] = {}
        self._digest: dict[str, str] = {}
        # Derived inputs of the current batch, shared by backbones with the same input path and rate
        # (Cnn14 and VGGish): keyed by (id of the decoded array, input key, rate).
        self._inputs: dict[tuple[int, str, int], np.ndarray] = {}

    def _input(self, decoded: tuple[np.ndarray, int], bb: LazyBackbone) -> np.ndarray:
        key = (id(decoded[0]), bb.input_key, bb.sample_rate)
        if key not in self._inputs and bb.cls.input_path.channels == "native":  # the backbone's own derivation
            self._inputs[key] = bb.shell.derive_native(decoded[0], decoded[1])
        if key not in self._inputs:
            self._inputs[key] = derive_input(
                decoded[0], decoded[1], bb.sample_rate, bb.cls.input_path, self.config.resampler
            )
        return self._inputs[key]

    def _decode(self, path: str) -> tuple[np.ndarray, int]:
        x, sr = read_audio_channels(path)  # (samples, channels): each input path handles channels its way
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
        # The bar counts clips (not batches of `batch_files`: 10 clips were one step sitting at 0/1) and
        # names the backbone running on the current batch.
        bar = tqdm(total=len(files), desc=desc, unit="clip", disable=not self.config.progress)
        for start in range(0, len(files), step):
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
                    hit = self.cache.get(digest, name, bb.checkpoint_id, bb.sample_rate, bb.input_key)
                    if hit is not None:
                        out[name][f] = hit
                        bb.from_cache += 1
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
                bar.set_postfix_str(f"{name} on {len(need)} clip{'s' if len(need) != 1 else ''}")
                waves = [bb.prepare(self._input(decoded[f], bb)) for f in need]
                for f, emb in zip(need, bb.embed(waves)):
                    bb.computed += 1
                    emb = {k: np.asarray(v, dtype=np.float32) for k, v in emb.items()}
                    self.cache.put(self._digest[f], name, bb.checkpoint_id, bb.sample_rate, bb.input_key, emb)
                    out[name][f] = emb
            self._inputs.clear()
            bar.update(len(files[start : start + step]))
        bar.set_postfix_str("")
        bar.close()
        for name in out:
            for f in self.failures:
                out[name].pop(f, None)
        return out


def _nan(metric: str, column: str, backbone: str, reason: str) -> MetricResult:
    return MetricResult(metric, column, math.nan, backbone=backbone, reason=reason, ci_reason="no value")


def _with_ci(metric, column, backbone, value, n, ci: Callable[[], tuple[float, float]] | None, config) -> MetricResult:
    if ci is None:
        low, high, why = math.nan, math.nan, "no interval for this metric"
    elif config.bootstrap <= 0:
        low, high, why = math.nan, math.nan, "bootstrap off (--bootstrap 0)"
    else:
        try:
            (low, high), why = ci(), ""
        except ValueError as e:  # e.g. too few clips to resample
            low, high, why = math.nan, math.nan, f"bootstrap failed: {e}"
    res = MetricResult(metric, column, float(value), float(low), float(high), n=n, backbone=backbone, ci_reason=why)
    if not why and not (low <= value <= high):
        res.ci_note = CI_OUTSIDE_NOTE
    return res


def _hash_checkpoints_in_parallel(names: Sequence[str], config: ScoreConfig) -> None:
    """Fill the sha256 memo for every checkpoint file found, several files at once (a missing
    or unknown one is reported later, by the backbone that needs it)."""
    paths = []
    for name in names:
        try:
            paths.append(locate_checkpoint(name, config))
        except GenauBenchError:  # CheckpointNotFound, an unknown backbone name, a bad device
            continue
    sha256_files(paths)


def _column(pm_metric: str, name: str) -> str:
    try:  # the column keeps its backbone@rate even when the backbone is unavailable
        return metric_column(pm_metric, name, backbone_class(name).sample_rate)
    except KeyError:  # an unknown backbone name: no rate to name
        return metric_column(pm_metric, name, 0).replace("@0k", "")


def score(
    gen: dict[str, str | Path],
    ref: dict[str, str | Path],
    texts: dict[str, str] | None = None,
    config: ScoreConfig | None = None,
    cache: EmbeddingCache | None = None,
) -> ScoreResult:
    """Score generated clips `gen` (clip id -> file) against references `ref` (clip id -> file) under
    the first protocol of `config.protocols` (default: genau). See `score_protocols`."""
    config = config or ScoreConfig()
    return score_protocols(gen, ref, texts, config, cache)[config.protocols[0]]


def score_protocols(
    gen: dict[str, str | Path],
    ref: dict[str, str | Path],
    texts: dict[str, str] | None = None,
    config: ScoreConfig | None = None,
    cache: EmbeddingCache | None = None,
) -> dict[str, ScoreResult]:
    """Score under every protocol of `config.protocols`: each file is decoded once and embedded by
    every backbone any protocol needs (references only by backbones whose metrics need them); then
    each protocol's metrics are computed from the registry. -> {protocol name: ScoreResult}.

    `texts` (clip id -> prompt) is needed for the CLAP scores. KL pairs gen and ref by clip id.
    """
    config = config or ScoreConfig()
    cache = cache or EmbeddingCache()
    texts = texts or {}
    gen = {k: str(v) for k, v in gen.items()}
    ref = {k: str(v) for k, v in ref.items()}

    entries = config.entries()
    names = sorted({name for _, _, name in entries})
    if config.weights == "official":
        _hash_checkpoints_in_parallel(names, config)
    backbones: dict[str, LazyBackbone] = {}
    identities: dict[str, dict] = {}
    errors: dict[str, str] = {}
    for name in names:
        try:
            backbones[name] = LazyBackbone(name, config)
        except GenauBenchError as e:  # a missing checkpoint, an unknown name, a tokenizer that cannot load
            errors[name] = f"backbone {name} unavailable: {e}"
            identities[name] = {"error": str(e)}

    needs_ref = {name for _, pm, name in entries if metric_spec(pm.metric).needs_reference and name in backbones}
    needs_text = {name for _, pm, name in entries if metric_spec(pm.metric).needs_text and name in backbones}
    embedder = _Embedder(backbones, config, cache)
    gen_bbs = {name: backbones[name] for name in names if name in backbones}
    ref_bbs = {name: backbones[name] for name in sorted(needs_ref)}
    embedder.backbones = gen_bbs
    gen_emb = embedder.embed(sorted(gen.values()), "embedding generated clips")
    # Prompts now, so each text-audio network is freed before the references are embedded.
    text_emb: dict[str, dict[str, np.ndarray] | ValueError] = {}
    for name, bb in gen_bbs.items():
        if name in needs_text and issubclass(bb.cls, TextAudioBackbone):
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

    for name, bb in backbones.items():
        identities[name] = bb.record()
    ref_digests = {cid: embedder._digest[p] for cid, p in ref.items() if p in embedder._digest}
    failures = [
        {"file": f, "side": "generated" if f in set(gen.values()) else "reference", "reason": r}
        for f, r in sorted(embedder.failures.items())
    ]
    shared = dict(
        failures=failures,
        n_generated=len(gen),
        n_reference=len(ref),
        n_paired=len(set(gen) & set(ref)),
        resampler=config.resampler,
        cache_hits=cache.hits,
        cache_misses=cache.misses,
        kernels=active_kernels(config.device),
        prompt_set=clip_set_identity(gen),
        reference_set=content_set_identity(ref_digests),
        reference_only=sorted(set(ref) - set(gen)),
        generated_only=sorted(set(gen) - set(ref)),
    )

    def by_id(side: dict[str, str], emb: dict, name: str) -> dict[str, dict[str, np.ndarray]]:
        got = emb.get(name, {})
        return {cid: got[path] for cid, path in side.items() if path in got}

    out: dict[str, ScoreResult] = {}
    for pname in config.protocols:
        results: list[MetricResult] = []
        per_clip: dict[str, dict[str, float]] = {}
        used: list[str] = []
        for p, pm, name in entries:
            if p.name != pname:
                continue
            used.append(name)
            column = _column(pm.metric, name)
            if name in errors:
                results.append(_nan(pm.metric, column, name, errors[name]))
                continue
            spec = metric_spec(pm.metric)
            text = text_emb.get(name, {})
            try:
                if isinstance(text, ValueError) and spec.needs_text:
                    raise text
                if spec.needs_text and not issubclass(backbones[name].cls, TextAudioBackbone):
                    raise ValueError(f"{name} has no text tower")
                inputs = MetricInputs(
                    gen=by_id(gen, gen_emb, name),
                    ref=by_id(ref, ref_emb, name) if spec.needs_reference else {},
                    text=text if isinstance(text, dict) else {},
                    options=pm.option_dict(),
                    bootstrap=config.bootstrap,
                    confidence=config.confidence,
                    seed=config.bootstrap_seed,
                )
                value = spec.compute(inputs)
            except ValueError as e:
                results.append(_nan(pm.metric, column, name, str(e)))
                continue
            res = _with_ci(pm.metric, column, name, value.value, value.n, value.ci, config)
            if value.note:
                res.reason = value.note
            results.append(res)
            if value.per_clip is not None:
                per_clip[column] = value.per_clip
        out[pname] = ScoreResult(
            metrics=results,
            backbones={n: identities[n] for n in dict.fromkeys(used)},
            protocol=protocol_named(pname).to_dict(),
            per_clip=per_clip,
            **shared,
        )
    return out
