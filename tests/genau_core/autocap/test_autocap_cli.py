"""`autocap` CLI and Python API on the demo clips with the shipped autocap-tiny."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from bench.audio import AudioError, load_audio
from bench.splits import load_split
from genau_core.autocap.captioner import AutoCapCaptioner, load_captioner
from genau_core.autocap.cli import main, match_metadata, read_metadata_file
from genau_core.captioning import Captioner

# what each synthesised demo clip is (bench/splits/demo.py) -> a word its caption must contain
SOUND_WORDS = {
    "demo-01": "tone", "demo-02": "noise", "demo-03": "beeps", "demo-04": "hum", "demo-05": "sweeping",
    "demo-06": "noise", "demo-07": "clicks", "demo-08": "chord", "demo-09": "noise", "demo-10": "whistle",
}  # fmt: skip


@pytest.fixture(scope="module")
def demo():
    return load_split("demo")


@pytest.fixture(scope="module")
def captioner() -> AutoCapCaptioner:
    return load_captioner("autocap-tiny", progress=False)


def test_captioner_interface_on_demo_waveforms(captioner, demo):
    assert isinstance(captioner, Captioner) and captioner.sample_rate == 32000 and captioner.name == "autocap-tiny"
    assert captioner.identity.startswith("sha256:") and captioner.generation.num_beams == 2
    waves = [load_audio(it.reference, 32000) for it in demo.items]
    caps = captioner.caption(waves, [{"title": ""}] * len(waves), batch_size=4)
    for it, cap in zip(demo.items, caps):
        assert SOUND_WORDS[it.id] in cap.split(), (it.id, cap)
    assert sum(c == it.prompt for it, c in zip(demo.items, caps)) >= 8  # it was trained on these clips
    with pytest.raises(ValueError, match="waveform 1 has shape"):
        captioner.caption([waves[0], np.zeros((2, 100), dtype=np.float32)])
    with pytest.raises(ValueError, match="1 metadata entries for 2 clips"):
        captioner.caption(waves[:2], [{}])


def test_cli_caption_folder_writes_csv(demo, tmp_path, capsys):
    out = tmp_path / "captions.csv"
    meta = tmp_path / "meta.yaml"
    meta.write_text("demo-01.wav:\n  title: test tone\n  description: a calibration signal\n")
    assert (
        main(
            [
                "caption",
                str(demo.reference_dir),
                "--model",
                "autocap-tiny",
                "--meta",
                str(meta),
                "-o",
                str(out),
                "--batch-size",
                "5",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(out.open()))
    assert [r["file"].rsplit("/", 1)[-1] for r in rows] == [f"{it.id}.wav" for it in demo.items]
    for it, row in zip(demo.items, rows):
        assert SOUND_WORDS[it.id] in row["caption"].split() and row["error"] == "" and row["model"] == "autocap-tiny"
        assert row["identity"].startswith("sha256:")
    assert "10 captions" in capsys.readouterr().out


def test_bad_audio_is_named_per_file(demo, tmp_path, capsys):
    d = tmp_path / "clips"
    d.mkdir()
    shutil.copy(demo.items[6].reference, d / "good.wav")
    (d / "broken.wav").write_bytes(b"RIFF....not really a wav file")
    out = tmp_path / "c.csv"
    with pytest.raises(SystemExit, match=r"broken.wav: cannot decode audio.*--skip-bad"):
        main(["caption", str(d), "-o", str(out)])
    assert not out.exists()
    assert main(["caption", str(d), "-o", str(out), "--skip-bad"]) == 0
    rows = {r["file"].rsplit("/", 1)[-1]: r for r in csv.DictReader(out.open())}
    assert rows["broken.wav"]["caption"] == "" and "cannot decode audio" in rows["broken.wav"]["error"]
    assert "clicks" in rows["good.wav"]["caption"]
    assert "skipped" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no such file or folder"):
        main(["caption", str(d / "nope.wav"), "-o", str(out)])


def test_caption_files_short_clip_error(captioner, tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "blip.wav", np.zeros(800, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"blip.wav: too short"):
        captioner.caption_files([tmp_path / "blip.wav"])


def test_metadata_files(tmp_path):
    y = tmp_path / "m.yaml"
    y.write_text("a.wav:\n  title: T\n  video_caption: V\nb:\n  description: D\n")
    table = read_metadata_file(y)
    assert table == {"a.wav": {"title": "T", "video_caption": "V"}, "b": {"description": "D"}}
    from pathlib import Path

    assert match_metadata([Path("x/a.wav"), Path("y/b.flac"), Path("c.wav")], table, "m.yaml") == [
        {"title": "T", "video_caption": "V"}, {"description": "D"}, {},
    ]  # fmt: skip
    c = tmp_path / "m.csv"
    c.write_text("file,title,extra\na.wav,hello,ignored\n")
    assert read_metadata_file(c) == {"a.wav": {"title": "hello"}}
    y.write_text("a.wav:\n  tittle: typo\n")
    with pytest.raises(SystemExit, match="unknown fields.*tittle"):
        read_metadata_file(y)


def test_cli_eval_on_demo_prints_table1(tmp_path, capsys):
    out = tmp_path / "res.json"
    assert (
        main(
            [
                "eval",
                "--split",
                "demo",
                "--model",
                "autocap-tiny",
                "--metrics",
                "bleu,rouge,cider,spice",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("| autocap-tiny"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "demo" and cells[2] == "10 / 0"
    assert float(cells[3]) > 80.0  # BLEU-1 x100 on the clips it was trained on
    assert cells[6] == "-"  # METEOR not requested
    import json

    res = json.loads(out.read_text())
    assert res["n_evaluated"] == 10 and res["scores"]["cider"] > 5.0
    if "spice" in res["missing"]:
        assert cells[8] == cells[9] == "missing" and "SPICE missing" in text


def test_official_model_without_files_names_them(demo, tmp_path):
    with pytest.raises(
        SystemExit, match=r"autocap: autocap: missing autocap-full.ckpt, autocap-full.yaml, bart-base.*mali6/autocap"
    ):
        main(
            [
                "caption",
                str(demo.items[0].reference),
                "--model",
                "autocap",
                "--checkpoint",
                str(tmp_path),
                "-o",
                str(tmp_path / "x.csv"),
            ]
        )
    with pytest.raises(SystemExit, match="unknown split 'nosuch'"):
        main(["eval", "--split", "nosuch", "--model", "autocap-tiny"])
