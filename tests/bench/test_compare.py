"""Issue 19 item 2: `bench compare`, paired significance between two models on every metric.

Identical runs give no difference (p = 1, interval [0, 0]); a known shift is detected at the power
documented in docs/report.md ("Power"); the bootstrap applies the same prompt indices to both models.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.cli import main
from bench.compare import (
    CompareConfig,
    centred_bootstrap_p,
    compare_all,
    compare_pair,
    compare_per_clip,
    compare_set,
    holm,
    paired_bootstrap,
    paired_bootstrap_indices,
    set_statistic,
    sign_flip_p,
)
from bench.report.collect import collect_split
from bench.report.fixtures import FakeStoreSpec, make_store

FAST = CompareConfig(per_clip_resamples=300, set_resamples=60, permutations=999, progress=False)
PER_CLIP = {
    "KL_softmax_panns-cnn14@16k": ("KL_softmax", "panns-cnn14-16k", True),
    "CLAP_LAION_laion-clap-htsat-base@48k": ("CLAP_LAION", "laion-clap-htsat-base", True),
    "FD_panns-cnn14@16k": ("FD", "panns-cnn14-16k", False),
}


class FakeEmbeddings:
    """Backbone outputs by file: `by_file(path) -> {"embedding": ...}` (stands in for the suite's cache)."""

    def __init__(self, by_file):
        self.by_file, self.calls = by_file, []

    def __call__(self, record, backbone, files):
        self.calls.append((record["model"], backbone, len(files)))
        return {f: self.by_file(f) for f in files}


def _emb(seed_of):
    def by_file(path: str):
        rng = np.random.default_rng(seed_of(path))
        return {"embedding": rng.normal(size=6).astype(np.float32)}

    return by_file


def _clip_index(path: str) -> int:
    return int(path.rsplit("clip", 1)[1].split(".")[0])


def _same_store(tmp_path, n=24):
    spec = FakeStoreSpec(models=("a", "b"), n_prompts=n, columns=PER_CLIP)
    make_store(tmp_path, spec, values=lambda model, i, col: 0.1 * ((i * 7) % 5) if i >= 0 else 3.0)
    runs = collect_split(tmp_path, "demo")
    runs.references = {f"clip{i:05d}": tmp_path / f"ref{i:05d}.wav" for i in range(n)}
    return runs


def test_identical_runs_give_no_difference(tmp_path):
    runs = _same_store(tmp_path)
    # same prompt -> same embedding for both models (as identical clips would give)
    emb = FakeEmbeddings(lambda f: _emb(lambda p: _clip_index(p) if "clip" in p else 1000 + int(p[-9:-4]))(f))
    pc = compare_pair(runs, "a", "b", "genau", FAST, emb)
    assert pc.n_common == 24
    by = {m.column: m for m in pc.metrics}
    for col, m in by.items():
        assert m.diff == 0.0, col
        assert m.ci_low == 0.0 and m.ci_high == 0.0, col
        assert m.p == 1.0 and m.p_holm == 1.0, col
        assert m.effect == 0.0 and m.better == "", col
    assert by["FD_panns-cnn14@16k"].kind == "set" and by["KL_softmax_panns-cnn14@16k"].kind == "per-clip"
    assert ("a", "panns-cnn14-16k", 24) in emb.calls and ("b", "panns-cnn14-16k", 24) in emb.calls


def test_bootstrap_uses_the_same_prompt_indices_for_both_models():
    seen_a, seen_b = [], []
    reps = paired_bootstrap(
        lambda i: seen_a.append(i.copy()) or 0.0, lambda i: seen_b.append(i.copy()) or 0.0, 17, n_resamples=25, seed=3
    )
    assert len(seen_a) == len(seen_b) == 25 and not reps.any()
    for ia, ib in zip(seen_a, seen_b):
        assert np.array_equal(ia, ib)
    assert not all(np.array_equal(seen_a[0], x) for x in seen_a[1:])  # resamples differ from each other
    assert np.array_equal(np.stack(seen_a), paired_bootstrap_indices(17, 25, 3))
    # the set-metric path too: the statistic of A and of B is evaluated on the same index vectors
    seen_a.clear(), seen_b.clear()
    compare_set(
        lambda i: seen_a.append(i.copy()) or float(len(set(i))),
        lambda i: seen_b.append(i.copy()) or 0.0,
        9,
        CompareConfig(set_resamples=12, progress=False),
    )
    assert len(seen_a) == 13  # the full set, then 12 resamples
    assert all(np.array_equal(x, y) for x, y in zip(seen_a, seen_b))


def test_per_clip_paired_values_are_matched_by_clip_id(tmp_path):
    spec = FakeStoreSpec(models=("a", "b"), n_prompts=12, columns={k: v for k, v in PER_CLIP.items() if v[2]})
    # b is a shifted by exactly 0.5 on every clip: the paired difference is -0.5 with no spread
    make_store(tmp_path, spec, values=lambda model, i, col: i * 0.1 + (0.5 if model == "b" else 0.0))
    runs = collect_split(tmp_path, "demo")
    # scramble b's parquet row order: pairing must go by clip id, not by row
    b = runs.system("b")
    df = b.per_clip("genau")
    b._per_clip["genau"] = df.iloc[::-1]
    pc = compare_pair(runs, "a", "b", "genau", CompareConfig(per_clip_resamples=300, permutations=9999, progress=False))
    m = next(m for m in pc.metrics if m.column.startswith("KL_softmax"))
    assert m.diff == pytest.approx(-0.5) and m.ci_low == pytest.approx(-0.5) and m.ci_high == pytest.approx(-0.5)
    assert m.p == pytest.approx(2 / 4096)  # exact sign-flip test, n = 12: only the two all-same-sign flips
    assert m.better == "A"  # KL: lower is better


# Power, documented in docs/report.md ("Power", benchmarks/bench_compare_power.py): per-clip metric, n = 100
# prompts, a shift of 0.3 standard deviations of the per-prompt difference (d_z = 0.3): the sign-flip permutation
# test detected it in 0.837 of 2000 simulations (the paired t-test's theoretical power: 0.844); under no shift it
# fired in 0.057 of 2000 (the t-test on the same sets: 0.057) and 0.047 of 4000 others.
def test_a_known_per_clip_shift_is_detected_at_the_documented_power():
    rng = np.random.default_rng(0)
    hits = nulls = 0
    trials = 200
    for t in range(trials):
        base = rng.normal(size=100)
        noise = rng.normal(size=100)
        hits += sign_flip_p(base + 0.3 + noise - base, n_resamples=999, seed=t) < 0.05
        nulls += sign_flip_p(rng.normal(size=100), n_resamples=999, seed=t) < 0.05
    assert 0.76 <= hits / trials <= 0.91, hits / trials  # documented 0.837 (binomial 99% band at 200 trials)
    assert nulls / trials <= 0.10, nulls / trials


# Set metric (FD), documented in docs/report.md: 60 prompts, 8-d embeddings, A drawn around the references and
# B shifted by 0.6 in every dimension; the paired bootstrap (200 resamples) detected it in 1.00 of 100
# simulations (0.27 at a shift of 0.35) and fired in 0.00 of 300 when A and B came from the same distribution.
def test_a_known_set_shift_is_detected_at_the_documented_power():
    rng = np.random.default_rng(1)
    _, fd = set_statistic("FD")
    cfg = CompareConfig(set_resamples=100, progress=False)
    hits = nulls = 0
    trials = 20
    for t in range(trials):
        ref = [{"embedding": e} for e in rng.normal(size=(60, 8))]
        a = [{"embedding": e} for e in rng.normal(size=(60, 8))]
        b = [{"embedding": e} for e in rng.normal(0.6, 1.0, size=(60, 8))]
        c = [{"embedding": e} for e in rng.normal(size=(60, 8))]

        def stat(side, ref=ref):
            return lambda i: fd([side[k] for k in i], [ref[k] for k in i])

        res = compare_set(stat(a), stat(b), 60, cfg)
        null = compare_set(stat(a), stat(c), 60, cfg)
        hits += res["p"] < 0.05 and res["diff"] < 0
        nulls += null["p"] < 0.05
    assert hits / trials >= 0.85, hits / trials
    assert nulls / trials <= 0.10, nulls / trials


def test_sign_flip_test_is_scipys_paired_permutation_test():
    """Oracle: scipy.stats.permutation_test(permutation_type="samples") on (A, B) pairs (swapping A and B within a
    pair flips the difference's sign): equal p in the exact case, equal up to Monte-Carlo error otherwise."""
    from scipy.stats import permutation_test

    def scipy_p(d, n_resamples, seed):
        return permutation_test(
            (d, np.zeros_like(d)),
            lambda x, y, axis: np.mean(x - y, axis=axis),
            permutation_type="samples",
            vectorized=True,
            n_resamples=n_resamples,
            random_state=np.random.default_rng(seed),
        ).pvalue

    rng = np.random.default_rng(4)
    for n in (3, 8, 13):
        for _ in range(4):
            d = rng.normal(0.4, 1.0, size=n)
            assert sign_flip_p(d, n_resamples=9999, seed=0) == pytest.approx(scipy_p(d, 9999, 0), abs=1e-12)
    d = rng.normal(0.08, 1.0, size=400)
    assert sign_flip_p(d, n_resamples=20000, seed=0) == pytest.approx(scipy_p(d, 20000, 1), abs=0.015)


def test_statistics_helpers():
    assert holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan], nan_ok=True)
    assert holm([0.5, 0.2]) == [0.5, 0.4]
    assert centred_bootstrap_p(0.0, np.zeros(50)) == 1.0
    assert centred_bootstrap_p(1.0, np.full(9, 1.0)) == pytest.approx(1 / 10)
    assert sign_flip_p(np.zeros(30), n_resamples=99, seed=0) == 1.0
    r = compare_per_clip(np.arange(10.0), np.arange(10.0), FAST)
    assert r["diff"] == 0 and r["p"] == 1.0 and (r["ci_low"], r["ci_high"]) == (0.0, 0.0)


