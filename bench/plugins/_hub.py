"""Locating diffusers-format model folders: a local path, or the Hugging Face cache / hub.

Offline, only a local folder or an already-cached snapshot works; the error says which
hub id to download and where to put it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

from bench.checkpoints import sha256_file
from bench.errors import MissingFileError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")


def cached_snapshot(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None


def model_for_repo(repo_id: str) -> str:
    """The `bench` model name whose plugin loads `repo_id` (for hints); "MODEL" when none does."""
    from bench.plugins.registry import BUILTIN_PLUGINS, get_plugin_class

    for name in BUILTIN_PLUGINS:
        if name.endswith("-tiny"):
            continue
        try:
            cls = get_plugin_class(name)
        except Exception:  # a plugin whose framework is not installed cannot be the one asking
            continue
        if getattr(cls, "repo_id", None) == repo_id:
            return name
    return "MODEL"


def _looks_like_path(text: str) -> bool:
    """A hub id is `owner/name`; anything with more parts, a leading ./ ~ /, or a backslash is a path."""
    return text.startswith((".", "~", "/")) or "\\" in text or text.count("/") != 1


def resolve_model_dir(checkpoint: str | None, repo_id: str, model: str | None = None) -> tuple[Path | None, str]:
    """(folder or None, human-readable status). `checkpoint` may be a folder or a hub id.

    When nothing usable is found, the status ends with the flag that fixes it,
    `--model-checkpoint <model>=PATH`, for the model of this plugin."""
    model = model or model_for_repo(repo_id)
    fix = f"pass the downloaded folder with --model-checkpoint {model}=PATH"
    if checkpoint and Path(checkpoint).expanduser().is_dir():
        folder = Path(checkpoint).expanduser()
        if not any(p.is_file() and p.suffix in WEIGHT_SUFFIXES for p in folder.rglob("*")):
            return None, (
                f"{checkpoint}: no weight files ({', '.join(WEIGHT_SUFFIXES)}) in this folder; "
                f"it should hold the files of hf:{repo_id}; {fix}"
            )
        return folder, f"local folder {checkpoint}"
    if checkpoint and _looks_like_path(checkpoint):
        return None, f"{checkpoint}: no such folder; {fix}"
    target = checkpoint or repo_id
    snap = cached_snapshot(target)
    if snap is not None:
        return snap, f"hub cache {target} ({snap.name[:12]})"
    return None, (
        f"{target} not found locally: download it (`huggingface-cli download {target}` when online), then {fix}"
    )


def files_identity(folder: Path, files: Sequence[Path]) -> str:
    """ "sha256:" + sha256 over the lines "<path relative to folder>:<file sha256>" of `files`, in the given order:
    the checkpoint identity of a model stored as several files (every folder-of-files plugin uses this one)."""
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.relative_to(folder).as_posix()}:{sha256_file(p)}\n".encode())
    return "sha256:" + h.hexdigest()


def folder_identity(folder: Path) -> str:
    """`files_identity` of every weight file in the folder, sorted by path."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise MissingFileError(f"{folder}: no weight files ({', '.join(WEIGHT_SUFFIXES)}) found")
    return files_identity(folder, files)
