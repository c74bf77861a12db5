"""Bigsoundbank split: rows of WavText5K's WavText5K.csv whose view_link is on bigsoundbank.com.

Columns: view_link,download_link,title,description,fname,tags (2467 of 4525 rows).
Clip id = fname without extension. Prompt rule: the description, or the title when the
description is empty. Reference clip = <audio_dir>/<fname>.
"""

from __future__ import annotations

from pathlib import Path

from bench.splits.base import Split, SplitError, SplitItem
from bench.splits.tables import read_csv_rows

COLUMNS = ["view_link", "download_link", "title", "description", "fname", "tags"]
PROMPT_RULE = "description, else title when the description is empty"


def load_bigsoundbank(csv_path: Path, audio_dir: Path | None) -> Split:
    if not csv_path.is_file():
        raise SplitError(
            f"WavText5K.csv not found at {csv_path}. Get it from the WavText5K repository and put it there, "
            f"or pass --split-csv PATH (and --ref-dir DIR with the bigsoundbank audio files)."
        )
    audio_dir = audio_dir if audio_dir is not None and audio_dir.is_dir() else None
    items = []
    for line, row in read_csv_rows(csv_path, COLUMNS):
        if "bigsoundbank.com" not in row["view_link"]:
            continue
        fname = row["fname"].strip()
        if not fname:
            raise SplitError(f"{csv_path}:{line}: empty fname")
        prompt = " ".join(row["description"].split()) or " ".join(row["title"].split())
        if not prompt:
            raise SplitError(f"{csv_path}:{line}: both description and title are empty")
        ref = audio_dir / fname if audio_dir is not None and (audio_dir / fname).is_file() else None
        items.append(
            SplitItem(
                id=Path(fname).stem,
                prompt=prompt,
                reference=ref,
                captions=(prompt,),
                meta={"title": row["title"].strip(), "view_link": row["view_link"].strip()},
            )
        )
    if not items:
        raise SplitError(f"{csv_path}: no row has a bigsoundbank.com view_link")
    return Split(name="bigsoundbank", items=items, source=str(csv_path), prompt_rule=PROMPT_RULE, reference_dir=audio_dir)
