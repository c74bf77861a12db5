"""The list of videos to process: a CSV or JSONL file, one video per row.

Columns (aliases in brackets):
    id           [video_id, youtube_id]        required, unique
    media        [media_path, audio, path]     local media file (video container or audio file);
                                                may be empty when a fetcher downloads it
    transcript   [transcript_path, subtitles]  WebVTT / SRT / json3 file; empty = the video has
                                                no transcript and is discarded (paper, A.2)
    title, description, video_caption [caption]   optional metadata passed to the captioner
    duration     seconds, optional: lets segments be planned before the media is fetched
    url          optional, for fetchers that download

Relative paths are resolved against the list's folder. A structural problem with the list
(missing id column, duplicate or empty ids, bad JSON) stops the run with the file and line;
problems with one video's files are reported per video and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from genau_core.errors import GenauBenchError, SplitError
from genau_core.tables import read_csv_rows, read_jsonl_rows

ALIASES = {
    "video_id": ("id", "video_id", "youtube_id"),
    "media": ("media", "media_path", "audio", "path"),
    "transcript": ("transcript", "transcript_path", "subtitles"),
    "title": ("title",),
    "description": ("description",),
    "video_caption": ("video_caption", "caption"),
    "duration_s": ("duration", "duration_s"),
    "url": ("url",),
}


class VideoListError(GenauBenchError, ValueError):
    """The video list itself is unusable; the message names file and line."""


@dataclass(frozen=True)
class VideoItem:
    video_id: str
    media: str = ""  # absolute path, or "" when a fetcher provides it
    transcript: str = ""  # absolute path, or "" when the video has none
    title: str = ""
    description: str = ""
    video_caption: str = ""
    duration_s: float | None = None
    url: str = ""
    line: int = 0  # where the row is in the list (for messages)

    @property
    def metadata(self) -> dict[str, str]:
        """What the captioner receives (the paper's AutoCap metadata: title, video caption, description)."""
        return {"title": self.title, "video_caption": self.video_caption, "description": self.description}

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "VideoItem":
        d = json.loads(text)
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def safe_id(video_id: str) -> str:
    """A file-name-safe form of a video id ([A-Za-z0-9_-]); a changed id gets a hash suffix so
    two ids never collapse into one."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", video_id)
    if clean == video_id and clean:
        return clean
    return f"{clean[:80]}-{hashlib.sha1(video_id.encode()).hexdigest()[:8]}"


def _pick(row: dict, key: str):
    for name in ALIASES[key]:
        if name in row and row[name] is not None:
            return row[name]
    return None


def _path(base: Path, value) -> str:
    text = str(value or "").strip()
    if not text:
        return ""
    p = Path(text).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _not_utf8(path: Path) -> str:
    """Where a list stops being UTF-8 (the csv reader decodes in chunks, so its offset is not the file's)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        off = e.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, off) + 1
        return f"{path}:{line}: not UTF-8 text (byte {off}: {data[off : off + 1]!r}); save the list as UTF-8"
    return f"{path}: not UTF-8 text; save the list as UTF-8"


def read_video_list(path: str | Path) -> list[VideoItem]:
    path = Path(path)
    if not path.is_file():
        raise VideoListError(f"{path}: video list not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            rows = list(read_jsonl_rows(path, []))
        elif suffix == ".csv":
            rows = list(read_csv_rows(path, []))
        else:
            raise VideoListError(f"{path}: unknown list type {suffix!r} (use .csv or .jsonl)")
    except SplitError as e:
        raise VideoListError(str(e)) from None
    except UnicodeDecodeError:
        raise VideoListError(_not_utf8(path)) from None
    base = path.parent.resolve()
    items: list[VideoItem] = []
    seen: dict[str, int] = {}
    safe_seen: dict[str, str] = {}
    for line, row in rows:
        vid = _pick(row, "video_id")
        vid = "" if vid is None else str(vid).strip()
        if not vid:
            raise VideoListError(f"{path}:{line}: empty or missing video id (column 'id' or 'video_id')")
        if vid in seen:
            raise VideoListError(f"{path}:{line}: duplicate video id {vid!r} (first on line {seen[vid]})")
        seen[vid] = line
        sid = safe_id(vid)
        if sid in safe_seen and safe_seen[sid] != vid:
            raise VideoListError(
                f"{path}:{line}: video id {vid!r} and {safe_seen[sid]!r} map to the same file name {sid!r}"
            )
        safe_seen[sid] = vid
        dur = _pick(row, "duration_s")
        duration = None
        if dur not in (None, ""):
            try:
                duration = float(dur)
            except (TypeError, ValueError):
                raise VideoListError(f"{path}:{line}: duration {dur!r} is not a number of seconds") from None
            if not duration >= 0:
                raise VideoListError(f"{path}:{line}: negative duration {duration}")
        text = {k: " ".join(str(_pick(row, k) or "").split()) for k in ("title", "description", "video_caption")}
        items.append(
            VideoItem(
                video_id=vid,
                media=_path(base, _pick(row, "media")),
                transcript=_path(base, _pick(row, "transcript")),
                duration_s=duration,
                url=str(_pick(row, "url") or "").strip(),
                line=line,
                **text,
            )
        )
    if not items:
        raise VideoListError(f"{path}: no videos")
    return items
