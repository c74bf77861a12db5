"""Leaderboard export: one row per (model, settings, prompt set) of a split, CSV + PNG chart.

Rows are ranked only within one comparison group: the same protocol version, the same split
prompt list, the same *prompt set* (sha256 of the sorted clip ids actually run) and the same
*reference set* (sha256 of the (clip id, content sha256) pairs of the references used). A
`bench run --limit 2` row is therefore never ranked against the full run: it is shown in its
own group, labelled "partial". Within a group only rows whose model and metric backbones were
loaded from checkpoint files are ranked; the `weights` column says whether those files' sha256
match published hashes ("official") or not ("checkpoint files ... not matched"). Rows computed
with random or tiny-trained weights are kept, labelled "not comparable", and never ranked.

Records written before prompt sets were recorded (`record_version` 1) have no `prompt_set`:
they form their own groups, labelled "older record", keyed by protocol, split prompt list,
reference list and prompt count (that older code always scored the first `n_prompts` prompts
of the split list, so the count names the set), and their "official" is read as "checkpoint"
(that code called any file official).

Published numbers (`leaderboards/reported/*.csv`, read by `bench.reported`) are shown right after our
row for the same model, labelled "reported" with the paper's protocol facts, never ranked. Records
scored by the field's reference tools (`bench score --impl reference`, `impl: "reference"`)
are shown in their own labelled rows, under their own metric columns, and are never ranked
nor used to pick the ranking column.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.checkpoints import REAL_WEIGHTS, UNVERIFIED, VERIFIED, describe_weights
from bench.metrics.registry import METRICS as METRIC_SPECS
from bench.runs.store import RunStore
from genau_core.files import atomic_path, remove_stale_temporaries

SUFFIXES = ("_ci95_low", "_ci95_high", "_missing_reason", "_ci_note")
# Direction and charting come from the metric registry (one declaration per metric).
LOWER_IS_BETTER = tuple(m.name for m in METRIC_SPECS.values() if m.higher_is_better is False)
CHART_METRICS = tuple(m.name for m in METRIC_SPECS.values() if m.charted)
CHART_COLUMNS = 3  # panels per row: 8 metrics -> 3 x 3 grid, about 1190 x 1090 px, fits a page


def metric_name(column: str) -> str:
    """'FD_panns-cnn14@16k' -> 'FD'; 'CLAP_LAION_laion-clap-htsat-base@48k' -> 'CLAP_LAION'."""
    for m in sorted(METRIC_SPECS, key=len, reverse=True):  # longest first: "KL_sigmoid" before "KL_..."
        if column.startswith(m + "_") and "@" in column:
            return m
    return column


def record_protocol(rec: dict) -> str:
    """The protocol a record was scored under; records written before protocols were named are genau's."""
    return (rec.get("protocol") or {}).get("name", "genau")


def leaderboard_stem(split: str, protocol: str) -> str:
    """File stem of a protocol's table: `<split>` for genau (as before protocols), `<split>.<protocol>` else."""
    return split if protocol == "genau" else f"{split}.{protocol}"


REFERENCE_WEIGHTS_LABEL = "REFERENCE IMPLEMENTATION (the field's tools on the same clips; not ranked)"


def is_reference_impl(rec: dict) -> bool:
    """True for a record scored by the field's reference tools instead of our implementation."""
    return rec.get("impl", "ours") == "reference"


def reference_row(rec: dict) -> dict:
    """A labelled, never-ranked row for an impl=reference record (its columns name the tools)."""
    tools = ", ".join(
        f"{p} {v}"
        for p, v in sorted(rec.get("reference_tools", {}).items())
        if p in ("audioldm_eval", "laion_clap", "msclap") and v
    )
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
        backbones="; ".join(
            f"{k}={v.get('checkpoint_id', 'unavailable')}" for k, v in sorted(rec.get("backbones", {}).items())
        ),
        resampler=rec.get("resampler"),
        protocol_version=rec.get("protocol_version"),
        date=rec.get("date", "")[:10],
        settings_hash=rec.get("settings_hash"),
        source=f"reference tools ({tools or 'impl=reference'})",
    )
    return row


def _weights(rec: dict, key: str) -> str:
    """A record's weights kind; records of version 1 said "official" for any checkpoint file."""
    kind = rec.get(key, "unavailable")
    return UNVERIFIED if kind == VERIFIED and rec.get("record_version", 1) < 2 else kind


