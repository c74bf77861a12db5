"""Leaderboard export: one row per (model, settings) of a split, CSV + PNG bar chart.

Rows are ranked only against rows of the same protocol version whose model *and* metric
backbones carry official weights. Rows computed with random or tiny-trained weights are
kept, labelled "not comparable", and never ranked; published numbers (paper Table 4) are
shown for orientation, labelled, never ranked. Records scored by the field's reference tools
(`bench score --impl reference`, `impl: "reference"`) are shown in their own labelled rows,
under their own metric columns, and are never ranked nor used to pick the ranking column.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from bench.runs.store import RunStore

SUFFIXES = ("_ci95_low", "_ci95_high", "_missing_reason")
LOWER_IS_BETTER = ("FD", "FAD", "KL_softmax", "KL_sigmoid", "KAD")
CHART_METRICS = ("FD", "FAD", "IS", "KL_softmax", "KAD", "CLAP_LAION", "CLAP_MS")

# Table 4 of the paper (AudioCaps test, recomputed by the authors with audioldm_eval).
PAPER_TABLE4 = [
    ("AudioLDM-L", "739M", 37.89, 7.14, 5.86, None, 0.429),
    ("AudioLDM 2-L", "712M", 32.50, 8.54, 5.11, 0.212, 0.621),
    ("TANGO", "866M", 26.13, 8.23, 1.87, 0.185, 0.597),
    ("TANGO 2", "866M", 19.77, 8.45, 2.74, 0.264, 0.590),
    ("Make-An-Audio", "453M", 27.93, 7.44, 2.59, 0.207, 0.621),
    ("Make-An-Audio 2", "937M", 15.34, 9.58, 1.27, 0.251, 0.645),
    ("GenAu w/ U-Net", "462M", 25.57, 9.54, 1.98, None, None),
    ("GenAu-Large", "1.25B", 16.51, 11.75, 1.21, 0.285, 0.668),
]


def metric_name(column: str) -> str:
    """'FD_panns-cnn14@16k' -> 'FD'; 'CLAP_LAION_laion-clap-htsat-base@48k' -> 'CLAP_LAION'."""
    for m in ("CLAP_LAION", "CLAP_MS", "KL_softmax", "KL_sigmoid", "FD", "FAD", "IS", "KAD"):
        if column.startswith(m + "_"):
            return m
    return column


REFERENCE_WEIGHTS_LABEL = "REFERENCE IMPLEMENTATION (the field's tools on the same clips; not ranked)"


def is_reference_impl(rec: dict) -> bool:
    """True for a record scored by the field's reference tools instead of our implementation."""
    return rec.get("impl", "ours") == "reference"


def reference_row(rec: dict) -> dict:
    """A labelled, never-ranked row for an impl=reference record (its columns name the tools)."""
    tools = ", ".join(f"{p} {v}" for p, v in sorted(rec.get("reference_tools", {}).items()) if p in ("audioldm_eval", "laion_clap", "msclap") and v)
    row = {
        "model": rec.get("model", "-"),
        "weights": REFERENCE_WEIGHTS_LABEL,
        "comparable": False,
        "split": rec.get("split"),
        "n_evaluated": rec.get("n_evaluated"),
        "n_missing": rec.get("n_missing_reference"),
        "n_failed": rec.get("n_failed"),
    }
    for m in rec.get("metrics", []):
        row[m["column"]] = m["value"]
        if math.isnan(m["value"]) and m.get("reason"):
            row[m["column"] + "_missing_reason"] = m["reason"]
    row.update(
        backbones="; ".join(f"{k}={v.get('checkpoint_id', 'unavailable')[:23]}" for k, v in sorted(rec.get("backbones", {}).items())),
        resampler=rec.get("resampler"),
        protocol_version=rec.get("protocol_version"),
        date=rec.get("date", "")[:10],
        settings_hash=rec.get("settings_hash"),
        source=f"reference tools ({tools or 'impl=reference'})",
    )
    return row


def record_row(rec: dict) -> dict:
    s = rec["settings"]
    comparable = rec["model_weights"] == "official" and rec["backbone_weights"] == "official"
    row = {
        "model": rec["model"],
        "weights": "official" if comparable else f"NOT COMPARABLE (model {rec['model_weights']}, backbones {rec['backbone_weights']})",
        "comparable": comparable,
        "params": rec.get("parameter_count"),
        "training_data": rec.get("training_data"),
        "text_encoder": rec.get("text_encoder"),
        "sampler": s["sampler"],
        "steps": s["steps"],
        "guidance": s["guidance"],
        "seed": s["seed"],
        "samples_per_prompt": s.get("candidates_per_prompt", 1),
        "clap_reranking": False,
        "output_sample_rate": s["output_sample_rate"],
        "duration_s": s["duration_s"],
        "overrides": ";".join(f"{k}={v}" for k, v in sorted(s.get("overrides", {}).items())) or "",
        "split": rec["split"],
        "prompt_list_sha256": rec["prompt_list_sha256"][:16],
        "n_evaluated": rec["n_evaluated"],
        "n_missing": rec["n_missing_reference"] + rec.get("n_not_generated", 0),
        "n_failed": rec["n_failed"],
    }
    for m in rec["metrics"]:
        row[m["column"]] = m["value"]
        row[m["column"] + "_ci95_low"] = m["ci_low"]
        row[m["column"] + "_ci95_high"] = m["ci_high"]
        if math.isnan(m["value"]) and m.get("reason"):
            row[m["column"] + "_missing_reason"] = m["reason"]
    row.update(
        checkpoint=rec["checkpoint_identity"],
        backbones="; ".join(
            f"{k}@{v.get('sample_rate')}={v.get('checkpoint_id', 'unavailable')[:23]}({v.get('weights', 'unavailable')})"
            for k, v in sorted(rec["backbones"].items())
        ),
        resampler=rec["resampler"],
        protocol_version=rec["protocol_version"],
        date=rec["date"][:10],
        settings_hash=rec["settings_hash"],
        source="this benchmark",
    )
    return row


