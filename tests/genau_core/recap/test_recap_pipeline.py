"""The AutoReCap pipeline end to end on generated media (no downloads): local engine, the
manifest read by `bench` and by GenAu training, statistics, errors per file, fetchers,
idempotent re-runs and resuming a killed run.

`BandCaptioner` is a test double (not product code): it names a clip by its dominant
frequency band, so every caption is predictable from the generated tones.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pyarrow", reason="the recap pipeline needs pyarrow (pip install 'genau-bench[recap]')")
pytest.importorskip("av", reason="the recap pipeline tests need PyAV (pip install 'genau-bench[recap]')")

from genau_core.captioning import Captioner  # noqa: E402
from genau_core.recap import CommandFetcher, RecapConfig, run_recap  # noqa: E402
from genau_core.recap.store import RecapStoreError, Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
CAPTIONER = "tests.genau_core.recap.test_recap_pipeline:BandCaptioner"


# ----------------------------------------------------------------------------- test doubles


def band_caption(w: np.ndarray, sr: int) -> str:
    if len(w) == 0 or float(np.sqrt(np.mean(w**2))) < 1e-3:
        return "silence"
    spec = np.abs(np.fft.rfft(w * np.hanning(len(w))))
    f = float(np.argmax(spec)) * sr / len(w)
    if f < 200:
        return "a deep rumble"
    if f < 700:
        return "a man is speaking"  # dropped by the keyword filter
    if f < 2000:
        return "a steady beep"
    return "a high pitched whistle"


class BandCaptioner(Captioner):
    name = "band-test"
    sample_rate = 16000
    calls: ClassVar[list] = []

    def caption(self, waveforms, metadata=None, *, batch_size=8):
        assert len(waveforms) <= batch_size
        for w in waveforms:
            assert w.dtype == np.float32 and w.ndim == 1 and len(w) <= 10 * self.sample_rate
        type(self).calls.append((len(waveforms), [dict(m) for m in (metadata or [])]))
        return [band_caption(w, self.sample_rate) for w in waveforms]

    @property
    def identity(self) -> str:
        return "test:band-v1"


class SlowBandCaptioner(BandCaptioner):
    def caption(self, waveforms, metadata=None, *, batch_size=8):
        time.sleep(0.6)
        return super().caption(waveforms, metadata, batch_size=batch_size)


# ----------------------------------------------------------------------------- media


def tones(sr: int, parts: list[tuple[float, float]]) -> np.ndarray:
    """Concatenated sine tones [(seconds, Hz)]; Hz 0 is silence."""
    out = []
    for sec, hz in parts:
        t = np.arange(int(round(sec * sr))) / sr
        out.append(0.3 * np.sin(2 * np.pi * hz * t) if hz else np.zeros_like(t))
    return np.concatenate(out).astype(np.float32)


def write_av(path: Path, x: np.ndarray, sr: int, codec: str, *, video: bool = False) -> Path:
    """A container with one mono audio stream (and a tiny video stream) written by PyAV."""
    import av

    out = av.open(str(path), "w")
    if video:
        v = out.add_stream("mpeg4", rate=2)
        v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
    s = out.add_stream(codec, rate=sr)
    s.layout = "mono"
    for i in range(0, len(x), 1024):
        f = av.AudioFrame.from_ndarray(x[None, i : i + 1024], format="flt", layout="mono")
        f.sample_rate, f.pts = sr, i
        for p in s.encode(f):
            out.mux(p)
    for p in s.encode(None):
        out.mux(p)
    if video:
        for k in range(int(len(x) / sr * 2)):
            fr = av.VideoFrame.from_ndarray(np.full((32, 32, 3), (k * 9) % 255, np.uint8), format="rgb24")
            fr.pts = k
            for p in v.encode(fr):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    out.close()
    return path


VTT_V1 = (
    "WEBVTT\nKind: captions\n\n00:00:05.000 --> 00:00:08.000\nhello there\n\n00:00:20.000 --> 00:00:21.000\n[Music]\n"
)
SRT_V2 = (
    "1\n00:00:03,000 --> 00:00:06,000\nfirst\n\n"
    "2\n00:00:04,000 --> 00:00:07,000\noverlapping\n\n"
    "3\n00:00:40,000 --> 00:00:45,000\npast the end\n"
)
JSON3_V3 = json.dumps(
    {
        "events": [
            {"tStartMs": 0, "dDurationMs": 16000, "id": 1, "wpWinPosId": 1},
            {"tStartMs": 0, "dDurationMs": 2000, "segs": [{"utf8": "hi"}]},
            {"tStartMs": 2000, "dDurationMs": 2000, "segs": [{"utf8": "there"}]},
            {"tStartMs": 9000, "dDurationMs": 500, "segs": [{"utf8": "\n"}]},
        ]
    }
)

# (id, media file, transcript file, metadata) -> expected clips (start_ms, end_ms, caption, n_segments)
EXPECTED_CLIPS = [
    ("dQw4w9WgXcQ", 0, 5000, "a steady beep", 1),
    ("dQw4w9WgXcQ", 8000, 20000, "a high pitched whistle", 2),
    ("dQw4w9WgXcQ", 21000, 30000, "a high pitched whistle", 1),
    ("odd/id 2", 7000, 25000, "a deep rumble", 2),
    ("v3", 4000, 15500, "a high pitched whistle", 2),
    ("v7", 0, 12000, "a steady beep", 2),
]
EXPECTED_SEGMENTS = {"dQw4w9WgXcQ": 4, "odd/id 2": 3, "v3": 2, "v7": 2}


def make_dataset(root: Path) -> Path:
    """Seven videos exercising every path; returns the video list (CSV)."""
    root.mkdir(parents=True, exist_ok=True)
    m, t = root / "media", root / "subs"
    m.mkdir(exist_ok=True)
    t.mkdir(exist_ok=True)
    write_av(m / "v1.mp4", tones(16000, [(8, 1000), (22, 3000)]), 16000, "aac", video=True)
    sf.write(m / "v2.flac", tones(22050, [(7, 400), (18, 100)]), 22050)
    write_av(m / "v3.mkv", tones(44100, [(15.5, 3000)]), 44100, "flac")
    sf.write(m / "v4.wav", tones(16000, [(5, 1000)]), 16000)
    sf.write(m / "v7.wav", tones(16000, [(12, 1000)]), 16000, subtype="PCM_16")
    (t / "v1.en.vtt").write_text(VTT_V1)
    (t / "v2.srt").write_text(SRT_V2)
    (t / "v3.json3").write_text(JSON3_V3)
    (t / "v4.vtt").write_text("WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nbroken arrow\n")
    (t / "v6.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhi\n")
    (t / "v7.vtt").write_text("WEBVTT\n\n")
    rows = [
        {
            "id": "dQw4w9WgXcQ",
            "media": "media/v1.mp4",
            "transcript": "subs/v1.en.vtt",
            "title": "Rainy street",
            "video_caption": "a street in the rain",
        },
        {
            "id": "odd/id 2",
            "media": "media/v2.flac",
            "transcript": "subs/v2.srt",
            "title": "Garage",
            "description": "engine test",
        },
        {"id": "v3", "media": "media/v3.mkv", "transcript": "subs/v3.json3"},
        {"id": "v4", "media": "media/v4.wav", "transcript": "subs/v4.vtt"},
        {"id": "v5", "media": "media/v4.wav", "transcript": ""},
        {"id": "v6", "media": "media/missing.mp4", "transcript": "subs/v6.srt"},
        # the list claims 14 s, the audio holds 12 s: planned [10, 14) is decoded as [10, 12)
        {"id": "v7", "media": "media/v7.wav", "transcript": "subs/v7.vtt", "duration": 14, "title": "Beeper"},
    ]
    lst = root / "videos.jsonl"
    lst.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return lst


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("recap-data"))


def config(videos, out, **kw) -> RecapConfig:
    kw.setdefault("captioner", CAPTIONER)
    kw.setdefault("progress", False)
    return RecapConfig(videos=videos, out=out, **kw)


def read_jsonl(p: Path) -> list[dict]:
    return [json.loads(line) for line in p.read_text().splitlines()]


def sub_list(dataset: Path, ids: set[str], dest: Path) -> Path:
    """Some rows of the dataset's list, with absolute paths, written elsewhere."""
    rows = [r for r in read_jsonl(dataset) if r["id"] in ids]
    for r in rows:
        for k in ("media", "transcript"):
            r[k] = str(dataset.parent / r[k]) if r[k] else ""
    dest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return dest