def comparison_group(rec: dict) -> tuple[tuple, str]:
    """(key, label) of the set of rows a record may be ranked with (see the module docstring)."""
    pv = f"{record_protocol(rec)} {rec.get('protocol_version')}"
    ps = rec.get("prompt_set")
    if ps:
        rs = rec.get("reference_set") or {}
        key = ("v2", pv, rec.get("prompt_list_sha256"), ps.get("sha256"), rs.get("sha256"))
        split_n = rec.get("split_n_prompts")
        of = f" of {split_n}" if split_n else ""
        partial = "PARTIAL: " if split_n and ps.get("n", 0) < split_n else ""
        label = (
            f"{partial}{ps.get('n')}{of} prompts (set {str(ps.get('sha256'))[:8]}), "
            f"{rs.get('n', 0)} references (set {str(rs.get('sha256') or '-')[:8]}), protocol {pv}"
        )
        return key, label
    n = rec.get("n_prompts")
    key = ("v1", pv, rec.get("prompt_list_sha256"), rec.get("reference_list_sha256"), n)
    label = (
        f"older record: prompt set not recorded ({n} prompts of split list "
        f"{str(rec.get('prompt_list_sha256'))[:8]}), protocol {pv}"
    )
    return key, label


def record_row(rec: dict) -> dict:
    s = rec["settings"]
    model_w, backbone_w = _weights(rec, "model_weights"), _weights(rec, "backbone_weights")
    comparable = model_w in REAL_WEIGHTS and backbone_w in REAL_WEIGHTS
    _, group = comparison_group(rec)
    ps, rs = rec.get("prompt_set") or {}, rec.get("reference_set") or {}
    row = {
        "model": rec["model"],
        "weights": describe_weights(model_w, backbone_w),
        "comparable": comparable,
        "comparison_group": group,
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
        "prompt_set_sha256": ps.get("sha256", "not recorded"),
        "n_prompts": ps.get("n", rec.get("n_prompts")),
        "reference_set_sha256": rs.get("sha256") or ("not recorded" if not ps else "none used"),
        "n_references": rs.get("n"),
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
        if m.get("ci_note"):
            row[m["column"] + "_ci_note"] = m["ci_note"]
    row.update(
        checkpoint=rec["checkpoint_identity"],
        backbones="; ".join(_backbone_text(k, v) for k, v in sorted(rec["backbones"].items())),
        resampler=rec["resampler"],
        protocol_version=rec["protocol_version"],
        date=rec["date"][:10],
        settings_hash=rec["settings_hash"],
        source="this benchmark",
    )
    return row


def _backbone_text(name: str, ident: dict) -> str:
    """One backbone, in full (never cut): name@rate=checkpoint id (weights), or why it was unavailable."""
    if "error" in ident:
        return f"{name}=unavailable ({ident['error']})"
    checkpoint, weights = ident.get("checkpoint_id", "unavailable"), ident.get("weights", "unavailable")
    return f"{name}@{ident.get('sample_rate')}={checkpoint}({weights})"


def reported_rows(split: str, metric_columns: dict[str, str]) -> list[dict]:
    """One row per (published table, model) of this split (`bench.reported`), its values in our column of
    the same metric (`<metric> (reported)` when we have none), labelled "reported", never ranked."""
    from bench.reported import reported_for_split

    rows: dict[tuple, dict] = {}
    for r in reported_for_split(split):
        row = rows.setdefault(
            (r.file, r.table, r.model),
            {
                "model": r.model,
                "weights": f"reported ({r.paper}, {r.table}); not recomputed here, never ranked",
                "comparable": False,
                "params": r.params or None,
                "reported_for": r.bench_model or None,
                "comparison_group": "reported numbers (not recomputed here)",
                "source": r.label,
                "reported_source": r.source,
                "reported_protocol": [],
            },
        )
        column = metric_columns.get(r.bench_metric) or f"{r.bench_metric or r.metric} (reported)"
        row[column] = r.value
        row["reported_protocol"].append(f"{r.metric}: {r.protocol_text()}")
    for row in rows.values():
        row["reported_protocol"] = " | ".join(row["reported_protocol"])
    return list(rows.values())


def place_reported_beside(df: pd.DataFrame) -> pd.DataFrame:
    """Move each reported row right after the last of our rows for the same model (`reported_for`);
    reported rows of models we have not run stay at the end."""
    if "reported_for" not in df.columns:
        return df
    is_reported = df["source"].astype(str).str.startswith("reported")
    ours, reported = df[~is_reported], df[is_reported]
    order: list[int] = []
    placed: set[int] = set()
    for i, model in zip(ours.index, ours["model"]):
        order.append(i)
        if i == ours[ours["model"] == model].index[-1]:
            beside = [j for j in reported.index[reported["reported_for"] == model] if j not in placed]
            order += beside
            placed.update(beside)
    order += [j for j in reported.index if j not in placed]
    return df.loc[order].reset_index(drop=True)


def split_protocols(root: str | Path, split: str) -> list[str]:
    """The protocols with scored records for `split` (genau first, then in registry order)."""
    from bench.metrics.protocols import PROTOCOLS

    found = {
        record_protocol(r) for run in RunStore(root).run_dirs(split) for r in run.results() if not is_reference_impl(r)
    }
    order = list(PROTOCOLS)
    return sorted(found, key=lambda p: (order.index(p) if p in order else len(order), p))


def default_rank_metric(protocol: str) -> str:
    """The metric a protocol's table is ranked by unless --rank-by says otherwise: its first metric
    with a direction (FD for genau, stable-audio and av-benchmark; PQ for aesthetics)."""
    from bench.metrics.protocols import PROTOCOLS

    p = PROTOCOLS.get(protocol)
    for pm in p.metrics if p else ():
        if METRIC_SPECS[pm.metric].higher_is_better is not None:
            return pm.metric
    return "FD"


def build_leaderboard(
    root: str | Path,
    split: str,
    *,
    rank_by: str | None = None,
    with_paper: bool | None = None,
    protocol: str = "genau",
) -> pd.DataFrame:
    """One protocol's table of `split` (rows of other protocols are never in it, so never ranked with it)."""
    store = RunStore(root)
    rank_by = rank_by or default_rank_metric(protocol)
    if protocol != "genau":
        with_paper = False  # the published tables quoted so far are genau-protocol numbers
    records, reference_records = [], []
    for run in store.run_dirs(split):
        recs = [r for r in run.results() if is_reference_impl(r) or record_protocol(r) == protocol]
        if protocol != "genau":
            recs = [r for r in recs if not is_reference_impl(r)]
        reference_records += [r for r in recs if is_reference_impl(r)]
        latest: dict[tuple, dict] = {}  # latest scoring of this run per comparison group
        for r in (r for r in recs if not is_reference_impl(r)):
            key, _ = comparison_group(r)
            if key not in latest or r["date"] > latest[key]["date"]:
                latest[key] = r
        records += latest.values()
    if not records and not reference_records:
        raise FileNotFoundError(
            f"no scored runs for split {split!r} under {root}; run `bench run --split {split} ...` first"
        )
    keys = [comparison_group(r)[0] for r in records]
    empty = ["model", "comparable", "source", "protocol_version"]
    df = pd.DataFrame([record_row(r) for r in records], columns=None if records else empty)
    df["_group"] = pd.Series([repr(k) for k in keys], index=df.index, dtype=object)
    # the ranking / chart columns come from our records only, never from reference-tool columns
    metric_columns: dict[str, str] = {}
    for c in df.columns:  # the first column of each metric (av-benchmark has FD on PaSST, then on PANNs)
        if metric_name(c) != c and not c.endswith(SUFFIXES):
            metric_columns.setdefault(metric_name(c), c)
    published = reported_rows(split, metric_columns) if with_paper is not False else []
    if published:
        df = pd.concat([df, pd.DataFrame(published)], ignore_index=True)
    if reference_records:
        df = pd.concat([df, pd.DataFrame([reference_row(r) for r in reference_records])], ignore_index=True)
    df.insert(0, "rank", pd.NA)
    spec = METRIC_SPECS.get(rank_by)
    rank_col = metric_columns.get(rank_by) if spec is None or spec.higher_is_better is not None else None
    if rank_col is not None:
        ascending = rank_by in LOWER_IS_BETTER
        ranked = df[df["comparable"].eq(True) & df["_group"].notna()]
        for _, group in ranked.groupby("_group"):
            order = group[rank_col].rank(ascending=ascending, method="min")
            df.loc[group.index, "rank"] = order.astype("Int64")
    # Groups in order: the one with the most prompts (then most comparable rows) first; published and
    # reference-tool rows after ours.
    sizes: dict[str, tuple] = {}
    for g, rows in df[df["_group"].notna()].groupby("_group"):
        n_prompts = pd.to_numeric(rows["n_prompts"], errors="coerce").max()
        sizes[g] = (-(0 if pd.isna(n_prompts) else n_prompts), -int(rows["comparable"].sum()), g)
    group_order = {g: i for i, g in enumerate(sorted(sizes, key=sizes.get))}
    df["_g"] = df["_group"].map(group_order).fillna(len(group_order)).astype(int)
    df["_order"] = df["comparable"].map({True: 0, False: 1})
    df["_src"] = (df["source"] != "this benchmark").astype(int)
    df = df.sort_values(["_src", "_g", "_order", "rank", "model"], na_position="last")
    df = df.drop(columns=["_order", "_src", "_g", "_group"])
    return place_reported_beside(df.reset_index(drop=True))


def write_leaderboard(df: pd.DataFrame, out_dir: str | Path, split: str, protocol: str = "genau") -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)  # e.g. `.demo.<pid>.tmp.png` of a leaderboard killed mid-write
    stem = leaderboard_stem(split, protocol)
    csv_path = out_dir / f"{stem}.csv"
    with atomic_path(csv_path, clean=False) as tmp:
        df.to_csv(tmp, index=False)
    png_path = out_dir / f"{stem}.png"
    plot_leaderboard(df, png_path, split, protocol)
    return csv_path, png_path


