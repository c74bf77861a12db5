"""Issue 19 item 1: `bench report` writes one self-contained page per split (tests without a browser;
tests/bench/report/test_report_browser.py drives Chromium)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from bench.cli import main
from bench.compare import CompareConfig
from bench.report.collect import collect_split
from bench.report.fixtures import FakeStoreSpec, make_store
from bench.report.page import ReportConfig, script_json, write_report

EVIL = "<script>window.__xss = 1</script><b>bold</b> & </script><!-- birds"
PER_CLIP_ONLY = CompareConfig(per_clip_resamples=50, permutations=99, set_metrics=False, progress=False)


def page_data(html: str) -> dict:
    m = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', html, re.DOTALL)
    assert m, "no data element"
    return json.loads(m.group(1))


def _report(tmp_path, spec: FakeStoreSpec, **kw) -> tuple[Path, dict, str]:
    make_store(tmp_path / "runs", spec)
    runs = collect_split(tmp_path / "runs", spec.split, **kw)
    path = write_report(runs, ReportConfig(tmp_path / "out", compare_config=PER_CLIP_ONLY, progress=False))
    html = path.read_text(encoding="utf-8")
    return path, page_data(html), html


def test_page_is_self_contained_and_prompts_stay_text(tmp_path):
    path, data, html = _report(tmp_path, FakeStoreSpec(n_prompts=5, prompts={0: EVIL}))
    assert path == tmp_path / "out" / "index.html"
    # the prompt reaches the page only inside the JSON, with every '<', '>' and '&' escaped
    assert "window.__xss" in html and "<script>window.__xss" not in html and "<b>bold" not in html
    assert "\\u003cscript\\u003ewindow.__xss" in html
    assert data["rows"][0][1] == EVIL  # ... and decodes to exactly the prompt
    # nothing is fetched: no external src / href, no fetch / XHR in the script, a CSP that allows none
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "fetch(" not in html and "XMLHttpRequest" not in html and ".innerHTML" not in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert html.count("<script") == 2  # the data element and the inline script


def test_script_json_cannot_close_its_element():
    text = script_json({"p": "</script><script>alert(1)</script>", "q": "a\u2028b & c"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"p": "</script><script>alert(1)</script>", "q": "a\u2028b & c"}


def test_audio_is_linked_relatively(tmp_path):
    path, data, _ = _report(tmp_path, FakeStoreSpec(models=("m1", "m2"), n_prompts=3))
    assert data["rows"][0][3] == ["audio/m1/clip00000.wav", "audio/m2/clip00000.wav"]
    linked = path.parent / "audio" / "m1" / "clip00000.wav"
    source = next((tmp_path / "runs" / "demo" / "m1").glob("*/clips/clip00000.wav"))
    assert os.path.samefile(linked, source)  # a hard link: no copy on the same file system
    # a second report into the same folder replaces nothing it does not own and still works
    runs = collect_split(tmp_path / "runs", "demo")
    write_report(runs, ReportConfig(path.parent, compare=False, progress=False))
    assert os.path.samefile(linked, source)


def test_scores_labels_and_pairs(tmp_path):
    _, data, _ = _report(tmp_path, FakeStoreSpec(models=("m1", "m2"), n_prompts=6))
    assert [s["key"] for s in data["systems"]] == ["m1", "m2"]
    assert all(not s["comparable"] for s in data["systems"])
    assert data["banner"] and data["banner"][0].startswith("NOT COMPARABLE: m1, m2")
    per_clip = [c for c in data["columns"] if c["sys"] == 0]
    assert [c["metric"] for c in per_clip] == ["KL_softmax", "CLAP_LAION", "CLAP_MS"]
    assert per_clip[0]["hib"] is False and per_clip[1]["hib"] is True
    assert len(data["rows"]) == 6 and len(data["rows"][0][4]) == len(data["columns"]) == 6
    lb = data["leaderboards"][0]
    assert [r["model"] for r in lb["rows"]] == ["m1", "m2"] and lb["rows"][0]["weights"].startswith("NOT COMPARABLE")
    assert lb["rows"][0]["cells"]["FD_panns-cnn14@16k"][1] is not None  # the interval
    assert [c["protocol"] for c in data["charts"]] == ["genau"]
    assert data["charts"][0]["uri"].startswith("data:image/png;base64,")
    rows = data["pairs"][0]["rows"]
    assert {(r["a"], r["b"]) for r in rows} == {("m1", "m2")}
    assert {r["column"] for r in rows if r["diff"] is not None} == {c["column"] for c in per_clip}


def test_reported_numbers_beside_our_rows(tmp_path):
    _, data, _ = _report(tmp_path, FakeStoreSpec(split="audiocaps", models=("genau-l", "tango"), n_prompts=4))
    names = [(r["model"], r["reported"]) for r in data["leaderboards"][0]["rows"]]
    i = names.index(("genau-l", False))
    assert names[i + 1] == ("GenAu-Large", True)
    j = names.index(("tango", False))
    assert names[j + 1 : j + 3] == [("TANGO", True), ("TANGO", True)]
    row = data["leaderboards"][0]["rows"][i + 1]
    assert row["rank"] is None and "reranking: no" in row["facts"] and row["source"].startswith("arXiv:2406.19388")
    assert any(f["label"].startswith("reported: GenAU") for f in data["reported_facts"])
    assert any("reference clips not shown" in n for n in data["notes"])  # no AudioCaps files on this machine


def test_records_without_per_clip_scores_are_named(tmp_path):
    _, data, _ = _report(tmp_path, FakeStoreSpec(n_prompts=3, per_clip_file=False))
    assert data["columns"] == []
    assert any("no per-clip scores" in n for n in data["notes"])


def test_cli_report(tmp_path, capsys):
    make_store(tmp_path / "runs", FakeStoreSpec(models=("m1", "m2"), n_prompts=3))
    out = tmp_path / "rep"
    assert (
        main(
            [
                "report",
                "--split",
                "demo",
                "--root",
                str(tmp_path / "runs"),
                "--out",
                str(out),
                "--models",
                "m2",
                "--per-clip-only",
            ]
        )
        == 0
    )
    assert f"report: {out / 'index.html'} (1 model;" in capsys.readouterr().out
    assert [s["key"] for s in page_data((out / "index.html").read_text())["systems"]] == ["m2"]
    for argv, message in (
        (["--models", "m3"], "--models m3: no scored run of this model"),
        (["--out", str(out / "index.html")], "is a file"),
    ):
        with pytest.raises(SystemExit) as e:
            main(["report", "--split", "demo", "--root", str(tmp_path / "runs"), *argv])
        assert message in str(e.value)
    with pytest.raises(SystemExit) as e:
        main(["report", "--split", "demo", "--root", str(tmp_path / "nothing")])
    assert "no runs under" in str(e.value)