def test_set_statistic_matches_the_scorer():
    from bench.metrics import functional as F

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(15, 5))
    key, fd = set_statistic("FD")
    assert key == "embedding"
    assert fd([{"embedding": r} for r in x], [{"embedding": r} for r in y]) == pytest.approx(F.frechet_distance(x, y))
    key, fad = set_statistic("FAD")
    frames_x = [rng.normal(size=(3, 4)) for _ in range(6)]
    frames_y = [rng.normal(size=(3, 4)) for _ in range(6)]
    assert key == "frames"
    assert fad([{"frames": f} for f in frames_x], [{"frames": f} for f in frames_y]) == pytest.approx(
        F.frechet_distance(np.concatenate(frames_x), np.concatenate(frames_y))
    )


def test_records_without_per_clip_scores_say_so(tmp_path):
    make_store(tmp_path, FakeStoreSpec(models=("a", "b"), n_prompts=6, columns=PER_CLIP, per_clip_file=False))
    runs = collect_split(tmp_path, "demo")
    pc = compare_pair(runs, "a", "b", "genau", CompareConfig(set_metrics=False, progress=False))
    by = {m.column: m for m in pc.metrics}
    assert "no per-clip scores" in by["KL_softmax_panns-cnn14@16k"].reason
    assert math.isnan(by["KL_softmax_panns-cnn14@16k"].p)
    assert "set metrics off" in by["FD_panns-cnn14@16k"].reason
    assert any("written before per-clip sidecars" in n for n in runs.all_notes())


