"""`bench compare A B --split S`: paired significance of every metric between two models.

Both models ran the same prompts, so every test is *paired over prompts*:

per-clip metrics (KL, CLAP, aesthetics: one value per clip, from the records' per-clip sidecars)
    difference   mean over the common clips of (A - B)
    interval     paired percentile bootstrap: one index vector of prompts per resample, applied to
                 both models (`paired_bootstrap_indices`), 2000 resamples
    p            paired permutation test: the signs of the per-prompt differences flipped at random
                 (scipy.stats.permutation_test, permutation_type="samples"; exact for n <= 13)
    effect       d_z = mean(A - B) / sd(A - B) (ddof 1)
set metrics (FD, FAD, KAD, IS: one value per set of clips)
    difference   metric(A) - metric(B) on the common prompts (references: those prompts' references)
    interval     paired percentile bootstrap: each resample draws prompts once and takes those prompts'
                 clips of A, of B and their references (the same indices for both models), 200 resamples
    p            from the same replicates, centred at the observed difference:
                 (1 + #{|d* - d| >= |d|}) / (1 + B)
    effect       d / sd(d*) (the difference in bootstrap standard errors)
Holm's step-down correction over the metrics of one comparison (one protocol, one pair).

Set metrics need the clips' embeddings: they are read through the scoring suite's own machinery
(`bench.metrics.suite.LazyBackbone` + its embedding cache, keyed by file content, backbone,
checkpoint and input path: a run scored before is read from the cache; a cache miss runs the
backbone with the record's own weights, checkpoint file and resampler). A backbone whose
checkpoint no longer matches the record's sha256 leaves the metric NaN with that reason.

Identical runs give difference 0, an interval [0, 0] and p = 1. Power at documented shifts:
docs/report.md ("Power").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from bench.report.collect import (
    ReportError,
    SplitRuns,
    System,
    higher_is_better,
    protocol_of,
)

PER_CLIP_RESAMPLES = 2000
SET_RESAMPLES = 200
PERMUTATIONS = 9999
ALPHA = 0.05


@dataclass
class CompareConfig:
    per_clip_resamples: int = PER_CLIP_RESAMPLES
    set_resamples: int = SET_RESAMPLES
    permutations: int = PERMUTATIONS
    confidence: float = 0.95
    seed: int = 0
    set_metrics: bool = True  # False: per-clip metrics only (no embeddings needed)
    device: str = "cpu"
    progress: bool = True


@dataclass
class MetricComparison:
    protocol: str
    metric: str
    column: str
    kind: str  # "per-clip" | "set"
    n: int
    a: float = math.nan
    b: float = math.nan
    diff: float = math.nan  # A - B
    ci_low: float = math.nan
    ci_high: float = math.nan
    p: float = math.nan
    p_holm: float = math.nan
    effect: float = math.nan
    effect_kind: str = ""  # "d_z" | "d/se"
    higher_is_better: bool | None = None
    test: str = ""
    reason: str = ""  # why the numbers are NaN

    @property
    def better(self) -> str:
        """'A' / 'B' when Holm-significant at ALPHA and the metric has a direction, else ''."""
        if not (self.p_holm < ALPHA) or self.higher_is_better is None or not self.diff:
            return ""
        return "A" if (self.diff > 0) == bool(self.higher_is_better) else "B"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["better"] = self.better
        return d


@dataclass
class PairComparison:
    split: str
    protocol: str
    a: str
    b: str
    a_label: str
    b_label: str
    comparable: bool
    n_common: int
    metrics: list[MetricComparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "metrics"}
        return {**out, "metrics": [m.to_dict() for m in self.metrics]}


# ------------------------------------------------------------------------------------------
# statistics (pure arrays)
# ------------------------------------------------------------------------------------------


def paired_bootstrap_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) prompt indices drawn with replacement: row r is applied to *both* models."""
    if n < 1:
        raise ValueError("paired bootstrap needs at least one common prompt")
    return np.random.default_rng(seed).integers(0, n, size=(int(n_resamples), n))


