"""The speech/music filter measured on labelled captions (`data/filter_eval.csv`).

    python -m genau_core.recap.filter_eval                 # default rules: tables for RESULTS.md
    python -m genau_core.recap.filter_eval --keywords my_rules.txt --errors

Each row of the set: caption (AudioCaps / AutoCap style), label (`ambient` or `speech_music`,
the definitions are at the top of `data/speech_music_rules.txt`), split, case (the hard-case
family, e.g. animal-sings, whistle, device, drum-beat). `dev` rows are what the rules were
developed on; `heldout` rows were written before the rules and not used to change them.

For all rows and each split: the confusion table (label x decision) and precision / recall of
both classes. Ambient is the class that is kept: its recall is the share of ambient captions
kept, its precision the share of kept captions that are ambient. Speech/music is the class that
is dropped: recall = share of speech/music captions dropped, precision = share of dropped
captions that are speech/music. A ratio with an empty denominator is NaN.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

from genau_core.recap.filters import DEFAULT_KEYWORDS, KeywordFilter, read_keywords

LABELS = ("ambient", "speech_music")
SPLITS = ("dev", "heldout")


@dataclass(frozen=True)
class LabelledCaption:
    caption: str
    label: str  # ambient | speech_music
    split: str  # dev | heldout
    case: str


def _ratio(a: int, b: int) -> float:
    return a / b if b else math.nan


@dataclass(frozen=True)
class Confusion:
    ambient_kept: int
    ambient_dropped: int
    speech_music_kept: int
    speech_music_dropped: int

    @property
    def n(self) -> int:
        return self.ambient_kept + self.ambient_dropped + self.speech_music_kept + self.speech_music_dropped

    @property
    def ambient_recall(self) -> float:
        return _ratio(self.ambient_kept, self.ambient_kept + self.ambient_dropped)

    @property
    def ambient_precision(self) -> float:
        return _ratio(self.ambient_kept, self.ambient_kept + self.speech_music_kept)

    @property
    def speech_music_recall(self) -> float:
        return _ratio(self.speech_music_dropped, self.speech_music_dropped + self.speech_music_kept)

    @property
    def speech_music_precision(self) -> float:
        return _ratio(self.speech_music_dropped, self.speech_music_dropped + self.ambient_dropped)


@dataclass(frozen=True)
class Decision:
    row: LabelledCaption
    dropped: bool
    reason: str

    @property
    def correct(self) -> bool:
        return self.dropped == (self.row.label == "speech_music")


def load_labelled(path: str | Path | None = None) -> list[LabelledCaption]:
    """The labelled set (the shipped one by default); a bad row is a ValueError naming its line."""
    if path is None:
        text = resources.files("genau_core.recap").joinpath("data", "filter_eval.csv").read_text(encoding="utf-8")
        name = "genau_core/recap/data/filter_eval.csv"
    else:
        text, name = Path(path).read_text(encoding="utf-8"), str(path)
    rows = []
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in ("caption", "label", "split", "case") if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing}")
    for line, r in enumerate(reader, start=2):
        if r["label"] not in LABELS or r["split"] not in SPLITS or not r["caption"].strip():
            raise ValueError(
                f"{name}:{line}: label must be one of {LABELS}, split one of {SPLITS}, caption non-empty: {r}"
            )
        rows.append(LabelledCaption(r["caption"], r["label"], r["split"], r["case"]))
    return rows


def decide(rows: Iterable[LabelledCaption], keywords: Sequence[str] = DEFAULT_KEYWORDS) -> list[Decision]:
    flt = KeywordFilter(keywords)
    out = []
    for r in rows:
        hit = flt.explain(r.caption)
        out.append(Decision(r, hit is not None, hit.reason if hit else ""))
    return out


def confusion(decisions: Iterable[Decision]) -> Confusion:
    c = {(lab, d): 0 for lab in LABELS for d in (True, False)}
    for x in decisions:
        c[(x.row.label, x.dropped)] += 1
    return Confusion(c[("ambient", False)], c[("ambient", True)], c[("speech_music", False)], c[("speech_music", True)])


def by_part(decisions: Sequence[Decision]) -> dict[str, Confusion]:
    parts = {"all": confusion(decisions)}
    for s in SPLITS:
        parts[s] = confusion(d for d in decisions if d.row.split == s)
    return parts


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def markdown(parts: dict[str, Confusion]) -> str:
    header = (
        "| rows | n | ambient kept | ambient dropped | speech/music kept | speech/music dropped "
        "| ambient precision | ambient recall (kept) | speech/music precision | speech/music recall (dropped) |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in parts.items():
        counts = (c.n, c.ambient_kept, c.ambient_dropped, c.speech_music_kept, c.speech_music_dropped)
        ratios = (c.ambient_precision, c.ambient_recall, c.speech_music_precision, c.speech_music_recall)
        lines.append("| " + " | ".join([name, *map(str, counts), *map(_pct, ratios)]) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m genau_core.recap.filter_eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--keywords", default=None, metavar="FILE", help="rule file (default: the shipped rules)")
    p.add_argument("--set", default=None, metavar="CSV", help="labelled captions (default: the shipped set)")
    p.add_argument("--errors", action="store_true", help="list every wrong decision with its reason")
    args = p.parse_args(argv)
    try:
        keywords = read_keywords(args.keywords) if args.keywords else DEFAULT_KEYWORDS
        decisions = decide(load_labelled(args.set), keywords)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown(by_part(decisions)))
    wrong = [d for d in decisions if not d.correct]
    if args.errors or wrong:
        print(f"\n{len(wrong)} wrong:")
        for d in wrong:
            what = f"dropped by {d.reason}" if d.dropped else "kept"
            print(f"  [{d.row.split}, {d.row.case}] {d.row.label}: {d.row.caption!r} -> {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
