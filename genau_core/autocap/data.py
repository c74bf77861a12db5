"""Clips with captions and metadata for AutoCap training and evaluation.

Sources are the bench splits (resolved through `genau_core.datasets.load_dataset`): `demo` (10 synthesised clips with
exact captions), `audiocaps` (official test.csv + the user's clips, 5 captions per clip) or a
manifest `.csv` / `.jsonl` with columns `id,caption,audio` (audio relative to the manifest)
plus optional metadata columns `title`, `video_caption`, `description`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from genau_core.audio.io import load_audio
from genau_core.tables import read_csv_rows, read_jsonl_rows
from genau_core.datasets import CaptionSplit, load_dataset
from genau_core.errors import SplitError
from genau_core.autocap.configs import META_FIELDS, AutoCapConfig
from genau_core.autocap.encoders import clap_waveform, prepare_waveform

MIN_DURATION_S = 1.0  # bench bad-input policy: shorter files are an AudioError naming the file


@dataclass(frozen=True)
class CaptionRecord:
    id: str
    audio: Path | None  # None: the clip is missing (counted, never silently dropped)
    captions: tuple[str, ...]
    metadata: dict = field(default_factory=dict, hash=False, compare=False)


def _manifest_metadata(path: Path) -> dict[str, dict[str, str]]:
    rows = read_jsonl_rows(path, ["id"]) if path.suffix.lower() == ".jsonl" else read_csv_rows(path, ["id"])
    out = {}
    for _, row in rows:
        meta = {k: " ".join(str(row[k]).split()) for k in META_FIELDS if row.get(k) not in (None, "")}
        out[str(row["id"]).strip()] = meta
    return out


def load_records(
    source: str, *, split_csv: str | Path | None = None, ref_dir: str | Path | None = None
) -> tuple[CaptionSplit, list[CaptionRecord]]:
    """The split named `source` (demo / audiocaps / bigsoundbank / a manifest path) as records
    with every reference caption and any metadata columns."""
    split = load_dataset(source, csv=split_csv, ref_dir=ref_dir)
    meta: dict[str, dict[str, str]] = {}
    path = Path(source)
    if path.suffix.lower() in (".csv", ".jsonl") and path.is_file():
        meta = _manifest_metadata(path)
    records = [
        CaptionRecord(it.id, it.reference, tuple(it.captions) or (it.prompt,), meta.get(it.id, {}))
        for it in split.items
    ]
    return split, records


def load_clip(path: Path, cfg: AutoCapConfig, *, resampler: str = "soxr-hq") -> np.ndarray:
    """A file -> mono float32 at the model's rate, first `clip_seconds` (AudioError on bad input)."""
    return load_audio(
        path,
        cfg.frontend.sample_rate,
        resampler=resampler,
        min_duration_s=MIN_DURATION_S,
        max_duration_s=cfg.frontend.clip_seconds,
    )


class CaptionDataset(torch.utils.data.Dataset):
    """One sample per (clip, reference caption): clip id, prepared waveform, CLAP waveform, caption, metadata."""

    def __init__(self, records: Sequence[CaptionRecord], cfg: AutoCapConfig, *, source: str = "dataset"):
        missing = [r.id for r in records if r.audio is None]
        if missing:
            raise SplitError(
                f"{source}: {len(missing)} of {len(records)} clips have no audio file (e.g. {missing[:5]}); training "
                "needs every clip"
            )
        self.samples = [(r, c) for r in records for c in r.captions]
        if not self.samples:
            raise SplitError(f"{source}: no captioned clips")
        self.cfg = cfg

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        rec, caption = self.samples[i]
        wave = prepare_waveform(load_clip(rec.audio, self.cfg), self.cfg.frontend)
        clap = clap_waveform(wave, self.cfg.frontend, self.cfg.clap) if self.cfg.use_clap else None
        return rec.id, wave, clap, caption, dict(rec.metadata)


def collate(batch):
    ids, waves, claps, captions, metas = zip(*batch)
    wave = torch.from_numpy(np.stack(waves))
    clap = torch.from_numpy(np.stack(claps)) if claps[0] is not None else None
    return list(ids), wave, clap, list(captions), list(metas)
