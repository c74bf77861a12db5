"""Issue 19 item 3: published numbers in leaderboards/reported/, each with its source and protocol facts,
shown beside our row for the same model, labelled "reported", never ranked."""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from bench.leaderboard import build_leaderboard
from bench.reported import (
    COLUMNS,
    NOT_STATED,
    PROTOCOL_FACTS,
    REPORTED_DIR,
    ReportedTableError,
    load_reported,
    read_reported_csv,
    reported_for_split,
)
from bench.runs.store import RunStore

# plugins being added by issue 18 (named in the TangoFlux README table); every other bench_model must exist
PENDING_PLUGINS = {"stable-audio-open", "tangoflux"}
SEED_PAPER = Path("/work/shared/seeds/taming-data-and-transformers-for-audio-generation.txt")
TANGO_MIRROR = Path("/work/.mirror/declare-lab+tango/repo")


def test_every_reported_row_names_its_source_and_protocol_facts():
    rows = load_reported()
    files = sorted(p.name for p in REPORTED_DIR.glob("*.csv"))
    assert {"genau_table4_audiocaps.csv", "genau_table3_bigsoundbank.csv"} <= set(files)
    assert len(rows) > 80
    for r in rows:
        where = f"{r.file}: {r.model} {r.metric}"
        assert r.source.strip() and r.paper.strip() and r.table.strip(), where
        assert r.paper_url.startswith("https://arxiv.org/abs/"), where
        # the source names a file at a commit, or the paper's arXiv id and table
        assert re.search(r"@[0-9a-f]{40}:|arXiv:\d{4}\.\d{5}", r.source), where
        for fact in PROTOCOL_FACTS:
            assert getattr(r, fact).strip(), f"{where}: empty {fact}"
        assert r.split in ("audiocaps", "bigsoundbank", NOT_STATED), where
        assert math.isfinite(r.value), where


def test_reported_models_and_metrics_are_ours_or_empty():
    from bench.metrics.registry import METRICS
    from bench.plugins.registry import available_names

    plugins = set(available_names()) | PENDING_PLUGINS
    for r in load_reported():
        assert r.bench_model == "" or r.bench_model in plugins, (r.file, r.model, r.bench_model)
        assert r.bench_metric == "" or r.bench_metric in METRICS, (r.file, r.metric, r.bench_metric)


