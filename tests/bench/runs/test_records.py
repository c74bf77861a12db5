"""Results records as files and `bench score`'s console: strict JSON (no bare NaN), the clips
present on one side only, one file per clip id (issue 15 items 3 and 6)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.cli import main
from bench.runs.store import atomic_write_json
from tests.bench.metrics.test_scoring import fake_backbones  # noqa: F401  (fixture: cheap stand-in backbones)


def _strict(text: str):
    """JSON.parse / jq: NaN and Infinity are not JSON."""

    def refuse(name):
        raise ValueError(f"bare {name} in JSON")

    return json.loads(text, parse_constant=refuse)


def test_nan_is_written_as_null_with_its_reason(tmp_path):
    from bench.runs.store import read_record

    rec = {
        "metrics": [
            {
                "metric": "FD",
                "value": math.nan,
                "ci_low": math.nan,
                "ci_high": float("inf"),
                "reason": "checkpoint missing",
                "ci_reason": "no value",
            },
            {"metric": "IS", "value": np.float32(1.5), "ci_low": 1.0, "ci_high": 2.0, "reason": ""},
        ],
        "n": np.int64(3),
    }
    path = tmp_path / "r.json"
    atomic_write_json(path, rec)
    data = _strict(path.read_text())
    assert data["metrics"][0]["value"] is None and data["metrics"][0]["reason"] == "checkpoint missing"
    assert data["metrics"][0]["ci_high"] is None and data["metrics"][1]["value"] == 1.5 and data["n"] == 3
    assert math.isnan(rec["metrics"][0]["value"])  # the caller's record is not changed
    back = read_record(path)
    assert math.isnan(back["metrics"][0]["value"]) and math.isnan(back["metrics"][0]["ci_low"])
    assert back["metrics"][1]["value"] == 1.5
    assert not list(tmp_path.glob(".*.tmp"))


def _tone(path: Path, f: float, seconds=1.5, sr=16000) -> Path:
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), sr)
    return path


@pytest.fixture
def folders(tmp_path, fake_backbones):  # noqa: F811
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir(), ref.mkdir()
    for i in range(6):
        _tone(gen / f"c{i}.wav", 200 + 50 * i)
    for i in range(2, 9):
        _tone(ref / f"c{i}.wav", 210 + 50 * i)
    config = tmp_path / "fake.yaml"
    config.write_text(
        "backbones: {panns: fake-spectral, vggish: fake-spectral, clap_laion: fake-clap, clap_ms: fake-clap}\n"
    )
    return gen, ref, config


def test_bench_score_record_is_strict_json_and_names_unmatched_clips(folders, tmp_path, capsys):
    gen, ref, config = folders
    out = tmp_path / "score.json"
    assert (
        main(
            [
                "score",
                "--gen",
                str(gen),
                "--ref",
                str(ref),
                "--backbones",
                "random",
                "--config",
                str(config),
                "--metrics",
                "FD,CLAP_LAION",
                "--bootstrap",
                "0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "3 reference clips have no generated clip: c6, c7, c8" in text
    assert "2 generated clips have no reference clip: c0, c1" in text
    rec = _strict(out.read_text())  # no bare NaN: JSON.parse and jq read it
    clap = next(m for m in rec["metrics"] if m["metric"] == "CLAP_LAION")
    assert clap["value"] is None and clap["reason"]  # no prompts given: null plus the reason
    fd = next(m for m in rec["metrics"] if m["metric"] == "FD")
    assert fd["ci_low"] is None and fd["ci_reason"] == "bootstrap off (--bootstrap 0)"
    assert rec["reference_only"] == ["c6", "c7", "c8"] and rec["generated_only"] == ["c0", "c1"]
    assert rec["prompt_set"]["n"] == 6 and rec["reference_set"]["n"] == 7


def test_two_files_for_one_clip_id_is_an_error_naming_both(folders, tmp_path):
    """Issue 15 item 3: `a.wav` and `a.flac` in one folder: one line naming both (it was: the second ignored)."""
    gen, ref, config = folders
    data, sr = sf.read(gen / "c3.wav")
    sf.write(gen / "c3.flac", data, sr)
    expected = r"^error: .*gen: c3\.flac and c3\.wav both give clip id 'c3'.*keep one file per clip id"
    with pytest.raises(SystemExit, match=expected):
        main(
            [
                "score",
                "--gen",
                str(gen),
                "--ref",
                str(ref),
                "--backbones",
                "random",
                "--config",
                str(config),
                "--metrics",
                "FD",
                "--bootstrap",
                "0",
            ]
        )
