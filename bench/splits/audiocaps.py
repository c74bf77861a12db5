"""AudioCaps test split: the official `test.csv` plus the user's folder of reference clips.

test.csv columns: audiocap_id,youtube_id,start_time,caption (975 clips x 5 captions).
Clip id = youtube_id. Prompt rule: the caption of the clip's row with the smallest
audiocap_id (independent of row order); all 5 captions are kept for caption metrics.
A reference clip is looked up in the audio folder as <youtube_id>, Y<youtube_id>,
<youtube_id>_<start_time> or <audiocap_id> (.wav / .flac); clips without one are counted
as missing, never dropped silently.
"""

from __future__ import annotations

from pathlib import Path

from bench.splits.base import Split, SplitError, SplitItem, find_reference
from genau_core.tables import read_csv_rows, require_utf8

COLUMNS = ["audiocap_id", "youtube_id", "start_time", "caption"]
GET_CSV = "the official AudioCaps repository (dataset/test.csv)"
PROMPT_RULE = "caption of the row with the smallest audiocap_id per youtube_id"


def load_audiocaps(csv_path: Path, audio_dir: Path | None) -> Split:
    if not csv_path.is_file():
        raise SplitError(
            f"AudioCaps test.csv not found at {csv_path}. Get it from {GET_CSV} and put it there, "
            f"or pass --split-csv PATH (and --ref-dir DIR for the reference clips)."
        )
    clips: dict[str, list[tuple[int, str, str, int]]] = {}
    require_utf8(csv_path)  # a stray byte is one line naming its line and column, not a decoding traceback
    for line, row in read_csv_rows(csv_path, COLUMNS):
        try:
            cap_id = int(row["audiocap_id"])
        except ValueError:
            raise SplitError(f"{csv_path}:{line}: audiocap_id {row['audiocap_id']!r} is not an integer") from None
        yt, caption = row["youtube_id"].strip(), " ".join(row["caption"].split())
        if not yt:
            raise SplitError(f"{csv_path}:{line}: empty youtube_id")
        if not caption:
            raise SplitError(f"{csv_path}:{line}: empty caption")
        try:
            start = int(float(row["start_time"]))
        except ValueError:
            raise SplitError(f"{csv_path}:{line}: start_time {row['start_time']!r} is not a number") from None
        clips.setdefault(yt, []).append((cap_id, caption, row["start_time"].strip(), start))
    if not clips:
        raise SplitError(f"{csv_path}: no rows")
    audio_dir = audio_dir if audio_dir is not None and audio_dir.is_dir() else None
    items = []
    for yt, rows in clips.items():
        rows.sort()
        cap_ids = [str(r[0]) for r in rows]
        ref = find_reference(audio_dir, [yt, f"Y{yt}", f"{yt}_{rows[0][3]}", f"{yt}_{rows[0][2]}", *cap_ids])
        items.append(
            SplitItem(
                id=yt,
                prompt=rows[0][1],
                reference=ref,
                captions=tuple(r[1] for r in rows),
                meta={"audiocap_ids": cap_ids, "start_time": rows[0][2]},
            )
        )
    return Split(name="audiocaps", items=items, source=str(csv_path), prompt_rule=PROMPT_RULE, reference_dir=audio_dir)
