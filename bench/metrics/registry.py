"""The metric registry: every metric is declared once, here.

A `MetricSpec` says what a metric needs (reference audio, pairing by clip id, prompts), which
backbone output it reads, whether higher is better, whether it is charted, how it is computed
(point value, per-clip values, confidence interval) and which reference tool computes the same
quantity. The scoring engine (`bench.metrics.suite`), the protocols (`bench.metrics.protocols`),
the leaderboard and its chart, the report and `--impl reference` all read this table; none of
them lists metric names of its own.

Adding a metric is one `register(MetricSpec(...))` call with a compute function over a
`MetricInputs`; its tests go in tests/metrics/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from bench.metrics import functional as F


@dataclass
class MetricInputs:
    """What a compute function gets: one backbone's outputs for one protocol's view of the clips.

    gen / ref map clip id -> that clip's backbone outputs (e.g. {"embedding": ..., "logits": ...});
    text maps clip id -> text embedding (text-audio backbones only); options are the protocol's
    per-metric options (e.g. the KL eps).
    """

    gen: dict[str, dict[str, np.ndarray]]
    ref: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    text: dict[str, np.ndarray] = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    bootstrap: int = 100
    confidence: float = 0.95
    seed: int = 0

    def rows(self, side: str, key: str) -> tuple[list[str], np.ndarray | None]:
        emb = self.gen if side == "gen" else self.ref
        ids = sorted(emb)
        if not ids:
            return ids, None
        return ids, np.stack([emb[c][key] for c in ids])

    def boot(self, statistic: Callable, *arrays, paired: bool = False) -> Callable[[], tuple[float, float]]:
        """The percentile-bootstrap interval of `statistic(*arrays)`, computed when called (the engine
        skips it under --bootstrap 0)."""
        return lambda: F.bootstrap_ci(
            statistic, *arrays, n_resamples=self.bootstrap, confidence=self.confidence, seed=self.seed, paired=paired
        )


@dataclass
class MetricValue:
    """A computed metric: point value, number of clips, per-clip values (clip id -> value) where the
    metric has them, a confidence-interval function, and a note shown beside the value."""

    value: float
    n: int
    per_clip: dict[str, float] | None = None
    ci: Callable[[], tuple[float, float]] | None = None
    note: str = ""


@dataclass(frozen=True)
class MetricSpec:
    """One metric, declared once.

    name: the metric's name in columns ("FD", "KL_softmax", "CLAP", "PQ").
    output: the backbone output it reads ("embedding", "frames", "logits", or an aesthetics axis).
    needs_reference: reads reference audio; paired: matches generated and reference clips by id;
    needs_text: reads prompts (text-audio backbones). higher_is_better: ranking direction (None:
    descriptive only, never ranked).
    charted: drawn in the leaderboard chart. per_clip: the metric has a value per clip (exported).
    reference_tool: the function of the field's tool that computes the same quantity.
    reference_impl: the network `bench score --impl reference` computes it with, in the field's own package
    (a label of `bench.metrics.reference_impl.TOOLS`; None: not run there); reference_impl_missing: why that
    package cannot compute it (the row is NaN with this reason).
    """

    name: str
    output: str
    compute: Callable[[MetricInputs], MetricValue]
    higher_is_better: bool | None  # None: descriptive, never ranked
    needs_reference: bool = False
    paired: bool = False
    needs_text: bool = False
    charted: bool = True
    per_clip: bool = False
    reference_tool: str = ""
    description: str = ""
    reference_impl: str | None = None
    reference_impl_missing: str = ""


METRICS: dict[str, MetricSpec] = {}


def register(spec: MetricSpec) -> MetricSpec:
    """Declare a metric (names are unique)."""
    if spec.name in METRICS:
        raise ValueError(f"metric {spec.name!r} is declared twice")
    METRICS[spec.name] = spec
    return spec


def metric(name: str) -> MetricSpec:
    if name not in METRICS:
        import difflib

        close = difflib.get_close_matches(name, list(METRICS), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise KeyError(f"unknown metric {name!r}.{hint} Known: {', '.join(METRICS)}")
    return METRICS[name]


# ------------------------------------------------------------------------------------------
# compute functions
# ------------------------------------------------------------------------------------------


def _two_sets(inp: MetricInputs, key: str) -> tuple[np.ndarray, np.ndarray]:
    _, x = inp.rows("gen", key)
    _, y = inp.rows("ref", key)
    if x is None or y is None:
        raise ValueError("no readable generated or reference clips")
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"needs at least 2 clips per side (have {len(x)} generated, {len(y)} reference)")
    return x, y


def _set_metric(fn: Callable[[np.ndarray, np.ndarray], float], key: str = "embedding"):
    def compute(inp: MetricInputs) -> MetricValue:
        x, y = _two_sets(inp, key)
        return MetricValue(fn(x, y), len(x), ci=inp.boot(fn, x, y))

    return compute


def _pooled_frames_fd(inp: MetricInputs) -> MetricValue:
    """Frechet distance over every frame of every clip pooled (VGGish FAD, OpenL3 FD); the bootstrap
    resamples clips, then pools their frames."""
    gids, rids = sorted(inp.gen), sorted(inp.ref)
    if not gids or not rids:
        raise ValueError("no readable generated or reference clips")
    gf = [inp.gen[c]["frames"] for c in gids]
    rf = [inp.ref[c]["frames"] for c in rids]
    value = F.frechet_distance(np.concatenate(gf), np.concatenate(rf))

    def by_clip(gi, ri):
        return F.frechet_distance(np.concatenate([gf[i] for i in gi]), np.concatenate([rf[i] for i in ri]))

    return MetricValue(value, len(gf), ci=inp.boot(by_clip, np.arange(len(gf)), np.arange(len(rf))))


def _inception(inp: MetricInputs) -> MetricValue:
    _, logits = inp.rows("gen", "logits")
    if logits is None:
        raise ValueError("no readable generated clips")
    mean, std = F.inception_score(logits, splits=10, seed=2020)
    ci = inp.boot(lambda a: F.inception_score(a, splits=10, seed=2020)[0], logits)
    return MetricValue(mean, len(logits), ci=ci, note=f"std over 10 splits = {std:.4f}")


def _paired_ids(inp: MetricInputs) -> list[str]:
    ids = sorted(set(inp.gen) & set(inp.ref))
    if not ids:
        raise ValueError("no generated clip has a readable reference with the same clip id")
    return ids


def _kl_audioldm_eval(kind: str):
    def compute(inp: MetricInputs) -> MetricValue:
        ids = _paired_ids(inp)
        p = np.stack([inp.gen[c]["logits"] for c in ids])
        q = np.stack([inp.ref[c]["logits"] for c in ids])
        # eps inside the log of the generated probabilities: 1e-6 in audioldm_eval; av-benchmark's
        # compute_kl uses log_softmax on both sides, i.e. eps = 0 (protocol option).
        per = F.kl_divergence_per_clip(p, q, kind=kind, eps=inp.options.get("eps", 1e-6))
        return MetricValue(float(per.mean()), len(ids), dict(zip(ids, map(float, per))), inp.boot(np.mean, per))

    return compute


def _softmax64(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _kl_stable_audio(inp: MetricInputs) -> MetricValue:
    """stable-audio-metrics `passt_kld`: p = softmax(mean of the windows' logits) per clip (the
    backbone's "logits" output is that mean), then F.kl_div((p_ref + 1e-6).log(), p_gen,
    reduction="sum") = sum_c p_gen (log p_gen - log(p_ref + 1e-6)), averaged over clips."""
    ids = _paired_ids(inp)
    p = _softmax64(np.stack([inp.gen[c]["logits"] for c in ids]))
    q = _softmax64(np.stack([inp.ref[c]["logits"] for c in ids]))
    per = F.kl_divergence_of_probabilities(p, q, eps=inp.options.get("eps", 1e-6))
    return MetricValue(float(per.mean()), len(ids), dict(zip(ids, map(float, per))), inp.boot(np.mean, per))


def _clap(inp: MetricInputs) -> MetricValue:
    ids = sorted(c for c in inp.text if c in inp.gen)
    if not ids:
        raise ValueError("no generated clip has a prompt")
    a = np.stack([inp.gen[c]["embedding"] for c in ids])
    t = np.stack([inp.text[c] for c in ids])
    per = F.clap_score_per_pair(t, a)
    return MetricValue(float(per.mean()), len(ids), dict(zip(ids, map(float, per))), inp.boot(np.mean, per))


def _aesthetic(axis: str):
    def compute(inp: MetricInputs) -> MetricValue:
        ids = sorted(inp.gen)
        if not ids:
            raise ValueError("no readable generated clips")
        per = np.array([float(inp.gen[c][axis].reshape(-1)[0]) for c in ids])
        return MetricValue(float(per.mean()), len(ids), dict(zip(ids, map(float, per))), inp.boot(np.mean, per))

    return compute


# ------------------------------------------------------------------------------------------
# declarations
# ------------------------------------------------------------------------------------------


def _fd(inp: MetricInputs) -> MetricValue:
    """Per-clip embeddings, or (protocol option frames=True, e.g. OpenL3 in stable-audio-metrics)
    every frame of every clip pooled."""
    if inp.options.get("frames"):
        return _pooled_frames_fd(inp)
    return _set_metric(F.frechet_distance)(inp)


_CNN14 = "audioldm_eval-cnn14"  # `--impl reference`: audioldm_eval's Cnn14_16k

register(
    MetricSpec(
        "FD",
        "embedding",
        _fd,
        higher_is_better=False,
        needs_reference=True,
        reference_tool="audioldm_eval calculate_fid / stable-audio-metrics calculate_frechet_distance / av-benchmark "
        "compute_fd",
        description="Frechet distance between Gaussians fitted to per-clip embeddings",
        reference_impl=_CNN14,
    )
)
register(
    MetricSpec(
        "FAD",
        "frames",
        _pooled_frames_fd,
        higher_is_better=False,
        needs_reference=True,
        reference_tool="audioldm_eval calculate_fid on VGGish frames",
        description="Frechet distance over pooled frame embeddings (VGGish)",
        reference_impl="audioldm_eval-vggish",
    )
)
register(
    MetricSpec(
        "KAD",
        "embedding",
        _set_metric(F.kernel_distance),
        higher_is_better=False,
        needs_reference=True,
        reference_tool="kadtk",
        description="kernel (MMD) distance between per-clip embeddings",
        reference_impl=_CNN14,
        reference_impl_missing="audioldm_eval has no KAD (its kernel metric is KID, recorded as "
        "KID_audioldm_eval-cnn14@16k)",
    )
)
register(
    MetricSpec(
        "IS",
        "logits",
        _inception,
        higher_is_better=True,
        reference_tool="audioldm_eval calculate_isc (10 splits, seed 2020)",
        description="inception score of the classifier",
        reference_impl=_CNN14,
    )
)
register(
    MetricSpec(
        "KL_softmax",
        "logits",
        _kl_audioldm_eval("softmax"),
        higher_is_better=False,
        needs_reference=True,
        paired=True,
        per_clip=True,
        reference_tool="audioldm_eval calculate_kl (softmax)",
        description="KL(reference || generated) of softmax class probabilities, per clip pair",
        reference_impl=_CNN14,
    )
)
register(
    MetricSpec(
        "KL_sigmoid",
        "logits",
        _kl_audioldm_eval("sigmoid"),
        higher_is_better=False,
        needs_reference=True,
        paired=True,
        per_clip=True,
        reference_tool="audioldm_eval calculate_kl (sigmoid)",
        description="audioldm_eval's sigmoid KL of class probabilities, per clip pair",
        reference_impl=_CNN14,
    )
)
register(
    MetricSpec(
        "KL_sam",
        "logits",
        _kl_stable_audio,
        higher_is_better=False,
        needs_reference=True,
        paired=True,
        per_clip=True,
        reference_tool="stable-audio-metrics passt_kld (collect='mean')",
        description="KL(generated || reference + 1e-6) of softmax(mean window logits), per clip pair",
    )
)
for _name, _tool, _impl in (
    ("CLAP_LAION", "laion_clap", "laion_clap-htsat-base"),
    ("CLAP_MS", "msclap", "msclap-2023"),
):
    register(
        MetricSpec(
            _name,
            "embedding",
            _clap,
            higher_is_better=True,
            needs_text=True,
            per_clip=True,
            reference_tool=f"cosine(text, audio) with {_tool}'s embeddings",
            reference_impl=_impl,
            description="cosine similarity between the prompt's and the clip's CLAP embeddings",
        )
    )
# Production complexity describes the audio (how many sources), it is not a quality: never ranked.
for _axis, _what, _better in (
    ("PQ", "production quality", True),
    ("PC", "production complexity", None),
    ("CE", "content enjoyment", True),
    ("CU", "content usefulness", True),
):
    register(
        MetricSpec(
            _axis,
            _axis,
            _aesthetic(_axis),
            higher_is_better=_better,
            per_clip=True,
            reference_tool="audiobox_aesthetics infer (AesPredictor)",
            description=f"audiobox-aesthetics {_what} (1-10), mean over clips",
        )
    )
