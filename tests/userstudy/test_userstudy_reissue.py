"""A participant who lost the cookie is not locked out for good (issue 14, item 4).

Over HTTP against a real uvicorn server: a participant answers one item and half of the next,
loses the cookie (their link now answers 410), the owner runs ``userstudy reissue``, and the
new link resumes at the next unanswered question with every earlier answer kept; the old link
and the old cookie stop working, and the action is in the audit log the owner sees.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from userstudy.analysis import load_from_db  # noqa: E402
from userstudy.cli import main  # noqa: E402
from userstudy.protocol import CRITERION_KEYS  # noqa: E402
from userstudy.testing import make_inputs, serve_in_thread  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def _answer(c: httpx.Client, clock: Clock, criteria) -> dict:
    st = c.get("/api/state").json()
    pos = st["item"]["position"]
    if st["item"]["criterion"]["key"] == "realism":
        for ev in ("play", "ended"):
            for side in ("left", "right"):
                c.post(f"/api/items/{pos}/events", json={"side": side, "event": ev}).raise_for_status()
            clock.t += 1.0
    for crit in criteria:
        r = c.post(f"/api/items/{pos}/votes", json={"criterion": crit, "choice": "right"})
        assert r.status_code == 200, r.text
    return r.json()


def test_reissued_link_resumes_at_the_next_unanswered_question(tmp_path: Path, capsys):
    inp = make_inputs(tmp_path / "in", n_prompts=3, reference=False, duration_s=0.2)
    out = tmp_path / "study"
    assert (
        main(
            [
                "create",
                "--name",
                "re",
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
                "3",
                "--catch-repeat",
                "0",
            ]
        )
        == 0
    )
    owner_token = next(line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines() if "owner token" in line)
    db = str(out / "study.db")
    assert main(["invite", "--db", db, "--n", "2"]) == 0
    first_token = capsys.readouterr().out.strip().splitlines()[1].split("\t")[1]
    clock = Clock()
    with serve_in_thread(f"sqlite:///{db}", clock=clock) as base:
        c = httpx.Client(base_url=base)
        assert c.get(f"/join/{first_token}", follow_redirects=False).status_code == 303
        _answer(c, clock, CRITERION_KEYS)
        st = _answer(c, clock, CRITERION_KEYS[:2])
        before = st["item"]
        assert before["criterion"]["key"] == "alignment" and st["progress"]["questions_done"] == 6
        old_cookies = dict(c.cookies)
        c.close()
        # the cookie is gone (another browser, cleared data): the link is used up
        assert httpx.get(f"{base}/join/{first_token}", follow_redirects=False).status_code == 410

        assert main(["reissue", "--db", db, "--participant", "p001", "--base-url", base]) == 0
        captured = capsys.readouterr()
        label, new_token, new_url = captured.out.strip().splitlines()[1].split("\t")
        assert label == "p001" and new_url == f"{base}/join/{new_token}" and new_token != first_token
        assert "logged:" in captured.err and "p001" in captured.err and new_token not in captured.err

        # the old link and the old session no longer work
        assert httpx.get(f"{base}/join/{first_token}", follow_redirects=False).status_code == 404
        assert httpx.get(f"{base}/api/state", cookies=old_cookies).status_code == 401

        c = httpx.Client(base_url=base)
        assert c.get(new_url, follow_redirects=False).status_code == 303
        st = c.get("/api/state").json()
        assert st["item"]["position"] == before["position"]
        assert st["item"]["criterion"]["key"] == "alignment" and st["item"]["answered"] == ["realism", "quality"]
        assert st["item"]["prompt"] is not None  # revealed, as before the cookie was lost
        assert st["progress"]["questions_done"] == 6 and st["progress"]["items_done"] == 1
        assert httpx.get(new_url, follow_redirects=False).status_code == 410  # the new link joins once too
        st = _answer(c, clock, CRITERION_KEYS[2:])
        st = _answer(c, clock, CRITERION_KEYS)
        assert st["completed"] and st["completion_code"]
        c.close()

        prog = httpx.get(f"{base}/owner/1/progress.json", headers={"Authorization": f"Bearer {owner_token}"}).json()
        (action,) = prog["owner_actions"]
        assert action["action"] == "reissue_invitation" and action["participant"] == "p001"
        assert action["detail"]["answers_kept"] == 6 and action["detail"]["had_session"] is True
        assert new_token not in str(prog) and first_token not in str(prog)
        page = httpx.get(f"{base}/owner/1", headers={"Authorization": f"Bearer {owner_token}"}).text
        assert "reissue_invitation" in page and "p001" in page

    data = load_from_db(f"sqlite:///{db}", None)
    assert len(data.responses) == 3 * 4 and set(data.responses["participant"]) == {"p001"}
    assert (data.responses["choice_side"] == "right").all()

    assert main(["analyze", "--db", db, "--out", str(tmp_path / "analysis"), "--n-boot", "10"]) == 0
    assert "12 main votes from 1 of the 1 raters who answered (2 invited)" in capsys.readouterr().out

    assert main(["reissue", "--db", db, "--participant", "p999"]) == 2
    assert "no participant 'p999'" in capsys.readouterr().err

    # rotating the owner token is an owner action too; the new token never goes into a URL
    assert main(["owner-token", "--db", db]) == 0
    printed = capsys.readouterr().out
    rotated = printed.split("owner token: ", 1)[1].split()[0]
    assert printed.count(rotated) == 1 and "?token=" not in printed
    from userstudy.create import find_study
    from userstudy.db import make_engine, session_factory
    from userstudy.export import progress

    engine = make_engine(f"sqlite:///{db}")
    with session_factory(engine)() as s:
        actions = progress(s, find_study(s, None))["owner_actions"]
    engine.dispose()
    assert [a["action"] for a in actions] == ["reissue_invitation", "rotate_owner_token"]