def clip_files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in (out / "clips").rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def local_run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("recap-local")
    BandCaptioner.calls.clear()
    res = run_recap(config(dataset, out, batch_size=4, shard_size=3))
    return res, out, list(BandCaptioner.calls)


# ----------------------------------------------------------------------------- tests


def test_manifest_rows(local_run):
    res, out, _ = local_run
    rows = read_jsonl(out / "manifest.jsonl")
    got = [
        (r["video_id"], round(r["start"] * 1000), round(r["end"] * 1000), r["caption"], r["n_segments"]) for r in rows
    ]
    assert got == EXPECTED_CLIPS
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["dataset_id"] == "autocap"
        assert r["captioner"] == "band-test@test:band-v1"
        assert r["duration"] == pytest.approx(r["end"] - r["start"])
        assert "/" not in r["id"] and not r["id"].startswith(".")
        assert Path(r["source"]).is_file()
        wav, sr = sf.read(out / r["audio"], dtype="float32")
        assert sr == 16000 == r["sample_rate"]
        assert len(wav) == round(r["duration"] * 16000)
        assert band_caption(wav, sr) == r["caption"]  # the written clip is the captioned interval
    assert rows[3]["id"].startswith("odd_id_2-") and rows[0]["id"] == "dQw4w9WgXcQ_000000000_000005000"
    import pyarrow.parquet as pq

    assert pq.read_table(out / "manifest.parquet").to_pylist() == rows
    assert clip_files(out) == {r["audio"] for r in rows}


