"""Study creation: sampling, missing clips, inputs, loudness, anchors, frozen config, CLI."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("sqlalchemy")

from userstudy import audio  # noqa: E402
from userstudy.cli import main  # noqa: E402
from userstudy.create import StudyError, StudySpec, create_study, select_sample  # noqa: E402
from userstudy.db import Clip, Item, Study, default_sqlite_url, init_db, make_engine, session_factory  # noqa: E402
from userstudy.protocol import LoudnessRule  # noqa: E402
from userstudy.sources import Prompt, SourceError, read_prompts, resolve_system  # noqa: E402
from userstudy.testing import make_inputs, write_tone  # noqa: E402


@pytest.fixture()
def db(tmp_path: Path):
    engine = make_engine(default_sqlite_url(tmp_path / "s.db"))
    init_db(engine)
    yield session_factory(engine)
    engine.dispose()


def test_sample_is_drawn_from_the_longest_prompts_with_the_seed():
    prompts = [Prompt(f"id{i}", " ".join(["w"] * (i % 37 + 1)) + "x" * (i % 5)) for i in range(300)]
    available = {p.id for p in prompts} - {"id36", "id73"}  # two of the longest lack a clip
    pool, sample, skipped = select_sample(prompts, available, n_items=50, pool=200, seed=7, unit="words")
    ranked = sorted(
        (p for p in prompts if p.id in available), key=lambda p: (-len(p.caption.split()), -len(p.caption), p.id)
    )
    assert [p.id for p in pool] == [p.id for p in ranked[:200]]
    assert sample == random.Random(7).sample(pool, 50)
    assert len({p.id for p in sample}) == 50
    assert skipped == ["id73", "id36"]  # 37 words, the longest (id73 has more characters)
    assert min(len(p.caption.split()) for p in pool) >= max(
        len(p.caption.split()) for p in prompts if p.id in available and p not in pool
    )
    _, again, _ = select_sample(prompts, available, 50, 200, 7, "words")
    _, other, _ = select_sample(prompts, available, 50, 200, 8, "words")
    assert again == sample and other != sample
    with pytest.raises(StudyError, match="cannot draw"):
        select_sample(prompts, set(list(available)[:10]), 50, 200, 7, "words")
    with pytest.raises(StudyError, match="n_items <= pool"):
        select_sample(prompts, available, 201, 200, 7, "words")


def test_char_length_ranking():
    prompts = [Prompt("a", "aaaaaaaaaaaaaaaaaaaa"), Prompt("b", "b b b"), Prompt("c", "cc cc")]
    pool, _, _ = select_sample(prompts, {"a", "b", "c"}, 1, 2, 0, "chars")
    assert [p.id for p in pool] == ["a", "b"]  # 20 chars, then 5 chars with 3 words
    pool, _, _ = select_sample(prompts, {"a", "b", "c"}, 1, 2, 0, "words")
    assert [p.id for p in pool] == ["b", "c"]


def test_prompts_csv_forms_and_errors(tmp_path: Path):
    p = tmp_path / "ac.csv"
    p.write_text("audiocap_id,youtube_id,start_time,caption\n103541,7fmOlUlwoNg,20,A man speaks\n", encoding="utf-8")
    assert read_prompts(p) == [Prompt("103541", "A man speaks")]
    p.write_text("id,caption\nx,one\nx,two\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"ac\.csv:3: duplicate id 'x'"):
        read_prompts(p)
    p.write_text("name,text\nx,one\n", encoding="utf-8")
    with pytest.raises(SourceError, match="needs columns"):
        read_prompts(p)
    with pytest.raises(SourceError, match="not found"):
        read_prompts(tmp_path / "nope.csv")


def test_system_folders_plain_run_dir_and_model_dir(tmp_path: Path):
    inp = make_inputs(tmp_path, systems=("plain", "run"), n_prompts=3, run_dir_for=("run",), reference=False)
    plain = resolve_system("plain", inp.systems["plain"])
    assert plain.manifest_sha256 is None and sorted(plain.clips) == inp.prompt_ids
    run = resolve_system("run", inp.systems["run"])  # .../<hash>
    assert run.clips_dir.name == "clips" and run.manifest_sha256 is not None
    model = resolve_system("run", inp.systems["run"].parent)  # .../<model> with one run under it
    assert model.clips_dir == run.clips_dir
    second = inp.systems["run"].parent / "def456"
    (second / "clips").mkdir(parents=True)
    (second / "manifest.json").write_text("{}")
    with pytest.raises(SourceError, match="2 runs with different settings"):
        resolve_system("run", inp.systems["run"].parent)
    with pytest.raises(SourceError, match="not a directory"):
        resolve_system("x", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no .wav clips"):
        resolve_system("x", tmp_path / "empty")


def test_loudness_normalisation_and_anchor_lowpass(tmp_path: Path):
    rule = LoudnessRule()
    for amp in (0.02, 0.5):
        x, sr = audio.read_clip(write_tone(tmp_path / f"t{amp}.wav", 440, 1.5, amp=amp, noise=amp / 4))
        out = audio.normalise_loudness(x, sr, rule)
        level, _ = audio.measure_loudness(out.samples, sr, rule.method)
        assert abs(level - rule.target_lufs) < 0.05 and not out.peak_limited
    # a gain that would clip is limited at the ceiling
    spiky = np.zeros(16000)
    spiky[::4000] = 0.9
    out = audio.normalise_loudness(spiky, 16000, rule)
    assert out.peak_limited and abs(np.max(np.abs(out.samples)) - rule.peak_ceiling) < 1e-9
    # silence is left alone
    out = audio.normalise_loudness(np.zeros(16000), 16000, rule)
    assert out.loudness_in is None and out.gain_db == 0.0
    # the anchor keeps the low band and removes what is above 3.5 kHz
    sr = 16000
    t = np.arange(sr) / sr
    x = np.sin(2 * np.pi * 500 * t) + np.sin(2 * np.pi * 6000 * t)
    y = audio.lowpass(x, sr)
    spec = np.abs(np.fft.rfft(y[2000:-2000]))
    freqs = np.fft.rfftfreq(len(y) - 4000, 1 / sr)
    assert spec[np.argmin(abs(freqs - 6000))] < 1e-3 * spec[np.argmin(abs(freqs - 500))]
    with pytest.raises(ValueError, match="cannot low-pass"):
        audio.lowpass(x, 6000)


def test_create_study_reports_missing_and_freezes_config(tmp_path: Path, db):
    inp = make_inputs(
        tmp_path / "in",
        systems=("A", "B", "C"),
        n_prompts=9,
        missing={"B": ["pr008"], "C": ["pr001"]},
        run_dir_for=("C",),
    )
    messages: list[str] = []
    spec = StudySpec(
        name="three",
        systems=[(n, str(d)) for n, d in inp.systems.items()],
        prompts_csv=inp.prompts_csv,
        out_dir=tmp_path / "study",
        n_items=4,
        pool=6,
        seed=5,
        reference_dir=inp.reference,
        n_catch_anchor=2,
        n_catch_repeat=2,
    )
    with db() as s:
        made = create_study(s, spec, log=messages.append)
        cfg = made.config
        assert cfg["protocol_version"] == "gb-2"
        assert cfg["missing"]["by_system"] == {"A": [], "B": ["pr008"], "C": ["pr001"]}
        assert cfg["missing"]["top_ranked_skipped"] == ["pr008"]  # pr008 is the longest prompt
        assert any("'B'" in m and "no clip for 1 of 9" in m for m in messages)
        assert any("skipped" in m for m in messages)
        pool = cfg["sampling"]["pool_ids"]
        assert pool == ["pr007", "pr006", "pr005", "pr004", "pr003", "pr002"]  # longest first, pr008 skipped
        sample = cfg["sampling"]["sample_ids"]
        assert len(sample) == 4 and set(sample) <= set(pool)
        assert cfg["sampling"]["sample_sha256"] == hashlib.sha256(("\n".join(sample) + "\n").encode()).hexdigest()
        assert cfg["pairs"] == [["A", "B"], ["A", "C"], ["B", "C"]]
        st = s.get(Study, made.study_id)
        assert st.config_sha256 == hashlib.sha256(st.config_json.encode()).hexdigest() == made.config_sha256
        assert st.owner_token_hash != made.owner_token and made.owner_token not in st.config_json
        items = s.query(Item).order_by(Item.seq).all()
        kinds = [it.kind for it in items]
        assert kinds.count("main") == 4 * 3 and kinds.count("catch_anchor") == 2 and kinds.count("catch_repeat") == 2
        for it in items:
            if it.kind == "catch_anchor":
                assert (it.system_a, it.system_b) == ("reference", "anchor-lowpass")
                ref, anc = s.get(Clip, it.clip_a_id), s.get(Clip, it.clip_b_id)
                assert ref.source_path == anc.source_path and ref.media_name != anc.media_name
            if it.kind == "catch_repeat":
                orig = s.get(Item, it.repeat_of_id)
                assert (orig.kind, orig.clip_a_id, orig.clip_b_id) == ("main", it.clip_a_id, it.clip_b_id)
        clips = s.query(Clip).all()
        assert len(clips) == 4 * 3 + 2 * 2
        media = tmp_path / "study" / "media"
        for c in clips:
            f = media / c.media_name
            assert f.is_file()
            assert c.system not in c.media_name and c.prompt_id not in c.media_name
            if c.system != "anchor-lowpass":
                assert c.source_sha256 == hashlib.sha256(Path(c.source_path).read_bytes()).hexdigest()
            level, _ = audio.measure_loudness(sf.read(str(f))[0], c.sample_rate, "pyloudnorm-bs1770")
            assert abs(level - (-23.0)) < 0.3  # PCM16 rounding only
    frozen = json.loads((tmp_path / "study" / "study.json").read_text())
    assert frozen["config_sha256"] == made.config_sha256 and frozen["config"] == cfg
    with db() as s, pytest.raises(StudyError, match="already exists"):
        create_study(s, spec, log=messages.append)


def test_create_errors_name_the_problem(tmp_path: Path, db):
    inp = make_inputs(tmp_path / "in", n_prompts=4, reference=False)
    base = dict(prompts_csv=inp.prompts_csv, out_dir=tmp_path / "o", n_items=2, pool=4)
    with db() as s:
        with pytest.raises(StudyError, match="at least two"):
            create_study(s, StudySpec(name="x", systems=[("A", str(inp.systems["sysA"]))], **base))
        with pytest.raises(StudyError, match="reserved"):
            create_study(
                s,
                StudySpec(
                    name="x", systems=[("reference", str(inp.systems["sysA"])), ("B", str(inp.systems["sysB"]))], **base
                ),
            )
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "pr000.wav").write_bytes(b"not audio")
        with pytest.raises(audio.ClipError, match=r"bad/pr000\.wav: cannot decode"):
            create_study(
                s,
                StudySpec(
                    name="x",
                    systems=[("A", str(inp.systems["sysA"])), ("B", str(bad))],
                    prompts_csv=inp.prompts_csv,
                    out_dir=tmp_path / "o",
                    n_items=1,
                    pool=1,
                    n_catch_repeat=0,
                ),
            )
        assert s.query(Study).count() == 0
    assert list((tmp_path / "o" / "media").iterdir()) == []  # nothing half-written left behind


def test_cli_create_and_invite(tmp_path: Path, capsys):
    inp = make_inputs(tmp_path / "in", n_prompts=5, id_column="audiocap_id")
    out = tmp_path / "study"
    rc = main(
        [
            "create",
            "--name",
            "cli",
            "--system",
            f"A={inp.systems['sysA']}",
            "--system",
            f"B={inp.systems['sysB']}",
            "--prompts",
            str(inp.prompts_csv),
            "--out",
            str(out),
            "--n-items",
            "3",
            "--pool",
            "4",
            "--seed",
            "2",
            "--reference",
            str(inp.reference),
            "--catch-anchor",
            "1",
            "--catch-repeat",
            "1",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0 and "owner token" in text and "protocol gb-2" in text
    assert (out / "study.db").is_file() and (out / "study.json").is_file()
    rc = main(["invite", "--db", str(out / "study.db"), "--n", "2", "--base-url", "http://h:1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and len(lines) == 3 and lines[1].startswith("p001\t") and "\thttp://h:1/join/" in lines[1]
    rc = main(
        [
            "create",
            "--name",
            "cli2",
            "--system",
            "A",
            "--system",
            f"B={inp.systems['sysB']}",
            "--prompts",
            str(inp.prompts_csv),
            "--out",
            str(tmp_path / "s2"),
        ]
    )
    assert rc == 2 and "expected NAME=DIR" in capsys.readouterr().err


def test_prompts_from_run_manifests(tmp_path: Path, db):
    inp = make_inputs(tmp_path / "in", systems=("A", "B"), n_prompts=4, run_dir_for=("A", "B"), reference=False)
    spec = StudySpec(
        name="m",
        systems=[(n, str(d)) for n, d in inp.systems.items()],
        out_dir=tmp_path / "s",
        n_items=2,
        pool=3,
        n_catch_repeat=0,
    )
    with db() as s:
        made = create_study(s, spec, log=lambda m: None)
    src = made.config["prompts"]
    assert src["kind"] == "manifests" and src["n_prompts"] == 4
    expected = [[pid, inp.captions[pid]] for pid in inp.prompt_ids]
    assert src["prompt_list_sha256"] == hashlib.sha256(json.dumps(expected, ensure_ascii=False).encode()).hexdigest()
    assert made.config["sampling"]["pool_ids"] == ["pr003", "pr002", "pr001"]
    # manifests that disagree on a prompt: the systems were not run on the same split
    m = inp.systems["B"] / "manifest.json"
    doc = json.loads(m.read_text())
    doc["clips"]["pr001"]["prompt"] = "something else"
    m.write_text(json.dumps(doc))
    with db() as s, pytest.raises(SourceError, match="differs from"):
        create_study(
            s, StudySpec(name="m2", systems=spec.systems, out_dir=tmp_path / "s2", n_items=2, pool=3), log=print
        )
    plain = make_inputs(tmp_path / "plain", n_prompts=3, reference=False)
    with db() as s, pytest.raises(SourceError, match="pass --prompts CSV or --split"):
        create_study(
            s,
            StudySpec(
                name="m3",
                systems=[(n, str(d)) for n, d in plain.systems.items()],
                out_dir=tmp_path / "s3",
                n_items=1,
                pool=2,
            ),
            log=print,
        )


def test_cli_create_from_the_bench_demo_split(tmp_path: Path, monkeypatch, capsys):
    splits = pytest.importorskip("bench.splits")
    monkeypatch.setenv("GENAU_BENCH_DEMO_DIR", str(tmp_path / "demo-ref"))
    items = splits.load_split("demo").items
    for k, name in enumerate(("modelX", "modelY")):
        for i, it in enumerate(items):
            write_tone(tmp_path / name / f"{it.id}.wav", 300 + 100 * k + 20 * i, 1.0, amp=0.1 + 0.1 * k)
    rc = main(
        [
            "create",
            "--name",
            "demo",
            "--system",
            f"X={tmp_path / 'modelX'}",
            "--system",
            f"Y={tmp_path / 'modelY'}",
            "--split",
            "demo",
            "--n-items",
            "4",
            "--pool",
            "8",
            "--out",
            str(tmp_path / "study"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    cfg = json.loads((tmp_path / "study" / "study.json").read_text())["config"]
    assert cfg["prompts"]["kind"] == "split" and cfg["prompts"]["n_prompts"] == len(items)
    assert cfg["catch_trials"]["anchor"]["n"] == 2  # the split's references give the anchors
    assert set(cfg["catch_trials"]["anchor"]["prompt_ids"]) <= set(cfg["sampling"]["pool_ids"])
