"""Peak memory of scoring against the number of clips (goal: flat, i.e. streaming).

Each size is scored in a fresh subprocess (cache off, bootstrap off) and its peak RSS is
read from the OS; the audio of only one batch of files is in memory at a time, embeddings
are a few KB per clip. Backbones: PANNs Cnn14 + VGGish + LAION-CLAP (random weights, full
size), i.e. the 16 kHz and 48 kHz paths.

    python benchmarks/bench_memory.py --sizes 8 32 96 [--markdown]
    python benchmarks/bench_memory.py --protocols all --seconds 4 --sizes 4 16   # the four protocols, one decode

`--protocols`: score those protocols with `score_protocols` (every backbone of every protocol, random
weights) instead of the five genau metrics; `--seconds`: clip length (stereo 44.1 kHz clips with
--protocols, as a native-rate run stores them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {here!r})
from pathlib import Path
from _clips import make_clips, make_stereo_clips, prompts_for
from bench.allocator import keep_large_blocks_in_heap
from bench.metrics.cache import EmbeddingCache
from bench.metrics.suite import ScoreConfig, score, score_protocols
keep_large_blocks_in_heap()  # as `bench score` / `bench run` do
tmp = Path({tmp!r})
protocols = {protocols!r}
if protocols:
    gen = make_stereo_clips(tmp / "gen", {n}, seed=1, seconds={seconds})
    ref = make_stereo_clips(tmp / "ref", {n}, seed=2, seconds={seconds})
    cfg = ScoreConfig(weights="random", bootstrap=0, progress=False, protocols=protocols)
else:
    gen = make_clips(tmp / "gen", {n}, seed=1, seconds={seconds})
    ref = make_clips(tmp / "ref", {n}, seed=2, seconds={seconds})
    cfg = ScoreConfig(metrics=["FD", "IS", "KL_softmax", "FAD", "CLAP_LAION"], weights="random", bootstrap=0,
                      progress=False)
t = time.perf_counter()
run = score_protocols if protocols else score
res = run(gen, ref, prompts_for(gen), cfg, EmbeddingCache(enabled=False))
print(json.dumps({{"n": {n}, "seconds": time.perf_counter() - t, "peak_rss_mb":
resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 32, 96])
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--protocols", default="", help="comma-separated protocols, or 'all' (default: the genau metrics)")
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length")
    args = ap.parse_args()
    from bench.metrics.protocols import PROTOCOLS

    protocols = list(PROTOCOLS) if args.protocols == "all" else [p for p in args.protocols.split(",") if p]
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD.format(here=str(HERE), tmp=tmp, n=n, protocols=protocols, seconds=args.seconds),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{n:5d} clips/side: peak RSS {rows[-1]['peak_rss_mb']:.0f} MB, {rows[-1]['seconds']:.1f} s", flush=True)
    growth = rows[-1]["peak_rss_mb"] - rows[0]["peak_rss_mb"]
    per_clip = growth / max(rows[-1]["n"] - rows[0]["n"], 1)
    print(
        f"growth {growth:.0f} MB from {rows[0]['n']} to {rows[-1]['n']} clips ({per_clip:.2f} MB per extra clip; one "
        f"{args.seconds:g} s clip at 48 kHz is {args.seconds * 48000 * 4 / 1e6:.1f} MB)"
    )
    if args.markdown:
        print("| clips per side | peak RSS (MB) | time (s) |\n|---|---|---|")
        for r in rows:
            print(f"| {r['n']} | {r['peak_rss_mb']:.0f} | {r['seconds']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
