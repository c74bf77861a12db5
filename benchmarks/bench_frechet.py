"""Time `frechet_distance_from_stats` against the scipy.linalg.sqrtm formula.

The reference is the pytorch-fid / audioldm_eval computation:
    FD = ||mu1 - mu2||^2 + tr(s1) + tr(s2) - 2 tr(Re sqrtm(s1 @ s2)).
Both run in the same process on the same statistics, computed from "real-ish" random
embeddings (non-negative ReLU-like features mixed by a random matrix, as PANNs' 2048-d
relu(fc1) embeddings are), so the timings are directly comparable.

Usage:
    python benchmarks/bench_frechet.py [--n 3000] [--dim 2048] [--repeats 3] [--markdown]

Prints both times (best of --repeats), the speed ratio and the relative difference;
--markdown also prints one markdown table row (header included) for the docs.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Callable

import sys
from pathlib import Path

import numpy as np
import scipy
import scipy.linalg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from bench.metrics.functional import frechet_distance_from_stats, gaussian_stats  # noqa: E402


def sqrtm_frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """The pytorch-fid / audioldm_eval formula (real part of scipy.linalg.sqrtm)."""
    covmean = np.real(scipy.linalg.sqrtm(s1 @ s2))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def realish_embeddings(rng: np.random.Generator, n: int, dim: int, shift: float) -> np.ndarray:
    """ReLU-like correlated embeddings: |N(0, 1)| features mixed by I + 0.05 * N(0, 1)."""
    mix = np.eye(dim) + 0.05 * rng.standard_normal((dim, dim))
    return np.maximum(rng.standard_normal((n, dim)) @ mix + shift, 0.0)


def best_time(fn: Callable[[], float], repeats: int) -> tuple[float, float]:
    """(best wall time in seconds over `repeats` calls, value of the last call)."""
    best, value = float("inf"), float("nan")
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="embeddings per set")
    parser.add_argument("--dim", type=int, default=2048, help="embedding dimension")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per method (best kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table row")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    stats1 = gaussian_stats(realish_embeddings(rng, args.n, args.dim, shift=0.0))
    stats2 = gaussian_stats(realish_embeddings(rng, args.n, args.dim, shift=0.1))

    t_ours, fd_ours = best_time(lambda: frechet_distance_from_stats(*stats1, *stats2), args.repeats)
    t_ref, fd_ref = best_time(lambda: sqrtm_frechet_distance(*stats1, *stats2), args.repeats)
    ratio = t_ref / t_ours
    rel_diff = abs(fd_ours - fd_ref) / abs(fd_ref)
    threads = os.environ.get("OMP_NUM_THREADS", "unset")

    print(f"stats: n={args.n} per set, d={args.dim}; numpy {np.__version__}, scipy {scipy.__version__}, "
          f"OMP_NUM_THREADS={threads}, {platform.processor() or platform.machine()}")
    print(f"frechet_distance_from_stats : {t_ours:8.3f} s   FD = {fd_ours:.10g}")
    print(f"scipy.linalg.sqrtm formula  : {t_ref:8.3f} s   FD = {fd_ref:.10g}")
    print(f"speed-up: {ratio:.1f}x   relative difference: {rel_diff:.2e}")
    if args.markdown:
        print()
        print("| d | n per set | ours (s) | sqrtm (s) | speed-up | rel. diff | threads |")
        print("|---|---|---|---|---|---|---|")
        print(f"| {args.dim} | {args.n} | {t_ours:.3f} | {t_ref:.3f} | {ratio:.1f}x | "
              f"{rel_diff:.1e} | {threads} |")


if __name__ == "__main__":
    main()
