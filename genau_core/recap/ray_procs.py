"""The Ray processes a local `--engine ray` run starts, recorded so that the next run can stop
the ones a killed run left behind.

`ray.init()` without an address starts a local Ray instance as children of the driver. When the
driver is killed with SIGKILL, most of them exit on their own, but `ray::DashboardAgent` and
`ray::RuntimeEnvAgent` stay (measured with Ray 2.60: still running 20 s after the kill, and
still running 7 s after a SIGTERM; SIGKILL ends them). So the Ray engine records the driver's
descendant processes (pid, start time, name) in `OUT/.ray_processes.json` after starting Ray
and after every shard, and removes the file after a normal shutdown. A run that finds the file
(the previous run on this folder did not shut down; the folder's lock rules out one still
running) stops every recorded process that is still alive with the same pid *and* start time
(so a recycled pid is never touched): SIGTERM, then SIGKILL after `timeout_s`.

By hand: `ps -eo pid,lstart,cmd | grep 'ray::'` lists them; `kill -9 PID` stops one. `ray stop
--force` stops every Ray process of this user on the machine, other runs' included.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from genau_core.files import atomic_write_json

PROC_FILE = ".ray_processes.json"


def _psutil():
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with the [distributed] extra (accelerate)
        return None
    return psutil


def record(path: str | Path, root_pid: int | None = None) -> list[dict]:
    """Write the descendants of `root_pid` (default: this process) to `path`; returns them."""
    psutil = _psutil()
    if psutil is None:
        return []
    entries = []
    try:
        kids = psutil.Process(root_pid or os.getpid()).children(recursive=True)
    except psutil.Error:
        return []
    for p in kids:
        try:
            entries.append({"pid": p.pid, "create_time": p.create_time(), "name": p.name()})
        except psutil.Error:
            continue
    atomic_write_json(Path(path), {"driver": root_pid or os.getpid(), "processes": entries})
    return entries


def clear(path: str | Path) -> None:
    Path(path).unlink(missing_ok=True)


def stop_stale(path: str | Path, timeout_s: float = 3.0) -> list[dict]:
    """Stop the processes recorded in `path` that still run (same pid and start time); remove
    the file. Returns the entries that were stopped."""
    path = Path(path)
    if not path.is_file():
        return []
    psutil = _psutil()
    try:
        entries = json.loads(path.read_text()).get("processes", [])
    except (OSError, ValueError):
        entries = []
    if psutil is None:
        return []
    alive, stopped = [], []
    for e in entries:
        try:
            p = psutil.Process(int(e["pid"]))
            if abs(p.create_time() - float(e["create_time"])) > 0.01 or p.status() == psutil.STATUS_ZOMBIE:
                continue
            p.terminate()
            alive.append(p)
            stopped.append(e)
        except (psutil.Error, KeyError, TypeError, ValueError):
            continue
    left = _wait(psutil, alive, timeout_s)
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            pass
    _wait(psutil, left, timeout_s)
    clear(path)
    return stopped


def running(psutil, p) -> bool:
    """Alive and not a zombie (an orphan's zombie stays until init reaps it, which some containers never do)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait(psutil, procs: list, timeout_s: float) -> list:
    deadline = time.monotonic() + timeout_s
    left = [p for p in procs if running(psutil, p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if running(psutil, p)]
    return left
