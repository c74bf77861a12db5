"""bench.allocator: glibc thresholds raised once per process, opt-out honoured."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str, **env) -> str:
    import os

    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, check=True
    ).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_thresholds_are_raised_once_and_opt_out_is_honoured():
    code = "from bench.allocator import keep_large_blocks_in_heap as k; print(k()); print(k())"
    out = _run(code).splitlines()
    assert out[0] == out[1]  # idempotent
    assert out[0] in ("glibc mmap/trim threshold 1 GiB", "allocator defaults (no glibc mallopt)")
    assert _run(code, GENAU_BENCH_MALLOC="default").splitlines()[0] == "allocator defaults (GENAU_BENCH_MALLOC=default)"


def test_score_applies_it_other_commands_do_not():
    listing = "import bench.allocator as a, bench.cli as c\nc.main(['splits'])\nprint(a._applied)\n"
    assert _run(listing).splitlines()[-1] == "None"
    scoring = (
        "import bench.allocator as a, bench.cli as c\n"
        "try:\n    c.main(['score', '--gen', '/nonexistent-gen', '--ref', '/nonexistent-ref'])\n"
        "except BaseException:\n    pass\n"
        "print(a._applied)\n"
    )
    assert _run(scoring).splitlines()[-1] != "None"
