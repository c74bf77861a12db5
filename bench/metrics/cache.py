"""Embedding cache: one small .npz per (file content, backbone, checkpoint, sample rate, resampler).

Keyed by the file's *content* hash (never its path or folder, unlike audioldm_eval's
folder-keyed cache), so renaming or moving clips reuses embeddings, and changing a clip,
a checkpoint, a rate or a resampler recomputes exactly what changed. Text embeddings are
keyed by the text, the checkpoint and the tokenizer's identity (`variant` "text-tok<sha256>",
see `tokenizer_identity`): another tokenizer never reads them.

Entries are written atomically; the temporaries of a killed writer (`.<key>.<pid>.tmp.npz`)
are removed the next time a process writes into the same folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from bench.checkpoints import cache_root
from genau_core.files import atomic_path, file_sha256, remove_stale_temporaries

content_hash = file_sha256  # a clip's cache key part: the sha256 of its file's bytes


class EmbeddingCache:
    def __init__(self, root: str | Path | None = None, *, enabled: bool = True):
        self.root = Path(root) if root is not None else cache_root() / "embeddings"
        self.enabled = enabled
        self.hits = 0
        self.misses = 0
        self._cleaned: set[Path] = set()  # folders already rid of dead writers' temporaries

    def _path(
        self, digest: str, backbone: str, checkpoint_id: str, sample_rate: int, resampler: str, variant: str
    ) -> Path:
        ckpt = hashlib.sha256(checkpoint_id.encode()).hexdigest()[:16]
        leaf = f"{sample_rate}-{resampler}" + (f"-{variant}" if variant else "")
        return self.root / backbone / ckpt / leaf / digest[:2] / f"{digest}.npz"

    def get(
        self, digest, backbone, checkpoint_id, sample_rate, resampler, variant: str = ""
    ) -> dict[str, np.ndarray] | None:
        if not self.enabled:
            return None
        p = self._path(digest, backbone, checkpoint_id, sample_rate, resampler, variant)
        if not p.exists():
            self.misses += 1
            return None
        try:
            with np.load(p) as z:
                out = {k: z[k] for k in z.files}
        except Exception:  # a truncated entry (should not happen: writes are atomic) is recomputed
            self.misses += 1
            return None
        self.hits += 1
        return out

    def put(
        self, digest, backbone, checkpoint_id, sample_rate, resampler, outputs: dict[str, np.ndarray], variant: str = ""
    ) -> None:
        if not self.enabled:
            return
        p = self._path(digest, backbone, checkpoint_id, sample_rate, resampler, variant)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.parent not in self._cleaned:
            remove_stale_temporaries(p.parent)
            self._cleaned.add(p.parent)
        with atomic_path(p, suffix=".npz", clean=False) as tmp:
            np.savez(tmp, **outputs)
