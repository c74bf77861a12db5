"""The `bench` executable (bench.cli.console_main): after `bench score` it ends without module
teardown, but only once everything is written and flushed; the exit status is kept; other
commands and GENAU_BENCH_FAST_EXIT=0 exit the ordinary way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.audio import write_wav


def _bench(args: list[str], tmp_path: Path, **env) -> subprocess.CompletedProcess:
    code = "import sys; from bench.cli import console_main; sys.argv = ['bench'] + sys.argv[1:]; console_main()"
    full_env = {**os.environ, "GENAU_BENCH_CACHE": str(tmp_path / "cache"), **env}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=full_env, timeout=600
    )


def _clips(folder: Path, seed: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(3):
        write_wav(folder / f"c{i}.wav", (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32), 16000)
    return folder


def test_score_writes_flushes_and_keeps_the_status(tmp_path):
    gen, ref = _clips(tmp_path / "gen", 1), _clips(tmp_path / "ref", 2)
    out = tmp_path / "score.json"
    args = [
        "score",
        "--gen",
        str(gen),
        "--ref",
        str(ref),
        "--backbones",
        "random",
        "--metrics",
        "FD",
        "--bootstrap",
        "0",
        "--out",
        str(out),
    ]
    done = _bench(args, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "FD_panns-cnn14@16k" in done.stdout and f"written: {out}" in done.stdout  # flushed before exit
    record = json.loads(out.read_text())
    assert np.isfinite([m["value"] for m in record["metrics"] if m["metric"] == "FD"]).all()
    assert list((tmp_path / "cache").rglob("*.npz"))  # cache files complete on disk

    slow = _bench(args, tmp_path, GENAU_BENCH_FAST_EXIT="0")
    assert slow.returncode == 0 and json.loads(out.read_text())["metrics"] == record["metrics"]


def test_errors_keep_their_exit_status(tmp_path):
    done = _bench(["score", "--gen", str(tmp_path / "missing"), "--backbones", "random"], tmp_path)
    assert done.returncode != 0
    assert "missing" in done.stderr + done.stdout
