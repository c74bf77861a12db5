"""Finding checkpoint files and naming them by content (sha256).

A checkpoint is looked for, in order: an explicit path; $GENAU_BENCH_CHECKPOINTS/<file>;
~/.cache/genau-bench/checkpoints/<file>. Downloading is left to the user (or to the
owning loader when it knows an official URL and the user is online); a missing file is
a clear error naming the file and where to put it.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

from genau_core.errors import CheckpointNotFound
from genau_core.files import atomic_write_text, file_sha256

_MEMO_LOCK = threading.Lock()


def cache_root() -> Path:
    return Path(os.environ.get("GENAU_BENCH_CACHE", Path.home() / ".cache" / "genau-bench"))


def checkpoint_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("GENAU_BENCH_CHECKPOINTS"):
        dirs.append(Path(os.environ["GENAU_BENCH_CHECKPOINTS"]))
    dirs.append(cache_root() / "checkpoints")
    return dirs


def find_checkpoint(
    filename: str, explicit: str | Path | None = None, *, what: str = "", source: str = "", flag: str | None = None
) -> Path:
    """The checkpoint file: `explicit`, else `filename` in the checkpoint folders. Not found: the error names
    where it was looked for and `flag`, the option that passes it (e.g. `--checkpoint vggish=PATH`)."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.exists():
            raise CheckpointNotFound(f"{p}: checkpoint file not found{f' ({what})' if what else ''}")
        return p
    for d in checkpoint_dirs():
        if (d / filename).exists():
            return d / filename
    where = " or ".join(str(d / filename) for d in checkpoint_dirs())
    hint = f" Get it from {source}." if source else ""
    raise CheckpointNotFound(
        f"{what or 'checkpoint'} {filename!r} not found. Put it at {where}, or pass its path "
        f"{f'with {flag}' if flag else '(e.g. --checkpoint NAME=PATH)'}.{hint}"
    )


def _memo_key(path: Path) -> str:
    st = path.stat()
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"


def _read_memo(memo_file: Path) -> dict:
    try:
        return json.loads(memo_file.read_text()) if memo_file.exists() else {}
    except (OSError, ValueError):
        return {}


def sha256_file(path: str | Path, *, chunk: int = 1 << 22) -> str:
    """sha256 of a file, memoised on (path, size, mtime) so multi-GB checkpoints hash once."""
    path = Path(path).resolve()
    key = _memo_key(path)
    memo_file = cache_root() / "sha256-memo.json"
    with _MEMO_LOCK:
        known = _read_memo(memo_file).get(key)
    if known:
        return known
    digest = file_sha256(path, chunk=chunk)
    with _MEMO_LOCK:  # read-modify-write under the lock, so parallel hashes are all kept
        memo = _read_memo(memo_file)
        memo[key] = digest
        try:
            atomic_write_text(memo_file, json.dumps(memo), clean=False)
        except OSError:
            pass
    return digest


def sha256_files(paths: Iterable[str | Path], *, workers: int | None = None) -> dict[Path, str]:
    """sha256 of several files at once (one thread per core), through the same memo."""
    unique = list(dict.fromkeys(Path(p).resolve() for p in paths))
    if len(unique) <= 1:
        return {p: sha256_file(p) for p in unique}
    workers = workers or min(len(unique), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(unique, pool.map(sha256_file, unique)))