def test_all_pairs(tmp_path):
    make_store(
        tmp_path,
        FakeStoreSpec(models=("a", "b", "c"), n_prompts=8, columns={k: v for k, v in PER_CLIP.items() if v[2]}),
    )
    runs = collect_split(tmp_path, "demo")
    pairs = compare_all(runs, "genau", FAST)
    assert [(p.a, p.b) for p in pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert all(len(p.metrics) == 2 and not p.comparable for p in pairs)


def test_cli_compare_and_its_errors(tmp_path, capsys):
    per_clip = {k: v for k, v in PER_CLIP.items() if v[2]}
    make_store(tmp_path, FakeStoreSpec(models=("a", "b"), n_prompts=8, columns=per_clip))
    out_json = tmp_path / "cmp.json"
    assert (
        main(
            [
                "compare",
                "a",
                "b",
                "--split",
                "demo",
                "--root",
                str(tmp_path),
                "--per-clip-resamples",
                "50",
                "--permutations",
                "99",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "== a (A) vs b (B) on demo, protocol genau: 8 common prompts" in text
    assert "NOT COMPARABLE" in text and "KL_softmax_panns-cnn14@16k" in text and "d_z=" in text
    assert out_json.exists()
    assert main(["compare", "--all", "--split", "demo", "--root", str(tmp_path), "--per-clip-resamples", "50"]) == 0
    assert "every pair on demo" in capsys.readouterr().out
    for argv, message in (
        (["compare", "a", "--split", "demo"], "give exactly two models"),
        (["compare", "a", "a", "--split", "demo"], "compared with itself"),
        (["compare", "a", "bb", "--split", "demo"], "no scored run of this model"),
        (["compare", "a", "b", "--split", "demo", "--protocol", "genua"], "Did you mean 'genau'"),
        (["compare", "a", "b", "--split", "nope"], "no runs under"),
    ):
        with pytest.raises(SystemExit) as e:
            main(argv + ["--root", str(tmp_path)])
        assert message in str(e.value), (argv, str(e.value))
        assert "\n" not in str(e.value)


@pytest.mark.slow
def test_set_metrics_through_the_suite_equal_the_scorers_values(tmp_path):
    """SuiteEmbeddings reads the clips through the scoring suite (random backbones here): compare's point
    values of FD and FAD are the suite's own numbers for the same files, and two backbones with the same
    checkpoint id ("random:seed=0") never share memoised outputs."""
    from bench.compare import SuiteEmbeddings
    from bench.metrics.cache import EmbeddingCache
    from bench.metrics.suite import ScoreConfig, score

    cols = {"FD_panns-cnn14@16k": ("FD", "panns-cnn14-16k", False), "FAD_vggish@16k": ("FAD", "vggish", False)}
    make_store(tmp_path, FakeStoreSpec(models=("a", "b"), n_prompts=4, columns=cols, seconds=1.5))
    runs = collect_split(tmp_path, "demo")
    for s in runs.systems:  # the records as the suite writes them for random backbones
        s.records["genau"]["resampler"] = ScoreConfig().resampler
    refs = {f"clip{i:05d}": runs.systems[1 - i % 2].run.clip_path(f"clip{i:05d}") for i in range(4)}
    runs.references = refs
    cfg = CompareConfig(set_resamples=5, progress=False)
    pc = compare_pair(runs, "a", "b", "genau", cfg, SuiteEmbeddings(progress=False))
    by = {m.column: m for m in pc.metrics}
    a = runs.system("a")
    suite = score(
        {c: a.run.clip_path(c) for c in refs},
        refs,
        {},
        ScoreConfig(metrics=("FD", "FAD"), weights="random", bootstrap=0, progress=False),
        EmbeddingCache(tmp_path / "cache"),
    )
    values = {m.column: m.value for m in suite.metrics}
    assert by["FD_panns-cnn14@16k"].a == pytest.approx(values["FD_panns-cnn14@16k"], rel=1e-6)
    assert by["FAD_vggish@16k"].a == pytest.approx(values["FAD_vggish@16k"], rel=1e-6)
