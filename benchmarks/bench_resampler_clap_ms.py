"""How much the resampler moves per-clip CLAP_MS on 16 kHz clips (issue 13 item 6).

MS-CLAP embeds 44.1 kHz audio, so every 16 kHz clip is resampled. msclap itself resamples with
torchaudio's `transforms.Resample` (our "torchaudio-transforms", the protocol default since gb-2);
gb-1 used soxr HQ. This scores the same clips and prompts through both and reports per-clip
|delta cosine| and the change of the mean. Random weights (seed 0, in-process GPT-2 tokenizer):
the numbers are NOT COMPARABLE to real CLAP_MS values, only to each other.

    .venv/bin/python benchmarks/bench_resampler_clap_ms.py [--n-extra 8]

Clips: the 10 clips of the embedded demo split (exact captions) plus --n-extra deterministic
tone / noise / click clips from benchmarks/_clips.py. Prints a Markdown table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.audio import derive_input, read_audio_channels
from bench.metrics import functional as F
from bench.metrics.suite import ScoreConfig, build_backbone
from bench.splits import load_split


def clips(n_extra: int, folder: Path) -> tuple[list[Path], list[str]]:
    from benchmarks._clips import make_clips, prompts_for

    split = load_split("demo")
    files = [it.reference for it in split.items]
    texts = [it.prompt for it in split.items]
    extra = make_clips(folder, n_extra, seed=13)
    prompts = prompts_for(extra)
    for cid in sorted(extra):
        files.append(extra[cid])
        texts.append(prompts[cid])
    return files, texts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-extra", type=int, default=8)
    ap.add_argument("--backbone", default="ms-clap-2023")
    a = ap.parse_args()
    t0 = time.perf_counter()
    bb = build_backbone(a.backbone, ScoreConfig(weights="random", random_seed=0, progress=False))
    with tempfile.TemporaryDirectory() as tmp:
        files, texts = clips(a.n_extra, Path(tmp))
        decoded = [read_audio_channels(f) for f in files]
        assert all(sr == 16000 for _, sr in decoded)
        text = np.asarray(bb.embed_text(texts), dtype=np.float64)
        per = {}
        for name in ("reference", "soxr-hq"):
            waves = [bb.prepare(derive_input(x, sr, bb.sample_rate, bb.input_path, name)) for x, sr in decoded]
            audio = np.stack([e["embedding"] for e in bb.embed(waves)]).astype(np.float64)
            per[name] = F.clap_score_per_pair(text, audio)
    ref, sox = per["reference"], per["soxr-hq"]
    d = np.abs(ref - sox)
    rel = abs(ref.mean() - sox.mean()) / abs(sox.mean())
    print(
        f"{a.backbone}, random weights (seed 0), {len(files)} clips of 10 s at 16 kHz, {time.perf_counter() - t0:.0f} "
        "s\n"
    )
    print("| resampler to 44.1 kHz | mean CLAP_MS | per-clip min | per-clip max |")
    print("|---|---|---|---|")
    for name, label in (
        ("reference", f"msclap's own ({bb.input_path.resampler_for('reference')}, gb-2 default)"),
        ("soxr-hq", "soxr-hq (gb-1)"),
    ):
        v = per[name]
        print(f"| {label} | {v.mean():.6f} | {v.min():.6f} | {v.max():.6f} |")
    print(
        f"\nper-clip |delta|: max {d.max():.2e}, mean {d.mean():.2e}, median {np.median(d):.2e}; "
        f"mean moves by {abs(ref.mean() - sox.mean()):.2e} ({100 * rel:.1f} % of the soxr mean)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
