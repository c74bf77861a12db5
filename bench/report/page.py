"""The report page: one self-contained HTML file (inline CSS / JS, data as JSON) plus its audio.

Nothing is fetched from the network: the page carries a Content-Security-Policy that allows only
inline script / style, data: images (the chart) and local media. Clips are hard-linked (copied
across file systems) into `<out>/audio/<system>/<clip id>.wav` and referenced relatively, so the
folder can be moved or served as it is. All text from the records (prompts included) reaches the
page as JSON inside a <script type="application/json"> element whose '<', '>' and '&' are
escaped, and is put into the DOM with textContent only.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from tqdm.auto import tqdm

from bench.compare import ALPHA, CompareConfig, EmbeddingSource, compare_all
from bench.report.collect import (
    ReportError,
    SplitRuns,
    finite,
    higher_is_better,
    protocol_of,
)
from bench.runs.store import json_safe
from genau_core.files import atomic_path, atomic_write_text, remove_stale_temporaries


@dataclass
class ReportConfig:
    out_dir: Path
    compare: bool = True  # the all-pairs table (needs embeddings for set metrics: see bench.compare)
    compare_config: CompareConfig = field(default_factory=CompareConfig)
    progress: bool = True


def _static(name: str) -> str:
    return resources.files("bench.report").joinpath("static", name).read_text(encoding="utf-8")


def script_json(data: dict) -> str:
    """JSON safe inside <script type="application/json">: no '<', '>' or '&' can end or open a tag."""
    text = json.dumps(json_safe(data), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _place(src: Path, dst: Path) -> None:
    """Hard-link src to dst (copy when linking is not possible), replacing an older dst atomically."""
    if dst.exists():
        try:
            if os.path.samefile(src, dst):
                return
        except OSError:
            pass
    with atomic_path(dst, clean=False) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def _rel(*parts: str) -> str:
    return "/".join(quote(p, safe="") for p in parts)


def place_audio(runs: SplitRuns, out: Path, ids: list[str], progress: bool) -> tuple[dict, dict]:
    """-> ({system key: {clip id: relative url}}, {clip id: relative url of the reference})."""
    clips: dict[str, dict[str, str]] = {}
    jobs: list[tuple[Path, Path, str, str]] = []
    for s in runs.systems:
        folder = out / "audio" / s.key
        for cid in ids:
            if cid in s.clips_on_disk:
                jobs.append((s.run.clip_path(cid), folder / f"{cid}.wav", s.key, _rel("audio", s.key, f"{cid}.wav")))
    refs: dict[str, str] = {}
    for cid in ids:
        ref = runs.references.get(cid)
        if ref is not None and ref.is_file():
            name = f"{cid}{ref.suffix.lower()}"
            jobs.append((ref, out / "audio" / "reference" / name, "", _rel("audio", "reference", name)))
    made: set[Path] = set()
    for src, dst, key, url in tqdm(jobs, desc="linking audio", unit="clip", disable=not progress):
        if dst.parent not in made:
            dst.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(dst.parent)
            made.add(dst.parent)
        _place(src, dst)
        if key:
            clips.setdefault(key, {})[dst.stem] = url
        else:
            refs[dst.stem] = url
    return clips, refs


def prompt_rows(runs: SplitRuns, clip_urls: dict, ref_urls: dict) -> tuple[list[dict], list[list]]:
    """(columns, rows): one score column per (system, protocol, per-clip metric); one row per prompt."""
    columns: list[dict] = []
    tables = []
    for si, s in enumerate(runs.systems):
        for protocol in runs.protocols:
            df = s.per_clip(protocol)
            if df is None:
                continue
            entries = {m["column"]: m for m in s.metric_entries(protocol)}
            for col in df.columns:
                metric = entries.get(col, {}).get("metric", col)
                several = len([p for p in runs.protocols if s.records.get(p)]) > 1
                columns.append(
                    {
                        "sys": si,
                        "protocol": protocol,
                        "column": col,
                        "metric": metric,
                        "hib": higher_is_better(metric),
                        "label": f"{protocol}: {metric}" if several else metric,
                    }
                )
                tables.append(df[col])
    ids: list[str] = []
    seen: set[str] = set()
    prompts: dict[str, str] = {}
    for s in runs.systems:
        for cid, text in s.prompts.items():
            if cid not in seen:
                seen.add(cid)
                ids.append(cid)
                prompts[cid] = text
    rows = []
    lookups = [t.to_dict() for t in tables]
    for cid in ids:
        rows.append(
            [
                cid,
                prompts[cid],
                ref_urls.get(cid),
                [clip_urls.get(s.key, {}).get(cid) for s in runs.systems],
                [finite(lk.get(cid)) for lk in lookups],
            ]
        )
    return columns, rows


def _cell(row, col: str) -> list:
    reason = row.get(col + "_missing_reason") if hasattr(row, "get") else None
    note = row.get(col + "_ci_note")
    text = reason if isinstance(reason, str) else (note if isinstance(note, str) else "")
    return [finite(row.get(col)), finite(row.get(col + "_ci95_low")), finite(row.get(col + "_ci95_high")), text]


def leaderboards(runs: SplitRuns) -> tuple[list[dict], list[dict], list[dict], list[str]]:
    """(one table per protocol, one chart per protocol, reported facts, notes) from `bench.leaderboard`: the same
    rows as its CSV / PNG, limited to the report's systems and the reported rows for their models."""
    from bench.leaderboard import (
        SUFFIXES,
        build_leaderboard,
        plot_leaderboard,
        split_protocols,
    )

    notes: list[str] = []
    models = {s.model for s in runs.systems}
    tables, charts, facts = [], [], []
    for protocol in [p for p in split_protocols(runs.root, runs.split) if p in runs.protocols]:
        df = build_leaderboard(runs.root, runs.split, protocol=protocol)
        is_reported = df["source"].astype(str).str.startswith("reported")
        keep = (df["source"] == "this benchmark") & df["model"].isin(models)
        if "reported_for" in df.columns:
            keep |= is_reported & df["reported_for"].isin(models)
        df = df[keep].reset_index(drop=True)
        is_reported = df["source"].astype(str).str.startswith("reported")
        metric_cols = [c for c in df.columns if "@" in c and not c.endswith(SUFFIXES) and df[c].notna().any()]
        metric_cols += [c for c in df.columns if c.endswith("(reported)") and df[c].notna().any()]
        rows = []
        for rep, (_, r) in zip(is_reported, df.iterrows()):
            rank = r.get("rank")
            rows.append(
                {
                    "rank": None if rank is None or pd.isna(rank) else int(rank),
                    "model": r["model"],
                    "weights": r.get("weights"),
                    "comparable": bool(r.get("comparable")),
                    "reported": bool(rep),
                    "source": r.get("reported_source") if rep else r.get("source"),
                    "facts": r.get("reported_protocol") if rep else "",
                    "group": "" if rep else r.get("comparison_group"),
                    "n": None if rep else finite(r.get("n_evaluated")),
                    "cells": {c: _cell(r, c) for c in metric_cols},
                }
            )
        versions = sorted({protocol_of(s.records[protocol])[1] for s in runs.systems if protocol in s.records})
        tables.append(
            {
                "protocol": f"{protocol} {', '.join(versions)}".strip(),
                "columns": metric_cols,
                "rows": rows,
                "caption": "values [95% bootstrap interval]; rank only among comparable rows of one comparison "
                "group; reported rows: the papers' numbers under their own protocols (hover for how "
                "they were computed), never ranked",
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            try:
                png = Path(tmp) / "chart.png"
                plot_leaderboard(df, png, runs.split, protocol)
                charts.append(
                    {
                        "protocol": protocol,
                        "uri": "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii"),
                    }
                )
            except Exception as e:  # noqa: BLE001  (a chart failure must not lose the page)
                notes.append(f"{protocol} chart not drawn: {type(e).__name__}: {e}")
        if "reported_protocol" in df.columns:
            for label, part in df[is_reported].groupby("source", sort=False):
                facts.append(
                    {
                        "label": str(label),
                        "source": str(part["reported_source"].iloc[0]),
                        "facts": [f"{m}: {p}" for m, p in zip(part["model"], part["reported_protocol"])],
                    }
                )
    return tables, charts, facts, notes


def pair_tables(runs: SplitRuns, cfg: CompareConfig, embeddings: EmbeddingSource | None) -> list[dict]:
    out = []
    for protocol in runs.protocols:
        pairs = compare_all(runs, protocol, cfg, embeddings)
        rows = []
        for pc in pairs:
            for m in pc.metrics:
                ok = not math.isnan(m.diff)
                rows.append(
                    {
                        "a": pc.a,
                        "b": pc.b,
                        "column": m.column,
                        "kind": m.kind,
                        "n": m.n,
                        "diff": finite(m.diff) if ok else None,
                        "lo": finite(m.ci_low),
                        "hi": finite(m.ci_high),
                        "p": finite(m.p),
                        "p_holm": finite(m.p_holm),
                        "effect": finite(m.effect),
                        "effect_kind": m.effect_kind,
                        "better": m.better,
                        "reason": m.reason,
                    }
                )
        if rows:
            out.append({"protocol": protocol, "rows": rows})
    return out


def build_page(data: dict) -> str:
    page = _static("template.html")
    for key, value in (
        ("TITLE", html.escape(data["title"])),
        ("CSS", _static("report.css")),
        ("JS", _static("report.js").replace("</", "<\\/")),
        ("DATA", script_json(data)),
    ):
        page = page.replace("{{" + key + "}}", value, 1)
    return page


def write_report(runs: SplitRuns, cfg: ReportConfig, embeddings: EmbeddingSource | None = None) -> Path:
    """Write `<out>/index.html` and `<out>/audio/`; -> the page's path."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    ids = sorted({cid for s in runs.systems for cid in s.prompts})
    clip_urls, ref_urls = place_audio(runs, out, ids, cfg.progress)
    columns, rows = prompt_rows(runs, clip_urls, ref_urls)
    tables, charts, facts, notes = leaderboards(runs)
    pairs = pair_tables(runs, cfg.compare_config, embeddings) if cfg.compare and len(runs.systems) > 1 else []
    not_comparable = [s.key for s in runs.systems if not s.comparable]
    banner = []
    if not_comparable:
        banner.append(
            f"NOT COMPARABLE: {', '.join(not_comparable)} were generated or scored with random or tiny "
            "weights (model or metric backbones). Their numbers say nothing about the published models and "
            "are never ranked."
        )
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    data = {
        "title": f"genau-bench report: {runs.split}",
        "subtitle": f"{len(rows)} prompts, {len(runs.systems)} models ({', '.join(s.key for s in runs.systems)}); "
        f"run store {runs.root}; written {now}",
        "banner": banner,
        "systems": [
            {"key": s.key, "model": s.model, "comparable": s.comparable, "weights": s.weights_label}
            for s in runs.systems
        ],
        "columns": columns,
        "rows": rows,
        "leaderboards": tables,
        "charts": charts,
        "reported_facts": facts,
        "pairs": pairs,
        "pairs_caption": (
            f"Paired over the prompts both models ran: per-clip metrics by a paired bootstrap and a "
            f"sign-flip permutation test, set metrics (FD, FAD, KAD, IS) by a paired bootstrap that "
            f"resamples the same prompts for both; p adjusted by Holm over each pair's metrics; "
            f"better = Holm p < {ALPHA}. Effect: d_z (per-clip) or difference / bootstrap SE (set)."
        ),
        "notes": runs.all_notes() + notes,
    }
    page = build_page(data)
    path = out / "index.html"
    atomic_write_text(path, page)
    return path


def check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out}: is a file; give a folder for index.html and audio/")
