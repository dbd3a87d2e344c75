"""glibc's allocator, tuned for the operator before it starts its threads.

By default glibc gives each thread its own arena (up to eight per core) and raises its
mmap threshold each time a large block is freed, so large buffers (asyncio's 256 KiB TLS
read buffer per connection, kopf's listing of every TTSService) move from mmap, which
returns them to the system when freed, into the arenas' heaps, which keep them. The
operator runs some 40 threads (ticks, their reads, kopf's executor) and bursts of such
buffers while it starts and creates children. At 500 TTSServices
(bench/bench_operator.py) its RSS was about 290 MB with glibc's defaults and 150-170 MB
with two arenas and a fixed 128 KiB threshold, the pair the worker's `serve` sets too.
The worker sets them through the environment, since it execs gunicorn; the operator is
already running, so it calls mallopt(3), which glibc applies the same way as long as no
thread but the main one has allocated yet.

A variable the user set (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_, or the GLIBC_TUNABLES
form) has already been read by glibc at start-up and is left to win. Elsewhere than on
glibc (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Mapping

# mallopt(3) parameter numbers, from glibc's malloc.h.
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
SETTINGS = (("MALLOC_ARENA_MAX", "glibc.malloc.arena_max", M_ARENA_MAX, 2),
            ("MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold", M_MMAP_THRESHOLD, 131072))


def tune_malloc(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Apply what the environment does not set already; returns what was applied."""
    if platform.libc_ver()[0] != "glibc":
        return {}
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return {}
    tunables = environ.get("GLIBC_TUNABLES", "")
    applied = {}
    for variable, tunable, parameter, value in SETTINGS:
        if variable in environ or f"{tunable}=" in tunables:
            continue
        if mallopt(parameter, value) == 1:  # 1: accepted, 0: refused
            applied[variable] = value
    return applied