def paired_bootstrap(
    stat_a: Callable[[np.ndarray], float],
    stat_b: Callable[[np.ndarray], float],
    n: int,
    *,
    n_resamples: int,
    seed: int,
    progress: Callable | None = None,
) -> np.ndarray:
    """Replicates of stat_a(idx) - stat_b(idx), the same prompt indices idx for both models."""
    idx = paired_bootstrap_indices(n, n_resamples, seed)
    out = np.empty(len(idx))
    for r, rows in enumerate(idx):
        out[r] = stat_a(rows) - stat_b(rows)
        if progress is not None:
            progress(1)
    return out


def percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(replicates, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def sign_flip_p(diffs: np.ndarray, *, n_resamples: int, seed: int) -> float:
    """Two-sided p of mean(diffs) = 0 under random sign flips of the per-prompt differences (the paired
    permutation test of scipy.stats.permutation_test(permutation_type="samples"), which
    tests/bench/test_compare.py checks this against). Exact over all 2^n sign vectors when 2^n <= n_resamples,
    else (1 + #{|null| >= |observed|}) / (1 + n_resamples). Vectorised here because scipy's took 0.6 s per
    metric at n = 1000 and 9999 resamples (84 metric pairs of an 8-model report: about a minute); this: 0.09 s
    (same machine, 2 cores)."""
    d = np.asarray(diffs, dtype=np.float64)
    n = len(d)
    if not np.any(d):
        return 1.0  # every difference is 0: every sign flip gives the observed statistic
    observed = abs(d.mean())
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))  # sums in another order differ by round-off
    if n <= 20 and 2**n <= n_resamples:
        signs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2.0 - 1.0
        null = np.abs(signs @ d) / n
        return float(np.mean(null >= observed - tol))
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, int(n_resamples), 1000):
        k = min(1000, int(n_resamples) - start)
        signs = rng.integers(0, 2, size=(k, n)).astype(np.float64) * 2.0 - 1.0
        extreme += int(np.sum(np.abs(signs @ d) / n >= observed - tol))
    return float((1 + extreme) / (1 + int(n_resamples)))


