"""A split's scored runs, as the report and `bench compare` read them.

One *system* per run folder (`<split>/<model>/<settings-hash>`): named by its model, or
`model@<hash8>` when a model has runs with several settings. For each protocol a system has
one record: among its records of that protocol (not `impl: "reference"` ones) the one covering
the most prompts, then the newest.

Protocol of a record: its `protocol` object ({"name", "version", ...}); records written before
that field existed are protocol "genau" at their `protocol_version`.

Per-clip scores: the record's `per_clip_file` names a parquet (or .csv) file in the run's `results/`
folder with one row per clip (`clip_id`) and one float column per per-clip metric, named as the
record's `metrics[i]["column"]` (NaN where absent). A record without one has no per-clip
scores: the report says so (it never recomputes them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from bench.checkpoints import REAL_WEIGHTS, describe_weights
from bench.errors import UsageError
from bench.runs.store import RunDir, RunStore

LOWER_IS_BETTER = ("FD", "FAD", "KAD", "KL_softmax", "KL_sigmoid", "KL_sam")


class ReportError(UsageError):
    """A split, model or file the report / compare cannot use (one line: what and what to do)."""


def protocol_of(rec: dict) -> tuple[str, str]:
    """(name, version) of the protocol a record was scored under."""
    p = rec.get("protocol")
    if isinstance(p, dict) and p.get("name"):
        return str(p["name"]), str(p.get("version", rec.get("protocol_version", "")))
    return "genau", str(rec.get("protocol_version", ""))


def higher_is_better(metric: str) -> bool | None:
    """The ranking direction of a metric: the metric registry's word when it has the metric, else ours."""
    try:
        from bench.metrics.registry import METRICS

        if metric in METRICS:
            return METRICS[metric].higher_is_better
    except ImportError:  # the registry is optional (older trees)
        pass
    return metric not in LOWER_IS_BETTER


def _prompt_count(rec: dict) -> int:
    ps = rec.get("prompt_set") or {}
    return int(ps.get("n") or rec.get("n_prompts") or 0)


def record_weights(rec: dict) -> tuple[bool, str]:
    """(comparable, label): comparable only when model and metric-backbone weights came from checkpoint files."""
    model_w, backbone_w = rec.get("model_weights", "unavailable"), rec.get("backbone_weights", "unavailable")
    return model_w in REAL_WEIGHTS and backbone_w in REAL_WEIGHTS, describe_weights(model_w, backbone_w)


@dataclass
class System:
    """One run folder of the split, with its chosen record per protocol."""

    key: str
    model: str
    run: RunDir
    manifest: dict
    records: dict[str, dict]  # protocol name -> record
    _per_clip: dict[str, pd.DataFrame | None] = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def comparable(self) -> bool:
        return bool(self.records) and all(record_weights(r)[0] for r in self.records.values())

    @property
    def weights_label(self) -> str:
        labels = sorted({record_weights(r)[1] for r in self.records.values()})
        return "; ".join(labels) or "no scored record"

    @cached_property
    def prompts(self) -> dict[str, str]:
        return {cid: str(c.get("prompt", "")) for cid, c in (self.manifest.get("clips") or {}).items()}

    @cached_property
    def clips_on_disk(self) -> set[str]:
        return self.run.finished_clips()

    def clip_ids(self, protocol: str) -> list[str]:
        """The clips the protocol's record covers that exist on disk (sorted)."""
        rec = self.records.get(protocol)
        ids = set(self.prompts)
        if rec is not None and rec.get("not_generated"):
            ids -= set(rec["not_generated"])
        return sorted(ids & self.clips_on_disk)

    def per_clip(self, protocol: str) -> pd.DataFrame | None:
        """Per-clip scores of the protocol's record, indexed by clip id (None, with a note, when absent)."""
        if protocol not in self._per_clip:
            self._per_clip[protocol] = self._read_per_clip(protocol)
        return self._per_clip[protocol]

    def _read_per_clip(self, protocol: str) -> pd.DataFrame | None:
        rec = self.records.get(protocol)
        if rec is None:
            return None
        name = rec.get("per_clip_file")
        if not name:
            self.notes.append(
                f"{self.key}: its {protocol} record ({rec.get('scoring_key', '?')}) has no per-clip "
                "scores (written before per-clip sidecars); rescore with `bench run` to get them"
            )
            return None
        path = self.run.results_dir / str(name)
        if Path(str(name)).name != str(name) or not path.is_file():
            raise ReportError(
                f"{self.run.results_dir}: per_clip_file {name!r} of record {rec.get('scoring_key')} "
                "is not a file in this folder; rescore the run or delete the record"
            )
        try:
            df = pd.read_csv(path, dtype={"clip_id": str}) if path.suffix == ".csv" else pd.read_parquet(path)
        except ImportError as e:
            raise ReportError(f"{path}: reading per-clip scores needs pyarrow (pip install pyarrow): {e}") from None
        except Exception as e:  # noqa: BLE001  (pyarrow raises many types for a damaged file)
            raise ReportError(f"{path}: unreadable parquet ({type(e).__name__}: {e}); rescore the run") from None
        if "clip_id" not in df.columns:
            raise ReportError(f"{path}: no 'clip_id' column (columns: {list(df.columns)[:8]}); rescore the run")
        df = df.assign(clip_id=df["clip_id"].astype(str))
        if df["clip_id"].duplicated().any():
            dup = df.loc[df["clip_id"].duplicated(), "clip_id"].iloc[0]
            raise ReportError(f"{path}: clip id {dup!r} appears twice; rescore the run")
        known = {m["column"] for m in rec.get("metrics", [])}
        cols = [c for c in df.columns if c != "clip_id" and c in known]
        return df.set_index("clip_id")[cols].astype(float)

    def metric_entries(self, protocol: str) -> list[dict]:
        rec = self.records.get(protocol)
        return list(rec.get("metrics", [])) if rec else []


