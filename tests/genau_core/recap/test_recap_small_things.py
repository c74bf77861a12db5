"""Issue 20, item 5: a 0-byte .vtt says "empty file"; a non-UTF-8 video list names the file;
Ray processes left by a killed run are stopped at the next start; `autocap eval` writes its
captions before the metrics need Java."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genau_core.recap.inputs import VideoListError, read_video_list
from genau_core.recap.transcripts import TranscriptError, read_transcript


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"  \n\n"])
def test_empty_vtt_says_empty_file(tmp_path, content):
    p = tmp_path / "a.en.vtt"
    p.write_bytes(content)
    with pytest.raises(TranscriptError) as e:
        read_transcript(p)
    assert e.value.reason == "empty file" and e.value.path == str(p)


@pytest.mark.parametrize(
    "name, body",
    [
        ("list.csv", b"id,media,transcript\nv1,caf\xe9.mp4,a.vtt\n"),
        ("list.jsonl", b'{"id": "v1"}\n{"id": "caf\xe9"}\n'),
    ],
)
def test_non_utf8_video_list_names_the_file(tmp_path, capsys, name, body):
    p = tmp_path / name
    p.write_bytes(body)
    with pytest.raises(
        VideoListError, match=rf"{name}:2: not UTF-8 text \(byte \d+: b'\\xe9'\); save the list as UTF-8"
    ):
        read_video_list(p)
    from genau_core.recap.cli import main

    assert main(["--videos", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {p}:2: not UTF-8") and "Traceback" not in err


# ----------------------------------------------------------------------------- Ray leftovers

_PARENT = """
import subprocess, sys, time
from genau_core.recap import ray_procs
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]) for _ in range(2)]
time.sleep(0.3)
ray_procs.record(sys.argv[1])
print(" ".join(str(k.pid) for k in kids), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    import psutil

    from genau_core.recap.ray_procs import running

    try:
        return running(psutil, psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def test_processes_left_by_a_killed_run_are_stopped_at_next_start(tmp_path, capsys):
    """What `kill -9` of a Ray driver leaves (its agents, re-parented) is stood in for by two
    child processes; the next run on the folder stops exactly those, by pid and start time."""
    pytest.importorskip("psutil")
    pytest.importorskip("pyarrow")
    from genau_core.recap import ray_procs, run_recap
    from tests.genau_core.recap.test_recap_pipeline import config

    out = tmp_path / "out"
    out.mkdir()
    proc_file = out / ray_procs.PROC_FILE
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(proc_file)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[3],
    )
    kids: list[int] = []
    try:
        kids = [int(x) for x in parent.stdout.readline().split()]
        parent.kill()  # SIGKILL: the children live on
        parent.wait()
        time.sleep(0.2)
        assert len(kids) == 2 and all(_alive(k) for k in kids)
        recorded = json.loads(proc_file.read_text())["processes"]
        assert sorted(e["pid"] for e in recorded) == sorted(kids)
        # a recycled pid (same number, other start time) is never touched: this test's own process
        recorded.append({"pid": os.getpid(), "create_time": 1.0, "name": "python"})
        proc_file.write_text(json.dumps({"driver": parent.pid, "processes": recorded}))
        (tmp_path / "v.jsonl").write_text(json.dumps({"id": "v", "media": "", "transcript": ""}) + "\n")
        run_recap(config(tmp_path / "v.jsonl", out, figures=False))
        assert not any(_alive(k) for k in kids) and not proc_file.exists()
        err = capsys.readouterr().err
        assert "stopped 2 Ray processes left by a killed run" in err and all(f"pid {k}" in err for k in kids)
        assert ray_procs.stop_stale(proc_file) == []  # nothing recorded any more
    finally:
        for k in kids:
            if _alive(k):
                os.kill(k, 9)


@pytest.mark.slow
def test_ray_engine_records_and_clears_its_processes(tmp_path):
    ray = pytest.importorskip("ray")
    pytest.importorskip("psutil")
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    from genau_core.recap.engine import EngineSettings
    from genau_core.recap.ray_engine import RayEngine
    from genau_core.recap.ray_procs import PROC_FILE

    eng = RayEngine(EngineSettings(out_root=str(tmp_path), progress=False), num_cpus=1)
    try:
        names = {e["name"] for e in json.loads((tmp_path / PROC_FILE).read_text())["processes"]}
        assert {"raylet", "gcs_server"} <= names, names
    finally:
        eng.close()
    assert not (tmp_path / PROC_FILE).exists()


# ----------------------------------------------------------------------------- autocap eval


class _StubCaptioner:
    """Stands in for AutoCap (loading autocap-tiny takes ~26 s on these shared CPUs): what is
    tested is when `autocap eval` writes the captions, not what they say."""

    name, identity = "stub", "stub:v1"
    generation = type("G", (), {"num_beams": 1})

    def caption_files(self, paths, metadata=None, *, batch_size=8, on_error="raise"):
        from types import SimpleNamespace

        return [SimpleNamespace(caption=f"caption of {Path(p).stem}", error=None) for p in paths]


def test_autocap_eval_writes_captions_before_the_metrics_need_java(tmp_path, monkeypatch):
    import genau_core.autocap.captioner as captioner_mod
    from genau_core.autocap.cli import main

    monkeypatch.setattr(captioner_mod, "load_captioner", lambda *a, **k: _StubCaptioner())
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on PATH
    out = tmp_path / "caps" / "captions.csv"
    with pytest.raises(SystemExit, match=r"java not found.*the captions are in .*captions.csv"):
        main(["eval", "--split", "demo", "--limit", "3", "--captions-out", str(out), "--metrics", "bleu"])
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["id"], r["caption"]) for r in rows] == [(f"demo-0{k}", f"caption of demo-0{k}") for k in (1, 2, 3)]
    assert all(r["references"].strip() for r in rows)
    with pytest.raises(SystemExit, match=r"java not found.*--captions-out FILE keeps them"):
        main(["eval", "--split", "demo", "--limit", "1", "--metrics", "bleu"])
