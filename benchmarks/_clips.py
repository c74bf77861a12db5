"""Deterministic benchmark clips (10 s, 16 kHz): tones, noise and clicks with per-clip variety."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.audio import write_wav


def make_clips(folder: Path, n: int, *, seed: int = 0, seconds: float = 10.0, sr: int = 16_000) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    out = {}
    for i in range(n):
        f = rng.uniform(100, 4000)
        x = 0.3 * np.sin(2 * np.pi * f * t) * (rng.uniform() > 0.3)
        x = x + rng.uniform(0.01, 0.2) * rng.standard_normal(len(t))
        clicks = np.zeros_like(t)
        clicks[:: int(sr / rng.uniform(1, 8))] = 0.8
        x = (x + clicks * (rng.uniform() > 0.5)).astype(np.float32)
        path = folder / f"clip{i:04d}.wav"
        if not path.exists():
            write_wav(path, x, sr)
        out[path.stem] = path
    return out


def make_stereo_clips(
    folder: Path, n: int, *, seed: int = 0, seconds: float = 10.0, sr: int = 44_100
) -> dict[str, Path]:
    """Stereo clips at 44.1 kHz (as a native-rate run of Stable Audio Open / TangoFlux stores them): the
    mono clip of `make_clips` at this rate on the left, a delayed, quieter copy plus noise on the right."""
    folder.mkdir(parents=True, exist_ok=True)
    mono = make_clips(folder / ".mono", n, seed=seed, seconds=seconds, sr=sr)
    rng = np.random.default_rng(seed + 1000)
    out = {}
    for cid, src in mono.items():
        import soundfile as sf

        left = sf.read(str(src), dtype="float32")[0]
        right = 0.6 * np.roll(left, 441) + 0.02 * rng.standard_normal(len(left)).astype(np.float32)
        path = folder / f"{cid}.wav"
        if not path.exists():
            write_wav(path, np.stack([left, right.astype(np.float32)]), sr)
        out[cid] = path
    return out


CAPTIONS = [
    "a steady tone with some hiss",
    "noise with regular clicks",
    "a high whistle over static",
    "clicking and a low hum",
]


def prompts_for(ids) -> dict[str, str]:
    return {cid: CAPTIONS[i % len(CAPTIONS)] for i, cid in enumerate(sorted(ids))}
