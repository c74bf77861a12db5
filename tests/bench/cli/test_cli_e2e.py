"""End to end through the CLI: the README's demo path, `bench score`, `bench models`."""

import json

import pandas as pd

from bench.cli import main


def test_demo_run_scores_and_exports_leaderboard(tmp_path, capsys):
    root, lb = tmp_path / "runs", tmp_path / "lb"
    rc = main(
        [
            "run",
            "--models",
            "audioldm-l-tiny",
            "--split",
            "demo",
            "--backbones",
            "random",
            "--out",
            str(root),
            "--metrics",
            "FD,IS,KL_softmax,FAD,KAD",
            "--bootstrap",
            "10",
            "--leaderboard",
            "--leaderboard-dir",
            str(lb),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "NOT COMPARABLE: model weights random, backbone weights random" in out
    assert "FD_panns-cnn14@16k" in out and "95% CI" in out
    df = pd.read_csv(lb / "demo.csv")
    assert list(df["model"]) == ["audioldm-l-tiny"] and df["rank"].isna().all()
    assert df.loc[0, "n_evaluated"] == 10 and df.loc[0, "n_missing"] == 0
    for col in (
        "FD_panns-cnn14@16k",
        "IS_panns-cnn14@16k",
        "KL_softmax_panns-cnn14@16k",
        "FAD_vggish@16k",
        "KAD_panns-cnn14@16k",
    ):
        assert pd.notna(df.loc[0, col]), col
    assert (lb / "demo.png").stat().st_size > 1000
    record = json.loads(next(root.rglob("results/*.json")).read_text())
    assert record["protocol_version"] == "gb-2" and record["resampler"] == "reference"
    assert record["backbones"]["panns-cnn14-16k"]["resampler"] == "torchaudio-functional"  # audioldm_eval's own
    from bench.metrics.backbones._cpu_kernels import active_kernels

    assert record["kernels"] == active_kernels("cpu")  # which float32 CPU kernels embedded the clips
    assert record["backbones"]["panns-cnn14-16k"]["sample_rate"] == 16000
    assert record["backbones"]["panns-cnn14-16k"]["checkpoint_id"] == "random:seed=0"

    # bench score on the generated folder gives the same FD as the run (cache-backed)
    clips = next(root.rglob("clips"))
    assert (
        main(
            [
                "score",
                "--gen",
                str(clips),
                "--split",
                "demo",
                "--backbones",
                "random",
                "--metrics",
                "FD",
                "--bootstrap",
                "0",
                "--out",
                str(tmp_path / "score.json"),
            ]
        )
        == 0
    )
    scored = json.loads((tmp_path / "score.json").read_text())
    fd_run = next(m["value"] for m in record["metrics"] if m["metric"] == "FD")
    assert scored["metrics"][0]["value"] == fd_run
    assert scored["cache"]["misses"] == 0  # every embedding came from the cache


def test_models_lists_builtin_and_entry_point_plugins(toy_plugin_path, capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["audioldm-l-tiny"]["checkpoint"] == "available"
    assert rows["audioldm-l"]["checkpoint"] == "missing" and "cvssp/audioldm-l-full" in rows["audioldm-l"]["where"]
    assert rows["audioldm-l"]["steps"] == 200 and rows["audioldm-l"]["guidance"] == 2.5
    assert rows["toy-sine"]["native_sr"] == 22050


def test_score_needs_a_reference(tmp_path):
    import pytest

    (tmp_path / "g").mkdir()
    with pytest.raises(SystemExit, match="no audio files"):
        main(["score", "--gen", str(tmp_path / "g"), "--ref", str(tmp_path)])


def test_missing_references_are_counted_in_console_and_record(tmp_path, toy_plugin_path, capsys):
    import numpy as np
    import soundfile as sf

    for name, f in (("a", 300), ("b", 900)):
        t = np.arange(32000) / 16000
        sf.write(tmp_path / f"{name}.wav", (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), 16000)
    m = tmp_path / "mini.csv"
    m.write_text("id,caption,audio\na,a low tone,a.wav\nb,a high tone,b.wav\nc,a missing clip,c.wav\n")
    rc = main(
        [
            "run",
            "--models",
            "toy-sine",
            "--split",
            str(m),
            "--duration",
            "2",
            "--backbones",
            "random",
            "--metrics",
            "FD,KL_softmax",
            "--bootstrap",
            "0",
            "--out",
            str(tmp_path / "runs"),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "3 prompts, 2 with reference audio, 1 missing" in out
    assert "evaluated 3 / missing reference 1 / failed files 0" in out
    record = json.loads(next((tmp_path / "runs").rglob("results/*.json")).read_text())
    assert record["n_missing_reference"] == 1 and record["n_evaluated"] == 3
    kl = next(x for x in record["metrics"] if x["metric"] == "KL_softmax")
    assert kl["n"] == 2  # paired by clip id: only the clips with a reference


def test_generator_is_freed_before_scoring(tmp_path, toy_plugin_path, monkeypatch):
    """`bench run` drops each model before the metric networks load (GPU memory goes back)."""
    import gc
    import weakref

    import numpy as np
    import soundfile as sf

    import bench.harness as harness
    from bench.plugins.registry import get_plugin_class

    alive: list[weakref.ref] = []
    cls = get_plugin_class("toy-sine")
    original_init = cls.__init__

    def tracking_init(self, *a, **k):
        original_init(self, *a, **k)
        alive.append(weakref.ref(self))

    monkeypatch.setattr(cls, "__init__", tracking_init)
    seen_alive_at_scoring: list[int] = []
    original_score = harness.score_run_protocols

    def checking_score(*a, **k):
        gc.collect()
        seen_alive_at_scoring.append(sum(r() is not None for r in alive))
        return original_score(*a, **k)

    monkeypatch.setattr(harness, "score_run_protocols", checking_score)
    t = np.arange(32000) / 16000
    sf.write(tmp_path / "a.wav", (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 16000)
    sf.write(tmp_path / "b.wav", (0.3 * np.sin(2 * np.pi * 900 * t)).astype(np.float32), 16000)
    m = tmp_path / "mini.csv"
    m.write_text("id,caption,audio\na,a low tone,a.wav\nb,a high tone,b.wav\n")
    assert (
        main(
            [
                "run",
                "--models",
                "toy-sine",
                "--split",
                str(m),
                "--duration",
                "2",
                "--backbones",
                "random",
                "--metrics",
                "FD",
                "--bootstrap",
                "0",
                "--out",
                str(tmp_path / "runs"),
            ]
        )
        == 0
    )
    assert len(alive) == 1 and seen_alive_at_scoring == [0]
