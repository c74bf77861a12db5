"""API-level integrity tests of the listening-study server (FastAPI TestClient, fake clock)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from userstudy.create import StudySpec, create_study  # noqa: E402
from userstudy.db import Response, default_sqlite_url, init_db, make_engine, session_factory  # noqa: E402
from userstudy.export import database_sha256  # noqa: E402
from userstudy.participation import invite  # noqa: E402
from userstudy.protocol import CRITERION_KEYS  # noqa: E402
from userstudy.server import SESSION_COOKIE, create_app  # noqa: E402
from userstudy.testing import make_inputs  # noqa: E402

SYS_A, SYS_B = "GenAuLarge", "MakeAnAudio2"
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)> a dog barks'


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture()
def study(tmp_path: Path):
    inp = make_inputs(tmp_path / "in", systems=(SYS_A, SYS_B), n_prompts=5, captions={"pr004": EVIL})
    url = default_sqlite_url(tmp_path / "study.db")
    engine = make_engine(url)
    init_db(engine)
    S = session_factory(engine)
    with S() as s:
        made = create_study(
            s,
            StudySpec(
                name="api-test",
                systems=[(SYS_A, str(inp.systems[SYS_A])), (SYS_B, str(inp.systems[SYS_B]))],
                prompts_csv=inp.prompts_csv,
                out_dir=tmp_path / "study",
                n_items=3,
                pool=3,
                seed=1,
                reference_dir=inp.reference,
                n_catch_anchor=1,
                n_catch_repeat=1,
            ),
            log=lambda m: None,
        )
        st_id = made.study_id
        from userstudy.create import find_study

        invs = invite(s, find_study(s, st_id), 3, "http://testserver")
    clock = Clock()
    app = create_app(url, clock=clock)
    yield {"url": url, "S": S, "made": made, "invs": invs, "clock": clock, "app": app, "tmp": tmp_path, "inp": inp}
    engine.dispose()


def joined(env, k: int = 0) -> TestClient:
    c = TestClient(env["app"])
    r = c.get(f"/join/{env['invs'][k].token}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/study"
    return c


def play_both(c: TestClient, clock: Clock, pos: int, seconds: float = 1.0) -> None:
    for side in ("left", "right"):
        assert c.post(f"/api/items/{pos}/events", json={"side": side, "event": "play"}).status_code == 200
    clock.t += seconds
    for side in ("left", "right"):
        assert c.post(f"/api/items/{pos}/events", json={"side": side, "event": "ended"}).status_code == 200


def answer_current(c: TestClient, clock: Clock, choice: str = "left") -> dict:
    st = c.get("/api/state").json()
    pos = st["item"]["position"]
    play_both(c, clock, pos)
    for crit in CRITERION_KEYS:
        r = c.post(f"/api/items/{pos}/votes", json={"criterion": crit, "choice": choice})
        assert r.status_code == 200, r.text
    return r.json()


def n_responses(env) -> int:
    with env["S"]() as s:
        return s.query(Response).count()


def test_invitation_is_single_use_and_required(study):
    c = TestClient(study["app"])
    # no session at all
    assert c.get("/api/state").status_code == 401
    assert c.post("/api/items/0/votes", json={"criterion": "realism", "choice": "left"}).status_code == 401
    # forged invitation token and forged session cookie
    assert c.get("/join/not-a-real-token", follow_redirects=False).status_code == 404
    c.cookies.set(SESSION_COOKIE, "forged-session-value")
    assert c.get("/api/state").status_code == 401
    # a real invitation: consumed once into a session cookie
    first = joined(study, 0)
    assert first.get("/api/state").status_code == 200
    cookie = first.cookies.get(SESSION_COOKIE)
    assert cookie and cookie != study["invs"][0].token
    # the same link again (another browser, or the same one): rejected
    again = TestClient(study["app"])
    r = again.get(f"/join/{study['invs'][0].token}", follow_redirects=False)
    assert r.status_code == 410
    assert again.get("/api/state").status_code == 401
    # reopening one's own link in the browser holding its session resumes, and changes nothing
    r = first.get(f"/join/{study['invs'][0].token}", follow_redirects=False)
    assert r.status_code == 303 and "set-cookie" not in r.headers
    assert first.cookies.get(SESSION_COOKIE) == cookie and first.get("/api/state").status_code == 200
    # another participant's session does not unlock a used link either
    second = joined(study, 1)
    assert second.get(f"/join/{study['invs'][0].token}", follow_redirects=False).status_code == 410
    assert n_responses(study) == 0


def test_question_order_and_prompt_reveal(study):
    c, clock = joined(study), study["clock"]
    st = c.get("/api/state").json()
    item = st["item"]
    pos = item["position"]
    assert item["criterion"]["key"] == "realism" and item["prompt"] is None
    play_both(c, clock, pos)
    # any later question first is rejected
    for crit in ("quality", "alignment", "overall"):
        r = c.post(f"/api/items/{pos}/votes", json={"criterion": crit, "choice": "left"})
        assert r.status_code == 428 and r.json()["detail"]["code"] == "question_order"
    assert c.post(f"/api/items/{pos}/votes", json={"criterion": "realism", "choice": "left"}).status_code == 200
    st = c.get("/api/state").json()
    assert st["item"]["criterion"]["key"] == "quality" and st["item"]["prompt"] is None  # prompt still hidden
    r = c.post(f"/api/items/{pos}/votes", json={"criterion": "overall", "choice": "left"})
    assert r.status_code == 428
    st = c.post(f"/api/items/{pos}/votes", json={"criterion": "quality", "choice": "right"}).json()
    assert st["item"]["criterion"]["key"] == "alignment"
    with study["S"]() as s:
        from userstudy.db import Assignment, Item

        a = s.query(Assignment).filter_by(position=pos).first()
        caption = s.get(Item, a.item_id).caption
    assert st["item"]["prompt"] == caption  # revealed only now
    assert c.post(f"/api/items/{pos}/votes", json={"criterion": "overall", "choice": "left"}).status_code == 428
    assert c.post(f"/api/items/{pos}/votes", json={"criterion": "alignment", "choice": "left"}).status_code == 200
    st = c.post(f"/api/items/{pos}/votes", json={"criterion": "overall", "choice": "left"}).json()
    assert st["item"]["position"] == pos + 1 and st["item"]["criterion"]["key"] == "realism"
    assert st["progress"]["items_done"] == 1
    # an item ahead of the current one is rejected, and so are its playback events
    nxt = st["item"]["position"]
    assert c.post(f"/api/items/{nxt + 1}/votes", json={"criterion": "realism", "choice": "left"}).status_code == 428
    assert c.post(f"/api/items/{nxt + 1}/events", json={"side": "left", "event": "play"}).status_code == 428
    assert c.post("/api/items/999/votes", json={"criterion": "realism", "choice": "left"}).status_code == 404
    assert c.post(f"/api/items/{nxt}/votes", json={"criterion": "taste", "choice": "left"}).status_code == 422
    assert c.post(f"/api/items/{nxt}/votes", json={"criterion": "realism", "choice": "middle"}).status_code == 422
    assert n_responses(study) == 4


def test_playback_gate_is_checked_on_the_server(study):
    c, clock = joined(study), study["clock"]
    pos = c.get("/api/state").json()["item"]["position"]

    def realism():
        return c.post(f"/api/items/{pos}/votes", json={"criterion": "realism", "choice": "left"})

    r = realism()
    assert r.status_code == 428 and r.json()["detail"]["code"] == "playback_incomplete"
    ev = lambda side, e: c.post(f"/api/items/{pos}/events", json={"side": side, "event": e, "client_ts": 1.0})  # noqa: E731
    # left played through (1 s clip, 1 s on the server clock), right not at all
    ev("left", "play")
    clock.t += 1.0
    r = ev("left", "ended")  # noqa: E702
    assert r.json()["played"] == {"left": True, "right": False}
    assert realism().status_code == 428
    # right "ended" 0.7 s after play: skipped to the end, not played through (tolerance 0.25 s)
    ev("right", "play")
    clock.t += 0.7
    ev("right", "ended")  # noqa: E702
    assert realism().status_code == 428
    # an "ended" without a "play" before it does not count either
    clock.t += 5.0
    ev("right", "ended")  # noqa: E702
    assert realism().status_code == 428
    # a real play-through with a pause in the middle: play, pause (no event), play, ended
    ev("right", "play")
    clock.t += 0.5
    ev("right", "play")
    clock.t += 0.3
    r = ev("right", "ended")  # noqa: E702
    assert r.json()["played"] == {"left": True, "right": True}  # 0.8 s >= 1.0 - 0.25
    assert realism().status_code == 200
    # the gate applies to the first question only; later ones need no replay
    assert c.post(f"/api/items/{pos}/votes", json={"criterion": "quality", "choice": "left"}).status_code == 200


def test_repeated_vote_same_answer_is_a_retry_other_answer_409(study):
    c, clock = joined(study), study["clock"]
    pos = c.get("/api/state").json()["item"]["position"]
    play_both(c, clock, pos)
    first = c.post(f"/api/items/{pos}/votes", json={"criterion": "realism", "choice": "left"})
    assert first.status_code == 200 and first.json()["vote"]["replayed"] is False
    stored_ts = first.json()["vote"]["server_ts"]
    # the server committed and the reply was lost: the client sends the same vote again
    clock.t += 3.0
    again = c.post(f"/api/items/{pos}/votes", json={"criterion": "realism", "choice": "left"})
    assert again.status_code == 200, again.text
    assert again.json()["vote"] == {
        "position": pos,
        "criterion": "realism",
        "choice": "left",
        "server_ts": stored_ts,
        "replayed": True,
    }  # the stored vote, not a new one
    assert again.json()["item"]["criterion"]["key"] == "quality"  # the state moved on exactly once
    r = c.post(f"/api/items/{pos}/votes", json={"criterion": "realism", "choice": "right"})
    assert r.status_code == 409 and r.json()["detail"]["code"] == "already_answered"
    st = answer_rest(c, pos)
    # a replay of a finished item's vote: the same answer succeeds, the other is still 409
    assert c.post(f"/api/items/{pos}/votes", json={"criterion": "overall", "choice": "right"}).status_code == 409
    assert c.post(f"/api/items/{pos}/votes", json={"criterion": "overall", "choice": "left"}).status_code == 200
    assert st["progress"]["items_done"] == 1
    assert n_responses(study) == 4
    with study["S"]() as s:
        stored = {r.criterion: (r.choice_side, r.server_ts) for r in s.query(Response).all()}
    assert {k: v[0] for k, v in stored.items()} == {
        "realism": "left",
        "quality": "left",
        "alignment": "left",
        "overall": "left",
    }
    assert stored["realism"][1] == stored_ts


def answer_rest(c: TestClient, pos: int) -> dict:
    for crit in CRITERION_KEYS[1:]:
        r = c.post(f"/api/items/{pos}/votes", json={"criterion": crit, "choice": "left"})
        assert r.status_code == 200
    return r.json()


def test_audio_urls_are_opaque_and_per_participant(study):
    c1, c2 = joined(study, 0), joined(study, 1)
    raw = c1.get("/api/state").text
    item = json.loads(raw)["item"]
    for secret in (SYS_A, SYS_B, "reference", "anchor", "sysA", str(study["tmp"]), ".wav", "media"):
        assert secret.lower() not in raw.lower(), secret
    media = sorted(p.name for p in (study["tmp"] / "study" / "media").iterdir())
    for name in media:
        assert name[:-4] not in raw
    assert all(re.fullmatch(r"[0-9a-f]{32}\.wav", n) for n in media)
    for side in ("left", "right"):
        url = item[f"{side}_url"]
        assert re.fullmatch(r"/audio/[A-Za-z0-9_-]{24}", url), url
        r = c1.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        assert "content-disposition" not in r.headers
        assert r.content[:4] == b"RIFF"
        assert "last-modified" not in r.headers and "etag" not in r.headers
        # one of the study's clips, with its own +-1 LSB dither: never the file's bytes
        served = np.frombuffer(r.content[44:], dtype="<i2").astype(int)
        files = [sf.read(str(study["tmp"] / "study" / "media" / n), dtype="int16")[0].astype(int) for n in media]
        assert sum(len(f) == len(served) and np.abs(f - served).max() <= 1 for f in files) >= 1
        assert all((study["tmp"] / "study" / "media" / n).read_bytes() != r.content for n in media)
        # another participant or a visitor without a session cannot fetch it
        assert c2.get(url).status_code == 404
        assert TestClient(study["app"]).get(url).status_code == 401
    # the same clip gets a different URL for another participant
    urls2 = {i for i in json.loads(c2.get("/api/state").text)["item"].values() if isinstance(i, str)}
    assert item["left_url"] not in urls2 and item["right_url"] not in urls2


def test_sides_randomised_per_participant_and_repeat_swapped(study):
    with study["S"]() as s:
        from userstudy.db import Assignment, Item

        rows = s.query(Assignment, Item).join(Item, Item.id == Assignment.item_id).all()
        by_part: dict[int, dict[int, tuple[int, bool, int | None, int]]] = {}
        for a, it in rows:
            by_part.setdefault(a.participant_id, {})[it.id] = (a.position, a.a_on_left, it.repeat_of_id, it.seq)
    sides_patterns = set()
    orders = set()
    for items in by_part.values():
        sides_patterns.add(tuple(v[1] for _, v in sorted(items.items())))
        orders.add(tuple(v[0] for _, v in sorted(items.items())))
        for pos, a_left, rep_of, _ in items.values():
            if rep_of is not None:
                opos, oleft, _, _ = items[rep_of]
                assert a_left != oleft and pos > opos  # swapped, and shown after the original
    assert len(by_part) == 3
    assert len(sides_patterns) > 1 or len(orders) > 1


def test_prompt_with_html_is_inert(study):
    c = joined(study)
    r = c.get("/study")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>alert" not in r.text  # the page shell carries no prompt at all
    assert 'src="/static/study.js"' in r.text
    js = c.get("/static/study.js").text
    assert re.search(r"\.(innerHTML|outerHTML|insertAdjacentHTML)|document\.write", js) is None
    assert "textContent" in js
    owner = TestClient(study["app"]).get(
        f"/owner/{study['made'].study_id}", headers={"Authorization": f"Bearer {study['made'].owner_token}"}
    )
    assert owner.status_code == 200
    assert "&lt;script&gt;alert(" in owner.text and "<script>alert" not in owner.text
    assert "<img src=x" not in owner.text


def test_completion_code_after_all_items(study):
    c, clock = joined(study), study["clock"]
    total = c.get("/api/state").json()["progress"]["items_total"]
    assert total == 3 + 1 + 1  # 3 main, 1 anchor, 1 repeat
    for _ in range(total):
        st = answer_current(c, clock)
    assert st["completed"] and st["item"] is None
    assert re.fullmatch(r"GB-[0-9A-F]{8}", st["completion_code"])
    assert c.get("/api/state").json()["completion_code"] == st["completion_code"]
    # the stored answer again is a retry (200, nothing stored); the other answer is refused
    assert c.post("/api/items/0/votes", json={"criterion": "realism", "choice": "left"}).status_code == 200
    assert c.post("/api/items/0/votes", json={"criterion": "realism", "choice": "right"}).status_code == 409
    prog = (
        TestClient(study["app"])
        .get(
            f"/owner/{study['made'].study_id}/progress.json",
            headers={"Authorization": f"Bearer {study['made'].owner_token}"},
        )
        .json()
    )
    p1 = prog["participants"][0]
    assert (
        p1["completed"]
        and p1["answers"] == 20
        and p1["items_done"] == 5
        and p1["completion_code"] == st["completion_code"]
    )
    assert [p["answers"] for p in prog["participants"][1:]] == [0, 0]
    assert sum(it["n_realism"] for it in prog["items"]) == 5


def test_owner_views_need_the_owner_token(study):
    c = TestClient(study["app"])
    sid, tok = study["made"].study_id, study["made"].owner_token
    bearer = {"Authorization": f"Bearer {tok}"}
    for path in (
        f"/owner/{sid}",
        f"/owner/{sid}/progress.json",
        f"/owner/{sid}/export.json",
        f"/owner/{sid}/export.csv",
    ):
        assert c.get(path).status_code == 403
        assert c.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert c.get(path, headers={"Authorization": "Bearer " + study["invs"][0].token}).status_code == 403
        assert c.get(path, headers=bearer).status_code == 200
        # never in the URL, not even the right token: URLs end up in logs
        r = c.get(f"{path}?token={tok}")
        assert r.status_code == 400 and tok not in r.text
    # a participant session grants nothing on owner pages
    assert joined(study).get(f"/owner/{sid}/export.json").status_code == 403


def test_owner_login_cookie_and_unknown_study_answers_alike(study):
    sid, tok, name = study["made"].study_id, study["made"].owner_token, study["made"].name
    c = TestClient(study["app"])
    page = c.get(f"/owner/{sid}/login")
    assert page.status_code == 200 and 'name="token"' in page.text and 'type="password"' in page.text
    assert c.get("/owner/999/login").text == page.text.replace(f"/owner/{sid}/login", "/owner/999/login")
    bad = c.post(f"/owner/{sid}/login", data={"token": "wrong"}, follow_redirects=False)
    assert bad.status_code == 403 and not c.cookies
    r = c.post(f"/owner/{sid}/login", data={"token": tok}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/owner/{sid}"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/owner/" in cookie
    assert c.get(f"/owner/{sid}").status_code == 200
    assert c.get(f"/owner/{name}/export.csv").status_code == 200  # by name too
    assert 'href="/owner/1/export.csv"' in c.get(f"/owner/{sid}").text  # links carry no token
    # an unknown study id or name and a wrong token: the same status and the same body
    fresh = TestClient(study["app"])
    for headers in ({"Authorization": f"Bearer {tok}"}, {"Authorization": "Bearer wrong"}, {}):
        for suffix in ("/export.json", "/progress.json", ""):
            known_wrong = fresh.get(f"/owner/{sid}{suffix}", headers={"Authorization": "Bearer wrong"})
            unknown = fresh.get(f"/owner/999{suffix}", headers=headers)
            unknown_name = fresh.get(f"/owner/no-such-study{suffix}", headers=headers)
            assert known_wrong.status_code == unknown.status_code == unknown_name.status_code == 403
            assert known_wrong.content == unknown.content == unknown_name.content
    html = {"Accept": "text/html"}
    assert fresh.get(f"/owner/{sid}", headers=html).content == fresh.get("/owner/999", headers=html).content
    bad_unknown = fresh.post("/owner/999/login", data={"token": tok}, follow_redirects=False)
    assert bad_unknown.status_code == 403
    assert bad_unknown.text == bad.text.replace(f"/owner/{sid}/login", "/owner/999/login")


def independent_sqlite_digest(db_file: Path) -> str:
    """The documented digest recomputed with plain sqlite3, independent of SQLAlchemy."""
    import hashlib

    h = hashlib.sha256()
    con = sqlite3.connect(db_file)
    tables = sorted(
        r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
    )
    for t in tables:
        h.update(f"#table {t}\n".encode())
        for row in con.execute(f"SELECT * FROM {t} ORDER BY id"):
            vals = [repr(v) if isinstance(v, float) else v for v in row]
            h.update((json.dumps(vals, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode())
    con.close()
    return h.hexdigest()


def test_export_carries_protocol_and_database_hash(study):
    c, clock = joined(study), study["clock"]
    owner = TestClient(study["app"])
    sid, tok = study["made"].study_id, study["made"].owner_token
    answer_current(c, clock, "right")
    owner.headers["Authorization"] = f"Bearer {tok}"
    doc = owner.get(f"/owner/{sid}/export.json").json()
    assert doc["protocol_version"] == "gb-2" and doc["study"]["protocol_version"] == "gb-2"
    assert doc["study"]["config_sha256"] == study["made"].config_sha256
    assert len(doc["responses"]) == 4
    assert {r["criterion"] for r in doc["responses"]} == set(CRITERION_KEYS)
    for r in doc["responses"]:
        assert r["choice_side"] == "right"
        assert r["chosen_system"] == r["right_system"]
        assert r["chose_a"] == (not r["a_on_left"])
    digest = doc["database_sha256"]
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == independent_sqlite_digest(study["tmp"] / "study.db")
    with study["S"]() as s:
        assert database_sha256(s) == digest
    # stable while nothing changes; CSV agrees
    r = owner.get(f"/owner/{sid}/export.csv")
    assert r.headers["x-database-sha256"] == digest
    lines = r.text.strip().splitlines()
    header = lines[0].split(",")
    assert "protocol_version" in header and header[-1] == "database_sha256"
    assert len(lines) == 1 + 4 and all(line.endswith("," + digest) and ",gb-2," in line for line in lines[1:])
    # one more vote changes the digest
    pos = c.get("/api/state").json()["item"]["position"]
    play_both(c, clock, pos)
    c.post(f"/api/items/{pos}/votes", json={"criterion": "realism", "choice": "left"})
    doc2 = owner.get(f"/owner/{sid}/export.json").json()
    assert doc2["database_sha256"] != digest
    assert doc2["database_sha256"] == independent_sqlite_digest(study["tmp"] / "study.db")
    assert len(doc2["responses"]) == 5


def test_schema_is_created_on_first_start_in_wal_mode(tmp_path: Path):
    db_file = tmp_path / "fresh.db"
    c = TestClient(create_app(default_sqlite_url(db_file)))
    r = c.get("/join/whatever", follow_redirects=False)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "not valid" in r.text
    con = sqlite3.connect(db_file)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    assert {"studies", "clips", "items", "participants", "assignments", "play_events", "responses"} <= tables
    with pytest.raises(ValueError, match="in-memory"):
        make_engine("sqlite:///:memory:")
