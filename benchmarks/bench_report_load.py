"""Load time of the `bench report` page at 1000 prompts x 8 models in Chromium.

    python benchmarks/bench_report_load.py [--prompts 1000] [--models 8] [--loads 5] [--write]

Builds a synthetic run store (bench.report.fixtures: 3 per-clip metrics per model, clips hard-linked
to one 1-s WAV), writes the report (with the all-pairs table of the per-clip metrics), then opens it
from file:// in Debian's Chromium (Playwright, the browser tests' flags) `--loads` times and measures:
    load      navigation start -> the page's script finished its first render (window.__reportReady)
    longest   the longest main-thread task seen during the load (PerformanceObserver "longtask")
    sort      one click on a score header: sort 1000 rows + render the page of rows
    next page one click on "Next"
--write replaces the section between the markers in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.compare import CompareConfig
from bench.report.collect import collect_split
from bench.report.fixtures import FakeStoreSpec, make_store
from bench.report.page import ReportConfig, write_report

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
COLUMNS = {
    "KL_softmax_panns-cnn14@16k": ("KL_softmax", "panns-cnn14-16k", True),
    "CLAP_LAION_laion-clap-htsat-base@48k": ("CLAP_LAION", "laion-clap-htsat-base", True),
    "CLAP_MS_ms-clap-2023@44.1k": ("CLAP_MS", "ms-clap-2023", True),
    "FD_panns-cnn14@16k": ("FD", "panns-cnn14-16k", False),
}
START, END = "<!-- bench_report_load:start -->", "<!-- bench_report_load:end -->"
LONGTASKS = """
window.__longest = 0;
new PerformanceObserver(list => {
  for (const e of list.getEntries()) window.__longest = Math.max(window.__longest, e.duration);
})
  .observe({type: "longtask", buffered: true});
"""


def measure(url: str, loads: int) -> dict:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {"load": [], "longest": [], "sort": [], "next": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for _ in range(loads):
                page = browser.new_page(viewport={"width": 1600, "height": 1000}, bypass_csp=True)
                page.add_init_script(LONGTASKS)
                page.goto(url)
                page.wait_for_function("window.__reportReady !== undefined", timeout=60_000)
                out["load"].append(page.evaluate("window.__reportReady"))
                page.wait_for_timeout(200)
                out["longest"].append(page.evaluate("window.__longest"))
                out["sort"].append(
                    page.evaluate("""() => { const th = document.querySelectorAll('th[data-sort]')[4];
                    const t = performance.now(); th.click(); return performance.now() - t; }""")
                )
                out["next"].append(
                    page.evaluate("""() => { const t = performance.now();
                    document.getElementById('next').click(); return performance.now() - t; }""")
                )
                rows = page.locator("#prompt-table tbody tr").count()
                audios = page.locator("#prompt-table audio").count()
                page.close()
        finally:
            browser.close()
    res = {k: statistics.median(v) for k, v in out.items()}
    res.update(rows=rows, audios=audios, raw=out)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=1000)
    ap.add_argument("--models", type=int, default=8)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        make_store(
            tmp / "runs",
            FakeStoreSpec(
                models=tuple(f"model-{i}" for i in range(args.models)),
                n_prompts=args.prompts,
                columns=COLUMNS,
                prompts={0: "<script>alert(1)</script> a <b>bold</b> prompt"},
            ),
        )
        t_store = time.perf_counter() - t0
        t0 = time.perf_counter()
        runs = collect_split(tmp / "runs", "demo")
        page = write_report(
            runs,
            ReportConfig(tmp / "out", progress=False, compare_config=CompareConfig(set_metrics=False, progress=False)),
        )
        t_write = time.perf_counter() - t0
        size = page.stat().st_size
        m = measure(page.as_uri(), args.loads)
    n_pairs = args.models * (args.models - 1) // 2
    lines = [
        (
            f"{args.prompts} prompts x {args.models} models (3 per-clip metrics each; {n_pairs} pairs in the all-pairs "
            f"table): page {size / 1e6:.2f} MB, written in {t_write:.1f} s (store built in {t_store:.1f} s)."
        ),
        "",
        f"| step (median of {args.loads} loads, Chromium headless) | ms |",
        "|---|---|",
        f"| load: navigation start -> first render done | {m['load']:.0f} |",
        f"| longest main-thread task during the load | {m['longest']:.0f} |",
        f"| sort 1000 rows by a score column + render | {m['sort']:.1f} |",
        f"| next page | {m['next']:.1f} |",
        "",
        f"Rows in the DOM: {m['rows']} (one page), audio elements: {m['audios']} (preload=none, created per page).",
    ]
    text = "\n".join(lines)
    print(text)
    print("raw:", {k: [round(x, 1) for x in v] for k, v in m["raw"].items()})
    if args.write:
        results = Path(__file__).resolve().parent / "RESULTS.md"
        body = results.read_text(encoding="utf-8")
        block = f"{START}\n{text}\n{END}"
        if START in body and END in body:
            body = body[: body.index(START)] + block + body[body.index(END) + len(END) :]
        else:
            head = "## Report page load (issue 19, benchmarks/bench_report_load.py)"
            body = body.rstrip("\n") + f"\n\n{head}\n\n{block}\n"
        tmp_path = results.with_name(f".{results.name}.tmp")
        tmp_path.write_text(body, encoding="utf-8")
        tmp_path.replace(results)
        print(f"written: {results}")


if __name__ == "__main__":
    main()
