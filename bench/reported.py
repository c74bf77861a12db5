"""Published numbers, as the papers printed them: `leaderboards/reported/*.csv`, one file per table.

Each row is one (paper, table, model, metric) value with the facts that decide what the number
means: the metric's backbone and sample rate, the number of clips, captions per clip, CLAP
re-ranking or not, the evaluation tool, how the clips were generated, and the source the value was
read from. A fact the source does not give is written "not stated", never guessed. `bench_model`
names our plugin for the same checkpoint (empty when there is none), `bench_metric` our metric of
the same name (the backbone may still differ: see `backbone`).

The leaderboard and the report show these rows beside our recomputed row for the same model and
metric, labelled "reported", never ranked with ours (see docs/report.md for the protocol
differences).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, fields
from pathlib import Path

from bench.errors import GenauBenchError

REPORTED_DIR = Path(__file__).resolve().parent.parent / "leaderboards" / "reported"
NOT_STATED = "not stated"
# The facts every row must carry (a value, or "not stated ..." when the source does not give it).
PROTOCOL_FACTS = ("backbone", "sample_rate", "n_clips", "captions_per_clip", "reranking", "eval_tool", "generation")
REPORTED_LABEL = "reported"


class ReportedTableError(GenauBenchError, ValueError):
    """A reported CSV that does not hold what a reported row needs (names the file, line and field)."""


@dataclass(frozen=True)
class ReportedRow:
    paper: str
    paper_url: str
    table: str
    split: str  # our split name ("audiocaps", "bigsoundbank") or "not stated"
    model: str  # as the paper prints it
    bench_model: str  # our plugin for the same checkpoint, "" when none
    params: str
    metric: str  # as the paper prints it
    bench_metric: str  # our metric name, "" when none
    value: float
    backbone: str
    sample_rate: str
    n_clips: str
    captions_per_clip: str
    reranking: str
    eval_tool: str
    generation: str
    source: str  # where the value was read: a file at a commit, or the paper and its table
    notes: str
    file: str = ""  # the CSV it came from

    @property
    def label(self) -> str:
        """e.g. "reported: GenAU paper Table 4" (the leaderboard's `source` / the report's row label)."""
        short = self.paper.split(" (")[-1].rstrip(")") if " (" in self.paper else self.paper
        return f"{REPORTED_LABEL}: {short}, {self.table}"

    def protocol_text(self) -> str:
        """One line with every protocol fact (shown beside the value)."""
        return "; ".join(f"{k.replace('_', ' ')}: {getattr(self, k)}" for k in PROTOCOL_FACTS)


COLUMNS = tuple(f.name for f in fields(ReportedRow) if f.name != "file")


def _row(path: Path, line: int, raw: dict[str, str]) -> ReportedRow:
    missing = [c for c in COLUMNS if c not in raw]
    if missing:
        raise ReportedTableError(f"{path}:1: missing column(s) {missing}; every reported CSV has {list(COLUMNS)}")
    for c in ("paper", "table", "split", "model", "metric", "value", "source", *PROTOCOL_FACTS):
        if not (raw[c] or "").strip():
            raise ReportedTableError(
                f"{path}:{line}: empty {c!r} (write '{NOT_STATED}' when the source does not give it)"
            )
    try:
        value = float(raw["value"])
    except ValueError:
        raise ReportedTableError(f"{path}:{line}: value {raw['value']!r} is not a number") from None
    if not math.isfinite(value):
        raise ReportedTableError(
            f"{path}:{line}: value {raw['value']!r} is not a finite number (leave the row out instead)"
        )
    kw = {c: (raw[c] or "").strip() for c in COLUMNS if c != "value"}
    return ReportedRow(**kw, value=value, file=path.name)


def read_reported_csv(path: str | Path) -> list[ReportedRow]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ReportedTableError(f"{path}: cannot read ({e.strerror})") from None
    rows = []
    reader = csv.DictReader(text.splitlines())
    for i, raw in enumerate(reader, start=2):
        rows.append(_row(path, i, raw))
    return rows


def load_reported(folder: str | Path | None = None) -> list[ReportedRow]:
    """Every row of every reported table (sorted by file, then file order)."""
    folder = Path(folder) if folder is not None else REPORTED_DIR
    if not folder.is_dir():
        return []
    out: list[ReportedRow] = []
    for p in sorted(folder.glob("*.csv")):
        out += read_reported_csv(p)
    return out


def reported_for_split(split: str, folder: str | Path | None = None) -> list[ReportedRow]:
    """The rows published for this split (rows whose source does not name the set are on no split)."""
    return [r for r in load_reported(folder) if r.split == split]


def reported_splits(folder: str | Path | None = None) -> set[str]:
    return {r.split for r in load_reported(folder) if r.split != NOT_STATED}
