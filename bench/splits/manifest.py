"""A user's own split: a CSV or JSONL manifest with `id`, `caption` and optional `audio`.

`audio` paths are relative to the manifest's folder. This is also the format that the
AutoReCap pipeline writes, so its output can be benchmarked directly.
"""

from __future__ import annotations

from pathlib import Path

from bench.splits.base import Split, SplitError, SplitItem
from genau_core.tables import read_csv_rows, read_jsonl_rows, require_utf8


def load_manifest(path: Path) -> Split:
    if not path.is_file():
        what = "is a folder, not a manifest file" if path.is_dir() else "manifest not found"
        raise SplitError(f"{path}: {what}; give a .csv or .jsonl file with columns id,caption[,audio]")
    require_utf8(path)
    if path.suffix.lower() == ".jsonl":
        rows = read_jsonl_rows(path, ["id", "caption"])
    elif path.suffix.lower() == ".csv":
        rows = read_csv_rows(path, ["id", "caption"])
    else:
        raise SplitError(f"{path}: unknown manifest type {path.suffix!r} (use .csv or .jsonl)")
    items, seen = [], {}
    for line, row in rows:
        clip_id, caption = str(row["id"]).strip(), " ".join(str(row["caption"]).split())
        if not clip_id or not caption:
            raise SplitError(f"{path}:{line}: empty id or caption")
        if "/" in clip_id or clip_id.startswith("."):
            raise SplitError(f"{path}:{line}: id {clip_id!r} cannot name a file (no '/' or leading '.')")
        if clip_id in seen:
            raise SplitError(f"{path}:{line}: duplicate id {clip_id!r} (first on line {seen[clip_id]})")
        seen[clip_id] = line
        audio = str(row.get("audio") or "").strip()
        ref = (path.parent / audio) if audio else None
        items.append(
            SplitItem(id=clip_id, prompt=caption, reference=ref if ref and ref.is_file() else None, captions=(caption,))
        )
    if not items:
        where = " after the header" if path.suffix.lower() == ".csv" else ""
        raise SplitError(f"{path}: no rows{where}; add one row per clip with its id and caption")
    return Split(
        name=path.stem, items=items, source=str(path), prompt_rule="the manifest's caption", reference_dir=path.parent
    )