def centred_bootstrap_p(observed: float, replicates: np.ndarray) -> float:
    """(1 + #{|d* - d| >= |d|}) / (1 + B): the replicates shifted to the null of no difference."""
    reps = np.asarray(replicates, dtype=np.float64)
    # a tolerance for round-off: identical sets give d = 0 and d* = 0 up to float error
    tol = 1e-12 * max(1.0, abs(observed), float(np.max(np.abs(reps))) if len(reps) else 0.0)
    extreme = np.abs(reps - observed) >= abs(observed) - tol
    return float((1 + extreme.sum()) / (1 + len(reps)))


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count as a test)."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(idx)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def compare_per_clip(a: np.ndarray, b: np.ndarray, cfg: CompareConfig) -> dict:
    """Numbers for one per-clip metric; a[i], b[i] are the two models' values on prompt i."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = a - b
    n = len(d)
    reps = paired_bootstrap(
        lambda i: a[i].mean(), lambda i: b[i].mean(), n, n_resamples=cfg.per_clip_resamples, seed=cfg.seed
    )
    lo, hi = percentile_interval(reps, cfg.confidence)
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    mean = float(d.mean())
    # a constant difference has sd 0 up to round-off (1e-17 for a shift of 0.05): d_z undefined, not 5e14
    effect = 0.0 if mean == 0 else (mean / sd if sd > 1e-9 * abs(mean) else math.nan)
    exact = 2**n <= cfg.permutations
    return {
        "a": float(a.mean()),
        "b": float(b.mean()),
        "diff": mean,
        "ci_low": lo,
        "ci_high": hi,
        "p": sign_flip_p(d, n_resamples=cfg.permutations, seed=cfg.seed),
        "effect": effect,
        "effect_kind": "d_z",
        "test": f"paired bootstrap ({cfg.per_clip_resamples}) + sign-flip permutation "
        f"({'exact' if exact else cfg.permutations})",
    }


def compare_set(
    stat_a: Callable[[np.ndarray], float],
    stat_b: Callable[[np.ndarray], float],
    n: int,
    cfg: CompareConfig,
    progress: Callable | None = None,
) -> dict:
    """Numbers for one set metric; stat_x(idx) = the metric on prompts idx (clips of x, their references)."""
    full = np.arange(n)
    va, vb = float(stat_a(full)), float(stat_b(full))
    observed = va - vb
    reps = paired_bootstrap(stat_a, stat_b, n, n_resamples=cfg.set_resamples, seed=cfg.seed, progress=progress)
    lo, hi = percentile_interval(reps, cfg.confidence)
    se = float(reps.std(ddof=1)) if len(reps) > 1 else math.nan
    effect = 0.0 if observed == 0 else (observed / se if se > 0 else math.nan)
    return {
        "a": va,
        "b": vb,
        "diff": observed,
        "ci_low": lo,
        "ci_high": hi,
        "p": centred_bootstrap_p(observed, reps),
        "effect": effect,
        "effect_kind": "d/se",
        "test": f"paired bootstrap over prompts ({cfg.set_resamples})",
    }


# ------------------------------------------------------------------------------------------
# set metrics from backbone outputs
# ------------------------------------------------------------------------------------------

_FALLBACK_OUTPUT = {"FD": "embedding", "KAD": "embedding", "FAD": "frames", "IS": "logits"}


def set_statistic(metric: str, options: dict | None = None) -> tuple[str, Callable[[list, list], float]]:
    """(backbone output key, f(gen outputs, ref outputs) -> value) of a set metric, computed by the metric
    registry's own compute function when the registry has it (so the number is the scorer's), else by
    bench.metrics.functional as the suite computes it."""
    options = dict(options or {})
    try:
        from bench.metrics.registry import METRICS, MetricInputs

        spec = METRICS.get(metric)
    except ImportError:
        spec = None
    if spec is not None:

        def via_registry(gen: list, ref: list) -> float:
            inp = MetricInputs(
                gen={f"{i:06d}": o for i, o in enumerate(gen)},
                ref={f"{i:06d}": o for i, o in enumerate(ref)},
                options=options,
                bootstrap=0,
            )
            return float(spec.compute(inp).value)

        return spec.output, via_registry
    from bench.metrics import functional as F

    if metric not in _FALLBACK_OUTPUT:
        raise ValueError(f"no set statistic for metric {metric!r}")
    key = _FALLBACK_OUTPUT[metric]

    def direct(gen: list, ref: list) -> float:
        if metric == "IS":
            return F.inception_score(np.stack([o[key] for o in gen]), splits=10, seed=2020)[0]
        if metric == "FAD":
            return F.frechet_distance(np.concatenate([o[key] for o in gen]), np.concatenate([o[key] for o in ref]))
        fn = F.frechet_distance if metric == "FD" else F.kernel_distance
        return fn(np.stack([o[key] for o in gen]), np.stack([o[key] for o in ref]))

    return key, direct


class EmbeddingSource(Protocol):
    def __call__(self, record: dict, backbone: str, files: list[str]) -> dict[str, dict[str, np.ndarray]]: ...


class SuiteEmbeddings:
    """Backbone outputs of files, through the scoring suite's LazyBackbone and embedding cache (memoised)."""

    def __init__(self, device: str = "cpu", progress: bool = True):
        self.device, self.progress = device, progress
        self._memo: dict[tuple[str, str, str], dict[str, np.ndarray]] = {}  # (backbone, checkpoint id, file)

    def __call__(self, record: dict, backbone: str, files: list[str]) -> dict[str, dict[str, np.ndarray]]:
        from bench.metrics.cache import EmbeddingCache
        from bench.metrics.suite import LazyBackbone, ScoreConfig, _Embedder

        ident = (record.get("backbones") or {}).get(backbone) or {}
        if "error" in ident or "checkpoint_id" not in ident:
            raise ValueError(f"the record has no usable {backbone} identity ({ident.get('error', 'not recorded')})")
        ckpt_id = ident["checkpoint_id"]
        todo = [f for f in files if (backbone, ckpt_id, f) not in self._memo]
        if todo:
            random = ident.get("weights") == "random"
            seed = int(ckpt_id.split("seed=")[1].split("+")[0]) if random and "seed=" in ckpt_id else 0
            ckpt = {} if random else {backbone: (ident.get("checkpoint_file") or {}).get("path") or ident.get("source")}
            cfg = ScoreConfig(
                metrics=(),
                weights="random" if random else "official",
                checkpoints={k: v for k, v in ckpt.items() if v},
                random_seed=seed,
                resampler=record.get("resampler") or ScoreConfig().resampler,
                device=self.device,
                progress=self.progress,
            )
            lazy = LazyBackbone(backbone, cfg)
            if lazy.checkpoint_id != ckpt_id:
                raise ValueError(
                    f"{backbone}: the weights found now ({lazy.checkpoint_id[:40]}) are not the ones the "
                    f"record was scored with ({ckpt_id[:40]}); give the same checkpoint file"
                )
            got = _Embedder({backbone: lazy}, cfg, EmbeddingCache()).embed(sorted(todo), f"{backbone} outputs")
            lazy.release()
            for f in todo:
                if f in got[backbone]:
                    self._memo[(backbone, ckpt_id, f)] = got[backbone][f]
        return {f: self._memo[(backbone, ckpt_id, f)] for f in files if (backbone, ckpt_id, f) in self._memo}


