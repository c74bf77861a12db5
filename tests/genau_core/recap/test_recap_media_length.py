"""Issue 20, item 3: media that decode short are reported (declared and decoded duration in
report.json), and no segment passes the end of the decoded audio (AAC end padding)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("av", reason="PyAV is not installed (pip install 'genau-bench[recap]')")
pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install 'genau-bench[recap]')")

from genau_core.recap.decode import decode_media, decode_spans, probe_duration_ms, wav_declared_frames  # noqa: E402
from tests.genau_core.recap.test_recap_pipeline import config, read_jsonl, tones, write_av  # noqa: E402


def truncate(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("short-media")
    sf.write(d / "full.wav", tones(16000, [(12, 1000)]), 16000, subtype="PCM_16")
    truncate(d / "full.wav", d / "cut.wav")
    write_av(d / "full.mkv", tones(44100, [(15.5, 3000)]), 44100, "flac")
    truncate(d / "full.mkv", d / "cut.mkv")
    write_av(d / "aac.mp4", tones(16000, [(20, 1000)]), 16000, "aac", video=True)
    return d


def test_truncated_wav_declared_vs_decoded(media):
    assert wav_declared_frames(media / "cut.wav") == 12 * 16000  # the header still says 12 s
    assert probe_duration_ms(media / "cut.wav") == 12000  # planned at the declared length
    m = decode_media(media / "cut.wav", [(4000, 9000)])
    assert m.ms(m.declared) == 12000 and 5900 < m.ms(m.decoded) < 6000
    assert len(m.waves[0]) == m.decoded - 4 * 16000  # the span stops where the audio does
    full = decode_media(media / "full.wav", [(4000, 9000)])
    assert full.declared == full.decoded == 12 * 16000 and len(full.waves[0]) == 5 * 16000


def test_truncated_mkv_declared_vs_decoded(media):
    m = decode_media(media / "cut.mkv", [(1000, 2000), (12000, 15000)])
    assert m.ms(m.declared) == 15500 and 1000 < m.ms(m.decoded) < 14000
    assert len(m.waves[1]) == 0 and len(m.waves[0]) == 44100
    full = decode_media(media / "full.mkv", [(1000, 2000)])
    assert abs(full.ms(full.decoded) - 15500) <= 1


def test_aac_end_padding_never_passes_the_declared_end(media):
    m = decode_media(media / "aac.mp4", [(10000, 20100)])
    assert m.ms(m.declared) == 20000 and m.ms(m.decoded) > 20000  # the encoder's padding decodes
    assert len(m.waves[0]) == 10 * 16000  # ... but no sample past 20.0 s comes back
    (w,), _ = decode_spans(media / "aac.mp4", [(10000, 20100)])
    assert len(w) == 10 * 16000


def test_pipeline_reports_short_media_and_clips_end_with_the_audio(media, tmp_path):
    from genau_core.recap import run_recap

    rows = [
        {"id": "cut_wav", "media": str(media / "cut.wav"), "transcript": str(tmp_path / "none.vtt")},
        {"id": "cut_mkv", "media": str(media / "cut.mkv"), "transcript": str(tmp_path / "none.vtt")},
        {"id": "full_wav", "media": str(media / "full.wav"), "transcript": str(tmp_path / "none.vtt")},
        # the list's duration (20.015 s) is longer than the file (20.0 s, which decodes to 20.032 s)
        {"id": "aac", "media": str(media / "aac.mp4"), "transcript": str(tmp_path / "none.vtt"), "duration": 20.015},
    ]
    (tmp_path / "none.vtt").write_text("WEBVTT\n\n")
    (tmp_path / "v.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    res = run_recap(config(tmp_path / "v.jsonl", out, figures=False))
    report = json.loads((out / "report.json").read_text())
    assert report["errors"] == [] and res.warnings == report["warnings"]
    got = {w["video_id"]: w for w in report["warnings"]}
    assert sorted(got) == ["cut_mkv", "cut_wav"]  # full_wav and aac are whole
    for vid, declared in (("cut_wav", 12.0), ("cut_mkv", 15.5)):
        w = got[vid]
        assert (w["kind"], w["declared_by"], w["declared_duration"]) == ("decoded_short", "media", declared)
        assert 0 < w["decoded_duration"] < declared - 1 and w["file"].endswith(vid.replace("_", "."))
        assert f"but the file declares {declared:.3f} s" in w["reason"]
    import pyarrow.parquet as pq

    videos = {v["video_id"]: v for v in pq.read_table(out / "videos.parquet").to_pylist()}
    segments = pq.read_table(out / "segments.parquet").to_pylist()
    assert {v["status"] for v in videos.values()} == {"ok"}
    for vid, v in videos.items():
        end = min(v["decoded_duration"], v["declared_duration"])
        assert max(s["end"] for s in segments if s["video_id"] == vid) <= end, vid
    assert videos["cut_wav"]["declared_duration"] == 12.0 and videos["full_wav"]["decoded_duration"] == 12.0
    aac = [s for s in segments if s["video_id"] == "aac"]
    assert [(s["start"], s["end"]) for s in aac] == [(0.0, 10.0), (10.0, 20.0)]  # not 20.015
    for r in read_jsonl(out / "manifest.jsonl"):
        v = videos[r["video_id"]]
        assert r["end"] <= min(v["decoded_duration"], v["declared_duration"])
        wav, sr = sf.read(out / r["audio"], dtype="float32")
        assert len(wav) == round(r["duration"] * sr) and np.isfinite(wav).all()
