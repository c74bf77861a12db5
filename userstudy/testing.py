"""Synthetic study inputs for tests and dry runs: folders of short tone clips + a prompts CSV.

Each system gets a different timbre (tone frequency, level, optional noise) so loudness
normalisation has work to do; the reference folder holds broadband clips (tone + noise) so
the 3.5 kHz low-pass anchor audibly differs.
"""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf


def write_tone(
    path: Path,
    freq: float,
    duration_s: float = 1.0,
    sr: int = 16_000,
    amp: float = 0.3,
    noise: float = 0.0,
    seed: int = 0,
) -> Path:
    t = np.arange(int(round(duration_s * sr))) / sr
    x = amp * np.sin(2 * np.pi * freq * t)
    if noise:
        x = x + noise * np.random.default_rng(seed).standard_normal(len(t))
    fade = min(len(t) // 10, int(0.01 * sr))
    if fade:
        ramp = np.linspace(0, 1, fade)
        x[:fade] *= ramp
        x[-fade:] *= ramp[::-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x.astype(np.float32), sr, subtype="PCM_16")
    return path


@dataclass(frozen=True)
class Inputs:
    prompts_csv: Path
    systems: dict[str, Path]
    reference: Path | None
    prompt_ids: list[str]
    captions: dict[str, str]


def make_inputs(
    root: Path,
    systems: tuple[str, ...] = ("sysA", "sysB"),
    n_prompts: int = 8,
    duration_s: float = 1.0,
    missing: dict[str, list[str]] | None = None,
    reference: bool = True,
    captions: dict[str, str] | None = None,
    id_column: str = "id",
    run_dir_for: tuple[str, ...] = (),
    durations: dict[str, float] | None = None,
    rates: dict[str, int] | None = None,
) -> Inputs:
    """Prompt i has a caption of i+2 words; systems in `run_dir_for` are laid out like the bench
    run store (<root>/<split>/<model>/<hash>/clips + manifest.json). `durations` / `rates` give a
    system clips of another length / sample rate than `duration_s` / 16 kHz."""
    durations = durations or {}
    rates = rates or {}
    root = Path(root)
    missing = missing or {}
    ids = [f"pr{i:03d}" for i in range(n_prompts)]
    caps = {pid: "sound " + " ".join(f"w{j}" for j in range(i + 1)) for i, pid in enumerate(ids)}
    caps.update(captions or {})
    root.mkdir(parents=True, exist_ok=True)
    csv_path = root / "prompts.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([id_column, "caption"])
        for pid in ids:
            w.writerow([pid, caps[pid]])
    dirs: dict[str, Path] = {}
    for k, name in enumerate(systems):
        if name in run_dir_for:
            run = root / "runs" / "demo" / name / "abc123"
            clips = run / "clips"
            clips.mkdir(parents=True, exist_ok=True)
            manifest = {"model": name, "clips": {pid: {"prompt": caps[pid], "seed": 0} for pid in ids}}
            (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
            dirs[name] = run
        else:
            clips = root / name
            clips.mkdir(parents=True, exist_ok=True)
            dirs[name] = clips
        for i, pid in enumerate(ids):
            if pid in missing.get(name, []):
                continue
            write_tone(
                clips / f"{pid}.wav",
                220.0 * (k + 1) + 10 * i,
                durations.get(name, duration_s),
                sr=rates.get(name, 16_000),
                amp=0.1 + 0.2 * k,
                noise=0.02 * k,
                seed=i,
            )
    ref_dir = None
    if reference:
        ref_dir = root / "reference"
        for i, pid in enumerate(ids):
            write_tone(ref_dir / f"{pid}.wav", 1000.0 + 10 * i, duration_s, amp=0.2, noise=0.1, seed=100 + i)
    return Inputs(csv_path, dirs, ref_dir, ids, caps)


@contextmanager
def serve_in_thread(db_url: str, clock=None) -> Iterator[str]:
    """Run the app with uvicorn on 127.0.0.1 and a free port in a background thread; yields the
    base URL and stops the server (and its database engine) on exit."""
    import uvicorn

    from .server import create_app

    app = create_app(db_url) if clock is None else create_app(db_url, clock=clock)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the study server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_process(
    db_url: str, timeout_s: float = 30.0, log_path: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``python -m userstudy serve`` as a child process on 127.0.0.1 and a free port; yields
    (base URL, process). The process is stopped on exit (SIGTERM, then SIGKILL) if still alive.
    With `log_path`, everything the server prints (stdout: access log; stderr) goes to that file."""
    port = free_port()
    log = open(log_path, "w+b") if log_path is not None else tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "userstudy", "serve", "--db", db_url, "--host", "127.0.0.1", "--port", str(port)],
        stdout=log if log_path is not None else subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"userstudy serve exited with {proc.returncode}: {log.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"userstudy serve did not answer on {base} within {timeout_s} s")
            time.sleep(0.1)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()
