"""Schedule stage: which window is open, and the per-pool floors and ceilings it sets.

Precedence when windows overlap: the window that opened most recently wins; two that
opened at the same instant are settled by list order (the later one wins). One rule
covers every case, so a short "lunch peak" inside a long "daytime" window behaves as
people expect, and so does a night shutdown that starts while a peak is still open.

Prewarm: a window opening within a pool's cold start (plus one control interval, since
the controller only acts once per interval) already raises that pool's floor, so the
capacity is Ready when the window opens. Prewarm only raises floors; it never lowers
anything, and a window that is a shutdown is never prewarmed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from elastic_tts.policy.cron import last_start, next_start
from elastic_tts.policy.spec import TTSServiceSpec, Window, WindowMode


@dataclass(frozen=True)
class Bounds:
    low: int
    high: int


@dataclass(frozen=True)
class ScheduleState:
    window: Window | None
    mode: WindowMode
    bounds: Mapping[str, Bounds]
    prewarm: Mapping[str, str]  # pool -> name of the window it is prewarmed for

    @property
    def window_name(self) -> str | None:
        return self.window.name if self.window else None


def active_window(spec: TTSServiceSpec, now: float) -> Window | None:
    best: tuple[float, int, Window] | None = None
    for index, window in enumerate(spec.schedule.windows):
        started = last_start(window.start, spec.schedule.timezone, now)
        if started is None or now >= started + window.duration_seconds:
            continue
        key = (started, index, window)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


def window_bounds(spec: TTSServiceSpec, window: Window | None) -> dict[str, Bounds]:
    bounds: dict[str, Bounds] = {}
    for pool in spec.pools.values():
        low, high = pool.min_replicas, pool.max_replicas
        if window is not None:
            if window.mode == "shutdown" or (window.mode == "cpu-only" and pool.is_gpu):
                low, high = 0, 0
            elif pool.name in window.pools:
                override = window.pools[pool.name]
                high = override.max_replicas if override.max_replicas is not None else high
                low = override.min_replicas if override.min_replicas is not None else low
                high = max(high, low) if override.max_replicas is None else high
                low = min(low, high)
        bounds[pool.name] = Bounds(low, high)
    return bounds


def evaluate_schedule(spec: TTSServiceSpec, now: float) -> ScheduleState:
    window = active_window(spec, now)
    bounds = window_bounds(spec, window)
    prewarm: dict[str, str] = {}
    if spec.schedule.prewarm and spec.schedule.windows:
        for pool in spec.pools.values():
            lookahead = pool.cold_start_seconds + spec.scaling.interval_seconds
            for upcoming in spec.schedule.windows:
                if upcoming.mode == "shutdown" or upcoming is window:
                    continue
                opens = next_start(upcoming.start, spec.schedule.timezone, now)
                if opens is None or opens - now > lookahead:
                    continue
                floor = window_bounds(spec, upcoming)[pool.name].low
                current = bounds[pool.name]
                if floor > current.low:
                    bounds[pool.name] = Bounds(floor, max(current.high, floor))
                    prewarm[pool.name] = upcoming.name
    return ScheduleState(
        window=window,
        mode=window.mode if window else "normal",
        bounds=bounds,
        prewarm=prewarm,
    )
