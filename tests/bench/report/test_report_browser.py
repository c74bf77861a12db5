"""The report page in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright, as
tests/userstudy/test_userstudy_browser.py): it loads from file:// with no console error, sorting works (both
directions, missing values last), the "worst prompts" buttons sort worst first, the filter and the
pages work, audio plays, and a prompt holding HTML is shown as text (no element made from it, no
script run). A screenshot is written to $GB_TEST_ARTIFACTS (or the test's tmp dir)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "browser test needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="browser test needs playwright (pip install playwright)")

from bench.compare import CompareConfig  # noqa: E402 (after the skip: no browser, no import)
from bench.report.collect import collect_split  # noqa: E402 (after the skip: no browser, no import)
from bench.report.fixtures import FakeStoreSpec, make_store  # noqa: E402 (after the skip: no browser, no import)
from bench.report.page import ReportConfig, write_report  # noqa: E402 (after the skip: no browser, no import)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EVIL = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"><b>bold</b> birds'
KL = "KL_softmax_panns-cnn14@16k"


def _values(model: str, i: int, column: str) -> float:
    if i < 0:
        return 10.0
    if column == KL and model == "m1" and i == 7:
        return float("nan")  # a missing per-clip value: sorted last in both directions
    return ((i * 37 + len(model) * 11 + len(column)) % 61) / 10.0 + (0.05 if model == "m2" else 0.0)


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    make_store(
        root / "runs", FakeStoreSpec(models=("m1", "m2"), n_prompts=60, prompts={3: EVIL}, seconds=1.0), values=_values
    )
    runs = collect_split(root / "runs", "demo")
    path = write_report(
        runs,
        ReportConfig(
            root / "out",
            progress=False,
            compare_config=CompareConfig(per_clip_resamples=50, permutations=99, set_metrics=False, progress=False),
        ),
    )
    return path.as_uri(), root


def _column_values(page, header_index: int) -> list[str]:
    return page.eval_on_selector_all(
        "#prompt-table tbody tr", f"rows => rows.map(r => r.children[{header_index}].textContent)"
    )


def test_report_in_chromium(page_url):
    url, root = page_url
    artifacts = Path(os.environ.get("GB_TEST_ARTIFACTS", root))
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            problems: list[str] = []

            def watch(page):
                page.on(
                    "console",
                    lambda m: (
                        problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None
                    ),
                )
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.on(
                    "request",
                    lambda r: problems.append(f"request {r.url}") if not r.url.startswith(("file:", "data:")) else None,
                )
                return page

            # as a reader opens it: the page's Content-Security-Policy in force, no console error
            strict = watch(browser.new_page())
            strict.goto(url)
            strict.wait_for_selector("body[data-ready='1']", timeout=10_000)
            assert strict.locator("#prompt-table tbody tr").count() == 50 and not problems, problems
            strict.close()
            # the checks below evaluate test code in the page, which that policy forbids (no eval): bypass it, which
            # also shows the prompt stays text without the policy's help
            page = watch(browser.new_page(viewport={"width": 1400, "height": 1000}, bypass_csp=True))
            page.goto(url)
            page.wait_for_function("window.__reportReady !== undefined", timeout=10_000)
            assert page.locator("#banner").inner_text().startswith("NOT COMPARABLE: m1, m2")

            # 50 rows per page of 60, and only their audio elements exist, none preloading
            assert page.locator("#prompt-table tbody tr").count() == 50
            assert page.locator("#prompt-table audio").count() == 100
            assert page.eval_on_selector_all("#prompt-table audio", "a => a.every(x => x.preload === 'none')")

            # the HTML prompt is text: shown verbatim, no element or script made from it
            cell = page.locator('#prompt-table tbody tr[data-id="clip00003"] td.prompt')
            assert cell.text_content() == EVIL
            assert cell.locator("b, img, script").count() == 0
            assert page.evaluate("window.__xss") is None

            # sorting by a per-clip column: the m1 KL column is column 3 (id, prompt, m1 clip, m1 KL ...)
            kl_header = page.locator("#prompt-table thead th[data-sort]", has_text="KL_softmax").first
            kl_header.click()
            page.locator("#page-size").select_option("100")
            vals = _column_values(page, 3)
            nums = [float(v) for v in vals if v]
            assert nums == sorted(nums) and len(nums) == 59 and vals[-1] == ""  # ascending, the missing one last
            kl_header.click()
            vals = _column_values(page, 3)
            nums = [float(v) for v in vals if v]
            assert nums == sorted(nums, reverse=True) and vals[-1] == ""
            assert "sorted-desc" in (kl_header.get_attribute("class") or "")

            # worst prompts for m2 on CLAP_LAION (higher is better): lowest first, one click
            page.locator('#worst button[data-worst="m2|CLAP_LAION_laion-clap-htsat-base@48k"]').click()
            # cells: 0 id, 1 prompt, 2 m1 clip, 3-5 m1 KL / CLAP_LAION / CLAP_MS, 6 m2 clip, 7 m2 KL, 8 m2 CLAP_LAION
            vals = [float(v) for v in _column_values(page, 8)]
            assert vals == sorted(vals)

            # filter by text
            page.fill("#filter", "number 1")
            page.wait_for_function("document.querySelectorAll('#prompt-table tbody tr').length === 11")
            assert "filtered from 60" in page.locator("#page-info").inner_text()
            page.fill("#filter", "")
            page.wait_for_function("document.querySelectorAll('#prompt-table tbody tr').length === 60")

            # audio plays (muted: allowed without a gesture) and its time advances
            played = page.evaluate("""async () => {
                const a = document.querySelector('#prompt-table tbody audio');
                a.muted = true;
                await a.play();
                await new Promise(r => setTimeout(r, 400));
                return a.currentTime;
            }""")
            assert played > 0.05

            page.screenshot(path=str(artifacts / "report_page.png"), full_page=False)
            print(f"screenshot: {artifacts / 'report_page.png'}")
            assert not problems, problems
        finally:
            browser.close()
