"""A split: the prompts to generate, each with its reference clip (if the user has it)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path


class SplitError(ValueError):
    """A split's files are missing or malformed; the message names the file, line and what to do."""


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
        }


def find_reference(folder: Path | None, candidates: list[str], extensions=(".wav", ".flac")) -> Path | None:
    """First existing file among `candidates` (stems) with any of `extensions` in `folder`."""
    if folder is None:
        return None
    for stem in candidates:
        for ext in extensions:
            p = folder / f"{stem}{ext}"
            if p.is_file():
                return p
    return None
