import math

import pandas as pd
import pytest

from bench.leaderboard import build_leaderboard, write_leaderboard
from bench.runs.store import RunStore


def _record(
    model,
    fd,
    *,
    model_weights="official",
    backbone_weights="official",
    protocol="gb-1",
    date="2026-11-26T00:00:00+00:00",
):
    return {
        "record_version": 1,
        "scoring_key": "k",
        "date": date,
        "protocol_version": protocol,
        "split": "audiocaps",
        "prompt_list_sha256": "ab" * 32,
        "reference_list_sha256": "cd" * 32,
        "model": model,
        "model_weights": model_weights,
        "checkpoint_identity": "sha256:" + "0" * 64,
        "parameter_count": 1000,
        "training_data": "x",
        "text_encoder": "t5",
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
        "settings_hash": f"{model}-{protocol}",
        "n_prompts": 975,
        "n_evaluated": 964,
        "n_missing_reference": 11,
        "n_not_generated": 0,
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
            },
            {
                "metric": "CLAP_MS",
                "column": "CLAP_MS_ms-clap-2023@44.1k",
                "value": math.nan,
                "ci_low": math.nan,
                "ci_high": math.nan,
                "n": 0,
                "backbone": "ms-clap-2023",
                "reason": "checkpoint missing",
            },
        ],
        "backbones": {
            "panns-cnn14-16k": {
                "name": "panns-cnn14-16k",
                "sample_rate": 16000,
                "checkpoint_id": "sha256:" + "1" * 64,
                "weights": backbone_weights,
            }
        },
        "backbone_weights": backbone_weights,
        "failures": [],
        "resampler": "soxr-hq",
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
    root = _store(
        tmp_path,
        [
            _record("genau-l", 16.0),
            _record("tango2", 20.0),
            _record("tango", 18.0, protocol="gb-0"),
            _record("genau-tiny", 1.0, model_weights="random", backbone_weights="random"),
            _record("audioldm-l", 30.0, backbone_weights="random"),
        ],
    )
    df = build_leaderboard(root, "audiocaps")
    ours = df[df["source"] == "this benchmark"].set_index("model")
    assert ours.loc["genau-l", "rank"] == 1 and ours.loc["tango2", "rank"] == 2
    assert ours.loc["tango", "rank"] == 1  # ranked only within its own protocol version
    assert pd.isna(ours.loc["genau-tiny", "rank"]) and pd.isna(ours.loc["audioldm-l", "rank"])
    assert ours.loc["genau-tiny", "weights"].startswith("NOT COMPARABLE")
    # record_version 1 said "official" for any file: read as an unverified checkpoint file
    assert ours.loc["audioldm-l", "weights"] == "NOT COMPARABLE: model weights checkpoint, backbone weights random"
    assert ours.loc["genau-l", "weights"].startswith("checkpoint files (sha256 recorded; not matched")
    assert ours.loc["genau-l", "comparison_group"].startswith("older record: prompt set not recorded (975 prompts")
    assert ours.loc["genau-l", "CLAP_MS_ms-clap-2023@44.1k_missing_reason"] == "checkpoint missing"
    paper = df[df["source"] == "reported: GenAU; Haji-Ali et al., 2024, Table 4"]  # leaderboards/reported/ (issue 19)
    assert len(paper) == 9 and paper["rank"].isna().all() and not paper["comparable"].any()
    assert paper.set_index("model").loc["GenAu-Large", "FD_panns-cnn14@16k"] == pytest.approx(16.51)


def test_written_csv_and_chart(tmp_path):
    root = _store(
        tmp_path / "runs",
        [_record("genau-l", 16.0), _record("genau-tiny", 1.0, model_weights="random", backbone_weights="random")],
    )
    df = build_leaderboard(root, "audiocaps", with_paper=False)
    csv, png = write_leaderboard(df, tmp_path / "lb", "audiocaps")
    back = pd.read_csv(csv)
    assert list(back["model"]) == ["genau-l", "genau-tiny"]
    assert {
        "protocol_version",
        "checkpoint",
        "backbones",
        "resampler",
        "n_evaluated",
        "n_missing",
        "FD_panns-cnn14@16k_ci95_low",
    } <= set(back.columns)
    assert png.stat().st_size > 1000


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no scored runs for split 'audiocaps'"):
        build_leaderboard(tmp_path, "audiocaps")


def _v2(model, fd, *, n=975, prompt_set="p-full", reference_set="r-full", split_n=975, settings_hash=None, **kw):
    """A record as written since prompt sets are recorded (record_version 2)."""
    rec = _record(model, fd, **kw)
    rec.update(
        record_version=2,
        prompt_set={"sha256": prompt_set * 8, "n": n},
        split_n_prompts=split_n,
        reference_set={"sha256": reference_set * 8, "n": n},
        n_prompts=n,
        settings_hash=settings_hash or rec["settings_hash"],
    )
    return rec


