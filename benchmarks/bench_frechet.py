"""Time `frechet_distance_from_stats` against the scipy.linalg.sqrtm formula, and check both.

The reference formula is the pytorch-fid / audioldm_eval computation:
    FD = ||mu1 - mu2||^2 + tr(s1) + tr(s2) - 2 tr(Re sqrtm(s1 @ s2)).
Both run in the same process on the same statistics, interleaved `--repeats` times (best
time kept), so the ratio is measured under the same load. Cases (d = --dim, n = --n rows
per set):
  easy       "real-ish" ReLU-like embeddings, |N(0, 1)| features mixed by I + 0.05 N(0, 1)
             (well conditioned: the fast sqrt(eigvalsh) path's bound holds);
  mix-shift  x = z M, y = z' M + 0.1 with z, z' ~ N(0, I) and M = U diag(s) V^T a random
             mixing matrix with singular values s log-uniform over 1e-3..1e2 (covariance
             eigenvalues over 1e-6..1e4, full rank): the ordinary ill-conditioned case of
             issue 17, where the eigvalsh bound fails;
  mix-perturb  as mix-shift, but y mixes through M (I + 0.3 N(0, 1) / sqrt(d)).
Accuracy: every FD is compared with a float64 reference, 2 ||A||_* from an SVD of
A = F2^T F1 (Cholesky factors; backward stable, absolute error O(k eps sigma_max) per
singular value), cross-checked by an independent algorithm, the eigenvalues +-sigma_i of the
symmetric [[0, A], [A^T, 0]] (2d x 2d, tridiagonal QR instead of a bidiagonal SVD). "bound"
is the round-off bound our implementation claims (2 e / FD, target <= 1e-8).

Usage:
    python benchmarks/bench_frechet.py [--n 4000] [--dim 2048] [--repeats 3]
        [--cases easy,mix-shift,mix-perturb] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy
import scipy.linalg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from bench.metrics import functional as F  # noqa: E402

CASES = ("easy", "mix-shift", "mix-perturb")


def sqrtm_frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """The pytorch-fid / audioldm_eval formula (real part of scipy.linalg.sqrtm)."""
    covmean = np.real(scipy.linalg.sqrtm(s1 @ s2))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def realish_embeddings(rng: np.random.Generator, n: int, dim: int, shift: float) -> np.ndarray:
    """ReLU-like correlated embeddings: |N(0, 1)| features mixed by I + 0.05 * N(0, 1)."""
    mix = np.eye(dim) + 0.05 * rng.standard_normal((dim, dim))
    return np.maximum(rng.standard_normal((n, dim)) @ mix + shift, 0.0)


def mixing_matrix(rng: np.random.Generator, dim: int, low: float = 1e-3, high: float = 1e2) -> np.ndarray:
    """U diag(s) V^T with Haar-random U, V and singular values s log-uniform over [low, high]."""
    u = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    v = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    s = np.exp(rng.uniform(np.log(low), np.log(high), dim))
    return (u * s) @ v.T


def case_embeddings(case: str, rng: np.random.Generator, n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The two embedding sets of one benchmark case (see the module docstring)."""
    if case == "easy":
        return realish_embeddings(rng, n, dim, 0.0), realish_embeddings(rng, n, dim, 0.1)
    mix = mixing_matrix(rng, dim)
    x = rng.standard_normal((n, dim)) @ mix
    if case == "mix-perturb":
        mix = mix @ (np.eye(dim) + 0.3 * rng.standard_normal((dim, dim)) / np.sqrt(dim))
    return x, rng.standard_normal((n, dim)) @ mix + 0.1


def reference_fd(stats1: tuple, stats2: tuple) -> tuple[float, float, str, float]:
    """(SVD reference FD, Jordan-Wielandt cross-check FD, our path, our claimed 2 e / FD)."""
    (mu1, s1), (mu2, s2) = stats1, stats2
    f1, f2 = F._psd_factor(s1, "sigma1"), F._psd_factor(s2, "sigma2")
    diff = mu1 - mu2
    rest = float(diff @ diff) + float(np.sum(f1 * f1)) + float(np.sum(f2 * f2))
    a = f2.T @ f1
    ref = rest - 2.0 * F._nuclear_norm(a, rest, ("svd",)).value
    k = a.shape[0]
    jordan = np.zeros((2 * k, 2 * k))
    jordan[:k, k:] = a
    jordan[k:, :k] = a.T
    lam = scipy.linalg.eigh(jordan, eigvals_only=True, driver="ev", check_finite=False)
    cross_check = rest - 2.0 * float(np.sum(lam[k:]))  # the k largest of +-sigma_i
    ours = F._nuclear_norm(a, rest)
    return ref, cross_check, ours.method, 2.0 * ours.error / max(ref, 1e-300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="embeddings per set")
    parser.add_argument("--dim", type=int, default=2048, help="embedding dimension")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timed calls per method (best kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {CASES}")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {CASES}")

    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(
        f"d={args.dim}, n={args.n} per set; numpy {np.__version__}, scipy {scipy.__version__}, "
        f"OMP_NUM_THREADS={threads}, {platform.processor() or platform.machine()}, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows = []
    for case in cases:
        rng = np.random.default_rng(args.seed)
        x, y = case_embeddings(case, rng, args.n, args.dim)
        stats1, stats2 = F.gaussian_stats(x), F.gaussian_stats(y)
        del x, y
        ref, cross_check, path, bound = reference_fd(stats1, stats2)
        t_ours = t_ref = float("inf")
        for _ in range(args.repeats):  # interleaved, so both see the same load
            start = time.perf_counter()
            fd_ours = F.frechet_distance_from_stats(*stats1, *stats2)
            t_ours = min(t_ours, time.perf_counter() - start)
            start = time.perf_counter()
            fd_sqrtm = sqrtm_frechet_distance(*stats1, *stats2)
            t_ref = min(t_ref, time.perf_counter() - start)
        row = dict(
            case=case,
            ours=t_ours,
            sqrtm=t_ref,
            ratio=t_ref / t_ours,
            path=path,
            fd=ref,
            err_ours=abs(fd_ours - ref) / ref,
            err_sqrtm=abs(fd_sqrtm - ref) / ref,
            ref_check=abs(cross_check - ref) / ref,
            bound=bound,
        )
        rows.append(row)
        print(
            f"{case:12s} ours {t_ours:7.3f} s ({path})  sqrtm {t_ref:7.3f} s  speed-up {row['ratio']:5.1f}x  "
            f"FD {ref:.10g}  |ours-ref|/FD {row['err_ours']:.1e} (bound {bound:.1e})  "
            f"|sqrtm-ref|/FD {row['err_sqrtm']:.1e}  reference cross-check {row['ref_check']:.1e}",
            flush=True,
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.markdown:
        print()
        print(
            "| case | d | n per set | ours (s) | path | sqrtm (s) | speed-up | ours rel. err "
            "(bound) | sqrtm rel. err | reference check | threads |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['case']} | {args.dim} | {args.n} | {r['ours']:.3f} | {r['path']} | {r['sqrtm']:.3f} | "
                f"{r['ratio']:.1f}x | {r['err_ours']:.1e} ({r['bound']:.1e}) | {r['err_sqrtm']:.1e} | "
                f"{r['ref_check']:.1e} | {threads} |"
            )


if __name__ == "__main__":
    main()