# ------------------------------------------------------------------------------------------
# comparing two systems of a split
# ------------------------------------------------------------------------------------------


def _protocol_options(rec: dict, metric: str, backbone: str) -> dict:
    p = rec.get("protocol")
    for m in p.get("metrics", []) if isinstance(p, dict) else []:
        # a protocol names a backbone, or "@role" for the genau protocol's configurable backbones
        if m.get("metric") == metric and (m.get("backbone") == backbone or str(m.get("backbone", "")).startswith("@")):
            return dict(m.get("options") or {})
    return {}


def common_protocols(sa: System, sb: System) -> list[str]:
    return [p for p in sa.records if p in sb.records]


def compare_pair(
    runs: SplitRuns, a: str, b: str, protocol: str, cfg: CompareConfig, embeddings: EmbeddingSource | None = None
) -> PairComparison:
    sa, sb = runs.system(a), runs.system(b)
    if protocol not in sa.records or protocol not in sb.records:
        have = ", ".join(common_protocols(sa, sb)) or "none"
        raise ReportError(f"--protocol {protocol}: {a} and {b} have no records of it in common (common: {have})")
    ra, rb = sa.records[protocol], sb.records[protocol]
    va, vb = protocol_of(ra)[1], protocol_of(rb)[1]
    ids = sorted(set(sa.clip_ids(protocol)) & set(sb.clip_ids(protocol)))
    out = PairComparison(
        runs.split, protocol, a, b, sa.weights_label, sb.weights_label, sa.comparable and sb.comparable, len(ids)
    )
    if va != vb:
        out.notes.append(f"protocol versions differ ({a}: {va}, {b}: {vb}); numbers are shown, not comparable")
        out.comparable = False
    only = len(set(sa.clip_ids(protocol)) ^ set(sb.clip_ids(protocol)))
    if only:
        out.notes.append(f"{only} prompts were run by one model only; every test uses the {len(ids)} common prompts")
    pa, pb = sa.per_clip(protocol), sb.per_clip(protocol)
    per_clip_cols = set(pa.columns) & set(pb.columns) if pa is not None and pb is not None else set()
    entries_b = {m["column"]: m for m in sb.metric_entries(protocol)}
    for ma in sa.metric_entries(protocol):
        col, metric = ma["column"], ma["metric"]
        mb = entries_b.get(col)
        mc = MetricComparison(
            protocol,
            metric,
            col,
            "per-clip" if col in per_clip_cols else "set",
            0,
            higher_is_better=higher_is_better(metric),
        )
        out.metrics.append(mc)
        if mb is None:
            mc.reason = f"{b} has no {col}"
            continue
        try:
            if col in per_clip_cols:
                _fill_per_clip(mc, pa, pb, ids, cfg)
            elif _is_per_clip_metric(metric):
                mc.kind = "per-clip"
                mc.reason = "no per-clip scores in one of the records (see notes)"
            elif not cfg.set_metrics:
                mc.reason = "set metrics off (--per-clip-only)"
            else:
                _fill_set(mc, runs, sa, sb, ra, rb, ma, mb, ids, cfg, embeddings)
        except (ValueError, RuntimeError, OSError) as e:
            mc.reason = str(e)
    adjusted = holm([m.p for m in out.metrics])
    for m, p in zip(out.metrics, adjusted):
        m.p_holm = p
    return out


