"""Locating diffusers-format model folders: a local path, or the Hugging Face cache / hub.

Offline, only a local folder or an already-cached snapshot works; the error says which
hub id to download and where to put it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from bench.checkpoints import sha256_file

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")


def cached_snapshot(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None


def resolve_model_dir(checkpoint: str | None, repo_id: str, model: str = "MODEL") -> tuple[Path | None, str]:
    """(folder or None, human-readable status). `checkpoint` may be a folder or a hub id."""
    if checkpoint and Path(checkpoint).expanduser().is_dir():
        return Path(checkpoint).expanduser(), f"local folder {checkpoint}"
    target = checkpoint or repo_id
    snap = cached_snapshot(target)
    if snap is not None:
        return snap, f"hub cache {target} ({snap.name[:12]})"
    return None, (
        f"{target} not found locally: download the diffusers folder (e.g. `huggingface-cli download {target}` "
        f"when online) or pass its local path with --checkpoint {target.split('/')[-1]}=PATH"
    )


def folder_identity(folder: Path) -> str:
    """sha256 over the sorted (relative path, file sha256) of every weight file in the folder."""
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder}: no weight files ({', '.join(WEIGHT_SUFFIXES)}) found")
    for p in files:
        h.update(f"{p.relative_to(folder).as_posix()}:{sha256_file(p)}\n".encode())
    return "sha256:" + h.hexdigest()
