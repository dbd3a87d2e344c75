"""Helpers of the operator tier: a bounded wait, and the tick settings of in-process
ticks (the operator processes get the same rate windows through --rate-windows)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from elastic_tts.reconcile.tick import TickSettings

T = TypeVar("T")

# Rates over seconds, not minutes: Prometheus scrapes every second in these tests.
TEST_SETTINGS = TickSettings(rate_windows=("4s", "8s"), node_cache_seconds=1.0)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0,
             every: float = 0.25) -> T:
    """Poll `probe` until it returns something truthy; bounded in time and count."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    for _ in range(int(timeout / every) + 1):
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            break
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
