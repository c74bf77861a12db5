"""Bigsoundbank split: rows of WavText5K's WavText5K.csv whose view_link is on bigsoundbank.com.

Columns: view_link,download_link,title,description,fname,tags (2467 of 4525 rows).
Clip id = fname without extension. Reference clip = <audio_dir>/<fname>.

Prompt rule: the description; the title when the description is empty; when both are empty
(the published CSV has such rows: `bench splits` used to stop at its line 222), the title in the view_link's slug
(`https://bigsoundbank.com/detail-0477-wilhelm-scream.html` -> "wilhelm scream"), kept per clip
(`SplitItem.meta["prompt_source"]`), counted and named on the console and in run manifests.
A row whose slug gives no words either is excluded, and every excluded row is listed (line, id, reason) in the split's
`excluded` (console: count and first ids; run manifests: all of them). Nothing is dropped
silently, and a few such rows never make the whole split unusable.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from bench.splits.base import Split, SplitError, SplitItem
from genau_core.tables import read_csv_rows, require_utf8

COLUMNS = ["view_link", "download_link", "title", "description", "fname", "tags"]
PROMPT_RULE = "description, else title, else the title in the view_link slug (detail-NNNN-<slug>.html)"
_SLUG = re.compile(r"^(?:detail|sound)-\d+-(?P<slug>.+?)(?:\.html?)?$", re.IGNORECASE)


def slug_title(view_link: str) -> str:
    """The words of a bigsoundbank view_link's slug: '.../detail-0477-wilhelm-scream.html' -> 'wilhelm scream'."""
    name = unquote(urlparse(view_link.strip()).path.rstrip("/").rsplit("/", 1)[-1])
    m = _SLUG.match(name)
    if not m:
        return ""
    return " ".join(re.split(r"[-_\s]+", m.group("slug"))).strip()


def load_bigsoundbank(csv_path: Path, audio_dir: Path | None) -> Split:
    if not csv_path.is_file():
        raise SplitError(
            f"WavText5K.csv not found at {csv_path}. Get it from the WavText5K repository and put it there, "
            f"or pass --split-csv PATH (and --ref-dir DIR with the bigsoundbank audio files)."
        )
    audio_dir = audio_dir if audio_dir is not None and audio_dir.is_dir() else None
    items, excluded, from_slug = [], [], []
    require_utf8(csv_path)  # a stray byte is one line naming its line and column, not a decoding traceback
    for line, row in read_csv_rows(csv_path, COLUMNS):
        if "bigsoundbank.com" not in row["view_link"]:
            continue
        fname = row["fname"].strip()
        if not fname:
            raise SplitError(f"{csv_path}:{line}: empty fname")
        clip_id = Path(fname).stem
        prompt, source = " ".join(row["description"].split()), "description"
        if not prompt:
            prompt, source = " ".join(row["title"].split()), "title"
        if not prompt:
            prompt, source = slug_title(row["view_link"]), "view_link slug"
            if not prompt:
                excluded.append(
                    {"line": line, "id": clip_id, "reason": "description, title and view_link slug all empty"}
                )
                continue
            from_slug.append(clip_id)
        ref = audio_dir / fname if audio_dir is not None and (audio_dir / fname).is_file() else None
        items.append(
            SplitItem(
                id=clip_id,
                prompt=prompt,
                reference=ref,
                captions=(prompt,),
                meta={"title": row["title"].strip(), "view_link": row["view_link"].strip(), "prompt_source": source},
            )
        )
    if not items:
        raise SplitError(f"{csv_path}: no usable row has a bigsoundbank.com view_link ({len(excluded)} excluded)")
    notes = []
    if from_slug:
        more = f", ... ({len(from_slug) - 5} more)" if len(from_slug) > 5 else ""
        notes.append(
            f"{len(from_slug)} prompt(s) of {csv_path} taken from the view_link slug (description and title "
            f"empty): {', '.join(from_slug[:5])}{more}"
        )
    return Split(
        name="bigsoundbank",
        items=items,
        source=str(csv_path),
        prompt_rule=PROMPT_RULE,
        reference_dir=audio_dir,
        excluded=excluded,
        notes=notes,
    )