def chart_columns(ours: pd.DataFrame) -> list[str]:
    """The metric columns drawn (one panel each), in CHART_METRICS order: those with at least one value."""
    cols = [
        c for c in ours.columns if metric_name(c) in CHART_METRICS and metric_name(c) != c and not c.endswith(SUFFIXES)
    ]
    return sorted((c for c in cols if ours[c].notna().any()), key=lambda c: CHART_METRICS.index(metric_name(c)))


def plot_leaderboard(df: pd.DataFrame, path: Path, split: str, protocol: str = "genau") -> None:
    """Bar chart per metric, CHART_COLUMNS panels per row (a grid sized for a page, not one long strip).
    Each bar is a row of ours; when there are several comparison groups, labels carry the group letter
    listed under the chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours = df[df["source"] == "this benchmark"].reset_index(drop=True)
    cols = chart_columns(ours)
    groups = list(dict.fromkeys(ours["comparison_group"])) if "comparison_group" in ours else []
    letter = {g: chr(ord("A") + i) if i < 26 else str(i) for i, g in enumerate(groups)}
    tag = (lambda g: f" [{letter[g]}]") if len(groups) > 1 else (lambda g: "")
    group_of = ours["comparison_group"] if "comparison_group" in ours else [""] * len(ours)
    labels = [f"{m}{'' if c else ' *'}{tag(g)}" for m, c, g in zip(ours["model"], ours["comparable"], group_of)]
    n = max(len(cols), 1)
    ncols = min(CHART_COLUMNS, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows + 0.9 + 0.18 * len(groups)), squeeze=False)
    for ax in axes.flat[len(cols) :]:
        ax.set_axis_off()
    for ax, col in zip(axes.flat, cols):
        vals = ours[col].astype(float)
        low, high = ours.get(col + "_ci95_low"), ours.get(col + "_ci95_high")
        yerr = None
        if low is not None and high is not None:
            yerr = [
                (vals - low.astype(float)).clip(lower=0).fillna(0),
                (high.astype(float) - vals).clip(lower=0).fillna(0),
            ]
        colors = ["tab:blue" if c else "tab:gray" for c in ours["comparable"]]
        ax.bar(range(len(vals)), vals, yerr=yerr, capsize=3, color=colors)
        ax.set_xticks(range(len(vals)), labels, rotation=30, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        better = METRIC_SPECS[metric_name(col)].higher_is_better
        arrow = "lower is better" if better is False else "higher is better" if better else "descriptive, not ranked"
        ax.set_title(f"{col}\n({arrow}; bars: 95% bootstrap CI)", fontsize=8)
    title = f"genau-bench leaderboard: {split}, protocol {protocol}"
    if not ours["comparable"].all():
        title += "\n* random / tiny weights (model or backbones): NOT comparable to published numbers"
    fig.suptitle(title, fontsize=9)
    if len(groups) > 1:
        legend = "\n".join(f"[{letter[g]}] {g}" for g in groups) + "\nrows are ranked only within their group"
        fig.text(0.01, 0.005, legend, fontsize=7, va="bottom", ha="left")
    bottom = (0.18 * len(groups) + 0.35) / fig.get_figheight() if len(groups) > 1 else 0
    fig.tight_layout(rect=(0, bottom, 1, 1))
    try:
        with atomic_path(path, suffix=".png", clean=False) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
