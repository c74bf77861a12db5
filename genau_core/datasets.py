"""Named caption data (splits) for the models' trainers and evaluators, resolved by the layer that owns them.

genau_core trains and evaluates on clips with captions (AutoCap's `train` / `eval`), but the split formats
(`demo`, `audiocaps`, `bigsoundbank`, `.csv` / `.jsonl` manifests) belong to bench (`bench.splits`). So that
genau_core imports nothing above it, the resolver is found through the entry-point group
`genau_core.datasets`: genau-bench's own pyproject registers `bench = "bench.splits:load_split"`. A resolver
is called as `resolver(source, csv=..., ref_dir=...)` and returns a split: `.name`, `.source` and `.items`,
each item with `.id`, `.prompt`, `.reference` (a path or None) and `.captions`.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, Sequence

from genau_core.errors import UsageError

GROUP = "genau_core.datasets"


class CaptionItem(Protocol):
    id: str
    prompt: str
    reference: Path | None
    captions: Sequence[str]


class CaptionSplit(Protocol):
    name: str
    source: str
    items: Sequence[CaptionItem]


def load_dataset(source: str, *, csv: str | Path | None = None, ref_dir: str | Path | None = None) -> CaptionSplit:
    """The split named `source` (a split name or a manifest path) from the installed resolver."""
    found = sorted(entry_points(group=GROUP), key=lambda ep: ep.name)
    if not found:
        raise UsageError(
            f"{source}: no dataset resolver is installed (entry-point group {GROUP!r}); "
            "install genau-bench (`pip install -e .`), which registers bench.splits"
        )
    return found[0].load()(source, csv=csv, ref_dir=ref_dir)
