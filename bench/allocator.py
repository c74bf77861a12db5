"""Keep large freed tensors in the process heap (glibc), so repeated forward passes reuse
memory instead of mapping and zero-filling fresh pages for every activation.

glibc serves each allocation above its mmap threshold (128 KiB, rising to at most 32 MiB as it
adapts) with a fresh mmap and returns it to the kernel on free. A CNN forward on a batch of
10 s clips allocates activations of 100+ MB per layer, so every layer pays page faults and
kernel zero-filling: measured on the project's 2-core machine, Cnn14 on 8 clips takes 1.29 s
with glibc's defaults and 0.89 s with the thresholds below (VGGish 0.49 -> 0.43 s), for about
120 MB more peak RSS. The numbers computed do not change (same kernels, same inputs).

Applied by the `bench` command line for scoring (`bench score`, `bench run`), never on import.
Set GENAU_BENCH_MALLOC=default to keep glibc's behaviour.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

ENV_VAR = "GENAU_BENCH_MALLOC"
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Above any single tensor the backbones allocate (the largest: the 268 MB Winograd copy of
# Cnn14's 2048x2048 layer; single activations stay near 100 MB, e.g. VGGish's first layer on
# 64 examples).
LARGE_BLOCK_BYTES = 1 << 30

_applied: str | None = None


def keep_large_blocks_in_heap() -> str:
    """Raise glibc's mmap and trim thresholds once per process. Returns what was done
    ("glibc mmap/trim threshold 1 GiB", or why nothing was)."""
    global _applied
    if _applied is not None:
        return _applied
    if os.environ.get(ENV_VAR, "").strip().lower() == "default":
        _applied = f"allocator defaults ({ENV_VAR}=default)"
    elif not sys.platform.startswith("linux"):
        _applied = "allocator defaults (not Linux)"
    else:
        _applied = _mallopt()
    return _applied


def _mallopt() -> str:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "allocator defaults (no glibc mallopt)"
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES) == 1 and mallopt(_M_TRIM_THRESHOLD, LARGE_BLOCK_BYTES) == 1
    return "glibc mmap/trim threshold 1 GiB" if ok else "allocator defaults (mallopt refused)"