def test_errors_reported_per_file_and_run_continues(local_run, dataset):
    res, out, _ = local_run
    errors = json.loads((out / "report.json").read_text())["errors"]
    assert [(e["video_id"], e["status"], e["stage"]) for e in errors] == [
        ("v4", "transcript_error", "transcript"),
        ("v6", "media_error", "probe"),
    ]
    assert (
        errors[0]["file"].endswith("subs/v4.vtt") and "line 3: cue block without a timing line" in errors[0]["reason"]
    )
    assert errors[1]["file"].endswith("media/missing.mp4") and "not found" in errors[1]["reason"]
    assert res.errors == errors
    # v7: the list says 14 s, the audio holds 12 s: processed, and reported with both durations
    warnings = json.loads((out / "report.json").read_text())["warnings"]
    got = [(w["video_id"], w["kind"], w["declared_by"], w["declared_duration"], w["decoded_duration"])
           for w in warnings]  # fmt: skip
    assert got == [("v7", "decoded_short", "list", 14.0, 12.0)]
    assert warnings[0]["file"].endswith("media/v7.wav") and "the video list says 14.000 s" in warnings[0]["reason"]
    assert res.warnings == warnings


def test_statistics_and_figures(local_run):
    res, out, _ = local_run
    st = json.loads((out / "stats.json").read_text())
    assert st == res.stats
    assert st["videos"] == {
        "listed": 7,
        "ok": 4,
        "no_transcript": 1,
        "transcript_error": 1,
        "media_error": 1,
        "with_segments": 4,
        "with_clips": 4,
    }
    total = 30 + 25 + 15.5 + 14  # v7 is planned from the list's 14 s
    segs = (5 + 10 + 2 + 9) + (3 + 10 + 8) + (10 + 1.5) + (10 + 2)
    assert st["time_s"]["total"] == pytest.approx(total)
    assert st["time_s"]["raw_segments"] == pytest.approx(segs)
    assert st["rejected_time_fraction"] == pytest.approx(1 - segs / total, abs=1e-6)
    assert st["kept_time_fraction"] == pytest.approx((5 + 12 + 9 + 18 + 11.5 + 12) / total, abs=1e-6)
    c = st["counts"]
    assert (c["raw_segments"], c["clips_after_merge"], c["dropped_by_keyword"], c["final_clips"]) == (11, 7, 1, 6)
    assert c["cues_past_end"] == 1 and c["empty_cues_skipped"] == 1
    assert st["dropped_keywords"] == {"speaking": 1}
    h = st["histograms"]
    assert sum(h["raw"]["segments_per_video"]["counts"]) == 4 and sum(h["final"]["duration_s"]["counts"]) == 6
    for name in ("segments_per_video.png", "caption_length.png", "duration.png"):
        png = (out / "figures" / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    import pyarrow.parquet as pq

    videos = pq.read_table(out / "videos.parquet").to_pylist()
    v7 = next(v for v in videos if v["video_id"] == "v7")
    assert v7["n_planned_segments"] == 2 and v7["segment_time"] == pytest.approx(12.0)
    dropped = pq.read_table(out / "dropped.parquet").to_pylist()
    assert [(d["video_id"], d["start"], d["end"], d["keyword"]) for d in dropped] == [
        ("odd/id 2", 0.0, 3.0, "speaking")
    ]
    assert dropped[0]["reason"] == "'speaking' (rule 'speaking')"  # each drop's reason is recorded


def test_captioner_batches_across_videos_with_metadata(local_run, dataset):
    _, _, calls = local_run
    # shard 0 holds 4 + 3 + 2 segments of three videos: batches fill across videos (4, 4, 1);
    # shard 1 has no usable video; shard 2 holds v7's 2 segments
    assert [n for n, _ in calls] == [4, 4, 1, 2]
    seen = [m for _, metas in calls for m in metas]
    meta = {
        "dQw4w9WgXcQ": {"title": "Rainy street", "video_caption": "a street in the rain", "description": ""},
        "odd/id 2": {"title": "Garage", "video_caption": "", "description": "engine test"},
        "v3": {"title": "", "video_caption": "", "description": ""},
        "v7": {"title": "Beeper", "video_caption": "", "description": ""},
    }
    assert seen == [meta[v] for v, n in EXPECTED_SEGMENTS.items() for _ in range(n)]


def test_manifest_is_a_bench_split_and_genau_training_data(local_run):
    _, out, _ = local_run
    from bench.splits import load_split

    split = load_split(str(out / "manifest.jsonl"))
    assert len(split.items) == 6 and split.n_with_reference == 6
    assert split.items[1].prompt == "a high pitched whistle"
    from genau_core.genau.configs import GENAU_TINY
    from genau_core.genau.train import AudioCaptionDataset, read_manifest

    rows = read_manifest(out / "manifest.jsonl")
    assert [r.dataset for r in rows] == ["autocap"] * 6
    ds = AudioCaptionDataset(rows, GENAU_TINY)
    wav, caption, ds_id = ds[0]
    assert caption == "a steady beep" and ds_id == GENAU_TINY.conditioning.dataset_ids["autocap"]
    assert wav.ndim == 1 and wav.shape[0] > 0


def test_rerun_is_idempotent(local_run, dataset):
    res, out, _ = local_run
    before = {
        p: (out / p).read_bytes()
        for p in ("manifest.jsonl", "manifest.parquet", "stats.json", "report.json", "segments.parquet")
    }
    clips = {p: (out / p).read_bytes() for p in clip_files(out)}
    again = run_recap(config(dataset, out, batch_size=4, shard_size=3))
    assert (again.shards, again.shards_skipped, again.shards_run, again.segments_run) == (3, 3, 0, 0)
    assert {p: (out / p).read_bytes() for p in before} == before
    assert {p: (out / p).read_bytes() for p in clip_files(out)} == clips
    assert len((out / "runs.jsonl").read_text().splitlines()) == 2


def test_other_settings_refused_then_restart(dataset, tmp_path):
    out = tmp_path / "o"
    run_recap(config(dataset, out, shard_size=7, write_clips=False, figures=False))
    rows = read_jsonl(out / "manifest.jsonl")
    assert [r["audio"] for r in rows] == [""] * 6 and not (out / "clips").exists()
    assert rows[0]["source"].endswith("media/v1.mp4") and rows[0]["sample_rate"] == 0
    from genau_core.recap.filters import FilterRules

    with pytest.raises(RecapStoreError, match="differ: filters"):
        run_recap(
            config(dataset, out, shard_size=7, write_clips=False, figures=False, filters=FilterRules(keywords=()))
        )
    res = run_recap(
        config(
            dataset, out, shard_size=7, write_clips=False, figures=False, filters=FilterRules(keywords=()), restart=True
        )
    )
    assert res.shards_run == 1 and res.stats["counts"]["final_clips"] == 7  # the 'speaking' clip is kept now


def test_one_run_per_folder(tmp_path):
    a, b = Store(tmp_path), Store(tmp_path)
    a.lock()
    try:
        with pytest.raises(RecapStoreError, match="another recap run"):
            b.lock()
    finally:
        a.unlock()
    b.lock()
    b.unlock()


def test_command_fetcher_same_manifest(dataset, tmp_path, local_run):
    _, ref_out, _ = local_run
    lst = sub_list(dataset, {"v3", "v4", "v7"}, tmp_path / "list.jsonl")
    script = "import shutil,sys,pathlib; p=pathlib.Path(sys.argv[1]); shutil.copy(p, sys.argv[2] + p.suffix)"
    copy = f'{sys.executable} -c "{script}" {{media}} {{out}}'
    cache = tmp_path / "cache"
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    run_recap(config(lst, out_a, fetcher=CommandFetcher(copy, cache), figures=False))
    run_recap(config(lst, out_b, figures=False))
    assert (out_a / "manifest.jsonl").read_bytes() == (out_b / "manifest.jsonl").read_bytes()
    assert len(read_jsonl(out_a / "manifest.jsonl")) == 2
    assert list(cache.iterdir()) == []  # fetched media released when the shard was done
    bad = CommandFetcher(f"{sys.executable} -c \"import sys; sys.exit('no network here')\"", cache)
    res = run_recap(config(lst, tmp_path / "c", fetcher=bad, figures=False))
    assert [(e["video_id"], e["stage"]) for e in res.errors] == [
        ("v3", "probe"),
        ("v4", "transcript"),
        ("v7", "decode"),
    ]
    assert "fetch command exited with 1: no network here" in res.errors[0]["reason"]


def test_resume_after_kill(dataset, tmp_path):
    """A run killed with SIGKILL resumes with no duplicate and no missing clip."""
    out, ref = tmp_path / "killed", tmp_path / "ref"
    args = [
        sys.executable,
        "-m",
        "genau_core.recap",
        "--videos",
        str(dataset),
        "--out",
        str(out),
        "--shard-size",
        "1",
        "--no-progress",
        "--no-figures",
        "--captioner",
        "tests.genau_core.recap.test_recap_pipeline:SlowBandCaptioner",
    ]
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    deadline = time.time() + 120
    try:
        while not (out / "shards" / "00001" / "done.json").exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "the run never finished shard 1"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = sorted(p.parent.name for p in (out / "shards").glob("*/done.json"))
    assert "00000" in done and len(done) < 7 and not (out / "manifest.jsonl").exists()
    # what a kill in the middle of shard 5 leaves: a clip and a table, but no done marker
    (out / "clips" / "00005").mkdir(parents=True, exist_ok=True)
    (out / "clips" / "00005" / "v3_000004000_000015500.wav").write_bytes(b"half a file")
    (out / "shards" / "00005").mkdir(parents=True, exist_ok=True)
    (out / "shards" / "00005" / "clips.parquet").write_bytes(b"partial")
    slow = "tests.genau_core.recap.test_recap_pipeline:SlowBandCaptioner"
    res = run_recap(config(dataset, out, shard_size=1, captioner=slow, figures=False))
    assert res.shards_skipped == len(done) and res.shards_run == 7 - len(done)
    run_recap(config(dataset, ref, shard_size=1, captioner=slow, figures=False))
    rows = read_jsonl(out / "manifest.jsonl")
    assert (out / "manifest.jsonl").read_bytes() == (ref / "manifest.jsonl").read_bytes()
    assert len({r["id"] for r in rows}) == len(rows) == 6
    assert clip_files(out) == {r["audio"] for r in rows} == clip_files(ref)
    for p in clip_files(out):
        assert (out / p).read_bytes() == (ref / p).read_bytes()


def test_cli(dataset, tmp_path, capsys):
    import argparse

    from genau_core.recap.cli import add_parser, config_from_args, main

    sub = tmp_path / "list.jsonl"
    sub_list(dataset, {"v3", "v4"}, sub)
    rc = main(
        [
            "--videos",
            str(sub),
            "--out",
            str(tmp_path / "o"),
            "--captioner",
            CAPTIONER,
            "--no-progress",
            "--clip-rate",
            "0",
            "--shard-size",
            "1",
        ]
    )
    cap = capsys.readouterr()
    assert rc == 0
    summary = json.loads(cap.out.strip().splitlines()[-1])
    assert summary == {"manifest": str(tmp_path / "o" / "manifest.jsonl"), "clips": 1, "errors": 1, "warnings": 0}
    assert "v4: transcript:" in cap.err and "2 listed" in cap.err
    row = read_jsonl(tmp_path / "o" / "manifest.jsonl")[0]
    assert (
        row["sample_rate"] == 44100 and sf.info(tmp_path / "o" / row["audio"]).samplerate == 44100
    )  # --clip-rate 0: the source's rate
    assert main(["--videos", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o2")]) == 2
    assert "video list not found" in capsys.readouterr().err
    assert main(["--videos", str(sub), "--out", str(tmp_path / "o3"), "--captioner", "nope"]) == 2
    assert "unknown captioner 'nope'" in capsys.readouterr().err

    parent = argparse.ArgumentParser(prog="genau")
    add_parser(parent.add_subparsers(dest="command"))
    kw = tmp_path / "kw.txt"
    kw.write_text("beep\n")
    args = parent.parse_args(
        [
            "recap",
            "--videos",
            "v.csv",
            "--out",
            "o",
            "--keywords-file",
            str(kw),
            "--extra-keyword",
            "rumble",
            "--engine",
            "ray",
            "--no-merge",
            "--max-clip",
            "30",
        ]
    )
    cfg = config_from_args(args)
    assert args.func.__name__ == "cmd_recap"
    assert (
        cfg.engine == "ray"
        and cfg.filters.keywords == ("beep", "rumble")
        and not cfg.filters.merge
        and cfg.filters.max_clip_s == 30.0
    )
    assert (
        config_from_args(
            parent.parse_args(["recap", "--videos", "v", "--out", "o", "--no-keyword-filter"])
        ).filters.keywords
        == ()
    )


def test_autocap_tiny_captions(dataset, tmp_path):
    try:
        import genau_core.autocap as autocap
    except ImportError:
        pytest.skip("genau_core.autocap (AutoCap, issue 5) is not importable yet")
    if not hasattr(autocap, "load_captioner"):
        pytest.skip(
            "genau_core.autocap does not expose load_captioner(name, device=, checkpoint=) yet (issue 5 in progress)"
        )
    lst = sub_list(dataset, {"v3", "v7"}, tmp_path / "list.jsonl")
    res = run_recap(config(lst, tmp_path / "out", captioner="autocap-tiny", device="cpu", figures=False))
    import pyarrow.parquet as pq

    segs = pq.read_table(tmp_path / "out" / "segments.parquet").to_pylist()
    assert len(segs) == 4 and all(s["caption"].strip() for s in segs)
    assert all(s["captioner"].startswith("autocap-tiny@") for s in segs)
    assert res.stats["counts"]["raw_segments"] == 4
