"""Warm-cache re-score vs cold score, side by side in one run (goal: >= 50x faster).

Cold: empty embedding cache, every backbone built and run on every clip. Warm: the same
clips scored again with the filled cache (no model is built, no audio decoded). All six
paper metrics + KAD, random-weight backbones of full size, bootstrap off in both runs so
the ratio measures the embedding work the cache saves (the metric math is identical).

    python benchmarks/bench_cache.py --clips 32 [--markdown]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import numpy as np  # noqa: E402
from _clips import make_clips, prompts_for  # noqa: E402

from bench.metrics.cache import EmbeddingCache  # noqa: E402
from bench.metrics.suite import ScoreConfig, score  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    from bench.allocator import keep_large_blocks_in_heap

    keep_large_blocks_in_heap()  # as `bench score` / `bench run` do
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        gen = make_clips(tmp / "gen", args.clips, seed=1)
        ref = make_clips(tmp / "ref", args.clips, seed=2)
        texts = prompts_for(gen)
        cfg = ScoreConfig(weights="random", bootstrap=0, progress=False)
        cache_dir = tmp / "cache"
        t0 = time.perf_counter()
        cold = score(gen, ref, texts, cfg, EmbeddingCache(cache_dir))
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm_cache = EmbeddingCache(cache_dir)
        warm = score(gen, ref, texts, cfg, warm_cache)
        t_warm = time.perf_counter() - t0
        np.testing.assert_equal(warm.table(), cold.table())  # NaN-aware: warm and cold give the same numbers
        assert warm_cache.misses == 0
    ratio = t_cold / t_warm
    print(f"clips per side: {args.clips}; metrics: {', '.join(cold.table())}")
    print(
        f"cold {t_cold:.2f} s, warm {t_warm:.3f} s, speed-up {ratio:.1f}x (cache hits {warm_cache.hits}, misses "
        f"{warm_cache.misses})"
    )
    if args.markdown:
        print(f"| {args.clips} | {t_cold:.2f} | {t_warm:.3f} | {ratio:.0f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