def _is_per_clip_metric(metric: str) -> bool:
    try:
        from bench.metrics.registry import METRICS

        if metric in METRICS:
            return bool(METRICS[metric].per_clip)
    except ImportError:
        pass
    return metric.startswith(("KL_", "CLAP_"))


def _fill_per_clip(mc: MetricComparison, pa, pb, ids: list[str], cfg: CompareConfig) -> None:
    col = mc.column
    a = pa[col].reindex(ids).to_numpy(dtype=float)
    b = pb[col].reindex(ids).to_numpy(dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    mc.n = int(ok.sum())
    if mc.n < 2:
        mc.reason = f"{mc.n} prompts have a value for both models (need 2)"
        return
    for k, v in compare_per_clip(a[ok], b[ok], cfg).items():
        setattr(mc, k, v)


def _fill_set(
    mc,
    runs: SplitRuns,
    sa: System,
    sb: System,
    ra: dict,
    rb: dict,
    ma: dict,
    mb: dict,
    ids: list[str],
    cfg: CompareConfig,
    embeddings: EmbeddingSource | None,
) -> None:
    backbone = ma.get("backbone") or ""
    ida = (ra.get("backbones") or {}).get(backbone, {}).get("checkpoint_id")
    idb = (rb.get("backbones") or {}).get(backbone, {}).get("checkpoint_id")
    if backbone != mb.get("backbone") or ida != idb:
        raise ValueError(
            f"scored with different backbone weights ({backbone} {str(ida)[:24]} vs "
            f"{mb.get('backbone')} {str(idb)[:24]})"
        )
    key, stat = set_statistic(mc.metric, _protocol_options(ra, mc.metric, backbone))
    needs_ref = mc.metric != "IS"
    use = [c for c in ids if c in runs.references] if needs_ref else list(ids)
    if needs_ref and len(use) < 2:
        raise ValueError(f"{len(use)} common prompts have a reference clip (need 2)")
    source = embeddings or SuiteEmbeddings(cfg.device, cfg.progress)
    ga = source(ra, backbone, [str(sa.run.clip_path(c)) for c in use])
    gb = source(rb, backbone, [str(sb.run.clip_path(c)) for c in use])
    gr = source(ra, backbone, [str(runs.references[c]) for c in use]) if needs_ref else {}
    keep = [
        c
        for c in use
        if str(sa.run.clip_path(c)) in ga
        and str(sb.run.clip_path(c)) in gb
        and (not needs_ref or str(runs.references[c]) in gr)
    ]
    if len(keep) < 2:
        raise ValueError(f"{len(keep)} common prompts have readable clips on every side (need 2)")
    xa = [ga[str(sa.run.clip_path(c))] for c in keep]
    xb = [gb[str(sb.run.clip_path(c))] for c in keep]
    xr = [gr[str(runs.references[c])] for c in keep] if needs_ref else []
    for side in (xa, xb, xr):
        if side and key not in side[0]:
            raise ValueError(f"{mc.metric} reads backbone output {key!r}, which {backbone} does not give")
    mc.n = len(keep)
    progress = _bar(cfg, f"{mc.column}: paired bootstrap", cfg.set_resamples)
    try:
        res = compare_set(
            lambda i: stat([xa[k] for k in i], [xr[k] for k in i] if xr else []),
            lambda i: stat([xb[k] for k in i], [xr[k] for k in i] if xr else []),
            len(keep),
            cfg,
            progress=progress.update if progress else None,
        )
    finally:
        if progress:
            progress.close()
    for k, v in res.items():
        setattr(mc, k, v)
    mc.test += "; embeddings through the scoring suite's cache"


def _bar(cfg: CompareConfig, desc: str, total: int):
    if not cfg.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="resample", leave=False)


