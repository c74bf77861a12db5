"""Write the deterministic parity fixture (runs in either venv: needs numpy + soundfile only).

Layout (default root benchmarks/.work/parity, git-ignored):
    gen/clip_XX.wav       16 kHz PCM-16 "generated" clips    (Cnn14 FD/IS/KL, VGGish FAD)
    ref/clip_XX.wav       16 kHz PCM-16 "reference" clips, same names (paired KL)
    gen_48k/clip_XX.wav   the same generated sounds synthesised at 48 kHz   (LAION-CLAP)
    gen_44k/clip_XX.wav   the same generated sounds synthesised at 44.1 kHz (MS-CLAP)
    captions.json         {"clip_XX.wav": caption}
    fixture.json          parameters of every clip (for the record)

Every clip is synthesised analytically at each rate (never resampled), so no resampler enters
the parity comparison; PCM-16 makes the decoded samples identical for every reader (int16/32768).
Durations vary 4-10 s; clips longer than MS-CLAP's windows (5 s / 7 s) exercise its crop, clips
shorter than 10 s exercise LAION-CLAP's repeat-padding. Each clip is made zero-mean before
quantisation, so audioldm_eval's mean removal changes it by less than one PCM step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf

RATES = {"gen": 16000, "ref": 16000, "gen_48k": 48000, "gen_44k": 44100}
DURATIONS = [4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.0]
SOURCES = ["tone", "chord", "chirp", "noise burst", "pulse train", "warble"]


def clip_params(i: int, variant: str, seed: int) -> dict:
    """Random but fixed parameters of clip i; the 'ref' variant shares the coarse content
    (same source types) with different details, so paired KL is neither 0 nor huge."""
    rng = np.random.default_rng([seed, i])
    kinds = list(rng.choice(SOURCES, size=int(rng.integers(1, 4)), replace=False))
    if variant == "ref":
        rng = np.random.default_rng([seed, i, 1])
    dur = DURATIONS[i % len(DURATIONS)] if variant != "ref" else DURATIONS[(i * 5 + 3) % len(DURATIONS)]
    comps = []
    for k in kinds:
        comps.append(
            {
                "kind": str(k),
                "f0": float(rng.uniform(80, 3000)),
                "f1": float(rng.uniform(200, 7000)),
                "amp": float(rng.uniform(0.05, 0.3)),
                "rate": float(rng.uniform(0.5, 8.0)),
                "onset": float(rng.uniform(0.0, 1.5)),
                "noise_color": float(rng.uniform(0.0, 0.97)),
                "noise_seed": int(rng.integers(0, 2**31 - 1)),
            }
        )
    return {"duration": dur, "components": comps}


def synth(params: dict, sr: int) -> np.ndarray:
    n = int(round(params["duration"] * sr))
    t = np.arange(n) / sr
    out = np.zeros(n)
    nyq = sr / 2 * 0.9
    for c in params["components"]:
        env = np.clip((t - c["onset"]) * 20, 0, 1)  # 50 ms fade-in at the onset
        f0, f1, a, r = min(c["f0"], nyq), min(c["f1"], nyq), c["amp"], c["rate"]
        if c["kind"] == "tone":
            x = np.sin(2 * np.pi * f0 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * r * t))
        elif c["kind"] == "chord":
            x = sum(np.sin(2 * np.pi * min(f0 * m, nyq) * t) / m for m in (1.0, 1.25, 1.5, 2.0))
        elif c["kind"] == "chirp":
            T = params["duration"]
            x = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * T)))
        elif c["kind"] == "noise burst":
            # noise defined on a 1 ms grid of seeds -> the same sound at every sample rate
            g = np.random.default_rng(c["noise_seed"])
            coarse = g.standard_normal(int(params["duration"] * 8000) + 2)
            x = np.interp(t * 8000, np.arange(coarse.size), coarse)
            x = x * (np.sin(2 * np.pi * r * t) > 0.3)
        elif c["kind"] == "pulse train":
            x = np.sin(2 * np.pi * f1 * t) * np.exp(-((t * r) % 1.0) * 12)
        else:  # warble
            x = np.sin(2 * np.pi * f0 * t + (f1 / (r * 4)) * np.sin(2 * np.pi * r * t))
        out += a * env * x
    out -= out.mean()
    peak = np.abs(out).max()
    if peak > 0.95:
        out *= 0.95 / peak
    return out


def caption(params: dict) -> str:
    parts = []
    for c in params["components"]:
        if c["kind"] in ("tone", "chord", "warble"):
            parts.append(f"a {c['kind']} around {int(c['f0'])} hertz")
        elif c["kind"] == "chirp":
            parts.append(f"a chirp sweeping from {int(c['f0'])} to {int(c['f1'])} hertz")
        else:
            parts.append(f"a {c['kind']} repeating {c['rate']:.1f} times per second")
    return " with ".join(parts) + f", {params['duration']:.1f} seconds long"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1] / ".work" / "parity"))
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--seed", type=int, default=2024)
    a = ap.parse_args(argv)
    root = Path(a.root)
    caps, record = {}, {}
    for variant, sr in RATES.items():
        d = root / variant
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("*.wav"):
            old.unlink()
        for i in range(a.n):
            name = f"clip_{i:02d}.wav"
            p = clip_params(i, "ref" if variant == "ref" else "gen", a.seed)
            sf.write(str(d / name), synth(p, sr), sr, subtype="PCM_16")
            if variant == "gen":
                caps[name] = caption(p)
            record.setdefault(variant, {})[name] = p
    (root / "captions.json").write_text(json.dumps(caps, indent=1))
    (root / "fixture.json").write_text(
        json.dumps({"n": a.n, "seed": a.seed, "rates": RATES, "clips": record}, indent=1)
    )
    print(f"wrote {a.n} clips x {len(RATES)} variants under {root}")


if __name__ == "__main__":
    main()