def _table_line(text: str, caption: str, model: str) -> str:
    """The line of `model` in the table whose caption line starts with `caption`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(caption))
    for line in lines[start + 1 : start + 15]:
        if line.startswith(model + " "):
            return line
    raise AssertionError(f"{model} not in {caption}")


@pytest.mark.skipif(not SEED_PAPER.exists(), reason="the GenAU paper text is not on this machine")
def test_genau_tables_match_the_paper_text():
    text = SEED_PAPER.read_text(encoding="utf-8")
    for r in load_reported():
        if not r.file.startswith("genau_"):
            continue
        caption = {"Table 4": "Table 4: GenAu results", "Table 3": "Table 3: GenAu ablation"}[r.table]
        line = _table_line(text, caption, r.model)
        tokens = line[len(r.model) :].split()
        assert f"{r.value:.3f}".rstrip("0") in [t.rstrip("0") for t in tokens], (r.model, r.metric, r.value, line)


@pytest.mark.skipif(not TANGO_MIRROR.exists(), reason="the declare-lab/tango mirror is not on this machine")
def test_tango2_table_matches_the_readme():
    commit = "34ecd38898508017ca937508a047b42817d2b070"
    readme = subprocess.run(
        ["git", "-C", str(TANGO_MIRROR), "show", f"{commit}:README.md"], capture_output=True, text=True, check=True
    ).stdout
    for r in load_reported():
        if r.file != "tango2_readme_audiocaps.csv":
            continue
        line = next(x for x in readme.splitlines() if x.startswith("|") and x.split("|")[1].strip() == r.model)
        cells = [c.strip().strip("*") for c in line.split("|")]
        assert f"{r.value:.2f}" in cells, (r.model, r.metric, r.value, line)


def test_a_row_without_a_protocol_fact_is_refused_with_file_line_and_field(tmp_path):
    good = pd.read_csv(REPORTED_DIR / "genau_table4_audiocaps.csv", dtype=str).head(2)
    good.loc[1, "reranking"] = ""
    path = tmp_path / "bad.csv"
    good.to_csv(path, index=False)
    with pytest.raises(ReportedTableError, match=r"bad.csv:3: empty 'reranking'"):
        read_reported_csv(path)
    good.drop(columns=["source"]).to_csv(path, index=False)
    with pytest.raises(ReportedTableError, match="missing column"):
        read_reported_csv(path)
    assert set(COLUMNS) >= {"paper", "table", "model", "metric", "value", *PROTOCOL_FACTS}


def test_rows_without_a_named_set_are_on_no_split():
    assert all(r.split == "audiocaps" for r in reported_for_split("audiocaps"))
    flux = [r for r in load_reported() if r.file == "tangoflux_readme.csv"]
    assert flux and all(r.split == NOT_STATED for r in flux)


def _record(model: str, fd: float) -> dict:
    return {
        "record_version": 2,
        "scoring_key": "k",
        "date": "2026-12-06T00:00:00+00:00",
        "protocol_version": "gb-2",
        "split": "audiocaps",
        "prompt_list_sha256": "ab" * 32,
        "reference_list_sha256": "cd" * 32,
        "model": model,
        "model_weights": "official",
        "checkpoint_identity": "sha256:" + "0" * 64,
        "parameter_count": 1,
        "training_data": "x",
        "text_encoder": "t5",
        "split_n_prompts": 975,
        "prompt_set": {"sha256": "p" * 64, "n": 975},
        "reference_set": {"sha256": "r" * 64, "n": 964},
        "settings": {
            "sampler": "DDIM",
            "steps": 200,
            "guidance": 3.0,
            "seed": 0,
            "candidates_per_prompt": 1,
            "output_sample_rate": 16000,
            "duration_s": 10.0,
            "overrides": {},
        },
        "settings_hash": model,
        "n_prompts": 975,
        "n_evaluated": 964,
        "n_missing_reference": 11,
        "n_failed": 0,
        "metrics": [
            {
                "metric": "FD",
                "column": "FD_panns-cnn14@16k",
                "value": fd,
                "ci_low": fd - 1,
                "ci_high": fd + 1,
                "n": 964,
                "backbone": "panns-cnn14-16k",
                "reason": "",
            }
        ],
        "backbones": {
            "panns-cnn14-16k": {"sample_rate": 16000, "checkpoint_id": "sha256:" + "1" * 64, "weights": "official"}
        },
        "backbone_weights": "official",
        "failures": [],
        "resampler": "reference",
    }


def test_leaderboard_shows_reported_rows_beside_ours_never_ranked(tmp_path):
    store = RunStore(tmp_path)
    for model, fd in (("genau-l", 16.0), ("tango", 25.0)):
        run = store.run_dir("audiocaps", model, model)
        run.path.mkdir(parents=True)
        (run.path / "manifest.json").write_text("{}")
        run.write_result("k", _record(model, fd))
    df = build_leaderboard(tmp_path, "audiocaps")
    models = list(df["model"])
    i = models.index("genau-l")
    assert models[i + 1] == "GenAu-Large" and df.loc[i + 1, "source"].startswith("reported")
    assert df.loc[i + 1, "FD_panns-cnn14@16k"] == pytest.approx(16.51) and df.loc[i + 1, "reported_for"] == "genau-l"
    j = models.index("tango")
    beside = list(df.loc[j + 1 : j + 2, "model"])
    assert beside == ["TANGO", "TANGO"]  # GenAU Table 4 (26.13) and the TANGO paper's Table 1 (24.52)
    assert sorted(df.loc[j + 1 : j + 2, "FD_panns-cnn14@16k"]) == pytest.approx([24.52, 26.13])
    reported = df[df["source"].str.startswith("reported")]
    assert reported["rank"].isna().all() and not reported["comparable"].any()
    assert (reported["weights"].str.startswith("reported (")).all()
    assert reported["reported_protocol"].str.contains("reranking: ").all()
    ours = df[df["source"] == "this benchmark"].set_index("model")
    assert ours.loc["genau-l", "rank"] == 1 and ours.loc["tango", "rank"] == 2
    # bigsoundbank gets the paper's Table 3, not Table 4
    assert {r.table for r in reported_for_split("bigsoundbank")} == {"Table 3"}
    assert not build_leaderboard(tmp_path, "audiocaps", with_paper=False)["source"].str.startswith("reported").any()