def compare_all(
    runs: SplitRuns, protocol: str, cfg: CompareConfig, embeddings: EmbeddingSource | None = None
) -> list[PairComparison]:
    """Every pair of systems that both have a record of `protocol` (in the split's system order)."""
    embeddings = embeddings or SuiteEmbeddings(cfg.device, cfg.progress)
    keys = [s.key for s in runs.systems if protocol in s.records]
    return [compare_pair(runs, a, b, protocol, cfg, embeddings) for i, a in enumerate(keys) for b in keys[i + 1 :]]


# ------------------------------------------------------------------------------------------
# console output
# ------------------------------------------------------------------------------------------


def _fmt(x: float, digits: int = 4) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


def _p(x: float) -> str:
    if x is None or math.isnan(x):
        return "nan"
    return "<1e-4" if x < 1e-4 else f"{x:.4f}"


def format_pair(pc: PairComparison) -> str:
    lines = [f"== {pc.a} (A) vs {pc.b} (B) on {pc.split}, protocol {pc.protocol}: {pc.n_common} common prompts"]
    for side, label in (("A", pc.a_label), ("B", pc.b_label)):
        lines.append(f"   {side}: {label}")
    if not pc.comparable:
        lines.append(
            "   NOT COMPARABLE to published numbers: random / tiny weights or different protocol versions; "
            "the tests still say whether A and B differ on these clips"
        )
    for n in pc.notes:
        lines.append(f"   note: {n}")
    head = (
        f"   {'metric':<38} {'kind':<8} {'A':>9} {'B':>9} {'A-B':>10} {'95% CI':>23} {'p':>7} {'p Holm':>7} "
        f"{'effect':>12}  better"
    )
    lines.append(head)
    for m in pc.metrics:
        if m.reason and math.isnan(m.diff):
            lines.append(f"   {m.column:<38} {m.kind:<8} not compared: {m.reason}")
            continue
        ci = f"[{_fmt(m.ci_low)}, {_fmt(m.ci_high)}]"
        eff = f"{m.effect_kind}={_fmt(m.effect, 3)}"
        lines.append(
            f"   {m.column:<38} {m.kind:<8} {_fmt(m.a):>9} {_fmt(m.b):>9} {_fmt(m.diff):>10} {ci:>23} "
            f"{_p(m.p):>7} {_p(m.p_holm):>7} {eff:>12}  {m.better or '-'}"
        )
    lines.append(
        f"   p: per-clip = paired sign-flip permutation, set = centred paired bootstrap; Holm over the "
        f"{sum(not math.isnan(m.p) for m in pc.metrics)} metrics tested; better = Holm p < {ALPHA}"
    )
    return "\n".join(lines)


def format_all(pairs: list[PairComparison]) -> str:
    """One line per pair and metric: the all-pairs table."""
    if not pairs:
        return "no pair of models shares a record of this protocol"
    lines = [f"{'A':<22} {'B':<22} {'metric':<38} {'A-B':>10} {'95% CI':>23} {'p Holm':>7}  better"]
    for pc in pairs:
        for m in pc.metrics:
            if math.isnan(m.diff):
                continue
            ci = f"[{_fmt(m.ci_low)}, {_fmt(m.ci_high)}]"
            winner = {"A": pc.a, "B": pc.b}.get(m.better, "-")
            lines.append(
                f"{pc.a:<22} {pc.b:<22} {m.column:<38} {_fmt(m.diff):>10} {ci:>23} {_p(m.p_holm):>7}  {winner}"
            )
    return "\n".join(lines)
