"""Where generated clips and their records live.

    <root>/<split>/<model>/<settings-hash>/manifest.json
                                          /clips/<clip-id>.wav
                                          /results/<scoring-key>.json

The settings hash covers everything that changes the audio (model, checkpoint identity,
seed, steps, guidance, duration, batch size, protocol). Every file is written atomically
(temp file + rename), so a run killed at any point leaves only complete files, and a rerun
of the same command continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path


class RunStoreError(ValueError):
    pass


def read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RunStoreError(f"{path}: cannot read ({e.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RunStoreError(f"{path}:{e.lineno}:{e.colno}: malformed JSON ({e.msg}); fix or delete the file") from None
    if not isinstance(data, dict):
        raise RunStoreError(f"{path}:1: expected a JSON object, got {type(data).__name__}")
    return data


def atomic_write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _safe(name: str) -> str:
    if not name or "/" in name or name.startswith("."):
        raise RunStoreError(f"{name!r} cannot be used as a folder name")
    return name


@dataclass
class RunDir:
    path: Path

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def clips_dir(self) -> Path:
        return self.path / "clips"

    @property
    def results_dir(self) -> Path:
        return self.path / "results"

    def clip_path(self, clip_id: str) -> Path:
        return self.clips_dir / f"{clip_id}.wav"

    def finished_clips(self) -> set[str]:
        if not self.clips_dir.is_dir():
            return set()
        return {p.stem for p in self.clips_dir.glob("*.wav")}

    def manifest(self) -> dict:
        return read_json(self.manifest_path)

    def write_manifest(self, manifest: dict) -> None:
        """Create or extend the manifest; a clip's recorded prompt/seed is never overwritten."""
        if self.manifest_path.exists():
            old = self.manifest()
            if old.get("settings_hash") != manifest["settings_hash"]:
                raise RunStoreError(
                    f"{self.manifest_path}: settings hash {old.get('settings_hash')} does not match "
                    f"{manifest['settings_hash']}; the folder belongs to another configuration"
                )
            clips = dict(old.get("clips", {}))
            for cid, rec in manifest["clips"].items():
                if cid in clips and clips[cid] != rec:
                    raise RunStoreError(
                        f"{self.manifest_path}: clip {cid!r} was generated with {clips[cid]} but the split now gives "
                        f"{rec}; use another --out folder or remove the old run"
                    )
                clips[cid] = rec
            # keys written after generation (parameter_count, generation) survive a rerun
            manifest = {**old, **manifest, "clips": clips, "created": old.get("created", manifest.get("created"))}
        atomic_write_json(self.manifest_path, manifest)

    def results(self) -> list[dict]:
        if not self.results_dir.is_dir():
            return []
        return [read_json(p) for p in sorted(self.results_dir.glob("*.json"))]

    def write_result(self, key: str, record: dict) -> Path:
        path = self.results_dir / f"{key}.json"
        atomic_write_json(path, record)
        return path


class RunStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def run_dir(self, split: str, model: str, settings_digest: str) -> RunDir:
        return RunDir(self.root / _safe(split) / _safe(model) / settings_digest)

    def run_dirs(self, split: str) -> list[RunDir]:
        base = self.root / _safe(split)
        if not base.is_dir():
            return []
        return [RunDir(p.parent) for p in sorted(base.glob("*/*/manifest.json"))]
