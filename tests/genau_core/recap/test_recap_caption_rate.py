"""Issue 20, item 4: captions describe the audio that is written. Clips are written at 16 kHz
(nothing above 8 kHz), so the captioner hears them band-limited the same way: re-captioning a
written clip gives its manifest caption.

`WideBandCaptioner` is a test double (not product code): at 32 kHz it names the strongest
frequency, so it hears an 11 kHz whine that a 16 kHz clip cannot hold.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pyarrow", reason="the recap pipeline needs pyarrow (pip install 'genau-bench[recap]')")

from bench.audio import resample  # noqa: E402
from genau_core.captioning import Captioner  # noqa: E402
from genau_core.recap import run_recap  # noqa: E402
from tests.genau_core.recap.test_recap_pipeline import config, read_jsonl  # noqa: E402

CAPTIONER = "tests.genau_core.recap.test_recap_caption_rate:WideBandCaptioner"


def wide_caption(w: np.ndarray, sr: int) -> str:
    if len(w) == 0 or float(np.sqrt(np.mean(w**2))) < 1e-4:
        return "silence"
    spec = np.abs(np.fft.rfft(w * np.hanning(len(w))))
    f = float(np.argmax(spec)) * sr / len(w)
    return "a high whine" if f > 8000 else "a low hum" if f < 700 else "a steady beep"


class WideBandCaptioner(Captioner):
    name = "wideband-test"
    sample_rate = 32000

    def caption(self, waveforms, metadata=None, *, batch_size=8):
        return [wide_caption(w, self.sample_rate) for w in waveforms]

    @property
    def identity(self) -> str:
        return "test:wideband-v1"


def source(sr: int = 44100) -> np.ndarray:
    t = np.arange(10 * sr) / sr
    first = 0.3 * np.sin(2 * np.pi * 11000 * t) + 0.02 * np.sin(2 * np.pi * 500 * t)  # whine over a faint hum
    second = 0.3 * np.sin(2 * np.pi * 1000 * t)
    return np.concatenate([first, second]).astype(np.float32)


@pytest.mark.parametrize("clip_rate, first", [(16000, "a low hum"), (None, "a high whine")])
def test_recaptioning_a_written_clip_gives_its_caption(tmp_path, clip_rate, first):
    sf.write(tmp_path / "a.wav", source(), 44100, subtype="FLOAT")
    (tmp_path / "a.vtt").write_text("WEBVTT\n\n")
    (tmp_path / "v.jsonl").write_text(json.dumps({"id": "a", "media": "a.wav", "transcript": "a.vtt"}) + "\n")
    out = tmp_path / "out"
    run_recap(config(tmp_path / "v.jsonl", out, captioner=CAPTIONER, clip_sample_rate=clip_rate, figures=False))
    rows = read_jsonl(out / "manifest.jsonl")
    assert [(r["start"], r["end"], r["caption"]) for r in rows] == [(0.0, 10.0, first), (10.0, 20.0, "a steady beep")]
    for r in rows:
        wav, sr = sf.read(out / r["audio"], dtype="float32")
        assert sr == r["sample_rate"] == (clip_rate or 44100)
        assert (
            wide_caption(resample(wav, sr, WideBandCaptioner.sample_rate), WideBandCaptioner.sample_rate)
            == r["caption"]
        )
