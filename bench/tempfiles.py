"""Temporaries of atomic writes, and removing the ones a killed process left behind.

Every atomic write in bench names its temporary `.<name>.<pid>[.<thread>].tmp[.<ext>]` beside
the target and renames it over the target when complete. A process killed between the two
(`kill -9`, out of memory, a lost machine) leaves the temporary behind; the target itself is
either the old complete file or absent. `remove_stale_temporaries(folder)` deletes the
temporaries whose writer process is no longer alive on this machine, so the next run of any
command that writes into that folder leaves it clean. A temporary of a live process (a
concurrent run) is never touched.

Caveat: the pid is checked on *this* machine. Writers on other machines sharing the folder
over a network file system are not visible here; don't run a command that cleans a folder
while another machine writes into the same folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# .<name>.<pid>.tmp | .<name>.<pid>.tmp.<ext> | .<name>.<pid>.<thread id>.tmp
_TEMPORARY = re.compile(r"^\..+\.(?P<pid>\d+)(?:\.\d+)?\.tmp(?:\.[A-Za-z0-9]+)?$")


def temporary_pid(name: str) -> int | None:
    """The writer's pid encoded in a temporary's file name, or None for any other name."""
    m = _TEMPORARY.match(name)
    return int(m.group("pid")) if m else None


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists on this machine (or may exist: no permission to ask)."""
    if pid <= 0:
        return True  # never signal process groups; treat as alive (not ours to remove)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries in `folder` (not recursive) whose writer process is dead; returns them."""
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:  # missing or unreadable folder: nothing to clean
        return removed
    for p in entries:
        pid = temporary_pid(p.name)
        if pid is None or pid == os.getpid() or pid_alive(pid) or not p.is_file():
            continue
        try:
            p.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue  # read-only folder: leaving it is harmless (never read as a result)
        removed.append(p)
    return removed
