"""Where generated clips and their records live.

    <root>/<split>/<model>/<settings-hash>/manifest.json
                                          /clips/<clip-id>.wav
                                          /results/<scoring-key>.json

The settings hash covers everything that changes the audio (model, checkpoint identity,
seed, steps, guidance, duration, batch size, protocol). Every file is written atomically
(temp file + rename), so a run killed at any point leaves only complete files, and a rerun
of the same command continues where it stopped (and removes the dead writer's temporaries).

JSON files are strict JSON (RFC 8259: `JSON.parse` and jq read them): a NaN or infinite
number is written as `null`. In a results record a null metric `value` comes with its
`reason`, a null `ci_low` / `ci_high` with its `ci_reason`; `read_record` turns them back
into NaN.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from bench.errors import GenauBenchError
from genau_core.files import atomic_write_json, json_safe  # noqa: F401 (re-exported for bench callers)

METRIC_FLOATS = ("value", "ci_low", "ci_high")  # the record fields that are NaN in memory when null on disk


class RunStoreError(GenauBenchError, ValueError):
    """A run folder, manifest or record that cannot be used; the message names the file and what to do."""


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


def restore_nan(record: dict) -> dict:
    """A results record as computed: null metric values / interval bounds back to NaN (in place)."""
    for m in record.get("metrics", []) or []:
        if isinstance(m, dict):
            for k in METRIC_FLOATS:
                if k in m and m[k] is None:
                    m[k] = math.nan
    return record


def read_record(path: Path) -> dict:
    """A results record (`bench run` / `bench score --out`) with its null metric numbers as NaN."""
    return restore_nan(read_json(Path(path)))


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
        return [read_record(p) for p in sorted(self.results_dir.glob("*.json"))]

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