def paper_rows(metric_columns: dict[str, str]) -> list[dict]:
    rows = []
    for model, params, fd, is_, fad, cl, cm in PAPER_TABLE4:
        row = {"model": model, "weights": "published (paper Table 4), not recomputed here", "comparable": False, "params": params}
        for m, v in (("FD", fd), ("IS", is_), ("FAD", fad), ("CLAP_LAION", cl), ("CLAP_MS", cm)):
            if m in metric_columns:
                row[metric_columns[m]] = v if v is not None else math.nan
        row["source"] = "paper Table 4"
        rows.append(row)
    return rows


def build_leaderboard(root: str | Path, split: str, *, rank_by: str = "FD", with_paper: bool | None = None) -> pd.DataFrame:
    store = RunStore(root)
    records, reference_records = [], []
    for run in store.run_dirs(split):
        recs = run.results()
        reference_records += [r for r in recs if is_reference_impl(r)]
        ours = [r for r in recs if not is_reference_impl(r)]
        if ours:
            records.append(max(ours, key=lambda r: r["date"]))  # latest scoring of this run
    if not records and not reference_records:
        raise FileNotFoundError(f"no scored runs for split {split!r} under {root}; run `bench run --split {split} ...` first")
    df = pd.DataFrame([record_row(r) for r in records], columns=None if records else ["model", "comparable", "source", "protocol_version"])
    # the ranking / chart columns come from our records only, never from reference-tool columns
    metric_columns = {metric_name(c): c for c in df.columns if metric_name(c) != c and not c.endswith(SUFFIXES)}
    if with_paper if with_paper is not None else split == "audiocaps":
        df = pd.concat([df, pd.DataFrame(paper_rows(metric_columns))], ignore_index=True)
    if reference_records:
        df = pd.concat([df, pd.DataFrame([reference_row(r) for r in reference_records])], ignore_index=True)
    df.insert(0, "rank", pd.NA)
    rank_col = metric_columns.get(rank_by)
    if rank_col is not None:
        ascending = rank_by in LOWER_IS_BETTER
        for _, group in df[df["comparable"] == True].groupby("protocol_version"):  # noqa: E712
            order = group[rank_col].rank(ascending=ascending, method="min")
            df.loc[group.index, "rank"] = order.astype("Int64")
    df["_order"] = df["comparable"].map({True: 0, False: 1})
    df["_src"] = (df["source"] != "this benchmark").astype(int)
    df = df.sort_values(["_order", "_src", "rank", "model"], na_position="last").drop(columns=["_order", "_src"])
    return df.reset_index(drop=True)


def write_leaderboard(df: pd.DataFrame, out_dir: str | Path, split: str) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{split}.csv"
    tmp = csv_path.with_name(f".{csv_path.name}.{os.getpid()}.tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, csv_path)
    png_path = out_dir / f"{split}.png"
    plot_leaderboard(df, png_path, split)
    return csv_path, png_path


def plot_leaderboard(df: pd.DataFrame, path: Path, split: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours = df[df["source"] == "this benchmark"]
    cols = [c for c in ours.columns if metric_name(c) in CHART_METRICS and metric_name(c) != c and not c.endswith(SUFFIXES)]
    cols = [c for c in cols if ours[c].notna().any()]
    n = max(len(cols), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.6), squeeze=False)
    labels = [f"{m}{'' if c else ' *'}" for m, c in zip(ours["model"], ours["comparable"])]
    for ax, col in zip(axes[0], cols):
        vals = ours[col].astype(float)
        low, high = ours.get(col + "_ci95_low"), ours.get(col + "_ci95_high")
        yerr = None
        if low is not None and high is not None:
            yerr = [(vals - low.astype(float)).clip(lower=0).fillna(0), (high.astype(float) - vals).clip(lower=0).fillna(0)]
        ax.bar(range(len(vals)), vals, yerr=yerr, capsize=3, color=["tab:blue" if c else "tab:gray" for c in ours["comparable"]])
        ax.set_xticks(range(len(vals)), labels, rotation=45, ha="right", fontsize=7)
        arrow = "lower is better" if metric_name(col) in LOWER_IS_BETTER else "higher is better"
        ax.set_title(f"{col}\n({arrow}; bars: 95% bootstrap CI)", fontsize=8)
    title = f"genau-bench leaderboard: {split}"
    if not ours["comparable"].all():
        title += "\n* random / tiny weights (model or backbones): NOT comparable to published numbers"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
