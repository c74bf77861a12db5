"""Blinding against a curious participant (issue 14, item 1).

A participant client records every response header and body of a whole session (1 participant x
44 items: 40 main pairs + 4 repeated pairs). System A's clips are shorter (0.30 s vs 0.40 s) and
at another sample rate (16 kHz vs 22.05 kHz) than system B's, so a server that leaks length or
format leaks the system. Simple predictors of "A is on the left" (file-time order, ETag order,
URL order, byte length, header set, WAV header, body-hash order) must do no better than chance
(two-sided exact binomial test), and no download may hash like another: a repeated pair cannot
be matched to its first showing by file identity.
"""

from __future__ import annotations

import hashlib
import io
from email.utils import parsedate_to_datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from scipy.stats import binomtest  # noqa: E402

from userstudy.create import StudySpec, create_study, find_study  # noqa: E402
from userstudy.db import (  # noqa: E402
    Assignment,
    Clip,
    Item,
    default_sqlite_url,
    init_db,
    make_engine,
    session_factory,
)
from userstudy.participation import invite  # noqa: E402
from userstudy.protocol import CRITERION_KEYS  # noqa: E402
from userstudy.server import create_app  # noqa: E402
from userstudy.testing import make_inputs, serve_in_thread  # noqa: E402

N_MAIN, N_REPEAT, N_PEOPLE = 40, 4, 1
DUR = {"sysA": 0.30, "sysB": 0.40}
RATE = {"sysA": 16_000, "sysB": 22_050}
# Holm over the predictors would be stricter; 1e-4 per predictor keeps a false alarm under 0.1 %
# per run, while the old server gave 40 / 40 on byte length (p = 1.8e-12).
P_SIGNAL = 1e-4


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def records_for(base: str, invs, clock: Clock, records: list) -> None:
    """Each participant's whole session, recording every audio response's URL, headers and body."""
    for inv in invs:
        c = httpx.Client(base_url=base, timeout=30)
        assert c.get(f"/join/{inv.token}", follow_redirects=False).status_code == 303
        while True:
            st = c.get("/api/state").json()
            if st["completed"]:
                break
            item = st["item"]
            rec = {"participant": inv.participant_id, "position": item["position"]}
            for side in ("left", "right"):
                u = item[f"{side}_url"]
                r = c.get(u)
                assert r.status_code == 200
                rec[side] = {"url": u, "headers": dict(r.headers), "body": r.content}
            for side in ("left", "right"):
                c.post(f"/api/items/{item['position']}/events", json={"side": side, "event": "play"})
            clock.t += 1.0
            for side in ("left", "right"):
                c.post(f"/api/items/{item['position']}/events", json={"side": side, "event": "ended"})
            for crit in CRITERION_KEYS:
                assert (
                    c.post(
                        f"/api/items/{item['position']}/votes", json={"criterion": crit, "choice": "left"}
                    ).status_code
                    == 200
                )
            records.append(rec)
        c.close()


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("blind")
    inp = make_inputs(tmp / "in", n_prompts=N_MAIN, reference=False, durations=DUR, rates=RATE)
    url = default_sqlite_url(tmp / "study.db")
    engine = make_engine(url)
    init_db(engine)
    S = session_factory(engine)
    with S() as s:
        made = create_study(
            s,
            StudySpec(
                name="blind",
                systems=[("sysA", str(inp.systems["sysA"])), ("sysB", str(inp.systems["sysB"]))],
                prompts_csv=inp.prompts_csv,
                out_dir=tmp / "study",
                n_items=N_MAIN,
                pool=N_MAIN,
                seed=3,
                n_catch_repeat=N_REPEAT,
            ),
            log=lambda m: None,
        )
        invs = invite(s, find_study(s, made.study_id), N_PEOPLE, "http://testserver")
    clock = Clock()
    records = []  # one per (participant, item): what the participant saw
    with serve_in_thread(url, clock=clock) as base:  # real HTTP through uvicorn: its headers count too
        records_for(base, invs, clock, records)
    # the truth, which the participant never sees: which side is A, which items are repeats
    with S() as s:
        truth = {}
        for a, it in s.query(Assignment, Item).join(Item, Item.id == Assignment.item_id).all():
            ca, cb = s.get(Clip, it.clip_a_id), s.get(Clip, it.clip_b_id)
            left, right = (ca, cb) if a.a_on_left else (cb, ca)
            truth[(a.participant_id, a.position)] = {
                "a_on_left": a.a_on_left,
                "kind": it.kind,
                "item_id": it.id,
                "repeat_of": it.repeat_of_id,
                "media": {"left": left.media_name, "right": right.media_name},
            }
    engine.dispose()
    return {"records": records, "truth": truth, "media": tmp / "study" / "media"}


def _last_modified(h: dict) -> float:
    v = h.get("last-modified")
    return parsedate_to_datetime(v).timestamp() if v else 0.0


def _headers_without_date(h: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in h.items() if k != "date"))


PREDICTORS = {
    # each: (left record, right record) -> guess "A is on the left"; ties guess left
    "last_modified_order": lambda L, R: _last_modified(L["headers"]) <= _last_modified(R["headers"]),
    "etag_order": lambda L, R: L["headers"].get("etag", "") <= R["headers"].get("etag", ""),
    "url_order": lambda L, R: L["url"] <= R["url"],
    "shorter_body": lambda L, R: len(L["body"]) <= len(R["body"]),
    "header_set": lambda L, R: _headers_without_date(L["headers"]) <= _headers_without_date(R["headers"]),
    "wav_header": lambda L, R: L["body"][:44] <= R["body"][:44],
    "body_hash_order": lambda L, R: hashlib.sha256(L["body"]).digest() <= hashlib.sha256(R["body"]).digest(),
}