def test_partial_run_is_never_ranked_with_the_full_run(tmp_path):
    """Issue 15 item 1: a `--limit 2` row (FD 1.0 over 2 prompts) is shown in its own labelled group,
    and the full rows keep their ranks."""
    root = _store(
        tmp_path,
        [
            _v2("genau-l", 16.0),
            _v2("tango2", 20.0),
            _v2("genau-s", 1.0, n=2, prompt_set="p-two", reference_set="r-two"),
            _v2("tango", 12.0, reference_set="r-other"),  # same prompts, other reference files
        ],
    )
    df = build_leaderboard(root, "audiocaps", with_paper=False)
    ours = df.set_index("model")
    assert ours.loc["genau-l", "rank"] == 1 and ours.loc["tango2", "rank"] == 2
    assert ours.loc["genau-s", "comparison_group"].startswith("PARTIAL: 2 of 975 prompts")
    assert ours.loc["tango", "comparison_group"] != ours.loc["genau-l", "comparison_group"]
    assert ours.loc["genau-s", "rank"] == 1 and ours.loc["tango", "rank"] == 1  # each alone in its group
    assert ours.loc["genau-l", "comparison_group"].startswith("975 of 975 prompts")
    # the largest group comes first, the partial one last
    assert list(df["model"])[:2] == ["genau-l", "tango2"] and list(df["model"])[-1] == "genau-s"
    assert ours.loc["genau-s", "n_prompts"] == 2 and ours.loc["genau-l", "prompt_set_sha256"] == "p-full" * 8


def test_old_records_form_their_own_group(tmp_path):
    root = _store(tmp_path, [_v2("genau-l", 16.0), _record("tango2", 10.0)])
    df = build_leaderboard(root, "audiocaps", with_paper=False).set_index("model")
    assert df.loc["genau-l", "rank"] == 1 and df.loc["tango2", "rank"] == 1
    assert df.loc["tango2", "comparison_group"].startswith("older record")
    assert df.loc["tango2", "prompt_set_sha256"] == "not recorded"


def test_partial_and_full_scoring_of_one_run_are_both_shown(tmp_path):
    store = RunStore(tmp_path)
    run = store.run_dir("audiocaps", "genau-l", "h")
    run.path.mkdir(parents=True)
    (run.path / "manifest.json").write_text("{}")
    run.write_result("full", _v2("genau-l", 16.0, date="2026-11-26T00:00:00+00:00"))
    run.write_result("two", _v2("genau-l", 1.0, n=2, prompt_set="p-two", date="2026-11-27T00:00:00+00:00"))
    df = build_leaderboard(tmp_path, "audiocaps", with_paper=False)
    assert sorted(df["n_prompts"]) == [2, 975]  # the later partial scoring does not hide the full one


def test_written_csv_keeps_backbone_text_and_chart_is_a_grid(tmp_path):
    from PIL import Image

    from bench.leaderboard import chart_columns

    rec = _v2("genau-tiny", 1.0, model_weights="random", backbone_weights="random")
    rec["backbones"]["panns-cnn14-16k"].update(checkpoint_id="random:seed=0+in-process-tokenizer", weights="random")
    for metric in ("FAD", "IS", "KL_softmax", "KL_sigmoid", "KAD", "CLAP_LAION"):
        rec["metrics"].append(
            {
                "metric": metric,
                "column": f"{metric}_x@16k",
                "value": 0.5,
                "ci_low": 0.4,
                "ci_high": 0.6,
                "n": 10,
                "backbone": "x",
                "reason": "",
            }
        )
    root = _store(tmp_path / "runs", [rec])
    df = build_leaderboard(root, "audiocaps", with_paper=False)
    assert "KL_sigmoid_x@16k" in chart_columns(df)
    csv, png = write_leaderboard(df, tmp_path / "lb", "audiocaps")
    back = pd.read_csv(csv)
    assert back.loc[0, "backbones"] == "panns-cnn14-16k@16000=random:seed=0+in-process-tokenizer(random)"
    w, h = Image.open(png).size
    assert w <= 1300 and h >= 0.5 * w  # 7 panels in a 3-column grid, not a 7 x 1 strip (was 2464 x 396)


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    """Issue 15 item 7: `kill -9` during `bench leaderboard` leaves `.audiocaps.<pid>.tmp.png`; the next
    export removes it, and leaves a live process's temporary alone."""
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead = done.stdout.strip()
    out = tmp_path / "lb"
    out.mkdir()
    stale = [out / f".audiocaps.{dead}.tmp.png", out / f".audiocaps.csv.{dead}.tmp"]
    live = out / f".audiocaps.{os.getppid()}.tmp.png"
    for p in (*stale, live):
        p.write_bytes(b"")
    root = _store(tmp_path / "runs", [_v2("genau-l", 16.0)])
    write_leaderboard(build_leaderboard(root, "audiocaps", with_paper=False), out, "audiocaps")
    assert not any(p.exists() for p in stale) and live.exists()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["audiocaps.csv", "audiocaps.png"]
