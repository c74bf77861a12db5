"""`bench report`: one self-contained HTML page per split, built from the run store.

    collect.py   the split's scored runs: one system per run folder, its chosen record per protocol,
                 per-clip scores (the records' `per_clip_file` sidecars), prompts, clips, references
    page.py      the page: data as escaped JSON, inline CSS / JS (static/), audio linked relatively
    fixtures.py  synthetic run stores in the records' format (tests and benchmarks/bench_report_load.py)

Import from the submodules (`bench.report.collect`, `bench.report.page`): this package imports
nothing itself, so `bench.compare` (which reads runs through `collect`) and the page (which shows
comparisons) do not import each other in a cycle.
"""
