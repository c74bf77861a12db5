"""End to end in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

A participant opens the invitation link, plays both clips of each item, answers the four
questions in order for several items, sees the completion code; the analysis then counts
exactly the clicks made. A screenshot of an item page (prompt revealed) is written to
$GB_TEST_ARTIFACTS (or the test's tmp dir) and its path printed.

Issue 14: the progress bar moves with every question; the play / pause glyphs are CSS shapes
(no text outside Latin-1 on the page, so no symbol font is needed) and both render; and when
the server commits a vote but the reply is lost (the connection is reset after the server
answered), the page retries, gets the stored vote back, and goes on without an error.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "browser test needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="browser test needs playwright (pip install playwright)")
pytest.importorskip("uvicorn")

from userstudy.analysis import analyze, load_from_db  # noqa: E402
from userstudy.create import StudySpec, create_study, find_study  # noqa: E402
from userstudy.db import default_sqlite_url, init_db, make_engine, session_factory  # noqa: E402
from userstudy.participation import invite  # noqa: E402
from userstudy.protocol import CRITERIA, CRITERION_KEYS  # noqa: E402
from userstudy.testing import make_inputs, serve_in_thread  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EVIL = '<img src=x onerror="alert(1)"><script>alert(2)</script> birds chirp'
N_ITEMS = 3
# the side clicked for each item and question
PLAN = [("left", "left", "right", "left"), ("right", "right", "right", "left"), ("left", "right", "left", "left")]


def test_participant_completes_items_in_chromium(tmp_path: Path):
    inp = make_inputs(tmp_path / "in", n_prompts=N_ITEMS, duration_s=1.0, reference=False, captions={"pr001": EVIL})
    url = default_sqlite_url(tmp_path / "study.db")
    engine = make_engine(url)
    init_db(engine)
    with session_factory(engine)() as s:
        made = create_study(
            s,
            StudySpec(
                name="browser",
                systems=[("A", str(inp.systems["sysA"])), ("B", str(inp.systems["sysB"]))],
                prompts_csv=inp.prompts_csv,
                out_dir=tmp_path / "study",
                n_items=N_ITEMS,
                pool=N_ITEMS,
                n_catch_repeat=0,
            ),
            log=lambda m: None,
        )
        (inv,) = invite(s, find_study(s, made.study_id), 1, "unused")
    engine.dispose()
    artifacts = Path(os.environ.get("GB_TEST_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "userstudy_item_page.png"

    t0 = time.monotonic()
    with serve_in_thread(url) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 900})
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(f"{base}/join/{inv.token}")
            assert page.url == f"{base}/study"
            page.wait_for_selector("#item:not([hidden])", timeout=10_000)
            glyphs = check_glyphs(page)
            lost_replies: list[int] = []

            def lose_reply(route):  # the server commits the vote, the participant never hears back
                lost_replies.append(route.fetch().status)
                route.abort("connectionreset")

            vote_replies: list[tuple[int, bool | None]] = []
            page.on(
                "response",
                lambda r: (
                    vote_replies.append((r.status, (r.json().get("vote") or {}).get("replayed")))
                    if "/votes" in r.url
                    else None
                ),
            )

            shown_prompts = []
            for k in range(N_ITEMS):
                for q, crit in enumerate(CRITERIA):
                    page.wait_for_function(
                        "t => document.getElementById('progress-text').textContent === t",
                        arg=f"Item {k + 1} of {N_ITEMS} \u00b7 question {q + 1} of 4",
                        timeout=10_000,
                    )
                    # the bar moves per question, not only per item
                    assert page.eval_on_selector("#progress-bar", "b => [b.value, b.max]") == [4 * k + q, 4 * N_ITEMS]
                    assert page.text_content("#question-title") == f"Question {q + 1} of 4: {crit.title}"
                    if q == 0:
                        # answers stay locked until both clips were played to the end
                        assert page.is_disabled("#vote-left") and page.is_disabled("#vote-right")
                        page.click("#play-left")
                        page.wait_for_selector("#status-left.ok", timeout=15_000)
                        assert page.is_disabled("#vote-left")
                        page.click("#play-right")
                        page.wait_for_selector("#status-right.ok", timeout=15_000)
                        page.wait_for_selector("#vote-left:enabled", timeout=5_000)
                    if crit.shows_prompt:
                        assert page.is_visible("#prompt") and page.is_hidden("#prompt-hidden")
                        text = page.text_content("#prompt")
                        assert text in inp.captions.values()
                        assert page.locator("#prompt *").count() == 0  # markup shown as text, never parsed
                        if q == 2:
                            shown_prompts.append(text)
                    else:
                        assert page.is_hidden("#prompt") and page.is_visible("#prompt-hidden")
                    if k == 0 and q == 2:
                        page.screenshot(path=str(shot), full_page=True)
                    if k == 1 and q == 1:
                        page.route("**/api/items/*/votes", lose_reply, times=1)
                    page.click(f"#vote-{PLAN[k][q]}")
                    if k == 1 and q == 1:
                        page.wait_for_function(
                            "() => document.getElementById('question-title').textContent.startsWith('Question 3 of 4')",
                            timeout=15_000,
                        )
                        # committed (200) but lost; the page retried and went on without an error
                        assert lost_replies == [200] and page.text_content("#message") == ""
            page.wait_for_selector("#done:not([hidden])", timeout=10_000)
            code = page.text_content("#completion-code")
            page.wait_for_timeout(200)  # let the last response events arrive
            # every click got a fresh vote stored, except the retry, which got the stored vote back
            assert sorted(vote_replies) == [(200, False)] * (4 * N_ITEMS - 1) + [(200, True)], vote_replies
        finally:
            browser.close()
    wall = time.monotonic() - t0
    print(f"\nbrowser test: {N_ITEMS} items x 4 questions in {wall:.1f} s; screenshot {shot}; glyph pixels {glyphs}")

    assert dialogs == []  # the prompt's script never ran
    assert sorted(shown_prompts) == sorted(inp.captions.values())
    assert shot.stat().st_size > 5000
    data = load_from_db(url, None)
    df = data.responses.sort_values(["position", "criterion"])
    assert len(df) == N_ITEMS * 4
    for k in range(N_ITEMS):
        got = df[df["position"] == k].set_index("criterion")["choice_side"].to_dict()
        assert got == dict(zip(CRITERION_KEYS, PLAN[k], strict=True))
    assert len(df) == len(df.drop_duplicates(["position", "criterion"]))  # the retried vote is stored once
    res = analyze(data, n_boot=20)
    pb = res.position_bias.set_index("criterion")
    for q, key in enumerate(CRITERION_KEYS):
        assert pb.loc[key, "n_votes"] == N_ITEMS
        assert pb.loc[key, "votes_left"] == sum(PLAN[k][q] == "left" for k in range(N_ITEMS))
    assert res.summary["n_main_votes_used"] == N_ITEMS * 4
    assert data.participants["completed"].all()
    from userstudy.db import Participant

    engine = make_engine(url)
    with session_factory(engine)() as s:
        assert s.query(Participant).one().completion_code == code
    engine.dispose()


def check_glyphs(page) -> dict[str, int]:
    """The page's text needs no symbol font (Latin-1 only) and the CSS play / pause glyphs render:
    dark pixels in both shapes, and the two shapes differ. Returns the dark-pixel counts."""
    import numpy as np
    from PIL import Image

    text = page.evaluate("() => document.body.innerText")
    assert all(ord(ch) <= 0xFF for ch in text), sorted({ch for ch in text if ord(ch) > 0xFF})
    for side in ("left", "right"):
        assert page.text_content(f"#play-{side}").isascii()

    def dark(png: bytes) -> tuple[int, bytes]:
        img = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
        return int((img < 110).sum()), img.tobytes()

    n_play, play = dark(page.locator("#play-left .icon").screenshot())
    page.eval_on_selector("#play-left", "b => b.classList.add('playing')")
    n_pause, pause = dark(page.locator("#play-left .icon").screenshot())
    page.eval_on_selector("#play-left", "b => b.classList.remove('playing')")
    assert n_play > 30 and n_pause > 30 and play != pause
    # the page itself switches to the pause shape while a clip plays
    page.click("#play-right")
    page.wait_for_selector("#play-right.playing", timeout=5_000)
    assert page.text_content("#play-right").strip() == "Pause clip 2"
    page.click("#play-right")  # pause again; the item's first question still needs full plays
    page.wait_for_selector("#play-right:not(.playing)", timeout=5_000)
    return {"play": n_play, "pause": n_pause}
