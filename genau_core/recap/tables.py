"""The pipeline's tables, their fixed schemas, and atomic Parquet / JSONL writing.

clips     the manifest: one row per final clip; `bench run --split manifest.jsonl` and
          `genau train ldm --manifest manifest.jsonl` read it as is (`audio` is relative
          to the manifest's folder; "" when clips are not written, then `source`, `start`,
          `end` locate the clip in its source media)
segments  every captioned raw segment (before merging and filtering: "AutoReCap-Raw")
dropped   clips dropped by the speech/music filter, with the keyword and the reason (the
          rule and, for rules that read context, the actor it found), to audit the rules
videos    one row per listed video: status, the failing file and reason, times and counts;
          declared_duration (what the media file declares) and decoded_duration (where its
          audio decodes to), null when the media was not decoded
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from genau_core.files import atomic_path

CLIPS = pa.schema(
    [
        ("id", pa.string()),
        ("caption", pa.string()),
        ("audio", pa.string()),
        ("dataset_id", pa.string()),
        ("video_id", pa.string()),
        ("start", pa.float64()),
        ("end", pa.float64()),
        ("duration", pa.float64()),
        ("n_segments", pa.int64()),
        ("source", pa.string()),
        ("sample_rate", pa.int64()),
        ("captioner", pa.string()),
    ]
)
SEGMENTS = pa.schema(
    [
        ("video_id", pa.string()),
        ("seg_idx", pa.int64()),
        ("start", pa.float64()),
        ("end", pa.float64()),
        ("duration", pa.float64()),
        ("caption", pa.string()),
        ("captioner", pa.string()),
    ]
)
DROPPED = pa.schema(
    [
        ("video_id", pa.string()),
        ("start", pa.float64()),
        ("end", pa.float64()),
        ("duration", pa.float64()),
        ("n_segments", pa.int64()),
        ("caption", pa.string()),
        ("keyword", pa.string()),
        ("reason", pa.string()),
    ]
)
VIDEOS = pa.schema(
    [
        ("video_id", pa.string()),
        ("status", pa.string()),
        ("stage", pa.string()),
        ("error_file", pa.string()),
        ("error", pa.string()),
        ("transcript_format", pa.string()),
        ("duration", pa.float64()),
        ("declared_duration", pa.float64()),
        ("decoded_duration", pa.float64()),
        ("covered", pa.float64()),
        ("gap", pa.float64()),
        ("n_cues", pa.int64()),
        ("n_empty_cues", pa.int64()),
        ("n_cues_past_end", pa.int64()),
        ("n_gaps", pa.int64()),
        ("n_gaps_kept", pa.int64()),
        ("n_planned_segments", pa.int64()),
        ("n_short_audio", pa.int64()),
        ("n_segments", pa.int64()),
        ("segment_time", pa.float64()),
        ("n_merged_clips", pa.int64()),
        ("n_dropped", pa.int64()),
        ("n_clips", pa.int64()),
        ("clip_time", pa.float64()),
    ]
)
SCHEMAS = {"clips": CLIPS, "segments": SEGMENTS, "dropped": DROPPED, "videos": VIDEOS}


def to_table(rows: Sequence[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([{f.name: r[f.name] for f in schema} for r in rows], schema=schema)


def write_parquet(table: pa.Table, path: str | Path) -> None:
    """Atomic (temp file + rename): a killed run never leaves a half-written table."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_jsonl(rows: Iterable[dict], path: str | Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def read_parquet(path: str | Path, schema: pa.Schema) -> pa.Table:
    return pq.read_table(path, schema=schema)


def concat(tables: Sequence[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables(list(tables)) if tables else schema.empty_table()
