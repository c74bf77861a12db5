"""Files written atomically, hashed by content, and the temporaries a killed process left behind.

One of each: `atomic_path` / `atomic_write_bytes` / `atomic_write_text` / `atomic_write_json` (every
atomic write in genau-bench goes through them), `file_sha256` (every sha256-of-a-file), `json_safe`.

Every atomic write names its temporary `.<name>.<pid>[.<thread>].tmp[.<ext>]` beside
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

import hashlib
import json
import math
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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


def temporary_for(path: Path, suffix: str = "") -> Path:
    """`.<name>.<pid>.tmp<suffix>` beside `path` (`suffix` e.g. ".png" where a writer picks the format by
    extension). One writer per file per process: threads that write one file serialise (e.g. under a lock)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")


@contextmanager
def atomic_path(path: str | Path, *, suffix: str = "", clean: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; on success it is renamed over `path`, on an
    exception removed. `clean`: first remove the folder's temporaries of dead writers."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if clean:
        remove_stale_temporaries(path.parent)
    tmp = temporary_for(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, *, clean: bool = True) -> None:
    """`clean=False` for writers of many files into one folder (clips): no folder scan per file."""
    with atomic_path(path, clean=clean) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str, *, clean: bool = True) -> None:
    with atomic_path(path, clean=clean) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_safe(data):
    """A copy of `data` that strict JSON can hold: NaN / inf floats become None (null), tuples lists,
    numpy scalars Python numbers. The caller's object is not changed."""
    if isinstance(data, dict):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(v) for v in data]
    if hasattr(data, "item") and not isinstance(data, (str, bytes)) and getattr(data, "ndim", 1) == 0:
        data = data.item()  # numpy scalar
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def atomic_write_json(path: str | Path, data) -> None:
    """Strict JSON (RFC 8259; NaN / inf written as null), indented, UTF-8, atomically."""
    text = json.dumps(json_safe(data), indent=2, ensure_ascii=False, sort_keys=False, allow_nan=False)
    atomic_write_text(path, text + "\n")


def file_sha256(path: str | Path, *, chunk: int = 1 << 22) -> str:
    """sha256 of a file's bytes, read in `chunk`-byte blocks (hashlib releases the GIL: files hash in
    parallel in threads). `genau_core.checkpoints.sha256_file` adds a memo for multi-GB checkpoints."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
