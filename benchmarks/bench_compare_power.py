"""Power and false-positive rate of `bench compare`'s tests, by simulation (numbers in docs/report.md).

    python benchmarks/bench_compare_power.py [--trials-per-clip 2000] [--trials-set 100]

per-clip: n = 100 prompts, per-prompt difference ~ N(0.3, 1) (d_z = 0.3) vs N(0, 1); sign-flip
          permutation test (999 permutations), alpha 0.05. Paired t-test power for comparison
          (scipy.stats.nct).
set:      FD on 8-d embeddings, n = 60 prompts; references and A ~ N(0, I), B ~ N(shift, I) for shifts
          0.2, 0.35, 0.6 (every dimension) vs B ~ N(0, I); paired bootstrap over prompts (200 resamples),
          alpha 0.05.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from bench.compare import CompareConfig, compare_set, set_statistic, sign_flip_p


def per_clip(trials: int, n: int = 100, dz: float = 0.3) -> tuple[float, float, float, float]:
    """-> (power, false-positive rate, the paired t-test's theoretical power, the t-test's rejection rate on the
    same null sets: a false-positive rate above 0.05 that the t-test shares comes from the sets, not the test)."""
    rng, rng_null = np.random.default_rng(0), np.random.default_rng(1)
    hits = nulls = nulls_t = 0
    for t in range(trials):
        hits += sign_flip_p(rng.normal(dz, 1.0, size=n), n_resamples=999, seed=t) < 0.05
        null = rng_null.normal(0.0, 1.0, size=n)
        nulls += sign_flip_p(null, n_resamples=999, seed=t) < 0.05
        nulls_t += stats.ttest_1samp(null, 0.0).pvalue < 0.05
    crit = stats.t.ppf(0.975, n - 1)
    nc = dz * np.sqrt(n)
    t_power = stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)
    return hits / trials, nulls / trials, float(t_power), nulls_t / trials


def set_fd(trials: int, n: int = 60, d: int = 8, shift: float = 0.6, resamples: int = 200) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    _, fd = set_statistic("FD")
    cfg = CompareConfig(set_resamples=resamples, progress=False)
    hits = nulls = 0
    for _ in range(trials):
        ref = [{"embedding": e} for e in rng.normal(size=(n, d))]
        a = [{"embedding": e} for e in rng.normal(size=(n, d))]
        b = [{"embedding": e} for e in rng.normal(shift, 1.0, size=(n, d))]
        c = [{"embedding": e} for e in rng.normal(size=(n, d))]

        def stat(side, ref=ref):
            return lambda i: fd([side[k] for k in i], [ref[k] for k in i])

        hits += compare_set(stat(a), stat(b), n, cfg)["p"] < 0.05
        nulls += compare_set(stat(a), stat(c), n, cfg)["p"] < 0.05
    return hits / trials, nulls / trials


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials-per-clip", type=int, default=2000)
    ap.add_argument("--trials-set", type=int, default=100)
    args = ap.parse_args()
    t0 = time.perf_counter()
    power, alpha, t_power, t_alpha = per_clip(args.trials_per_clip)
    print(
        f"per-clip, n=100, d_z=0.3: sign-flip power {power:.3f} (paired t-test theory {t_power:.3f}), "
        f"false positives {alpha:.3f} (t-test on the same null sets {t_alpha:.3f})  [{args.trials_per_clip} trials]"
    )
    for shift in (0.2, 0.35, 0.6):
        power, alpha = set_fd(args.trials_set, shift=shift)
        print(
            f"set (FD, 8-d, n=60, shift {shift}): paired-bootstrap power {power:.3f}, false positives {alpha:.3f}  "
            f"[{args.trials_set} trials, 200 resamples]"
        )
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
