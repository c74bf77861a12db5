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

`--curve N`: one process instead, the generated side of N batches of `--batch-files` clips through
every backbone of `--protocols` (the embedder `score_protocols` uses), printing the resident memory now and
the peak so far after each batch. A fresh process per size cannot tell a warm-up (the heap reaching its
working size in the first batches) from growth; the curve can: flat means the peak stops moving.

    python benchmarks/bench_memory.py --protocols all --seconds 2 --curve 8 --batch-files 16
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

CURVE = r"""
import json, sys, tempfile, time
sys.path.insert(0, {here!r})
from pathlib import Path
from _clips import make_stereo_clips
from bench.allocator import keep_large_blocks_in_heap
from bench.metrics.cache import EmbeddingCache
from bench.metrics.suite import LazyBackbone, ScoreConfig, _Embedder
keep_large_blocks_in_heap()  # as `bench score` / `bench run` do
def rss_mb():  # (now, peak since the last reset) of this process, from the kernel
    st = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    return int(st["VmRSS"].split()[0]) / 1024, int(st["VmHWM"].split()[0]) / 1024
def reset_peak():  # Linux: writing 5 to clear_refs resets VmHWM to the current resident size
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
step, batches = {batch_files}, {batches}
gen = make_stereo_clips(Path({tmp!r}) / "gen", step * batches, seed=1, seconds={seconds})
cfg = ScoreConfig(weights="random", bootstrap=0, progress=False, protocols={protocols!r}, batch_files=step)
names = sorted({{name for _, _, name in cfg.entries()}})
embedder = _Embedder({{name: LazyBackbone(name, cfg) for name in names}}, cfg, EmbeddingCache(enabled=False))
files = sorted(str(p) for p in gen.values())
t, so_far = time.perf_counter(), 0.0
for i in range(batches):
    reset_peak()
    embedder.embed(files[i * step : (i + 1) * step], "gen")
    now, peak = rss_mb()
    so_far = max(so_far, peak)
    print(json.dumps({{"batch": i + 1, "clips": (i + 1) * step, "rss_mb": now, "batch_peak_mb": peak,
                      "peak_rss_mb": so_far, "seconds": time.perf_counter() - t, "networks": len(names)}}), flush=True)
"""


def curve(args, protocols: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        code = CURVE.format(
            here=str(HERE),
            tmp=tmp,
            protocols=protocols,
            seconds=args.seconds,
            batch_files=args.batch_files,
            batches=args.curve,
        )
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        rows = []
        for line in proc.stdout:
            rows.append(json.loads(line))
            r = rows[-1]
            print(
                f"batch {r['batch']:3d} ({r['clips']:4d} clips, {r['networks']} networks): resident after "
                f"{r['rss_mb']:.0f} MB, peak in the batch {r['batch_peak_mb']:.0f} MB, peak so far "
                f"{r['peak_rss_mb']:.0f} MB, {r['seconds']:.0f} s",
                flush=True,
            )
        if proc.wait() != 0:
            raise SystemExit(f"the measuring process failed (exit {proc.returncode})")
    if len(rows) >= 3:
        moved = rows[-1]["peak_rss_mb"] - rows[1]["peak_rss_mb"]
        print(
            f"peak from batch 2 to batch {rows[-1]['batch']}: {moved:+.0f} MB "
            f"(batch 1 builds the networks; the heap reaches its working size over the first batches)"
        )
    if args.markdown:
        print("| batch | clips | resident after (MB) | peak in the batch (MB) | peak so far (MB) | time (s) |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['batch']} | {r['clips']} | {r['rss_mb']:.0f} | {r['batch_peak_mb']:.0f} | "
                f"{r['peak_rss_mb']:.0f} | {r['seconds']:.0f} |"
            )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 32, 96])
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--protocols", default="", help="comma-separated protocols, or 'all' (default: the genau metrics)")
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length")
    ap.add_argument("--curve", type=int, default=0, metavar="N", help="one process, N batches: memory after each")
    ap.add_argument("--batch-files", type=int, default=16, help="clips per batch with --curve (bench's default: 16)")
    args = ap.parse_args()
    from bench.metrics.protocols import PROTOCOLS

    protocols = list(PROTOCOLS) if args.protocols == "all" else [p for p in args.protocols.split(",") if p]
    if args.curve:
        if not protocols:
            ap.error("--curve needs --protocols")
        return curve(args, protocols)
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