@dataclass
class SplitRuns:
    split: str
    root: Path
    systems: list[System]
    references: dict[str, Path]  # clip id -> reference file
    notes: list[str]

    @property
    def protocols(self) -> list[str]:
        seen: list[str] = []
        for s in self.systems:
            for p in s.records:
                if p not in seen:
                    seen.append(p)
        return sorted(seen, key=lambda p: (p != "genau", p))

    def system(self, key: str) -> System:
        for s in self.systems:
            if s.key == key:
                return s
        from bench.arguments import did_you_mean

        keys = [s.key for s in self.systems]
        raise ReportError(
            f"model {key!r} has no scored run on split {self.split!r} under {self.root}."
            f"{did_you_mean(key, keys)} Scored: {', '.join(keys) or 'none'}"
        )

    def all_notes(self) -> list[str]:
        return self.notes + [n for s in self.systems for n in s.notes]


def _choose_records(run: RunDir) -> dict[str, dict]:
    by_protocol: dict[str, dict] = {}
    for rec in run.results():
        if rec.get("impl", "ours") == "reference":
            continue
        name, _ = protocol_of(rec)
        old = by_protocol.get(name)
        if old is None or (_prompt_count(rec), rec.get("date", "")) > (_prompt_count(old), old.get("date", "")):
            by_protocol[name] = rec
    return by_protocol


def collect_split(
    root: str | Path,
    split: str,
    models: list[str] | None = None,
    *,
    split_csv: str | None = None,
    ref_dir: str | None = None,
) -> SplitRuns:
    """The split's scored systems (optionally only `models`: model names or `model@hash8` keys, in that order)."""
    root = Path(root)
    runs = RunStore(root).run_dirs(split)
    if not runs:
        raise ReportError(
            f"--split {split}: no runs under {root / split}; `bench run --split {split} ...` makes them "
            "(--root names another run store)"
        )
    per_model: dict[str, list[RunDir]] = {}
    for run in runs:
        per_model.setdefault(run.path.parent.name, []).append(run)
    systems: list[System] = []
    notes: list[str] = []
    for model, model_runs in per_model.items():
        for run in model_runs:
            key = model if len(model_runs) == 1 else f"{model}@{run.path.name[:8]}"
            records = _choose_records(run)
            if not records:
                notes.append(f"{key}: no scored record in {run.results_dir} (generated only); left out")
                continue
            systems.append(System(key, model, run, run.manifest(), records))
    if models:
        by_key = {s.key: s for s in systems}
        chosen: list[System] = []
        for m in models:
            hits = [s for s in systems if s.key == m] or [s for s in systems if s.model == m]
            if not hits:
                from bench.arguments import did_you_mean

                hint = did_you_mean(m, list(by_key) + list(per_model))
                raise ReportError(
                    f"--models {m}: no scored run of this model on split {split!r} under {root}."
                    f"{hint} Scored: {', '.join(by_key) or 'none'}"
                )
            chosen += [h for h in hits if h not in chosen]
        systems = chosen
    if not systems:
        raise ReportError(
            f"--split {split}: no scored runs under {root / split}; run `bench run --split {split} ...` "
            "without --no-score first"
        )
    references, ref_note = _references(split, split_csv, ref_dir)
    if ref_note:
        notes.append(ref_note)
    return SplitRuns(split, root, systems, references, notes)


def _references(split: str, split_csv: str | None, ref_dir: str | None) -> tuple[dict[str, Path], str]:
    from bench.splits import SplitError, load_split

    try:
        s = load_split(split, csv=split_csv, ref_dir=ref_dir)
    except (SplitError, OSError) as e:
        return {}, f"reference clips not shown: split {split!r} could not be loaded ({e})"
    return {it.id: Path(it.reference) for it in s.items if it.reference is not None}, ""


def finite(x) -> float | None:
    """A JSON-safe number: None for NaN / inf / missing."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def as_float_array(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)
