"""The shipped genau-tiny weights: provenance, what they measurably generate,
`bench run` and `genau generate` with them."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf

from genau_core.genau.model import CONFIG_NAME, WEIGHTS_NAME
from genau_core.genau.tiny_weights import WEIGHTS_DIR, TinyRecipe

TONES = {
    "a steady pure sine tone at 440 hertz": 440.0,
    "a low electrical hum at 110 hertz": 110.0,
    "a high whistle tone at 2000 hertz": 2000.0,
}
NOISE = "loud white noise hissing steadily"


def _peak_and_flatness(x: np.ndarray, sr: int = 16000) -> tuple[float, float]:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    return float(freqs[spec.argmax()]), float(np.exp(np.mean(np.log(spec + 1e-12))) / spec.mean())


@pytest.fixture(scope="module")
def tiny():
    from bench.plugins.genau import GenAuTiny

    plugin = GenAuTiny()
    plugin.load()
    plugin._loaded = True
    return plugin


def test_shipped_files_and_provenance():
    files = {p.name: p for p in WEIGHTS_DIR.iterdir()}
    assert set(files) == {CONFIG_NAME, WEIGHTS_NAME, "training.json"}
    assert sum(p.stat().st_size for p in files.values()) < 8 * 2**20  # "a few MB at most"
    record = json.loads(files["training.json"].read_text())
    assert record["sha256"] == hashlib.sha256(files[WEIGHTS_NAME].read_bytes()).hexdigest()
    assert record["recipe"] == json.loads(json.dumps(TinyRecipe().__dict__))  # shipped = the documented recipe
    assert [c.split()[:3] for c in record["equivalent_commands"]] == [
        ["genau", "train", "vae"],
        ["genau", "train", "ldm"],
    ]
    cfg = json.loads(files[CONFIG_NAME].read_text())
    assert cfg["name"] == "genau-tiny" and cfg["vocoder_type"] == "griffin-lim"


def test_tone_prompts_give_a_peak_at_the_captioned_frequency_and_noise_is_noise(tiny):
    """Measured on the shipped weights (seeds 0-4 alike): 440 -> 428 Hz, 110 -> 133 Hz, 2000 -> 1999 Hz,
    spectral flatness 0.002-0.09 for the tones and 0.80 for white noise (a pure sine is ~0.001, white noise ~0.8)."""
    prompts = [*TONES, NOISE]
    waves = tiny.generate(prompts, seed=0)  # plugin defaults: DDIM, guidance 3.5, 10 s
    for wave, (prompt, freq) in zip(waves, TONES.items()):
        peak, flatness = _peak_and_flatness(wave)
        assert abs(peak - freq) <= max(40.0, 0.1 * freq), (prompt, peak)  # within about one mel bin
        assert flatness < 0.15, (prompt, flatness)  # a tonal spectrum
    _, noise_flatness = _peak_and_flatness(waves[-1])
    assert noise_flatness > 0.5, noise_flatness  # broadband


def test_bench_run_with_genau_tiny_on_the_demo_split(tmp_path, capsys):
    from bench.cli import main

    root = tmp_path / "runs"
    assert (
        main(
            [
                "run",
                "--models",
                "genau-tiny",
                "--split",
                "demo",
                "--backbones",
                "random",
                "--metrics",
                "FD",
                "--bootstrap",
                "0",
                "--out",
                str(root),
            ]
        )
        == 0
    )
    record = json.loads(next(root.rglob("results/*.json")).read_text())
    assert record["model_weights"] == "tiny-trained"
    clips = sorted(next(root.rglob("clips")).glob("*.wav"))
    assert len(clips) == 10
    x, sr = sf.read(clips[0])  # demo-01: "a steady pure sine tone at 440 hertz"
    assert sr == 16000 and len(x) == 160000
    assert abs(_peak_and_flatness(x)[0] - 440) < 80
    assert "FD" in capsys.readouterr().out


def test_genau_generate_command_of_the_issue(tmp_path, capsys):
    from genau_core.cli import main

    out = tmp_path / "out.wav"
    assert (
        main(["generate", "a dog barks while rain falls", "-o", str(out), "--model", "genau-tiny", "--seed", "0"]) == 0
    )
    x, sr = sf.read(out)
    assert sr == 16000 and x.shape == (160000,) and np.isfinite(x).all() and 0.5 < np.abs(x).max() <= 1.0
    with pytest.raises(SystemExit, match="not found"):
        main(
            ["generate", "rain", "-o", str(tmp_path / "x.wav"), "--model", "genau-tiny", "--checkpoint", str(tmp_path)]
        )
