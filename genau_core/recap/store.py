"""The output folder: settings, shards, done markers, lock.

    OUT/recap.json                 the settings every shard was made with (a re-run must match)
    OUT/shards/00003/*.parquet     one shard's tables (videos, segments, dropped, clips)
    OUT/shards/00003/report.json   that shard's per-file errors
    OUT/shards/00003/done.json     written last: the shard is finished (input hash, counts)
    OUT/clips/00003/<clip id>.wav  that shard's clips
    OUT/.lock                      held while a run is going (one run per folder)

Shard k holds videos [k * shard_size, (k + 1) * shard_size) of the list. A shard is finished
when its done marker exists and records the hash of its current input rows and the current
settings; anything else in its folders is a leftover of a killed run and is removed before
the shard is redone. Every file is written to a temp name and renamed, so a kill at any
moment leaves either the old file or the new one, and clip names are deterministic: a resumed
run has no duplicates and no losses.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from genau_core.errors import GenauBenchError
from genau_core.files import atomic_write_json
from genau_core.recap.inputs import VideoItem


class RecapStoreError(GenauBenchError, RuntimeError):
    """A recap store that cannot be used (its files or lock); the message names the file and why."""


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Shard:
    index: int
    items: tuple[VideoItem, ...]

    @property
    def name(self) -> str:
        return f"{self.index:05d}"

    @property
    def input_hash(self) -> str:
        h = hashlib.sha256()
        for it in self.items:
            h.update(it.to_json().encode())
            h.update(b"\n")
        return h.hexdigest()[:16]


def make_shards(items: Sequence[VideoItem], shard_size: int) -> list[Shard]:
    if shard_size < 1:
        raise ValueError(f"shard size must be >= 1, got {shard_size}")
    return [Shard(k, tuple(items[i : i + shard_size])) for k, i in enumerate(range(0, len(items), shard_size))]


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._lock = None

    # -- lock -------------------------------------------------------------------------
    def lock(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        f = open(self.root / ".lock", "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise RecapStoreError(f"{self.root}: another recap run holds this folder (.lock)") from None
        self._lock = f

    def unlock(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    # -- settings ---------------------------------------------------------------------
    @property
    def settings_path(self) -> Path:
        return self.root / "recap.json"

    def check_settings(self, settings: dict, *, restart: bool) -> str:
        """Record the settings of a new folder; refuse a folder made with other settings."""
        h = settings_hash(settings)
        if self.settings_path.exists() and not restart:
            old = json.loads(self.settings_path.read_text())
            if old.get("settings_hash") != h:
                diff = sorted(
                    k
                    for k in set(old.get("settings", {})) | set(settings)
                    if old.get("settings", {}).get(k) != settings.get(k)
                )
                raise RecapStoreError(
                    f"{self.root} was made with other settings (differ: {', '.join(diff)}); "
                    "use another --out, or --restart to discard its shards"
                )
            return h
        if restart:
            for sub in ("shards", "clips"):
                shutil.rmtree(self.root / sub, ignore_errors=True)
        atomic_write_json(self.settings_path, {"settings_hash": h, "settings": settings})
        return h

    # -- shards -----------------------------------------------------------------------
    def shard_dir(self, shard: Shard) -> Path:
        return self.root / "shards" / shard.name

    def clip_folder(self, shard: Shard) -> str:
        return f"clips/{shard.name}"

    def is_done(self, shard: Shard, settings_h: str) -> bool:
        marker = self.shard_dir(shard) / "done.json"
        if not marker.is_file():
            return False
        try:
            d = json.loads(marker.read_text())
        except json.JSONDecodeError:
            return False
        return d.get("input_hash") == shard.input_hash and d.get("settings_hash") == settings_h

    def reset(self, shard: Shard) -> None:
        """Remove whatever an unfinished (killed) attempt left for this shard."""
        shutil.rmtree(self.shard_dir(shard), ignore_errors=True)
        shutil.rmtree(self.root / self.clip_folder(shard), ignore_errors=True)

    def mark_done(self, shard: Shard, settings_h: str, counts: dict) -> None:
        atomic_write_json(
            self.shard_dir(shard) / "done.json", {"input_hash": shard.input_hash, "settings_hash": settings_h, **counts}
        )

    def remove_stale(self, n_shards: int) -> list[str]:
        """Shard folders beyond the current list (it got shorter, or the shard size changed)."""
        removed = []
        for sub in ("shards", "clips"):
            folder = self.root / sub
            if not folder.is_dir():
                continue
            for d in sorted(folder.iterdir()):
                if d.is_dir() and (not d.name.isdigit() or int(d.name) >= n_shards):
                    shutil.rmtree(d)
                    removed.append(f"{sub}/{d.name}")
        return removed
