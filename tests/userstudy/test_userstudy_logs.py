"""Secrets stay out of logs (issue 14, item 5).

A real ``userstudy serve`` child process with everything it prints captured: a participant
joins and listens, the owner logs in with the form, uses the cookie and the Bearer header, and
also tries the old ``?token=`` URL (refused with 400). No invitation, session, audio or owner
token may appear anywhere in the captured output, while the access lines themselves are there
(redacted), so the test cannot pass by logging nothing.
"""

from __future__ import annotations

import io
import logging
import logging.config
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from userstudy.cli import main  # noqa: E402
from userstudy.logs import REDACTED, RedactingFilter, redact, uvicorn_log_config  # noqa: E402
from userstudy.server import SESSION_COOKIE  # noqa: E402
from userstudy.testing import make_inputs, serve_process  # noqa: E402


def test_redact_covers_every_token_form():
    tok = "AbC_d-123456789012345678901234"
    lines = {
        f'127.0.0.1:5 - "GET /join/{tok} HTTP/1.1" 303': f'"GET /join/{REDACTED} HTTP/1.1" 303',
        f'"GET /audio/{tok}?x=1 HTTP/1.1" 206': f'"GET /audio/{REDACTED}?x=1 HTTP/1.1" 206',
        f'"GET /owner/1/export.csv?token={tok}&a=b HTTP/1.1" 400': f"?token={REDACTED}&a=b",
        f"Authorization: Bearer {tok}": f"Bearer {REDACTED}",
        f"cookie: {SESSION_COOKIE}={tok}; gb_owner_3={tok}": f"{SESSION_COOKIE}={REDACTED}; gb_owner_3={REDACTED}",
    }
    for line, expected in lines.items():
        out = redact(line)
        assert tok not in out and expected in out, out


def test_filter_keeps_uvicorn_access_records_formattable():
    """uvicorn's access formatter unpacks record.args positionally: the filter must keep the tuple."""
    from uvicorn.logging import AccessFormatter

    tok = "secret-invitation-token-0123456789"
    access, plain = io.StringIO(), io.StringIO()
    h_access = logging.StreamHandler(access)
    h_access.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    h_plain = logging.StreamHandler(plain)
    for h in (h_access, h_plain):
        h.addFilter(RedactingFilter())
    a_log, p_log = logging.getLogger("test.userstudy.access"), logging.getLogger("test.userstudy.plain")
    a_log.addHandler(h_access)
    p_log.addHandler(h_plain)
    a_log.propagate = p_log.propagate = False
    a_log.setLevel(logging.INFO)
    p_log.setLevel(logging.INFO)
    try:
        a_log.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", f"/join/{tok}?token={tok}", "1.1", 303)
        p_log.info("joined with /join/%s", tok)  # the token in an argument, the path in the template
        p_log.info(f"owner sent Bearer {tok}")
        try:
            raise ValueError(f"while serving /audio/{tok}")
        except ValueError:
            p_log.exception("request failed")
    finally:
        a_log.removeHandler(h_access)
        p_log.removeHandler(h_plain)
    assert access.getvalue().startswith(f'127.0.0.1:1 - "GET /join/{REDACTED}?token={REDACTED} HTTP/1.1" 303')
    text = plain.getvalue()
    assert tok not in text
    assert f"joined with /join/{REDACTED}" in text and f"Bearer {REDACTED}" in text and f"/audio/{REDACTED}" in text
    cfg = uvicorn_log_config()  # what `userstudy serve` passes to uvicorn (loaded for real in the next test)
    assert logging.config._resolve(cfg["filters"]["redact_tokens"]["()"]) is RedactingFilter
    assert all("redact_tokens" in h["filters"] for h in cfg["handlers"].values())


def test_no_token_in_the_server_log(tmp_path: Path, capsys):
    inp = make_inputs(tmp_path / "in", n_prompts=2, reference=False, duration_s=0.2)
    out = tmp_path / "study"
    assert (
        main(
            [
                "create",
                "--name",
                "logs",
                "--system",
                f"A={inp.systems['sysA']}",
                "--system",
                f"B={inp.systems['sysB']}",
                "--prompts",
                str(inp.prompts_csv),
                "--out",
                str(out),
                "--n-items",
                "2",
                "--pool",
                "2",
                "--catch-repeat",
                "0",
            ]
        )
        == 0
    )
    created = capsys.readouterr().out
    owner = next(line.split(": ", 1)[1] for line in created.splitlines() if "owner token" in line)
    assert created.count(owner) == 1  # printed once, never inside a URL
    db = str(out / "study.db")
    assert main(["invite", "--db", db, "--n", "2"]) == 0
    invitations = [line.split("\t")[1] for line in capsys.readouterr().out.strip().splitlines()[1:]]
    log_file = tmp_path / "server.log"
    secrets = [owner, *invitations]
    with serve_process(f"sqlite:///{db}", log_path=log_file) as (base, _):
        c = httpx.Client(base_url=base)
        assert c.get(f"/join/{invitations[0]}", follow_redirects=False).status_code == 303
        secrets.append(c.cookies[SESSION_COOKIE])
        item = c.get("/api/state").json()["item"]
        for side in ("left", "right"):
            url = item[f"{side}_url"]
            secrets.append(url.rsplit("/", 1)[1])
            assert c.get(url, headers={"Range": "bytes=0-99"}).status_code == 206
        assert httpx.get(f"{base}/join/{invitations[0]}", follow_redirects=False).status_code == 410
        c.close()
        o = httpx.Client(base_url=base)
        assert o.get(f"/owner/1?token={owner}").status_code == 400  # refused, but logged: must be redacted
        assert o.get("/owner/1/export.csv", params={"token": owner}).status_code == 400
        assert o.post("/owner/1/login", data={"token": owner}, follow_redirects=False).status_code == 303
        assert o.get("/owner/1").status_code == 200  # the cookie
        assert httpx.get(f"{base}/owner/1/export.json", headers={"Authorization": f"Bearer {owner}"}).status_code == 200
        o.close()
    text = log_file.read_text()
    for s in secrets:
        assert s not in text, f"a token is in the server log: {s[:4]}..."
    # the lines are there, redacted: the test does look at the access log
    assert f"/join/{REDACTED}" in text and f"/audio/{REDACTED}" in text and f"token={REDACTED}" in text
    assert '"GET /owner/1 HTTP/1.1" 200' in text
