"""Wall-time stages of a reference-tool run (the oracle-venv timing scripts share them): `stage(name)` as a
context manager, `timed(name, fn)` around a function; the seconds add up per name in STAGES."""

from __future__ import annotations

import contextlib
import time

STAGES: dict[str, float] = {}


@contextlib.contextmanager
def stage(name: str):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        STAGES[name] = STAGES.get(name, 0.0) + time.perf_counter() - t0


def timed(name: str, fn):
    def wrapper(*a, **k):
        with stage(name):
            return fn(*a, **k)

    return wrapper
