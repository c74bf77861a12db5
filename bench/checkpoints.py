"""Naming checkpoint weights honestly: "official" (a published sha256), "checkpoint" (a file whose hash is
not listed), or built in-process. Finding and hashing files is `genau_core.checkpoints` (re-exported here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

# Discovery and hashing live at the bottom layer; CheckpointNotFound is a MissingFileError (so a FileNotFoundError).
from genau_core.checkpoints import cache_root, checkpoint_dirs, find_checkpoint, sha256_file, sha256_files  # noqa: F401
from genau_core.errors import CheckpointNotFound  # noqa: F401

# -- naming weights honestly ------------------------------------------------------------------
# "official": the file's sha256 is listed in bench/checkpoints_known.py with where it is published;
# "checkpoint": loaded from a file whose hash is not listed (unverified); "random" / "tiny-trained":
# built in-process. Records written before this distinction said "official" for any file.
VERIFIED = "official"
UNVERIFIED = "checkpoint"


def published_hash(sha256: str):
    """The PublishedHash entry whose sha256 equals `sha256` ("sha256:" prefix allowed), or None."""
    from bench.checkpoints_known import PUBLISHED_HASHES

    digest = sha256.removeprefix("sha256:").lower()
    return next((p for p in PUBLISHED_HASHES if p.sha256.lower() == digest), None)


def file_weights_label(sha256: str) -> str:
    """ "official" when the file's hash is a published one, else "checkpoint" (unverified)."""
    return VERIFIED if published_hash(sha256) is not None else UNVERIFIED


def file_provenance(path: str | Path, sha256: str) -> dict:
    """What a record says about a checkpoint file: its name, sha256 and whether the hash is published."""
    known = published_hash(sha256)
    return {
        "file": Path(path).name,
        "sha256": sha256.removeprefix("sha256:"),
        "published_hash_source": known.source if known else None,
    }


def model_weights_label(kind: str, checkpoint_identity: str) -> str:
    """A model's weights for records: a plugin's "official" (its real checkpoint, as opposed to an
    in-process twin) becomes "official" only when its identity is one file whose sha256 is published."""
    if kind != "official":
        return kind
    if checkpoint_identity.startswith("sha256:"):
        return file_weights_label(checkpoint_identity)
    return UNVERIFIED


REAL_WEIGHTS = (VERIFIED, UNVERIFIED)  # loaded from checkpoint files (verified or not), as opposed to in-process


def combined_weights_label(kinds: Iterable[str]) -> str:
    """One label for several networks: "official" when every file is verified, "checkpoint" when all
    are files but not all verified, else the kinds joined ("random", "checkpoint+random", ...)."""
    kinds = set(kinds)
    if not kinds:
        return "unavailable"
    if kinds == {VERIFIED}:
        return VERIFIED
    if kinds <= set(REAL_WEIGHTS):
        return UNVERIFIED
    return "+".join(sorted(kinds))


def describe_weights(model_weights: str, backbone_weights: str) -> str:
    """What the console and the leaderboard say about a record's weights."""
    if model_weights == VERIFIED and backbone_weights == VERIFIED:
        return "official weights (sha256 of every file matches a published hash)"
    if model_weights in REAL_WEIGHTS and backbone_weights in REAL_WEIGHTS:
        return "checkpoint files (sha256 recorded; not matched against published hashes)"
    return f"NOT COMPARABLE: model weights {model_weights}, backbone weights {backbone_weights}"
