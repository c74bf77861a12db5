"""Where a study's clips and prompts come from.

A system is given as NAME=DIR where DIR is one of
- a plain folder of clips named ``<prompt_id>.wav``;
- a bench run directory ``<root>/<split>/<model>/<settings-hash>`` holding ``manifest.json``
  and ``clips/<clip-id>.wav``;
- a model directory ``<root>/<split>/<model>`` with exactly one settings-hash run under it.
Prompts come from a CSV with columns ``id,caption`` or AudioCaps' ``audiocap_id,caption``;
or from a bench split (``bench.splits.load_split``); or, when every system is a bench run, from
the runs' manifests (``clips: {id: {prompt: ...}}``), which must agree.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from .audio import file_sha256

CLIP_SUFFIX = ".wav"
ID_COLUMNS = ("id", "audiocap_id")


class SourceError(ValueError):
    """A bad study input; the message names the file or folder and the reason."""


@dataclass(frozen=True)
class SystemSource:
    name: str
    given_dir: Path
    clips_dir: Path
    manifest_sha256: str | None  # set when the folder is a bench run directory
    clips: dict[str, Path]  # prompt id -> clip path
    manifest: Path | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "given_dir": str(self.given_dir),
            "clips_dir": str(self.clips_dir),
            "manifest_sha256": self.manifest_sha256,
            "n_clips": len(self.clips),
        }


def _is_run_dir(d: Path) -> bool:
    return (d / "manifest.json").is_file() and (d / "clips").is_dir()


def _list_clips(d: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(d.iterdir()) if p.is_file() and p.suffix.lower() == CLIP_SUFFIX}


def resolve_system(name: str, directory: str | Path) -> SystemSource:
    d = Path(directory).resolve()
    if not d.is_dir():
        raise SourceError(f"{d}: system {name!r}: not a directory")
    manifest: Path | None = None
    if _is_run_dir(d):
        manifest, clips_dir = d / "manifest.json", d / "clips"
    else:
        clips = _list_clips(d)
        runs = sorted(p for p in d.iterdir() if p.is_dir() and _is_run_dir(p))
        if clips:
            clips_dir = d
        elif len(runs) == 1:
            manifest, clips_dir = runs[0] / "manifest.json", runs[0] / "clips"
        elif len(runs) > 1:
            raise SourceError(
                f"{d}: system {name!r}: {len(runs)} runs with different settings under this folder "
                f"({', '.join(p.name for p in runs)}); name one of them"
            )
        else:
            raise SourceError(f"{d}: system {name!r}: no {CLIP_SUFFIX} clips and no bench run (manifest.json + clips/)")
    clips = _list_clips(clips_dir)
    if not clips:
        raise SourceError(f"{clips_dir}: system {name!r}: no {CLIP_SUFFIX} clips")
    return SystemSource(name, d, clips_dir, file_sha256(manifest) if manifest else None, clips, manifest)


def parse_system_arg(arg: str) -> tuple[str, str]:
    name, sep, directory = arg.partition("=")
    if not sep or not name.strip() or not directory.strip():
        raise SourceError(f"--system {arg!r}: expected NAME=DIR")
    return name.strip(), directory.strip()


@dataclass(frozen=True)
class Prompt:
    id: str
    caption: str


def read_prompts(path: str | Path) -> list[Prompt]:
    """Prompts in file order; duplicate ids, empty captions or missing columns are errors."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            id_col = next((c for c in ID_COLUMNS if c in fields), None)
            if id_col is None or "caption" not in fields:
                raise SourceError(
                    f"{path}: prompts CSV needs columns 'id,caption' or 'audiocap_id,caption'; found {fields}"
                )
            out: list[Prompt] = []
            seen: set[str] = set()
            for line, row in enumerate(reader, start=2):
                pid, cap = (row.get(id_col) or "").strip(), (row.get("caption") or "").strip()
                if not pid:
                    raise SourceError(f"{path}:{line}: empty {id_col}")
                if not cap:
                    raise SourceError(f"{path}:{line}: empty caption for {id_col} {pid!r}")
                if pid in seen:
                    raise SourceError(f"{path}:{line}: duplicate {id_col} {pid!r}")
                seen.add(pid)
                out.append(Prompt(pid, cap))
    except FileNotFoundError:
        raise SourceError(f"{path}: prompts CSV not found") from None
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: not UTF-8 text ({e})") from None
    if not out:
        raise SourceError(f"{path}: no prompts")
    return out


def prompts_from_manifests(systems: list[SystemSource]) -> list[Prompt]:
    """The prompts recorded in the systems' bench run manifests; they must agree on every id."""
    if not systems or any(s.manifest is None for s in systems):
        plain = [s.name for s in systems if s.manifest is None]
        raise SourceError(
            f"no prompts given: pass --prompts CSV or --split NAME (systems {plain} are plain folders without a "
            "manifest)"
        )
    merged: dict[str, tuple[str, Path]] = {}
    for s in systems:
        assert s.manifest is not None
        try:
            clips = json.loads(s.manifest.read_text(encoding="utf-8"))["clips"]
            pairs = [(str(cid), str(v["prompt"]).strip()) for cid, v in clips.items()]
        except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise SourceError(
                f"{s.manifest}: no prompts in this manifest (expected clips: {{id: {{prompt}}}}; {type(e).__name__})"
            ) from None
        for cid, prompt in pairs:
            if not prompt:
                raise SourceError(f"{s.manifest}: empty prompt for clip {cid!r}")
            if cid in merged and merged[cid][0] != prompt:
                raise SourceError(
                    f"{s.manifest}: prompt for clip {cid!r} differs from {merged[cid][1]} "
                    f"({prompt!r} vs {merged[cid][0]!r}); the systems were not run on the same split"
                )
            merged.setdefault(cid, (prompt, s.manifest))
    return [Prompt(cid, prompt) for cid, (prompt, _) in merged.items()]


def prompts_from_split(name: str) -> tuple[list[Prompt], dict[str, Path], str]:
    """(prompts, reference clip per id, description) from a bench split such as ``demo``."""
    try:
        from bench.splits import load_split
    except ImportError as e:
        raise SourceError(f"--split {name}: the bench package is not importable ({e})") from None
    try:
        split = load_split(name)
    except ValueError as e:  # bench.splits.SplitError is a ValueError
        raise SourceError(f"--split {name}: {e}") from None
    prompts = [Prompt(it.id, it.prompt) for it in split.items]
    refs = {it.id: Path(it.reference) for it in split.items if it.reference is not None}
    return prompts, refs, f"bench split {split.name!r} ({split.source}; {split.prompt_rule})"
