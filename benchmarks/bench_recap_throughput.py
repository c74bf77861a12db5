"""Throughput of the AutoReCap pipeline (segments per second), local engine vs Ray Data.

Generates a set of videos with transcripts (mp4/AAC with a video stream, mkv/FLAC, WAV;
WebVTT, SRT and json3 transcripts with about 40 % of the time under cues), then runs the
pipeline on them with each engine into a fresh folder and checks that both manifests are
byte-identical. Ray start-up is timed separately from the run.

Usage (from the repository root, so Ray workers can import this file's captioner):
    python benchmarks/bench_recap_throughput.py [--videos 16] [--minutes 2] [--cpus 2]
        [--captioner bench-band|autocap-tiny|pkg.module:Class] [--batch-size 8] [--markdown]

`bench-band` (the default) is a cheap stand-in captioner defined here (dominant frequency
band), so the numbers measure the pipeline itself: transcript parsing, decoding, resampling,
batching, filtering, clip writing, tables. With a real captioner the model dominates.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from genau_core.captioning import Captioner  # noqa: E402
from genau_core.recap import RecapConfig, run_recap  # noqa: E402

BAND = "benchmarks.bench_recap_throughput:BandCaptioner"


class BandCaptioner(Captioner):
    """A deterministic stand-in: names the dominant frequency band of each clip."""

    name = "bench-band"
    sample_rate = 32000  # AutoCap's rate, so resampling costs what it would with AutoCap

    def caption(self, waveforms, metadata=None, *, batch_size=8):
        out = []
        for w in waveforms:
            f = float(np.argmax(np.abs(np.fft.rfft(w)))) * self.sample_rate / max(1, len(w))
            out.append(
                "a deep rumble"
                if f < 200
                else "a man is speaking"
                if f < 700
                else "a steady beep"
                if f < 2000
                else "a high pitched whistle"
            )
        return out

    @property
    def identity(self) -> str:
        return "bench:band-v1"


def _ts(ms: int, sep: str = ".") -> str:
    h, r = divmod(ms, 3600000)
    m, r = divmod(r, 60000)
    s, ms = divmod(r, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def make_videos(root: Path, n: int, minutes: float, seed: int = 0) -> Path:
    import av

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(n):
        dur = minutes * 60
        kind = ("mp4", "mkv", "wav")[k % 3]
        sr = (44100, 48000, 16000)[k % 3]
        # a tone that changes every few seconds, plus noise
        t = np.arange(int(dur * sr)) / sr
        freqs = rng.choice([120, 400, 1000, 3000], size=int(dur // 4) + 1)
        x = (0.2 * np.sin(2 * np.pi * freqs[(t // 4).astype(int)] * t) + 0.02 * rng.standard_normal(len(t))).astype(
            np.float32
        )
        media = root / f"v{k}.{kind}"
        if kind == "wav":
            sf.write(media, x, sr, subtype="PCM_16")
        else:
            out = av.open(str(media), "w")
            if kind == "mp4":
                v = out.add_stream("mpeg4", rate=1)
                v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
            s = out.add_stream("aac" if kind == "mp4" else "flac", rate=sr)
            s.layout = "mono"
            for i in range(0, len(x), 4096):
                fr = av.AudioFrame.from_ndarray(x[None, i : i + 4096], format="flt", layout="mono")
                fr.sample_rate, fr.pts = sr, i
                for p in s.encode(fr):
                    out.mux(p)
            for p in s.encode(None):
                out.mux(p)
            if kind == "mp4":
                for j in range(int(dur)):
                    vf = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
                    vf.pts = j
                    for p in v.encode(vf):
                        out.mux(p)
                for p in v.encode(None):
                    out.mux(p)
            out.close()
        # cues: speech bursts of 1-8 s separated by 0-12 s gaps (about 40 % covered)
        cues, pos = [], int(rng.uniform(0, 5000))
        while pos < dur * 1000:
            length = int(rng.uniform(1000, 8000))
            cues.append((pos, pos + length))
            pos += length + int(rng.uniform(0, 12000))
        fmt = ("vtt", "srt", "json3")[k % 3]
        sub = root / f"v{k}.{fmt}"
        if fmt == "vtt":
            sub.write_text("WEBVTT\n\n" + "".join(f"{_ts(s)} --> {_ts(e)}\nwords\n\n" for s, e in cues))
        elif fmt == "srt":
            sub.write_text(
                "".join(f"{i}\n{_ts(s, ',')} --> {_ts(e, ',')}\nwords\n\n" for i, (s, e) in enumerate(cues, 1))
            )
        else:
            sub.write_text(
                json.dumps(
                    {"events": [{"tStartMs": s, "dDurationMs": e - s, "segs": [{"utf8": "words"}]} for s, e in cues]}
                )
            )
        rows.append({"id": f"vid{k:04d}", "media": media.name, "transcript": sub.name, "title": f"video {k}"})
    lst = root / "videos.jsonl"
    lst.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return lst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=2.0, help="length of each video")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs for the local Ray instance")
    ap.add_argument("--captioner", default="bench-band")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--shard-size", type=int, default=8)
    ap.add_argument("--engines", default="local,ray")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    captioner = BAND if args.captioner == "bench-band" else args.captioner
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    with tempfile.TemporaryDirectory(prefix="recap-bench-") as tmp:
        t0 = time.perf_counter()
        lst = make_videos(Path(tmp) / "data", args.videos, args.minutes)
        print(
            f"generated {args.videos} videos x {args.minutes} min in {time.perf_counter() - t0:.1f} s", file=sys.stderr
        )
        results = {}
        for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
            init_s = 0.0
            if engine == "ray":
                import ray

                t = time.perf_counter()
                ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
                init_s = time.perf_counter() - t
            out = Path(tmp) / f"out-{engine}"
            cfg = RecapConfig(
                videos=lst,
                out=out,
                engine=engine,
                captioner=captioner,
                device="cpu",
                batch_size=args.batch_size,
                shard_size=args.shard_size,
                progress=False,
                figures=False,
            )
            res = run_recap(cfg)
            results[engine] = (res, init_s, (out / "manifest.jsonl").read_bytes())
            if engine == "ray":
                ray.shutdown()
        same = len({r[2] for r in results.values()}) == 1
    audio_min = args.videos * args.minutes
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible; captioner "
        f"{args.captioner}; {audio_min:.0f} min of media"
    )
    rows = []
    for engine, (res, init_s, _) in results.items():
        c = res.stats["counts"]
        rows.append(
            f"| {engine} | {args.cpus if engine == 'ray' else 1} | {res.videos_run} | {res.segments_run} | "
            f"{c['final_clips']} | "
            f"{res.wall_s:.1f} | {res.segments_per_s:.1f} | {audio_min * 60 / res.wall_s:.0f}x | {init_s:.1f} |"
        )
        print(
            f"{engine}: {res.segments_run} segments in {res.wall_s:.1f} s = {res.segments_per_s:.1f} segments/s (ray "
            f"start-up {init_s:.1f} s, not included); rejected time {100 * res.stats['rejected_time_fraction']:.1f} %"
        )
    if len(results) > 1:
        print(f"manifests identical: {same}")
    if args.markdown:
        print("| engine | CPUs | videos | segments | clips | wall s | segments/s | media speed | Ray start s |")
        print("|---|---|---|---|---|---|---|---|---|")
        print("\n".join(rows))
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
