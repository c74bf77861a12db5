"""A real server on 127.0.0.1 and a free port (``python -m userstudy serve`` as a child
process, or uvicorn in a thread): 20 concurrent participants, racing replays and joins, a
server killed and restarted in the middle of a study, and export + analysis through the CLI."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from userstudy.analysis import analyze, load_from_db  # noqa: E402
from userstudy.cli import main  # noqa: E402
from userstudy.protocol import CRITERION_KEYS  # noqa: E402
from userstudy.testing import make_inputs, serve_in_thread, serve_process  # noqa: E402

CLIP_S = 1.0


def make_study(tmp: Path, n_items: int, repeats: int = 0) -> str:
    inp = make_inputs(tmp / "in", n_prompts=n_items, duration_s=CLIP_S, reference=False)
    out = tmp / "study"
    assert (
        main(
            [
                "create",
                "--name",
                "live",
                "--system",
                f"A={inp.systems['sysA']}",
                "--system",
                f"B={inp.systems['sysB']}",
                "--prompts",
                str(inp.prompts_csv),
                "--out",
                str(out),
                "--n-items",
                str(n_items),
                "--pool",
                str(n_items),
                "--catch-repeat",
                str(repeats),
            ]
        )
        == 0
    )
    return str(out / "study.db")


def invite(db: str, n: int, capsys) -> list[str]:
    capsys.readouterr()
    assert main(["invite", "--db", db, "--n", str(n)]) == 0
    return [line.split("\t")[1] for line in capsys.readouterr().out.strip().splitlines()[1:]]


def join(base: str, token: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=30)
    r = c.get(f"/join/{token}", follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


def listen(c: httpx.Client, pos: int) -> None:
    for side in ("left", "right"):
        c.post(f"/api/items/{pos}/events", json={"side": side, "event": "play"}).raise_for_status()
    time.sleep(CLIP_S + 0.05)
    for side in ("left", "right"):
        c.post(f"/api/items/{pos}/events", json={"side": side, "event": "ended"}).raise_for_status()


def do_item(c: httpx.Client, choice: str, criteria=CRITERION_KEYS) -> dict:
    st = c.get("/api/state").json()
    pos = st["item"]["position"]
    if st["item"]["criterion"]["key"] == "realism":
        listen(c, pos)
    for crit in criteria:
        r = c.post(f"/api/items/{pos}/votes", json={"criterion": crit, "choice": choice})
        assert r.status_code == 200, r.text
    return r.json()


def test_twenty_participants_concurrently_lose_no_vote(tmp_path: Path, capsys):
    n_items, n_people = 2, 20
    db = make_study(tmp_path, n_items)
    tokens = invite(db, n_people, capsys)
    choices = ["left" if i % 3 == 0 else "right" for i in range(n_people)]
    with serve_process(f"sqlite:///{db}") as (base, _):

        def run(i: int) -> str:
            c = join(base, tokens[i])
            try:
                for _ in range(n_items):
                    st = do_item(c, choices[i])
            finally:
                c.close()
            assert st["completed"]
            return st["completion_code"]

        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=n_people) as pool:
            codes = list(pool.map(run, range(n_people)))
        wall = time.monotonic() - t0
    assert len(set(codes)) == n_people and all(codes)
    assert wall < 30
    data = load_from_db(f"sqlite:///{db}", None)
    assert len(data.responses) == n_people * n_items * len(CRITERION_KEYS)
    assert data.participants["completed"].all()
    res = analyze(data, n_boot=50)
    expected_left = sum(n_items for c in choices if c == "left")
    pb = res.position_bias.set_index("criterion")
    for crit in CRITERION_KEYS:
        assert pb.loc[crit, "n_votes"] == n_people * n_items
        assert pb.loc[crit, "votes_left"] == expected_left
    r = res.results.set_index("criterion")
    exp_a = int(((data.responses["choice_side"] == "left") == data.responses["a_on_left"]).sum()) // len(CRITERION_KEYS)
    assert r.loc["realism", "votes_a"] == exp_a


def test_racing_replays_of_one_vote_store_exactly_one(tmp_path: Path, capsys):
    """Ten copies of one vote at once (a client retrying): all succeed, one is stored; a racing
    different answer is refused."""
    db = make_study(tmp_path, 1)
    (token,) = invite(db, 1, capsys)
    with serve_in_thread(f"sqlite:///{db}") as base:
        c = join(base, token)
        pos = c.get("/api/state").json()["item"]["position"]
        listen(c, pos)
        cookies = dict(c.cookies)

        def fire(_: int) -> tuple[int, bool | None]:
            with httpx.Client(base_url=base, cookies=cookies, timeout=30) as cc:
                r = cc.post(f"/api/items/{pos}/votes", json={"criterion": "realism", "choice": "left"})
                return r.status_code, r.json().get("vote", {}).get("replayed")

        with ThreadPoolExecutor(max_workers=10) as pool:
            results = sorted(pool.map(fire, range(10)))
        other = c.post(f"/api/items/{pos}/votes", json={"criterion": "realism", "choice": "right"})
        c.close()
    assert results == [(200, False)] + [(200, True)] * 9
    assert other.status_code == 409
    df = load_from_db(f"sqlite:///{db}", None).responses
    assert len(df) == 1 and df.iloc[0]["choice_side"] == "left"


def test_racing_joins_consume_an_invitation_once(tmp_path: Path, capsys):
    db = make_study(tmp_path, 1)
    (token,) = invite(db, 1, capsys)
    with serve_in_thread(f"sqlite:///{db}") as base:

        def open_link(_: int) -> int:
            with httpx.Client(base_url=base, timeout=30) as c:
                return c.get(f"/join/{token}", follow_redirects=False).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = sorted(pool.map(open_link, range(8)))
    assert codes == [303] + [410] * 7


def test_restart_in_the_middle_loses_nothing(tmp_path: Path, capsys):
    db = make_study(tmp_path, 2)
    tokens = invite(db, 2, capsys)
    url = f"sqlite:///{db}"
    with serve_process(url) as (base, proc):
        c = join(base, tokens[0])
        do_item(c, "left")
        st = do_item(c, "right", criteria=("realism",))
        before = st["item"]
        cookies = dict(c.cookies)
        c.close()
        proc.kill()  # a crash, not a clean shutdown: every acknowledged vote must survive
        proc.wait(timeout=10)
    assert before["criterion"]["key"] == "quality"
    with serve_process(url) as (base2, _):
        c = httpx.Client(base_url=base2, cookies=cookies, timeout=30)
        st = c.get("/api/state").json()
        assert st["item"]["position"] == before["position"] and st["item"]["answered"] == ["realism"]
        assert st["progress"]["items_done"] == 1
        assert (
            c.post(
                f"/api/items/{before['position']}/votes", json={"criterion": "realism", "choice": "left"}
            ).status_code
            == 409
        )
        assert httpx.get(f"{base2}/join/{tokens[0]}", follow_redirects=False).status_code == 410
        st = do_item(c, "right", criteria=("quality", "alignment", "overall"))
        while not st.get("completed"):
            st = do_item(c, "left")
        c.close()
    assert st["completed"]
    capsys.readouterr()
    assert main(["export", "--db", db, "--out", str(tmp_path / "export")]) == 0
    doc = json.loads((tmp_path / "export" / "responses.json").read_text())
    assert len(doc["responses"]) == 2 * 4 and doc["protocol_version"] == "gb-2"
    assert doc["database_sha256"] in capsys.readouterr().out
    assert (
        main(
            [
                "analyze",
                "--export",
                str(tmp_path / "export" / "responses.json"),
                "--out",
                str(tmp_path / "a"),
                "--n-boot",
                "20",
            ]
        )
        == 0
    )
    assert main(["analyze", "--db", db, "--out", str(tmp_path / "b"), "--n-boot", "20"]) == 0
    a = (tmp_path / "a" / "results.csv").read_text()
    assert a == (tmp_path / "b" / "results.csv").read_text()
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["n_main_votes_used"] == 2 * 4 and summary["database_sha256"] == doc["database_sha256"]
    assert (tmp_path / "b" / "table5.png").stat().st_size > 1000
