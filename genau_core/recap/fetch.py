"""Where a video's media file comes from: the local path in the list, or a download.

A `Fetcher` turns a `VideoItem` into a local media path. The pipeline calls `fetch` when it
needs the media (probing the duration, decoding segments for the captioner, writing clips)
and may call it more than once for one video: fetchers that download must cache (the
`CommandFetcher` keeps its files in `cache_dir` and reuses them). When a shard is finished
the pipeline calls `release(items)` so a downloader can delete what it fetched.

Fetchers travel to Ray workers by pickling: keep them plain objects (no open handles).
With a cluster, give `CommandFetcher` a `cache_dir` on shared storage, or each stage that
runs on another node downloads again.
"""

from __future__ import annotations

import importlib
import shlex
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

from genau_core.errors import GenauBenchError
from genau_core.recap.inputs import VideoItem, safe_id


class FetchError(GenauBenchError, RuntimeError):
    """The media of one video could not be obtained; the message names the video/file and why."""

    def __init__(self, where: str, reason: str):
        self.path = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


class Fetcher(ABC):
    name: str = "fetcher"

    @abstractmethod
    def fetch(self, item: VideoItem) -> Path:
        """A local, readable media file for `item` (raise FetchError otherwise)."""

    def release(self, items: Sequence[VideoItem]) -> None:
        """The pipeline is done with these videos' media (default: nothing to clean)."""

    def describe(self) -> dict:
        return {"name": self.name}


class LocalFetcher(Fetcher):
    """The media path given in the list (the default; nothing is downloaded)."""

    name = "local"

    def fetch(self, item: VideoItem) -> Path:
        if not item.media:
            raise FetchError(
                f"video {item.video_id}", "no media path in the list (the local fetcher downloads nothing)"
            )
        p = Path(item.media)
        if not p.is_file():
            raise FetchError(str(p), "media file not found")
        return p


class CommandFetcher(Fetcher):
    """Runs a command per video, for example yt-dlp:

        CommandFetcher("yt-dlp -q -f bestaudio -o {out}.%(ext)s {url}", cache_dir="/shared/cache")

    Placeholders: {id} (video id), {url} (the list's url, or the video id when empty),
    {out} (cache_dir/<safe id>, without extension), {media} (the list's media path).
    The fetched file is the one file named `<safe id>.*` in cache_dir after the command.
    `keep=False` deletes fetched files when their shard is finished.
    """

    name = "command"

    def __init__(self, command: str, cache_dir: str | Path, *, keep: bool = False, timeout_s: float = 3600.0):
        if not command.strip():
            raise ValueError("CommandFetcher needs a command")
        self.command = command
        self.cache_dir = str(Path(cache_dir).expanduser().resolve())
        self.keep = keep
        self.timeout_s = timeout_s

    def _cached(self, item: VideoItem) -> list[Path]:
        stem = safe_id(item.video_id)
        return sorted(
            p
            for p in Path(self.cache_dir).glob(f"{stem}.*")
            if p.is_file() and not p.name.endswith((".part", ".tmp", ".ytdl"))
        )

    def fetch(self, item: VideoItem) -> Path:
        found = self._cached(item)
        if len(found) == 1:
            return found[0]
        Path(self.cache_dir).mkdir(parents=True, exist_ok=True)
        out = str(Path(self.cache_dir) / safe_id(item.video_id))
        values = {"id": item.video_id, "url": item.url or item.video_id, "out": out, "media": item.media}
        argv = [
            part.replace("{id}", values["id"])
            .replace("{url}", values["url"])
            .replace("{out}", out)
            .replace("{media}", values["media"])
            for part in shlex.split(self.command)
        ]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s)
        except FileNotFoundError:
            raise FetchError(f"video {item.video_id}", f"fetch command not found: {argv[0]!r}") from None
        except subprocess.TimeoutExpired:
            raise FetchError(
                f"video {item.video_id}", f"fetch command timed out after {self.timeout_s:.0f} s"
            ) from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
            raise FetchError(f"video {item.video_id}", f"fetch command exited with {proc.returncode}: {tail[0][:200]}")
        found = self._cached(item)
        if len(found) != 1:
            raise FetchError(
                f"video {item.video_id}",
                f"fetch command left {len(found)} files named {Path(out).name}.* in {self.cache_dir} (expected 1)",
            )
        return found[0]

    def release(self, items: Sequence[VideoItem]) -> None:
        if self.keep:
            return
        for item in items:
            for p in self._cached(item):
                p.unlink(missing_ok=True)

    def describe(self) -> dict:
        return {"name": self.name, "command": self.command, "cache_dir": self.cache_dir, "keep": self.keep}


def make_fetcher(
    spec: str = "local", *, command: str | None = None, cache_dir: str | Path | None = None, keep: bool = False
) -> Fetcher:
    """'local', 'command' (needs `command` and `cache_dir`) or 'package.module:Factory' (called with no arguments)."""
    if spec == "local":
        return LocalFetcher()
    if spec == "command":
        if not command or not cache_dir:
            raise ValueError("the command fetcher needs --fetch-command and --fetch-cache")
        return CommandFetcher(command, cache_dir, keep=keep)
    if ":" in spec:
        module, _, attr = spec.partition(":")
        obj = getattr(importlib.import_module(module), attr)()
        if not isinstance(obj, Fetcher):
            raise TypeError(f"{spec} did not build a genau_core.recap.fetch.Fetcher (got {type(obj).__name__})")
        return obj
    raise ValueError(f"unknown fetcher {spec!r}: 'local', 'command' or 'package.module:Factory'")
