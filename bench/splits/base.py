"""A split: the prompts to generate, each with its reference clip (if the user has it)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from genau_core.errors import SplitError  # defined at the bottom: genau_core.tables raises it too


@dataclass(frozen=True)
class SplitItem:
    id: str  # also the generated clip's file stem
    prompt: str  # the one caption used for generation (rule in Split.prompt_rule)
    reference: Path | None  # reference audio, None when missing
    captions: tuple[str, ...] = ()  # all reference captions (AudioCaps has 5)
    meta: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Split:
    name: str
    items: list[SplitItem]
    source: str  # where the prompt list came from
    prompt_rule: str  # how the prompt per clip was chosen
    reference_dir: Path | None = None
    # Rows of the source left out, each {"line", "id", "reason"}: counted and named, never silent.
    excluded: list[dict] = field(default_factory=list)
    # One-line facts about how the split was read (e.g. prompts taken from a fallback), for the console.
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for it in self.items:
            if it.id in seen:
                raise SplitError(f"split {self.name!r}: duplicate clip id {it.id!r} in {self.source}")
            seen.add(it.id)

    @property
    def missing_references(self) -> list[str]:
        return [it.id for it in self.items if it.reference is None]

    @property
    def n_with_reference(self) -> int:
        return len(self.items) - len(self.missing_references)

    def prompt_list_hash(self) -> str:
        """sha256 of the ordered (id, prompt) list: pins exactly what was generated."""
        payload = json.dumps([[it.id, it.prompt] for it in self.items], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def reference_list_hash(self) -> str:
        payload = json.dumps(sorted(it.id for it in self.items if it.reference is not None))
        return hashlib.sha256(payload.encode()).hexdigest()

    def summary(self) -> dict:
        return {
            "split": self.name,
            "n_prompts": len(self.items),
            "n_with_reference": self.n_with_reference,
            "n_missing_reference": len(self.missing_references),
            "source": self.source,
            "prompt_rule": self.prompt_rule,
            "reference_dir": str(self.reference_dir) if self.reference_dir else None,
            "prompt_list_sha256": self.prompt_list_hash(),
            "n_excluded": len(self.excluded),
            "excluded": self.excluded,
            "notes": self.notes,
        }

    def console_notes(self, shown: int = 5) -> list[str]:
        """Lines for the console: the notes, and the excluded rows (first ids and the count)."""
        lines = list(self.notes)
        if self.excluded:
            first = ", ".join(f"{e['id']} (line {e['line']})" for e in self.excluded[:shown])
            more = f", ... ({len(self.excluded) - shown} more)" if len(self.excluded) > shown else ""
            reasons = sorted({e["reason"] for e in self.excluded})
            lines.append(f"{len(self.excluded)} row(s) of {self.source} excluded ({'; '.join(reasons)}): {first}{more}")
        return lines


def clip_set_identity(ids: Iterable[str]) -> dict:
    """Which clips a number covers: sha256 of the sorted clip ids (a JSON list) and their count.

    Two records with the same identity were computed over exactly the same clips; a
    `--limit 2` run and the full run never share one."""
    ids = sorted(set(ids))
    return {"sha256": hashlib.sha256(json.dumps(ids, ensure_ascii=False).encode()).hexdigest(), "n": len(ids)}


def content_set_identity(digests: dict[str, str]) -> dict:
    """Which files a number used: sha256 of the sorted (clip id, file content sha256) pairs, and their
    count. Replacing one reference file by another with the same name changes it."""
    pairs = sorted([cid, d] for cid, d in digests.items())
    return {"sha256": hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest(), "n": len(pairs)}


def find_reference(folder: Path | None, candidates: list[str], extensions=(".wav", ".flac")) -> Path | None:
    """The one existing file among `candidates` (stems) with any of `extensions` in `folder`, or None.
    Two existing files for one clip (`x.wav` and `x.flac`, or `x.wav` and `Yx.wav`) are a SplitError
    naming both: taking either silently would change the score."""
    if folder is None:
        return None
    paths = (folder / f"{stem}{ext}" for stem in candidates for ext in extensions)
    found = list(dict.fromkeys(p for p in paths if p.is_file()))
    if len(found) > 1:
        raise SplitError(
            f"{folder}: {' and '.join(p.name for p in found)} are both the reference of one clip "
            f"({candidates[0]!r}); keep one file per clip (move or rename the others)"
        )
    return found[0] if found else None