def test_session_covers_at_least_40_items(sessions):
    main = [r for r in sessions["records"] if sessions["truth"][(r["participant"], r["position"])]["kind"] == "main"]
    assert len(main) == N_PEOPLE * N_MAIN >= 40
    assert len(sessions["records"]) == N_PEOPLE * (N_MAIN + N_REPEAT)


@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_no_predictor_finds_system_a_better_than_chance(sessions, name):
    guess = PREDICTORS[name]
    n = k = 0
    for r in sessions["records"]:
        t = sessions["truth"][(r["participant"], r["position"])]
        if t["kind"] != "main":
            continue
        n += 1
        k += guess(r["left"], r["right"]) == t["a_on_left"]
    p = binomtest(k, n, 0.5).pvalue
    print(f"\n{name}: {k}/{n} correct, p = {p:.3g}")
    assert p > P_SIGNAL, f"{name} predicts system A: {k}/{n} (p = {p:.2g})"


def test_both_sides_look_alike_except_for_the_body(sessions):
    for r in sessions["records"]:
        hl, hr = r["left"]["headers"], r["right"]["headers"]
        assert _headers_without_date(hl) == _headers_without_date(hr)
        assert "last-modified" not in hl and "etag" not in hl and "content-disposition" not in hl
        assert len(r["left"]["body"]) == len(r["right"]["body"])
        assert r["left"]["body"][:44] == r["right"]["body"][:44]  # one WAV format for the whole study
    # one format for the whole study: the highest source rate, 16-bit mono
    info = sf.info(io.BytesIO(sessions["records"][0]["left"]["body"]))
    assert (info.samplerate, info.channels, info.subtype) == (22_050, 1, "PCM_16")


def test_repeats_cannot_be_matched_by_hash(sessions):
    recs = sessions["records"]
    digests = [hashlib.sha256(r[side]["body"]).hexdigest() for r in recs for side in ("left", "right")]
    assert len(set(digests)) == len(digests)  # every download is unique: repeats, originals, participants
    n_repeats = 0
    for r in recs:
        t = sessions["truth"][(r["participant"], r["position"])]
        if t["kind"] != "catch_repeat":
            continue
        n_repeats += 1
        orig = next(
            o
            for o in recs
            if o["participant"] == r["participant"]
            and sessions["truth"][(o["participant"], o["position"])]["item_id"] == t["repeat_of"]
        )
        hashes = {hashlib.sha256(orig[s]["body"]).digest() for s in ("left", "right")}
        for side in ("left", "right"):
            assert hashlib.sha256(r[side]["body"]).digest() not in hashes
        # ... although it is the same audio (sides swapped): at most 2 LSB apart, the two dithers
        rep = np.frombuffer(r["left"]["body"][44:], "<i2").astype(int)
        first = np.frombuffer(orig["right"]["body"][44:], "<i2").astype(int)
        assert np.abs(rep - first).max() <= 2 and (rep != first).mean() > 0.3
    assert n_repeats == N_PEOPLE * N_REPEAT


def test_dither_is_below_minus_90_dbfs(sessions):
    r = sessions["records"][0]
    t = sessions["truth"][(r["participant"], r["position"])]
    clean = sf.read(str(sessions["media"] / t["media"]["left"]), dtype="int16")[0].astype(int)
    served = np.frombuffer(r["left"]["body"][44:], "<i2").astype(int)
    d = served - clean
    assert np.abs(d).max() == 1
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean(d.astype(float) ** 2)) / 32768)
    assert -95.0 < rms_dbfs < -90.0  # TPDF +-1 LSB: -93.3 dBFS in theory


def test_media_files_carry_no_order(sessions):
    times = {p.stat().st_mtime_ns for p in sessions["media"].iterdir()}
    assert len(times) == 1 and next(iter(times)) % 1_000_000_000 == 0  # one whole second for all files


def test_same_url_same_bytes_and_ranges_agree(tmp_path: Path):
    """Chromium fetches audio in ranges: every range must cut the same dithered bytes."""
    inp = make_inputs(tmp_path / "in", n_prompts=2, reference=False, duration_s=0.2)
    url = default_sqlite_url(tmp_path / "study.db")
    engine = make_engine(url)
    init_db(engine)
    with session_factory(engine)() as s:
        made = create_study(
            s,
            StudySpec(
                name="r",
                systems=[("A", str(inp.systems["sysA"])), ("B", str(inp.systems["sysB"]))],
                prompts_csv=inp.prompts_csv,
                out_dir=tmp_path / "study",
                n_items=2,
                pool=2,
                n_catch_repeat=0,
            ),
            log=lambda m: None,
        )
        (inv,) = invite(s, find_study(s, made.study_id), 1, "x")
    c = TestClient(create_app(url))
    c.get(f"/join/{inv.token}", follow_redirects=False)
    u = c.get("/api/state").json()["item"]["left_url"]
    full = c.get(u)
    assert full.content == c.get(u).content and full.headers["accept-ranges"] == "bytes"
    total = len(full.content)
    r = c.get(u, headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == full.content[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{total}"
    r = c.get(u, headers={"Range": "bytes=-10"})
    assert r.status_code == 206 and r.content == full.content[-10:]
    r = c.get(u, headers={"Range": "bytes=0-"})
    assert r.status_code == 206 and r.content == full.content
    assert c.get(u, headers={"Range": f"bytes={total}-"}).status_code == 416
    engine.dispose()
