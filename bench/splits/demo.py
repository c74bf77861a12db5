"""The embedded `demo` split: synthesised sounds whose captions are exact.

Nothing is downloaded: the clips are rendered deterministically on first use into the
cache and checked by content hash afterwards. Used by the README demo and the tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bench.audio import write_wav
from bench.checkpoints import cache_root
from bench.splits.base import Split, SplitItem

SAMPLE_RATE = 16_000
DURATION_S = 10.0


def _t() -> np.ndarray:
    return np.arange(int(SAMPLE_RATE * DURATION_S)) / SAMPLE_RATE


def _tone(f: float, amp: float = 0.3) -> np.ndarray:
    return amp * np.sin(2 * np.pi * f * _t())


def _noise(seed: int, amp: float = 0.2) -> np.ndarray:
    return amp * np.random.default_rng(seed).standard_normal(_t().shape)


def _pink(seed: int) -> np.ndarray:
    white = np.fft.rfft(np.random.default_rng(seed).standard_normal(_t().shape))
    f = np.fft.rfftfreq(len(_t()), 1 / SAMPLE_RATE)
    f[0] = f[1]
    x = np.fft.irfft(white / np.sqrt(f), n=len(_t()))
    return 0.3 * x / np.abs(x).max()


def _beeps(f: float, rate: float, dur: float) -> np.ndarray:
    t = _t()
    return _tone(f) * ((t * rate) % 1.0 < dur * rate)


def _sweep(f0: float, f1: float) -> np.ndarray:
    t = _t()
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * DURATION_S))
    return 0.3 * np.sin(phase)


def _clicks(rate: float) -> np.ndarray:
    x = np.zeros_like(_t())
    x[:: int(SAMPLE_RATE / rate)] = 0.9
    return x


def _chord() -> np.ndarray:
    return sum(_tone(f, 0.1) for f in (261.63, 329.63, 392.0))


def _am_noise(seed: int) -> np.ndarray:
    return _noise(seed, 0.3) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * _t()))


# (id, caption, renderer). Ids are stable: they name the generated clips.
DEMO_CLIPS = [
    ("demo-01", "a steady pure sine tone at 440 hertz", lambda: _tone(440)),
    ("demo-02", "loud white noise hissing steadily", lambda: _noise(1)),
    ("demo-03", "short high beeps repeating twice per second", lambda: _beeps(1000, 2, 0.1)),
    ("demo-04", "a low electrical hum at 110 hertz", lambda: _tone(110, 0.4)),
    ("demo-05", "a tone sweeping upward from low to high pitch", lambda: _sweep(100, 4000)),
    ("demo-06", "soft pink noise like distant rain", lambda: _pink(2)),
    ("demo-07", "sharp clicks ticking four times per second", lambda: _clicks(4)),
    ("demo-08", "a sustained major chord of three tones", _chord),
    ("demo-09", "noise swelling and fading slowly like waves", lambda: _am_noise(3)),
    ("demo-10", "a high whistle tone at 2000 hertz", lambda: _tone(2000, 0.2)),
]


def demo_dir() -> Path:
    return cache_root() / "splits" / "demo"


def render_demo(folder: Path | None = None) -> Path:
    """Write the demo clips (idempotent, atomic per file) and return their folder."""
    folder = folder or demo_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for clip_id, _caption, render in DEMO_CLIPS:
        path = folder / f"{clip_id}.wav"
        if not path.exists():
            write_wav(path, render().astype(np.float32), SAMPLE_RATE)
    return folder


def load_demo() -> Split:
    folder = render_demo(Path(os.environ["GENAU_BENCH_DEMO_DIR"]) if os.environ.get("GENAU_BENCH_DEMO_DIR") else None)
    items = [
        SplitItem(id=cid, prompt=cap, reference=folder / f"{cid}.wav", captions=(cap,)) for cid, cap, _ in DEMO_CLIPS
    ]
    return Split(
        name="demo",
        items=items,
        source="embedded (bench/splits/demo.py, synthesised)",
        prompt_rule="the exact caption of each synthesised clip",
        reference_dir=folder,
    )
