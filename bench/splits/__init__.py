"""Splits: `demo` (embedded), `audiocaps`, `bigsoundbank`, or a path to a CSV/JSONL manifest.

Official files are looked for under the data root ($GENAU_BENCH_DATA, default
~/.cache/genau-bench/data):
    audiocaps/test.csv          + audiocaps/audio/<youtube_id>.wav
    bigsoundbank/WavText5K.csv  + bigsoundbank/audio/<fname>
or given explicitly with --split-csv / --ref-dir.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from bench.checkpoints import cache_root
from bench.splits.audiocaps import load_audiocaps
from bench.splits.base import Split, SplitError, SplitItem
from bench.splits.bigsoundbank import load_bigsoundbank
from bench.splits.demo import load_demo
from bench.splits.manifest import load_manifest

__all__ = ["Split", "SplitError", "SplitItem", "SPLITS", "data_root", "load_split", "split_table"]


@dataclass(frozen=True)
class SplitSpec:
    name: str
    csv_rel: str | None
    audio_rel: str | None
    description: str


SPLITS = {
    "demo": SplitSpec("demo", None, None, "10 synthesised clips with exact captions (embedded, offline)"),
    "audiocaps": SplitSpec(
        "audiocaps", "audiocaps/test.csv", "audiocaps/audio", "AudioCaps test (975 clips x 5 captions)"
    ),
    "bigsoundbank": SplitSpec(
        "bigsoundbank", "bigsoundbank/WavText5K.csv", "bigsoundbank/audio", "WavText5K rows from bigsoundbank.com (OOD)"
    ),
}


def data_root() -> Path:
    return Path(os.environ.get("GENAU_BENCH_DATA", cache_root() / "data"))


def default_paths(name: str) -> tuple[Path | None, Path | None]:
    spec = SPLITS[name]
    root = data_root()
    return (root / spec.csv_rel if spec.csv_rel else None, root / spec.audio_rel if spec.audio_rel else None)


def load_split(name: str, *, csv: str | Path | None = None, ref_dir: str | Path | None = None) -> Split:
    if name not in SPLITS:
        p = Path(name)
        if p.suffix.lower() in (".csv", ".jsonl"):
            return load_manifest(p)
        close = difflib.get_close_matches(name, list(SPLITS), n=2, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise SplitError(
            f"unknown split {name!r}.{hint} Known: {', '.join(SPLITS)}, or a path to a .csv/.jsonl manifest."
        )
    if name == "demo":
        return load_demo()
    default_csv, default_audio = default_paths(name)
    csv_path = Path(csv) if csv else default_csv
    audio_dir = Path(ref_dir) if ref_dir else default_audio
    loader = load_audiocaps if name == "audiocaps" else load_bigsoundbank
    return loader(csv_path, audio_dir)


def split_table() -> list[dict]:
    """One row per known split for `bench splits`: counts when the files are there, else what is missing."""
    rows = []
    for name, spec in SPLITS.items():
        csv_path, audio = default_paths(name) if name != "demo" else (None, None)
        row = {"split": name, "description": spec.description, "csv": str(csv_path or "-"), "audio": str(audio or "-")}
        try:
            s = load_split(name)
            row.update(
                n_prompts=len(s.items),
                n_with_reference=s.n_with_reference,
                n_missing=len(s.missing_references),
                n_excluded=len(s.excluded),
                status="; ".join(["ok", *s.console_notes()]),
            )
            if name == "demo":
                row["audio"] = str(s.reference_dir)
        except SplitError as e:
            row.update(n_prompts=None, n_with_reference=None, n_missing=None, status=str(e))
        rows.append(row)
    return rows
