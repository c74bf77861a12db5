"""`autocap eval`: caption a split and print Table-1 rows (paper section 4.1).

Every clip of the split is captioned from its audio (with its metadata when the split has
any); clips whose audio is missing or unreadable are counted as missing and listed, never
dropped silently. With `captions_out` the captions are written (atomically) right after
captioning, before the metrics run, so a machine without Java keeps them. Scores use all
references of a clip (AudioCaps: 5). The paper's row is printed beside ours for the AudioCaps
split (the paper scored the 876 clips it could download).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from genau_core.autocap.captioner import AutoCapCaptioner
from genau_core.autocap.data import load_records
from genau_core.autocap.metrics import FAMILIES, METRIC_LABELS, TABLE1_METRICS, CaptionScores, caption_metrics
from genau_core.files import atomic_path

PAPER_TABLE1 = {
    "audiocaps": (
        "AutoCap (paper Table 1: audio + text, AC+CL+WC)",
        876,
        {"bleu_1": 72.3, "bleu_4": 29.7, "rouge_l": 51.8, "meteor": 25.3, "cider": 83.2, "spice": 18.2, "spider": 50.7},
    )
}


@dataclass
class EvalResult:
    model: str
    identity: str
    split: str
    source: str
    n_evaluated: int
    missing: dict[str, str]  # clip id -> why it was not captioned
    captions: dict[str, str]
    references: dict[str, tuple[str, ...]]
    scores: CaptionScores
    settings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "identity": self.identity,
            "split": self.split,
            "source": self.source,
            "n_evaluated": self.n_evaluated,
            "n_missing": len(self.missing),
            "missing": self.missing,
            "settings": self.settings,
            **self.scores.as_dict(),
        }


def write_captions_csv(path: str | Path, captions: dict[str, str], references: dict[str, tuple[str, ...]]) -> Path:
    """id, caption, references (joined by ' | '); written to a temp file and renamed."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "caption", "references"])
        for k, c in captions.items():
            w.writerow([k, c, " | ".join(references.get(k, ()))])
    return path


def evaluate(
    captioner: AutoCapCaptioner,
    split: str,
    *,
    split_csv: str | Path | None = None,
    ref_dir: str | Path | None = None,
    batch_size: int = 8,
    limit: int | None = None,
    families: Sequence[str] = FAMILIES,
    use_metadata: bool = True,
    captions_out: str | Path | None = None,
) -> EvalResult:
    sp, records = load_records(split, split_csv=split_csv, ref_dir=ref_dir)
    missing = {r.id: "no audio file" for r in records if r.audio is None}
    present = [r for r in records if r.audio is not None]
    if limit is not None:
        present = present[:limit]
    if not present:
        raise ValueError(f"{sp.source}: none of the {len(records)} clips has audio; nothing to evaluate")
    meta = [r.metadata if use_metadata else {} for r in present]
    results = captioner.caption_files([r.audio for r in present], meta, batch_size=batch_size, on_error="skip")
    captions: dict[str, str] = {}
    for rec, res in zip(present, results):
        if res.caption is None:
            missing[rec.id] = res.error or "unreadable"
        else:
            captions[rec.id] = res.caption
    if not captions:
        raise ValueError(f"{sp.source}: no clip could be captioned ({len(missing)} missing)")
    refs = {r.id: tuple(r.captions) for r in present if r.id in captions}
    if captions_out is not None:  # before the metrics: they need Java, the captions do not
        write_captions_csv(captions_out, captions, refs)
    scores = caption_metrics(captions, refs, families=families)
    return EvalResult(
        model=captioner.name,
        identity=captioner.identity,
        split=sp.name,
        source=sp.source,
        n_evaluated=len(captions),
        missing=missing,
        captions=captions,
        references=refs,
        scores=scores,
        settings={"num_beams": captioner.generation.num_beams, "metadata": use_metadata, "limit": limit},
    )


def table1(results: Sequence[EvalResult], *, paper: bool = True) -> str:
    """Markdown rows in the layout of Table 1 (scores x100), then the reasons of missing metrics."""
    head = ["Model", "Split", "n eval / missing"] + [METRIC_LABELS[m] for m in TABLE1_METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes: dict[str, str] = {}
    for r in results:
        cells = []
        for m in TABLE1_METRICS:
            if m in r.scores.scores:
                cells.append(f"{100 * r.scores.scores[m]:.1f}")
            elif m in r.scores.missing:
                cells.append("missing")
                notes[METRIC_LABELS[m]] = r.scores.missing[m]
            else:
                cells.append("-")
        label = f"{r.model} ({r.identity[:19]}, beam {r.settings.get('num_beams')})"
        lines.append("| " + " | ".join([label, r.split, f"{r.n_evaluated} / {len(r.missing)}", *cells]) + " |")
    if paper:
        for split in dict.fromkeys(r.split for r in results):
            if split in PAPER_TABLE1:
                name, n, vals = PAPER_TABLE1[split]
                lines.append(
                    "| " + " | ".join([name, split, f"{n} / -", *(f"{vals[m]:.1f}" for m in TABLE1_METRICS)]) + " |"
                )
    for metric, why in notes.items():
        lines.append(f"\n{metric} missing: {why}")
    return "\n".join(lines)
