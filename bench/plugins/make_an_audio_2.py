"""Make-An-Audio 2: structured captions (issue 7, item 3).

Make-An-Audio 2 conditions on two texts per prompt: the natural caption (to its CLAP text
encoder) and a *structured* caption (to its T5 encoder), e.g.

    <rocket flying by& start>@<loud explosion& mid>@<fire crackling& mid>

events joined by `@`, each `<description& position>` with position one of all / start / mid /
end. The official AudioCaps evaluation (`scripts/txt2audio_for_2cap.py` with
`ldm.data.tsvdataset.TSVDatasetStruct`) reads them from `audiocaps_test_struct.tsv`
(tab-separated; columns `name` = "Y"+youtube_id, `ori_cap` = the AudioCaps caption, `caption`
= the structured caption; 4500 rows = 900 clips x 5 captions). Free prompts are structured by
ChatGPT in the official demo, which we cannot call.

Fallback, documented and deterministic: the caption as one event spanning the whole clip,
`<{caption}& all>`. This is exactly what the official training code feeds for captions that
have no structured version (`ldm/data/joinaudiodataset_struct_sample_anylen.py`), so it is a
form the model has seen. Every prompt records which was used (`source`): "struct-file" (an
exact match), "struct-file:first-of-N" (the caption text appears with N different structured
versions; the first in file order is taken) or "fallback".

This module holds the caption handling the Make-An-Audio 2 plugin uses; the network itself
is not implemented yet (see the issue notes).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

POSITIONS = ("all", "start", "mid", "end")
_EVENT = re.compile(r"<([^<>&@]+)&\s*(all|start|mid|end)>")
STRUCT_TSV_COLUMNS = ("name", "ori_cap", "caption")
FALLBACK_RULE = "<{caption}& all> (the official training fallback for captions without a structured version)"


@dataclass(frozen=True)
class StructuredCaption:
    events: tuple[tuple[str, str], ...]  # (description, position)

    def __str__(self) -> str:
        return "@".join(f"<{text}& {pos}>" for text, pos in self.events)


def parse_struct_caption(text: str) -> StructuredCaption:
    """Parse `<event& position>@<event& position>...`; raises ValueError naming what is wrong."""
    s = text.strip()
    if not s:
        raise ValueError("empty structured caption")
    events = []
    for part in s.split("@"):
        m = _EVENT.fullmatch(part.strip())
        if m is None:
            raise ValueError(f"not an event '<description& position>' with position in {POSITIONS}: {part!r} in {text!r}")
        description = m.group(1).strip()
        if not description:
            raise ValueError(f"event without a description in {text!r}")
        events.append((description, m.group(2)))
    return StructuredCaption(tuple(events))


def fallback_struct_caption(caption: str) -> str:
    """The caption as one event over the whole clip: `<caption& all>` (whitespace collapsed)."""
    text = " ".join(caption.split())
    for ch in "<>&@":
        text = text.replace(ch, " ")
    text = " ".join(text.split())
    if not text:
        raise ValueError("cannot structure an empty caption")
    return f"<{text}& all>"


def _key(caption: str) -> str:
    return " ".join(caption.split()).casefold()


@dataclass
class StructCaptionTable:
    """Structured captions by natural caption (and by clip), from an `audiocaps_test_struct.tsv`-format file."""

    source: str
    by_caption: dict[str, list[str]] = field(default_factory=dict)  # normalised caption -> distinct structs, file order
    by_clip: dict[tuple[str, str], str] = field(default_factory=dict)  # (youtube_id, normalised caption) -> struct

    @classmethod
    def from_tsv(cls, path: str | Path) -> "StructCaptionTable":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: structured-caption file not found (format of Make-An-Audio 2's audiocaps_test_struct.tsv)")
        table = cls(source=str(path))
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            missing = [c for c in STRUCT_TSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; need {', '.join(STRUCT_TSV_COLUMNS)} (tab-separated)")
            for line, row in enumerate(reader, start=2):
                caption, struct = row["ori_cap"] or "", row["caption"] or ""
                if not caption.strip():
                    raise ValueError(f"{path}:{line}: empty ori_cap")
                try:
                    struct = str(parse_struct_caption(struct))
                except ValueError as e:
                    raise ValueError(f"{path}:{line}: {e}") from None
                key = _key(caption)
                variants = table.by_caption.setdefault(key, [])
                if struct not in variants:
                    variants.append(struct)
                name = (row["name"] or "").strip()
                youtube_id = name[1:] if name.startswith("Y") and len(name) == 12 else name
                table.by_clip.setdefault((youtube_id, key), struct)
        if not table.by_caption:
            raise ValueError(f"{path}: no rows")
        return table

    def __len__(self) -> int:
        return len(self.by_caption)

    def lookup(self, caption: str, youtube_id: str | None = None) -> tuple[str, str]:
        """(structured caption, source) for one prompt; falls back deterministically."""
        key = _key(caption)
        if youtube_id is not None and (youtube_id, key) in self.by_clip:
            return self.by_clip[(youtube_id, key)], "struct-file"
        variants = self.by_caption.get(key)
        if not variants:
            return fallback_struct_caption(caption), "fallback"
        if len(variants) == 1:
            return variants[0], "struct-file"
        return variants[0], f"struct-file:first-of-{len(variants)}"


def structure_prompts(
    prompts: Sequence[str], table: StructCaptionTable | None, youtube_ids: Sequence[str | None] | None = None
) -> list[dict]:
    """Per prompt: {'prompt', 'struct_caption', 'source'} (the record the plugin writes to its manifest)."""
    ids = list(youtube_ids) if youtube_ids is not None else [None] * len(prompts)
    if len(ids) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(ids)} clip ids")
    out = []
    for prompt, yt in zip(prompts, ids):
        if table is None:
            struct, source = fallback_struct_caption(prompt), "fallback"
        else:
            struct, source = table.lookup(prompt, yt)
        out.append({"prompt": prompt, "struct_caption": struct, "source": source})
    return out


def summarise_sources(records: Sequence[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        kind = "struct-file" if r["source"].startswith("struct-file") else r["source"]
        counts[kind] = counts.get(kind, 0) + 1
    return counts
