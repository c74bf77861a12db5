import math

import pandas as pd
import pytest

from bench.leaderboard import build_leaderboard, write_leaderboard
from bench.runs.store import RunStore


def _record(model, fd, *, model_weights="official", backbone_weights="official", protocol="gb-1", date="2026-11-26T00:00:00+00:00"):
    return {
        "record_version": 1, "scoring_key": "k", "date": date, "protocol_version": protocol, "split": "audiocaps",
        "prompt_list_sha256": "ab" * 32, "reference_list_sha256": "cd" * 32, "model": model,
        "model_weights": model_weights, "checkpoint_identity": "sha256:" + "0" * 64, "parameter_count": 1000,
        "training_data": "x", "text_encoder": "t5",
        "settings": {"sampler": "DDIM", "steps": 200, "guidance": 3.0, "seed": 0, "candidates_per_prompt": 1,
                     "output_sample_rate": 16000, "duration_s": 10.0, "overrides": {}},
        "settings_hash": f"{model}-{protocol}", "n_evaluated": 964, "n_missing_reference": 11, "n_not_generated": 0, "n_failed": 0,
        "metrics": [
            {"metric": "FD", "column": "FD_panns-cnn14@16k", "value": fd, "ci_low": fd - 1, "ci_high": fd + 1, "n": 964, "backbone": "panns-cnn14-16k", "reason": ""},
            {"metric": "CLAP_MS", "column": "CLAP_MS_ms-clap-2023@44.1k", "value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0, "backbone": "ms-clap-2023", "reason": "checkpoint missing"},
        ],
        "backbones": {"panns-cnn14-16k": {"name": "panns-cnn14-16k", "sample_rate": 16000, "checkpoint_id": "sha256:" + "1" * 64, "weights": backbone_weights}},
        "backbone_weights": backbone_weights, "failures": [], "resampler": "soxr-hq",
    }


def _store(tmp_path, records):
    store = RunStore(tmp_path)
    for rec in records:
        run = store.run_dir("audiocaps", rec["model"], rec["settings_hash"])
        run.path.mkdir(parents=True)
        (run.path / "manifest.json").write_text("{}")
        run.write_result("k", rec)
    return tmp_path


def test_ranks_only_comparable_rows_of_one_protocol(tmp_path):
    root = _store(tmp_path, [
        _record("genau-l", 16.0),
        _record("tango2", 20.0),
        _record("tango", 18.0, protocol="gb-0"),
        _record("genau-tiny", 1.0, model_weights="random", backbone_weights="random"),
        _record("audioldm-l", 30.0, backbone_weights="random"),
    ])
    df = build_leaderboard(root, "audiocaps")
    ours = df[df["source"] == "this benchmark"].set_index("model")
    assert ours.loc["genau-l", "rank"] == 1 and ours.loc["tango2", "rank"] == 2
    assert ours.loc["tango", "rank"] == 1  # ranked only within its own protocol version
    assert pd.isna(ours.loc["genau-tiny", "rank"]) and pd.isna(ours.loc["audioldm-l", "rank"])
    assert ours.loc["genau-tiny", "weights"].startswith("NOT COMPARABLE")
    assert ours.loc["audioldm-l", "weights"] == "NOT COMPARABLE (model official, backbones random)"
    assert ours.loc["genau-l", "CLAP_MS_ms-clap-2023@44.1k_missing_reason"] == "checkpoint missing"
    paper = df[df["source"] == "paper Table 4"]
    assert len(paper) == 8 and paper["rank"].isna().all() and not paper["comparable"].any()
    assert paper.set_index("model").loc["GenAu-Large", "FD_panns-cnn14@16k"] == pytest.approx(16.51)


def test_written_csv_and_chart(tmp_path):
    root = _store(tmp_path / "runs", [_record("genau-l", 16.0), _record("genau-tiny", 1.0, model_weights="random", backbone_weights="random")])
    df = build_leaderboard(root, "audiocaps", with_paper=False)
    csv, png = write_leaderboard(df, tmp_path / "lb", "audiocaps")
    back = pd.read_csv(csv)
    assert list(back["model"]) == ["genau-l", "genau-tiny"]
    assert {"protocol_version", "checkpoint", "backbones", "resampler", "n_evaluated", "n_missing", "FD_panns-cnn14@16k_ci95_low"} <= set(back.columns)
    assert png.stat().st_size > 1000


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no scored runs for split 'audiocaps'"):
        build_leaderboard(tmp_path, "audiocaps")
